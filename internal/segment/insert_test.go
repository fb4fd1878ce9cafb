package segment

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/batch"
)

// testRecords returns records of 700, 1 and 300 rows with timestamps 1000..1999 shuffled
// across records so that min and max are not at the ends.
func testRecords(schema *arrow.Schema) []arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(1, 2))
	return []arrow.RecordBatch{
		randomRecord(schema, 700, 0, 1300, rng),
		randomRecord(schema, 1, 700, 1000, rng),
		randomRecord(schema, 300, 701, 1001, rng),
	}
}

func TestInsertRoundTrip(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		schema := arrowSchema(t, allTypes(pk))
		recs := testRecords(schema)
		defer release(recs)
		tests := []struct {
			name string
			opts WriteOptions
		}{
			{"defaults", WriteOptions{}},
			{"small row groups", WriteOptions{RowGroupBytes: 16 << 10, Compression: CompressionZstd}},
			{"uncompressed", WriteOptions{Compression: CompressionNone}},
			{"snappy", WriteOptions{Compression: CompressionSnappy}},
		}
		for _, tt := range tests {
			t.Run(pk.String()+"/"+tt.name, func(t *testing.T) {
				data, info := writeInsert(t, schema, recs, tt.opts)
				require.Equal(t, FileInfo{Rows: 1001, Bytes: int64(len(data)), MinTS: 1000, MaxTS: 1999}, info)

				tbl, err := ReadInsert(bytes.NewReader(data), int64(len(data)))
				require.NoError(t, err)
				defer tbl.Release()
				require.True(t, tbl.Schema().Equal(schema), "schema with field metadata round-trips:\n%s\nwant\n%s", tbl.Schema(), schema)
				require.Equal(t, schema.Metadata(), tbl.Schema().Metadata())
				for i, f := range schema.Fields() {
					require.Equal(t, f.Metadata, tbl.Schema().Field(i).Metadata, f.Name)
				}
				require.EqualValues(t, 1001, tbl.NumRows())
				for c := range schema.NumFields() {
					want := concat(t, recs, c)
					got, err := array.Concatenate(tbl.Column(c).Data().Chunks(), memory.DefaultAllocator)
					require.NoError(t, err)
					require.True(t, arrow.TypeEqual(want.DataType(), got.DataType(), arrow.CheckMetadata()))
					require.True(t, array.Equal(want, got), "column %s", schema.Field(c).Name)
					want.Release()
					got.Release()
				}
			})
		}
	}
}

func TestInsertRowGroups(t *testing.T) {
	schema := arrowSchema(t, allTypes(schemapb.DataType_Int64))
	recs := testRecords(schema)
	defer release(recs)
	data, _ := writeInsert(t, schema, recs, WriteOptions{RowGroupBytes: 16 << 10})
	pr, err := file.NewParquetReader(bytes.NewReader(data))
	require.NoError(t, err)
	require.Greater(t, pr.NumRowGroups(), 4, "a small row group size splits the file")
	var rows int64
	for i := range pr.NumRowGroups() {
		rows += pr.MetaData().RowGroup(i).NumRows()
	}
	require.EqualValues(t, 1001, rows)

	data, _ = writeInsert(t, schema, recs, WriteOptions{})
	pr, err = file.NewParquetReader(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, 1, pr.NumRowGroups(), "records are merged into one row group, not one per record")
}

