package metastore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestOutcomeUnknownWhenServerStops stops the server under a connected client: writes then
// time out after their request timeout, may have been sent, and must say so; a write whose
// context was already done never left and must not. The server then restarts on the same
// directory and URLs with its data, and the same client carries on.
func TestOutcomeUnknownWhenServerStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	srv, err := StartEmbedded(t.Context(), EmbeddedConfig{Dir: dir, Logger: serverLogger()})
	require.NoError(t, err)
	const timeout = 400 * time.Millisecond
	s := dial(t, srv.Endpoints(), func(c *Config) { c.RequestTimeout = timeout })
	ctx := t.Context()
	rev := put(t, s, "k", "before")
	require.NoError(t, srv.Close())

	writes := map[string]func(context.Context) error{
		"put":    func(ctx context.Context) error { _, err := s.Put(ctx, "k", []byte("after")); return err },
		"delete": func(ctx context.Context) error { _, err := s.Delete(ctx, "k"); return err },
		"txn": func(ctx context.Context) error {
			_, err := s.Txn(ctx, []Cmp{ModRevisionEquals("k", rev)}, []Op{Put("k", []byte("after"))})
			return err
		},
	}
	for name, write := range writes {
		for range 2 {
			start := time.Now()
			err := write(ctx)
			require.ErrorIs(t, err, ErrOutcomeUnknown, name)
			// The first request may see the connection drop; later ones time out.
			require.True(t, errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Unavailable,
				"%s: the cause stays wrapped: %v", name, err)
			require.Less(t, time.Since(start), timeout+2*time.Second, "%s: the request gave up at its own timeout", name)
		}

		expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		err = write(expired)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
		require.NotErrorIs(t, err, ErrOutcomeUnknown, "%s: a request never sent has a known outcome", name)
	}

	// Reads are retried by the client until the request's own deadline, and not classified.
	start := time.Now()
	_, err = s.Get(ctx, "k")
	elapsed := time.Since(start)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrOutcomeUnknown, "reads are not classified")
	require.GreaterOrEqual(t, elapsed, timeout*9/10, "the read waited for its own timeout")
	require.Less(t, elapsed, timeout+2*time.Second, "the read gave up at its own timeout")

	srv, err = StartEmbedded(ctx, EmbeddedConfig{
		Dir:       dir,
		ClientURL: srv.Endpoints()[0],
		Logger:    serverLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	require.Eventually(t, func() bool {
		kv, err := s.Get(ctx, "k")
		return err == nil && string(kv.Value) == "before" && kv.ModRevision == rev
	}, 10*time.Second, 20*time.Millisecond, "the restarted server has the data and the client reconnects")
}

func TestDialDeadEndpointFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	start := time.Now()
	_, err = Dial(t.Context(), Config{Endpoints: []string{"http://" + addr}, DialTimeout: 300 * time.Millisecond})
	require.Error(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Contains(t, err.Error(), addr)
}

func TestConfig(t *testing.T) {
	d := Config{Endpoints: []string{"http://127.0.0.1:2379"}}.Defaults()
	require.Equal(t, 5*time.Second, d.DialTimeout)
	require.Equal(t, 5*time.Second, d.RequestTimeout)
	require.NotNil(t, d.Logger)
	require.NoError(t, d.Validate())

	kept := Config{Endpoints: []string{"e"}, DialTimeout: time.Second, RequestTimeout: 2 * time.Second}.Defaults()
	require.Equal(t, time.Second, kept.DialTimeout)
	require.Equal(t, 2*time.Second, kept.RequestTimeout)

	for name, c := range map[string]Config{
		"no endpoints":     {DialTimeout: 1, RequestTimeout: 1},
		"empty endpoint":   {Endpoints: []string{""}, DialTimeout: 1, RequestTimeout: 1},
		"dial timeout":     {Endpoints: []string{"e"}, DialTimeout: -1, RequestTimeout: 1},
		"request timeout":  {Endpoints: []string{"e"}, DialTimeout: 1, RequestTimeout: -1},
		"zero dial":        {Endpoints: []string{"e"}, RequestTimeout: 1},
		"zero request tmo": {Endpoints: []string{"e"}, DialTimeout: 1},
	} {
		require.Error(t, c.Validate(), name)
	}
	_, err := Dial(t.Context(), Config{})
	require.Error(t, err, "Dial validates its configuration")
	_, err = Dial(t.Context(), Config{Endpoints: []string{"unix://"}, DialTimeout: 100 * time.Millisecond})
	require.Error(t, err, "an endpoint the client cannot use")
}

// TestNewEtcdLeavesClientOpen checks that a wrapped client stays the caller's: closing the
// Store stops the Store but not the client.
func TestNewEtcdLeavesClientOpen(t *testing.T) {
	c, err := clientv3.New(clientv3.Config{Endpoints: shared.Endpoints(), DialTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()

	s := NewEtcd(c, Config{})
	require.Same(t, c, s.Client())
	k := fmt.Sprintf("%s/%d", t.Name(), runs.Add(1))
	rev := put(t, s, k, "v")
	require.NoError(t, s.Close())
	_, err = s.Get(t.Context(), k)
	require.ErrorIs(t, err, ErrClosed)

	resp, err := c.Get(t.Context(), k)
	require.NoError(t, err, "the client is still open")
	require.Equal(t, rev, resp.Kvs[0].ModRevision)
}

// TestCompactedDuringPagedRange compacts the store right after the first page of a Range:
// the next pages read at a compacted revision, and Range must say so rather than mix
// revisions.
func TestCompactedDuringPagedRange(t *testing.T) {
	s := dial(t, shared.Endpoints())
	p := fmt.Sprintf("%s/%d/", t.Name(), runs.Add(1))
	putAll(t, s, p, rangePageSize+10, func(int) string { return "v" })
	inner := s.client.KV
	s.client.KV = &compactAfterFirstGet{KV: inner}
	defer func() { s.client.KV = inner }()
	_, _, err := s.Range(t.Context(), p)
	require.ErrorIs(t, err, ErrCompacted)
}

type compactAfterFirstGet struct {
	clientv3.KV
	gets int
}

func (c *compactAfterFirstGet) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	resp, err := c.KV.Get(ctx, key, opts...)
	c.gets++
	if c.gets > 1 || err != nil {
		return resp, err
	}
	// Write once more and compact up to that write: the first page's revision is gone.
	pr, err := c.KV.Put(ctx, "compact-marker", "x")
	if err != nil {
		return nil, err
	}
	if _, err := c.KV.Compact(ctx, pr.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return nil, err
	}
	return resp, nil
}

func TestWriteErrClassification(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		unknown bool
		tooBig  bool
	}{
		{"deadline", context.DeadlineExceeded, true, false},
		{"canceled", context.Canceled, true, false},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), true, false},
		{"server timeout", rpctypes.ErrTimeout, true, false},
		{"leader changed", rpctypes.ErrLeaderChanged, true, false},
		{"no leader", rpctypes.ErrNoLeader, true, false},
		{"stopped", rpctypes.ErrStopped, true, false},
		{"response too large", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), true, false},
		{"unknown", errors.New("boom"), true, false},
		{"too many ops", rpctypes.ErrTooManyOps, false, true},
		{"request too large", rpctypes.ErrRequestTooLarge, false, true},
		{"duplicate key", rpctypes.ErrDuplicateKey, false, false},
		{"no space", rpctypes.ErrNoSpace, false, false},
		{"permission denied", rpctypes.ErrPermissionDenied, false, false},
		{"too many requests", rpctypes.ErrTooManyRequests, false, false},
	} {
		got := writeErr(tc.err)
		require.ErrorIs(t, got, tc.err, tc.name)
		require.Equal(t, tc.unknown, errors.Is(got, ErrOutcomeUnknown), tc.name)
		require.Equal(t, tc.tooBig, errors.Is(got, ErrTxnTooLarge), tc.name)
	}
	require.ErrorIs(t, readErr(rpctypes.ErrCompacted), ErrCompacted)
	require.ErrorIs(t, readErr(rpctypes.ErrFutureRev), ErrFutureRevision)
	require.NotErrorIs(t, readErr(context.DeadlineExceeded), ErrOutcomeUnknown)
}

