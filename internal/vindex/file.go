package vindex

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"

	"github.com/weir-db/weir/internal/hnsw"
	"github.com/weir-db/weir/internal/ivf"
)

// An index file:
//
//	magic "WEIRVIDX" | version u32 | header length u32 | header (JSON) |
//	body length u64 | body (the index's encoding) | CRC-32C of everything before it, u32
//
// all little-endian. The header says what the body is and what it was built from; the checksum
// catches a torn or corrupted file, which is then refused (and rebuilt by its data node), never
// searched. Version 1 is the only version; a reader refuses versions it does not know.
const (
	magic   = "WEIRVIDX"
	Version = 1
)

// Header describes an index file.
type Header struct {
	Spec       Spec   `json:"spec"`
	Dim        int    `json:"dim"`
	Rows       int    `json:"rows"`
	Collection int64  `json:"collection"`
	Segment    int64  `json:"segment"`
	Field      int64  `json:"field"`
	IndexID    int64  `json:"index_id"`
	Seed       uint64 `json:"seed"`
	Kernel     string `json:"kernel,omitempty"` // the distance kernels the build ran with, for the record
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns ix's file under h (whose Spec, Dim and Rows are ix's).
func Encode(h Header, ix *Index) ([]byte, error) {
	h.Spec, h.Dim, h.Rows = ix.spec, ix.dim, ix.Len()
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var body []byte
	switch {
	case ix.g != nil:
		body, err = ix.g.AppendBinary(nil)
	case ix.iv != nil:
		body, err = ix.iv.AppendBinary(nil)
	}
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	b := make([]byte, 0, len(magic)+8+len(hj)+8+len(body)+4)
	b = append(b, magic...)
	b = le.AppendUint32(b, Version)
	b = le.AppendUint32(b, uint32(len(hj)))
	b = append(b, hj...)
	b = le.AppendUint64(b, uint64(len(body)))
	b = append(b, body...)
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// ReadHeader checks a file's framing and checksum and returns its header and body.
func ReadHeader(b []byte) (Header, []byte, error) {
	var h Header
	le := binary.LittleEndian
	const fixed = len(magic) + 4 + 4
	if len(b) < fixed+8+4 || !bytes.Equal(b[:len(magic)], []byte(magic)) {
		return h, nil, fmt.Errorf("vindex: not an index file (%d bytes, no %q at the start)", len(b), magic)
	}
	if v := le.Uint32(b[len(magic):]); v != Version {
		return h, nil, fmt.Errorf("vindex: index file version %d; this Weir reads version %d", v, Version)
	}
	stored, computed := le.Uint32(b[len(b)-4:]), crc32.Checksum(b[:len(b)-4], castagnoli)
	if stored != computed {
		return h, nil, fmt.Errorf("vindex: index file checksum mismatch (stored %08x, computed %08x over %d bytes): torn or corrupted", stored, computed, len(b)-4)
	}
	hl := int(le.Uint32(b[len(magic)+4:]))
	if hl > len(b)-fixed-8-4 {
		return h, nil, fmt.Errorf("vindex: index file header of %d bytes in a file of %d", hl, len(b))
	}
	if err := json.Unmarshal(b[fixed:fixed+hl], &h); err != nil {
		return h, nil, fmt.Errorf("vindex: index file header: %w", err)
	}
	rest := b[fixed+hl : len(b)-4]
	if bl := le.Uint64(rest); bl != uint64(len(rest)-8) {
		return h, nil, fmt.Errorf("vindex: index file body of %d bytes, %d present", bl, len(rest)-8)
	}
	return h, rest[8:], nil
}

// Decode reads an index file over the rows it was built from (dim float32s a row, the segment's
// rows in their order), refusing a file that does not check out or does not match the rows.
func Decode(b []byte, vecs []float32, dim int) (*Index, Header, error) {
	h, body, err := ReadHeader(b)
	if err != nil {
		return nil, h, err
	}
	if h.Dim != dim || dim <= 0 || len(vecs) != h.Rows*dim {
		return nil, h, fmt.Errorf("vindex: the index file is of %d rows of dim %d, the segment has %d values of dim %d", h.Rows, h.Dim, len(vecs), dim)
	}
	ix := &Index{spec: h.Spec, dim: dim, vecs: vecs}
	switch h.Spec.Type {
	case HNSW:
		ix.g, err = hnsw.Decode(body, h.Spec.Metric, vecs, dim)
	case IVFFlat, IVFSQ8:
		ix.iv, err = ivf.Decode(body, h.Spec.Metric, vecs, dim)
		if err == nil && ix.iv.SQ8() != (h.Spec.Type == IVFSQ8) {
			err = fmt.Errorf("vindex: a %s header over another IVF body", h.Spec.Type)
		}
	default:
		err = fmt.Errorf("vindex: index file of type %q", h.Spec.Type)
	}
	if err != nil {
		return nil, h, err
	}
	return ix, h, nil
}