// TestInsertStandardParquetReader opens an insert file with the low-level Parquet reader, which
// knows nothing of Arrow, and checks what any Parquet implementation would see.
func TestInsertStandardParquetReader(t *testing.T) {
	coll := allTypes(schemapb.DataType_Int64)
	as := arrowSchema(t, coll)
	recs := testRecords(as)
	defer release(recs)
	data, _ := writeInsert(t, as, recs, WriteOptions{})

	pr, err := file.NewParquetReader(bytes.NewReader(data))
	require.NoError(t, err)
	defer pr.Close()
	sc := pr.MetaData().Schema
	require.EqualValues(t, 1001, pr.NumRows())

	// Every column of the batch schema, in order, with its Milvus field ID as Parquet field_id.
	type col struct {
		physical parquet.Type
		length   int // FIXED_LEN_BYTE_ARRAY width
	}
	want := map[string]col{
		"pk": {parquet.Types.Int64, 0}, "b": {parquet.Types.Boolean, 0}, "i8": {parquet.Types.Int32, 0},
		"i16": {parquet.Types.Int32, 0}, "i32": {parquet.Types.Int32, 0}, "i64": {parquet.Types.Int64, 0},
		"f": {parquet.Types.Float, 0}, "d": {parquet.Types.Double, 0}, "s": {parquet.Types.ByteArray, 0},
		"j": {parquet.Types.ByteArray, 0}, "ai": {parquet.Types.Int32, 0}, "as": {parquet.Types.ByteArray, 0},
		"fv": {parquet.Types.FixedLenByteArray, 8 * 4}, "bv": {parquet.Types.FixedLenByteArray, 16 / 8},
		"f16": {parquet.Types.FixedLenByteArray, 4 * 2}, "bf16": {parquet.Types.FixedLenByteArray, 4 * 2},
		"i8v": {parquet.Types.FixedLenByteArray, 8}, batch.DynamicColumn: {parquet.Types.ByteArray, 0},
		batch.TimestampColumn: {parquet.Types.Int64, 0},
	}
	require.Equal(t, len(want), sc.NumColumns())
	root := sc.Root()
	require.Equal(t, as.NumFields(), root.NumFields())
	for i, f := range as.Fields() {
		node := root.Field(i)
		require.Equal(t, f.Name, node.Name())
		id := int32(-1)
		if j := f.Metadata.FindKey(batch.FieldIDKey); j >= 0 {
			v, _ := strconv.Atoi(f.Metadata.Values()[j])
			id = int32(v)
		}
		require.Equal(t, id, node.FieldID(), "field_id of %s", f.Name)

		leaf := sc.Column(i) // one leaf per field, lists included
		w := want[f.Name]
		require.Equal(t, w.physical, leaf.PhysicalType(), f.Name)
		if w.physical == parquet.Types.FixedLenByteArray {
			require.Equal(t, w.length, leaf.TypeLength(), f.Name)
			require.Equal(t, parquet.Repetitions.Required, leaf.SchemaNode().RepetitionType(), f.Name)
		}
	}
	require.Equal(t, "ai.list.element", sc.Column(as.FieldIndices("ai")[0]).Path())
	require.Equal(t, schema.StringLogicalType{}, sc.Column(as.FieldIndices("s")[0]).LogicalType())

	// Vectors: uncompressed, no statistics, no dictionary; scalars: snappy.
	rg := pr.MetaData().RowGroup(0)
	for i, f := range as.Fields() {
		cc, err := rg.ColumnChunk(i)
		require.NoError(t, err)
		if f.Type.ID() == arrow.FIXED_SIZE_BINARY {
			require.Equal(t, compress.Codecs.Uncompressed, cc.Compression(), f.Name)
			ok, err := cc.StatsSet()
			require.NoError(t, err)
			require.False(t, ok, f.Name)
			require.False(t, cc.HasDictionaryPage(), f.Name)
		} else {
			require.Equal(t, compress.Codecs.Snappy, cc.Compression(), f.Name)
		}
	}
	kv := pr.MetaData().KeyValueMetadata()
	require.Equal(t, "insert", *kv.FindValue(MetaKind))
	require.Equal(t, "1", *kv.FindValue(MetaVersion))
	require.NotNil(t, kv.FindValue("ARROW:schema"))

	// Values: the float vector read as FIXED_LEN_BYTE_ARRAY decodes as little-endian float32.
	fvIdx := as.FieldIndices("fv")[0]
	wantFV := concat(t, recs, fvIdx).(*array.FixedSizeBinary)
	defer wantFV.Release()
	fv := readFLBA(t, pr, fvIdx)
	require.Len(t, fv, 1001)
	for i, v := range fv {
		require.Len(t, v, 32)
		require.Equal(t, wantFV.Value(i), []byte(v))
		first := math.Float32frombits(binary.LittleEndian.Uint32(v))
		require.Equal(t, math.Float32frombits(binary.LittleEndian.Uint32(wantFV.Value(i))), first)
	}
	pks := readInt64(t, pr, 0)
	require.Len(t, pks, 1001)
	for i, v := range pks {
		require.EqualValues(t, i, v)
	}
	tsCol := as.FieldIndices(batch.TimestampColumn)[0]
	require.True(t, sc.Column(tsCol).LogicalType().Equals(schema.NewIntLogicalType(64, false)), "_ts is unsigned")
	require.True(t, sc.Column(as.FieldIndices("i8")[0]).LogicalType().Equals(schema.NewIntLogicalType(8, true)))
	ts := readInt64(t, pr, tsCol)
	require.EqualValues(t, 1300, ts[0], "uint64 timestamps are INT64 bits")
}

// plainParquet writes a two-row Parquet file with columns pk (float64), ts and pos (uint64)
// and the given key-value metadata: a file that is not what its metadata claims.
func plainParquet(t *testing.T, kv map[string]string) []byte {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: DeletePK, Type: arrow.PrimitiveTypes.Float64},
		{Name: DeleteTS, Type: arrow.PrimitiveTypes.Uint64},
		{Name: DeletePos, Type: arrow.PrimitiveTypes.Uint64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, 2}, nil)
	b.Field(1).(*array.Uint64Builder).AppendValues([]uint64{1, 2}, nil)
	b.Field(2).(*array.Uint64Builder).AppendValues([]uint64{1, 2}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &buf, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, fw.Write(rec))
	for k, v := range kv {
		require.NoError(t, fw.AppendKeyValueMetadata(k, v))
	}
	require.NoError(t, fw.Close())
	return buf.Bytes()
}

