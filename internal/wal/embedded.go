package wal

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Durability says when the server fsyncs what it acknowledged.
type Durability string

const (
	// SyncAlways makes the server fsync every write before it acks.
	SyncAlways Durability = "always"
	// SyncInterval is the JetStream default: writes reach the OS before the
	// ack and are fsynced every SyncInterval (2 min by default). A killed
	// server process loses nothing; a power loss can lose up to the
	// interval.
	SyncInterval Durability = "interval"
)

const (
	defaultEmbeddedHost = "127.0.0.1"
	// maxEmbeddedPayload is the server's default max_pending: max_payload
	// may not exceed it.
	maxEmbeddedPayload = 64 << 20
	readyTimeout       = 30 * time.Second
	readyPoll          = 50 * time.Millisecond
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// Dir holds the JetStream file store; a server started again on the
	// same Dir recovers every channel.
	Dir  string `yaml:"dir"`
	Host string `yaml:"host"` // default 127.0.0.1
	Port int    `yaml:"port"` // 0 = a free port
	// Sync is SyncInterval when empty.
	Sync Durability `yaml:"sync"`
	// SyncInterval is the fsync period under SyncInterval, 0 for the
	// server default (2 min).
	SyncInterval time.Duration `yaml:"sync_interval"`
	MaxPayload   int32         `yaml:"max_payload"` // default 8 MiB
	Logger       *slog.Logger  `yaml:"-"`
}

// Defaults fills zero fields with their defaults.
func (c *EmbeddedConfig) Defaults() {
	if c.Host == "" {
		c.Host = defaultEmbeddedHost
	}
	if c.Sync == "" {
		c.Sync = SyncInterval
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = defaultMaxMsgSize
	}
}

// Validate reports a config StartEmbedded cannot use. Call Defaults first.
func (c EmbeddedConfig) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: embedded nats needs a store dir", ErrInvalidConfig)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: port %d", ErrInvalidConfig, c.Port)
	case c.Sync != SyncAlways && c.Sync != SyncInterval:
		return fmt.Errorf("%w: sync %q is neither %q nor %q", ErrInvalidConfig, c.Sync, SyncAlways, SyncInterval)
	case c.SyncInterval < 0:
		return fmt.Errorf("%w: sync interval %v negative", ErrInvalidConfig, c.SyncInterval)
	case c.MaxPayload <= 0 || c.MaxPayload > maxEmbeddedPayload:
		return fmt.Errorf("%w: max payload %d not in [1, %d]", ErrInvalidConfig, c.MaxPayload, maxEmbeddedPayload)
	}
	return nil
}

// Embedded is an in-process NATS server with JetStream enabled.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with a JetStream file store under
// cfg.Dir and returns once it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	port := cfg.Port
	if port == 0 {
		// nats-server reads 0 as its default port 4222.
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:   "weir-embedded",
		Host:         cfg.Host,
		Port:         port,
		JetStream:    true,
		StoreDir:     cfg.Dir,
		SyncAlways:   cfg.Sync == SyncAlways,
		SyncInterval: cfg.SyncInterval,
		MaxPayload:   cfg.MaxPayload,
		// The process owns signal handling, not the library.
		NoSigs: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	sl := serverLogger{l: logger, fatal: make(chan string, 1)}
	srv.SetLoggerV2(sl, logger.Enabled(context.Background(), slog.LevelDebug), false, false)
	srv.Start()
	if err := waitReady(srv, sl.fatal); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats on %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats in %s: %w", cfg.Dir, errNoJetStream)
	}
	logger.Info("embedded nats started", "url", srv.ClientURL(), "dir", cfg.Dir, "sync", cfg.Sync)
	return &Embedded{srv: srv}, nil
}

// waitReady waits until srv accepts connections. nats-server reports a
// failure to listen (port in use) only through its logger's Fatalf and
// then never becomes ready, so watch for that too.
func waitReady(srv *server.Server, fatal <-chan string) error {
	deadline := time.Now().Add(readyTimeout)
	for !srv.ReadyForConnections(readyPoll) {
		select {
		case msg := <-fatal:
			return fmt.Errorf("%w: %s", errNotReady, msg)
		default:
		}
		if time.Now().After(deadline) {
			return errNotReady
		}
	}
	return nil
}

// ClientURL is the URL to pass to Open.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Port is the client port the server listens on: a server started again with it in
// EmbeddedConfig.Port is where the clients of this one reconnect.
func (e *Embedded) Port() int { return e.srv.Addr().(*net.TCPAddr).Port }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLogger routes nats-server logs to slog.
type serverLogger struct {
	l     *slog.Logger
	fatal chan string // the first fatal message, for StartEmbedded
}

// Noticef is debug: nats-server's notices are its start-up banner and routine state changes,
// which would drown Weir's own start-up lines.
func (s serverLogger) Noticef(format string, v ...any) {
	s.l.Debug("nats server", "detail", fmt.Sprintf(format, v...))
}

func (s serverLogger) Warnf(format string, v ...any) {
	s.l.Warn("nats server", "detail", fmt.Sprintf(format, v...))
}

// Fatalf does not exit: the process, not a library, decides that.
func (s serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	s.l.Error("nats server fatal", "detail", msg)
	select {
	case s.fatal <- msg:
	default:
	}
}

func (s serverLogger) Errorf(format string, v ...any) {
	s.l.Error("nats server", "detail", fmt.Sprintf(format, v...))
}

func (s serverLogger) Debugf(format string, v ...any) {
	s.l.Debug("nats server", "detail", fmt.Sprintf(format, v...))
}

func (s serverLogger) Tracef(format string, v ...any) {
	s.l.Debug("nats server trace", "detail", fmt.Sprintf(format, v...))
}
