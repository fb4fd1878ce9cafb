package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// rangePageSize is how many keys one Range request asks etcd for. A page of 1,000 keys with
// values of a few KiB stays far below gRPC's message limits.
const rangePageSize = 1000

// Config configures a client of an external etcd cluster.
type Config struct {
	Endpoints []string `yaml:"endpoints"`
	// DialTimeout bounds Dial, including the first round trip that proves the cluster answers.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds every request (each page of a Range is one request) unless the
	// caller's context has an earlier deadline.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	Logger         *slog.Logger  `yaml:"-"`
}

// Defaults fills the zero fields: 5 s dial and request timeouts and a logger that discards.
func (c Config) Defaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("metastore: no etcd endpoints")
	case c.DialTimeout <= 0:
		return fmt.Errorf("metastore: dial timeout %v must be positive", c.DialTimeout)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("metastore: request timeout %v must be positive", c.RequestTimeout)
	}
	for _, ep := range c.Endpoints {
		if ep == "" {
			return errors.New("metastore: empty etcd endpoint")
		}
	}
	return nil
}

// Etcd is a Store over an etcd cluster.
type Etcd struct {
	client  *clientv3.Client
	owned   bool // Close closes client only when Dial created it
	timeout time.Duration
	closed  atomic.Bool
}

var _ Store = (*Etcd)(nil)

// Dial connects to the etcd cluster in cfg and returns once it has answered a linearizable
// read, or fails within cfg.DialTimeout when it does not. Close closes the connection.
func Dial(ctx context.Context, cfg Config) (*Etcd, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		// The client logs every retry at warn level; the errors we return already carry what
		// failed, so only its errors reach the log.
		Logger: zap.New(newSlogCore(cfg.Logger.With("component", "etcd-client"), zapcore.ErrorLevel)),
		// Keepalives notice a dead server while no request is in flight.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("dial etcd %v: %w", cfg.Endpoints, err)
	}
	// clientv3.New does not wait for a connection; a count-only read proves that a quorum
	// answers, and fails within DialTimeout when nothing listens.
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := c.Get(pctx, "\x00", clientv3.WithCountOnly()); err != nil {
		_ = c.Close() // the probe error is the one worth returning
		return nil, fmt.Errorf("dial etcd %v: %w", cfg.Endpoints, err)
	}
	e := NewEtcd(c, cfg)
	e.owned = true
	return e, nil
}

// NewEtcd wraps a client the caller already has. The caller keeps ownership: Close stops
// this Store but does not close c, because c may be shared (for example with session leases).
func NewEtcd(c *clientv3.Client, cfg Config) *Etcd {
	cfg = cfg.Defaults()
	return &Etcd{client: c, timeout: cfg.RequestTimeout}
}

// Close makes later calls return ErrClosed and closes the client if Dial created it.
func (e *Etcd) Close() error {
	if e.closed.Swap(true) || !e.owned {
		return nil
	}
	if err := e.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("close etcd client: %w", err)
	}
	return nil
}

// Client returns the underlying client, for what this package does not cover (leases).
func (e *Etcd) Client() *clientv3.Client { return e.client }

// request derives the context of one request: the caller's, cut to RequestTimeout.
func (e *Etcd) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.timeout)
}

