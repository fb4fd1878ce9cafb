package metastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Limits every transaction is checked against before it is sent. They match a default etcd
// (--max-txn-ops=128, --max-request-bytes=1.5 MiB), so a Txn that passes CheckTxn is never
// rejected by such a server for its size.
const (
	// MaxTxnOps bounds each of the three lists of an etcd transaction: compares, then-ops and
	// else-ops. etcd counts max(len(compare), len(success), len(failure)), not their sum
	// (server/etcdserver/api/v3rpc/key.go checkTxnRequest). Our transactions have no
	// else-ops, so the rule here is len(cmps) <= MaxTxnOps and len(ops) <= MaxTxnOps.
	MaxTxnOps = 128
	// MaxTxnBytes bounds the estimated encoded size of a transaction (see TxnBytes). etcd
	// rejects a raft request larger than 1.5 MiB; the 8 KiB margin covers the raft request
	// header that wraps our transaction, which TxnBytes does not count.
	MaxTxnBytes = 1536*1024 - 8*1024

	// perEntryOverhead over-approximates the protobuf framing of one compare, read or write in
	// a TxnRequest: field tags, varint lengths (at most 3 bytes each below 2 MiB), the op
	// wrapper and the compare's enum fields or an int64 revision.
	perEntryOverhead = 32
)

var (
	// ErrNotFound is returned by Get when the key does not exist.
	ErrNotFound = errors.New("metastore: key not found")
	// ErrPredicateFailed is wrapped by *PredicateError.
	ErrPredicateFailed = errors.New("metastore: predicate failed")
	// ErrOutcomeUnknown is wrapped by a write's error when the write may or may not have been
	// applied; the caller must re-read to find out.
	ErrOutcomeUnknown = errors.New("metastore: outcome unknown")
	// ErrTxnTooLarge is returned, with nothing sent, for a write beyond MaxTxnOps or
	// MaxTxnBytes (and for a server's own "too many operations" or "request too large").
	ErrTxnTooLarge = errors.New("metastore: transaction too large")
	// ErrCompacted is returned for a read at a revision that compaction removed.
	ErrCompacted = errors.New("metastore: revision compacted")
	// ErrFutureRevision is returned for a read at a revision the store has not reached.
	ErrFutureRevision = errors.New("metastore: revision not reached")
	// ErrInvalidArgument is returned, with nothing sent, for an empty key, an empty
	// DeletePrefix prefix, or a transaction that writes one key twice or puts a key it
	// also deletes (etcd rejects both as "duplicate key").
	ErrInvalidArgument = errors.New("metastore: invalid argument")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("metastore: store closed")
)

// Store is a transactional key-value store with etcd's semantics: one global revision that
// every applied write increments by one, per-key create/mod revisions and versions, and
// transactions whose predicates are evaluated atomically with their writes.
type Store interface {
	// Get returns the key's current value; an error wrapping ErrNotFound when it is absent.
	Get(ctx context.Context, key string) (KV, error)
	// Range returns every key starting with prefix ("" is every key), sorted by key, all
	// read at one revision, which it returns.
	Range(ctx context.Context, prefix string, opts ...RangeOption) (kvs []KV, rev int64, err error)
	// Put writes one key and returns the revision of the write.
	Put(ctx context.Context, key string, value []byte) (rev int64, err error)
	// Delete removes one key, returning the store revision after it; deleting an absent key
	// is not an error and does not advance the revision.
	Delete(ctx context.Context, key string) (rev int64, err error)
	// Txn applies ops if and only if every cmp holds. When one does not, nothing is written
	// and the error is a *PredicateError.
	Txn(ctx context.Context, cmps []Cmp, ops []Op) (rev int64, err error)
	// Revision returns the current store revision.
	Revision(ctx context.Context) (int64, error)
	// Close releases the store; later calls return ErrClosed.
	Close() error
}

// KV is one key at one revision.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision that created the key; 0 when the key is absent.
	CreateRevision int64
	// ModRevision is the revision of the key's last write.
	ModRevision int64
	// Version counts writes since the key was created; a delete resets it.
	Version int64
}

type cmpKind int

const (
	cmpValueEquals cmpKind = iota + 1
	cmpModRevisionEquals
	cmpKeyAbsent
)

