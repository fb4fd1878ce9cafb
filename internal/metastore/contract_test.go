package metastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests in this file form the Store contract: each runs against etcd and Memory.

func TestGetPutDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		k := p + "k"

		_, err := s.Get(ctx, k)
		require.ErrorIs(t, err, ErrNotFound)

		before := revision(t, s)
		rev1 := put(t, s, k, "v1")
		require.Equal(t, before+1, rev1, "a put advances the revision by one")
		require.Equal(t, KV{Key: k, Value: []byte("v1"), CreateRevision: rev1, ModRevision: rev1, Version: 1}, get(t, s, k))

		rev2 := put(t, s, k, "v2")
		require.Equal(t, rev1+1, rev2)
		require.Equal(t, KV{Key: k, Value: []byte("v2"), CreateRevision: rev1, ModRevision: rev2, Version: 2}, get(t, s, k))

		rev3, err := s.Delete(ctx, k)
		require.NoError(t, err)
		require.Equal(t, rev2+1, rev3)
		_, err = s.Get(ctx, k)
		require.ErrorIs(t, err, ErrNotFound)

		rev4, err := s.Delete(ctx, k)
		require.NoError(t, err, "deleting an absent key is not an error")
		require.Equal(t, rev3, rev4, "deleting an absent key does not advance the revision")
		require.Equal(t, rev3, revision(t, s))

		rev5 := put(t, s, k, "v3")
		require.Equal(t, KV{Key: k, Value: []byte("v3"), CreateRevision: rev5, ModRevision: rev5, Version: 1}, get(t, s, k),
			"a delete resets create revision and version")
	})
}

func TestEmptyValue(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		k := p + "empty"
		rev := put(t, s, k, "")
		kv := get(t, s, k)
		require.Empty(t, kv.Value)
		require.Equal(t, rev, kv.CreateRevision, "an empty value is still a present key")

		_, err := s.Txn(t.Context(), []Cmp{ValueEquals(k, nil)}, nil)
		require.NoError(t, err, "an empty value equals nil")
		_, err = s.Txn(t.Context(), []Cmp{ValueEquals(p+"absent", nil)}, nil)
		require.ErrorIs(t, err, ErrPredicateFailed, "ValueEquals never holds for an absent key")
	})
}

func TestValuesAreCopied(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		k := p + "k"
		v := []byte("value")
		_, err := s.Put(t.Context(), k, v)
		require.NoError(t, err)
		v[0] = 'X'
		kv := get(t, s, k)
		require.Equal(t, "value", string(kv.Value), "the store keeps its own copy of a put value")
		kv.Value[0] = 'Y'
		require.Equal(t, "value", string(get(t, s, k).Value), "callers get their own copy of a read value")
	})
}

func TestRangePrefix(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		for _, k := range []string{"dir/b", "dir/a", "dir/a/x", "dir0", "dis", "di"} {
			put(t, s, p+k, k)
		}
		kvs, rev, err := s.Range(ctx, p+"dir/")
		require.NoError(t, err)
		require.Equal(t, revision(t, s), rev)
		var keys []string
		for _, kv := range kvs {
			keys = append(keys, strings.TrimPrefix(kv.Key, p))
			require.Equal(t, strings.TrimPrefix(kv.Key, p), string(kv.Value))
			require.NotZero(t, kv.ModRevision)
			require.Equal(t, int64(1), kv.Version)
		}
		require.Equal(t, []string{"dir/a", "dir/a/x", "dir/b"}, keys, "sorted by key, prefix only")

		kvs, rev, err = s.Range(ctx, p+"nothing/")
		require.NoError(t, err)
		require.Empty(t, kvs)
		require.Equal(t, revision(t, s), rev)

		all, _, err := s.Range(ctx, "")
		require.NoError(t, err)
		var ours []string
		for _, kv := range all {
			if strings.HasPrefix(kv.Key, p) {
				ours = append(ours, strings.TrimPrefix(kv.Key, p))
			}
		}
		require.Equal(t, []string{"di", "dir/a", "dir/a/x", "dir/b", "dir0", "dis"}, ours, "the empty prefix is every key")
	})
}

func TestRangeKeysOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		rev := put(t, s, p+"a", "value")
		kvs, _, err := s.Range(t.Context(), p, WithKeysOnly())
		require.NoError(t, err)
		require.Equal(t, []KV{{Key: p + "a", CreateRevision: rev, ModRevision: rev, Version: 1}}, kvs)
	})
}

// TestRangeManyKeys reads more keys than one page holds, while another goroutine keeps
// rewriting them: every page must come from the one revision Range returns.
func TestRangeManyKeys(t *testing.T) {
	const n = 2500
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		putAll(t, s, p, n, func(i int) string { return "v0" })

		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i = (i + 997) % n {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Put(ctx, fmt.Sprintf("%s%05d", p, i), []byte("v1")); err != nil {
					return // the test is ending
				}
			}
		})
		kvs, rev, err := s.Range(ctx, p)
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Len(t, kvs, n)
		for i, kv := range kvs {
			require.Equal(t, fmt.Sprintf("%s%05d", p, i), kv.Key)
			require.LessOrEqual(t, kv.ModRevision, rev, "key %s is newer than the revision of the range", kv.Key)
		}

		snap, snapRev, err := s.Range(ctx, p, AtRevision(rev))
		require.NoError(t, err)
		require.Equal(t, rev, snapRev)
		require.Equal(t, kvs, snap, "the paged range equals a snapshot at its revision")
	})
}

func TestRangeWithMinModRev(t *testing.T) {
	const n = 2500
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		putAll(t, s, p, n, func(i int) string { return "old" })
		since := revision(t, s) + 1

		// Change every other key: more than a page of results, spread over every page.
		var changed []string
		var ops []Op
		for i := 0; i < n; i += 2 {
			k := fmt.Sprintf("%s%05d", p, i)
			changed = append(changed, k)
			ops = append(ops, Put(k, []byte("new")))
			if len(ops) == MaxTxnOps {
				_, err := s.Txn(ctx, nil, ops)
				require.NoError(t, err)
				ops = nil
			}
		}
		_, err := s.Txn(ctx, nil, ops)
		require.NoError(t, err)
		_, err = s.Delete(ctx, fmt.Sprintf("%s%05d", p, 1))
		require.NoError(t, err)

		for _, keysOnly := range []bool{false, true} {
			opts := []RangeOption{WithMinModRev(since)}
			if keysOnly {
				opts = append(opts, WithKeysOnly())
			}
			kvs, rev, err := s.Range(ctx, p, opts...)
			require.NoError(t, err)
			require.Equal(t, revision(t, s), rev)
			var got []string
			for _, kv := range kvs {
				got = append(got, kv.Key)
				require.GreaterOrEqual(t, kv.ModRevision, since)
				if keysOnly {
					require.Nil(t, kv.Value)
				} else {
					require.Equal(t, "new", string(kv.Value))
				}
			}
			require.Equal(t, changed, got, "only keys written since the revision, deleted ones not at all")
		}

		kvs, _, err := s.Range(ctx, p, WithMinModRev(revision(t, s)+1))
		require.NoError(t, err)
		require.Empty(t, kvs, "nothing changed after the current revision")
	})
}

func TestRangeAtRevision(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		rev1 := put(t, s, p+"a", "1")
		rev2 := put(t, s, p+"a", "2")
		put(t, s, p+"b", "1")
		rev4, err := s.Delete(ctx, p+"a")
		require.NoError(t, err)

		for _, tc := range []struct {
			rev  int64
			want []KV
		}{
			{rev1, []KV{{Key: p + "a", Value: []byte("1"), CreateRevision: rev1, ModRevision: rev1, Version: 1}}},
			{rev2, []KV{{Key: p + "a", Value: []byte("2"), CreateRevision: rev1, ModRevision: rev2, Version: 2}}},
			{rev4, []KV{{Key: p + "b", Value: []byte("1"), CreateRevision: rev2 + 1, ModRevision: rev2 + 1, Version: 1}}},
		} {
			kvs, rev, err := s.Range(ctx, p, AtRevision(tc.rev))
			require.NoError(t, err)
			require.Equal(t, tc.rev, rev, "the result is reported at the revision it was read at")
			require.Equal(t, tc.want, kvs)
		}

		_, _, err = s.Range(ctx, p, AtRevision(rev4+1000))
		require.ErrorIs(t, err, ErrFutureRevision)

		require.NoError(t, s.(compacter).Compact(ctx, rev2))
		_, _, err = s.Range(ctx, p, AtRevision(rev1))
		require.ErrorIs(t, err, ErrCompacted)
		kvs, _, err := s.Range(ctx, p, AtRevision(rev2))
		require.NoError(t, err, "the compaction revision itself stays readable")
		require.Equal(t, []KV{{Key: p + "a", Value: []byte("2"), CreateRevision: rev1, ModRevision: rev2, Version: 2}}, kvs)
		require.ErrorIs(t, s.(compacter).Compact(ctx, rev1), ErrCompacted, "compacting to an older revision")
		require.ErrorIs(t, s.(compacter).Compact(ctx, rev4+1000), ErrFutureRevision)
	})
}

