package batch

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// EncodeIPC encodes rec as an Arrow IPC stream (its schema, then the one record), the form a
// batch takes in a DML channel: self-describing, so a data node decodes it without the
// collection schema. It is uncompressed: LZ4 saves nothing on float vectors, which are
// almost all of an insert, and costs more time than the copy (BenchmarkEncodeIPC).
func EncodeIPC(rec arrow.RecordBatch) ([]byte, error) {
	return AppendIPC(nil, rec)
}

// AppendIPC appends the encoding of EncodeIPC to dst, so that a caller can put a header
// before it without copying the rows again.
func AppendIPC(dst []byte, rec arrow.RecordBatch) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	buf.Grow(RecordBytes(rec) + 1024) // the schema message and the flatbuffer headers
	w := ipc.NewWriter(buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeIPC decodes what EncodeIPC encoded. The caller releases the record.
func DecodeIPC(b []byte) (arrow.RecordBatch, error) {
	r, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIPC, err)
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrIPC, err)
		}
		return nil, fmt.Errorf("%w: no record", ErrIPC)
	}
	rec := r.RecordBatch()
	rec.Retain()
	if r.Next() {
		rec.Release()
		return nil, fmt.Errorf("%w: more than one record", ErrIPC)
	}
	if err := r.Err(); err != nil {
		rec.Release()
		return nil, fmt.Errorf("%w: %w", ErrIPC, err)
	}
	return rec, nil
}

// RecordBytes returns the size of rec's buffers, children included: the memory it holds, and
// close to the size of its IPC encoding.
func RecordBytes(rec arrow.RecordBatch) int {
	n := 0
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += b.Len()
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}
