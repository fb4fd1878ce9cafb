package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// DefaultRoot is the key prefix when Config.Root is empty, as the metastore's default root.
	DefaultRoot = "weir"
	// DefaultTTL is the lease TTL when Config.TTL is zero: a crashed process is noticed within
	// 10 s, and a keep-alive every 3.3 s is a negligible load on etcd.
	DefaultTTL = 10 * time.Second

	// expiryMargin is added to a conflicting lease's TTL when Register waits for it to expire:
	// etcd's lessor looks for expired leases every 500 ms and then deletes their keys through
	// raft, so a lease is gone a little after its TTL, not exactly at it.
	expiryMargin = time.Second
	// revokeTimeout bounds the revoke of a lease Register no longer needs, made even when the
	// caller's context is done.
	revokeTimeout = 5 * time.Second
)

var (
	// ErrDuplicate means a live session with the same role and node ID exists: another
	// process runs with this node ID, or a previous run's session did not expire in time.
	ErrDuplicate = errors.New("session: a live session with this role and node id exists")
	// ErrLost is wrapped by Err after Done closed because the lease expired, was revoked by
	// someone else, or no keep-alive was answered within its TTL.
	ErrLost = errors.New("session: lost")
	// ErrClosed is wrapped by Err after Close.
	ErrClosed = errors.New("session: closed")
	// ErrInvalid is returned for a Config or Info that cannot be registered.
	ErrInvalid = errors.New("session: invalid argument")
	// ErrCorrupt is returned by List for a session key whose value is not a session of that key.
	ErrCorrupt = errors.New("session: malformed session record")
)

// Info describes one process. It is stored as JSON; fields are only ever added, so processes
// of different versions read each other's sessions during a rolling upgrade.
type Info struct {
	Role     string `json:"role"`
	NodeID   int64  `json:"node_id"`
	GRPCAddr string `json:"grpc_addr,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Version  string `json:"version,omitempty"`
	// Protocol names the write protocol the process speaks (meta.ProtocolCurrent or
	// meta.ProtocolLegacy),
	// so that a coordinator can tell which data nodes need the legacy services.
	Protocol  string    `json:"protocol,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// CreateRevision is the metastore revision that created the session key, set by Register
	// and List and not stored. Every registration gets a new one, so it tells a restarted
	// process from one that kept running.
	CreateRevision int64 `json:"-"`
}

// Config configures Register.
type Config struct {
	// Root is the key prefix; "" means DefaultRoot.
	Root string `yaml:"root"`
	// TTL is how long the session outlives its last keep-alive; 0 means DefaultTTL. etcd
	// counts whole seconds, so it is rounded up to one, and etcd may raise it to its minimum.
	TTL    time.Duration `yaml:"ttl"`
	Logger *slog.Logger  `yaml:"-"`

	// keepAlive replaces clientv3's KeepAliveOnce in tests, to cut a session off from etcd
	// while etcd and the client keep running (a partition).
	keepAlive func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)
}

// Defaults fills the zero fields.
func (c Config) Defaults() Config {
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Root == "" || strings.HasSuffix(c.Root, "/"):
		return fmt.Errorf("%w: root %q must be non-empty without a trailing slash", ErrInvalid, c.Root)
	case c.TTL <= 0:
		return fmt.Errorf("%w: ttl %v must be positive", ErrInvalid, c.TTL)
	}
	return nil
}

func (i Info) validate() error {
	switch {
	case i.Role == "" || strings.Contains(i.Role, "/"):
		return fmt.Errorf("%w: role %q must be non-empty without a slash", ErrInvalid, i.Role)
	case i.NodeID <= 0:
		return fmt.Errorf("%w: node id %d must be positive", ErrInvalid, i.NodeID)
	}
	return nil
}

// Key returns the key of the session of role and nodeID under root.
func Key(root, role string, nodeID int64) string {
	return prefix(root, role) + strconv.FormatInt(nodeID, 10)
}

// prefix returns the prefix of every session of role, or of every session when role is "".
func prefix(root, role string) string {
	if role == "" {
		return root + "/sessions/"
	}
	return root + "/sessions/" + role + "/"
}

// Session is this process's registration. It keeps its lease alive until Close, or until it
// is lost, which Done reports.
type Session struct {
	client *clientv3.Client
	key    string
	info   Info
	lease  clientv3.LeaseID
	ttl    time.Duration // as granted by etcd
	logger *slog.Logger
	keep   func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)

	stop     context.CancelFunc // stops the keep-alive loop
	loopDone chan struct{}      // closed when the keep-alive loop returned
	done     chan struct{}      // closed when the session ended
	mu       struct {
		sync.Mutex
		err error // why the session ended
	}
	closeOnce sync.Once
	closeErr  error
}

