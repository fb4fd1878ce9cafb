package segment

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Stats file columns (one row).
const (
	StatsPKMin    = "pk_min"          // int64 or utf8, the primary key's type
	StatsPKMax    = "pk_max"          // same type as pk_min
	StatsRows     = "rows"            // int64
	StatsBloom    = "bloom"           // binary: Bloom.Bytes
	StatsBloomFPP = "bloom_fpp"       // double: the rate the filter was sized for
	StatsBloomAlg = "bloom_algorithm" // utf8: BloomAlgorithm
)

// BloomAlgorithm names the filter layout of the bloom column, so a reader can refuse a layout
// it does not know.
const BloomAlgorithm = "parquet-split-block-xxhash64"

// Stats describes the primary keys of the rows one sync wrote to a segment: their range and a
// Bloom filter, which let a delete skip segments that cannot hold its key.
type Stats struct {
	Rows int64
	// StringPK tells which pair of bounds is set: MinString/MaxString for a VarChar primary
	// key, MinInt/MaxInt for an Int64 one.
	StringPK             bool
	MinInt, MaxInt       int64
	MinString, MaxString string
	FPP                  float64 // false-positive rate Bloom was sized for
	Bloom                *Bloom
}

// BuildStats computes the stats of primary-key columns (all Int64 or all String arrays, without
// nulls), with a Bloom filter sized for their total length at rate fpp (0 means DefaultFPP).
func BuildStats(pks []arrow.Array, fpp float64) (*Stats, error) {
	if fpp == 0 {
		fpp = DefaultFPP
	}
	if !(fpp > 0 && fpp < 1) {
		return nil, fmt.Errorf("segment: false-positive rate %v is not in (0, 1)", fpp)
	}
	s := &Stats{FPP: fpp}
	for _, a := range pks {
		switch {
		case a.DataType().ID() != arrow.INT64 && a.DataType().ID() != arrow.STRING:
			return nil, fmt.Errorf("%w: primary key of type %s, want int64 or utf8", ErrSchema, a.DataType())
		case a.DataType().ID() != pks[0].DataType().ID():
			return nil, fmt.Errorf("%w: primary keys of types %s and %s", ErrSchema, pks[0].DataType(), a.DataType())
		case a.NullN() > 0:
			return nil, fmt.Errorf("%w: primary key column has nulls", ErrSchema)
		}
		s.Rows += int64(a.Len())
	}
	if s.Rows == 0 {
		return nil, fmt.Errorf("build stats: %w", ErrEmpty)
	}
	s.Bloom = NewBloom(s.Rows, fpp)
	first := true
	for _, a := range pks {
		switch a := a.(type) {
		case *array.Int64:
			for _, v := range a.Int64Values() {
				if first || v < s.MinInt {
					s.MinInt = v
				}
				if first || v > s.MaxInt {
					s.MaxInt = v
				}
				first = false
				s.Bloom.AddHash(HashInt64(v))
			}
		case *array.String:
			s.StringPK = true
			for i := range a.Len() {
				v := a.Value(i)
				if first || v < s.MinString {
					s.MinString = v
				}
				if first || v > s.MaxString {
					s.MaxString = v
				}
				first = false
				s.Bloom.AddHash(HashString(v))
			}
		}
	}
	// Value aliases the caller's Arrow buffers, which may be released or reused.
	s.MinString, s.MaxString = strings.Clone(s.MinString), strings.Clone(s.MaxString)
	return s, nil
}

// MayContainInt64 reports whether the rows may hold Int64 primary key pk. False is certain.
func (s *Stats) MayContainInt64(pk int64) bool {
	return !s.StringPK && pk >= s.MinInt && pk <= s.MaxInt && s.Bloom.HasHash(HashInt64(pk))
}

// MayContainString reports whether the rows may hold VarChar primary key pk. False is certain.
func (s *Stats) MayContainString(pk string) bool {
	return s.StringPK && pk >= s.MinString && pk <= s.MaxString && s.Bloom.HasHash(HashString(pk))
}

func statsSchema(stringPK bool) *arrow.Schema {
	pk := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if stringPK {
		pk = arrow.BinaryTypes.String
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: StatsPKMin, Type: pk},
		{Name: StatsPKMax, Type: pk},
		{Name: StatsRows, Type: arrow.PrimitiveTypes.Int64},
		{Name: StatsBloom, Type: arrow.BinaryTypes.Binary},
		{Name: StatsBloomFPP, Type: arrow.PrimitiveTypes.Float64},
		{Name: StatsBloomAlg, Type: arrow.BinaryTypes.String},
	}, nil)
}