func TestStoreIsFreshlyAtRevisionOne(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	s := dial(t, srv.Endpoints())
	require.Equal(t, int64(1), revision(t, s))
	require.Equal(t, int64(1), revision(t, NewMemory()))
	require.Equal(t, int64(2), put(t, s, "k", "v"))
}

// TestFailedTxnReportsKeysAtItsRevision checks how a failed Txn learns what its predicates saw
// now that the transaction carries no else-branch: the compared keys are read at the failing
// revision, so a write after the failure does not show; when that revision is compacted away
// the failure is still reported, without the keys.
func TestFailedTxnReportsKeysAtItsRevision(t *testing.T) {
	ctx := t.Context()
	s := dial(t, startServer(t, EmbeddedConfig{}).Endpoints()) // its own: the test compacts
	key := t.Name() + "/k"
	rev1, err := s.Put(ctx, key, []byte("v1"))
	require.NoError(t, err)
	_, err = s.Txn(ctx, []Cmp{ValueEquals(key, []byte("other"))}, []Op{Put(key, []byte("x"))})
	var pe *PredicateError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, rev1, pe.Current[0].ModRevision)
	require.Equal(t, []byte("v1"), pe.Current[0].Value)

	rev2, err := s.Put(ctx, key, []byte("v2"))
	require.NoError(t, err)
	got := s.compared(ctx, []Cmp{ValueEquals(key, []byte("other"))}, rev1)
	require.Equal(t, []byte("v1"), got[0].Value, "read at the failing revision, not the latest")
	require.NoError(t, s.Compact(ctx, rev2))
	require.Nil(t, s.compared(ctx, []Cmp{ValueEquals(key, []byte("other"))}, rev1), "compacted: no details")
	require.ErrorIs(t, newPredicateError(nil, nil, rev1), ErrPredicateFailed)
}
