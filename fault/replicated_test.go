//go:build fault

package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/weirtest"
)

// TestReplicatedStreams: Weir on a three-member etcd cluster and a three-node JetStream
// cluster (every process given all endpoints), its channels' streams created with three
// replicas (weir run proxy --wal-replicas 3). Under inserts and deletes the test sends SIGKILL
// to a NATS node, starts it again, then to an etcd member, and starts it again: in the short
// form the leader of the first channel's stream and the etcd leader, in the long form random
// ones. The workload rides through the elections (4-9 s for JetStream); requests that are not
// acknowledged meanwhile count as failed, never as lost.
func TestReplicatedStreams(t *testing.T) {
	setup := weirtest.Setup{
		// A longer session TTL than the other scenarios': a client whose etcd member died
		// reconnects to another and the cluster may elect a leader meanwhile.
		Servers: weirtest.Servers{Replicated: true, SessionTTL: 5 * time.Second},
		Proxy:   []string{"--wal-replicas", "3"},
	}
	scenarioWith(t, "replicated: a JetStream node and an etcd member SIGKILLed (3 + 3)", setup, func(r *run) {
		requireReplicated(r)

		node := r.rng.IntN(3)
		if !long() {
			node = streamLeader(r)
		}
		// The workload goes on through the election, with one node down.
		killAndRestart(r, r.c.NATSCluster.Node(node), func() { r.w.WaitAcked(r, 500) })
		r.w.WaitAcked(r, 500)

		member := r.rng.IntN(3)
		if !long() {
			member = etcdLeader(r)
		}
		killAndRestart(r, r.c.EtcdCluster.Member(member), func() { r.w.WaitAcked(r, 500) })
		requireReplicated(r)
	})
}

// jetStream is a JetStream client of the cluster's NATS nodes, closed at the end of the test.
func jetStream(r *run) jetstream.JetStream {
	nc, err := nats.Connect(r.c.NATSURL())
	require.NoError(r, err)
	r.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(r, err)
	return js
}

// channelStream is the stream info of a channel: the stream wal describes as the channel's.
func channelStream(ctx context.Context, js jetstream.JetStream, channel string) (*jetstream.StreamInfo, error) {
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if info.Config.Description == "weir DML channel "+channel {
			return info, nil
		}
	}
	if err := streams.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no stream of channel %s", channel)
}

// requireReplicated waits until every channel's stream has three replicas, a leader and two
// current followers.
func requireReplicated(r *run) {
	js := jetStream(r)
	for _, ch := range r.coll.VChannels {
		var last string
		require.Eventually(r, func() bool {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			info, err := channelStream(ctx, js, ch)
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
			if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					return false
				}
			}
			return true
		}, 60*time.Second, 100*time.Millisecond, "the stream of %s is not replicated three times: %s", ch, &last)
	}
}

// streamLeader is the index of the NATS node leading the first channel's stream.
func streamLeader(r *run) int {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	info, err := channelStream(ctx, jetStream(r), r.coll.VChannels[0])
	require.NoError(r, err)
	// A node's server_name is its process's name (testcluster).
	for i, n := range r.c.NATSCluster.Nodes() {
		if n.Process().Name() == info.Cluster.Leader {
			return i
		}
	}
	r.Fatalf("the leader %s of the stream of %s is no node of the cluster", info.Cluster.Leader, r.coll.VChannels[0])
	return 0
}

// etcdLeader is the index of the etcd cluster's leader.
func etcdLeader(r *run) int {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	for i, m := range r.c.EtcdCluster.Members() {
		st, err := r.c.Store.Client().Status(ctx, m.Endpoints()[0])
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	r.Fatal("no etcd member is the leader")
	return 0
}
