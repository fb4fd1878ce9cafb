// Package hnsw is Weir's hierarchical navigable small world graph (Malkov & Yashunin, "Efficient
// and robust approximate nearest neighbor search using Hierarchical Navigable Small World
// graphs", 2016/2018): inserting by greedy descent and an efConstruction-bounded beam search per
// layer (algorithms 1 and 2), neighbours chosen by the heuristic of algorithm 4, search by greedy
// descent then an ef-bounded beam search at layer 0 (algorithm 5).
//
// The graph borrows the rows it indexes (a segment's vector column, as the query node holds it)
// and stores only links: a file holds the graph, the rows come from the segment. Builds are
// single-threaded and deterministic for a seed: the same rows, parameters and seed give the same
// graph, byte for byte.
//
// The inner loops (greedy, layer, insert, connect, heuristic, the distance, the heaps) are marked
// //go:norace: under the race detector, as the e2e suite builds Weir, instrumenting every row
// read and link write made index builds of the SDK tests' 100,000 rows several times slower,
// enough to pass go test's ten minutes on two busy cores. What they touch is a graph written only
// by its one building goroutine, or a built graph only read; the code handing graphs between
// goroutines (vindex, the query node, the builder) stays instrumented.
package hnsw

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/weir-db/weir/internal/distance"
	"github.com/weir-db/weir/internal/hugepage"
	"github.com/weir-db/weir/internal/vsearch"
)

// Params are a graph's build parameters, Milvus's names: M, efConstruction.
type Params struct {
	M              int // links per row above layer 0; 2M at layer 0
	EfConstruction int // beam width while inserting
	Seed           uint64
	// Stop, when set, is asked every 1024 rows whether to give up (the build then fails).
	Stop func() bool
}

// ErrStopped is a build given up because Params.Stop said so.
var ErrStopped = errors.New("hnsw: build stopped")

// maxLevel caps a row's top layer: with M ≥ 2, 2^32 rows reach about layer 32.
const maxLevel = 32

// Graph is a built HNSW graph over borrowed rows.
type Graph struct {
	sp     *space
	m, m0  int
	efc    int
	seed   uint64
	levels []uint8  // each row's top layer
	links0 []uint32 // layer 0: per row, a count then m0 slots
	upOff  []uint32 // per row, where its layers 1..level start in upper (rows with level 0: unused)
	upper  []uint32 // layers ≥ 1: per row and layer, a count then m slots
	entry  uint32
	top    int // the entry's layer; -1 for an empty graph
	pool   sync.Pool
	huge   [2]hugepage.Region // the rows and links0, advised while the graph lives
}

// Build indexes every row of vecs (dim float32s each) under m with p. The graph keeps vecs.
func Build(m Metric, vecs []float32, dim int, p Params) (*Graph, error) {
	if p.M < 2 || p.EfConstruction < 1 {
		return nil, fmt.Errorf("hnsw: M %d and efConstruction %d must be at least 2 and 1", p.M, p.EfConstruction)
	}
	sp, err := newSpace(m, vecs, dim)
	if err != nil {
		return nil, err
	}
	n := sp.rows()
	g := &Graph{sp: sp, m: p.M, m0: 2 * p.M, efc: p.EfConstruction, seed: p.Seed, top: -1,
		levels: make([]uint8, n), links0: make([]uint32, n*(2*p.M+1)), upOff: make([]uint32, n)}
	g.hugePages()
	g.initPool()
	rng := rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	mult := 1 / math.Log(float64(p.M))
	b := &builder{g: g, vis: g.visits()}
	for i := range n {
		if i%1024 == 1023 && p.Stop != nil && p.Stop() {
			return nil, ErrStopped
		}
		// -ln(U)·mL with U in (0, 1]: the level distribution of the paper.
		l := min(int(-math.Log(1-rng.Float64())*mult), maxLevel)
		b.insert(uint32(i), l)
	}
	g.pool.Put(b.vis)
	return g, nil
}

// hugePages asks for huge pages under the rows and the layer-0 lists, both read scattered over
// their whole length by a search (see package hugepage), until the graph is unreachable. Best
// effort: a kernel that refuses leaves the memory as it was.
func (g *Graph) hugePages() {
	rows, _ := hugepage.Floats(g.sp.vecs)
	links, _ := hugepage.Uint32s(g.links0)
	g.huge = [2]hugepage.Region{rows, links}
	if rows.Len()+links.Len() > 0 {
		runtime.AddCleanup(g, func(rs [2]hugepage.Region) {
			for _, r := range rs {
				r.Release()
			}
		}, g.huge)
	}
}

// Len is the number of rows indexed.
func (g *Graph) Len() int { return len(g.levels) }