// Register creates the session of info.Role and info.NodeID on client c and keeps it alive
// until Close; ctx bounds only the registration. A zero info.StartedAt becomes the current
// time. The session uses c until Close returns: close c only after.
//
// When a live session with the same role and node ID exists, Register waits for it to expire
// — a restarted process usually finds its previous run's session, which etcd removes within
// that session's TTL — polling with reads, at most the conflicting lease's granted TTL plus a
// second. If the session is still there then, its process keeps it alive: Register returns an
// error wrapping ErrDuplicate. Waiting always (rather than on an option) means a restart needs
// no special flag and a misconfigured duplicate still fails, after one TTL. When ctx ends
// while waiting, the error wraps both ErrDuplicate and ctx's error.
func Register(ctx context.Context, c *clientv3.Client, cfg Config, info Info) (*Session, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := info.validate(); err != nil {
		return nil, err
	}
	if info.StartedAt.IsZero() {
		info.StartedAt = time.Now().UTC()
	}
	info.CreateRevision = 0
	value, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("session: encode %+v: %w", info, err)
	}
	key := Key(cfg.Root, info.Role, info.NodeID)
	if err := c.Ctx().Err(); err != nil {
		return nil, fmt.Errorf("register %s: etcd client closed: %w", key, err)
	}
	ttl := int64((cfg.TTL + time.Second - 1) / time.Second)
	poll := min(max(cfg.TTL/8, 50*time.Millisecond), time.Second)

	var waitUntil time.Time
	for {
		s, cur, err := tryRegister(ctx, c, cfg, key, ttl, info, value)
		if s != nil || err != nil {
			return s, err
		}
		holder := describe(cur)
		if waitUntil.IsZero() {
			granted := cfg.TTL
			if cur != nil {
				if r, err := c.TimeToLive(ctx, clientv3.LeaseID(cur.Lease)); err == nil && r.GrantedTTL > 0 {
					granted = time.Duration(r.GrantedTTL) * time.Second
				}
			}
			waitUntil = time.Now().Add(granted + expiryMargin)
			cfg.Logger.Info("waiting for previous session to expire", "key", key, "holder", holder, "wait", granted+expiryMargin)
		}
		if err := waitAbsent(ctx, c, key, waitUntil, poll); err != nil {
			return nil, fmt.Errorf("register %s: %w (%s): %w", key, ErrDuplicate, holder, err)
		}
	}
}

// tryRegister makes one attempt. It returns the session, or the conflicting key when a
// session exists (nil when it vanished in between), or an error.
func tryRegister(ctx context.Context, c *clientv3.Client, cfg Config, key string, ttl int64, info Info, value []byte) (*Session, *mvccpb.KeyValue, error) {
	// The lease's expiry on etcd is at least its grant time plus TTL, and the grant happens
	// after this instant: the session's first deadline.
	sent := time.Now()
	g, err := c.Grant(ctx, ttl)
	if err != nil {
		return nil, nil, fmt.Errorf("register %s: grant lease: %w", key, err)
	}
	resp, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(g.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		// The put may have applied; revoking the lease deletes the key if it did, so no
		// session is left behind whatever happened.
		cleanup(ctx, c, cfg.Logger, key, g.ID)
		return nil, nil, fmt.Errorf("register %s: %w", key, err)
	}
	if !resp.Succeeded {
		cleanup(ctx, c, cfg.Logger, key, g.ID)
		var cur *mvccpb.KeyValue
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			cur = kvs[0]
		}
		return nil, cur, nil
	}
	info.CreateRevision = resp.Header.Revision
	runCtx, stop := context.WithCancel(context.Background())
	s := &Session{
		client:   c,
		key:      key,
		info:     info,
		lease:    g.ID,
		ttl:      time.Duration(g.TTL) * time.Second,
		logger:   cfg.Logger.With("session", key, "lease", fmt.Sprintf("%x", int64(g.ID))),
		keep:     cfg.keepAlive,
		stop:     stop,
		loopDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.keep == nil {
		s.keep = c.KeepAliveOnce
	}
	go s.keepAlive(runCtx, sent.Add(s.ttl))
	s.logger.Info("session registered", "ttl", s.ttl, "revision", info.CreateRevision)
	return s, nil, nil
}

// describe names the holder of a conflicting session for errors and logs.
func describe(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "held by a session that just ended"
	}
	var i Info
	_ = json.Unmarshal(kv.Value, &i) // a zero Info still says which lease holds the key
	return fmt.Sprintf("held by lease %x since revision %d, grpc %q, started %s", kv.Lease, kv.CreateRevision, i.GRPCAddr, i.StartedAt.Format(time.RFC3339))
}

