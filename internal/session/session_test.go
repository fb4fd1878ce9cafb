package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weir-db/weir/internal/metastore"
)

func TestRegisterAndList(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	cfg := testConfig(t, 2*time.Second)
	started := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

	// Node 10 first: keys sort "10" < "2", List must sort by number.
	d10 := register(t, c, cfg, Info{Role: "datanode", NodeID: 10, GRPCAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", Version: "v1", Protocol: "lease", StartedAt: started})
	d2 := register(t, c, cfg, Info{Role: "datanode", NodeID: 2})
	co := register(t, c, cfg, Info{Role: "coord", NodeID: 1})

	require.NotZero(t, d10.LeaseID())
	require.NotEqual(t, d10.LeaseID(), d2.LeaseID())
	require.Equal(t, 2*time.Second, d10.TTL())
	require.Nil(t, d10.Err())
	require.False(t, closed(d10.Done()))
	require.False(t, d2.Info().StartedAt.IsZero(), "a zero StartedAt becomes the registration time")

	infos, rev, err := List(t.Context(), kv, cfg.Root, "datanode")
	require.NoError(t, err)
	require.Equal(t, []Info{d2.Info(), d10.Info()}, infos)
	require.Equal(t, Info{Role: "datanode", NodeID: 10, GRPCAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", Version: "v1", Protocol: "lease",
		StartedAt: started, CreateRevision: d10.Info().CreateRevision}, infos[1])
	require.NotZero(t, d10.Info().CreateRevision)
	require.GreaterOrEqual(t, rev, co.Info().CreateRevision)

	all := list(t, kv, cfg.Root, "")
	require.Equal(t, []Info{co.Info(), d2.Info(), d10.Info()}, all, "every role, sorted by role then node id")
	require.Empty(t, list(t, kv, cfg.Root, "proxy"))

	raw, err := kv.Get(t.Context(), Key(cfg.Root, "datanode", 10))
	require.NoError(t, err)
	require.Equal(t, d10.Info().CreateRevision, raw.CreateRevision)
}

func TestListDefaultRoot(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	cfg := testConfig(t, 2*time.Second)
	cfg.Root = ""
	s := register(t, c, cfg, Info{Role: "proxy-" + t.Name(), NodeID: 7})
	require.Equal(t, DefaultRoot+"/sessions/proxy-"+t.Name()+"/7", Key(DefaultRoot, s.Info().Role, 7))
	require.Equal(t, []Info{s.Info()}, list(t, kv, "", s.Info().Role))
}

func TestRegisterRejectsInvalidArguments(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	good := Info{Role: "datanode", NodeID: 1}
	cases := []struct {
		name string
		cfg  func(*Config)
		info Info
	}{
		{"empty role", nil, Info{NodeID: 1}},
		{"slash in role", nil, Info{Role: "data/node", NodeID: 1}},
		{"zero node id", nil, Info{Role: "datanode"}},
		{"negative node id", nil, Info{Role: "datanode", NodeID: -3}},
		{"root with trailing slash", func(c *Config) { c.Root += "/" }, good},
		{"negative ttl", func(c *Config) { c.TTL = -time.Second }, good},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, 2*time.Second)
			root := cfg.Root
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s, err := Register(t.Context(), c, cfg, tc.info)
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, s)
			kvs, _, err := kv.Range(t.Context(), root)
			require.NoError(t, err)
			require.Empty(t, kvs, "nothing written")
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{}.Defaults()
	require.Equal(t, DefaultRoot, cfg.Root)
	require.Equal(t, DefaultTTL, cfg.TTL)
	require.NotNil(t, cfg.Logger)
	require.NoError(t, cfg.Validate())
}

func TestDuplicateIsRefused(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	cfg := testConfig(t, 2*time.Second)
	first := register(t, c, cfg, Info{Role: "datanode", NodeID: 1, GRPCAddr: "127.0.0.1:1111"})

	t.Run("after waiting one ttl", func(t *testing.T) {
		start := time.Now()
		s, err := Register(t.Context(), newClient(t), cfg, Info{Role: "datanode", NodeID: 1, GRPCAddr: "127.0.0.1:2222"})
		require.ErrorIs(t, err, ErrDuplicate)
		require.ErrorContains(t, err, `"127.0.0.1:1111"`, "the error names the holder")
		require.Nil(t, s)
		// It waited for the holder's TTL (plus the margin) before deciding it is alive.
		require.GreaterOrEqual(t, time.Since(start), first.TTL()+expiryMargin)
		// The first session survived more than its TTL on keep-alives, untouched.
		require.Nil(t, first.Err())
		require.Equal(t, []Info{first.Info()}, list(t, kv, cfg.Root, "datanode"))
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		s, err := Register(ctx, c, cfg, Info{Role: "datanode", NodeID: 1})
		require.ErrorIs(t, err, ErrDuplicate)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Nil(t, s)
		require.Equal(t, []Info{first.Info()}, list(t, kv, cfg.Root, "datanode"))
	})
	t.Run("other node ids and roles are not duplicates", func(t *testing.T) {
		register(t, c, cfg, Info{Role: "datanode", NodeID: 2})
		register(t, c, cfg, Info{Role: "proxy", NodeID: 1})
		require.Equal(t, []int64{1, 2}, nodeIDs(list(t, kv, cfg.Root, "datanode")))
	})
}

func TestCloseRemovesSessionAtOnce(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	cfg := testConfig(t, 10*time.Second)
	s := register(t, c, cfg, Info{Role: "datanode", NodeID: 1})
	require.Len(t, list(t, kv, cfg.Root, "datanode"), 1)

	require.NoError(t, s.Close(t.Context()))
	// No polling: the key is gone at the first read after Close, long before its 10 s TTL.
	require.Empty(t, list(t, kv, cfg.Root, "datanode"))
	require.True(t, closed(s.Done()))
	require.ErrorIs(t, s.Err(), ErrClosed)
	require.NoError(t, s.Close(t.Context()), "a second Close does nothing")

	// The node ID is free at once.
	again := register(t, c, cfg, Info{Role: "datanode", NodeID: 1})
	require.Greater(t, again.Info().CreateRevision, s.Info().CreateRevision)
}

// partitioned is a keep-alive that never reaches etcd, while etcd and the client keep running.
func partitioned(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	return nil, errors.New("test: partitioned from etcd")
}

func TestSessionWhoseKeepAliveStopsExpires(t *testing.T) {
	cases := []struct {
		name string
		// cut stops the session's keep-alives and returns its client.
		cut func(t *testing.T, cfg *Config) (c *clientv3.Client, after func())
	}{
		{"client closed", func(t *testing.T, cfg *Config) (*clientv3.Client, func()) {
			c := newClient(t)
			return c, func() { require.NoError(t, c.Close()) }
		}},
		{"partitioned", func(t *testing.T, cfg *Config) (*clientv3.Client, func()) {
			cfg.keepAlive = partitioned
			return newClient(t), func() {}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := store(t)
			cfg := testConfig(t, time.Second)
			c, cut := tc.cut(t, &cfg)
			s := register(t, c, cfg, Info{Role: "datanode", NodeID: 1})
			cut()

			// The key disappears within the TTL (and etcd's expiry check), and whenever a read
			// shows it gone, the session's own process already knows it was lost.
			deadline := time.Now().Add(s.TTL() + 2*time.Second)
			require.Eventually(t, func() bool {
				if len(list(t, kv, cfg.Root, "datanode")) > 0 {
					return false
				}
				require.True(t, closed(s.Done()), "session read as gone before its Done closed")
				return true
			}, time.Until(deadline), 20*time.Millisecond)
			require.ErrorIs(t, s.Err(), ErrLost)

			// The same node ID registers again once the old session expired: a restart.
			again := register(t, newClient(t), cfg, Info{Role: "datanode", NodeID: 1})
			require.Greater(t, again.Info().CreateRevision, s.Info().CreateRevision)
			require.Equal(t, []Info{again.Info()}, list(t, kv, cfg.Root, "datanode"))
		})
	}
}

func TestRestartWaitsForPreviousSessionToExpire(t *testing.T) {
	kv := store(t)
	cfg := testConfig(t, time.Second)
	crashed := cfg
	crashed.keepAlive = partitioned // a process that died without revoking its lease
	old := register(t, newClient(t), crashed, Info{Role: "datanode", NodeID: 4})

	start := time.Now()
	s := register(t, newClient(t), cfg, Info{Role: "datanode", NodeID: 4, Version: "restarted"})
	require.Less(t, time.Since(start), old.TTL()+expiryMargin+time.Second, "waited no longer than the old session could live")
	require.Equal(t, []Info{s.Info()}, list(t, kv, cfg.Root, "datanode"))
	require.Equal(t, "restarted", s.Info().Version)
	require.Greater(t, s.Info().CreateRevision, old.Info().CreateRevision)
	require.Eventually(t, func() bool { return closed(old.Done()) }, time.Second, 10*time.Millisecond)
	require.ErrorIs(t, old.Err(), ErrLost)
	require.Nil(t, s.Err())
}

func TestRevokedLeaseIsLost(t *testing.T) {
	c := newClient(t)
	kv := store(t)
	cfg := testConfig(t, 3*time.Second)
	s := register(t, c, cfg, Info{Role: "datanode", NodeID: 1})

	_, err := c.Revoke(t.Context(), s.LeaseID()) // an operator, or a coordinator evicting the node
	require.NoError(t, err)
	require.Empty(t, list(t, kv, cfg.Root, "datanode"))
	// The next keep-alive (every TTL/3) learns the lease is gone.
	select {
	case <-s.Done():
	case <-time.After(s.TTL()):
		t.Fatal("Done not closed after the lease was revoked")
	}
	require.ErrorIs(t, s.Err(), ErrLost)
	require.NoError(t, s.Close(t.Context()), "closing a lost session whose lease is gone succeeds")
	require.ErrorIs(t, s.Err(), ErrLost, "Close keeps the reason the session ended")
}

func TestKeepAliveAnsweredWithoutTTLIsLost(t *testing.T) {
	cfg := testConfig(t, time.Second)
	cfg.keepAlive = func(context.Context, clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
		return &clientv3.LeaseKeepAliveResponse{TTL: 0}, nil
	}
	s := register(t, newClient(t), cfg, Info{Role: "datanode", NodeID: 1})
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	require.ErrorIs(t, s.Err(), ErrLost)
}

func TestCloseReportsAFailedRevoke(t *testing.T) {
	cases := []struct {
		name string
		// fail makes the revoke fail and returns the context to Close with.
		fail func(t *testing.T, c *clientv3.Client) context.Context
	}{
		{"client closed", func(t *testing.T, c *clientv3.Client) context.Context {
			require.NoError(t, c.Close())
			return t.Context()
		}},
		{"context done", func(t *testing.T, c *clientv3.Client) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t)
			kv := store(t)
			cfg := testConfig(t, time.Second)
			s := register(t, c, cfg, Info{Role: "datanode", NodeID: 1})

			err := s.Close(tc.fail(t, c))
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, "revoke lease")
			require.ErrorIs(t, s.Err(), ErrClosed)
			require.True(t, closed(s.Done()))
			require.Equal(t, err, s.Close(t.Context()), "later calls return the first result")
			// Not revoked, the session still ends with its TTL, since nothing keeps it alive.
			require.Eventually(t, func() bool { return len(list(t, kv, cfg.Root, "datanode")) == 0 }, s.TTL()+2*time.Second, 20*time.Millisecond)
		})
	}
}