func readFLBA(t *testing.T, pr *file.Reader, col int) []parquet.FixedLenByteArray {
	t.Helper()
	var out []parquet.FixedLenByteArray
	for g := range pr.NumRowGroups() {
		cr, err := pr.RowGroup(g).Column(col)
		require.NoError(t, err)
		n := pr.MetaData().RowGroup(g).NumRows()
		vals := make([]parquet.FixedLenByteArray, n)
		total, read, err := cr.(*file.FixedLenByteArrayColumnChunkReader).ReadBatch(n, vals, nil, nil)
		require.NoError(t, err)
		require.EqualValues(t, n, total)
		require.EqualValues(t, n, read)
		out = append(out, vals...)
	}
	return out
}

func readInt64(t *testing.T, pr *file.Reader, col int) []int64 {
	t.Helper()
	var out []int64
	for g := range pr.NumRowGroups() {
		cr, err := pr.RowGroup(g).Column(col)
		require.NoError(t, err)
		n := pr.MetaData().RowGroup(g).NumRows()
		vals := make([]int64, n)
		total, _, err := cr.(*file.Int64ColumnChunkReader).ReadBatch(n, vals, nil, nil)
		require.NoError(t, err)
		require.EqualValues(t, n, total)
		out = append(out, vals...)
	}
	return out
}

func TestReadColumn(t *testing.T) {
	for _, pk := range []schemapb.DataType{schemapb.DataType_Int64, schemapb.DataType_VarChar} {
		t.Run(pk.String(), func(t *testing.T) {
			schema := arrowSchema(t, allTypes(pk))
			recs := testRecords(schema)
			defer release(recs)
			for _, opts := range []WriteOptions{{}, {RowGroupBytes: 16 << 10}} {
				data, _ := writeInsert(t, schema, recs, opts)
				for _, name := range []string{"pk", "as", "fv", batch.TimestampColumn} {
					got, err := ReadColumn(bytes.NewReader(data), int64(len(data)), name)
					require.NoError(t, err)
					idx := schema.FieldIndices(name)[0]
					want := concat(t, recs, idx)
					require.True(t, arrow.TypeEqual(schema.Field(idx).Type, got.DataType(), arrow.CheckMetadata()))
					require.Equal(t, schema.Field(idx).Type.String(), got.DataType().String())
					require.True(t, array.Equal(want, got), name)
					want.Release()
					got.Release()
				}
				_, err := ReadColumn(bytes.NewReader(data), int64(len(data)), "nope")
				require.ErrorIs(t, err, ErrNoColumn)
			}
		})
	}
}

