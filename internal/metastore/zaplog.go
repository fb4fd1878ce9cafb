package metastore

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that writes to a slog.Logger, so the etcd client and server,
// which log only through zap, end up in the logger Weir was given.
type slogCore struct {
	log *slog.Logger
	min zapcore.Level
	// drop, when set, discards entries that are noise whatever their level.
	drop  func(zapcore.Entry, []zapcore.Field) bool
	attrs []any
}

var _ zapcore.Core = (*slogCore)(nil)

func newSlogCore(log *slog.Logger, min zapcore.Level) *slogCore {
	return &slogCore{log: log, min: min}
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.min && c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, min: c.min, drop: c.drop, attrs: append(slices.Clip(c.attrs), fieldAttrs(fields)...)}
}

func (c *slogCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *slogCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if c.drop != nil && c.drop(ent, fields) {
		return nil
	}
	args := append(slices.Clip(c.attrs), fieldAttrs(fields)...)
	if ent.LoggerName != "" {
		args = append(args, slog.String("logger", ent.LoggerName))
	}
	c.log.Log(context.Background(), slogLevel(ent.Level), ent.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs converts zap fields through zap's own map encoder, which knows every field type.
func fieldAttrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, len(enc.Fields))
	for _, f := range fields {
		if v, ok := enc.Fields[f.Key]; ok {
			attrs = append(attrs, slog.Any(f.Key, v))
			delete(enc.Fields, f.Key) // a repeated key is emitted once, with its last value
		}
	}
	// Inline objects add keys of their own.
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