// slots returns row id's list at layer l: a count, then the layer's capacity of links.
func (g *Graph) slots(id uint32, l int) []uint32 {
	if l == 0 {
		i := int(id) * (g.m0 + 1)
		return g.links0[i : i+g.m0+1]
	}
	i := int(g.upOff[id]) + (l-1)*(g.m+1)
	return g.upper[i : i+g.m+1]
}

// links returns row id's neighbours at layer l.
func (g *Graph) links(id uint32, l int) []uint32 {
	s := g.slots(id, l)
	return s[1 : 1+s[0]]
}

// setLinks replaces row id's neighbours at layer l.
func (g *Graph) setLinks(id uint32, l int, ns []cand) {
	s := g.slots(id, l)
	s[0] = uint32(len(ns))
	for j, c := range ns {
		s[1+j] = c.id
	}
}

// addLink appends to to id's neighbours at layer l, reporting false when the list is full.
func (g *Graph) addLink(id uint32, l int, to uint32) bool {
	s := g.slots(id, l)
	if int(s[0]) == len(s)-1 {
		return false
	}
	s[0]++
	s[s[0]] = to
	return true
}

func (g *Graph) maxLinks(l int) int {
	if l == 0 {
		return g.m0
	}
	return g.m
}

// visited marks the rows one search has reached: a tag per row, the search's epoch when reached,
// so that a new search starts by incrementing the epoch rather than clearing n marks.
type visited struct {
	tags  []uint16
	epoch uint16
}

func (v *visited) next() {
	v.epoch++
	if v.epoch == 0 {
		clear(v.tags)
		v.epoch = 1
	}
}

// visit marks id and reports whether it was already marked.
func (v *visited) visit(id uint32) bool {
	if v.tags[id] == v.epoch {
		return true
	}
	v.tags[id] = v.epoch
	return false
}

func (g *Graph) initPool() {
	n := len(g.levels)
	g.pool.New = func() any { return &visited{tags: make([]uint16, n)} }
}

func (g *Graph) visits() *visited {
	v := g.pool.Get().(*visited)
	v.next()
	return v
}

// greedy walks layers from g.top down to above layer stop, each time to the nearest neighbour
// until none is nearer (ef = 1), and returns where it ends.
//
//go:norace
func (g *Graph) greedy(q query, stop int) cand {
	cur := cand{id: g.entry, d: g.sp.d(q, g.entry)}
	for l := g.top; l > stop; l-- {
		for changed := true; changed; {
			changed = false
			for _, n := range g.links(cur.id, l) {
				if d := g.sp.d(q, n); d < cur.d {
					cur, changed = cand{d: d, id: n}, true
				}
			}
		}
	}
	return cur
}

// layer is algorithm 2: the ef nearest rows to q at layer l reachable from ep, as a far-first
// heap. Only rows allow holds (all when nil) enter the results, but the search walks through
// every row: a filtered-out row still leads to allowed ones.
//
//go:norace
func (g *Graph) layer(q query, ep cand, ef, l int, allow vsearch.Allow, vis *visited, cands *nearHeap, res *farHeap, scratch *[]uint32) {
	*cands = (*cands)[:0]
	res.h = res.h[:0]
	vis.visit(ep.id)
	cands.push(ep)
	bound := float32(math.Inf(1))
	if allow == nil || allow.Test(uint(ep.id)) {
		res.push(ep)
		bound = ep.d
	}
	for len(*cands) > 0 {
		c := (*cands)[0]
		if c.d > bound && res.len() >= ef {
			break
		}
		cands.pop()
		if len(*cands) > 0 && l == 0 {
			// The next candidate's list, while this one's rows are scored: at a million rows
			// expanding a candidate is otherwise a cache miss of its own.
			distance.Prefetch(unsafe.Pointer(&g.links0[int((*cands)[0].id)*(g.m0+1)]))
		}
		// First the rows not reached yet; then each scored while the rows prefetchAhead after it
		// are fetched, so that their memory latency overlaps the scoring (at a million rows
		// most are not in cache).
		fresh := (*scratch)[:0]
		for _, n := range g.links(c.id, l) {
			if !vis.visit(n) {
				fresh = append(fresh, n)
			}
		}
		*scratch = fresh
		for i := 0; i < len(fresh) && i < prefetchAhead; i++ {
			distance.Prefetch(unsafe.Pointer(&g.sp.vecs[int(fresh[i])*g.sp.dim]))
		}
		for i, n := range fresh {
			if j := i + prefetchAhead; j < len(fresh) {
				distance.Prefetch(unsafe.Pointer(&g.sp.vecs[int(fresh[j])*g.sp.dim]))
			}
			d := g.sp.d(q, n)
			if res.len() < ef || d < bound {
				cands.push(cand{d: d, id: n})
				if allow == nil || allow.Test(uint(n)) {
					res.push(cand{d: d, id: n})
					if res.len() > ef {
						res.pop()
					}
					bound = res.farthest()
				}
			}
		}
	}
}