// Cmp is a predicate on one key, evaluated inside a transaction (the MEP's "TransactionIf").
type Cmp struct {
	kind  cmpKind
	key   string
	value []byte
	rev   int64
}

// ValueEquals holds when key exists and its value is value. It never holds for an absent
// key, not even with an empty value (etcd cannot tell a missing value from an empty one).
func ValueEquals(key string, value []byte) Cmp {
	return Cmp{kind: cmpValueEquals, key: key, value: value}
}

// ModRevisionEquals holds when key's ModRevision is rev; rev 0 means the key is absent.
func ModRevisionEquals(key string, rev int64) Cmp {
	return Cmp{kind: cmpModRevisionEquals, key: key, rev: rev}
}

// KeyAbsent holds when key does not exist (etcd: CreateRevision == 0).
func KeyAbsent(key string) Cmp {
	return Cmp{kind: cmpKeyAbsent, key: key}
}

// Key returns the key the predicate reads.
func (c Cmp) Key() string { return c.key }

// holds evaluates the predicate against the key's current state (a zero KV when absent),
// exactly as etcd's applyCompare does.
func (c Cmp) holds(cur KV) bool {
	switch c.kind {
	case cmpValueEquals:
		return cur.CreateRevision != 0 && string(cur.Value) == string(c.value)
	case cmpModRevisionEquals:
		return cur.ModRevision == c.rev
	case cmpKeyAbsent:
		return cur.CreateRevision == 0
	}
	return false
}

func (c Cmp) String() string {
	switch c.kind {
	case cmpValueEquals:
		return fmt.Sprintf("value(%q) == %s", c.key, quoteValue(c.value))
	case cmpModRevisionEquals:
		return fmt.Sprintf("mod_revision(%q) == %d", c.key, c.rev)
	case cmpKeyAbsent:
		return fmt.Sprintf("absent(%q)", c.key)
	}
	return "invalid cmp"
}

type opKind int

const (
	opPut opKind = iota + 1
	opDelete
	opDeletePrefix
)

// Op is one write inside a transaction.
type Op struct {
	kind  opKind
	key   string
	value []byte
}

// Put writes value under key.
func Put(key string, value []byte) Op { return Op{kind: opPut, key: key, value: value} }

// Delete removes key; removing an absent key is a no-op.
func Delete(key string) Op { return Op{kind: opDelete, key: key} }

// DeletePrefix removes every key starting with prefix, which must not be empty.
func DeletePrefix(prefix string) Op { return Op{kind: opDeletePrefix, key: prefix} }

// Key returns the key (or prefix) the op writes.
func (o Op) Key() string { return o.key }

func (o Op) String() string {
	switch o.kind {
	case opPut:
		return fmt.Sprintf("put(%q, %s)", o.key, quoteValue(o.value))
	case opDelete:
		return fmt.Sprintf("delete(%q)", o.key)
	case opDeletePrefix:
		return fmt.Sprintf("delete_prefix(%q)", o.key)
	}
	return "invalid op"
}

// covers reports whether a delete op removes key.
func (o Op) covers(key string) bool {
	switch o.kind {
	case opDelete:
		return o.key == key
	case opDeletePrefix:
		return strings.HasPrefix(key, o.key)
	}
	return false
}

type rangeOptions struct {
	minModRev int64
	rev       int64
	keysOnly  bool
	exact     bool
}

// RangeOption changes what Range reads.
type RangeOption func(*rangeOptions)

// WithMinModRev keeps only keys whose ModRevision >= rev: the keys written since rev.
// Deleted keys are not reported; a caller that must see deletions compares key sets.
func WithMinModRev(rev int64) RangeOption { return func(o *rangeOptions) { o.minModRev = rev } }

// ExactKey makes Range read the one key equal to its argument instead of every key with that
// prefix: a point read that can use AtRevision, which Get cannot.
func ExactKey() RangeOption { return func(o *rangeOptions) { o.exact = true } }

// AtRevision reads a snapshot at rev, which must not be compacted (ErrCompacted) nor lie
// ahead of the store (ErrFutureRevision).
func AtRevision(rev int64) RangeOption { return func(o *rangeOptions) { o.rev = rev } }

