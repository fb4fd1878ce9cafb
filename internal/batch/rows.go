package batch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
)

var (
	// ErrNoAutoIDs means the collection generates its primary keys but the caller passed no
	// FromOptions.AutoIDs to allocate them.
	ErrNoAutoIDs = errors.New("batch: the primary key is auto-generated but no ID allocator was given")
	// ErrRecordMismatch means a record's columns do not match the collection schema.
	ErrRecordMismatch = errors.New("batch: record does not match the collection schema")
	// ErrIPC means an encoded batch is not one Arrow IPC stream holding exactly one record.
	ErrIPC = errors.New("batch: malformed IPC stream")
)

// Limits Weir shares with Milvus's defaults.
const (
	// DefaultMaxBatchBytes bounds the data of one insert or upsert request, in the units of the
	// Arrow record it becomes (Milvus's gRPC server accepts 64 MiB requests by default).
	DefaultMaxBatchBytes = 64 << 20
	// MaxJSONBytes bounds one JSON value, as Milvus's common.JSONMaxLength default.
	MaxJSONBytes = 65536
)

// FromOptions are the per-request settings of FromFieldData.
type FromOptions struct {
	// AutoIDs allocates n consecutive primary keys and returns the first. It is called, once
	// and only after the request passed validation, when the primary key is auto-generated
	// and the request is an insert.
	AutoIDs func(n int) (first int64, err error)
	// Upsert marks an UpsertRequest: the primary key must be given even when it is
	// auto-generated (Milvus: upsert needs the keys it replaces), and a key may not repeat
	// within the batch.
	Upsert bool
	// BeforeValues, when set, is called after the request's columns were matched to the
	// schema (unknown, repeated, missing) and before any column's data is checked: where
	// Milvus checks a write's partition name.
	BeforeValues func() error
	// MaxBatchBytes bounds the size of the batch; 0 means DefaultMaxBatchBytes. Keep it below
	// 2 GiB: string columns use 32-bit offsets.
	MaxBatchBytes int
	// Allocator allocates the Arrow buffers; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

// PKs are the primary keys of a batch, in row order: Int64 for an Int64 key, Strings for a
// VarChar key (the other is nil).
type PKs struct {
	Int64   []int64
	Strings []string
}

// Len returns the number of keys.
func (p PKs) Len() int { return len(p.Int64) + len(p.Strings) }

// Hash returns the Milvus routing hash of the i-th key (HashInt64 or HashString).
func (p PKs) Hash(i int) uint32 {
	if p.Strings != nil {
		return HashString(p.Strings[i])
	}
	return HashInt64(p.Int64[i])
}

// IDs returns the keys as Milvus reports them in a MutationResult.
func IDs(p PKs) *schemapb.IDs {
	if p.Strings != nil {
		return &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: p.Strings}}}
	}
	return &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: p.Int64}}}
}

// Rows is a validated batch of rows of one collection, held as Arrow arrays, waiting for the
// timestamp of the channel append that will carry it (Record). Rows owns its arrays: call
// Release when done with it.
type Rows struct {
	schema *arrow.Schema
	cols   []arrow.Array // every column of schema but the last, TimestampColumn
	n      int
	pks    PKs
	mem    memory.Allocator
}

// Len returns the number of rows.
func (r *Rows) Len() int { return r.n }

// Schema returns the Arrow schema of the batch's records: ArrowSchema of its collection.
func (r *Rows) Schema() *arrow.Schema { return r.schema }

// PrimaryKeys returns the rows' primary keys, for routing and for the MutationResult.
func (r *Rows) PrimaryKeys() PKs { return r.pks }

// Release releases the rows' arrays. Records made by Record keep their own references.
func (r *Rows) Release() {
	for _, c := range r.cols {
		c.Release()
	}
	r.cols = nil
}

// Record returns the rows as a record of Schema() whose TimestampColumn holds ts in every
// row. The timestamp is an argument rather than a column filled in place because a batch
// learns it only when it is appended to its channel, after Split, and Arrow arrays are
// immutable: building the record then costs one 8-byte-per-row column and shares the rest.
// The caller releases the record.
func (r *Rows) Record(ts uint64) arrow.RecordBatch {
	buf := memory.NewResizableBuffer(r.mem)
	buf.Resize(8 * r.n)
	tsv := arrow.Uint64Traits.CastFromBytes(buf.Bytes())
	for i := range tsv {
		tsv[i] = ts
	}
	tsArr := fixedArray(arrow.PrimitiveTypes.Uint64, r.n, buf)
	defer tsArr.Release()
	return array.NewRecordBatch(r.schema, append(slices.Clip(r.cols), tsArr), int64(r.n))
}