// ready reports why nothing may be sent: the store is closed or ctx is already done. Either
// way the request never leaves, so a write failing here has a known outcome.
func (e *Etcd) ready(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Get implements Store.
func (e *Etcd) Get(ctx context.Context, key string) (KV, error) {
	if err := checkKey(key); err != nil {
		return KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	if err := e.ready(ctx); err != nil {
		return KV{}, fmt.Errorf("get %q: %w", key, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.client.Get(rctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("get %q: %w", key, readErr(err))
	}
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("get %q: %w", key, ErrNotFound)
	}
	kv := resp.Kvs[0]
	return KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}, nil
}

// Range implements Store. It reads rangePageSize keys per request, every page at the
// revision of the first, so the result is one consistent snapshot of any size; the returned
// revision is that snapshot's (the AtRevision argument when given). With WithMinModRev,
// etcd still scans the rest of the prefix on every page; the result only holds changed keys.
func (e *Etcd) Range(ctx context.Context, prefix string, opts ...RangeOption) ([]KV, int64, error) {
	if err := e.ready(ctx); err != nil {
		return nil, 0, fmt.Errorf("range %q: %w", prefix, err)
	}
	o := applyRangeOptions(opts)
	key, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	if prefix == "" {
		// The whole keyspace: from the smallest key, with etcd's "to the end" range end.
		key, end = "\x00", "\x00"
	}
	rev := o.rev
	var kvs []KV
	for {
		page := []clientv3.OpOption{clientv3.WithLimit(rangePageSize)}
		if !o.exact {
			page = append(page, clientv3.WithRange(end))
		}
		if rev > 0 {
			page = append(page, clientv3.WithRev(rev))
		}
		if o.minModRev > 0 {
			page = append(page, clientv3.WithMinModRev(o.minModRev))
		}
		if o.keysOnly {
			page = append(page, clientv3.WithKeysOnly())
		}
		rctx, cancel := e.request(ctx)
		resp, err := e.client.Get(rctx, key, page...)
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("range %q: %w", prefix, readErr(err))
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			kvs = append(kvs, KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, nil
		}
		// The next page starts right after the last key returned.
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Revision implements Store.
func (e *Etcd) Revision(ctx context.Context) (int64, error) {
	if err := e.ready(ctx); err != nil {
		return 0, fmt.Errorf("revision: %w", err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	// Any linearizable read carries the current revision in its header.
	resp, err := e.client.Get(rctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("revision: %w", readErr(err))
	}
	return resp.Header.Revision, nil
}

// Put implements Store.
func (e *Etcd) Put(ctx context.Context, key string, value []byte) (int64, error) {
	if err := CheckTxn(nil, []Op{Put(key, value)}); err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	if err := e.ready(ctx); err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.client.Put(rctx, key, string(value))
	if err != nil {
		return 0, fmt.Errorf("put %q: %w", key, writeErr(err))
	}
	return resp.Header.Revision, nil
}

// Delete implements Store.
func (e *Etcd) Delete(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, fmt.Errorf("delete %q: %w", key, err)
	}
	if err := e.ready(ctx); err != nil {
		return 0, fmt.Errorf("delete %q: %w", key, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.client.Delete(rctx, key)
	if err != nil {
		return 0, fmt.Errorf("delete %q: %w", key, writeErr(err))
	}
	return resp.Header.Revision, nil
}

// Txn implements Store. A failed predicate is reported with the compared keys as they were at
// the revision the predicates were evaluated at, read after the failure. The transaction
// itself carries no else-branch: etcd takes every operation of a request into its raft entry
// and apply loop whichever branch runs, and reading the compared keys there made a fenced
// commit of one segment about 5% slower (`weir bench meta`) to speed up failures, which are
// rare.
func (e *Etcd) Txn(ctx context.Context, cmps []Cmp, ops []Op) (int64, error) {
	if err := CheckTxn(cmps, ops); err != nil {
		return 0, fmt.Errorf("txn: %w", err)
	}
	if err := e.ready(ctx); err != nil {
		return 0, fmt.Errorf("txn: %w", err)
	}
	ifs := make([]clientv3.Cmp, len(cmps))
	for i, c := range cmps {
		ifs[i] = etcdCmp(c)
	}
	thens := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		thens[i] = etcdOp(o)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.client.Txn(rctx).If(ifs...).Then(thens...).Commit()
	if err != nil {
		return 0, fmt.Errorf("txn: %w", writeErr(err))
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	rev := resp.Header.Revision
	return 0, newPredicateError(cmps, e.compared(rctx, cmps, rev), rev)
}

// compared reads the keys of cmps at rev, in one request. When that read fails (the revision
// was compacted meanwhile, etcd went away) it returns nil: the predicate still failed, only
// its details are missing, and PredicateError reports that.
func (e *Etcd) compared(ctx context.Context, cmps []Cmp, rev int64) []KV {
	gets := make([]clientv3.Op, len(cmps))
	for i, c := range cmps {
		gets[i] = clientv3.OpGet(c.key, clientv3.WithRev(rev))
	}
	resp, err := e.client.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return nil
	}
	cur := make([]KV, len(cmps))
	for i, c := range cmps {
		cur[i] = KV{Key: c.key}
		if r := resp.Responses[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			kv := r.Kvs[0]
			cur[i] = KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
		}
	}
	return cur
}

// Compact discards history before rev: reads at an older revision then fail with
// ErrCompacted. It waits until the compaction is applied to the backend.
func (e *Etcd) Compact(ctx context.Context, rev int64) error {
	if err := e.ready(ctx); err != nil {
		return fmt.Errorf("compact %d: %w", rev, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	if _, err := e.client.Compact(rctx, rev, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact %d: %w", rev, readErr(err))
	}
	return nil
}

func etcdCmp(c Cmp) clientv3.Cmp {
	switch c.kind {
	case cmpValueEquals:
		return clientv3.Compare(clientv3.Value(c.key), "=", string(c.value))
	case cmpModRevisionEquals:
		return clientv3.Compare(clientv3.ModRevision(c.key), "=", c.rev)
	default: // cmpKeyAbsent; CheckTxn rejected zero Cmps
		return clientv3.Compare(clientv3.CreateRevision(c.key), "=", 0)
	}
}

func etcdOp(o Op) clientv3.Op {
	switch o.kind {
	case opPut:
		return clientv3.OpPut(o.key, string(o.value))
	case opDelete:
		return clientv3.OpDelete(o.key)
	default: // opDeletePrefix; CheckTxn rejected zero Ops and empty prefixes
		return clientv3.OpDelete(o.key, clientv3.WithPrefix())
	}
}

// readErr maps the errors of a read; a failed read changes nothing, so it needs no
// outcome classification.
func readErr(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%w: %w", ErrCompacted, err)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("%w: %w", ErrFutureRevision, err)
	}
	return err
}

// rejected lists the etcd errors returned before a request is proposed to raft, or by the
// apply step without changing anything: a write failing with one of them was not applied.
// Every other error (timeouts, cancellation, Unavailable, leader changes, a lost connection)
// may follow a commit, so it is reported as ErrOutcomeUnknown.
var rejected = []error{
	rpctypes.ErrEmptyKey,
	rpctypes.ErrKeyNotFound,
	rpctypes.ErrValueProvided,
	rpctypes.ErrLeaseProvided,
	rpctypes.ErrDuplicateKey,
	rpctypes.ErrNoSpace,
	rpctypes.ErrTooManyRequests,
	rpctypes.ErrPermissionDenied,
	rpctypes.ErrAuthFailed,
	rpctypes.ErrAuthNotEnabled,
	rpctypes.ErrInvalidAuthToken,
	rpctypes.ErrAuthOldRevision,
	rpctypes.ErrUserEmpty,
}

// writeErr classifies the error of a write that was sent.
func writeErr(err error) error {
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
		// A server configured below etcd's defaults; it rejected the request unapplied.
		return fmt.Errorf("%w: %w", ErrTxnTooLarge, err)
	}
	for _, r := range rejected {
		if errors.Is(err, r) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}