func TestTxnPredicates(t *testing.T) {
	// Each case sets up key "k" (or leaves it absent) and one predicate on it.
	tests := []struct {
		name  string
		setup string // value of k before the Txn; "" leaves it absent
		cmp   func(k string, modRev int64) Cmp
		holds bool
	}{
		{"value equals/holds", "lease-1", func(k string, _ int64) Cmp { return ValueEquals(k, []byte("lease-1")) }, true},
		{"value equals/other value", "lease-1", func(k string, _ int64) Cmp { return ValueEquals(k, []byte("lease-2")) }, false},
		{"value equals/absent", "", func(k string, _ int64) Cmp { return ValueEquals(k, []byte("lease-1")) }, false},
		{"mod revision/holds", "v", func(k string, rev int64) Cmp { return ModRevisionEquals(k, rev) }, true},
		{"mod revision/stale", "v", func(k string, rev int64) Cmp { return ModRevisionEquals(k, rev-1) }, false},
		{"mod revision/zero on absent", "", func(k string, _ int64) Cmp { return ModRevisionEquals(k, 0) }, true},
		{"mod revision/zero on present", "v", func(k string, _ int64) Cmp { return ModRevisionEquals(k, 0) }, false},
		{"absent/holds", "", func(k string, _ int64) Cmp { return KeyAbsent(k) }, true},
		{"absent/present", "v", func(k string, _ int64) Cmp { return KeyAbsent(k) }, false},
	}
	forEachStore(t, func(t *testing.T, s Store, p string) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				k := fmt.Sprintf("%s%d/k", p, i)
				out := fmt.Sprintf("%s%d/out", p, i)
				var setupRev int64
				if tc.setup != "" {
					setupRev = put(t, s, k, tc.setup)
				}
				before := revision(t, s)
				rev, err := s.Txn(ctx, []Cmp{tc.cmp(k, setupRev)}, []Op{Put(out, []byte("written"))})
				if tc.holds {
					require.NoError(t, err)
					require.Equal(t, before+1, rev)
					require.Equal(t, "written", string(get(t, s, out).Value))
					return
				}
				require.ErrorIs(t, err, ErrPredicateFailed)
				var perr *PredicateError
				require.ErrorAs(t, err, &perr)
				require.Equal(t, before, perr.Revision)
				want := KV{Key: k}
				if tc.setup != "" {
					want = KV{Key: k, Value: []byte(tc.setup), CreateRevision: setupRev, ModRevision: setupRev, Version: 1}
				}
				require.Equal(t, []KV{want}, perr.Current)
				require.Contains(t, err.Error(), k)
				_, err = s.Get(ctx, out)
				require.ErrorIs(t, err, ErrNotFound, "nothing is written when a predicate fails")
				require.Equal(t, before, revision(t, s))
			})
		}
	})
}

