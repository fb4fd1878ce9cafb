package readapi

import (
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/batch"
)

// pick is one row of one shard's result record.
type pick struct {
	shard, row int
}

// takeFields builds Milvus's output columns from the picked rows of the shards' records, in
// pick order; the dynamic field keeps only dynKeys when they are set.
func takeFields(sch *schemapb.CollectionSchema, recs []arrow.RecordBatch, picks []pick, dynKeys []string) ([]*schemapb.FieldData, error) {
	var proto arrow.RecordBatch
	for _, r := range recs {
		if r != nil {
			proto = r
			break
		}
	}
	if proto == nil || proto.NumCols() == 0 {
		return nil, nil
	}
	refs := make([]batch.RowRef, len(picks))
	for i, p := range picks {
		refs[i] = batch.RowRef{Rec: recs[p.shard], Row: p.row}
	}
	cols := make([]int, proto.NumCols())
	for i := range cols {
		cols[i] = i
	}
	rec, err := batch.Take(proto.Schema().Fields(), cols, refs)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	fds, err := batch.ToFieldData(rec, sch)
	if err != nil {
		return nil, err
	}
	if len(dynKeys) > 0 {
		for _, fd := range fds {
			if fd.GetIsDynamic() {
				if err := keepKeys(fd, dynKeys); err != nil {
					return nil, err
				}
			}
		}
	}
	return fds, nil
}

// keepKeys keeps only keys in each row of a dynamic field's JSON, as Milvus returns the dynamic
// keys asked for.
func keepKeys(fd *schemapb.FieldData, keys []string) error {
	rows := fd.GetScalars().GetJsonData().GetData()
	for i, row := range rows {
		var m map[string]json.RawMessage
		if len(row) == 0 {
			continue
		}
		if err := json.Unmarshal(row, &m); err != nil {
			return fmt.Errorf("dynamic field of row %d: %w", i, err)
		}
		out := map[string]json.RawMessage{}
		for _, k := range keys {
			if v, ok := m[k]; ok {
				out[k] = v
			}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		rows[i] = b
	}
	return nil
}

// outputNames are the output fields a result names, as Milvus's proxy reports them: each
// column's field name (the primary key included, as Milvus adds it), and for the dynamic field
// the keys asked for, or "$meta" when it is returned whole. Clients (the Node SDK) build rows
// from these names.
func outputNames(fields []*schemapb.FieldData, dynKeys []string) []string {
	out := make([]string, 0, len(fields)+len(dynKeys))
	for _, f := range fields {
		if f.GetIsDynamic() && len(dynKeys) > 0 {
			out = append(out, dynKeys...)
			continue
		}
		out = append(out, f.GetFieldName())
	}
	return out
}