type failWriter struct{ after int }

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errDisk
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteInsertErrors(t *testing.T) {
	schema := arrowSchema(t, allTypes(schemapb.DataType_Int64))
	recs := testRecords(schema)
	defer release(recs)
	other := arrowSchema(t, allTypes(schemapb.DataType_VarChar))
	otherRecs := testRecords(other)
	defer release(otherRecs)
	noTS := arrow.NewSchema(schema.Fields()[:3], nil)
	empty := randomRecord(schema, 0, 0, 0, rand.New(rand.NewPCG(1, 1)))
	defer empty.Release()
	withNull := func() arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for c := range schema.NumFields() {
			if schema.Field(c).Name == "d" {
				b.Field(c).AppendNull()
			} else {
				appendRandom(b.Field(c), rand.New(rand.NewPCG(1, 1)))
			}
		}
		return b.NewRecordBatch()
	}()
	defer withNull.Release()

	tests := []struct {
		name   string
		schema *arrow.Schema
		recs   []arrow.RecordBatch
		opts   WriteOptions
		w      func() *failWriter
		want   error
	}{
		{"no records", schema, nil, WriteOptions{}, nil, ErrEmpty},
		{"empty records", schema, []arrow.RecordBatch{empty, empty}, WriteOptions{}, nil, ErrEmpty},
		{"nil schema", nil, recs, WriteOptions{}, nil, ErrSchema},
		{"record of another schema", schema, append([]arrow.RecordBatch{recs[0]}, otherRecs[0]), WriteOptions{}, nil, ErrSchema},
		{"no timestamp column", noTS, nil, WriteOptions{}, nil, ErrSchema},
		{"null in a required column", schema, []arrow.RecordBatch{recs[0], withNull}, WriteOptions{}, nil, ErrSchema},
		{"unknown compression", schema, recs, WriteOptions{Compression: 99}, nil, nil},
		{"writer fails at once", schema, recs, WriteOptions{}, func() *failWriter { return &failWriter{} }, errDisk},
		{"writer fails midway", schema, recs, WriteOptions{}, func() *failWriter { return &failWriter{after: 10_000} }, errDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w interface{ Write([]byte) (int, error) } = &bytes.Buffer{}
			if tt.w != nil {
				w = tt.w()
			}
			_, err := WriteInsert(w, tt.schema, tt.recs, tt.opts)
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestReadWrongFile(t *testing.T) {
	schema := arrowSchema(t, allTypes(schemapb.DataType_Int64))
	recs := testRecords(schema)
	defer release(recs)
	insert, _ := writeInsert(t, schema, recs, WriteOptions{})
	var del bytes.Buffer
	_, err := WriteDeletes(&del, Deletes{IntPKs: []int64{1}, TS: []uint64{2}, Pos: []uint64{3}})
	require.NoError(t, err)

	files := map[string][]byte{
		"insert":         insert,
		"delete":         del.Bytes(),
		"garbage":        []byte("PAR1 not really PAR1"),
		"foreign":        plainParquet(t, nil),
		"future version": plainParquet(t, map[string]string{MetaKind: "insert", MetaVersion: "2"}),
		"bad schema":     plainParquet(t, map[string]string{MetaKind: "insert", MetaVersion: "1", MetaSchema: "!!"}),
		"schema not ipc": plainParquet(t, map[string]string{MetaKind: "insert", MetaVersion: "1", MetaSchema: "AAAA"}),
		"no schema":      plainParquet(t, map[string]string{MetaKind: "insert", MetaVersion: "1"}),
		"schema differs": plainParquet(t, map[string]string{MetaKind: "insert", MetaVersion: "1",
			MetaSchema: base64.StdEncoding.EncodeToString(flight.SerializeSchema(schema, memory.DefaultAllocator))}),
		"stats, not one row": plainParquet(t, map[string]string{MetaKind: "stats", MetaVersion: "1"}),
		"delete of floats":   plainParquet(t, map[string]string{MetaKind: "delete", MetaVersion: "1"}),
	}
	readers := map[string]func([]byte) error{
		"insert": func(b []byte) error { _, err := ReadInsert(bytes.NewReader(b), int64(len(b))); return err },
		"column": func(b []byte) error { _, err := ReadColumn(bytes.NewReader(b), int64(len(b)), "pk"); return err },
		"stats":  func(b []byte) error { _, err := ReadStats(bytes.NewReader(b), int64(len(b))); return err },
		"delete": func(b []byte) error { _, err := ReadDeletes(bytes.NewReader(b), int64(len(b))); return err },
	}
	for fname, data := range files {
		for rname, read := range readers {
			if fname == rname || (fname == "insert" && rname == "column") {
				continue
			}
			t.Run(rname+" reads "+fname, func(t *testing.T) {
				require.ErrorIs(t, read(data), ErrFormat)
			})
		}
	}
}

// TestReadCorruptPages: a file whose footer is intact but whose first page is not gives an
// error from every reader, not a panic or wrong data.
func TestReadCorruptPages(t *testing.T) {
	schema := arrowSchema(t, allTypes(schemapb.DataType_Int64))
	recs := testRecords(schema)
	defer release(recs)
	insert, _ := writeInsert(t, schema, recs, WriteOptions{Compression: CompressionNone})
	var del, stats bytes.Buffer
	_, err := WriteDeletes(&del, Deletes{IntPKs: []int64{1}, TS: []uint64{2}, Pos: []uint64{3}})
	require.NoError(t, err)
	pk := int64Array(1, 2)
	defer pk.Release()
	s, err := BuildStats([]arrow.Array{pk}, 0)
	require.NoError(t, err)
	_, err = WriteStats(&stats, s)
	require.NoError(t, err)

	corrupt := func(b []byte) []byte {
		b = bytes.Clone(b)
		for i := 4; i < 24; i++ { // the first page header, just after "PAR1"
			b[i] = 0xff
		}
		return b
	}
	reads := map[string]func() error{
		"insert": func() error {
			b := corrupt(insert)
			_, err := ReadInsert(bytes.NewReader(b), int64(len(b)))
			return err
		},
		"column": func() error {
			b := corrupt(insert)
			_, err := ReadColumn(bytes.NewReader(b), int64(len(b)), "pk")
			return err
		},
		"stats": func() error {
			b := corrupt(stats.Bytes())
			_, err := ReadStats(bytes.NewReader(b), int64(len(b)))
			return err
		},
		"delete": func() error {
			b := corrupt(del.Bytes())
			_, err := ReadDeletes(bytes.NewReader(b), int64(len(b)))
			return err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			require.Error(t, read())
		})
	}
}
