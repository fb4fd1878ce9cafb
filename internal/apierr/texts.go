package apierr

import "fmt"

// Text names one of Milvus 2.6's error messages. Applications, SDK helpers and Milvus's own test
// suites match on these words (as substrings of the status reason), so Weir says them exactly
// as Milvus does, with the same status code; Weir's own detail may follow (Error.With). The
// texts table below is the one place they are written.
//
// Each format reproduces what a Milvus 2.6 client receives as Status.Reason: the proxy's message
// and, where Milvus wraps it in one of its merr errors, that error's name and bracketed fields
// ("...: invalid parameter[expected=...][actual=...]"). The comment of each row names where
// Milvus raises it (milvus-io/milvus, 2.6 branch); the words are Milvus's, the code Weir's.
type Text int

// The texts, grouped by the API that raises them.
const (
	// Collections and partitions.
	NoCollection Text = iota
	NoCollectionID
	CantFindCollection
	NoPartition
	NoDatabase
	CollectionNameEmpty
	CollectionNameFirst
	CollectionNameChars
	CollectionNameLength
	CollectionNameMismatch
	CollectionDifferent
	CollectionLimit
	PartitionNameEmpty
	PartitionNameFirst
	PartitionNameChars
	PartitionNameLength
	PartitionDefaultDrop
	PartitionLimit

	// CreateCollection schemas.
	ShardsLimit
	FieldsLimit
	VectorFieldsLimit
	NoVectorField
	PrimaryKeyTwice
	PrimaryKeyType
	PrimaryKeyMissing
	DynamicFieldDeclared
	AutoIDTwice
	AutoIDNotPrimary
	StringType
	NoneType
	NoneElementType
	ElementType
	FieldNameEmpty
	FieldNameFirst
	FieldNameChars
	FieldNameLength
	FieldNameKeyword
	DimMissing
	SparseDim
	DimTooSmall
	DimTooLarge
	BinaryDimMultiple
	BinaryDimTooLarge
	MaxLengthMissing
	MaxLengthRange
	MaxCapacityMissing
	MaxCapacityNotInteger
	MaxCapacityRange
	DuplicatedFieldName
	DuplicatedTypeParam
	DuplicatedIndexParam
	PlainError
	SystemField
	PrimaryKeyNullable
	VectorNullable
	PrimaryKeyDefault
	DefaultNotSupported
	DefaultTypeMismatch
	DefaultOutOfRange
	DefaultTooLong
	GeometryDefaultInvalid

	// Insert and upsert columns.
	NumRowsZero
	SchemaChanged
	FieldNotPassed
	MoreFieldData
	FieldNotInSchema
	DuplicatedField
	NumRowsMismatch
	NoFieldData
	VarCharTooLong
	VarCharArrayTooLong
	ArrayTooLong
	ArrayElementMismatch
	IntegerOverflow
	NotFinite
	Float16NotFinite
	BFloat16NotFinite
	DimMismatch
	VectorBytesMismatch
	BinaryBitsMismatch
	JSONTooLong
	DynamicTooLong
	DynamicNotObject
	DynamicMetaKey
	DynamicStaticName
	DynamicDisabled
	ValidDataLength
	FieldLength
	SparseDataLength
	SparseIndexMax
	SparseUnsorted
	SparseNegative
	GeometryInvalid

	// Upsert.
	UpsertNoPrimaryKey
	UpsertDuplicateKeys

	// Delete.
	DeleteCollectionNotFound
	DeletePartitionNotFound
	DeletePlanEmpty
	DeletePlanInvalid

	// Flush.
	FlushRateLimited

	// Indexes.
	IndexNameLength
	IndexNameFirst
	IndexNameChars
	IndexFieldMissing
	IndexParamDuplicated
	IndexParamsJSON
	IndexTypeInvalid
	IndexAutoOnlyMetric
	IndexMetricMissing
	IndexMetricUnsupported
	IndexSparseMetric
	IndexTypeEmpty
	IndexDataType
	IndexVectorOnly
	IndexDimMismatch
	IndexDistinct
	IndexMultiple
	IndexNotFoundByName
	IndexNotFoundInCollection
	IndexDuplicates

	// Partition keys: CreateCollection, partition DDL and writes.
	PartitionKeyTwice
	PartitionKeyPrimary
	PartitionKeyNullable
	PartitionKeyType
	KeyPartitionsNegative
	KeyPartitionsLimit
	KeyPartitionsWithoutKey
	KeyPartitionCreate
	KeyPartitionDrop
	KeyPartitionNamed

	// Load, release, search and query (the read path).
	LoadNoIndex
	LoadNoIndexAtAll
	LoadReplicaChange
	LoadNotEnoughNodes
	SearchNotLoaded
	QueryNotLoaded
	CollectionNotLoadedID
	LoadFailed
	PartitionNotLoadedID
	PartitionDropLoaded
	IndexDropLoaded
	IndexParamInvalid
	SearchParamInvalid
	SearchMetricMismatch
	SearchDimMismatch
	TopKMissing
	TopKNotInt
	TopKRange
	OffsetNotInt
	OffsetRange
	OffsetTopKRange
	NqRange
	RoundDecimalInvalid
	OutputFieldMissing
	SearchPartitionMissing
	SearchKeyPartitionNamed
	QueryKeyPartitionNamed
	QueryEmptyNoLimit
	QueryCountPaginated
	ExprParse
	AnnsFieldMissing
	AnnsFieldNotVector
	AnnsFieldAmbiguous
	LimitNotInt
	OffsetQueryNotInt
	QueryWindowRange
	QueryOffsetNegative
	QueryLimitNotPositive
	ShowNotLoaded

	numTexts
)

