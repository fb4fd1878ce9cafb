package querynode

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/bits-and-blooms/bitset"

	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/expr"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/vsearch"
)

// readSpec is what a read sees: rows at or before timestamp t, of partitions parts (every
// partition when nil), matching filter (every row when nil).
type readSpec struct {
	t             uint64
	parts         map[int64]bool
	filter        expr.Node
	ignoreGrowing bool
}

func (r readSpec) covers(p *piece) bool {
	return (r.parts == nil || r.parts[p.part]) && !(r.ignoreGrowing && p.file == 0)
}

// latest reports whether the read sees row r of p and no later row of its key (search's and
// query's rule). A read that ignores growing rows counts only later rows held in files.
func (r readSpec) latest(p *piece, row int) bool {
	m := p.marks[row]
	if r.ignoreGrowing {
		m.Superseded = p.inFiles[row]
	}
	return m.Latest(p.ts[row], r.t)
}

// each calls f for every row of p the read sees: for count(*) every visible row (latest
// false), for search and query the latest visible row of each key; and that the filter passes.
// Called with mu held.
func (s *shard) each(p *piece, spec readSpec, latest bool, f func(r int)) error {
	var pass *bitset.BitSet
	if spec.filter != nil {
		var err error
		if pass, err = expr.Eval(spec.filter, p.rec); err != nil {
			return err
		}
	}
	for r := range p.rows() {
		m := p.marks[r]
		if latest && !spec.latest(p, r) || !latest && !m.Sees(p.ts[r], spec.t) {
			continue
		}
		if pass == nil || pass.Test(uint(r)) {
			f(r)
		}
	}
	return nil
}

// hit is a row of a piece and its score.
type hit struct {
	p     *piece
	row   int
	score float32
}

func (h hit) key() key { return h.p.keys[h.row] }

