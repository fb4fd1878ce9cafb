// Package metastore is a transactional key-value store over etcd, with an in-memory twin for
// tests and a launcher for an embedded etcd server.
//
// It knows nothing of Weir: keys are strings, values bytes. Two implementations satisfy
// Store, and both are safe for concurrent use: Etcd (a client of a real cluster) and Memory
// (in-process, etcd's semantics, with InjectWriteFault to make writes end in
// ErrOutcomeUnknown before or after they apply). The contract tests run the same cases
// against both, and a differential test replays random calls on a fresh etcd and a fresh
// Memory and requires identical results, revisions included.
//
// # Guarantees
//
// Revisions. The store has one revision. Every Put, every Delete that removes something and
// every Txn that writes something advances it by exactly one; writes that change nothing
// (deleting an absent key, a Txn without ops, a failed predicate) do not. Each KV carries the
// revision that created it, the one that last modified it, and its version.
//
// Transactions. Txn evaluates its predicates (Cmp) and applies its writes (Op) atomically: no
// other write falls between the check and the writes. When a predicate does not hold, nothing
// is written and the error is a *PredicateError (errors.Is ErrPredicateFailed) holding the
// state of every compared key at the revision the predicates were evaluated at (read right
// after the failure, at that revision, so a later write does not show; empty when that read
// fails), so callers can report what changed. A predicate on an absent key
// sees CreateRevision == ModRevision == 0; ValueEquals never holds for an absent key.
//
// Unknown outcomes. A write that fails after it may have reached etcd (a timeout, a
// cancelled context, an unavailable server, a lost leader, a dropped connection) returns an
// error wrapping both ErrOutcomeUnknown and the cause. The write may have been applied; the
// caller must re-read before it acts as if it was not (for example before deleting files a
// committed write might reference). A write is reported as failed outright only when it
// provably never applied: it was rejected by validation before sending, its context was done
// before sending, the store was closed, or etcd rejected it before proposing it (too large,
// duplicate key, no space, permission denied and the like). Reads have nothing to classify
// and return their errors as they are.
//
// Limits. etcd rejects a transaction with more than --max-txn-ops (default 128) entries in
// any one of its compare, then and else lists, and a request above --max-request-bytes
// (default 1.5 MiB). Every write is checked before it is sent: at most MaxTxnOps predicates
// and at most MaxTxnOps writes, and at most MaxTxnBytes (1.5 MiB less 8 KiB for the raft
// header) by TxnBytes, an upper bound of the encoded size counting every key, value and
// compared value. Beyond either limit the error is ErrTxnTooLarge and nothing is sent.
// CheckTxn applies the same checks without a store, so callers can size batches. A Txn also
// may not put one key twice, nor put a key one of its deletes removes (ErrInvalidArgument),
// which etcd rejects as well. Empty keys are invalid; so is DeletePrefix(""), which would
// empty the store, while Range("") reads every key.
//
// Ranges. Range returns a consistent snapshot however many keys it covers: it asks etcd for
// 1,000 keys per request and reads every page after the first at the first page's revision,
// which it returns. When that revision is compacted between pages the error wraps
// ErrCompacted. WithMinModRev returns only keys modified at or after a revision (deleted keys
// are not reported); etcd evaluates it over the whole prefix on its side, so the result, not
// the scan, is proportional to the changes. WithKeysOnly together with WithMinModRev is
// served from etcd's in-memory index.
//
// Timeouts. Every request to etcd (each page of a Range) has its own deadline, Config's
// RequestTimeout (5 s by default), or the caller's earlier one.
//
// # Embedded etcd
//
// StartEmbedded runs a single-member etcd on 127.0.0.1 with data in a directory; a restart
// with the same directory keeps the data and the revision. Empty URLs pick free ports on
// each start (a single member never dials its own peer URL, so a new one is harmless);
// clients must then use the new Endpoints. It is tuned for a single member: 50 ms
// heartbeat ticks and a 250 ms election timeout, so a start takes a few hundred milliseconds;
// no JSON gateway; etcd's default transaction limits (those above); periodic auto-compaction
// keeping one hour of history; the backend quota from EmbeddedConfig (etcd's 2 GiB default).
// etcd's own log goes to the given slog.Logger at warn level and above (info is too chatty to
// be useful), less a few messages that tell a Weir operator nothing: two start-up warnings
// about settings Weir does not expose, the listener errors of an orderly Close, and an
// error a fresh member logs before its first raft term is persisted (etcd-io/etcd#18978).
// Everything else at warn and above, a serving failure at run time included, is kept. The
// etcd client logs errors only, since every failure it retries reaches the caller anyway.
package metastore
