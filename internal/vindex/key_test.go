package vindex

import (
	"testing"

	"pgregory.net/rapid"
)

// TestFileKeysRoundTrip: every key FileKey builds parses back to itself; keys that differ in
// any element are different keys.
func TestFileKeysRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := FileKey{
			Root:       rapid.SampledFrom([]string{"", "weir", "a/b"}).Draw(t, "root"),
			Collection: rapid.Int64().Draw(t, "coll"), Partition: rapid.Int64().Draw(t, "part"),
			Segment: rapid.Int64().Draw(t, "seg"), Index: rapid.Int64().Draw(t, "index"),
			Token: rapid.Int64().Draw(t, "token"), Seq: rapid.Uint64().Draw(t, "seq"),
		}
		got, err := ParseFileKey(k.Key())
		if err != nil || got != k {
			t.Fatalf("%q: %+v, %v", k.Key(), got, err)
		}
	})
}

// TestForeignKeysAreRefused: segment files, other objects and non-canonical forms are not
// index files.
func TestForeignKeysAreRefused(t *testing.T) {
	for _, key := range []string{
		"weir/insert/1/2/3/4-5.parquet", "weir/index/1/2/3/4/5-6.parquet", "weir/index/1/2/3/5-6.widx",
		"weir/index/1/2/3/4/+5-6.widx", "weir/index/01/2/3/4/5-6.widx", "/index/1/2/3/4/5-6.widx",
		"weir/index/1/2/3/4/56.widx", "index", "",
	} {
		if _, err := ParseFileKey(key); err == nil {
			t.Fatalf("%q parsed as an index file key", key)
		}
	}
	if k, err := ParseFileKey("weir/index/1/2/3/4/-5-6.widx"); err != nil || k.Token != -5 {
		t.Fatalf("a negative token: %+v, %v", k, err)
	}
}