// prefetchAhead is how many fresh rows ahead of the one scored are prefetched. Measured at
// 1M × 128 (ef 64 and 128): 1 ahead 4,520 and 3,350 queries/s, 4 ahead 4,870 and 3,610, 10
// ahead 4,730 and 3,350; prefetching every fresh row before scoring any (the earlier loop)
// 4,440 and 3,300, its burst of misses stalling on the core's few line-fill buffers.
const prefetchAhead = 4

// Search returns the k rows nearest q (as Milvus scores them), nearest first, among the rows
// allow holds (every row when nil), with a beam of max(ef, k).
func (g *Graph) Search(v []float32, k, ef int, allow vsearch.Allow) ([]Hit, error) {
	if len(v) != g.sp.dim {
		return nil, fmt.Errorf("hnsw: the query has dim %d, the graph %d", len(v), g.sp.dim)
	}
	if k <= 0 || g.top < 0 {
		return nil, nil
	}
	q := g.sp.query(v)
	ep := g.greedy(q, 0)
	vis := g.visits()
	var cands nearHeap
	var res farHeap
	var scratch []uint32
	g.layer(q, ep, max(ef, k), 0, allow, vis, &cands, &res, &scratch)
	g.pool.Put(vis)
	for res.len() > k {
		res.pop()
	}
	out := make([]Hit, res.len())
	for i := len(out) - 1; i >= 0; i-- {
		c := res.pop()
		out[i] = Hit{Row: int(c.id), Score: g.sp.score(c.d)}
	}
	return out, nil
}

// Hit is a row found and its score under the graph's metric, as Milvus reports it.
type Hit = vsearch.Hit

// builder holds the scratch space of inserts, reused from one row to the next.
type builder struct {
	g     *Graph
	vis   *visited
	cands nearHeap
	res   farHeap
	sel   []cand
	tmp   []cand
	fresh []uint32
}

// insert is algorithm 1 for row id at level l.
//
//go:norace
func (b *builder) insert(id uint32, l int) {
	g := b.g
	g.levels[id] = uint8(l)
	if l > 0 {
		g.upOff[id] = uint32(len(g.upper))
		g.upper = append(g.upper, make([]uint32, l*(g.m+1))...)
	}
	if g.top < 0 {
		g.entry, g.top = id, l
		return
	}
	q := g.sp.rowQuery(id)
	ep := g.greedy(q, l)
	for lc := min(l, g.top); lc >= 0; lc-- {
		b.vis.next()
		g.layer(q, ep, g.efc, lc, nil, b.vis, &b.cands, &b.res, &b.fresh)
		b.tmp = b.tmp[:0]
		for b.res.len() > 0 {
			b.tmp = append(b.tmp, b.res.pop())
		}
		slices.Reverse(b.tmp) // nearest first
		b.sel = b.heuristic(b.tmp, g.m, b.sel[:0])
		g.setLinks(id, lc, b.sel)
		for _, n := range b.sel {
			b.connect(n.id, id, n.d, lc)
		}
		ep = b.sel[0]
	}
	if l > g.top {
		g.entry, g.top = id, l
	}
}

// connect links from to to at layer l (d is their distance); a full list is chosen again by the
// heuristic among its rows and to.
//
//go:norace
func (b *builder) connect(from, to uint32, d float32, l int) {
	g := b.g
	if g.addLink(from, l, to) {
		return
	}
	q := g.sp.rowQuery(from)
	cs := append(b.tmp[:0], cand{d: d, id: to})
	for _, n := range g.links(from, l) {
		cs = append(cs, cand{d: g.sp.d(q, n), id: n})
	}
	slices.SortFunc(cs, byDistance)
	kept := b.heuristic(cs, g.maxLinks(l), nil)
	g.setLinks(from, l, kept)
	b.tmp = cs[:0]
}

func byDistance(a, b cand) int {
	switch {
	case a.d < b.d:
		return -1
	case a.d > b.d:
		return 1
	}
	return int(a.id) - int(b.id)
}

// heuristic is algorithm 4 (without extending or keeping pruned candidates, as hnswlib): of the
// candidates, nearest first, keep one when it is nearer to the row than to every one kept
// before it, up to m. It spreads links across directions, which keeps clusters connected.
//
//go:norace
func (b *builder) heuristic(cs []cand, m int, out []cand) []cand {
	if len(cs) <= m {
		return append(out, cs...)
	}
	for _, c := range cs {
		if len(out) == m {
			break
		}
		q := b.g.sp.rowQuery(c.id)
		good := true
		for _, s := range out {
			if b.g.sp.d(q, s.id) < c.d {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
		}
	}
	return out
}

// Bytes is the memory the graph holds beyond the borrowed rows.
func (g *Graph) Bytes() int64 {
	return int64(len(g.levels) + 4*(len(g.links0)+len(g.upOff)+len(g.upper)+len(g.sp.inv)+len(g.sp.aug)) + 2*len(g.levels))
}