// FromFieldData validates the columns of an InsertRequest or UpsertRequest against collection
// schema s as Milvus's proxy does and converts them into Rows. Columns are matched to fields
// by FieldName, or by FieldId when the name is empty (SDKs send names and FieldId 0);
// FieldData.Type is ignored, as Milvus overwrites it from the schema, and the payload itself
// must have the field's type. The dynamic column (IsDynamic, or named DynamicColumn) must
// hold one JSON object per row; when the collection has dynamic fields and none is sent,
// every row gets {}.
//
// Every rejection of the request is an *apierr.Error naming the field, what was expected and
// what was got (Milvus's wording where Milvus has one); a schema Weir could not have accepted
// and a failing AutoIDs give other errors.
// Validation finishes before anything is built and before AutoIDs is called, so a rejected
// request allocates neither memory for rows nor IDs.
//
// Float vector columns borrow the request's memory instead of copying it (on little-endian
// machines, where the bytes are the same): the Rows must not outlive cols, and cols must not
// change while the Rows are in use.
func FromFieldData(s *schemapb.CollectionSchema, cols []*schemapb.FieldData, numRows uint32, opts FromOptions) (*Rows, error) {
	as, err := ArrowSchema(s)
	if err != nil {
		return nil, err
	}
	n := int(numRows)
	limit := opts.MaxBatchBytes
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	mem := opts.Allocator
	if mem == nil {
		mem = memory.DefaultAllocator
	}

	// The checks run in the order of Milvus's proxy, so that a request with several faults
	// gets the error Milvus would give: the primary key of an upsert, unknown and repeated
	// columns, the row count, missing columns, then each column's data.
	fields := s.GetFields()
	pkIdx := slices.IndexFunc(fields, func(f *schemapb.FieldSchema) bool { return f.GetIsPrimaryKey() })
	if pkIdx < 0 {
		return nil, fmt.Errorf("batch: collection %q has no primary key", s.GetName())
	}
	pk := fields[pkIdx]
	if opts.Upsert && !slices.ContainsFunc(cols, func(fd *schemapb.FieldData) bool { return fieldIndex(fields, fd) == pkIdx }) {
		return nil, apierr.Milvus(apierr.UpsertNoPrimaryKey, pk.GetName())
	}
	given := make([]*schemapb.FieldData, len(fields))
	var dyn *schemapb.FieldData
	sent := 0
	for _, fd := range cols {
		if fd.GetIsDynamic() || fd.GetFieldName() == DynamicColumn {
			if !s.GetEnableDynamicField() {
				return nil, apierr.Milvus(apierr.FieldNotInSchema, DynamicColumn, schemapb.DataType_JSON, fd.GetFieldId())
			}
			if dyn != nil {
				return nil, apierr.Milvus(apierr.DuplicatedField, DynamicColumn)
			}
			dyn = fd
			continue
		}
		i := fieldIndex(fields, fd)
		if i < 0 {
			name := fd.GetFieldName()
			if name == "" {
				name = "#" + strconv.FormatInt(fd.GetFieldId(), 10)
			}
			return nil, apierr.Milvus(apierr.FieldNotInSchema, name, fd.GetType(), fd.GetFieldId()).With("collection %q", s.GetName())
		}
		if given[i] != nil {
			return nil, apierr.Milvus(apierr.DuplicatedField, fields[i].GetName())
		}
		given[i] = fd
		sent++
	}
	if opts.Upsert {
		if err := checkUniqueKeys(pk, given[pkIdx]); err != nil {
			return nil, err
		}
	}
	if dyn != nil {
		// Milvus checks the dynamic field's JSON first of all the data.
		if err := checkDynamic(s, dyn); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, apierr.Milvus(apierr.NumRowsZero, n)
	}

	autoID := pk.GetAutoID() && !opts.Upsert
	filled := 0
	omitted := make([]bool, len(fields)) // the columns of omitted fields that take nulls or defaults
	for i, f := range fields {
		switch {
		case given[i] != nil || i == pkIdx && autoID:
		case hasFill(f):
			omitted[i] = true
			filled++
		default:
			return nil, apierr.Milvus(apierr.FieldNotPassed, f.GetName())
		}
	}
	if autoID && given[pkIdx] != nil {
		// Milvus counts the columns: the generated key is one more than the schema has. It
		// counts the dynamic field too, which it has added to the request by then.
		dynamic := 0
		if s.GetEnableDynamicField() {
			dynamic = 1
		}
		return nil, apierr.Milvus(apierr.MoreFieldData, len(fields)+dynamic, sent+filled+1+dynamic).With("the primary key %q is generated; do not pass it", pk.GetName())
	}

	if opts.BeforeValues != nil {
		if err := opts.BeforeValues(); err != nil {
			return nil, err
		}
	}

	// The three phases of Milvus's checks (see check.go), over the columns in the order the
	// request sends them. The all-null columns of omitted fields never fail a check: they are
	// made only after the sent columns showed the request holds num_rows rows, so that a request
	// claiming more rows than it carries allocates nothing the size of its claim.
	var order []*column
	byField := make([]*column, len(fields))
	add := func(i int) {
		if byField[i] == nil && given[i] != nil {
			byField[i] = &column{f: fields[i], fd: given[i]}
			order = append(order, byField[i])
		}
	}
	for _, fd := range cols {
		if i := fieldIndex(fields, fd); i >= 0 && given[i] == fd {
			add(i)
		}
	}
	for i := range fields {
		add(i)
	}
	for _, c := range order {
		if err := checkData(c); err != nil {
			return nil, err
		}
	}
	for _, c := range order {
		before := c.fd
		if c.fd, c.valid, err = fill(c.f, c.fd, n, c.values); err != nil {
			return nil, err
		}
		if c.fd != before {
			c.values = n // filled in: one value per row
		}
	}
	for _, c := range order {
		if err := checkAligned(c, n); err != nil {
			return nil, err
		}
	}
	if dyn != nil {
		if rows := len(dyn.GetScalars().GetJsonData().GetData()); rows != n {
			return nil, rowsError(DynamicColumn, rows, n)
		}
	}

	// The size is counted before the omitted fields' columns are made, so that a request
	// whose rows would make them too large is refused before they take any memory.
	size := 8 * n // TimestampColumn
	for i, f := range fields {
		if omitted[i] {
			size += omittedSize(f, n)
		} else if c := byField[i]; c != nil {
			size += dataSize(f, c.fd, n)
			if c.valid != nil {
				size += n / 8
			}
		} else { // the generated key
			size += 8 * n
			if f.GetDataType() == schemapb.DataType_VarChar {
				size += 16 * n // at most 20 decimal digits and a 4-byte offset
			}
		}
		if size > limit {
			return nil, tooLarge(size, limit)
		}
	}
	if s.GetEnableDynamicField() {
		sz := 6 * n // {} and an offset
		if dyn != nil {
			sz = bytesSize(dyn.GetScalars().GetJsonData().GetData())
		}
		if size += sz; size > limit {
			return nil, tooLarge(size, limit)
		}
	}

	for i, f := range fields {
		if omitted[i] {
			c := &column{f: f, fd: absentColumn(f, n)}
			if c.fd, c.valid, err = fill(f, c.fd, n, 0); err != nil {
				return nil, err
			}
			byField[i] = c
		}
	}

	var first int64
	if autoID {
		if opts.AutoIDs == nil {
			return nil, ErrNoAutoIDs
		}
		if first, err = opts.AutoIDs(n); err != nil {
			return nil, fmt.Errorf("allocate %d ids: %w", n, err)
		}
	}

	r := &Rows{schema: as, n: n, mem: mem, cols: make([]arrow.Array, 0, len(as.Fields())-1)}
	for i, f := range fields {
		var col arrow.Array
		if c := byField[i]; c == nil { // the generated key
			col, r.pks = autoIDColumn(mem, f, as.Field(i).Type, first, n)
		} else {
			col = withNulls(mem, buildColumn(mem, f, as.Field(i).Type, c.fd, n), c.valid)
			if i == pkIdx {
				r.pks = keysOf(c.fd)
			}
		}
		r.cols = append(r.cols, col)
	}
	if s.GetEnableDynamicField() {
		r.cols = append(r.cols, buildDynamic(mem, dyn, n))
	}
	return r, nil
}

