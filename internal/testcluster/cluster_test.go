package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weir-db/weir/internal/subproc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// failoverTimeout bounds how long a cluster may take to serve again after losing a member:
// nats-server's Raft waits 4 to 9 s before it elects a new leader.
const failoverTimeout = 30 * time.Second

// TestEtcdClusterSurvivesLosingAMember kills the leader of a 3-member cluster with SIGKILL,
// writes and reads through a client on all endpoints, restarts the member and checks that it
// rejoined: its own store holds what was written while it was down.
func TestEtcdClusterSurvivesLosingAMember(t *testing.T) {
	c := StartEtcdCluster(t, 3)
	require.Len(t, c.Endpoints(), 3)
	for i, url := range c.Endpoints() {
		require.Equal(t, []string{url}, c.Member(i).Endpoints())
		require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	}
	cli := etcdClient(t, c.Endpoints())
	etcdPut(t, cli, "a", "1")

	leader := etcdLeader(t, cli, c)
	victim := c.Member(leader)
	victim.Kill()
	etcdPutEventually(t, cli, "b", "2") // the others elect a new leader first
	require.Equal(t, "1", etcdGet(t, cli, "a"))
	require.Equal(t, "2", etcdGet(t, cli, "b"))
	require.NotEqual(t, leader, etcdLeader(t, cli, c))

	pid := victim.Process().PID()
	victim.Restart(t)
	require.NotEqual(t, pid, victim.Process().PID())
	own := etcdClient(t, victim.Endpoints())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	resp, err := own.Get(ctx, "b", clientv3.WithSerializable()) // from its own store, no leader asked
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "2", string(resp.Kvs[0].Value))
	members, err := own.MemberList(ctx)
	require.NoError(t, err)
	require.Len(t, members.Members, 3)
	etcdPut(t, cli, "c", "3")
	require.Equal(t, "3", etcdGet(t, own, "c"))
}

// etcdLeader is the index of the member that leads the cluster, asking the members that run.
func etcdLeader(t testing.TB, cli *clientv3.Client, c *EtcdCluster) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	members, err := cli.MemberList(ctx)
	require.NoError(t, err)
	for _, url := range c.Endpoints() {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, url)
		scancel()
		if err != nil {
			continue // a member that is down
		}
		for _, m := range members.Members {
			if m.ID == st.Leader {
				require.Len(t, m.ClientURLs, 1)
				return slices.Index(c.Endpoints(), m.ClientURLs[0])
			}
		}
	}
	t.Fatal("no member names a leader")
	return -1
}

// etcdPutEventually retries the put until it succeeds, as while a new leader is elected.
func etcdPutEventually(t testing.TB, cli *clientv3.Client, key, value string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, key, value)
		assert.NoError(c, err)
	}, failoverTimeout, 50*time.Millisecond)
}

// TestNATSClusterSurvivesLosingANode kills the leader of a stream with three replicas with
// SIGKILL, publishes and reads through the other nodes, restarts the node and checks that it
// caught up: its replica is current and, made the leader, it serves every message.
func TestNATSClusterSurvivesLosingANode(t *testing.T) {
	c := StartNATSCluster(t, 3, NATSSyncAlways())
	urls := strings.Split(c.URL(), ",")
	require.Len(t, urls, 3)
	for i, url := range urls {
		require.Equal(t, c.Node(i).URL(), url)
	}
	js := jetStream(t, c.URL())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	var want [][]byte
	for i := range 5 {
		want = append(want, []byte("before-"+strconv.Itoa(i)))
		// A new stream of three replicas may still be electing its leader when CreateStream
		// returns ("no response from stream"): retry, deduplicated by message ID.
		publishEventually(t, js, want[i])
	}

	leader := streamLeader(t, js, c)
	victim := c.Node(leader)
	victim.Kill()
	for i := range 5 {
		want = append(want, []byte("while-down-"+strconv.Itoa(i)))
		publishEventually(t, js, want[len(want)-1])
	}
	consumeEventually(t, js, want) // creating a consumer waits for a new meta leader too
	require.NotEqual(t, leader, streamLeader(t, js, c))

	victim.Restart(t)
	name := victim.child.name
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		info, err := streamInfo(t.Context(), js)
		require.NoError(ct, err)
		for _, r := range info.Cluster.Replicas {
			if r.Name == name {
				assert.True(ct, r.Current, "replica on the restarted node is current")
				assert.Zero(ct, r.Lag)
				return
			}
		}
		assert.Equal(ct, name, info.Cluster.Leader, "the restarted node holds a replica")
	}, failoverTimeout, 50*time.Millisecond)
	// Made the leader, the restarted node serves every message from its own store.
	stepDown, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": name}})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		info, err := streamInfo(t.Context(), js)
		require.NoError(ct, err)
		if info.Cluster.Leader == name {
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err = js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN.ORDERS", stepDown)
		assert.NoError(ct, err)
		assert.Fail(ct, "leader is "+info.Cluster.Leader)
	}, failoverTimeout, 200*time.Millisecond)
	consumeEventually(t, js, want)
}