type text struct {
	kind   Kind
	format string
}

// texts is the table of Milvus's words. Verbs take the arguments Milvus formats into them, in
// its order.
var texts = [numTexts]text{
	// merr.WrapErrCollectionNotFoundWithDB, raised by rootcoord for Insert, Upsert, Flush, Drop…
	NoCollection: {CollectionNotFound, "collection not found[database=%s][collection=%s]"},
	// merr.WrapErrCollectionNotFound, for a collection asked for by ID.
	NoCollectionID: {CollectionNotFound, "collection not found[collection=%d]"},
	// proxy DescribeCollection rewrites not-found to this; the Go SDK describes a collection
	// before every insert and upsert, so it is the text its users see for those too.
	CantFindCollection: {CollectionNotFound, "can't find collection[database=%s][collection=%s]"},
	// merr.WrapErrPartitionNotFound (proxy meta cache).
	NoPartition: {PartitionNotFound, "partition not found[partition=%s]"},
	// merr.WrapErrDatabaseNotFound.
	NoDatabase: {DatabaseNotFound, "database not found[database=%s]"},
	// proxy util.go validateCollectionNameOrAlias, in the order it checks.
	CollectionNameEmpty:  {ParameterInvalid, "collection name should not be empty: invalid parameter"},
	CollectionNameLength: {ParameterInvalid, "Invalid collection name: %s. the length of a collection name must be less than %d characters: invalid parameter"},
	CollectionNameFirst:  {ParameterInvalid, "Invalid collection name: %s. the first character of a collection name must be an underscore or letter: invalid parameter"},
	CollectionNameChars:  {ParameterInvalid, "Invalid collection name: %s. collection name can only contain numbers, letters and underscores: invalid parameter"},
	// rootcoord createCollectionTask.validateSchema.
	CollectionNameMismatch: {ParameterInvalid, "collection name = %s, schema.Name=%s: invalid parameter[expected=collection name matches schema name][actual=don't match]"},
	// rootcoord: a second create of a name with another definition.
	CollectionDifferent: {Unexpected, "create duplicate collection with different parameters, collection: %s"},
	// rootcoord checkMaxCollectionsPerDB.
	CollectionLimit: {CollectionNumLimit, "exceeded the limit number of collections[dbName=%s][limit=%d]"},
	// proxy util.go validatePartitionTag (plain errors in Milvus): a partition name may start
	// with a digit and contain '-' after its first character.
	PartitionNameEmpty:  {Unexpected, "Invalid partition name: %s. Partition name should not be empty."},
	PartitionNameLength: {Unexpected, "Invalid partition name: %s. The length of a partition name must be less than %d characters."},
	PartitionNameFirst:  {Unexpected, "Invalid partition name: %s. The first character of a partition name must be an underscore or letter."},
	PartitionNameChars:  {Unexpected, "Invalid partition name: %s. Partition name can only contain numbers, letters and underscores."},
	// rootcoord DropPartition.
	PartitionDefaultDrop: {Unexpected, "default partition cannot be deleted"},
	// rootcoord CreatePartition: the number is the partitions the collection has.
	PartitionLimit: {Unexpected, "partition number (%d) exceeds max configuration (%d), collection: %s"},

	// proxy task.go createCollectionTask.PreExecute and util.go, in the order Milvus checks.
	ShardsLimit:          {Unexpected, "maximum shards's number should be limited to %d"},
	FieldsLimit:          {Unexpected, "maximum field's number should be limited to %d"},
	VectorFieldsLimit:    {Unexpected, "maximum vector field's number should be limited to %d"},
	NoVectorField:        {ParameterInvalid, "schema does not contain vector field: invalid parameter"},
	PrimaryKeyTwice:      {Unexpected, "there are more than one primary key, field name = %s, %s"},
	PrimaryKeyType:       {Unexpected, "the data type of primary key should be Int64 or VarChar"},
	PrimaryKeyMissing:    {Unexpected, "primary key is not specified"},
	DynamicFieldDeclared: {Unexpected, "cannot explicitly set a field as a dynamic field"},
	// "speficy" is Milvus's spelling.
	AutoIDTwice:      {Unexpected, "only one field can speficy AutoID with true, field name = %s, %s"},
	AutoIDNotPrimary: {Unexpected, "only primary field can speficy AutoID with true, field name = %s"},
	StringType:       {Unexpected, "string data type not supported yet, please use VarChar type instead"},
	NoneType:         {Unexpected, "data type None is not valid"},
	NoneElementType:  {Unexpected, "element data type None is not valid"},
	ElementType:      {Unexpected, "element type %s is not supported"},
	// proxy util.go validateFieldName (merr.WrapErrFieldNameInvalid).
	FieldNameEmpty:   {FieldNameInvalid, "field name should not be empty: field name invalid[field=%s]"},
	FieldNameLength:  {FieldNameInvalid, "Invalid field name: %s. The length of a field name must be less than %d characters.: field name invalid[field=%s]"},
	FieldNameFirst:   {FieldNameInvalid, "Invalid field name: %s. The first character of a field name must be an underscore or letter.: field name invalid[field=%s]"},
	FieldNameChars:   {FieldNameInvalid, "Invalid field name: %s. Field name can only contain numbers, letters, and underscores.: field name invalid[field=%s]"},
	FieldNameKeyword: {FieldNameInvalid, "Invalid field name: %s. %s is keyword in milvus.: field name invalid[field=%s]"},
	// proxy util.go validateDimension.
	DimMissing:        {Unexpected, "dimension is not defined in field type params of field %s, check type param `dim` for vector field"},
	SparseDim:         {Unexpected, "dim should not be specified for sparse vector field %s(%d)"},
	DimTooSmall:       {Unexpected, "invalid dimension: %d. should be in range 2 ~ %d"},
	DimTooLarge:       {Unexpected, "invalid dimension: %d of field %s. float vector dimension should be in range 2 ~ %d"},
	BinaryDimMultiple: {Unexpected, "invalid dimension: %d of field %s. binary vector dimension should be multiple of 8. "},
	BinaryDimTooLarge: {Unexpected, "invalid dimension: %d of field %s. binary vector dimension should be in range 2 ~ %d"},
	// proxy util.go validateMaxLengthPerRow, validateMaxCapacityPerRow.
	MaxLengthMissing:      {Unexpected, "type param(max_length) should be specified for the field(%s) of collection %s"},
	MaxLengthRange:        {ParameterInvalid, "the maximum length specified for the field(%s) should be in (0, %d], but got %d instead: invalid parameter"},
	MaxCapacityMissing:    {Unexpected, "type param(max_capacity) should be specified for array field %s of collection %s"},
	MaxCapacityNotInteger: {Unexpected, "the value for max_capacity of field %s must be an integer"},
	MaxCapacityRange:      {Unexpected, "the maximum capacity specified for a Array should be in (0, %d]"},
	// proxy validateDuplicatedFieldName, after every per-field check.
	DuplicatedFieldName: {Unexpected, "duplicated field name %s found"},
	// rootcoord checkFieldSchema and validateSchema.
	DuplicatedTypeParam:  {ParameterInvalid, "duplicated type param key \"%s\": invalid parameter"},
	DuplicatedIndexParam: {ParameterInvalid, "duplicated index param key \"%s\": invalid parameter"},
	// A Go error Milvus passes on as it is (strconv's, protobuf's), code 65535.
	PlainError:          {Unexpected, "%v"},
	SystemField:         {ParameterInvalid, "schema contains system field: RowID, Timestamp, $meta, $namespace_id: invalid parameter[expected=schema don't contains system field][actual=contains]"},
	PrimaryKeyNullable:  {ParameterInvalid, "primary field not support null, type:%s, name:%s: invalid parameter"},
	VectorNullable:      {ParameterInvalid, "vector type not support null, type:%s, name:%s: invalid parameter"},
	PrimaryKeyDefault:   {ParameterInvalid, "primary field not support default_value, type:%s, name:%s: invalid parameter"},
	DefaultNotSupported: {ParameterInvalid, "type not support default_value, type:%s, name:%s: invalid parameter"},
	// The last verb is Milvus's name of the default's kind (DataType_Int, DataType_VarChar, ...).
	DefaultTypeMismatch:    {ParameterInvalid, "type (%s) of field (%s) is not equal to the type(%s) of default_value: invalid parameter"},
	DefaultOutOfRange:      {ParameterInvalid, "default value out of range: invalid parameter[%d out of range %d <= value <= %d]"},
	GeometryDefaultInvalid: {ParameterInvalid, "invalid default value for geometry field: invalid parameter"},
	DefaultTooLong:         {ParameterInvalid, "the length (%d) of string exceeds max length (%d): invalid parameter[expected=valid length string][actual=string length exceeds max length]"},

	// proxy task_insert.go / task_upsert.go PreExecute: the schema timestamp the client sent is
	// not the collection's (merr.WrapErrCollectionSchemaMisMatch); the Go SDK describes the
	// collection again and retries.
	SchemaChanged: {SchemaMismatch, "collection schema mismatch[collection=%s]"},
	// proxy task_insert.go / task_upsert.go PreExecute.
	NumRowsZero: {ParameterInvalid, "num_rows should be greater than 0: invalid parameter[expected=invalid num_rows][actual=%d]"},
	// proxy util.go checkFieldsDataBySchema.
	FieldNotPassed: {ParameterInvalid, "fieldSchema(%s) has no corresponding fieldData pass in: invalid parameter"},
	// proxy util.go checkPrimaryFieldData: data for an auto-generated primary key.
	MoreFieldData: {ParameterInvalid, "more fieldData has pass in: invalid parameter[expected=%d][actual=%d]"},
	// proxy checkAndFlattenStructFieldData: a column the schema does not have.
	FieldNotInSchema: {ParameterInvalid, "fieldName %s not exist in collection schema, fieldType %s, fieldId %d: invalid parameter"},
	// proxy util.go: one field sent twice.
	DuplicatedField: {ParameterInvalid, "duplicated field %s found: invalid parameter"},
	// proxy validate_util.go checkAligned.
	NumRowsMismatch: {ParameterInvalid, "the num_rows (%d) of field (%s) is not equal to passed num_rows (%d): invalid parameter[expected=%d][actual=%d]"},
	// proxy validate_util.go check*FieldData: a column without data of the field's type. The
	// first verb is Milvus's per-type opening ("field 'x' is illegal, array type mismatch"),
	// the second the per-type expectation ("need long int array").
	NoFieldData: {ParameterInvalid, "%s: invalid parameter[expected=%s][actual=got nil]"},
	// proxy validate_util.go checkVarCharFieldData.
	VarCharTooLong: {ParameterInvalid, "length of varchar field %s exceeds max length, row number: %d, length: %d, max length: %d: invalid parameter"},
	// proxy validate_util.go checkArrayElement (row and index counted from 0).
	// The first verb is the field's type, which Milvus prints: always Array.
	VarCharArrayTooLong: {ParameterInvalid, "length of %s array field \"%s\" exceeds max length, row number: %d, array index: %d, length: %d, max length: %d: invalid parameter"},
	// proxy validate_util.go checkArrayFieldData (the row is counted from 0, written "%dth").
	ArrayTooLong: {ParameterInvalid, "the length (%d) of %dth array exceeds max capacity (%d): invalid parameter[expected=valid length array][actual=array length exceeds max capacity]"},
	// proxy validate_util.go checkArrayElement.
	ArrayElementMismatch: {ParameterInvalid, "insert data does not match: invalid parameter[expected=%s array][actual=%s array]"},
	// proxy validate_util.go checkIntegerFieldData (the element is counted from 0).
	IntegerOverflow: {ParameterInvalid, "the %dth element (%d) out of range: [%d, %d]: invalid parameter[expected=integer doesn't overflow][actual=out of range]"},
	// typeutil.VerifyFloat: a plain error in Milvus, hence code 65535. Go prints NaN and the
	// infinities as Milvus does ("NaN", "+Inf", "-Inf").
	NotFinite: {Unexpected, "value '%f' is not a number or infinity"},
	// typeutil.VerifyFloats16/BFloats16.
	Float16NotFinite:  {Unexpected, "float16 vector contain nan or infinity value."},
	BFloat16NotFinite: {Unexpected, "bfloat16 vector contain nan or infinity value."},
	// proxy validate_util.go checkAligned: a vector column whose dim is not the schema's.
	DimMismatch: {ParameterInvalid, "the dim (%d) of field data(%s) is not equal to schema dim (%d): invalid parameter[expected=%d][actual=%d]"},
	// funcutil.GetNumRowsOf*VectorField: values that do not make whole vectors. The middle verb
	// is Milvus's word for the type: float, float16, bfloat, int8.
	VectorBytesMismatch: {Unexpected, "the length(%d) of %s data should divide the dim(%d)"},
	BinaryBitsMismatch:  {Unexpected, "the num(%d) of all bits should divide the dim(%d)"},
	// proxy validate_util.go checkJSONFieldData.
	JSONTooLong: {ParameterInvalid, "the length (%d) of json field (%s) exceeds max length (%d): invalid parameter[expected=valid length json string][actual=length exceeds max length]"},
	// proxy util.go verifyDynamicFieldData.
	DynamicTooLong:    {ParameterInvalid, "the length (%d) of dynamic field exceeds max length (%d): invalid parameter[expected=valid length dynamic field][actual=length exceeds max length]"},
	DynamicNotObject:  {ParameterInvalid, "invalid dynamic field data, only json map is supported: %s: invalid parameter"},
	DynamicMetaKey:    {ParameterInvalid, "cannot set json key to: $meta: invalid parameter"},
	DynamicStaticName: {ParameterInvalid, "dynamic field name cannot include the static field name: %s: invalid parameter"},
	// proxy util.go checkDynamicFieldData, for a collection without dynamic fields.
	DynamicDisabled: {ParameterInvalid, "without dynamic schema enabled, the field name cannot be set to $meta: invalid parameter"},
	// nullutil.CheckValidData: valid_data for a field that takes no nulls (expected 0), or not
	// one flag per row.
	ValidDataLength: {ParameterInvalid, "the length of valid_data of field(%s) is wrong: invalid parameter[expected=%d][actual=%d]"},
	// proxy validate_util.go fillWithNullValueImpl: values not one per valid row.
	FieldLength: {ParameterInvalid, "the length of field is wrong: invalid parameter[expected=%d][actual=%d]"},
	// typeutil.ValidateSparseFloatRows (plain errors in Milvus); a NaN or infinite value is
	// NotFinite.
	SparseDataLength: {Unexpected, "invalid data length in sparse float vector: %d"},
	SparseIndexMax:   {Unexpected, "invalid index in sparse float vector: must be less than 2^32-1"},
	SparseUnsorted:   {Unexpected, "unsorted or same indices in sparse float vector"},
	SparseNegative:   {Unexpected, "negative value in sparse float vector"},
	// proxy validate_util.go checkGeometryFieldData: go-geom's words for WKT it cannot parse.
	GeometryInvalid: {IOFailed, "IO failed: %s"},

	// proxy util.go CheckDuplicatePkExist.
	UpsertNoPrimaryKey:  {ParameterInvalid, "must assign pk when upsert, primary field: %s: invalid parameter"},
	UpsertDuplicateKeys: {ParameterInvalid, "duplicate primary keys are not allowed in the same batch: invalid parameter"},

	// proxy task_delete.go deleteRunner.Init wraps the meta cache's errors.
	DeleteCollectionNotFound: {CollectionNotFound, "Failed to get collection id: collection not found[database=%s][collection=%s]"},
	DeletePartitionNotFound:  {PartitionNotFound, "Failed to get partition id: partition not found[partition=%s]"},
	// The expression follows " : " as Milvus prints it, empty or not.
	DeletePlanEmpty:   {ParameterInvalid, "delete plan can't be empty or always true : %s: invalid parameter"},
	DeletePlanInvalid: {ParameterInvalid, "failed to create delete plan: cannot parse expression: %s, error: %s: invalid parameter"},

	// proxy RateLimitInterceptor (quotaAndLimits.flushRate.collection.max).
	FlushRateLimited: {RateLimited, "request is rejected by grpc RateLimiter middleware, please retry later: rate limit exceeded[rate=%v]"},

	// proxy task.go createCollectionTask.validatePartitionKey, field by field in this order.
	PartitionKeyTwice:    {Unexpected, "there are more than one partition key, field name = %s, %s"},
	PartitionKeyPrimary:  {Unexpected, "the partition key field must not be primary field"},
	PartitionKeyNullable: {ParameterInvalid, "partition key field not support nullable: invalid parameter"},
	PartitionKeyType:     {Unexpected, "the data type of partition key should be Int64 or VarChar"},
	// The same function, on the request's num_partitions (rootCoord.maxPartitionNum).
	KeyPartitionsNegative:   {Unexpected, "the specified partitions should be greater than 0 if partition key is used"},
	KeyPartitionsLimit:      {ParameterInvalid, "partition number (%d) exceeds max configuration (%d): invalid parameter"},
	KeyPartitionsWithoutKey: {Unexpected, "num_partitions should only be specified with partition key field enabled"},
	// proxy createPartitionTask / dropPartitionTask PreExecute, before the partition name.
	KeyPartitionCreate: {Unexpected, "disable create partition if partition key mode is used"},
	KeyPartitionDrop:   {Unexpected, "disable drop partition if partition key mode is used"},
	// proxy getPartitionKeyFieldData (insert, upsert) and the delete task.
	KeyPartitionNamed: {Unexpected, "not support manually specifying the partition names if partition key mode is used"},

	// The index API's (proxy task_index.go, indexparamcheck, datacoord index_service.go); the
	// checker's rejections end in Milvus's wrap of them.
	IndexNameLength:           {Unexpected, "Invalid index name: %s. The length of a index name must be less than %d characters."},
	IndexNameFirst:            {Unexpected, "Invalid index name: %s. The first character of a index name must be an underscore or letter."},
	IndexNameChars:            {Unexpected, "Invalid index name: %s. Index name can only contain numbers, letters, and underscores."},
	IndexFieldMissing:         {Unexpected, "cannot create index on non-exist field: %s"},
	IndexParamDuplicated:      {ParameterInvalid, "duplicated index param (key=%s) (value=%s) found: invalid parameter"},
	IndexParamsJSON:           {Unexpected, "unmarshal params failed, %v"},
	IndexTypeInvalid:          {ParameterInvalid, "invalid parameter[expected=valid index][actual=invalid index type: %s]"},
	IndexAutoOnlyMetric:       {Unexpected, "only metric type can be passed when use AutoIndex"},
	IndexMetricMissing:        {ParameterInvalid, "metric type not set for vector index: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexMetricUnsupported:    {ParameterInvalid, "%s vector index does not support metric type: %s: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexSparseMetric:         {ParameterInvalid, "only IP&BM25 is the supported metric type for sparse index: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexTypeEmpty:            {ParameterInvalid, "invalid index type: : invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexDataType:             {ParameterInvalid, "data type %s can't build with this index %s: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexVectorOnly:           {ParameterInvalid, "index %s only supports vector data type: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexDimMismatch:          {ParameterInvalid, "dimension mismatch, dimension in schema: %s, dimension: %s: invalid parameter[expected=valid index params][actual=invalid index params]"},
	IndexDistinct:             {Unexpected, "CreateIndex failed: at most one distinct index is allowed per field"},
	IndexMultiple:             {Unexpected, "CreateIndex failed: creating multiple indexes on same field is not supported"},
	IndexNotFoundByName:       {IndexNotFound, "index not found[indexName=%s]"},
	IndexNotFoundInCollection: {IndexNotFound, "index not found[collection=%s]"},
	IndexDuplicates:           {IndexDuplicate, "index duplicates[indexName=%s]"},

	// proxy task.go loadCollectionTask.Execute / loadPartitionsTask.Execute: a vector field
	// without an index when the collection has some index (a plain error; %v of a []string)...
	LoadNoIndex: {Unexpected, "there is no vector index on field: %s, please create index firstly"},
	// ...and when it has none (merr.WrapErrIndexNotFoundForCollection).
	LoadNoIndexAtAll: {IndexNotFound, "index not found[collection=%s]"},
	// querycoordv2 job/load_config.go CheckIfLoadPartitionsExecutable (a LoadCollection with
	// another replica number changes the load instead, as in Milvus).
	LoadReplicaChange: {ParameterInvalid, "can't change the replica number for loaded partitions: invalid parameter[expected=%d][actual=%d]"},
	// querycoordv2 utils/meta.go AssignReplica (streaming mode, 2.6's default).
	LoadNotEnoughNodes: {ResourceInsufficient, "when load %d replica count: service resource insufficient[currentStreamingNode=%d][expectedStreamingNode=%d]"},
	// querycoordv2 utils/util.go checkLoadStatus, wrapped by proxy task_search.go / task_query.go
	// Execute; the collection is named by its ID.
	SearchNotLoaded: {CollectionNotLoaded, "failed to search: collection not loaded[collection=%d]"},
	QueryNotLoaded:  {CollectionNotLoaded, "failed to query: collection not loaded[collection=%d]"},
	// querycoordv2 services.go ShowLoadCollections (GetLoadingProgress).
	CollectionNotLoadedID: {CollectionNotLoaded, "collection not loaded[collection=%d]"},
	// The same, after a load that failed: Milvus puts the failure first.
	LoadFailed: {CollectionNotLoaded, "%s: collection not loaded[collection=%d]"},
	// merr.WrapErrPartitionNotLoaded: a read that names a partition the load does not cover.
	PartitionNotLoadedID: {PartitionNotLoaded, "partition not loaded[partition=%d]"},
	// proxy task.go dropPartitionTask.PreExecute (a plain error).
	PartitionDropLoaded: {Unexpected, "partition cannot be dropped, partition is loaded, please release it first"},
	// datacoord index_service.go DropIndex.
	IndexDropLoaded: {ParameterInvalid, "vector index cannot be dropped on loaded collection: %d: invalid parameter"},
	// proxy indexparamcheck vector_index_checker.go StaticCheck: knowhere's config check of the
	// build parameters (its text first: "Out of range in json: param 'M' (4096) should be in
	// range [2, 2048]"), wrapped by task_index.go parseIndexParams.
	IndexParamInvalid: {ParameterInvalid, "%s: invalid parameter[expected=valid index params][actual=invalid index params]"},
	// knowhere's config check of the search parameters on the query node (segcore
	// VectorMemIndex.cpp "failed to search"), through the query node's and the proxy's wrappers,
	// which lose its code (Milvus answers 65535); Milvus also prints the search config, which
	// Weir leaves out. Weir checks in the proxy, before any shard is asked.
	SearchParamInvalid: {Unexpected, "fail to search on QueryNode %d: worker(%d) query failed: failed to search: %s"},
	// segcore plan.go NewSearchRequest, through the query node's delegator and the proxy's
	// searchShard wrappers, which lose its code (Milvus answers 65535).
	SearchMetricMismatch: {Unexpected, "fail to search on QueryNode %d: worker(%d) query failed: metric type not match: invalid parameter[expected=%s][actual=%s]"},
	// segcore Plan.cpp ParsePlaceholderGroup (sizes in bytes), through the same wrappers; Milvus
	// appends the C++ source position, which depends on its build.
	SearchDimMismatch: {Unexpected, "fail to search on QueryNode %d: worker(%d) query failed: parser searchRequest failed:  => vector dimension mismatch, expected vector size(byte) %d, actual %d."},
	// proxy search_util.go parseSearchInfo and util.go validateLimit (plain errors).
	TopKMissing:         {Unexpected, "topk is required"},
	TopKNotInt:          {Unexpected, "topk [%s] is invalid"},
	TopKRange:           {Unexpected, "topk [%d] is invalid, it should be in range [1, %d], but got %d"},
	OffsetNotInt:        {Unexpected, "offset [%s] is invalid"},
	OffsetRange:         {Unexpected, "offset [%d] is invalid, it should be in range [1, %d], but got %d"},
	OffsetTopKRange:     {Unexpected, "offset+topk [%d] is invalid, it should be in range [1, %d], but got %d"},
	RoundDecimalInvalid: {Unexpected, "round_decimal [%s] is invalid, should be -1 or an integer in range [0, 6]"},
	// proxy task_search.go checkNq / util.go validateNQLimit.
	NqRange: {Unexpected, "nq [%d] is invalid, nq (number of search vector per search request) should be in range [1, %d], but got %d"},
	// proxy util.go translateOutputFields.
	OutputFieldMissing: {Unexpected, "field %s not exist"},
	// proxy search_util.go getPartitionIDs (and the query task's).
	SearchPartitionMissing: {Unexpected, "partition name %s not found"},
	// proxy task_search.go / task_query.go PreExecute.
	SearchKeyPartitionNamed: {Unexpected, "not support manually specifying the partition names if partition key mode is used"},
	QueryKeyPartitionNamed:  {ParameterInvalid, "not support manually specifying the partition names if partition key mode is used: invalid parameter"},
	// proxy task_query.go PreExecute.
	QueryEmptyNoLimit:   {ParameterInvalid, "empty expression should be used with limit: invalid parameter"},
	QueryCountPaginated: {ParameterInvalid, "count entities with pagination is not allowed: invalid parameter"},
	// planparserv2 parseExprInner, wrapped by the proxy's createPlanArgs / tryGeneratePlan.
	ExprParse: {ParameterInvalid, "failed to create query plan: cannot parse expression: %s, error: %s: invalid parameter"},
	// planparserv2 CreateSearchPlanArgs (typeutil GetFieldFromName), and task_search.go
	// tryGeneratePlan.
	AnnsFieldMissing:   {ParameterInvalid, "failed to create query plan: failed to get field schema by name: fieldName(%s) not found: invalid parameter"},
	AnnsFieldNotVector: {ParameterInvalid, "failed to create query plan: field (%s) to search is not of vector data type: invalid parameter"},
	AnnsFieldAmbiguous: {Unexpected, "multiple anns_fields exist, please specify a anns_field in search_params"},
	// proxy task_query.go parseQueryParams / util.go validateMaxQueryResultWindow.
	LimitNotInt:           {Unexpected, "limit [%s] is invalid"},
	OffsetQueryNotInt:     {Unexpected, "offset [%s] is invalid"},
	QueryWindowRange:      {Unexpected, "invalid max query result window, (offset+limit) should be in range [1, %d], but got %d"},
	QueryOffsetNegative:   {Unexpected, "invalid max query result window, offset [%d] is invalid, should be gte than 0"},
	QueryLimitNotPositive: {Unexpected, "invalid max query result window, limit [%d] is invalid, should be greater than 0"},
	// proxy task.go showCollectionsTask.Execute (InMemory), which names the collection instead of
	// its ID in querycoord's error and raises it as a plain error.
	ShowNotLoaded: {Unexpected, "collection not loaded[collection=%s]"},
}

// Milvus returns the error Milvus 2.6 raises as t, formatted with args.
func Milvus(t Text, args ...any) *Error {
	r := texts[t]
	return &Error{Kind: r.kind, text: fmt.Sprintf(r.format, args...)}
}

// With returns a copy of e with Weir's detail after Milvus's words.
func (e *Error) With(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	return &c
}
