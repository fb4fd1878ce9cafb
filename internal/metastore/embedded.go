package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Settings of the embedded single-member etcd.
const (
	// A single member never waits for peers, so its election timeout only sets how long a
	// start takes: etcd fast-forwards all but one election tick, and raft randomizes the rest
	// over up to one more election timeout. 50 ms ticks and a 250 ms election (etcd's minimum
	// ratio of 5) make a start take at most a few hundred milliseconds instead of up to a second.
	embeddedTickMs     = 50
	embeddedElectionMs = 250
	// Periodic compaction keeps one hour of history: long enough for any paged or
	// snapshot read Weir does, short enough that the backend does not grow with every write.
	embeddedCompactionMode      = "periodic"
	embeddedCompactionRetention = "1h"
	// portAttempts is how often a start retries when a free port it picked was taken by
	// someone else before etcd bound it.
	portAttempts = 3
)

// noise are etcd messages at warn level or above that tell a Weir operator nothing: the
// embedded server has no separate HTTP port to configure and no authentication.
var noise = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// shutdownNoise are etcd messages that an orderly Close produces as its listeners and
// servers go away; outside Close they report real failures and are kept.
var shutdownNoise = map[string]bool{
	"setting up serving from embedded etcd failed.": true,
	"stopping insecure grpc server due to error":    true,
	"stopped insecure grpc server due to error":     true,
}

// bootstrapNoise are etcd messages logged while a fresh member has not yet persisted its
// first raft term (etcd-io/etcd#18978); they are dropped only with that cause, which the
// next storage version check no longer meets.
var bootstrapNoise = map[string]bool{
	"failed to update storage version": true,
	"Failed to detect schema version":  true,
}

// dropEtcdLog decides which of etcd's warnings and errors are noise.
func dropEtcdLog(stopping *atomic.Bool) func(zapcore.Entry, []zapcore.Field) bool {
	return func(ent zapcore.Entry, fields []zapcore.Field) bool {
		switch {
		case noise[ent.Message]:
			return true
		case shutdownNoise[ent.Message]:
			return stopping.Load()
		case bootstrapNoise[ent.Message]:
			for _, f := range fields {
				if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType &&
					(strings.Contains(err.Error(), "missing term information") || strings.Contains(err.Error(), "missing confstate information")) {
					return true
				}
			}
		}
		return false
	}
}

// freeLoopbackAddr picks a free loopback port; a variable so tests can make it race.
var freeLoopbackAddr = func() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// EmbeddedConfig configures an etcd server run inside this process.
type EmbeddedConfig struct {
	// Dir holds the data; a restart with the same Dir (and URLs) keeps it.
	Dir string `yaml:"dir"`
	// ClientURL is the client listen URL, http://127.0.0.1:PORT; "" picks a free port.
	ClientURL string `yaml:"client_url"`
	// PeerURL is the peer listen URL, http://127.0.0.1:PORT; "" picks a free port.
	PeerURL string `yaml:"peer_url"`
	// Name is the member name; "" means "weir".
	Name string `yaml:"name"`
	// Logger receives etcd's warnings and errors; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// QuotaBackendBytes caps the database size; 0 keeps etcd's default of 2 GiB.
	QuotaBackendBytes int64 `yaml:"quota_backend_bytes"`
}

// Embedded is a running single-member etcd server.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	stopping  *atomic.Bool
	closeOnce sync.Once
}

// StartEmbedded starts a single-member etcd server on loopback and returns once it serves
// requests, or with an error when it cannot start before ctx is done.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("metastore: embedded etcd needs a data directory")
	}
	if cfg.Name == "" {
		cfg.Name = "weir"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QuotaBackendBytes < 0 {
		return nil, fmt.Errorf("metastore: negative backend quota %d", cfg.QuotaBackendBytes)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	for attempt := 1; ; attempt++ {
		e, err := startEmbedded(ctx, cfg)
		// Only a port this function picked can have been taken since; a configured one stays taken.
		if err != nil && errors.Is(err, syscall.EADDRINUSE) && (cfg.ClientURL == "" || cfg.PeerURL == "") && attempt < portAttempts {
			cfg.Logger.Warn("embedded etcd port taken, retrying", "attempt", attempt, "err", err)
			continue
		}
		return e, err
	}
}

func startEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	clientURL, err := loopbackURL(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd client url: %w", err)
	}
	peerURL, err := loopbackURL(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd peer url: %w", err)
	}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	ec.TickMs = embeddedTickMs
	ec.ElectionMs = embeddedElectionMs
	ec.AutoCompactionMode = embeddedCompactionMode
	ec.AutoCompactionRetention = embeddedCompactionRetention
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	// Nothing here speaks etcd's JSON gateway; leaving it out makes start-up cheaper.
	ec.EnableGRPCGateway = false
	// etcd logs a great deal at info level; warnings and errors (slow disk, apply too slow,
	// corruption, quota) are what an operator of a standalone instance has to see.
	stopping := new(atomic.Bool)
	core := newSlogCore(cfg.Logger.With("component", "etcd"), zapcore.WarnLevel)
	core.drop = dropEtcdLog(stopping)
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(core))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		stopping.Store(true)
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	case <-e.Server.StopNotify():
		stopping.Store(true)
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: server stopped while starting", cfg.Dir)
	case <-ctx.Done():
		stopping.Store(true)
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, ctx.Err())
	}
	return &Embedded{etcd: e, endpoints: []string{"http://" + e.Clients[0].Addr().String()}, stopping: stopping}, nil
}

// loopbackURL parses a configured http URL on a loopback address, or picks a free loopback
// port when raw is empty. Embedded etcd has no authentication, so it never listens beyond
// this host.
func loopbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, fmt.Errorf("pick free port: %w", err)
		}
		return &url.URL{Scheme: "http", Host: addr}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	ip := net.ParseIP(host)
	if u.Scheme != "http" || ip == nil || !ip.IsLoopback() || port == "" || port == "0" {
		return nil, fmt.Errorf("%q is not http://<loopback ip>:<port>", raw)
	}
	return u, nil
}

// Endpoints returns the client URLs to Dial.
func (e *Embedded) Endpoints() []string { return e.endpoints }

// Err reports errors that stop the server after start; it is closed by Close.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the server and waits until it has released Dir. It is safe to call twice.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.stopping.Store(true)
		e.etcd.Close()
		<-e.etcd.Server.StopNotify()
	})
	return nil
}
