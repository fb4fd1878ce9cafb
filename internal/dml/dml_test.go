package dml

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestEncodeDecode(t *testing.T) {
	m := Message{Header: Header{Kind: Delete, CollectionID: 42, PartitionID: AllPartitions, Timestamp: 1 << 60, Rows: 3}, Body: EncodePKs(PKs{Ints: []int64{1, -2, 3}})}
	got, err := Decode(Encode(m))
	require.NoError(t, err)
	require.Equal(t, m.Header, got.Header)
	pks, err := DecodePKs(got.Body)
	require.NoError(t, err)
	require.Equal(t, []int64{1, -2, 3}, pks.Ints)
	require.Equal(t, 3, pks.Len())
	require.Equal(t, "delete", got.Kind.String())
	require.Equal(t, "kind(9)", Kind(9).String())
}

// TestDeleteScope: an UpsertAllPartitions message deletes in every partition and inserts into
// its own; the other kinds delete where their header says.
func TestDeleteScope(t *testing.T) {
	m := Message{Header: Header{Kind: UpsertAllPartitions, CollectionID: 42, PartitionID: 7, Timestamp: 9, Rows: 1}, Body: []byte("rows")}
	got, err := Decode(Encode(m))
	require.NoError(t, err)
	require.Equal(t, m.Header, got.Header)
	require.Equal(t, "upsert_all_partitions", got.Kind.String())
	require.Equal(t, AllPartitions, got.DeleteScope())
	require.Equal(t, int64(7), got.PartitionID, "its rows go to its partition")
	require.Equal(t, int64(7), Header{Kind: Upsert, PartitionID: 7}.DeleteScope())
	require.Equal(t, int64(7), Header{Kind: Delete, PartitionID: 7}.DeleteScope())
	require.Equal(t, AllPartitions, Header{Kind: Delete, PartitionID: AllPartitions}.DeleteScope())
}

func TestDecodeRejectsCorruptMessages(t *testing.T) {
	good := Encode(Message{Header: Header{Kind: Flush, CollectionID: 1}})
	for name, b := range map[string][]byte{
		"short":     good[:10],
		"magic":     append([]byte("XX"), good[2:]...),
		"version":   append([]byte{'W', 'D', 9}, good[3:]...),
		"version 0": append([]byte{'W', 'D', 0}, good[3:]...),
		"kind":      append([]byte{'W', 'D', 1, 7}, good[4:]...),
		"kind 6":    append([]byte{'W', 'D', 2, 6}, good[4:]...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(b)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"no count":         {pkInt64},
		"int64 short":      append([]byte{pkInt64, 2}, make([]byte, 15)...),
		"string overrun":   {pkVarChar, 1, 5, 'a'},
		"string count":     {pkVarChar, 5, 0},
		"string trailing":  {pkVarChar, 1, 1, 'a', 'b'},
		"unknown key type": {9, 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePKs(b)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := Header{
			Kind:         Kind(rapid.IntRange(1, 5).Draw(t, "kind")),
			CollectionID: rapid.Int64().Draw(t, "coll"),
			PartitionID:  rapid.Int64().Draw(t, "part"),
			Timestamp:    rapid.Uint64().Draw(t, "ts"),
			Rows:         rapid.Uint32().Draw(t, "rows"),
		}
		var pks PKs
		if rapid.Bool().Draw(t, "strings") {
			pks.Strs = rapid.SliceOf(rapid.String()).Draw(t, "strs")
			if pks.Strs == nil {
				pks.Strs = []string{}
			}
		} else {
			pks.Ints = rapid.SliceOf(rapid.Int64()).Draw(t, "ints")
		}
		m, err := Decode(Encode(Message{Header: h, Body: EncodePKs(pks)}))
		if err != nil {
			t.Fatal(err)
		}
		if m.Header != h {
			t.Fatalf("header %+v != %+v", m.Header, h)
		}
		got, err := DecodePKs(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got.Len() != pks.Len() {
			t.Fatalf("len %d != %d", got.Len(), pks.Len())
		}
		for i := range pks.Ints {
			if got.Ints[i] != pks.Ints[i] {
				t.Fatalf("int key %d", i)
			}
		}
		for i := range pks.Strs {
			if got.Strs[i] != pks.Strs[i] {
				t.Fatalf("string key %d", i)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Message{Header: Header{Kind: Insert, Rows: 1}, Body: []byte("x")}))
	f.Add(EncodePKs(PKs{Strs: []string{"a", "bc"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decode(b) // must not panic
		_, _ = DecodePKs(b)
	})
}

// TestPutHeaderBeforeABodyIsEncode checks that a message built in place (header written into
// room left before the body, as the proxy does) is byte for byte what Encode makes.
func TestPutHeaderBeforeABodyIsEncode(t *testing.T) {
	m := Message{Header: Header{Kind: Insert, CollectionID: 7, PartitionID: -1, Timestamp: 1 << 40, Rows: 3}, Body: []byte("rows")}
	b := append(make([]byte, HeaderSize), m.Body...)
	PutHeader(b, m.Header)
	require.Equal(t, Encode(m), b)
	h, err := DecodeHeader(b)
	require.NoError(t, err)
	require.Equal(t, m.Header, h)
}

// TestFormatVersions: messages are written as version 2 and versions 1 and 2 are read: a data
// node of this build reads what proxies of the previous one appended, and one of the previous
// build refuses this build's messages instead of misreading them.
func TestFormatVersions(t *testing.T) {
	b := Encode(Message{Header: Header{Kind: Insert, CollectionID: 1, Timestamp: 5}})
	require.Equal(t, byte(2), b[2])
	b[2] = 1
	h, err := DecodeHeader(b)
	require.NoError(t, err)
	require.Equal(t, uint64(5), h.Timestamp)
	PutTimestamp(b, 9)
	h, err = DecodeHeader(b)
	require.NoError(t, err)
	require.Equal(t, uint64(9), h.Timestamp)
}
