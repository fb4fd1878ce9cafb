package ivf

import (
	"encoding/binary"
	"fmt"

	"github.com/bits-and-blooms/bitset"

	"github.com/weir-db/weir/internal/lebin"
	"github.com/weir-db/weir/internal/vsearch"
)

// The index's encoding, little-endian: nlist, whether SQ8, the seed, the row count, then the
// centroids, the list offsets, the ids and (SQ8) the per-dimension minimum and step and the
// codes. The rows are the segment's. Checksums and versions are the index file's (package
// vindex); Decode still checks every count and id, so that no file, however made, panics a
// reader or returns a row twice.

// AppendBinary appends the index's encoding to b.
func (ix *Index) AppendBinary(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(ix.nlist))
	sq8 := byte(0)
	if ix.sq8 {
		sq8 = 1
	}
	b = append(b, sq8)
	b = le.AppendUint64(b, ix.seed)
	b = le.AppendUint32(b, uint32(ix.Len()))
	b = lebin.AppendF32s(b, ix.centroids)
	b = lebin.AppendU32s(b, ix.offs)
	b = lebin.AppendU32s(b, ix.ids)
	if ix.sq8 {
		b = lebin.AppendF32s(b, ix.vmin)
		b = lebin.AppendF32s(b, ix.step)
		b = append(b, ix.codes...)
	}
	return b, nil
}

// Decode reads an index encoded by AppendBinary over the rows it was built from (dim float32s
// each, in the same order), measuring by m.
func Decode(b []byte, m vsearch.Metric, vecs []float32, dim int) (*Index, error) {
	ix, err := newIndex(m, vecs, dim)
	if err != nil {
		return nil, err
	}
	r := &lebin.Reader{B: b}
	head := r.Take(17)
	if r.Err != nil {
		return nil, fmt.Errorf("ivf: %w", r.Err)
	}
	le := binary.LittleEndian
	nlist, sq8, n := int(le.Uint32(head)), head[4], int(le.Uint32(head[13:]))
	ix.seed = le.Uint64(head[5:])
	switch {
	case n != ix.Len():
		return nil, fmt.Errorf("ivf: the index has %d rows, the segment %d", n, ix.Len())
	case sq8 > 1:
		return nil, fmt.Errorf("ivf: quantizer %d", sq8)
	case n == 0 && nlist != 0, n > 0 && (nlist < 1 || nlist > n):
		return nil, fmt.Errorf("ivf: %d lists over %d rows", nlist, n)
	}
	ix.nlist, ix.sq8 = nlist, sq8 == 1
	if nlist > len(r.B)/(4*dim) {
		return nil, fmt.Errorf("ivf: %w", lebin.ErrShort)
	}
	ix.centroids = r.F32s(nlist * dim)
	ix.offs = r.U32s(nlist + 1)
	ix.ids = r.U32s(n)
	if ix.sq8 {
		ix.vmin = r.F32s(dim)
		ix.step = r.F32s(dim)
		if n > len(r.B)/dim {
			return nil, fmt.Errorf("ivf: %w", lebin.ErrShort)
		}
		ix.codes = append([]uint8(nil), r.Take(n*dim)...)
	}
	if r.Err != nil {
		return nil, fmt.Errorf("ivf: %w", r.Err)
	}
	if len(r.B) != 0 {
		return nil, fmt.Errorf("ivf: %d bytes after the index", len(r.B))
	}
	// The lists must partition the rows: offsets rising from 0 to n, each row in one list once.
	if ix.offs[0] != 0 || int(ix.offs[nlist]) != n {
		return nil, fmt.Errorf("ivf: list offsets from %d to %d over %d rows", ix.offs[0], ix.offs[nlist], n)
	}
	for l := range nlist {
		if ix.offs[l] > ix.offs[l+1] {
			return nil, fmt.Errorf("ivf: list %d ends before it starts", l)
		}
	}
	seen := bitset.New(uint(n))
	for _, id := range ix.ids {
		if int(id) >= n || seen.Test(uint(id)) {
			return nil, fmt.Errorf("ivf: row %d of %d listed twice or out of range", id, n)
		}
		seen.Set(uint(id))
	}
	return ix, nil
}
