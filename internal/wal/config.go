package wal

import (
	"fmt"
	"log/slog"
	"time"
)

// Position is a channel's log offset: the JetStream stream sequence (1-based).
// 0 means "before the first message".
type Position = uint64

// Message is one record read back from a channel.
type Message struct {
	Channel string
	Pos     Position
	Data    []byte
	Time    time.Time // when the server stored it
}

// Anchor names one record by its position and the time the server stored it (Unix
// nanoseconds, as Message.Time), which tells it from a record stored later at the same
// position after the server lost its tail. Time 0 checks the position alone.
type Anchor struct {
	Pos  Position
	Time int64
}

// Anchor is the anchor of m.
func (m Message) Anchor() Anchor { return Anchor{Pos: m.Pos, Time: m.Time.UnixNano()} }

// Record is one entry handed to Append.
type Record struct {
	// ID is optional. When set, JetStream's duplicate window drops a resend
	// with the same ID (header Nats-Msg-Id), so a retried Append stores the
	// record once and returns the position of the first copy.
	ID   string
	Data []byte
}

const (
	defaultReplicas        = 1
	defaultAckTimeout      = 10 * time.Second
	defaultMaxMsgSize      = 8 << 20
	defaultDuplicateWindow = 2 * time.Minute

	// maxReplicas is JetStream's limit on stream replicas.
	maxReplicas = 5
)

// Config configures a Log.
type Config struct {
	// Replicas is the number of stream replicas of each channel created by
	// this Log (1 for a single server, 3 or 5 for a JetStream cluster).
	Replicas int `yaml:"replicas"`
	// AckTimeout bounds one Append: every record must be acknowledged by
	// JetStream within it.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// MaxMsgSize is the per-record limit Append checks before it publishes
	// anything.
	MaxMsgSize int32 `yaml:"max_msg_size"`
	// DuplicateWindow is how long JetStream remembers record IDs of a
	// channel created by this Log; a retry later than this is stored again.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	Logger          *slog.Logger  `yaml:"-"`
}

// Defaults fills zero fields with their defaults.
func (c *Config) Defaults() {
	if c.Replicas == 0 {
		c.Replicas = defaultReplicas
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = defaultAckTimeout
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = defaultMaxMsgSize
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = defaultDuplicateWindow
	}
}

// Validate reports a config Open cannot use. Call Defaults first.
func (c Config) Validate() error {
	switch {
	case c.Replicas < 1 || c.Replicas > maxReplicas:
		return fmt.Errorf("%w: replicas %d not in [1, %d]", ErrInvalidConfig, c.Replicas, maxReplicas)
	case c.AckTimeout <= 0:
		return fmt.Errorf("%w: ack timeout %v not positive", ErrInvalidConfig, c.AckTimeout)
	case c.MaxMsgSize <= 0:
		return fmt.Errorf("%w: max message size %d not positive", ErrInvalidConfig, c.MaxMsgSize)
	case c.DuplicateWindow <= 0:
		return fmt.Errorf("%w: duplicate window %v not positive", ErrInvalidConfig, c.DuplicateWindow)
	}
	return nil
}