// streamInfo asks for the state of stream ORDERS, which its leader answers.
func streamInfo(ctx context.Context, js jetstream.JetStream) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, info, err := ordersStream(ctx, js)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil {
		return nil, fmt.Errorf("stream ORDERS has no cluster information")
	}
	return info, nil
}

// streamLeader is the index of the node leading stream ORDERS, once it has one.
func streamLeader(t testing.TB, js jetstream.JetStream, c *NATSCluster) int {
	t.Helper()
	var leader string
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		info, err := streamInfo(t.Context(), js)
		require.NoError(ct, err)
		leader = info.Cluster.Leader
		assert.NotEmpty(ct, leader)
	}, failoverTimeout, 50*time.Millisecond)
	for i := range len(c.nodes) {
		if c.Node(i).child.name == leader {
			return i
		}
	}
	t.Fatalf("stream leader %q is no node of the cluster", leader)
	return -1
}

// consumeEventually consumes stream ORDERS until a try succeeds, as while the cluster elects
// new leaders, and checks that it holds want.
func consumeEventually(t testing.TB, js jetstream.JetStream, want [][]byte) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		got, err := tryConsume(ctx, js)
		require.NoError(c, err)
		assert.Equal(c, want, got)
	}, failoverTimeout, 50*time.Millisecond)
}

// publishEventually publishes data until it is acknowledged, with a message ID so that the
// stream keeps one copy however many tries reached it.
func publishEventually(t testing.TB, js jetstream.JetStream, data []byte) {
	t.Helper()
	id := fmt.Sprintf("%x", data)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "orders.new", data, jetstream.WithMsgID(id))
		assert.NoError(c, err)
	}, failoverTimeout, 50*time.Millisecond)
}

// TestNATSStock checks that a stock server tells clients nats-server's default max_payload of
// 1 MB, where the tests' own configuration raises it, and that it refuses NATSSyncAlways.
func TestNATSStock(t *testing.T) {
	n := StartNATS(t, NATSStock())
	require.Equal(t, int64(1048576), jetStream(t, n.URL()).Conn().MaxPayload())
	require.NotContains(t, natsConf(natsNode{name: "x", client: 1}, "/s", natsConfig{stock: true}), "max_payload")

	r := record(t, func(tb testing.TB) { StartNATS(tb, NATSStock(), NATSSyncAlways()) })
	require.True(t, r.Failed())
	require.Contains(t, r.output(), "NATSStock")
}

// TestClustersRefuseDataDirs checks the options a cluster cannot honour.
func TestClustersRefuseDataDirs(t *testing.T) {
	r := record(t, func(tb testing.TB) { StartEtcdCluster(tb, 3, EtcdDataDir(t.TempDir())) })
	require.True(t, r.Failed())
	require.Contains(t, r.output(), "EtcdDataDir")
	r = record(t, func(tb testing.TB) { StartNATSCluster(tb, 3, NATSStoreDir(t.TempDir())) })
	require.True(t, r.Failed())
	require.Contains(t, r.output(), "NATSStoreDir")
	r = record(t, func(tb testing.TB) { StartNATSCluster(tb, 2) })
	require.True(t, r.Failed())
}

// TestClusterPortTakenRetries hands the first start of a cluster a port someone else holds for
// its last member: the others form a cluster of two meanwhile, and the retry must give every
// member new ports and fresh data, or they would still name the peers of the first try.
func TestClusterPortTakenRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	// startTaken runs start with the taken port at index i of the first pick and checks that
	// the cluster runs on a second pick, the last member's log naming the failed bind.
	startTaken := func(t *testing.T, i int, start func(t *testing.T) (urls []string, lastLog string)) {
		calls := 0
		pickPorts = func(n int) ([]int, error) {
			calls++
			ports, err := subproc.FreePorts(n)
			if calls == 1 && err == nil {
				ports[i] = taken
			}
			return ports, err
		}
		t.Cleanup(func() { pickPorts = subproc.FreePorts })
		urls, lastLog := start(t)
		require.Equal(t, 2, calls)
		require.NotContains(t, strings.Join(urls, ",")+",", ":"+strconv.Itoa(taken)+",")
		require.Contains(t, lastLog, "address already in use")
	}

	t.Run("etcd", func(t *testing.T) {
		var c *EtcdCluster
		startTaken(t, 4, func(t *testing.T) ([]string, string) { // the client port of member 2
			c = StartEtcdCluster(t, 3)
			return c.Endpoints(), c.Member(2).Log()
		})
		cli := etcdClient(t, c.Endpoints())
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		members, err := cli.MemberList(ctx)
		require.NoError(t, err)
		require.Len(t, members.Members, 3)
		for _, m := range members.Members {
			require.Len(t, m.ClientURLs, 1)
			require.Contains(t, c.Endpoints(), m.ClientURLs[0], "members of the first try are gone")
		}
	})
	t.Run("nats", func(t *testing.T) {
		startTaken(t, 6, func(t *testing.T) ([]string, string) { // the client port of node 2
			c := StartNATSCluster(t, 3)
			return strings.Split(c.URL(), ","), c.Node(2).Log()
		})
	})
}
