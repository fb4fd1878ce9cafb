package batch

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
)

// A sparse float vector row, on the wire (SparseFloatArray.contents) and in the record alike,
// is a sequence of 8-byte elements: a little-endian uint32 index, then the little-endian bits
// of a float32 value, in strictly increasing index order. The record stores each row's bytes
// as they came, one value of a binary column.
const sparseElemBytes = 8

// checkSparse validates the sparse rows of field name. The text for no rows at all is that of Milvus's proxy
// (checkSparseFloatFieldData); each row is checked as Milvus's typeutil.ValidateSparseFloatRows
// does, with its texts. Rows are not tied to a dimension, and VectorField.dim, which SDKs set
// to the largest index plus one, is ignored, as Milvus does.
func checkSparse(name string, vf *schemapb.VectorField) error {
	rows := vf.GetSparseFloatVector().GetContents() // the array is there: checkData checked
	if rows == nil {
		return apierr.Milvus(apierr.NoFieldData, fmt.Sprintf("sparse float field '%s' is illegal, array type mismatch", name), "need sparse float array")
	}
	for i, row := range rows {
		if err := checkSparseRow(row); err != nil {
			return err.With("sparse float field %q, row %d", name, i)
		}
	}
	return nil
}

// checkSparseRow checks one row, in Milvus's order: its length, then for each element its
// index (below 2^32-1, above the previous one) and its value (finite, not negative). An empty
// row is valid. Milvus also refuses a nil row, but gRPC cannot carry the difference between
// nil and empty bytes, so Weir treats both as empty.
func checkSparseRow(row []byte) *apierr.Error {
	if len(row)%sparseElemBytes != 0 {
		return apierr.Milvus(apierr.SparseDataLength, len(row))
	}
	var prev uint32
	for i := 0; i < len(row); i += sparseElemBytes {
		idx := binary.LittleEndian.Uint32(row[i:])
		if idx == math.MaxUint32 {
			return apierr.Milvus(apierr.SparseIndexMax)
		}
		if i > 0 && idx <= prev {
			return apierr.Milvus(apierr.SparseUnsorted)
		}
		prev = idx
		v := math.Float32frombits(binary.LittleEndian.Uint32(row[i+4:]))
		if v-v != 0 { // NaN or ±Inf
			return apierr.Milvus(apierr.NotFinite, v)
		}
		if v < 0 {
			return apierr.Milvus(apierr.SparseNegative)
		}
	}
	return nil
}

// SparseRowDim returns the dimension a sparse row spans: its last (largest) index plus one,
// or 0 for an empty row, as Milvus's typeutil.SparseFloatRowDim.
func SparseRowDim(row []byte) int64 {
	if len(row) < sparseElemBytes {
		return 0
	}
	last := (len(row)/sparseElemBytes - 1) * sparseElemBytes
	return int64(binary.LittleEndian.Uint32(row[last:])) + 1
}

// sparseFieldData converts a sparse vector column back into Milvus's form: the rows' bytes,
// and as dim, on both the VectorField and the SparseFloatArray, the largest dimension a row
// spans (Milvus's proxy sets the array's, the Go SDK the field's).
func sparseFieldData(fd *schemapb.FieldData, col arrow.Array) *schemapb.FieldData {
	b := col.(*array.Binary)
	rows := binaryValues(b, 0, b.Len())
	var dim int64
	for _, r := range rows {
		dim = max(dim, SparseRowDim(r))
	}
	fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: dim, Data: &schemapb.VectorField_SparseFloatVector{
		SparseFloatVector: &schemapb.SparseFloatArray{Contents: rows, Dim: dim},
	}}}
	return fd
}