// WithKeysOnly leaves Value nil; revisions and versions are still set. Combined with
// WithMinModRev, etcd serves it from its in-memory index without reading values from disk.
func WithKeysOnly() RangeOption { return func(o *rangeOptions) { o.keysOnly = true } }

func applyRangeOptions(opts []RangeOption) rangeOptions {
	var o rangeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// PredicateError is returned (wrapping ErrPredicateFailed) when a Txn's predicates do not all
// hold; nothing was written. Current holds the state of every compared key at Revision, in Cmp
// order (a zero KV with Key set and nil Value, CreateRevision 0 when the key is absent), so it
// shows exactly what the predicates saw. It is empty when that state could not be read (the
// etcd store reads it after the failure).
type PredicateError struct {
	Current []KV
	// Revision is the store revision the predicates were evaluated at.
	Revision int64

	cmps []Cmp
}

func newPredicateError(cmps []Cmp, cur []KV, rev int64) *PredicateError {
	return &PredicateError{Current: cur, Revision: rev, cmps: cmps}
}

func (e *PredicateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v at revision %d:", ErrPredicateFailed, e.Revision)
	for i, c := range e.cmps {
		if i >= len(e.Current) || c.holds(e.Current[i]) {
			continue
		}
		cur := e.Current[i]
		if cur.CreateRevision == 0 {
			fmt.Fprintf(&b, " %s but key is absent;", c)
			continue
		}
		fmt.Fprintf(&b, " %s but value is %s at mod revision %d;", c, quoteValue(cur.Value), cur.ModRevision)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap makes errors.Is(err, ErrPredicateFailed) hold.
func (e *PredicateError) Unwrap() error { return ErrPredicateFailed }

// quoteValue prints a value for an error message, cut short because values can be large.
func quoteValue(v []byte) string {
	const max = 64
	if len(v) > max {
		return fmt.Sprintf("%q... (%d bytes)", v[:max], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// TxnBytes returns the estimated encoded size of a transaction as this package sends it. It is
// an upper bound of the protobuf size of the TxnRequest.
func TxnBytes(cmps []Cmp, ops []Op) int {
	n := 0
	for _, c := range cmps {
		n += len(c.key) + len(c.value) + perEntryOverhead
	}
	for _, o := range ops {
		n += len(o.key) + len(o.value) + perEntryOverhead
		if o.kind == opDeletePrefix {
			n += len(o.key) // the range end
		}
	}
	return n
}

// CheckTxn returns the error Txn would return, without sending anything, for a transaction
// that is too large (ErrTxnTooLarge) or malformed (ErrInvalidArgument). Callers batching many
// writes can use it to split batches.
func CheckTxn(cmps []Cmp, ops []Op) error {
	if len(cmps) > MaxTxnOps || len(ops) > MaxTxnOps {
		return fmt.Errorf("%w: %d predicates and %d writes, at most %d of each", ErrTxnTooLarge, len(cmps), len(ops), MaxTxnOps)
	}
	if n := TxnBytes(cmps, ops); n > MaxTxnBytes {
		return fmt.Errorf("%w: about %d bytes, at most %d", ErrTxnTooLarge, n, MaxTxnBytes)
	}
	for _, c := range cmps {
		if c.key == "" || c.kind == 0 {
			return fmt.Errorf("%w: predicate with empty key", ErrInvalidArgument)
		}
	}
	puts := make(map[string]struct{}, len(ops))
	for _, o := range ops {
		if o.key == "" || o.kind == 0 {
			return fmt.Errorf("%w: write with empty key or prefix", ErrInvalidArgument)
		}
		if o.kind != opPut {
			continue
		}
		if _, dup := puts[o.key]; dup {
			return fmt.Errorf("%w: key %q written twice in one transaction", ErrInvalidArgument, o.key)
		}
		puts[o.key] = struct{}{}
	}
	// etcd also rejects a put of a key that a delete in the same transaction removes.
	for _, d := range ops {
		if d.kind == opPut {
			continue
		}
		for k := range puts {
			if d.covers(k) {
				return fmt.Errorf("%w: key %q both put and deleted in one transaction", ErrInvalidArgument, k)
			}
		}
	}
	return nil
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidArgument)
	}
	return nil
}
