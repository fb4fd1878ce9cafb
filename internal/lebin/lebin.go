// Package lebin reads and appends the little-endian arrays Weir's index encodings are made of,
// with every length checked: a Reader that runs past its bytes records an error instead of
// panicking, so a damaged encoding is an error, never a crash.
package lebin

import (
	"encoding/binary"
	"errors"
	"math"
)

// ErrShort is a Reader run past the end of its bytes.
var ErrShort = errors.New("lebin: the encoding ends early")

// AppendU32s appends vs, 4 bytes each.
func AppendU32s(b []byte, vs []uint32) []byte {
	b = append(b, make([]byte, 4*len(vs))...)
	out := b[len(b)-4*len(vs):]
	for i, v := range vs {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return b
}

// AppendF32s appends vs as their IEEE 754 bits, 4 bytes each.
func AppendF32s(b []byte, vs []float32) []byte {
	b = append(b, make([]byte, 4*len(vs))...)
	out := b[len(b)-4*len(vs):]
	for i, v := range vs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return b
}

// Reader reads from B; after the first read past its end, Err is ErrShort and every read
// returns zero values.
type Reader struct {
	B   []byte
	Err error
}

// Take returns the next n bytes.
func (r *Reader) Take(n int) []byte {
	if r.Err != nil || n < 0 || n > len(r.B) {
		r.Err = ErrShort
		return nil
	}
	out := r.B[:n]
	r.B = r.B[n:]
	return out
}

// U32 reads a uint32.
func (r *Reader) U32() uint32 {
	if b := r.Take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// U64 reads a uint64.
func (r *Reader) U64() uint64 {
	if b := r.Take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// U32s reads n uint32s.
func (r *Reader) U32s(n int) []uint32 {
	if r.Err != nil || n < 0 || n > len(r.B)/4 {
		r.Err = ErrShort
		return nil
	}
	b := r.Take(4 * n)
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

// F32s reads n float32s.
func (r *Reader) F32s(n int) []float32 {
	u := r.U32s(n)
	if u == nil {
		return nil
	}
	out := make([]float32, n)
	for i, v := range u {
		out[i] = math.Float32frombits(v)
	}
	return out
}
