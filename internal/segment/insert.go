package segment

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/weir-db/weir/internal/batch"
)

// File key-value metadata Weir writes into every segment file.
const (
	MetaKind    = "weir.kind"    // "insert", "stats" or "delete"
	MetaVersion = "weir.version" // FormatVersion
	// MetaSchema holds the batch's Arrow schema exactly as written (base64 of the Arrow IPC
	// schema message). pqarrow's own ARROW:schema copy renames list elements to "element" and
	// gains PARQUET:field_id keys, so readers that want the batch schema back use this one.
	MetaSchema = "weir.schema"
	// FormatVersion is the version of the file layouts described in doc.go.
	FormatVersion = 1

	// parquetFieldIDKey is the Arrow field metadata key pqarrow turns into a Parquet field_id.
	parquetFieldIDKey = "PARQUET:field_id"
)

// DefaultRowGroupBytes is the row group size WriteInsert aims at: large enough that a reader
// fetches few, long ranges, small enough that a query node can read one vector column of a
// row group at a time.
const DefaultRowGroupBytes = 64 << 20

// Compression selects the codec of the scalar columns of an insert file.
type Compression uint8

// Codecs for scalar columns. Vector columns are never compressed: float bits barely compress
// and the codec would cost more time than the bytes it saves.
const (
	CompressionDefault Compression = iota // snappy
	CompressionNone
	CompressionSnappy
	CompressionZstd
)

func (c Compression) codec() (compress.Compression, error) {
	switch c {
	case CompressionDefault, CompressionSnappy:
		return compress.Codecs.Snappy, nil
	case CompressionNone:
		return compress.Codecs.Uncompressed, nil
	case CompressionZstd:
		return compress.Codecs.Zstd, nil
	}
	return 0, fmt.Errorf("segment: unknown compression %d", c)
}

// WriteOptions tune WriteInsert; the zero value gives the defaults.
type WriteOptions struct {
	// RowGroupBytes is the approximate uncompressed size of a row group; 0 means
	// DefaultRowGroupBytes.
	RowGroupBytes int64
	// Compression is the codec of scalar columns.
	Compression Compression
}

// FileInfo describes a written file, for the segment meta that will reference it.
type FileInfo struct {
	Rows  int64
	Bytes int64  // size of the file
	MinTS uint64 // smallest row timestamp
	MaxTS uint64 // largest row timestamp
}

// WriteInsert writes recs, all of the given schema (a batch.ArrowSchema), as one Parquet insert
// file to w and does not close w. The schema must have a uint64 batch.TimestampColumn. Every
// column is written as its Arrow type maps to Parquet; vectors (FixedSizeBinary) are written
// PLAIN, uncompressed and without statistics, which makes writing them a copy. A write of no
// rows returns ErrEmpty. After an error w may hold part of a file, which the caller discards.
func WriteInsert(w io.Writer, schema *arrow.Schema, recs []arrow.RecordBatch, opts WriteOptions) (FileInfo, error) {
	if schema == nil {
		return FileInfo{}, fmt.Errorf("%w: nil schema", ErrSchema)
	}
	tsCol, err := timestampIndex(schema)
	if err != nil {
		return FileInfo{}, err
	}
	var info FileInfo
	var size int64
	for i, rec := range recs {
		if !rec.Schema().Equal(schema) {
			return FileInfo{}, fmt.Errorf("%w: record %d: %s", ErrSchema, i, rec.Schema())
		}
		if rec.NumRows() == 0 {
			continue
		}
		for c, f := range schema.Fields() {
			// A null in a required Parquet column would be written as a zero value.
			if !f.Nullable && rec.Column(c).NullN() > 0 {
				return FileInfo{}, fmt.Errorf("%w: record %d: null in non-nullable column %s", ErrSchema, i, f.Name)
			}
		}
		lo, hi := minMaxUint64(rec.Column(tsCol).(*array.Uint64))
		if info.Rows == 0 || lo < info.MinTS {
			info.MinTS = lo
		}
		if info.Rows == 0 || hi > info.MaxTS {
			info.MaxTS = hi
		}
		info.Rows += rec.NumRows()
		for _, c := range rec.Columns() {
			size += dataBytes(c.Data())
		}
	}
	if info.Rows == 0 {
		return FileInfo{}, fmt.Errorf("write insert file: %w", ErrEmpty)
	}
	groupBytes := opts.RowGroupBytes
	if groupBytes <= 0 {
		groupBytes = DefaultRowGroupBytes
	}
	groupRows := max(1, int64(float64(groupBytes)/float64(size)*float64(info.Rows)))
	codec, err := opts.Compression.codec()
	if err != nil {
		return FileInfo{}, err
	}

	// pqarrow derives Parquet field_ids from PARQUET:field_id, so the written schema carries
	// the Milvus field IDs twice; the records are re-labelled with it without copying data.
	wschema := withParquetFieldIDs(schema)
	wrecs := make([]arrow.RecordBatch, 0, len(recs))
	for _, rec := range recs {
		wrecs = append(wrecs, array.NewRecordBatch(wschema, rec.Columns(), rec.NumRows()))
	}
	tbl := array.NewTableFromRecords(wschema, wrecs)
	defer tbl.Release()
	for _, rec := range wrecs {
		rec.Release() // the table holds the columns
	}

	props := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		// Dictionaries pay off for few distinct values; primary keys, timestamps and vectors
		// are all distinct, and snappy catches most repetition in the rest for less CPU.
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(groupRows),
		parquet.WithCreatedBy("weir"),
	}
	for _, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.FIXED_SIZE_BINARY:
			path := parquet.ColumnPath{f.Name}
			props = append(props, parquet.WithCompressionPath(path, compress.Codecs.Uncompressed),
				parquet.WithStatsPath(path, false))
		case arrow.BINARY:
			// JSON, $meta, sparse vectors, geometries: min/max of opaque bytes prunes nothing.
			props = append(props, parquet.WithStatsPath(parquet.ColumnPath{f.Name}, false))
		}
	}
	meta := map[string]string{MetaSchema: base64.StdEncoding.EncodeToString(flight.SerializeSchema(schema, memory.DefaultAllocator))}
	n, err := writeParquet(w, KindInsert, wschema, props, meta, func(fw *pqarrow.FileWriter) error {
		return fw.WriteTable(tbl, groupRows)
	})
	if err != nil {
		return FileInfo{}, fmt.Errorf("write insert file: %w", err)
	}
	info.Bytes = n
	return info, nil
}

