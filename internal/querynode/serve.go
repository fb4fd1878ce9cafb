package querynode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

	"github.com/weir-db/weir/internal/expr"
	"github.com/weir-db/weir/internal/vsearch"
)

// ErrNotServing is a request for a shard this node does not serve (yet): the caller tries
// another replica.
var ErrNotServing = errors.New("querynode: shard not served here")

// serving returns the shard of channel ch of collection coll, if it serves.
func (n *Node) serving(coll int64, ch string) (*served, *shard, error) {
	n.mu.Lock()
	sv := n.shards[ch]
	n.mu.Unlock()
	if sv == nil || sv.a.CollectionID != coll {
		return nil, nil, fmt.Errorf("%w: channel %s of collection %d on node %d", ErrNotServing, ch, coll, n.cfg.NodeID)
	}
	sh := sv.sh.Load()
	if sh == nil {
		return nil, nil, fmt.Errorf("%w: channel %s is loading on node %d (%d%%)", ErrNotServing, ch, n.cfg.NodeID, sv.progress.Load())
	}
	return sv, sh, nil
}

// waitConsistent waits until the shard has applied what the request's consistency level asks
// for (R5):
//   - Strong: every position the log held when the request arrived (asked of JetStream now),
//     so every write acknowledged before it is visible; an idle channel answers at once;
//   - Session (and Customized): as Strong. A session's guarantee timestamp cannot stand for
//     a position: proxies stamp writes with their own clocks, so a message stamped after the
//     guarantee can sit before the session's own write in the channel (review of issue 13);
//     the session's writes were acknowledged before its read, so they lie below the log's end;
//   - Bounded: the log's end as read at most Staleness ago (by the node's periodic check, or
//     else read now, as Strong);
//   - Eventually: at once.
//
// A shard released meanwhile (moved, released, restarted) answers ErrNotServing.
func (n *Node) waitConsistent(ctx context.Context, sv *served, sh *shard, c Consistency) error {
	var target uint64
	switch c.Level {
	case commonpb.ConsistencyLevel_Eventually:
		return nil
	case commonpb.ConsistencyLevel_Bounded:
		if e := sv.end.Load(); e != nil && time.Since(e.at) <= n.cfg.Staleness {
			target = e.pos
		}
	}
	if target == 0 {
		end, err := n.log.LastPosition(ctx, sh.ch)
		if err != nil {
			return fmt.Errorf("read the end of channel %s: %w", sh.ch, err)
		}
		sv.end.Store(&logEnd{pos: end, at: time.Now()})
		target = end
	}
	for {
		pos, _, moved := sh.position()
		if pos >= target {
			return nil
		}
		if err := sv.failed(); err != nil {
			return fmt.Errorf("%w: channel %s stopped at %d: %v", ErrNotServing, sh.ch, pos, err)
		}
		select {
		case <-moved:
		case <-sh.closed:
			return fmt.Errorf("%w: channel %s was released on node %d", ErrNotServing, sh.ch, n.cfg.NodeID)
		case <-ctx.Done():
			return fmt.Errorf("channel %s applied up to %d of %d: %w", sh.ch, pos, target, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// spec builds a read's view of the shard. Called with mu held for reading.
func (s *shard) spec(r ShardRequest) (readSpec, error) {
	spec := readSpec{t: s.consumedTs, ignoreGrowing: r.IgnoreGrowing}
	if r.Consistency.ReadTs != 0 {
		spec.t = r.Consistency.ReadTs
	}
	if len(r.Partitions) > 0 {
		spec.parts = map[int64]bool{}
		for _, p := range r.Partitions {
			spec.parts[p] = true
		}
	}
	if r.Filter != "" {
		f, err := expr.Parse(r.Filter, s.coll.Schema)
		if err != nil {
			return readSpec{}, err
		}
		spec.filter = f
	}
	return spec, nil
}

// read runs f on the shard r names, once it is as consistent as r asks, under the shard's read
// lock (one state of the shard from start to end), with the read's view of it.
func (n *Node) read(ctx context.Context, kind string, r ShardRequest, f func(sh *shard, spec readSpec) error) error {
	start := time.Now()
	defer func() { n.m.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds()) }()
	sv, sh, err := n.serving(r.CollectionID, r.Channel)
	if err != nil {
		return err
	}
	if err := n.waitConsistent(ctx, sv, sh, r.Consistency); err != nil {
		return err
	}
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.released {
		return fmt.Errorf("%w: channel %s was released on node %d", ErrNotServing, sh.ch, n.cfg.NodeID)
	}
	spec, err := sh.spec(r)
	if err != nil {
		return err
	}
	return f(sh, spec)
}

// Search searches one shard.
func (n *Node) Search(ctx context.Context, req *SearchRequest) (*SearchResult, error) {
	metric, err := vsearch.ParseMetric(req.Metric)
	if err != nil {
		return nil, err
	}
	out := &SearchResult{}
	err = n.read(ctx, "search", req.ShardRequest, func(sh *shard, spec readSpec) error {
		found, err := sh.search(req.FieldID, metric, req.Vectors, req.K, req.Params, spec)
		if err != nil {
			return err
		}
		out.Hits = make([][]Hit, len(found))
		var all []hit
		for q, hits := range found {
			out.Hits[q] = make([]Hit, len(hits))
			for i, h := range hits {
				k := h.key()
				out.Hits[q][i] = Hit{IntKey: k.i, StrKey: k.s, Score: h.score}
			}
			all = append(all, hits...)
		}
		out.Fields, err = sh.gather(all, req.Output)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Query queries one shard, or counts its rows.
func (n *Node) Query(ctx context.Context, req *QueryRequest) (*QueryResult, error) {
	out := &QueryResult{}
	err := n.read(ctx, "query", req.ShardRequest, func(sh *shard, spec readSpec) error {
		if req.Count {
			c, err := sh.count(spec)
			out.Count = c
			return err
		}
		rows, err := sh.query(spec, req.Limit)
		if err != nil {
			return err
		}
		out.Keys, out.Count = make([]Hit, len(rows)), int64(len(rows))
		for i, h := range rows {
			k := h.key()
			out.Keys[i] = Hit{IntKey: k.i, StrKey: k.s}
		}
		out.Fields, err = sh.gather(rows, req.Output)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ShardInfo describes a shard this node serves, for tests and operators.
type ShardInfo struct {
	Channel  string
	Rows     int64
	Files    int
	Segments int
	Consumed uint64
	// Indexed is how many segments are searched through a vector index; IndexBytes their
	// indexes' memory.
	Indexed    int
	IndexBytes int64
	// Interim is how many growing rows interim indexes cover.
	Interim int
}

// Shards lists the shards serving on this node.
func (n *Node) Shards() []ShardInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []ShardInfo
	for ch, sv := range n.shards {
		sh := sv.sh.Load()
		if sh == nil {
			continue
		}
		sh.mu.RLock()
		indexed := 0
		for _, byField := range sh.indexes {
			if len(byField) > 0 {
				indexed++
			}
		}
		interim := 0
		for _, it := range sh.interims {
			interim = max(interim, it.starts[len(it.starts)-1])
		}
		out = append(out, ShardInfo{Channel: ch, Rows: sh.rowsN, Files: len(sh.files), Segments: len(sh.segs), Consumed: sh.consumed,
			Indexed: indexed, IndexBytes: sh.indexBytes(), Interim: interim})
		sh.mu.RUnlock()
	}
	return out
}
