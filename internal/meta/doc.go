// Package meta is Weir's typed catalog over the metastore: the key layout, the record codecs,
// and the conditional transactions that keep the catalog consistent without a lock service.
//
// Every catalog change is one metastore transaction whose predicates state what the change
// assumed, so that concurrent writers (several proxies, a coordinator) never need to coordinate
// through memory:
//
//   - creating a collection requires its name key to be absent; the name key, the collection
//     record and its default partition are written together, so a reader never sees a collection
//     without its default partition. A collection with a partition key has partitions
//     _default_0 … _default_{n-1} (up to 1024, as in Milvus) instead, fixed for its life: its
//     record names them (count and first ID), so they too come into being with it;
//   - dropping a collection requires the name key to still name the same collection ID; the name
//     is freed and the record marked Dropped in one step (records are removed later by garbage
//     collection, after the data they describe, so the coordinator's reload never misses a drop);
//   - creating or dropping a partition requires the collection record to be unchanged since it
//     was read, so a partition is never added to a collection that was dropped meanwhile.
//
// Key layout (root is configurable, default "weir"):
//
//	{root}/meta/id                                  next free ID (decimal)
//	{root}/meta/collections/{collectionID}          Collection record (JSON)
//	{root}/meta/collection-names/{db}/{name}        collection ID (decimal), live collections only
//	{root}/meta/partitions/{collectionID}/{partID}  Partition record (JSON); none for a collection with a partition key
//	{root}/meta/partition-names/{collectionID}/{name} partition ID (decimal), live partitions only
package meta