// search returns, for each query vector, the k best rows of the shard the read allows, best
// first, one row per primary key. Called with mu held for reading.
func (s *shard) search(field int64, m vsearch.Metric, queries [][]float32, k int, params map[string]any, spec readSpec) ([][]hit, error) {
	dim, ok := s.dims[field]
	if !ok {
		return nil, fmt.Errorf("field %d is not a float vector field of collection %d", field, s.coll.ID)
	}
	for q, vec := range queries {
		if len(vec) != dim {
			return nil, fmt.Errorf("query %d has dim %d, field %d has %d", q, len(vec), field, dim)
		}
	}
	// One top-k per query and partition across every piece, each row scored where it lies: a
	// piece costs nothing beyond its rows, so a shard of many small channel pieces searches like
	// one. Per partition, because a key has one latest row per partition: a key inserted in two
	// partitions must not take two places of one top-k and push a k-th key out. A row's
	// reference is its piece's index and its row.
	tops := make([]map[int64]*vsearch.TopK, len(queries))
	for q := range tops {
		tops[q] = map[int64]*vsearch.TopK{}
	}
	score, batch := m.Kernel(), m.Batch()
	scores, visible := make([]float32, vsearch.BatchRows), make([]bool, vsearch.BatchRows)
	// Growing rows an interim index covers are searched through it, after the loop.
	it := s.interims[field]
	if it != nil && it.ix.Spec().Metric != m {
		it = nil
	}
	var cover map[*piece]int
	var allow interimAllow
	if it != nil {
		cover = make(map[*piece]int, len(it.pieces))
		for k, p := range it.pieces {
			cover[p] = k
		}
		allow = interimAllow{it: it, spec: spec, pass: make([]*bitset.BitSet, len(it.pieces)), skip: make([]bool, len(it.pieces))}
		for k, p := range it.pieces {
			allow.skip[k] = !spec.covers(p)
		}
	}
	index := map[*piece]int{}
	for pi, p := range s.pieces {
		if k, covered := cover[p]; covered {
			index[p] = pi
			if spec.filter != nil && !allow.skip[k] {
				var err error
				if allow.pass[k], err = expr.Eval(spec.filter, p.rec); err != nil {
					return nil, err
				}
			}
			continue
		}
		if !spec.covers(p) || p.rows() == 0 {
			continue
		}
		top := make([]*vsearch.TopK, len(queries))
		for q := range queries {
			if top[q] = tops[q][p.part]; top[q] == nil {
				top[q] = vsearch.NewTopK(m, k)
				tops[q][p.part] = top[q]
			}
		}
		// The hot loop, written out: visibility, the filter, then a score per query.
		var pass *bitset.BitSet
		if spec.filter != nil {
			var err error
			if pass, err = expr.Eval(spec.filter, p.rec); err != nil {
				return nil, err
			}
		}
		if ix := s.indexes[p.seg][field]; ix != nil && ix.piece == p {
			// An indexed segment: the index, over the rows this read may see.
			sp, err := vindex.ParseSearch(ix.ix.Spec(), params, k)
			if err != nil {
				return nil, err
			}
			allow := visibleRows{spec: spec, p: p, pass: pass}
			allowed := -1
			if pass != nil {
				allowed = int(pass.Count())
			}
			for q, vec := range queries {
				hits, err := ix.ix.Search(vec, k, sp, allow, allowed)
				if err != nil {
					return nil, err
				}
				for _, h := range hits {
					top[q].Offer(pi<<32|h.Row, h.Score)
				}
			}
			continue
		}
		vecs := p.vecs[field]
		if batch == nil {
			for r := range p.rows() {
				if !spec.latest(p, r) || pass != nil && !pass.Test(uint(r)) {
					continue
				}
				row := vecs[r*dim : (r+1)*dim]
				for q, vec := range queries {
					top[q].Offer(pi<<32|r, score(vec, row))
				}
			}
			continue
		}
		// Blocks of rows: which may be seen, then one kernel call per query scoring them all.
		for r0 := 0; r0 < p.rows(); r0 += vsearch.BatchRows {
			n := min(vsearch.BatchRows, p.rows()-r0)
			seen := 0
			for i := range n {
				visible[i] = spec.latest(p, r0+i) && (pass == nil || pass.Test(uint(r0+i)))
				if visible[i] {
					seen++
				}
			}
			if seen == 0 {
				continue
			}
			for q, vec := range queries {
				batch(vec, vecs[r0*dim:], scores[:n])
				for i, sc := range scores[:n] {
					if visible[i] {
						top[q].Offer(pi<<32|(r0+i), sc)
					}
				}
			}
		}
	}
	if it != nil {
		// One search for every partition covered: as many hits as partitions times k, so that a
		// key whose rows lie in several partitions cannot push another key out of a partition's
		// top. With a filter or rows of other partitions left out, the rows allowed are counted,
		// so that few of them are scored exactly rather than missed by the lists probed.
		parts := map[int64]bool{}
		allowed, counted := 0, spec.filter != nil
		for k, p := range it.pieces {
			if allow.skip[k] {
				counted = true
				continue
			}
			parts[p.part] = true
			if allow.pass[k] != nil {
				allowed += int(allow.pass[k].Count())
			} else {
				allowed += p.rows()
			}
		}
		if !counted {
			allowed = -1
		}
		allow.parts = max(1, len(parts))
		sp := vindex.SearchParams{Nprobe: interimNprobe(it)}
		for q, vec := range queries {
			hits, err := it.ix.Search(vec, k*allow.parts, sp, allow, allowed)
			if err != nil {
				return nil, err
			}
			for _, h := range hits {
				kp, r := it.locate(h.Row)
				p := it.pieces[kp]
				top := tops[q][p.part]
				if top == nil {
					top = vsearch.NewTopK(m, k)
					tops[q][p.part] = top
				}
				top.Offer(index[p]<<32|r, h.Score)
			}
		}
	}
	out := make([][]hit, len(queries))
	for q, byPart := range tops {
		for _, top := range byPart {
			for _, h := range top.Best() {
				out[q] = append(out[q], hit{p: s.pieces[h.Row>>32], row: h.Row & (1<<32 - 1), score: h.Score})
			}
		}
		out[q] = best(m, out[q], k)
	}
	return out, nil
}

// visibleRows allows the rows of a piece a read may see: its latest visible rows that pass the
// filter. An index asks only about the rows it reaches.
type visibleRows struct {
	spec readSpec
	p    *piece
	pass *bitset.BitSet
}

