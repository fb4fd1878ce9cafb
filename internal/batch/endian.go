package batch

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Vector columns are FixedSizeBinary whose bytes are defined as little-endian values (float32
// for float vectors; float16, bfloat16 and int8 vectors arrive from clients as little-endian
// bytes already). Milvus's wire format sends float vectors as []float32, so on a little-endian
// machine (amd64, arm64: everything Weir ships for) the column is the float slice's memory
// copied in one go. nativeLittleEndian is checked once at start-up, and a big-endian machine
// takes the per-element path instead of writing bytes other readers would misread.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// putFloats writes v into dst (len(dst) == 4*len(v)) as little-endian float32s.
// floatBytes returns v's memory as the little-endian bytes of its floats, or nil on a
// big-endian machine (or for no floats), where the bytes would have to be swapped.
func floatBytes(v []float32) []byte {
	if !nativeLittleEndian || len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

func putFloats(dst []byte, v []float32) {
	if nativeLittleEndian {
		copy(dst, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v)))
		return
	}
	putFloatsPortable(dst, v)
}

func putFloatsPortable(dst []byte, v []float32) {
	for i, f := range v {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}

// getFloats reads little-endian float32s from src into dst (len(src) == 4*len(dst)).
func getFloats(dst []float32, src []byte) {
	if nativeLittleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*len(dst)), src)
		return
	}
	getFloatsPortable(dst, src)
}

func getFloatsPortable(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// bytesOf returns the memory of a slice of fixed-width numbers. Arrow's primitive arrays are
// in native byte order (IPC records the order in the schema), so copying it is always right.
func bytesOf[T int8 | int16 | int32 | int64 | uint64 | float32 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}
