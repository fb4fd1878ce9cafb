package segment

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/weir-db/weir/internal/objstore"
)

func TestKeyLayout(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{InsertKey("weir", 1, 2, 3, 4, 5), "weir/insert/1/2/3/4-5.parquet"},
		{StatsKey("weir", 1, 2, 3, 4, 5), "weir/stats/1/2/3/4-5.parquet"},
		{DeleteKey("weir", 1, -1, 3, 4, 5), "weir/delete/1/-1/3/4-5.parquet"},
		{InsertKey("", 10, 20, 30, 7587878787, 0), "insert/10/20/30/7587878787-0.parquet"},
		{InsertKey("a/b", 1, 2, 3, -4, math.MaxUint64), "a/b/insert/1/2/3/-4-18446744073709551615.parquet"},
		{KindPrefix("weir", KindStats), "weir/stats/"},
		{KindPrefix("", KindDelete), "delete/"},
		{CollectionPrefix("weir", KindInsert, 1), "weir/insert/1/"},
		{SegmentPrefix("weir", KindInsert, 1, 2, 3), "weir/insert/1/2/3/"},
		{Kind(9).String(), "kind(9)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got)
	}
	require.True(t, strings.HasPrefix(InsertKey("weir", 1, 2, 3, 4, 5), SegmentPrefix("weir", KindInsert, 1, 2, 3)))
	require.False(t, strings.HasPrefix(InsertKey("weir", 12, 2, 3, 4, 5), CollectionPrefix("weir", KindInsert, 1)),
		"a collection's prefix does not match another collection whose ID extends it")
}

// rootGen generates roots that ValidateRoot accepts, including unusual elements.
func rootGen() *rapid.Generator[string] {
	elem := rapid.OneOf(rapid.StringMatching(`[a-z0-9._-]{1,12}`), rapid.SampledFrom([]string{"...", "-1", "insert", "ключ", "1-2.parquet"}))
	return rapid.Custom(func(t *rapid.T) string {
		var elems []string
		for _, e := range rapid.SliceOfN(elem, 0, 4).Draw(t, "elems") {
			if e != "." && e != ".." {
				elems = append(elems, e)
			}
		}
		return strings.Join(elems, "/")
	})
}

func keyInfoGen() *rapid.Generator[KeyInfo] {
	return rapid.Custom(func(t *rapid.T) KeyInfo {
		return KeyInfo{
			Root:       rootGen().Draw(t, "root"),
			Kind:       rapid.SampledFrom([]Kind{KindInsert, KindStats, KindDelete}).Draw(t, "kind"),
			Collection: rapid.Int64().Draw(t, "collection"),
			Partition:  rapid.Int64().Draw(t, "partition"),
			Segment:    rapid.Int64().Draw(t, "segment"),
			Lease:      rapid.Int64().Draw(t, "lease"),
			Seq:        rapid.Uint64().Draw(t, "seq"),
		}
	})
}

// TestKeyParseRoundTrip: ParseKey inverts Key, so Key is injective: two different attempts
// (any field differs) never share a key, and every key is valid for objstore.
func TestKeyParseRoundTrip(t *testing.T) {
	bucket := objstore.NewMemory()
	rapid.Check(t, func(t *rapid.T) {
		a, b := keyInfoGen().Draw(t, "a"), keyInfoGen().Draw(t, "b")
		got, err := ParseKey(a.Key())
		require.NoError(t, err)
		require.Equal(t, a, got)
		if a != b {
			require.NotEqual(t, a.Key(), b.Key())
		}
		require.NoError(t, bucket.Put(context.Background(), a.Key(), nil), "objstore accepts %q", a.Key())
	})
}

func TestKeyFunctionsAgree(t *testing.T) {
	for kind, fn := range map[Kind]func(string, int64, int64, int64, int64, uint64) string{
		KindInsert: InsertKey, KindStats: StatsKey, KindDelete: DeleteKey,
	} {
		key := fn("r", 1, -1, 3, 4, 5)
		info, err := ParseKey(key)
		require.NoError(t, err)
		require.Equal(t, KeyInfo{"r", kind, 1, -1, 3, 4, 5}, info)
	}
}

func TestParseKeyRejects(t *testing.T) {
	bad := []string{
		"",
		"insert/1/2/3",
		"weir/inserts/1/2/3/4-5.parquet",
		"weir/insert/1/2/3/4-5.csv",
		"weir/insert/01/2/3/4-5.parquet",
		"weir/insert/+1/2/3/4-5.parquet",
		"weir/insert/1/2/x/4-5.parquet",
		"weir/insert/1/2/3/45.parquet",
		"weir/insert/1/2/3/4-05.parquet",
		"weir/insert/1/2/3/4--5.parquet",
		"weir/insert/1/2/3/04-5.parquet",
		"weir/insert/1/2/3/-0-5.parquet",
		"weir/insert/1/2/3/4-.parquet",
		"weir/insert/1/2/3/4-99999999999999999999.parquet",
		"weir/insert/1/2/99999999999999999999/4-5.parquet",
		"/insert/1/2/3/4-5.parquet",
		"a//insert/1/2/3/4-5.parquet",
		"../insert/1/2/3/4-5.parquet",
		".objstore-tmp/insert/1/2/3/4-5.parquet",
	}
	for _, key := range bad {
		_, err := ParseKey(key)
		require.ErrorIs(t, err, ErrBadKey, "%q", key)
	}
}

func TestValidateRoot(t *testing.T) {
	for _, root := range []string{"", "weir", "a/b/c", "...", ".hidden", "ключ", strings.Repeat("x", 255)} {
		require.NoError(t, ValidateRoot(root), "%q", root)
	}
	bad := []string{
		"/", "/weir", "weir/", "a//b", ".", "..", "a/../b", "a/./b", "a\\b", "a\x00b", "\xff",
		".objstore-tmp", ".objstore-tmp/x", strings.Repeat("x", 256), strings.Repeat("abcdefg/", 65),
	}
	for _, root := range bad {
		require.ErrorIs(t, ValidateRoot(root), ErrBadRoot, "%.40q", root)
	}
}