// TestTxnFailedPredicateWritesNothing compares several keys of which one changed and
// checks that none of the transaction's writes happened.
func TestTxnFailedPredicateWritesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		lease := p + "lease"
		seg := p + "seg/1"
		put(t, s, lease, "lease-1")
		put(t, s, seg, "meta-1")
		put(t, s, p+"ckpt", "100")
		put(t, s, p+"old/1", "x")
		put(t, s, p+"old/2", "y")
		segKV := get(t, s, seg)
		put(t, s, lease, "lease-2") // another node took the channel

		before, _, err := s.Range(ctx, p)
		require.NoError(t, err)
		beforeRev := revision(t, s)

		_, err = s.Txn(ctx,
			[]Cmp{ModRevisionEquals(seg, segKV.ModRevision), ValueEquals(lease, []byte("lease-1")), KeyAbsent(p + "never")},
			[]Op{Put(seg, []byte("meta-2")), Put(p+"ckpt", []byte("200")), Delete(p + "old/1"), DeletePrefix(p + "old/"), Put(p+"new", []byte("n"))},
		)
		var perr *PredicateError
		require.ErrorAs(t, err, &perr)
		require.ErrorIs(t, err, ErrPredicateFailed)
		require.Equal(t, beforeRev, perr.Revision)
		leaseKV := get(t, s, lease)
		require.Equal(t, []KV{segKV, leaseKV, {Key: p + "never"}}, perr.Current, "current state of every compared key, in order")
		require.Equal(t, "lease-2", string(perr.Current[1].Value))
		require.Contains(t, err.Error(), `"lease-2"`, "the message says what the lease changed to")
		require.NotContains(t, err.Error(), "seg/1", "the message names only the predicates that failed")

		after, _, err := s.Range(ctx, p)
		require.NoError(t, err)
		require.Equal(t, before, after, "no key changed")
		require.Equal(t, beforeRev, revision(t, s), "the revision did not move")
	})
}

func TestTxnAppliesAtOneRevision(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		put(t, s, p+"old/1", "x")
		put(t, s, p+"old/2", "y")
		put(t, s, p+"gone", "z")
		lease := put(t, s, p+"lease", "l")
		before := revision(t, s)

		rev, err := s.Txn(ctx, []Cmp{ModRevisionEquals(p+"lease", lease), KeyAbsent(p + "a")},
			[]Op{Put(p+"a", []byte("1")), Put(p+"b", []byte("2")), Delete(p + "gone"), DeletePrefix(p + "old/"), Delete(p + "old/1")})
		require.NoError(t, err)
		require.Equal(t, before+1, rev, "one transaction is one revision")

		kvs, _, err := s.Range(ctx, p)
		require.NoError(t, err)
		require.Equal(t, []KV{
			{Key: p + "a", Value: []byte("1"), CreateRevision: rev, ModRevision: rev, Version: 1},
			{Key: p + "b", Value: []byte("2"), CreateRevision: rev, ModRevision: rev, Version: 1},
			{Key: p + "lease", Value: []byte("l"), CreateRevision: lease, ModRevision: lease, Version: 1},
		}, kvs)
	})
}

func TestTxnWithoutChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		before := revision(t, s)
		rev, err := s.Txn(ctx, nil, nil)
		require.NoError(t, err)
		require.Equal(t, before, rev)
		rev, err = s.Txn(ctx, []Cmp{KeyAbsent(p + "x")}, []Op{Delete(p + "x"), DeletePrefix(p + "y/")})
		require.NoError(t, err)
		require.Equal(t, before, rev, "deleting nothing does not advance the revision")
		require.Equal(t, before, revision(t, s))
	})
}

