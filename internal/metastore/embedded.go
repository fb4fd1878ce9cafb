package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
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
	// ratio of 5) make a start take a few hundred milliseconds instead of up to two seconds.
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
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(cfg.Logger.With("component", "etcd"), zapcore.WarnLevel)))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	case <-e.Server.StopNotify():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: server stopped while starting", cfg.Dir)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, ctx.Err())
	}
	return &Embedded{etcd: e, endpoints: []string{"http://" + e.Clients[0].Addr().String()}}, nil
}

// loopbackURL parses a configured http URL on a loopback address, or picks a free loopback
// port when raw is empty. Embedded etcd has no authentication, so it never listens beyond
// this host.
func loopbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick free port: %w", err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
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
		e.etcd.Close()
		<-e.etcd.Server.StopNotify()
	})
	return nil
}