func TestRegisterFailsWhenEtcdDoesNotAnswer(t *testing.T) {
	kv := store(t)
	cfg := testConfig(t, time.Second)
	t.Run("context done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Register(ctx, newClient(t), cfg, Info{Role: "datanode", NodeID: 1})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "grant lease")
	})
	t.Run("client closed", func(t *testing.T) {
		c := newClient(t)
		require.NoError(t, c.Close())
		_, err := Register(t.Context(), c, cfg, Info{Role: "datanode", NodeID: 1})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "etcd client closed")
	})
	require.Empty(t, list(t, kv, cfg.Root, ""), "nothing registered")
}

func TestListRejectsMalformedSessions(t *testing.T) {
	cases := []struct {
		name, key, value string
	}{
		{"not json", "weir/sessions/datanode/1", "{"},
		{"other role", "weir/sessions/datanode/1", `{"role":"proxy","node_id":1}`},
		{"other node id", "weir/sessions/datanode/1", `{"role":"datanode","node_id":2}`},
		{"node id not a number", "weir/sessions/datanode/x", `{"role":"datanode","node_id":1}`},
		{"no node id in key", "weir/sessions/datanode", `{"role":"datanode","node_id":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := metastore.NewMemory()
			t.Cleanup(func() { require.NoError(t, m.Close()) })
			_, err := m.Put(t.Context(), "weir/sessions/datanode/3", []byte(`{"role":"datanode","node_id":3}`))
			require.NoError(t, err)
			_, err = m.Put(t.Context(), tc.key, []byte(tc.value))
			require.NoError(t, err)
			infos, _, err := List(t.Context(), m, "weir", "")
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, tc.key)
			require.Nil(t, infos, "no partial list a coordinator could act on")
		})
	}
	t.Run("store error", func(t *testing.T) {
		m := metastore.NewMemory()
		require.NoError(t, m.Close())
		_, _, err := List(t.Context(), m, "weir", "datanode")
		require.ErrorIs(t, err, metastore.ErrClosed)
	})
}
