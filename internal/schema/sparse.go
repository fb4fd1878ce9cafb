package schema

import (
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
)

// sparseParams checks the type parameters of a SparseFloatVector field. A sparse vector has
// no fixed dimension: each row names the indices it holds, up to 2^32-2. Milvus's proxy
// (validateDimension) refuses a dim parameter with this text, naming the field ID the client
// sent, since it checks before IDs are assigned.
func sparseParams(f *schemapb.FieldSchema, params map[string]string) error {
	if _, ok := params[KeyDim]; ok {
		return apierr.Milvus(apierr.SparseDim, f.GetName(), f.GetFieldID())
	}
	return nil
}
