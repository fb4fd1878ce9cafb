package segment

import (
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

// Delete file columns.
const (
	DeletePK  = "pk"  // int64 or utf8, the primary key's type
	DeleteTS  = "ts"  // uint64: the delete's hybrid timestamp
	DeletePos = "pos" // uint64: the channel position of the delete message
)

// Deletes are the rows of an L0 delete file, column by column: row i deletes primary key
// IntPKs[i] (or StringPKs[i]) as of timestamp TS[i], read at channel position Pos[i]. Exactly
// one of IntPKs and StringPKs is set, by the type of the collection's primary key.
type Deletes struct {
	IntPKs    []int64
	StringPKs []string
	TS        []uint64
	Pos       []uint64
}

// Len returns the number of deletes.
func (d *Deletes) Len() int { return max(len(d.IntPKs), len(d.StringPKs)) }

func deleteSchema(stringPK bool) *arrow.Schema {
	pk := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if stringPK {
		pk = arrow.BinaryTypes.String
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: DeletePK, Type: pk},
		{Name: DeleteTS, Type: arrow.PrimitiveTypes.Uint64},
		{Name: DeletePos, Type: arrow.PrimitiveTypes.Uint64},
	}, nil)
}

// WriteDeletes writes d as a Parquet delete file to w and does not close w. FileInfo's
// timestamps are those of the deletes.
func WriteDeletes(w io.Writer, d Deletes) (FileInfo, error) {
	n := d.Len()
	if n == 0 {
		return FileInfo{}, fmt.Errorf("write delete file: %w", ErrEmpty)
	}
	if len(d.IntPKs) > 0 && len(d.StringPKs) > 0 {
		return FileInfo{}, fmt.Errorf("write delete file: %w: both int64 and string keys", ErrSchema)
	}
	if len(d.TS) != n || len(d.Pos) != n {
		return FileInfo{}, fmt.Errorf("write delete file: %w: %d keys, %d timestamps, %d positions", ErrSchema, n, len(d.TS), len(d.Pos))
	}
	stringPK := len(d.StringPKs) > 0
	schema := deleteSchema(stringPK)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	if stringPK {
		b.Field(0).(*array.StringBuilder).AppendValues(d.StringPKs, nil)
	} else {
		b.Field(0).(*array.Int64Builder).AppendValues(d.IntPKs, nil)
	}
	b.Field(1).(*array.Uint64Builder).AppendValues(d.TS, nil)
	b.Field(2).(*array.Uint64Builder).AppendValues(d.Pos, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithCreatedBy("weir"),
	}
	size, err := writeParquet(w, KindDelete, schema, props, map[string]string{}, func(fw *pqarrow.FileWriter) error {
		return fw.Write(rec)
	})
	if err != nil {
		return FileInfo{}, fmt.Errorf("write delete file: %w", err)
	}
	lo, hi := minMaxUint64(rec.Column(1).(*array.Uint64))
	return FileInfo{Rows: int64(n), Bytes: size, MinTS: lo, MaxTS: hi}, nil
}

// ReadDeletes reads a delete file.
func ReadDeletes(r io.ReaderAt, size int64) (Deletes, error) {
	rec, err := readOneRecord(r, size, KindDelete)
	if err != nil {
		return Deletes{}, fmt.Errorf("read delete file: %w", err)
	}
	defer rec.Release()
	ts, ok1 := column(rec, DeleteTS).(*array.Uint64)
	pos, ok2 := column(rec, DeletePos).(*array.Uint64)
	if !ok1 || !ok2 {
		return Deletes{}, fmt.Errorf("read delete file: %w: %s and %s are not uint64", ErrFormat, DeleteTS, DeletePos)
	}
	d := Deletes{
		TS:  append([]uint64(nil), ts.Uint64Values()...),
		Pos: append([]uint64(nil), pos.Uint64Values()...),
	}
	switch pk := column(rec, DeletePK).(type) {
	case *array.Int64:
		d.IntPKs = append([]int64(nil), pk.Int64Values()...)
	case *array.String:
		d.StringPKs = make([]string, pk.Len())
		for i := range d.StringPKs {
			d.StringPKs[i] = strings.Clone(pk.Value(i)) // Value aliases the Arrow buffer
		}
	default:
		return Deletes{}, fmt.Errorf("read delete file: %w: %s is not int64 or utf8", ErrFormat, DeletePK)
	}
	return d, nil
}
