package hnsw

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/weir-db/weir/internal/lebin"
)

// The graph's encoding, little-endian: M, efConstruction, the seed, the row count, the entry
// row and its layer, then each row's level, the layer-0 lists, where each row's upper lists
// start, and the upper lists. The rows are not in it: they are the segment's. Checksums and
// versions are the index file's (package vindex); Decode still checks every count and link, so
// that no file, however made, panics a reader.

// AppendBinary appends the graph's encoding to b.
func (g *Graph) AppendBinary(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(g.m))
	b = le.AppendUint32(b, uint32(g.efc))
	b = le.AppendUint64(b, g.seed)
	b = le.AppendUint32(b, uint32(len(g.levels)))
	b = le.AppendUint32(b, g.entry)
	b = le.AppendUint32(b, uint32(int32(g.top)))
	b = append(b, g.levels...)
	b = lebin.AppendU32s(b, g.links0)
	b = lebin.AppendU32s(b, g.upOff)
	b = le.AppendUint64(b, uint64(len(g.upper)))
	b = lebin.AppendU32s(b, g.upper)
	return b, nil
}

// Decode reads a graph encoded by AppendBinary over the rows it was built from (dim float32s
// each, in the same order), measuring by m.
func Decode(b []byte, m Metric, vecs []float32, dim int) (*Graph, error) {
	sp, err := newSpace(m, vecs, dim)
	if err != nil {
		return nil, err
	}
	r := &lebin.Reader{B: b}
	g := &Graph{sp: sp, m: int(r.U32()), efc: int(r.U32()), seed: r.U64()}
	n := int(r.U32())
	g.entry = r.U32()
	g.top = int(int32(r.U32()))
	if r.Err != nil {
		return nil, r.Err
	}
	if n != sp.rows() {
		return nil, fmt.Errorf("hnsw: the graph has %d rows, the segment %d", n, sp.rows())
	}
	if g.m < 2 || g.m > 1<<16 || g.efc < 1 {
		return nil, fmt.Errorf("hnsw: M %d, efConstruction %d", g.m, g.efc)
	}
	g.m0 = 2 * g.m
	g.levels = append([]uint8(nil), r.Take(n)...)
	if r.Err == nil && n > 0 && (n*(g.m0+1))/(g.m0+1) != n {
		return nil, fmt.Errorf("hnsw: %d rows of %d links overflow", n, g.m0+1)
	}
	g.links0 = r.U32s(n * (g.m0 + 1))
	g.upOff = r.U32s(n)
	upLen := r.U64()
	if upLen > math.MaxInt32 {
		return nil, fmt.Errorf("hnsw: %d upper links", upLen)
	}
	g.upper = r.U32s(int(upLen))
	if r.Err != nil {
		return nil, fmt.Errorf("hnsw: %w", r.Err)
	}
	if len(r.B) != 0 {
		return nil, fmt.Errorf("hnsw: %d bytes after the graph", len(r.B))
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	g.hugePages()
	g.initPool()
	return g, nil
}

// check verifies what search relies on: the entry and every link name a row (at a layer the row
// reaches), no list holds more
// than its layer allows, and each row's upper lists lie inside the upper links.
func (g *Graph) check() error {
	n := len(g.levels)
	if n == 0 {
		if g.top != -1 {
			return fmt.Errorf("hnsw: an empty graph with an entry at layer %d", g.top)
		}
		return nil
	}
	if int(g.entry) >= n || g.top < 0 || g.top > maxLevel || int(g.levels[g.entry]) != g.top {
		return fmt.Errorf("hnsw: entry row %d at layer %d", g.entry, g.top)
	}
	list := func(s []uint32, max, layer int) error {
		if int(s[0]) > max {
			return fmt.Errorf("hnsw: a list of %d links, at most %d", s[0], max)
		}
		for _, v := range s[1 : 1+s[0]] {
			if int(v) >= n || int(g.levels[v]) < layer {
				return fmt.Errorf("hnsw: a link at layer %d to row %d of %d", layer, v, n)
			}
		}
		return nil
	}
	for id := range n {
		if err := list(g.links0[id*(g.m0+1):(id+1)*(g.m0+1)], g.m0, 0); err != nil {
			return err
		}
		l := int(g.levels[id])
		if l > g.top {
			return fmt.Errorf("hnsw: row %d at layer %d above the entry's %d", id, l, g.top)
		}
		if l == 0 {
			continue
		}
		off := int(g.upOff[id])
		if off+l*(g.m+1) > len(g.upper) {
			return fmt.Errorf("hnsw: row %d's upper lists run past the graph", id)
		}
		for j := range l {
			s := g.upper[off+j*(g.m+1) : off+(j+1)*(g.m+1)]
			if err := list(s, g.m, j+1); err != nil {
				return err
			}
		}
	}
	return nil
}
