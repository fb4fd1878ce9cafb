package metastore

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemoryWriteFaults(t *testing.T) {
	writes := map[string]func(m *Memory) error{
		"put": func(m *Memory) error { _, err := m.Put(t.Context(), "k", []byte("new")); return err },
		"delete": func(m *Memory) error {
			_, err := m.Delete(t.Context(), "k")
			return err
		},
		"txn": func(m *Memory) error {
			_, err := m.Txn(t.Context(), []Cmp{KeyAbsent("other")}, []Op{Put("k", []byte("new")), DeletePrefix("dir/")})
			return err
		},
	}
	for name, write := range writes {
		for _, fault := range []WriteFault{NoFault, FailBeforeApply, FailAfterApply} {
			t.Run(fmt.Sprintf("%s/%d", name, fault), func(t *testing.T) {
				m := NewMemory()
				put(t, m, "k", "old")
				put(t, m, "dir/a", "x")
				before := revision(t, m)
				var seen []string
				m.InjectWriteFault(func(keys []string) WriteFault {
					seen = keys
					return fault
				})
				err := write(m)
				require.NotEmpty(t, seen, "the fault function sees the written keys")
				require.Contains(t, seen, "k")
				applied := revision(t, m) != before
				switch fault {
				case NoFault:
					require.NoError(t, err)
					require.True(t, applied)
				case FailBeforeApply:
					require.ErrorIs(t, err, ErrOutcomeUnknown)
					require.False(t, applied)
				case FailAfterApply:
					require.ErrorIs(t, err, ErrOutcomeUnknown)
					require.True(t, applied, "the write committed although the caller got an error")
				}

				m.InjectWriteFault(nil)
				_, err = m.Put(t.Context(), "k", []byte("later"))
				require.NoError(t, err, "removing the fault restores normal writes")
			})
		}
	}
}

func TestMemoryFaultAfterFailedPredicate(t *testing.T) {
	m := NewMemory()
	put(t, m, "lease", "2")
	before := revision(t, m)
	m.InjectWriteFault(func([]string) WriteFault { return FailAfterApply })
	_, err := m.Txn(t.Context(), []Cmp{ValueEquals("lease", []byte("1"))}, []Op{Put("k", nil)})
	require.ErrorIs(t, err, ErrOutcomeUnknown, "the caller cannot tell the predicate failed")
	require.NotErrorIs(t, err, ErrPredicateFailed)
	require.Equal(t, before, revision(t, m))
}

func TestMemoryCompactDropsHistory(t *testing.T) {
	ctx := t.Context()
	m := NewMemory()
	r1 := put(t, m, "a", "1")
	put(t, m, "a", "2")
	put(t, m, "gone", "x")
	rDel, err := m.Delete(ctx, "gone")
	require.NoError(t, err)
	r5 := put(t, m, "a", "3")

	require.NoError(t, m.Compact(ctx, rDel))
	m.mu.Lock()
	_, kept := m.mu.keys["gone"]
	history := len(m.mu.keys["a"].revs)
	m.mu.Unlock()
	require.False(t, kept, "a key deleted before the compaction revision is forgotten")
	require.Equal(t, 2, history, "one revision at or before the compaction, and the later ones")

	kvs, _, err := m.Range(ctx, "", AtRevision(rDel))
	require.NoError(t, err)
	require.Equal(t, []KV{{Key: "a", Value: []byte("2"), CreateRevision: r1, ModRevision: r1 + 1, Version: 2}}, kvs)
	kvs, _, err = m.Range(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []KV{{Key: "a", Value: []byte("3"), CreateRevision: r1, ModRevision: r5, Version: 3}}, kvs)
	_, err = m.Delete(ctx, "gone")
	require.NoError(t, err)
	require.Equal(t, r5, revision(t, m), "the forgotten key stays absent")
}
