package batch

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// RowRef is one row of a record.
type RowRef struct {
	Rec arrow.RecordBatch
	Row int
}

// Take builds a record of fields holding the rows refs name, in order: column c of the result
// is column cols[c] of each referenced record, whose type must be fields[c]'s. Consecutive rows
// of one record are sliced once. The result copies what it holds.
func Take(fields []arrow.Field, cols []int, refs []RowRef) (arrow.RecordBatch, error) {
	out := make([]arrow.Array, len(cols))
	defer func() {
		for _, c := range out {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c, col := range cols {
		var parts []arrow.Array
		for j := 0; j < len(refs); {
			e := j + 1
			for e < len(refs) && refs[e].Rec == refs[j].Rec && refs[e].Row == refs[e-1].Row+1 {
				e++
			}
			parts = append(parts, array.NewSlice(refs[j].Rec.Column(col), int64(refs[j].Row), int64(refs[e-1].Row+1)))
			j = e
		}
		var err error
		if len(parts) == 0 {
			out[c] = array.MakeArrayOfNull(memory.DefaultAllocator, fields[c].Type, 0)
		} else {
			out[c], err = array.Concatenate(parts, memory.DefaultAllocator)
		}
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			return nil, err
		}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), out, int64(len(refs))), nil
}
