package metastore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// outcome is everything a caller can observe from one call.
type outcome struct {
	Rev       int64
	KV        KV
	KVs       []KV
	Failed    bool
	Sentinels []string // the package errors the error matches
	Current   []KV     // of a *PredicateError
	PredRev   int64
}

var sentinels = []error{ErrNotFound, ErrPredicateFailed, ErrOutcomeUnknown, ErrTxnTooLarge, ErrCompacted, ErrFutureRevision, ErrInvalidArgument, ErrClosed}

func observe(rev int64, kv KV, kvs []KV, err error) outcome {
	o := outcome{Rev: rev, KV: kv, KVs: kvs, Failed: err != nil}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			o.Sentinels = append(o.Sentinels, s.Error())
		}
	}
	var perr *PredicateError
	if errors.As(err, &perr) {
		o.Current, o.PredRev = perr.Current, perr.Revision
	}
	return o
}

// TestMemoryMatchesEtcd runs the same random calls against a fresh etcd and a fresh Memory
// (both start at revision 1) and requires identical results after every call: revisions,
// values, versions, errors, predicate reports, snapshots, compaction.
func TestMemoryMatchesEtcd(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	etcd := dial(t, srv.Endpoints())
	mem := NewMemory()
	ctx := t.Context()

	rng := rand.New(rand.NewPCG(7, 11))
	keys := []string{"a", "a/1", "a/2", "a/2/x", "b", "b/1", "c"}
	prefixes := []string{"", "a", "a/", "a/2", "b/", "z"}
	values := []string{"", "x", "y"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	var compacted int64 = 1

	for step := range 600 {
		cur := revision(t, mem)
		randRev := func() int64 { return max(1, compacted-2) + rng.Int64N(cur-max(1, compacted-2)+3) }
		var desc string
		var call func(s Store) outcome
		switch n := rng.IntN(100); {
		case n < 10:
			k := pick(keys)
			desc = "get " + k
			call = func(s Store) outcome { kv, err := s.Get(ctx, k); return observe(0, kv, nil, err) }
		case n < 35:
			k, v := pick(keys), pick(values)
			desc = fmt.Sprintf("put %s=%q", k, v)
			call = func(s Store) outcome { rev, err := s.Put(ctx, k, []byte(v)); return observe(rev, KV{}, nil, err) }
		case n < 45:
			k := pick(keys)
			desc = "delete " + k
			call = func(s Store) outcome { rev, err := s.Delete(ctx, k); return observe(rev, KV{}, nil, err) }
		case n < 75:
			var cmps []Cmp
			for range rng.IntN(4) {
				k := pick(keys)
				switch rng.IntN(3) {
				case 0:
					cmps = append(cmps, ValueEquals(k, []byte(pick(values))))
				case 1:
					// Mostly the key's real mod revision, so the predicate often holds.
					var rev int64
					if kv, err := mem.Get(ctx, k); err == nil && rng.IntN(3) > 0 {
						rev = kv.ModRevision
					} else if rng.IntN(2) == 0 {
						rev = randRev()
					}
					cmps = append(cmps, ModRevisionEquals(k, rev))
				default:
					cmps = append(cmps, KeyAbsent(k))
				}
			}
			var ops []Op
			for range rng.IntN(4) {
				switch rng.IntN(4) {
				case 0, 1:
					ops = append(ops, Put(pick(keys), []byte(pick(values))))
				case 2:
					ops = append(ops, Delete(pick(keys)))
				default:
					ops = append(ops, DeletePrefix(pick(prefixes[1:])))
				}
			}
			desc = fmt.Sprintf("txn if %v then %v", cmps, ops)
			call = func(s Store) outcome { rev, err := s.Txn(ctx, cmps, ops); return observe(rev, KV{}, nil, err) }
		case n < 95:
			p := pick(prefixes)
			var opts []RangeOption
			desc = fmt.Sprintf("range %q", p)
			if rng.IntN(3) == 0 {
				r := randRev()
				opts = append(opts, WithMinModRev(r))
				desc += fmt.Sprintf(" min-mod-rev %d", r)
			}
			if rng.IntN(3) == 0 {
				r := randRev()
				opts = append(opts, AtRevision(r))
				desc += fmt.Sprintf(" at %d", r)
			}
			if rng.IntN(4) == 0 {
				opts = append(opts, WithKeysOnly())
				desc += " keys-only"
			}
			call = func(s Store) outcome { kvs, rev, err := s.Range(ctx, p, opts...); return observe(rev, KV{}, kvs, err) }
		default:
			r := randRev()
			desc = fmt.Sprintf("compact %d", r)
			call = func(s Store) outcome { return observe(0, KV{}, nil, s.(compacter).Compact(ctx, r)) }
			if r > compacted && r <= cur {
				compacted = r
			}
		}
		want := call(etcd)
		got := call(mem)
		require.Equal(t, want, got, "step %d: %s", step, desc)
		require.Equal(t, revision(t, etcd), revision(t, mem), "step %d: %s", step, desc)
	}
}
