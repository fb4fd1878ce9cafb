package batch

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"
)

// roundTrip takes columns through every form a batch has: FieldData → Rows → record →
// IPC bytes → record → FieldData.
func roundTrip(t *testing.T, s *schemapb.CollectionSchema, cols []*schemapb.FieldData, n int) []*schemapb.FieldData {
	t.Helper()
	mem := checked(t)
	r, err := FromFieldData(s, cols, uint32(n), FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(123)
	defer rec.Release()
	b, err := EncodeIPC(rec)
	require.NoError(t, err)
	back, err := DecodeIPC(b)
	require.NoError(t, err)
	defer back.Release()
	require.True(t, array.RecordEqual(rec, back), "IPC preserves the record")
	require.True(t, back.Schema().Equal(rec.Schema()), "IPC preserves the schema and its field IDs")
	out, err := ToFieldData(back, s)
	require.NoError(t, err)
	return out
}

func TestRoundTripEveryType(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		t.Run(map[bool]string{false: "static", true: "dynamic"}[dynamic], func(t *testing.T) {
			s := allTypes(dynamic)
			cols := allColumns(1000, 9)
			if dynamic {
				cols = append(cols, dynCol(`{"x":1}`, `{}`, `{"y":"z"}`, `{}`, `{}`, `{}`, `{}`, `{}`, `{"w":[true]}`))
			}
			requireColumnsEqual(t, withIDs(s, cols), roundTrip(t, s, cols, 9))
		})
	}
}

func TestRoundTripVarcharKeyAndFilledDynamic(t *testing.T) {
	s := collection(true, pkField("pk", schemapb.DataType_VarChar, false), field("vec", schemapb.DataType_FloatVector, "dim", "2"))
	cols := []*schemapb.FieldData{
		scalarCol("pk", schemapb.DataType_VarChar, strs("a", "", "ü")),
		vectorCol("vec", schemapb.DataType_FloatVector, floatVec(2, []float32{1, 2, 3, 4, -5, 6e-30})),
	}
	want := append(withIDs(s, cols), withIDs(s, []*schemapb.FieldData{dynCol("{}", "{}", "{}")})...)
	requireColumnsEqual(t, want, roundTrip(t, s, cols, 3))
}

func TestToFieldDataSubsetAndSlices(t *testing.T) {
	mem := checked(t)
	s := allTypes(false)
	cols := allColumns(0, 6)
	r, err := FromFieldData(s, cols, 6, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(1)
	defer rec.Release()

	// A query result: some columns, in another order, rows 2..4.
	pick := []int{18, 0, 17, 9}
	fields := make([]arrow.Field, len(pick))
	arrs := make([]arrow.Array, len(pick))
	for i, j := range pick {
		fields[i] = rec.Schema().Field(j)
		arrs[i] = array.NewSlice(rec.Column(j), 2, 5)
		defer arrs[i].Release()
	}
	sub := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, 3)
	defer sub.Release()
	got, err := ToFieldData(sub, s)
	require.NoError(t, err)
	all := allColumns(2, 3)
	requireColumnsEqual(t, withIDs(s, []*schemapb.FieldData{all[18], all[0], all[17], all[9]}), got)

	// No rows at all.
	empty := rec.NewSlice(0, 0)
	defer empty.Release()
	got, err = ToFieldData(empty, s)
	require.NoError(t, err)
	require.Len(t, got, len(s.GetFields()))
	require.Empty(t, got[18].GetVectors().GetFloatVector().GetData())
	require.EqualValues(t, 4, got[18].GetVectors().GetDim())
}

func TestToFieldDataRejectsForeignRecords(t *testing.T) {
	s := allTypes(false)
	mk := func(name string, arr arrow.Array) arrow.RecordBatch {
		defer arr.Release()
		return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: name, Type: arr.DataType()}}, nil), []arrow.Array{arr}, int64(arr.Len()))
	}
	ints := func() arrow.Array {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.Append(1)
		return b.NewArray()
	}
	for name, rec := range map[string]arrow.RecordBatch{
		"unknown column":          mk("nope", ints()),
		"wrong type":              mk("f", ints()),
		"dynamic without dynamic": mk(DynamicColumn, ints()),
	} {
		t.Run(name, func(t *testing.T) {
			defer rec.Release()
			_, err := ToFieldData(rec, s)
			require.ErrorIs(t, err, ErrRecordMismatch)
		})
	}
	t.Run("field without an arrow type", func(t *testing.T) {
		bad := collection(false, field("g", schemapb.DataType_Text))
		rec := mk("g", ints())
		defer rec.Release()
		_, err := ToFieldData(rec, bad)
		require.ErrorContains(t, err, "has no Arrow mapping")
	})
	t.Run("vector without dim", func(t *testing.T) {
		bad := collection(false, field("v", schemapb.DataType_FloatVector, "dim", "2"))
		b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: 8})
		b.Append(make([]byte, 8))
		rec := mk("v", b.NewArray())
		b.Release()
		defer rec.Release()
		bad.Fields[0].TypeParams = params("dim", "2")
		_, err := ToFieldData(rec, bad)
		require.NoError(t, err)
		// ArrowType and Dim read the same parameter, so a field whose dim is unreadable
		// fails at the type check already.
		bad.Fields[0].TypeParams = params("dim", "x")
		_, err = ToFieldData(rec, bad)
		require.ErrorContains(t, err, `bad dim "x"`)
	})
}

func TestDecodeIPCRejects(t *testing.T) {
	mem := checked(t)
	r, err := FromFieldData(allTypes(false), allColumns(0, 2), 2, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(9)
	defer rec.Release()
	good, err := EncodeIPC(rec)
	require.NoError(t, err)

	var schemaOnly, twice bytes.Buffer
	w := ipc.NewWriter(&schemaOnly, ipc.WithSchema(rec.Schema()))
	require.NoError(t, w.Close())
	w = ipc.NewWriter(&twice, ipc.WithSchema(rec.Schema()))
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())

	for name, b := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not arrow at all, not at all"),
		"schema only":    schemaOnly.Bytes(),
		"two records":    twice.Bytes(),
		"truncated body": good[:len(good)-200],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeIPC(b)
			require.ErrorIs(t, err, ErrIPC)
		})
	}
}

func TestEncodeIPCCompressionWouldNotPay(t *testing.T) {
	// The decision EncodeIPC documents: LZ4 does not shrink float vectors.
	mem := checked(t)
	s := collection(false, pkField("id", schemapb.DataType_Int64, false), field("vec", schemapb.DataType_FloatVector, "dim", "128"))
	r, err := FromFieldData(s, benchColumns(128, 200), 200, FromOptions{Allocator: mem})
	require.NoError(t, err)
	defer r.Release()
	rec := r.Record(1)
	defer rec.Release()
	plain, err := EncodeIPC(rec)
	require.NoError(t, err)
	var lz bytes.Buffer
	w := ipc.NewWriter(&lz, ipc.WithSchema(rec.Schema()), ipc.WithLZ4())
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
	t.Logf("plain %d bytes, lz4 %d bytes", len(plain), lz.Len())
	require.Greater(t, float64(lz.Len()), 0.9*float64(len(plain)))
	back, err := DecodeIPC(lz.Bytes())
	require.NoError(t, err, "a compressed stream still decodes")
	defer back.Release()
	require.True(t, array.RecordEqual(rec, back))
}