// fieldIndex returns the index of the field fd carries, or -1.
func fieldIndex(fields []*schemapb.FieldSchema, fd *schemapb.FieldData) int {
	name, id := fd.GetFieldName(), fd.GetFieldId()
	for i, f := range fields {
		if name != "" && f.GetName() == name || name == "" && id != 0 && f.GetFieldID() == id {
			return i
		}
	}
	return -1
}

func invalid(format string, args ...any) error {
	return apierr.New(apierr.ParameterInvalid, format, args...)
}

func tooLarge(size, limit int) error {
	return apierr.New(apierr.ParameterTooLarge, "the insert batch has at least %d bytes, the limit is %d bytes", size, limit)
}

func keysOf(fd *schemapb.FieldData) PKs {
	sc := fd.GetScalars()
	if s := sc.GetStringData(); s != nil {
		return PKs{Strings: slices.Clone(s.GetData())}
	}
	return PKs{Int64: slices.Clone(sc.GetLongData().GetData())}
}

func checkUniqueKeys(f *schemapb.FieldSchema, fd *schemapb.FieldData) error {
	pks := keysOf(fd)
	if pks.Strings != nil {
		return firstDuplicate(f.GetName(), pks.Strings)
	}
	return firstDuplicate(f.GetName(), pks.Int64)
}

func firstDuplicate[K comparable](name string, keys []K) error {
	seen := make(map[K]int, len(keys))
	for i, k := range keys {
		if j, ok := seen[k]; ok {
			return apierr.Milvus(apierr.UpsertDuplicateKeys).With("key %v of field %q at rows %d and %d", k, name, j, i)
		}
		seen[k] = i
	}
	return nil
}
