package role

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-db/weir/internal/rpc"
	"github.com/weir-db/weir/internal/session"
)

// peers reaches the live processes of one role through their sessions and internal gRPC,
// dialling each address once.
type peers struct {
	b    *base
	role string
	// dialTimeout bounds a dial (0: the caller's context alone). rpc.Dial waits until the
	// connection is ready, so a dead peer's address would hold a caller for its whole deadline.
	dialTimeout time.Duration
	mu          sync.Mutex
	addrs       map[int64]string
	protocols   map[int64]string
	conns       map[string]*grpc.ClientConn
}

func newPeers(b *base, role string) peers {
	return peers{b: b, role: role, conns: map[string]*grpc.ClientConn{}}
}

// Live returns the IDs of the role's processes with a live session, and remembers their
// addresses.
func (r *peers) Live(ctx context.Context) ([]int64, error) {
	infos, _, err := session.List(ctx, r.b.store, r.b.cfg.RootPath, r.role)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(infos))
	addrs, protocols := map[int64]string{}, map[int64]string{}
	for _, in := range infos {
		ids = append(ids, in.NodeID)
		addrs[in.NodeID] = in.GRPCAddr
		protocols[in.NodeID] = in.Protocol
	}
	r.setLive(addrs, protocols)
	return ids, nil
}

// setLive records the live processes' addresses and protocols.
func (r *peers) setLive(addrs, protocols map[int64]string) {
	r.mu.Lock()
	r.addrs, r.protocols = addrs, protocols
	// A restarted process advertises a new address (its --grpc-listen port is picked at
	// start): connections to addresses no session names any more would otherwise stay open,
	// reconnecting, for this process's lifetime.
	live := map[string]bool{}
	for _, a := range addrs {
		live[a] = true
	}
	var stale []*grpc.ClientConn
	for a, cc := range r.conns {
		if !live[a] {
			stale = append(stale, cc)
			delete(r.conns, a)
		}
	}
	r.mu.Unlock()
	for _, cc := range stale {
		_ = cc.Close()
	}
}

// Protocol is the protocol a live process's session announced at the last Live call.
func (r *peers) Protocol(node int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.protocols[node]
}

// conn returns a connection to a live process, dialling it once. The dial (up to the caller's
// deadline) runs outside the lock, so that calls to other processes do not queue behind a dead
// one.
func (r *peers) conn(ctx context.Context, node int64) (*grpc.ClientConn, error) {
	r.mu.Lock()
	addr, ok := r.addrs[node]
	cc := r.conns[addr]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("role: %s %d has no live session", r.role, node)
	}
	if cc != nil {
		return cc, nil
	}
	dctx := ctx
	if r.dialTimeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, r.dialTimeout)
		defer cancel()
	}
	cc, err := rpc.Dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if cur := r.conns[addr]; cur != nil { // another call dialled meanwhile: keep one
		r.mu.Unlock()
		_ = cc.Close()
		return cur, nil
	}
	r.conns[addr] = cc
	r.mu.Unlock()
	return cc, nil
}

func (r *peers) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cc := range r.conns {
		_ = cc.Close()
	}
}