// WriteStats writes s as a one-row Parquet stats file to w, does not close w, and returns the
// file's size.
func WriteStats(w io.Writer, s *Stats) (int64, error) {
	if s == nil || s.Rows <= 0 || s.Bloom == nil {
		return 0, fmt.Errorf("write stats file: %w", ErrEmpty)
	}
	schema := statsSchema(s.StringPK)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	if s.StringPK {
		b.Field(0).(*array.StringBuilder).Append(s.MinString)
		b.Field(1).(*array.StringBuilder).Append(s.MaxString)
	} else {
		b.Field(0).(*array.Int64Builder).Append(s.MinInt)
		b.Field(1).(*array.Int64Builder).Append(s.MaxInt)
	}
	b.Field(2).(*array.Int64Builder).Append(s.Rows)
	b.Field(3).(*array.BinaryBuilder).Append(s.Bloom.Bytes())
	b.Field(4).(*array.Float64Builder).Append(s.FPP)
	b.Field(5).(*array.StringBuilder).Append(BloomAlgorithm)
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Uncompressed), // a filter is random bits
		parquet.WithDictionaryDefault(false),
		parquet.WithStatsPath(parquet.ColumnPath{StatsBloom}, false),
		parquet.WithCreatedBy("weir"),
	}
	n, err := writeParquet(w, KindStats, schema, props, map[string]string{}, func(fw *pqarrow.FileWriter) error {
		return fw.Write(rec)
	})
	if err != nil {
		return 0, fmt.Errorf("write stats file: %w", err)
	}
	return n, nil
}

// ReadStats reads a stats file.
func ReadStats(r io.ReaderAt, size int64) (*Stats, error) {
	rec, err := readOneRecord(r, size, KindStats)
	if err != nil {
		return nil, fmt.Errorf("read stats file: %w", err)
	}
	defer rec.Release()
	if rec.NumRows() != 1 {
		return nil, fmt.Errorf("read stats file: %w: %d rows", ErrFormat, rec.NumRows())
	}
	s := &Stats{}
	if lo, ok := column(rec, StatsPKMin).(*array.String); ok {
		s.StringPK = true
		hi, ok := column(rec, StatsPKMax).(*array.String)
		if !ok {
			return nil, fmt.Errorf("read stats file: %w: %s is not utf8", ErrFormat, StatsPKMax)
		}
		s.MinString, s.MaxString = strings.Clone(lo.Value(0)), strings.Clone(hi.Value(0))
	} else {
		lo, ok1 := column(rec, StatsPKMin).(*array.Int64)
		hi, ok2 := column(rec, StatsPKMax).(*array.Int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("read stats file: %w: primary key bounds are not int64 or utf8", ErrFormat)
		}
		s.MinInt, s.MaxInt = lo.Value(0), hi.Value(0)
	}
	rows, ok1 := column(rec, StatsRows).(*array.Int64)
	bloom, ok2 := column(rec, StatsBloom).(*array.Binary)
	fpp, ok3 := column(rec, StatsBloomFPP).(*array.Float64)
	alg, ok4 := column(rec, StatsBloomAlg).(*array.String)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("read stats file: %w: columns are not %s", ErrFormat, statsSchema(s.StringPK))
	}
	if alg.Value(0) != BloomAlgorithm {
		return nil, fmt.Errorf("read stats file: %w: bloom algorithm %q", ErrFormat, alg.Value(0))
	}
	s.Rows, s.FPP = rows.Value(0), fpp.Value(0)
	if s.Bloom, err = BloomFromBytes(bloom.Value(0)); err != nil {
		return nil, fmt.Errorf("read stats file: %w", err)
	}
	return s, nil
}

// column returns the column of rec named name, or nil.
func column(rec arrow.RecordBatch, name string) arrow.Array {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		return nil
	}
	return rec.Column(idx[0])
}

// readOneRecord reads a whole small file (stats, deletes) of the given kind as one record.
func readOneRecord(r io.ReaderAt, size int64, kind Kind) (arrow.RecordBatch, error) {
	fr, err := openParquet(r, size, kind)
	if err != nil {
		return nil, err
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	defer tbl.Release()
	cols := make([]arrow.Array, tbl.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		chunks := tbl.Column(i).Data().Chunks()
		if len(chunks) == 1 {
			cols[i] = chunks[0]
			cols[i].Retain()
			continue
		}
		if cols[i], err = array.Concatenate(chunks, memory.DefaultAllocator); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
	}
	return array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows()), nil
}
