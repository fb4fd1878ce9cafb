// Package segment writes and reads the Parquet files of a segment (insert, stats and delete
// files) and names them with object keys; it knows no storage backend, only io.Writer,
// io.ReaderAt and []byte.
//
// # Guarantees
//
//   - Unique keys. A key is built from (kind, collection, partition, segment, lease, seq).
//     ParseKey inverts the key functions exactly, so two different tuples never share a key:
//     a retried sync (new seq) and a stale owner after reassignment (old lease) can never
//     overwrite a file that committed segment meta references (BRIEF invariant 4), as long as
//     a writer never reuses a seq within its lease. No reader ever sees a file change.
//   - Valid keys. For a root that ValidateRoot accepts, every key follows objstore's key rules.
//   - Self-describing files. Every file records its kind and format version in its key-value
//     metadata and is refused by the readers of the other kinds (ErrFormat). Insert files keep
//     the exact Arrow schema they were written with, Milvus field IDs included.
//   - No empty files. Writing no rows fails with ErrEmpty; a sync with nothing to write writes
//     nothing.
//   - Plain Parquet. Each file opens with any Parquet reader; nothing needs Weir's code to read.
//
// # Keys
//
//	{root}/insert/{collection}/{partition}/{segment}/{lease}-{seq}.parquet   rows of an L1 segment
//	{root}/stats/{collection}/{partition}/{segment}/{lease}-{seq}.parquet    its primary-key stats
//	{root}/delete/{collection}/{partition}/{segment}/{lease}-{seq}.parquet   deletes of an L0 segment
//
// IDs are canonical decimal (no padding or '+'; partition is -1 in an L0 key covering every
// partition). The lease element is the writer's fencing token — the etcd revision of its claim
// of the channel (a data node claims the channel each time its pipeline starts), or of the
// channel's lease for a writer that never claims — and the seq a number it never reuses under
// that token (the data node uses each file's own ID, which its meta records). The
// kind comes right after the root so that a garbage collector lists one kind with one prefix
// (KindPrefix), and a collection or segment sits under its own prefix (CollectionPrefix,
// SegmentPrefix; they end in '/', so collection 1 does not match collection 12).
//
// # Insert files
//
// One column per column of the batch's Arrow schema (batch.ArrowSchema), in its order: the
// collection's fields, then "$meta" when the collection has dynamic fields, then "_ts". All
// columns are required (non-null). Parquet types:
//
//	Milvus          Arrow               Parquet physical (logical)
//	Bool            bool                BOOLEAN
//	Int8/16/32      int8/16/32          INT32 (INT(8/16/32, signed))
//	Int64           int64               INT64
//	Float, Double   float32, float64    FLOAT, DOUBLE
//	VarChar         utf8                BYTE_ARRAY (STRING)
//	JSON, $meta     binary              BYTE_ARRAY (the JSON text)
//	Array of T      list<item: T>       LIST: {name}.list.element, element optional
//	FloatVector     fixed_size_binary   FIXED_LEN_BYTE_ARRAY of dim*4 bytes
//	Float16Vector   fixed_size_binary   FIXED_LEN_BYTE_ARRAY of dim*2 bytes
//	BFloat16Vector  fixed_size_binary   FIXED_LEN_BYTE_ARRAY of dim*2 bytes
//	Int8Vector      fixed_size_binary   FIXED_LEN_BYTE_ARRAY of dim bytes
//	BinaryVector    fixed_size_binary   FIXED_LEN_BYTE_ARRAY of dim/8 bytes
//	SparseVector    binary              BYTE_ARRAY: the row's (index, value) pairs
//	Geometry        binary              BYTE_ARRAY: WKB, little-endian (NDR)
//	_ts             uint64              INT64 (INT(64, unsigned)), the row's hybrid timestamp
//
// A FloatVector value is dim IEEE 754 float32s, little-endian, one after the other; any reader
// gets the vector back by reinterpreting the bytes (numpy: np.frombuffer(v, dtype="<f4")).
// Float16 values are IEEE half floats and BFloat16 values the high halves of float32s, both
// little-endian; Int8 vectors are signed bytes; binary vectors are dim bits as Milvus packs them.
// A SparseVector (SparseFloatVector) value is the row as Milvus sends it: 8 bytes per non-zero
// element, a little-endian uint32 index then a little-endian float32 value, indices strictly
// increasing (an empty value is an all-zero row). A Geometry value is the WKB of the WKT the
// client sent (parsed and encoded by go-geom, as Milvus does), POINT EMPTY as a point of NaNs.
//
// Each Parquet column carries its Milvus field ID as field_id (_ts has 1, $meta none). The
// file's key-value metadata holds weir.kind = "insert", weir.version = "1", weir.schema (the
// Arrow schema as written, base64 of an Arrow IPC schema message, which ReadInsert returns) and
// pqarrow's ARROW:schema (the same schema with list elements named "element", for Arrow
// readers such as pyarrow).
//
// The layout is chosen for write speed, because a sync holds the channel's checkpoint back
// until its files are written. Dense vector columns are PLAIN-encoded, uncompressed, without
// dictionary or min/max statistics, so pqarrow writes them by copying the Arrow buffer:
// float bits barely compress, and statistics would compare every vector. On a 2-core AMD EPYC
// a 16,000-row file of 128- or 768-dim float vectors is written at over 2.2 or 4 GB/s of vector
// data (BenchmarkWriteInsert*, against 17-36 GB/s for a bare copy, BenchmarkRawCopy). Scalar
// columns are PLAIN with snappy (WriteOptions.Compression) and keep statistics, except binary
// columns (JSON, sparse vectors, geometries), whose byte-wise min/max prunes nothing.
// Dictionary encoding is off everywhere: keys, timestamps and vectors are all distinct, and
// snappy catches most repetition elsewhere.
// Row groups hold about 64 MiB of Arrow data (WriteOptions.RowGroupBytes), so a reader fetches
// few long ranges and a query node can still load one column of one row group at a time.
//
// # Stats files
//
// One row per sync: the primary keys that sync wrote to the segment.
//
//	pk_min, pk_max   int64 or utf8, the primary key's type
//	rows             int64
//	bloom            binary: a split-block Bloom filter (Bloom) of the keys
//	bloom_fpp        double: the false-positive rate it was sized for (default 0.1%)
//	bloom_algorithm  utf8: "parquet-split-block-xxhash64"
//
// The filter is the Parquet specification's split-block filter, so any Parquet library's
// implementation can probe it: 32-byte blocks of eight little-endian uint32 words; a key's
// xxhash64 (seed 0) of its PLAIN bytes (an int64's 8 little-endian bytes, a string's bytes)
// picks block ((h>>32)*blocks)>>32, and in word i sets bit (uint32(h)*salt[i])>>27 with the
// specification's eight salts. Weir sizes it so the expected rate meets bloom_fpp (about 17
// bits a key at 0.1%), and does not round the block count to a power of two.
//
// # Delete files
//
// The deletes one sync writes to a channel's L0 segment, one row each, in the order given:
//
//	pk    int64 or utf8, the primary key's type
//	ts    uint64 (INT64, INT(64, unsigned)): the delete's hybrid timestamp
//	pos   uint64 (INT64, INT(64, unsigned)): the channel position of the delete message
//
// Stats and delete files carry weir.kind ("stats", "delete") and weir.version like insert
// files. Delete files are snappy-compressed; stats files are not, their bulk being the filter's
// random bits.
package segment
