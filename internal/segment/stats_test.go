package segment

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func int64Array(vs ...int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vs, nil)
	return b.NewArray()
}

func stringArray(vs ...string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vs, nil)
	return b.NewArray()
}

func writeStats(t *testing.T, s *Stats) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteStats(&buf, s)
	require.NoError(t, err)
	require.EqualValues(t, buf.Len(), n)
	return buf.Bytes()
}

func TestStatsInt64(t *testing.T) {
	pks := []arrow.Array{int64Array(5, -3, 17), int64Array(100, 0)}
	defer release(pks)
	s, err := BuildStats(pks, 0)
	require.NoError(t, err)
	require.Equal(t, int64(5), s.Rows)
	require.False(t, s.StringPK)
	require.Equal(t, [2]int64{-3, 100}, [2]int64{s.MinInt, s.MaxInt})
	require.Equal(t, DefaultFPP, s.FPP)

	data := writeStats(t, s)
	got, err := ReadStats(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, s, got)
	for _, pk := range []int64{5, -3, 17, 100, 0} {
		require.True(t, got.MayContainInt64(pk), pk)
	}
	require.False(t, got.MayContainInt64(-4), "below the minimum")
	require.False(t, got.MayContainInt64(101), "above the maximum")
	require.False(t, got.MayContainString("5"), "an int64 key never matches a string")
}

func TestStatsVarChar(t *testing.T) {
	pks := []arrow.Array{stringArray("m", "b", "ключ"), stringArray("", "zz")}
	defer release(pks)
	s, err := BuildStats(pks, 0.01)
	require.NoError(t, err)
	require.True(t, s.StringPK)
	require.Equal(t, [2]string{"", "ключ"}, [2]string{s.MinString, s.MaxString})

	data := writeStats(t, s)
	got, err := ReadStats(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, s, got)
	for _, pk := range []string{"m", "b", "ключ", "", "zz"} {
		require.True(t, got.MayContainString(pk), pk)
	}
	require.False(t, got.MayContainString("ключи"), "above the maximum")
	require.False(t, got.MayContainInt64(0))
}

// TestStatsProperties: min and max are the extremes and every key is found after a round trip.
func TestStatsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vals := rapid.SliceOfN(rapid.Int64(), 1, 300).Draw(t, "pks")
		cut := rapid.IntRange(0, len(vals)).Draw(t, "cut")
		pks := []arrow.Array{int64Array(vals[:cut]...), int64Array(vals[cut:]...)}
		defer release(pks)
		s, err := BuildStats(pks, 0)
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = WriteStats(&buf, s)
		require.NoError(t, err)
		got, err := ReadStats(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		require.NoError(t, err)
		lo, hi := vals[0], vals[0]
		for _, v := range vals {
			lo, hi = min(lo, v), max(hi, v)
			require.True(t, got.MayContainInt64(v))
		}
		require.Equal(t, [3]int64{lo, hi, int64(len(vals))}, [3]int64{got.MinInt, got.MaxInt, got.Rows})
	})
}

func TestStatsStandardParquetReader(t *testing.T) {
	for _, stringPK := range []bool{false, true} {
		t.Run(fmt.Sprint("string=", stringPK), func(t *testing.T) {
			pk := int64Array(7, 9)
			if stringPK {
				pk = stringArray("a", "b")
			}
			defer pk.Release()
			s, err := BuildStats([]arrow.Array{pk}, 0)
			require.NoError(t, err)
			data := writeStats(t, s)

			pr, err := file.NewParquetReader(bytes.NewReader(data))
			require.NoError(t, err)
			defer pr.Close()
			require.EqualValues(t, 1, pr.NumRows())
			sc := pr.MetaData().Schema
			pkType := parquet.Types.Int64
			if stringPK {
				pkType = parquet.Types.ByteArray
			}
			want := []struct {
				name string
				typ  parquet.Type
			}{
				{StatsPKMin, pkType}, {StatsPKMax, pkType}, {StatsRows, parquet.Types.Int64},
				{StatsBloom, parquet.Types.ByteArray}, {StatsBloomFPP, parquet.Types.Double}, {StatsBloomAlg, parquet.Types.ByteArray},
			}
			require.Equal(t, len(want), sc.NumColumns())
			for i, w := range want {
				require.Equal(t, w.name, sc.Column(i).Name())
				require.Equal(t, w.typ, sc.Column(i).PhysicalType(), w.name)
			}
			cr, err := pr.RowGroup(0).Column(3)
			require.NoError(t, err)
			bloom := make([]parquet.ByteArray, 1)
			_, _, err = cr.(*file.ByteArrayColumnChunkReader).ReadBatch(1, bloom, nil, nil)
			require.NoError(t, err)
			require.Equal(t, s.Bloom.Bytes(), []byte(bloom[0]))
			require.Equal(t, "stats", *pr.MetaData().KeyValueMetadata().FindValue(MetaKind))
		})
	}
}

