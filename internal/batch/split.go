package batch

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Split partitions the rows among n channels by their primary keys: row i goes to channel
// channelOf(PrimaryKeys().Hash(i)) (ChannelOf(n) is Milvus's choice). Element c of the result
// holds, in their original order, the rows of channel c, or is nil when channel c gets none.
// When every row goes to one channel that element shares r's arrays instead of copying them.
// The results are independent of r: release each, and r, when done. Split panics when
// channelOf returns a channel outside 0..n-1.
func (r *Rows) Split(channelOf func(pkHash uint32) int, n int) []*Rows {
	group := make([]int32, r.n)
	for i := range r.n {
		c := channelOf(r.pks.Hash(i))
		if c < 0 || c >= n {
			panic(fmt.Sprintf("batch: channelOf returned channel %d, want 0..%d", c, n-1))
		}
		group[i] = int32(c)
	}
	return r.Group(group, n)
}

// Group partitions the rows among n groups: row i goes to group[i]. It is Split with the
// choice made by the caller, for routing that depends on more than the primary key (the
// channel and the partition of a collection with a partition key). Element g of the result
// holds, in their original order, the rows of group g, or is nil when group g gets none; when
// every row is in one group that element shares r's arrays. The results are independent of r:
// release each, and r, when done. Group panics when group does not hold one entry per row in
// 0..n-1.
func (r *Rows) Group(group []int32, n int) []*Rows {
	if len(group) != r.n {
		panic(fmt.Sprintf("batch: %d groups for %d rows", len(group), r.n))
	}
	out := make([]*Rows, n)
	counts := make([]int, n)
	for _, g := range group {
		if g < 0 || int(g) >= n {
			panic(fmt.Sprintf("batch: row in group %d, want 0..%d", g, n-1))
		}
		counts[g]++
	}
	for c, k := range counts {
		if k == r.n {
			for _, col := range r.cols {
				col.Retain()
			}
			out[c] = &Rows{schema: r.schema, cols: append([]arrow.Array(nil), r.cols...), n: r.n, pks: r.pks, mem: r.mem}
			return out
		}
	}
	idx := make([][]int32, n)
	for c, k := range counts {
		if k > 0 {
			idx[c] = make([]int32, 0, k)
		}
	}
	for i, c := range group {
		idx[c] = append(idx[c], int32(i))
	}
	for c, rows := range idx {
		if rows == nil {
			continue
		}
		sub := &Rows{schema: r.schema, n: len(rows), mem: r.mem, cols: make([]arrow.Array, len(r.cols))}
		for j, col := range r.cols {
			sub.cols[j] = take(r.mem, col, rows)
		}
		if r.pks.Strings != nil {
			sub.pks.Strings = pick(r.pks.Strings, rows)
		} else {
			sub.pks.Int64 = pick(r.pks.Int64, rows)
		}
		out[c] = sub
	}
	return out
}

func pick[T any](v []T, idx []int32) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = v[j]
	}
	return out
}

// take returns the rows idx of arr, in that order, as a new array, nulls included. It handles
// the column types ArrowType produces.
func take(mem memory.Allocator, arr arrow.Array, idx []int32) arrow.Array {
	out := takeValues(mem, arr, idx)
	if arr.NullN() == 0 {
		return out
	}
	valid := make([]bool, len(idx))
	for k, i := range idx {
		valid[k] = arr.IsValid(int(i))
	}
	return withNulls(mem, out, valid)
}

// takeValues is take without the nulls.
func takeValues(mem memory.Allocator, arr arrow.Array, idx []int32) arrow.Array {
	switch a := arr.(type) {
	case *array.Boolean:
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		b.Reserve(len(idx))
		for _, i := range idx {
			b.UnsafeAppend(a.Value(int(i)))
		}
		return b.NewArray()
	case *array.String:
		b := array.NewStringBuilder(mem)
		defer b.Release()
		total := 0
		for _, i := range idx {
			total += a.ValueLen(int(i))
		}
		b.Reserve(len(idx))
		b.ReserveData(total)
		for _, i := range idx {
			b.Append(a.Value(int(i)))
		}
		return b.NewArray()
	case *array.Binary:
		b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
		defer b.Release()
		total := 0
		for _, i := range idx {
			total += a.ValueLen(int(i))
		}
		b.Reserve(len(idx))
		b.ReserveData(total)
		for _, i := range idx {
			b.Append(a.Value(int(i)))
		}
		return b.NewArray()
	case *array.List:
		return takeList(mem, a, idx)
	}
	// Fixed-width columns (integers, floats, vectors as FixedSizeBinary): copy each row's bytes.
	width := arr.DataType().(arrow.FixedWidthDataType).BitWidth() / 8
	if len(idx) == 0 {
		// An empty array may have no value buffer (the elements of lists that are all empty).
		return fixedArray(arr.DataType(), 0, newBuffer(mem, 0))
	}
	data := arr.Data()
	src := data.Buffers()[1].Bytes()[data.Offset()*width:]
	buf := newBuffer(mem, len(idx)*width)
	dst := buf.Bytes()
	for k, i := range idx {
		copy(dst[k*width:(k+1)*width], src[int(i)*width:])
	}
	return fixedArray(arr.DataType(), len(idx), buf)
}

func takeList(mem memory.Allocator, a *array.List, idx []int32) arrow.Array {
	offBuf := newBuffer(mem, 4*(len(idx)+1))
	offs := arrow.Int32Traits.CastFromBytes(offBuf.Bytes())
	var child []int32
	for k, i := range idx {
		start, end := a.ValueOffsets(int(i))
		for j := start; j < end; j++ {
			child = append(child, int32(j))
		}
		offs[k+1] = int32(len(child))
	}
	values := take(mem, a.ListValues(), child)
	defer values.Release()
	data := array.NewData(a.DataType(), len(idx), []*memory.Buffer{nil, offBuf}, []arrow.ArrayData{values.Data()}, 0, 0)
	offBuf.Release()
	defer data.Release()
	return array.MakeFromData(data)
}
