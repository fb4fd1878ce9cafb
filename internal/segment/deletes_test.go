package segment

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestDeletesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    Deletes
		pk   parquet.Type
	}{
		{"int64", Deletes{IntPKs: []int64{3, -1, 3}, TS: []uint64{20, 10, 30}, Pos: []uint64{7, 8, 9}}, parquet.Types.Int64},
		{"varchar", Deletes{StringPKs: []string{"b", "", "ключ"}, TS: []uint64{1 << 63, 10, 30}, Pos: []uint64{1, 2, 3}}, parquet.Types.ByteArray},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			info, err := WriteDeletes(&buf, tt.d)
			require.NoError(t, err)
			lo, hi := tt.d.TS[0], tt.d.TS[0]
			for _, ts := range tt.d.TS {
				lo, hi = min(lo, ts), max(hi, ts)
			}
			require.Equal(t, FileInfo{Rows: 3, Bytes: int64(buf.Len()), MinTS: lo, MaxTS: hi}, info)

			got, err := ReadDeletes(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			require.NoError(t, err)
			require.Equal(t, tt.d, got)

			pr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
			require.NoError(t, err)
			defer pr.Close()
			sc := pr.MetaData().Schema
			require.Equal(t, 3, sc.NumColumns())
			for i, name := range []string{DeletePK, DeleteTS, DeletePos} {
				require.Equal(t, name, sc.Column(i).Name())
			}
			require.Equal(t, tt.pk, sc.Column(0).PhysicalType())
			for _, c := range []int{1, 2} {
				require.Equal(t, parquet.Types.Int64, sc.Column(c).PhysicalType())
				require.True(t, sc.Column(c).LogicalType().Equals(schema.NewIntLogicalType(64, false)), "unsigned")
			}
			require.Equal(t, "delete", *pr.MetaData().KeyValueMetadata().FindValue(MetaKind))
		})
	}
}

func TestDeletesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 200).Draw(t, "n")
		d := Deletes{
			TS:  rapid.SliceOfN(rapid.Uint64(), n, n).Draw(t, "ts"),
			Pos: rapid.SliceOfN(rapid.Uint64(), n, n).Draw(t, "pos"),
		}
		if rapid.Bool().Draw(t, "string") {
			d.StringPKs = rapid.SliceOfN(rapid.String(), n, n).Draw(t, "pks")
		} else {
			d.IntPKs = rapid.SliceOfN(rapid.Int64(), n, n).Draw(t, "pks")
		}
		var buf bytes.Buffer
		_, err := WriteDeletes(&buf, d)
		require.NoError(t, err)
		got, err := ReadDeletes(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		require.NoError(t, err)
		require.Equal(t, d, got)
		require.Equal(t, n, got.Len())
	})
}

func TestWriteDeletesErrors(t *testing.T) {
	tests := []struct {
		name string
		d    Deletes
		want error
	}{
		{"none", Deletes{}, ErrEmpty},
		{"timestamps only", Deletes{TS: []uint64{1}, Pos: []uint64{1}}, ErrEmpty},
		{"both key types", Deletes{IntPKs: []int64{1}, StringPKs: []string{"a"}, TS: []uint64{1}, Pos: []uint64{1}}, ErrSchema},
		{"short timestamps", Deletes{IntPKs: []int64{1, 2}, TS: []uint64{1}, Pos: []uint64{1, 2}}, ErrSchema},
		{"short positions", Deletes{StringPKs: []string{"a"}, TS: []uint64{1}}, ErrSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := WriteDeletes(&buf, tt.d)
			require.ErrorIs(t, err, tt.want)
			require.Zero(t, buf.Len(), "nothing written")
		})
	}
	_, err := WriteDeletes(&failWriter{}, Deletes{IntPKs: []int64{1}, TS: []uint64{1}, Pos: []uint64{1}})
	require.ErrorIs(t, err, errDisk)
}
