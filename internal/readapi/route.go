package readapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/querynode"
)

// routeTTL is how long the proxy trusts the serving map it read from etcd: a shard that moved
// is found at the next read, or at once when a node answers that it does not serve it.
const routeTTL = time.Second

// routes caches which query nodes serve each channel of a collection, read from the shard
// states in etcd (a state counts when it is for the channel's current assignment).
type routes struct {
	mu    sync.Mutex
	byCol map[int64]*routeSet
	next  atomic.Uint64 // spreads requests over replicas
}

type routeSet struct {
	at      time.Time
	serving map[string][]int64
}

func newRoutes() *routes { return &routes{byCol: map[int64]*routeSet{}} }

func (r *routes) forget(coll int64) {
	r.mu.Lock()
	delete(r.byCol, coll)
	r.mu.Unlock()
}

// serving returns the nodes serving each channel of coll.
func (s *Service) serving(ctx context.Context, coll int64) (map[string][]int64, error) {
	s.routes.mu.Lock()
	rs := s.routes.byCol[coll]
	s.routes.mu.Unlock()
	if rs != nil && time.Since(rs.at) < routeTTL {
		return rs.serving, nil
	}
	assigned, err := s.catalog.ListShardAssignments(ctx, coll)
	if err != nil {
		return nil, err
	}
	states, err := s.catalog.ListShardStates(ctx, coll)
	if err != nil {
		return nil, err
	}
	current := map[string]meta.ShardAssignment{}
	for _, a := range assigned {
		current[fmt.Sprintf("%s/%d", a.Channel, a.Replica)] = a
	}
	rs = &routeSet{at: time.Now(), serving: map[string][]int64{}}
	for _, st := range states {
		a, ok := current[fmt.Sprintf("%s/%d", st.Channel, st.Replica)]
		if ok && a.ModRevision == st.Assignment && st.Serving {
			rs.serving[st.Channel] = append(rs.serving[st.Channel], st.NodeID)
		}
	}
	s.routes.mu.Lock()
	s.routes.byCol[coll] = rs
	s.routes.mu.Unlock()
	return rs.serving, nil
}

// onEachShard calls f once for each channel of coll, with a node serving it. When a node fails
// (it does not serve the shard any more, or cannot be reached), the channel's next replica is
// tried; a request error (bad input) is returned at once.
func (s *Service) onEachShard(ctx context.Context, coll *meta.Collection, f func(ctx context.Context, i int, ch string, node int64) error) error {
	serving, err := s.serving(ctx, coll.ID)
	if err != nil {
		return err
	}
	errs := make([]error, len(coll.VChannels))
	var wg sync.WaitGroup
	for i, ch := range coll.VChannels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.onShard(ctx, coll, i, ch, serving[ch], f)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Service) onShard(ctx context.Context, coll *meta.Collection, i int, ch string, nodes []int64, f func(context.Context, int, string, int64) error) error {
	if len(nodes) == 0 {
		s.routes.forget(coll.ID)
		return apierr.New(apierr.Unavailable, "channel %s of collection %s has no query node serving it yet", ch, coll.Name)
	}
	start := int(s.routes.next.Add(1))
	var last error
	for k := range nodes {
		node := nodes[(start+k)%len(nodes)]
		err := f(ctx, i, ch, node)
		if err == nil {
			return nil
		}
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Kind != apierr.Unavailable {
			return err
		}
		last = err
		s.routes.forget(coll.ID)
	}
	if errors.Is(last, querynode.ErrNotServing) {
		return apierr.Wrap(apierr.Unavailable, last, "no replica of channel %s serves", ch)
	}
	return apierr.Wrap(apierr.Unavailable, last, "search channel %s", ch)
}

// someNode is a node serving a shard of coll (0 when none), for the texts that name one.
func (s *Service) someNode(ctx context.Context, coll *meta.Collection) int64 {
	serving, err := s.serving(ctx, coll.ID)
	if err != nil {
		return 0
	}
	for _, ch := range coll.VChannels {
		if nodes := serving[ch]; len(nodes) > 0 {
			return nodes[0]
		}
	}
	return 0
}

// fanOut calls call for each channel of coll on a node serving it (see onEachShard) and
// returns the results in channel order; on failure it releases the records of those it got.
func fanOut[R any](ctx context.Context, s *Service, coll *meta.Collection, call func(ctx context.Context, ch string, node int64) (R, error), fields func(R) arrow.RecordBatch) ([]R, error) {
	results := make([]R, len(coll.VChannels))
	got := make([]bool, len(coll.VChannels))
	err := s.onEachShard(ctx, coll, func(ctx context.Context, i int, ch string, node int64) error {
		res, err := call(ctx, ch, node)
		if err != nil {
			return err
		}
		results[i], got[i] = res, true
		return nil
	})
	if err != nil {
		for i, r := range results {
			if !got[i] {
				continue // no result: a failed channel's is the zero value, nil
			}
			if f := fields(r); f != nil {
				f.Release()
			}
		}
		return nil, err
	}
	return results, nil
}
