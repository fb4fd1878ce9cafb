// Package wal provides DML channels, ordered durable logs of opaque
// records, on NATS JetStream, and an embedded NATS server to run them on.
//
// # Layout
//
// Each channel is one JetStream stream, WEIR_DML_<name>, bound to the single
// subject weir.dml.<name>. A channel's position is the stream sequence, so
// positions start at 1 and are contiguous: the only way records leave a
// channel is Truncate, which drops a prefix. Streams use file storage,
// limits retention with no limit set (no max messages, bytes or age),
// Discard=New and DenyDelete: nothing a data node has not consumed is ever
// dropped to make room, and no single record can be deleted. Channel names
// are 1 to 128 letters, digits, '_' and '-', valid in a stream name, a
// subject token and a directory name.
//
// # Append
//
// Append checks every record first (ID, Config.MaxMsgSize, the server's
// max_payload including the ID header); a bad record fails the call with
// nothing published. It then publishes the records asynchronously, in
// order, holding a per-channel semaphore so that one Append's records get
// consecutive positions relative to other Appends of the same Log (Appends
// from different Logs may interleave), and returns once JetStream has
// acknowledged every one, or fails after Config.AckTimeout or when ctx is
// done. The connection keeps no reconnect buffer, so an Append while the
// server is unreachable fails at once instead of being sent long after it
// returned.
//
// An Append that fails with an error other than ErrInvalidChannel,
// ErrInvalidRecordID, ErrRecordTooLarge or ErrChannelNotFound has an
// unknown outcome: any of its records may be stored. Give records
// IDs and retry with the same IDs: JetStream remembers IDs (Nats-Msg-Id) for
// Config.DuplicateWindow, and answers a duplicate with the position of the
// first copy, so the retry stores each record once and returns the
// original positions. The ID table is rebuilt from the stored records when
// the server restarts, so this holds across restarts. A retry after the
// window stores a second copy, which readers of the channel must
// tolerate. In a JetStream cluster a retry that races its still
// unacknowledged original can fail instead; retrying again resolves it.
//
// # When an acknowledged record is on disk
//
// An ack means the server stored the record. What "stored" means is the
// server's durability setting, not this package's:
//
//   - SyncAlways (embedded: EmbeddedConfig.Sync; external server:
//     `jetstream { sync_interval: always }`): the server writes and fsyncs
//     each record before it acks it. Append returns after every record of
//     the batch was fsynced. Nothing acknowledged is lost by a process
//     kill, kernel crash or power loss.
//   - SyncInterval (JetStream's default): the server writes each record
//     to its file (the OS page cache) before it acks it and fsyncs every
//     sync interval (2 minutes by default). Append returns before the
//     fsync. Killing the server process (kill -9) loses nothing; a power
//     loss or kernel crash can lose the records acknowledged during the
//     last interval, and new records then reuse their positions (which
//     Readers detect: ErrRewound).
//
// With Replicas > 1 (a JetStream cluster) the ack means a quorum of
// replicas has the record in its Raft log, fsynced per write under
// sync_interval: always; losing a minority of servers loses nothing.
//
// # Read
//
// A Reader reads through an ephemeral pull consumer (memory state, no
// acks). Follow, what a consumer of a channel uses, starts right after a
// record it names by position and stored time (an Anchor: a checkpoint),
// and its first message is at exactly that position + 1; Read, for tools,
// starts at the first kept position >= the one it is given. Every later
// message is at exactly the previous position + 1: nothing is skipped or
// repeated. The Reader recreates its consumer whenever the connection comes
// back (a server restart loses the consumer), when heartbeats stop or when
// the consumer is deleted; if the position it needs was truncated
// meanwhile, Next returns ErrTruncated rather than skip. Next honours ctx in
// every wait, including while the server is down.
//
// A channel can move backward: a server that loses its tail (SyncInterval
// below, or a volume restored from a backup) reuses the lost positions for
// new records. Every consumer a Reader creates therefore starts at its
// anchor — the last record it returned, or Follow's — after checking that
// the channel still reaches that position, and its first delivery must be
// that very record (same position, same stored time): otherwise Next (or
// Follow) returns ErrRewound, and the caller must not resume there.
//
// # Connection
//
// Open connects with unlimited reconnects every 250ms and returns once
// JetStream answers, retrying until its ctx is done; the embedded server
// may start after it. After a server restart the same Log and its Readers
// carry on.
package wal