func TestBuildStatsErrors(t *testing.T) {
	ints, strs := int64Array(1), stringArray("a")
	empty := int64Array()
	nb := array.NewInt64Builder(memory.DefaultAllocator)
	nb.AppendNull()
	nulls := nb.NewArray()
	nb.Release()
	floats := func() arrow.Array {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		defer b.Release()
		b.Append(1)
		return b.NewArray()
	}()
	defer release([]arrow.Array{ints, strs, empty, nulls, floats})
	tests := []struct {
		name string
		pks  []arrow.Array
		fpp  float64
		want error
	}{
		{"no arrays", nil, 0, ErrEmpty},
		{"empty arrays", []arrow.Array{empty, empty}, 0, ErrEmpty},
		{"nulls", []arrow.Array{ints, nulls}, 0, ErrSchema},
		{"int then string", []arrow.Array{ints, strs}, 0, ErrSchema},
		{"string then int", []arrow.Array{strs, ints}, 0, ErrSchema},
		{"float keys", []arrow.Array{floats}, 0, ErrSchema},
		{"rate 1", []arrow.Array{ints}, 1, nil},
		{"negative rate", []arrow.Array{ints}, -0.1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildStats(tt.pks, tt.fpp)
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
	_, err := BuildStats([]arrow.Array{strs, empty}, 0)
	require.ErrorIs(t, err, ErrSchema, "an empty array of the other type is a mix too")
}

func TestWriteStatsErrors(t *testing.T) {
	for name, s := range map[string]*Stats{"nil": nil, "no rows": {Bloom: NewBloom(1, 0)}, "no filter": {Rows: 1}} {
		t.Run(name, func(t *testing.T) {
			_, err := WriteStats(&bytes.Buffer{}, s)
			require.ErrorIs(t, err, ErrEmpty)
		})
	}
	pk := int64Array(1)
	defer pk.Release()
	s, err := BuildStats([]arrow.Array{pk}, 0)
	require.NoError(t, err)
	_, err = WriteStats(&failWriter{}, s)
	require.ErrorIs(t, err, errDisk)
}

type col struct {
	name string
	val  any // int64, float64, string or []byte
}

// statsFile writes a stats file of one row (or rows rows) with the given columns.
func statsFile(t *testing.T, rows int, cols ...col) []byte {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		switch c.val.(type) {
		case int64:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Int64}
		case float64:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.PrimitiveTypes.Float64}
		case string:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String}
		case []byte:
			fields[i] = arrow.Field{Name: c.name, Type: arrow.BinaryTypes.Binary}
		}
	}
	sc := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, c := range cols {
		for range rows {
			switch v := c.val.(type) {
			case int64:
				b.Field(i).(*array.Int64Builder).Append(v)
			case float64:
				b.Field(i).(*array.Float64Builder).Append(v)
			case string:
				b.Field(i).(*array.StringBuilder).Append(v)
			case []byte:
				b.Field(i).(*array.BinaryBuilder).Append(v)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	_, err := writeParquet(&buf, KindStats, sc, nil, map[string]string{}, func(fw *pqarrow.FileWriter) error { return fw.Write(rec) })
	require.NoError(t, err)
	return buf.Bytes()
}

func TestReadStatsRejects(t *testing.T) {
	good := []col{
		{StatsPKMin, int64(1)}, {StatsPKMax, int64(2)}, {StatsRows, int64(2)},
		{StatsBloom, NewBloom(2, 0).Bytes()}, {StatsBloomFPP, DefaultFPP}, {StatsBloomAlg, BloomAlgorithm},
	}
	with := func(i int, c col) []col {
		out := append([]col(nil), good...)
		out[i] = c
		return out
	}
	data := statsFile(t, 1, good...)
	_, err := ReadStats(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err, "the baseline file is valid")

	tests := map[string][]byte{
		"two rows":           statsFile(t, 2, good...),
		"string min":         statsFile(t, 1, with(0, col{StatsPKMin, "a"})...),
		"float bounds":       statsFile(t, 1, with(0, col{StatsPKMin, 1.0})...),
		"rows not int64":     statsFile(t, 1, with(2, col{StatsRows, "2"})...),
		"missing fpp":        statsFile(t, 1, good[:5]...),
		"unknown algorithm":  statsFile(t, 1, with(5, col{StatsBloomAlg, "classic-murmur3"})...),
		"filter not blocks":  statsFile(t, 1, with(3, col{StatsBloom, []byte("12345")})...),
		"missing pk columns": statsFile(t, 1, good[2:]...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ReadStats(bytes.NewReader(data), int64(len(data)))
			require.ErrorIs(t, err, ErrFormat)
		})
	}
}
