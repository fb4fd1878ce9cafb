package metastore

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type point struct{ x, y int }

func (p point) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt("x", p.x)
	enc.AddInt("y", p.y)
	return nil
}

func TestSlogCore(t *testing.T) {
	buf := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	core := newSlogCore(log.With("component", "etcd"), zapcore.InfoLevel)
	core.drop = func(ent zapcore.Entry, _ []zapcore.Field) bool { return ent.Message == "noise" }
	lg := zap.New(core).Named("raft").With(zap.String("member", "m1"))

	lg.Debug("below the minimum")
	lg.Info("noise")
	lg.Info("applied", zap.Int("index", 7), zap.Error(errors.New("disk slow")), zap.Inline(point{1, 2}), zap.Int("index", 8))
	lg.Warn("warned")
	lg.Error("failed")
	require.NoError(t, lg.Sync())

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3, buf.String())
	require.Contains(t, lines[0], `level=INFO msg=applied component=etcd member=m1 index=8 error="disk slow" x=1 y=2 logger=raft`)
	require.Contains(t, lines[1], "level=WARN msg=warned")
	require.Contains(t, lines[2], "level=ERROR msg=failed")

	quiet := newSlogCore(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelError})), zapcore.DebugLevel)
	require.False(t, quiet.Enabled(zapcore.WarnLevel), "the slog handler's level also applies")
	require.True(t, quiet.Enabled(zapcore.FatalLevel))

	for zl, sl := range map[zapcore.Level]slog.Level{
		zapcore.DebugLevel: slog.LevelDebug, zapcore.InfoLevel: slog.LevelInfo, zapcore.WarnLevel: slog.LevelWarn,
		zapcore.ErrorLevel: slog.LevelError, zapcore.DPanicLevel: slog.LevelError, zapcore.FatalLevel: slog.LevelError,
	} {
		require.Equal(t, sl, slogLevel(zl), zl.String())
	}
}

func TestDropEtcdLog(t *testing.T) {
	stopping := new(atomic.Bool)
	drop := dropEtcdLog(stopping)
	ent := func(msg string) zapcore.Entry { return zapcore.Entry{Message: msg, Level: zapcore.ErrorLevel} }
	termErr := []zapcore.Field{zap.Error(errors.New("cannot detect storage schema version: missing term information"))}
	realErr := []zapcore.Field{zap.Error(errors.New("disk full"))}

	require.True(t, drop(ent("simple token is not cryptographically signed"), nil))
	require.True(t, drop(ent("failed to update storage version"), termErr), "the bootstrap race is noise")
	require.False(t, drop(ent("failed to update storage version"), realErr), "other causes are not")
	require.False(t, drop(ent("failed to update storage version"), []zapcore.Field{zap.String("error", "missing term information")}))
	require.False(t, drop(ent("setting up serving from embedded etcd failed."), realErr), "a serving failure while running is kept")
	stopping.Store(true)
	require.True(t, drop(ent("setting up serving from embedded etcd failed."), realErr), "but not while stopping")
	require.False(t, drop(ent("apply request took too long"), nil))
}