func TestTxnTooLarge(t *testing.T) {
	ops := func(n int, p string) []Op {
		out := make([]Op, n)
		for i := range out {
			out[i] = Put(fmt.Sprintf("%s%d", p, i), []byte("v"))
		}
		return out
	}
	cmps := func(n int, p string) []Cmp {
		out := make([]Cmp, n)
		for i := range out {
			out[i] = KeyAbsent(fmt.Sprintf("%sc%d", p, i))
		}
		return out
	}
	// sized returns n puts under p whose TxnBytes, with cs, is exactly total.
	sized := func(p string, n int, cs []Cmp, total int) []Op {
		out := ops(n, p)
		left := total - TxnBytes(cs, out)
		for i := range out {
			extra := left / (n - i)
			out[i].value = bytes.Repeat([]byte("x"), 1+extra)
			left -= extra
		}
		return out
	}
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		t.Run("rejected", func(t *testing.T) {
			big := make([]byte, MaxTxnBytes)
			for _, tc := range []struct {
				name string
				cmps []Cmp
				ops  []Op
			}{
				{"129 ops", nil, ops(129, p)},
				{"129 predicates", cmps(129, p), nil},
				{"too many bytes in one value", nil, []Op{Put(p+"0", big)}},
				{"too many bytes in predicates", []Cmp{ValueEquals(p+"0", big)}, nil},
				{"one byte too many", nil, sized(p, 100, nil, MaxTxnBytes+1)},
			} {
				before := revision(t, s)
				_, err := s.Txn(ctx, tc.cmps, tc.ops)
				require.ErrorIs(t, err, ErrTxnTooLarge, tc.name)
				require.NotErrorIs(t, err, ErrOutcomeUnknown, tc.name)
				require.Equal(t, before, revision(t, s), "%s: nothing written", tc.name)
				require.ErrorIs(t, CheckTxn(tc.cmps, tc.ops), ErrTxnTooLarge, tc.name)
			}
			_, err := s.Put(ctx, p+"big", big)
			require.ErrorIs(t, err, ErrTxnTooLarge)
			_, err = s.Get(ctx, p+"0")
			require.ErrorIs(t, err, ErrNotFound)
		})
		t.Run("accepted at the limit", func(t *testing.T) {
			// etcd counts the longest of its lists, not their sum: 128 predicates, 128 writes
			// and 128 else-branch reads are allowed together.
			rev, err := s.Txn(ctx, cmps(MaxTxnOps, p), ops(MaxTxnOps, p+"n/"))
			require.NoError(t, err)
			kvs, _, err := s.Range(ctx, p+"n/")
			require.NoError(t, err)
			require.Len(t, kvs, MaxTxnOps)
			require.Equal(t, rev, kvs[0].ModRevision)

			// A transaction at exactly MaxTxnBytes reaches etcd and fits its request limit,
			// with the bytes in one value, spread over 128 values, or shared with predicates.
			one := sized(p+"one/", 1, nil, MaxTxnBytes)
			require.Equal(t, MaxTxnBytes, TxnBytes(nil, one))
			_, err = s.Txn(ctx, nil, one)
			require.NoError(t, err)

			many := sized(p+"many/", MaxTxnOps, nil, MaxTxnBytes)
			require.Equal(t, MaxTxnBytes, TxnBytes(nil, many))
			_, err = s.Txn(ctx, nil, many)
			require.NoError(t, err)

			half := bytes.Repeat([]byte("y"), MaxTxnBytes/2/MaxTxnOps)
			cs := make([]Cmp, MaxTxnOps)
			for i := range cs {
				cs[i] = ValueEquals(fmt.Sprintf("%s%d", p, i), half)
			}
			mixed := sized(p+"mixed/", MaxTxnOps, cs, MaxTxnBytes)
			require.Equal(t, MaxTxnBytes, TxnBytes(cs, mixed))
			_, err = s.Txn(ctx, cs, mixed)
			require.ErrorIs(t, err, ErrPredicateFailed, "sent, evaluated and answered with 128 reads")

			single := bytes.Repeat([]byte("z"), MaxTxnBytes-len(p+"put")-perEntryOverhead)
			_, err = s.Put(ctx, p+"put", single)
			require.NoError(t, err)
			require.Len(t, get(t, s, p+"put").Value, len(single))
		})
	})
}

func TestInvalidArguments(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		put(t, s, p+"k", "v")
		before := revision(t, s)
		for _, tc := range []struct {
			name string
			cmps []Cmp
			ops  []Op
		}{
			{"key put twice", nil, []Op{Put(p+"a", nil), Put(p+"a", nil)}},
			{"key put and deleted", nil, []Op{Delete(p + "k"), Put(p+"k", nil)}},
			{"key put under a deleted prefix", nil, []Op{Put(p+"dir/a", nil), DeletePrefix(p + "dir/")}},
			{"empty put key", nil, []Op{Put("", nil)}},
			{"empty delete key", nil, []Op{Delete("")}},
			{"empty prefix", nil, []Op{DeletePrefix("")}},
			{"empty predicate key", []Cmp{KeyAbsent("")}, nil},
			{"zero predicate", []Cmp{{}}, nil},
			{"zero op", nil, []Op{{}}},
		} {
			_, err := s.Txn(ctx, tc.cmps, tc.ops)
			require.ErrorIs(t, err, ErrInvalidArgument, tc.name)
			require.NotErrorIs(t, err, ErrOutcomeUnknown, tc.name)
		}
		_, err := s.Txn(ctx, nil, []Op{Delete(p + "k"), DeletePrefix(p), Put(p+"x", nil)})
		require.ErrorIs(t, err, ErrInvalidArgument, "a put under a prefix deleted in the same transaction")
		_, err = s.Txn(ctx, nil, []Op{Delete(p + "k"), DeletePrefix(p + "k")})
		require.NoError(t, err, "overlapping deletes are allowed")
		require.Equal(t, before+1, revision(t, s))

		_, err = s.Get(ctx, "")
		require.ErrorIs(t, err, ErrInvalidArgument)
		_, err = s.Put(ctx, "", nil)
		require.ErrorIs(t, err, ErrInvalidArgument)
		_, err = s.Delete(ctx, "")
		require.ErrorIs(t, err, ErrInvalidArgument)
	})
}

func TestDoneContextSendsNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before := revision(t, s)
		_, err := s.Put(ctx, p+"k", []byte("v"))
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, ErrOutcomeUnknown, "a request that never left has a known outcome")
		_, err = s.Delete(ctx, p+"k")
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
		_, err = s.Txn(ctx, nil, []Op{Put(p+"k", nil)})
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
		_, err = s.Get(ctx, p+"k")
		require.ErrorIs(t, err, context.Canceled)
		_, _, err = s.Range(ctx, p)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Revision(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.(compacter).Compact(ctx, before), context.Canceled)
		require.Equal(t, before, revision(t, s))
	})
}

func TestClosed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		ctx := t.Context()
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "closing twice is harmless")
		_, err := s.Get(ctx, p+"k")
		require.ErrorIs(t, err, ErrClosed)
		_, _, err = s.Range(ctx, p)
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Put(ctx, p+"k", nil)
		require.ErrorIs(t, err, ErrClosed)
		require.NotErrorIs(t, err, ErrOutcomeUnknown)
		_, err = s.Delete(ctx, p+"k")
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Txn(ctx, nil, nil)
		require.ErrorIs(t, err, ErrClosed)
		_, err = s.Revision(ctx)
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, s.(compacter).Compact(ctx, 1), ErrClosed)
	})
}

func TestPredicateErrorMessage(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 100)
	err := newPredicateError(
		[]Cmp{ValueEquals("lease", []byte("l1")), ModRevisionEquals("seg", 4), KeyAbsent("new"), ValueEquals("big", nil)},
		[]KV{{Key: "lease", Value: []byte("l2"), CreateRevision: 2, ModRevision: 9}, {Key: "seg"}, {Key: "new", Value: []byte("x"), CreateRevision: 3, ModRevision: 3}, {Key: "big", Value: big, CreateRevision: 5, ModRevision: 5}},
		10)
	require.Equal(t, `metastore: predicate failed at revision 10:`+
		` value("lease") == "l1" but value is "l2" at mod revision 9;`+
		` mod_revision("seg") == 4 but key is absent;`+
		` absent("new") but value is "x" at mod revision 3;`+
		` value("big") == "" but value is "`+strings.Repeat("b", 64)+`"... (100 bytes) at mod revision 5`, err.Error())
	require.True(t, errors.Is(err, ErrPredicateFailed))
	require.Equal(t, "invalid cmp", Cmp{}.String())
	require.False(t, Cmp{}.holds(KV{}))
	require.Equal(t, "lease", ValueEquals("lease", nil).Key())
	require.Equal(t, "dir/", DeletePrefix("dir/").Key())
	require.Equal(t, `[put("a", "1") delete("b") delete_prefix("c/") invalid op]`, fmt.Sprint([]Op{Put("a", []byte("1")), Delete("b"), DeletePrefix("c/"), {}}))
}

// TestRangeExactKey: ExactKey reads one key, not the keys it prefixes, at any revision.
func TestRangeExactKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, p string) {
		rev := put(t, s, p+"a", "old")
		put(t, s, p+"ab", "other")
		put(t, s, p+"a", "new")
		kvs, _, err := s.Range(t.Context(), p+"a", ExactKey(), AtRevision(rev))
		require.NoError(t, err)
		require.Len(t, kvs, 1)
		require.Equal(t, "old", string(kvs[0].Value))
		kvs, _, err = s.Range(t.Context(), p+"a", ExactKey())
		require.NoError(t, err)
		require.Len(t, kvs, 1)
		require.Equal(t, "new", string(kvs[0].Value))
		kvs, _, err = s.Range(t.Context(), p+"missing", ExactKey())
		require.NoError(t, err)
		require.Empty(t, kvs)
	})
}
