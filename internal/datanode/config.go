package datanode

import (
	"errors"
	"fmt"
	"time"
)

// Config holds a data node's settings. Defaults follow Milvus where Milvus has one.
type Config struct {
	NodeID int64 `yaml:"node-id"`
	// ObjectRoot prefixes every object key the node writes.
	ObjectRoot string `yaml:"object-root"`

	// Sealing (Milvus: dataCoord.segment.maxSize 1024 MB, maxLife 24h, maxIdleTime 10m,
	// minSizeFromIdleToSealed 16 MB).
	SealBytes        int64         `yaml:"seal-bytes"`
	SealRows         int64         `yaml:"seal-rows"`
	SealAge          time.Duration `yaml:"seal-age"`
	SealIdle         time.Duration `yaml:"seal-idle"`
	SealIdleMinBytes int64         `yaml:"seal-idle-min-bytes"`

	// Syncing (Milvus: dataNode.segment.insertBufSize 16 MB, syncPeriod 10m,
	// dataNode.memory.forceSyncWatermark).
	SyncBufferBytes int64         `yaml:"sync-buffer-bytes"`
	SyncStaleAge    time.Duration `yaml:"sync-stale-age"`
	// MemoryLimit bounds the rows buffered across all channels of the node. Above it the
	// pipelines sync what they hold and stop consuming until syncs bring it back under.
	MemoryLimit int64 `yaml:"memory-limit"`

	// CheckInterval is how often age, idleness and staleness are checked.
	CheckInterval time.Duration `yaml:"check-interval"`
	// RetryMax bounds the backoff between retries of object writes and metastore commits.
	RetryMax time.Duration `yaml:"retry-max"`
	// Protocol is ProtocolCurrent or ProtocolLegacy (the previous release's behaviour).
	Protocol string `yaml:"protocol"`

	// Log truncation: at most every TruncateInterval (after a checkpoint commit), a channel's
	// log is truncated below the newest checkpoint whose record is older than LogKeep, and
	// below every reader's hold. LogKeep also bounds how long the server can recognise a
	// retried append by its record ID across a restart, so it is never less than the
	// channel's duplicate window.
	TruncateInterval time.Duration `yaml:"truncate-interval"`
	LogKeep          time.Duration `yaml:"log-keep"`

	// IndexWorkers is how many vector index builds of the node's flushed segments run at once
	// (0: the node builds none; package indexbuild).
	IndexWorkers int `yaml:"index-workers"`
	// IndexMemoryLimit bounds what the builds running hold together (an estimate from rows,
	// dimension and parameters); a build that alone would pass it is refused, its segment
	// searched exactly.
	IndexMemoryLimit int64 `yaml:"index-memory-limit"`
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		NodeID:           1,
		ObjectRoot:       "weir",
		SealBytes:        1 << 30,
		SealRows:         10_000_000,
		SealAge:          24 * time.Hour,
		SealIdle:         10 * time.Minute,
		SealIdleMinBytes: 16 << 20,
		SyncBufferBytes:  16 << 20,
		SyncStaleAge:     10 * time.Minute,
		MemoryLimit:      512 << 20,
		CheckInterval:    time.Second,
		RetryMax:         5 * time.Second,
		Protocol:         ProtocolCurrent,
		TruncateInterval: time.Minute,
		LogKeep:          5 * time.Minute,
		IndexWorkers:     1,
		IndexMemoryLimit: 4 << 30,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("datanode: %s must be positive, got %d", name, v))
		}
	}
	positive("node-id", c.NodeID)
	positive("seal-bytes", c.SealBytes)
	positive("seal-rows", c.SealRows)
	positive("seal-age", int64(c.SealAge))
	positive("seal-idle", int64(c.SealIdle))
	positive("sync-buffer-bytes", c.SyncBufferBytes)
	positive("sync-stale-age", int64(c.SyncStaleAge))
	positive("memory-limit", c.MemoryLimit)
	positive("check-interval", int64(c.CheckInterval))
	positive("retry-max", int64(c.RetryMax))
	positive("truncate-interval", int64(c.TruncateInterval))
	positive("log-keep", int64(c.LogKeep))
	if c.IndexMemoryLimit <= 0 && c.IndexWorkers > 0 {
		errs = append(errs, fmt.Errorf("datanode: index-memory-limit must be positive, got %d", c.IndexMemoryLimit))
	}
	if c.IndexWorkers < 0 {
		errs = append(errs, fmt.Errorf("datanode: index-workers must not be negative, got %d", c.IndexWorkers))
	}
	if c.Protocol != ProtocolCurrent && c.Protocol != ProtocolLegacy {
		errs = append(errs, fmt.Errorf("datanode: protocol must be %q or %q, got %q", ProtocolCurrent, ProtocolLegacy, c.Protocol))
	}
	if c.ObjectRoot == "" {
		errs = append(errs, errors.New("datanode: object-root must be set"))
	}
	return errors.Join(errs...)
}
