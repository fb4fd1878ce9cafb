// Package datanode runs the channel pipelines of a data node: for every DML channel it owns,
// consume from the channel checkpoint, assign rows to segments, buffer, sync Parquet files to
// object storage, commit segment meta (fenced), then advance the checkpoint (fenced). It talks to
// the metastore, the log and object storage only; it never calls the coordinator.
//
// What it guarantees, and how:
//
//   - Fencing (BRIEF invariant 1). A pipeline starts by claiming its channel: it rewrites the
//     channel's epoch key in a transaction that compares the lease key with the revision read
//     when the pipeline started. Every later metastore write goes through meta.Fence, whose
//     transaction compares the epoch key with the revision the claim wrote. Every assignment
//     deletes the epoch key with the lease it writes, so that one compare fences off other
//     owners and also an earlier pipeline of the same owner under the same lease (a restart
//     after an error, or a new process after a crash) whose last transaction is still in
//     flight. A failed compare (meta.ErrLeaseLost) stops
//     that channel's pipeline: pending syncs are dropped, the consumer closes, buffers are
//     released, a metric and a log line record it. Nothing is retried, nothing panics, other
//     channels go on. Watch and Release of one channel are serialised, so one node never runs
//     two pipelines of a channel.
//
//   - Order (invariant 2). A pipeline's syncs run one at a time in the order they were cut,
//     and each commits its segment meta before its checkpoint, in separate transactions. A
//     sync's checkpoint is one below the first position still buffered when the sync was cut,
//     so it never passes data that is not in committed meta. The checkpoint transaction also
//     compares the checkpoint key's mod revision, so a delayed duplicate of an older write can
//     never move it backward.
//
//   - Exactly once (invariant 3). Segment meta records the highest position each segment
//     holds. A message is never split between segments and a segment's buffer is always synced
//     whole, so for every partition the committed data is exactly the messages up to the
//     highest MaxPos among its segments. Replay from the checkpoint drops every insert at or
//     below that position (and every delete at or below the L0 segment's) and re-applies the
//     rest.
//
//   - Files (invariant 4). Every file is written under a key that contains the lease revision
//     and a file ID from the etcd-backed allocator, so no two attempts share a key; it is
//     referenced only by the committed meta write that follows. A commit whose outcome is
//     unknown is re-read (the segment record and checkpoint carry compare-and-swap
//     predicates, so a re-applied duplicate is rejected rather than double-counted) before
//     anything else happens.
//
// Segment assignment: one growing L1 segment per (channel, partition), and one L0 segment per
// (channel, delete scope), the scope being the partition a delete names or all partitions. A
// segment is sealed, at a message boundary, when it reaches SealRows or SealBytes, when it is
// older than SealAge, when it has been idle for SealIdle (if it holds at least
// SealIdleMinBytes), and always at a flush marker. Sealing by rows and markers depends only on
// the log and the metastore; sealing by bytes counts buffered Arrow bytes on top of the
// committed file bytes, and age and idleness depend on the clock, so after a restart those may
// place segment boundaries elsewhere. That changes where segments end, never what is stored:
// exactly-once rests on positions, not on boundaries.
//
// Files are streamed into object storage as they are encoded, never built whole in memory
// (pipeline.put): a sync of any size holds about a Parquet page beyond its rows, and does no
// work the Go scheduler cannot preempt for longer than that, so it never stalls the process's
// session keep-alive.
package datanode
