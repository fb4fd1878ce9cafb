package wal

import "errors"

var (
	ErrInvalidChannel  = errors.New("wal: invalid channel name")
	ErrChannelNotFound = errors.New("wal: channel not found")
	ErrRecordTooLarge  = errors.New("wal: record too large")
	ErrInvalidRecordID = errors.New("wal: invalid record id")
	// ErrOutOfRange is a Truncate beyond the end of the channel.
	ErrOutOfRange = errors.New("wal: position out of range")
	// ErrTruncated is a Reader whose next position was truncated away.
	ErrTruncated = errors.New("wal: position truncated")
	// ErrRewound is a channel that moved backward under a Reader: its last position is
	// below one the Reader already returned (or was anchored at), or the record at that
	// position is not the one returned. The server lost acknowledged records (a crash under
	// JetStream's default sync_interval, a restored volume, a recreated stream) and may be
	// reusing their positions for new ones.
	ErrRewound       = errors.New("wal: log moved backward")
	ErrClosed        = errors.New("wal: closed")
	ErrInvalidConfig = errors.New("wal: invalid config")

	errNotReady    = errors.New("wal: server not ready for connections")
	errNoJetStream = errors.New("wal: jetstream not enabled")
)