func (v visibleRows) Test(r uint) bool {
	return v.spec.latest(v.p, int(r)) && (v.pass == nil || v.pass.Test(r))
}

// best sorts hits best first (ties by key, for deterministic answers), keeps the first row of
// each key and at most k rows.
func best(m vsearch.Metric, hits []hit, k int) []hit {
	slices.SortStableFunc(hits, func(a, b hit) int {
		if a.score != b.score {
			if (a.score > b.score) == m.Larger() {
				return -1
			}
			return 1
		}
		return compareKeys(a.key(), b.key())
	})
	seen := map[key]bool{}
	out := hits[:0]
	for _, h := range hits {
		if len(out) == k {
			break
		}
		if k := h.key(); !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	return out
}

func compareKeys(a, b key) int { return cmp.Or(cmp.Compare(a.i, b.i), cmp.Compare(a.s, b.s)) }

// query returns the rows the read allows, one per primary key, in key order, at most limit
// (every row when limit < 0). Called with mu held for reading.
func (s *shard) query(spec readSpec, limit int) ([]hit, error) {
	var out []hit
	if keys, ok := s.pkLookup(spec.filter); ok {
		// `pk in [...]` (or `pk == v`): the keys' rows, found in the key index.
		for _, k := range keys {
			for _, l := range s.byKey[k] {
				if spec.covers(l.p) && spec.latest(l.p, int(l.row)) {
					out = append(out, hit{p: l.p, row: int(l.row)})
				}
			}
		}
	} else {
		for _, p := range s.pieces {
			if !spec.covers(p) {
				continue
			}
			if err := s.each(p, spec, true, func(r int) { out = append(out, hit{p: p, row: r}) }); err != nil {
				return nil, err
			}
		}
	}
	// One row per key: of a key in two partitions, the newest (then the first piece held).
	slices.SortStableFunc(out, func(a, b hit) int {
		return cmp.Or(compareKeys(a.key(), b.key()), cmp.Compare(b.p.ts[b.row], a.p.ts[a.row]))
	})
	out = slices.CompactFunc(out, func(a, b hit) bool { return a.key() == b.key() })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// pkLookup returns the keys of a filter that is `pk in [...]` or `pk == v`, which the key index
// answers without a scan.
func (s *shard) pkLookup(n expr.Node) ([]key, bool) {
	var vals []expr.Value
	switch e := n.(type) {
	case expr.In:
		if e.Not || e.Field.Name != s.pkName {
			return nil, false
		}
		vals = e.Values
	case expr.Compare:
		if e.Op != expr.Eq || e.Field.Name != s.pkName {
			return nil, false
		}
		vals = []expr.Value{e.Value}
	default:
		return nil, false
	}
	out := make([]key, 0, len(vals))
	for _, v := range vals {
		switch {
		case s.strPK && v.Kind == expr.String:
			out = append(out, key{s: v.S})
		case !s.strPK && v.Kind == expr.Int:
			out = append(out, key{i: v.I})
		default:
			return nil, false
		}
	}
	return out, true
}

// count returns how many rows the read sees (count(*): every visible row, a key inserted twice
// counting twice, as Milvus counts). Called with mu held for reading.
func (s *shard) count(spec readSpec) (int64, error) {
	var n int64
	for _, p := range s.pieces {
		if !spec.covers(p) {
			continue
		}
		if err := s.each(p, spec, false, func(int) { n++ }); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// gather builds a record of the named columns holding the rows of hits, in order. Called with
// mu held for reading.
func (s *shard) gather(hits []hit, names []string) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, 0, len(names))
	idx := make([]int, 0, len(names))
	for _, name := range names {
		is := s.sch.FieldIndices(name)
		if len(is) != 1 {
			return nil, fmt.Errorf("collection %d has no field %q", s.coll.ID, name)
		}
		fields = append(fields, s.sch.Field(is[0]))
		idx = append(idx, is[0])
	}
	refs := make([]batch.RowRef, len(hits))
	for i, h := range hits {
		refs[i] = batch.RowRef{Rec: h.p.rec, Row: h.row}
	}
	return batch.Take(fields, idx, refs)
}