// writeParquet writes one Parquet file of the given kind to w with the Arrow schema stored, and
// returns its size.
func writeParquet(w io.Writer, kind Kind, schema *arrow.Schema, props []parquet.WriterProperty,
	meta map[string]string, write func(*pqarrow.FileWriter) error) (int64, error) {
	cw := &countingWriter{w: w}
	fw, err := pqarrow.NewFileWriter(schema, cw, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return 0, err
	}
	if err := write(fw); err != nil {
		_ = fw.Close() // the write error is the one to report
		return 0, err
	}
	meta[MetaKind] = kind.String()
	meta[MetaVersion] = strconv.Itoa(FormatVersion)
	for _, k := range []string{MetaKind, MetaVersion, MetaSchema} {
		if v, ok := meta[k]; ok {
			if err := fw.AppendKeyValueMetadata(k, v); err != nil {
				_ = fw.Close()
				return 0, err
			}
		}
	}
	if err := fw.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

// countingWriter counts the bytes of a file and hides any Close method of the caller's writer,
// which pqarrow would otherwise call.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dataBytes estimates the bytes an array holds (for a slice, the whole buffers it shares).
func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

func timestampIndex(schema *arrow.Schema) (int, error) {
	idx := schema.FieldIndices(batch.TimestampColumn)
	if len(idx) != 1 || schema.Field(idx[0]).Type.ID() != arrow.UINT64 {
		return 0, fmt.Errorf("%w: no uint64 %s column", ErrSchema, batch.TimestampColumn)
	}
	return idx[0], nil
}

func minMaxUint64(a *array.Uint64) (lo, hi uint64) {
	vals := a.Uint64Values()
	lo, hi = vals[0], vals[0]
	for _, v := range vals[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// withParquetFieldIDs copies schema, adding PARQUET:field_id next to every batch.FieldIDKey.
func withParquetFieldIDs(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	for i, f := range fields {
		j := f.Metadata.FindKey(batch.FieldIDKey)
		if j < 0 || f.Metadata.FindKey(parquetFieldIDKey) >= 0 {
			continue
		}
		keys := append(f.Metadata.Keys(), parquetFieldIDKey)
		vals := append(f.Metadata.Values(), f.Metadata.Values()[j])
		fields[i].Metadata = arrow.NewMetadata(keys, vals)
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// ReadInsert reads a whole insert file. The table has the schema the file was written with
// (equal, field metadata included, to the schema given to WriteInsert); the caller releases it.
func ReadInsert(r io.ReaderAt, size int64) (arrow.Table, error) {
	fr, schema, err := openInsert(r, size)
	if err != nil {
		return nil, err
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read insert file: %w", err)
	}
	defer tbl.Release()
	cols := make([]arrow.Column, schema.NumFields())
	for i := range cols {
		chunked, err := retype(tbl.Column(i).Data(), schema.Field(i).Type)
		if err != nil {
			releaseColumns(cols[:i])
			return nil, err
		}
		cols[i] = *arrow.NewColumn(schema.Field(i), chunked)
		chunked.Release()
	}
	out := array.NewTable(schema, cols, tbl.NumRows())
	releaseColumns(cols)
	return out, nil
}

func releaseColumns(cols []arrow.Column) {
	for i := range cols {
		cols[i].Release()
	}
}

// ReadColumn reads one column of an insert file, such as the primary key, without decoding
// the others. The caller releases the array.
func ReadColumn(r io.ReaderAt, size int64, name string) (arrow.Array, error) {
	fr, schema, err := openInsert(r, size)
	if err != nil {
		return nil, err
	}
	idx := schema.FieldIndices(name)
	if len(idx) != 1 {
		return nil, fmt.Errorf("read column %q: %w", name, ErrNoColumn)
	}
	cr, err := fr.GetColumn(context.Background(), idx[0])
	if err != nil {
		return nil, fmt.Errorf("read column %q: %w", name, err)
	}
	chunked, err := cr.NextBatch(fr.ParquetReader().NumRows())
	if err != nil {
		return nil, fmt.Errorf("read column %q: %w", name, err)
	}
	defer chunked.Release()
	typed, err := retype(chunked, schema.Field(idx[0]).Type)
	if err != nil {
		return nil, err
	}
	defer typed.Release()
	if len(typed.Chunks()) == 1 {
		a := typed.Chunk(0)
		a.Retain()
		return a, nil
	}
	return array.Concatenate(typed.Chunks(), memory.DefaultAllocator)
}

// openInsert opens an insert file and returns its reader and the schema it was written with.
func openInsert(r io.ReaderAt, size int64) (*pqarrow.FileReader, *arrow.Schema, error) {
	fr, err := openParquet(r, size, KindInsert)
	if err != nil {
		return nil, nil, err
	}
	enc := fr.ParquetReader().MetaData().KeyValueMetadata().FindValue(MetaSchema)
	if enc == nil {
		return nil, nil, fmt.Errorf("%w: no %s", ErrFormat, MetaSchema)
	}
	raw, err := base64.StdEncoding.DecodeString(*enc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrFormat, MetaSchema, err)
	}
	schema, err := flight.DeserializeSchema(raw, memory.DefaultAllocator)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrFormat, MetaSchema, err)
	}
	got, err := fr.Schema()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if got.NumFields() != schema.NumFields() {
		return nil, nil, fmt.Errorf("%w: %d columns, %s names %d", ErrFormat, got.NumFields(), MetaSchema, schema.NumFields())
	}
	for i, f := range schema.Fields() {
		if g := got.Field(i); g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return nil, nil, fmt.Errorf("%w: column %d is %s %s, %s says %s %s", ErrFormat, i, g.Name, g.Type, MetaSchema, f.Name, f.Type)
		}
	}
	return fr, schema, nil
}

// openParquet opens a Parquet file and checks that Weir wrote it as a file of the given kind.
func openParquet(r io.ReaderAt, size int64, kind Kind) (*pqarrow.FileReader, error) {
	pr, err := file.NewParquetReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	kv := pr.MetaData().KeyValueMetadata()
	if k := kv.FindValue(MetaKind); k == nil || *k != kind.String() {
		return nil, fmt.Errorf("%w: not a %s file", ErrFormat, kind)
	}
	if v := kv.FindValue(MetaVersion); v == nil || *v != strconv.Itoa(FormatVersion) {
		return nil, fmt.Errorf("%w: unsupported version", ErrFormat)
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: pr.NumRows()}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return fr, nil
}

// retype gives the chunks of c the type t, which equals their type up to nested field names
// (pqarrow names list elements "element", Arrow's ListOf "item"). The buffers are shared.
func retype(c *arrow.Chunked, t arrow.DataType) (*arrow.Chunked, error) {
	if !arrow.TypeEqual(c.DataType(), t) {
		return nil, fmt.Errorf("%w: column is %s, want %s", ErrFormat, c.DataType(), t)
	}
	if arrow.TypeEqual(c.DataType(), t, arrow.CheckMetadata()) && c.DataType().String() == t.String() {
		c.Retain()
		return c, nil
	}
	chunks := make([]arrow.Array, len(c.Chunks()))
	for i, a := range c.Chunks() {
		d := a.Data()
		nd := array.NewData(t, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
		chunks[i] = array.MakeFromData(nd)
		nd.Release()
	}
	out := arrow.NewChunked(t, chunks)
	for _, a := range chunks {
		a.Release()
	}
	return out, nil
}
