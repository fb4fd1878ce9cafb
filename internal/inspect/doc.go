// Package inspect is Weir's read-only operator view of a cluster (the role Milvus's birdwatcher
// plays): it lists channels, segments and checkpoints from the metastore, and verifies that the
// metastore, object storage and the DML channels agree.
//
// # Guarantees
//
//   - Read-only. The metastore is reached through Reader (Get and Range only); the catalog the
//     package builds on it gets a store whose Txn always fails with ErrReadOnly. Object storage
//     is an objstore.BucketReader. A DML channel is read through a Reader of package wal, whose
//     ephemeral in-memory consumer is the only server-side state inspect creates, and which the
//     server deletes when the Reader closes.
//   - One snapshot. Collections are read first, then leases, checkpoints, segment records and
//     file records at one metastore revision (meta.View), then object storage is listed, as the
//     coordinator's garbage collector does: a file committed before the snapshot is never
//     reported unreferenced, and a file committed after it is younger than any sensible grace.
//   - Findings, not errors. An inconsistency is a Finding; an error means inspect could not read
//     something and the verification is incomplete.
//
// # What Verify reports
//
// Dropped collections are garbage awaiting collection: their files are deleted before their
// meta, so they are skipped except that their files count as referenced. For every live
// collection:
//
//   - duplicate-key: a primary key with two copies in the insert files of the collection's L1
//     segments that are not Dropped, with no delete of that key (in the copy's partition, or in
//     all partitions) timestamped between them. An upsert — a delete and an insert of the key
//     at one timestamp, the delete applying first — is therefore not a duplicate. Copies with the same timestamp are most likely
//     one message stored twice (a broken replay filter); copies with different timestamps may
//     also be a client inserting a key again without deleting it, which Milvus allows and
//     verify cannot tell from a fault.
//   - missing-file: a file record whose object does not exist.
//   - corrupt-file: an object that exists but is not a readable segment file of its kind.
//   - meta-mismatch: a segment whose Files differs from its number of file records, whose Rows
//     differs from the rows of its insert files (L1) or delete files (L0) as recorded, or whose
//     Bytes differs from its files' bytes; a file record whose object has another size or row
//     count, or whose key names another segment or kind.
//   - dead-owner: a channel leased to a data node that has no live session. Standalone registers
//     no sessions; when the metastore holds no session of any role, liveness is unknown and this
//     check is skipped (with a note).
//   - log-rewound (only with a DML channel Log): the channel ends below its checkpoint, or the
//     record at the checkpoint is not the one the data node consumed there (another stored
//     time) or was truncated. The data node will not resume such a channel.
//   - checkpoint-ahead (only with a DML channel Log): the data node's replay invariant. A
//     pipeline resumes at checkpoint+1 and drops any message at or below the highest MaxPos of
//     the committed segments it would go to, so every insert message at a position at or below
//     the checkpoint must be at or below the highest MaxPos of the channel's L1 segments of its
//     partition, and every delete message at or below the highest MaxPos of the channel's L0
//     segments of its scope (a partition, or -1 for all); otherwise its rows are in no
//     committed segment and replay will never bring them back. A checkpoint beyond the
//     channel's last position is reported too. Flush markers and messages without rows carry
//     nothing to commit and are skipped. The opposite, a checkpoint below data committed
//     segments hold, is not reported: it is the normal state between a sync's segment commit
//     and its checkpoint commit (invariant 2 orders them), and replay drops what segments hold.
//
// For every collection, live or dropped:
//
//   - unreferenced-file: an object under {root}/insert/, {root}/stats/ or {root}/delete/ that
//     segment.ParseKey accepts and no file record references, older than the grace period, and
//     whose writer can no longer commit it: the fencing token in its key is no channel's current
//     claim or lease (and not newer than what verify read). A fenced or restarted writer's
//     files are never committed; the coordinator deletes them once they are older than its own
//     grace period. Files of a current claim may still be committed and are not reported.
package inspect
