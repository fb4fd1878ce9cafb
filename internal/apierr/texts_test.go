package apierr

import (
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notThroughTheSDK are the texts the official Go SDK never lets a request reach: it refuses the
// request itself first, or never sends what they reject. Their tests are unit tests of the
// packages that raise them.
var notThroughTheSDK = map[Text]string{
	TopKMissing:            "the SDK always sends topk (readapi TestSearchParams)",
	LimitNotInt:            "the SDK's WithLimit takes an integer (readapi TestQueryParams)",
	OffsetQueryNotInt:      "the SDK's WithOffset takes an integer (readapi TestQueryParams)",
	LoadFailed:             "a load fails only on a query node over its memory limit, which the shared test server is not (querynode TestLoadOverTheMemoryLimitFails, readapi TestLoadFailureIsReported)",
	CollectionNotLoadedID:  "the SDK calls GetLoadingProgress only while awaiting a load it started (readapi TestLoadProgress)",
	NoDatabase:             "the SDK resolves the database before any call",
	CollectionNameMismatch: "the SDK always sends the schema name it was given as the collection name",
	CollectionLimit:        "65,536 collections",
	PartitionLimit:         "1,024 partitions (meta TestPartitionLimit)",
	FieldsLimit:            "schema TestNormalizeRejects",
	DynamicFieldDeclared:   "the SDK has no way to declare the dynamic field",
	NoneElementType:        "schema TestNormalizeRejects",
	MaxCapacityNotInteger:  "the SDK's WithMaxCapacity takes an integer",
	DuplicatedTypeParam:    "the SDK keeps type parameters in a map",
	DuplicatedIndexParam:   "the SDK keeps index parameters in a map",
	BinaryBitsMismatch:     "the SDK builds whole vectors (batch TestFromFieldDataRejects)",
	FieldNotInSchema:       "the SDK refuses a column the collection does not have",
	DuplicatedField:        "the SDK refuses a repeated column",
	NumRowsMismatch:        "the SDK refuses columns of different lengths",
	NumRowsZero:            "the SDK refuses an insert without rows",
	DimMismatch:            "the SDK refuses a vector of another dim",
	VectorBytesMismatch:    "the SDK builds whole vectors",
	Float16NotFinite:       "batch TestFromFieldDataRejects",
	BFloat16NotFinite:      "batch TestFromFieldDataRejects",
	ArrayElementMismatch:   "the SDK's array columns are typed",
	IntegerOverflow:        "the SDK's Int8 and Int16 columns are typed",
	VarCharArrayTooLong:    "batch TestFromFieldDataRejects",
	JSONTooLong:            "batch TestFromFieldDataRejects",
	DynamicTooLong:         "batch TestFromFieldDataRejects",
	DynamicNotObject:       "the SDK builds the dynamic column from a map",
	DynamicMetaKey:         "batch TestFromFieldDataRejects",
	DynamicStaticName:      "the SDK refuses a dynamic key that names a field",
	DynamicDisabled:        "the SDK refuses a column the collection does not have",
	FieldLength:            "the SDK checks values against valid_data",
	SparseDataLength:       "the SDK's sparse rows are whole elements (batch TestFromFieldDataRejectsBadSparseAndGeometry)",
	FlushRateLimited:       "Weir does not limit flushes (docs/api.md)",
	IndexParamDuplicated:   "the SDK keeps index parameters in a map (readapi TestCreateIndexChecks)",
	SchemaChanged:          "the SDK describes the collection again and retries (proxy TestRejectedWritesAppendNothing)",
}

// TestEveryTextIsTestedThroughTheSDK checks that each of Milvus's texts is asserted by the Go
// SDK conformance tests, or is one the SDK cannot reach (listed above with where it is tested).
func TestEveryTextIsTestedThroughTheSDK(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "compat", "gosdk", "*_test.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	// Only the tests' string literals count: a word in a comment asserts nothing.
	var all strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		fset := token.NewFileSet()
		var sc scanner.Scanner
		sc.Init(fset.AddFile(f, -1, len(src)), src, nil, 0)
		for {
			_, tok, lit := sc.Scan()
			if tok == token.EOF {
				break
			}
			if tok == token.STRING {
				if v, err := strconv.Unquote(lit); err == nil {
					all.WriteString(v)
					all.WriteByte('\n')
				}
			}
		}
	}
	sdk := all.String()
	for tx := range numTexts {
		r := texts[tx]
		require.NotEmpty(t, r.format, "text %d has no row", tx)
		if why, ok := notThroughTheSDK[tx]; ok && why != "" {
			continue
		}
		// Milvus's own words, before merr's name and fields and around the verbs: the longest
		// run of them is what a test must assert.
		words := r.format
		for _, tail := range []string{": invalid parameter", ": field name invalid", "["} {
			if i := strings.Index(words, tail); i > 0 {
				words = words[:i]
			}
		}
		longest := ""
		for i, part := range strings.Split(words, "%") {
			if i > 0 && len(part) > 1 && strings.ContainsRune("sdvf", rune(part[0])) {
				part = part[1:]
			}
			if part = strings.TrimSpace(strings.Trim(part, " :,.()")); len(part) > len(longest) {
				longest = part
			}
		}
		assert.True(t, strings.Contains(sdk, longest), "text %d (%q): %q is asserted by no Go SDK test in compat/gosdk", tx, r.format, longest)
	}
}