// waitAbsent polls key until it is absent (nil), until is reached (ErrDuplicate's cause is
// then "still live"), or ctx ends. It reads instead of watching: one read per poll costs etcd
// less than a watch stream, and sessions never use Watch.
func waitAbsent(ctx context.Context, c *clientv3.Client, key string, until time.Time, poll time.Duration) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		r, err := c.Get(ctx, key, clientv3.WithCountOnly())
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err == nil && r.Count == 0:
			return nil
		case !time.Now().Before(until):
			return errors.New("still live after its ttl")
		}
		// A failed read is retried like a present key: the deadline bounds both.
		t.Reset(min(poll, time.Until(until)))
	}
}

// revoke revokes a lease; a lease already gone is not an error.
func revoke(ctx context.Context, c *clientv3.Client, logger *slog.Logger, key string, id clientv3.LeaseID) error {
	if err := c.Ctx().Err(); err != nil {
		// A closed client retries for seconds before it fails; the answer is known now.
		return fmt.Errorf("revoke lease %x of %s: etcd client closed: %w", int64(id), key, err)
	}
	if _, err := c.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		logger.Warn("revoke session lease", "key", key, "lease", fmt.Sprintf("%x", int64(id)), "err", err)
		return fmt.Errorf("revoke lease %x of %s: %w", int64(id), key, err)
	}
	return nil
}

// cleanup revokes a lease Register no longer needs, even when ctx is done (often the reason);
// best effort, since a lease that is not revoked expires by itself.
func cleanup(ctx context.Context, c *clientv3.Client, logger *slog.Logger, key string, id clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	_ = revoke(rctx, c, logger, key, id) // logged by revoke
}

// keepAlive renews the lease every TTL/3 until stopped or lost. deadline is the instant before
// which etcd cannot have expired the lease: the send time of the last answered renewal plus
// the TTL etcd granted in it. When it passes without a newer answer, the session is lost.
//
// It uses KeepAliveOnce rather than clientv3's KeepAlive stream because only here is the send
// time known: KeepAlive measures its deadline from when an answer arrives, which is after etcd
// renewed, so it would report a loss only after etcd could already have expired the lease.
func (s *Session) keepAlive(ctx context.Context, deadline time.Time) {
	defer close(s.loopDone)
	interval := s.ttl / 3
	retry := max(s.ttl/10, 50*time.Millisecond)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		if !sent.Before(deadline) {
			s.end(fmt.Errorf("%w: no keep-alive answered within the %v ttl", ErrLost, s.ttl))
			return
		}
		kctx, cancel := context.WithDeadline(ctx, deadline)
		resp, err := s.keep(kctx, s.lease)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && resp.TTL > 0:
			deadline = sent.Add(time.Duration(resp.TTL) * time.Second)
			t.Reset(interval)
		case err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.end(fmt.Errorf("%w: lease expired or revoked", ErrLost))
			return
		default:
			s.logger.Warn("session keep-alive", "err", err, "lost_in", time.Until(deadline))
			t.Reset(max(min(retry, time.Until(deadline)), 0))
		}
	}
}

// end records why the session ended and closes Done, once.
func (s *Session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.err != nil {
		return
	}
	s.mu.err = err
	close(s.done)
	if errors.Is(err, ErrLost) {
		s.logger.Error("session lost", "err", err)
	}
}

// Info returns what the session registered, with its CreateRevision.
func (s *Session) Info() Info { return s.info }

// LeaseID returns the etcd lease the session key is attached to.
func (s *Session) LeaseID() clientv3.LeaseID { return s.lease }

// TTL returns the lease TTL etcd granted.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done is closed when the session ends: lost (Err wraps ErrLost) or closed (ErrClosed).
//
// A loss means other processes may already read this node as dead: the coordinator will
// reassign its channels. The process must stop its role's writes — a data node releases every
// channel (its fenced writes would fail anyway once the leases move), a coordinator stops
// assigning — then call Close (which revokes the lease if etcd still has it, so the next
// Register need not wait for it to expire) and either exit or Register again and start its
// role afresh. The simplest correct choice, and Milvus's, is to exit and be restarted.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session is live, then why it ended.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.err
}

// Close stops the keep-alive and revokes the lease, so the session disappears at once. If the
// revoke fails (etcd unreachable) the session still disappears when its TTL runs out; the
// error says so. Later calls return the first call's result.
func (s *Session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.loopDone
		s.end(ErrClosed)
		s.closeErr = revoke(ctx, s.client, s.logger, s.key, s.lease)
		if s.closeErr == nil {
			s.logger.Info("session closed")
		}
	})
	return s.closeErr
}
