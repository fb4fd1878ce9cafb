package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// impl opens a fresh, empty bucket of one implementation for one test case.
type impl struct {
	name string
	open func(t *testing.T) Bucket
	skip string // non-empty: why this implementation is not available
}

func implementations(t *testing.T) []impl {
	fake := newFakeS3(t)
	var n int
	impls := []impl{
		{name: "local", open: func(t *testing.T) Bucket {
			l, err := NewLocal(t.TempDir())
			require.NoError(t, err)
			return l
		}},
		{name: "memory", open: func(t *testing.T) Bucket { return NewMemory() }},
		{name: "s3-gofakes3", open: func(t *testing.T) Bucket {
			// One fake server, a fresh prefix per case: every case also
			// checks that a prefix isolates its objects from the others'.
			n++
			return newTestS3(t, fake, "contract", fmt.Sprintf("run/case-%d", n))
		}},
	}
	envURL := os.Getenv("WEIR_TEST_S3_URL")
	env := impl{name: "s3-env"}
	if envURL == "" {
		env.skip = "WEIR_TEST_S3_URL not set; set it to an s3:// URL (as Open accepts) to run the contract against a real S3 service"
	} else {
		run := fmt.Sprintf("objstore-test-%d", time.Now().UnixNano())
		env.open = func(t *testing.T) Bucket {
			loc, err := parseURL(envURL, os.Getenv)
			require.NoError(t, err)
			require.NotNil(t, loc.s3, "WEIR_TEST_S3_URL must be an s3:// URL")
			n++
			cfg := *loc.s3
			cfg.Prefix = strings.Trim(cfg.Prefix+"/"+run+fmt.Sprintf("/case-%d", n), "/")
			s, err := NewS3(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() { cleanupBucket(t, s); require.NoError(t, s.Close()) })
			return s
		}
	}
	return append(impls, env)
}

// cleanupBucket deletes what a case left in a shared, real S3 bucket.
func cleanupBucket(t *testing.T, b Bucket) {
	ctx := context.Background() // t.Context is already cancelled in Cleanup
	require.NoError(t, b.List(ctx, "", func(info ObjectInfo) error {
		return b.Delete(ctx, info.Key)
	}))
}

type contractCase struct {
	name string
	run  func(t *testing.T, b Bucket)
}

func TestContract(t *testing.T) {
	for _, im := range implementations(t) {
		t.Run(im.name, func(t *testing.T) {
			if im.skip != "" {
				t.Skip(im.skip)
			}
			for _, tc := range contractCases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, im.open(t)) })
			}
		})
	}
}

var contractCases = []contractCase{
	{"put get stat", testPutGetStat},
	{"empty object", testEmptyObject},
	{"overwrite", testOverwrite},
	{"caller buffers are not shared", testBuffersNotShared},
	{"get range", testGetRange},
	{"get range on empty object", testGetRangeEmptyObject},
	{"not found", testNotFound},
	{"prefix of a key is not an object", testPrefixIsNotObject},
	{"list by prefix in key order", testList},
	{"list reports size and mod time", testListInfo},
	{"list callback error stops", testListStops},
	{"list callback may delete", testListCallbackDeletes},
	{"list invalid prefix", testListInvalidPrefix},
	{"delete", testDelete},
	{"invalid keys", testInvalidKeys},
	{"unusual valid keys", testValidKeys},
	{"large object", testLargeObject},
	{"context cancelled", testContextCancelled},
	{"readers see whole objects during overwrites", testAtomicOverwrite},
	{"put stream", testPutStream},
	{"put stream of a large object", testPutStreamLarge},
	{"failed put stream stores nothing", testPutStreamFails},
	{"put stream cancelled", testPutStreamCancelled},
}

func testPutGetStat(t *testing.T, b Bucket) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute) // S3 has one-second resolution and servers drift
	data := []byte("hello, weir")
	require.NoError(t, b.Put(ctx, "dir/sub/obj.bin", data))

	got, err := b.Get(ctx, "dir/sub/obj.bin")
	require.NoError(t, err)
	require.Equal(t, data, got)

	info, err := b.Stat(ctx, "dir/sub/obj.bin")
	require.NoError(t, err)
	require.Equal(t, "dir/sub/obj.bin", info.Key)
	require.Equal(t, int64(len(data)), info.Size)
	require.WithinRange(t, info.ModTime, before, time.Now().Add(time.Minute))
}

func testEmptyObject(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "empty", nil))
	got, err := b.Get(ctx, "empty")
	require.NoError(t, err)
	require.Empty(t, got)
	info, err := b.Stat(ctx, "empty")
	require.NoError(t, err)
	require.Zero(t, info.Size)
	require.Equal(t, []string{"empty"}, listKeys(t, b, ""))
}

func testOverwrite(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "k", []byte("first version, longer")))
	require.NoError(t, b.Put(ctx, "k", []byte("second")))
	got, err := b.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "second", string(got))
	info, err := b.Stat(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, int64(len("second")), info.Size)
	require.Equal(t, []string{"k"}, listKeys(t, b, ""))
}

func testBuffersNotShared(t *testing.T, b Bucket) {
	ctx := t.Context()
	data := []byte("original")
	require.NoError(t, b.Put(ctx, "k", data))
	copy(data, "XXXXXXXX")
	got, err := b.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "original", string(got))
	copy(got, "YYYYYYYY")
	again, err := b.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "original", string(again))
}

func testGetRange(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "r", []byte("0123456789")))
	tests := []struct {
		off, length int64
		want        string
		err         error
	}{
		{off: 0, length: 3, want: "012"},
		{off: 2, length: 4, want: "2345"},
		{off: 9, length: 1, want: "9"},
		{off: 0, length: 10, want: "0123456789"},
		{off: 7, length: 100, want: "789"},
		{off: 3, length: math.MaxInt64, want: "3456789"},
		{off: 4, length: 0, want: ""},
		{off: 10, length: 0, want: ""},
		{off: 10, length: 5, want: ""},
		{off: 11, length: 1, err: ErrInvalidRange},
		{off: 11, length: 0, err: ErrInvalidRange},
		{off: -1, length: 2, err: ErrInvalidRange},
		{off: 0, length: -1, err: ErrInvalidRange},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("off=%d,len=%d", tt.off, tt.length), func(t *testing.T) {
			got, err := b.GetRange(ctx, "r", tt.off, tt.length)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				require.ErrorContains(t, err, "r")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func testGetRangeEmptyObject(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "e", []byte{}))
	for _, length := range []int64{0, 5} {
		got, err := b.GetRange(ctx, "e", 0, length)
		require.NoError(t, err)
		require.Empty(t, got)
	}
	_, err := b.GetRange(ctx, "e", 1, 0)
	require.ErrorIs(t, err, ErrInvalidRange)
}

func testNotFound(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "present", []byte("x")))
	_, err := b.Get(ctx, "missing/key")
	require.True(t, IsNotFound(err), "Get: %v", err)
	require.ErrorContains(t, err, "missing/key")
	_, err = b.Stat(ctx, "missing/key")
	require.True(t, IsNotFound(err), "Stat: %v", err)
	require.ErrorContains(t, err, "missing/key")
	for _, length := range []int64{0, 4} {
		_, err = b.GetRange(ctx, "missing/key", 0, length)
		require.True(t, IsNotFound(err), "GetRange length %d: %v", length, err)
		require.ErrorContains(t, err, "missing/key")
	}
	// A key below an object names nothing either.
	_, err = b.Get(ctx, "present/below")
	require.True(t, IsNotFound(err), "Get below an object: %v", err)
	_, err = b.Stat(ctx, "present/below")
	require.True(t, IsNotFound(err), "Stat below an object: %v", err)
	require.False(t, IsNotFound(errors.New("other")))
	require.False(t, IsNotFound(nil))
}

func testPrefixIsNotObject(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "dir/inner/obj", []byte("x")))
	for _, key := range []string{"dir", "dir/inner"} {
		_, err := b.Get(ctx, key)
		require.True(t, IsNotFound(err), "Get %s: %v", key, err)
		_, err = b.GetRange(ctx, key, 0, 1)
		require.True(t, IsNotFound(err), "GetRange %s: %v", key, err)
		_, err = b.Stat(ctx, key)
		require.True(t, IsNotFound(err), "Stat %s: %v", key, err)
		require.NoError(t, b.Delete(ctx, key))
	}
	got, err := b.Get(ctx, "dir/inner/obj")
	require.NoError(t, err, "deleting a prefix must not touch the objects below it")
	require.Equal(t, "x", string(got))
}

// listKeys returns the keys List reports, in the order it reports them.
func listKeys(t *testing.T, b BucketReader, prefix string) []string {
	t.Helper()
	keys := []string{}
	require.NoError(t, b.List(t.Context(), prefix, func(info ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}))
	return keys
}

func testList(t *testing.T, b Bucket) {
	ctx := t.Context()
	// Chosen so that a walk of directories in name order would get the
	// order wrong: '-' and '.' sort before '/', and '0' after it.
	keys := []string{
		"a-b", "a.txt", "a/b/c", "a/b0", "a/c", "a0", "ab",
		"b/x/y/z", "seg/1/f", "seg/12/f", "seg/2/f",
	}
	for _, i := range mrand.Perm(len(keys)) {
		require.NoError(t, b.Put(ctx, keys[i], []byte(keys[i])))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", keys},
		{"a", []string{"a-b", "a.txt", "a/b/c", "a/b0", "a/c", "a0", "ab"}},
		{"a/", []string{"a/b/c", "a/b0", "a/c"}},
		{"a/b", []string{"a/b/c", "a/b0"}},
		{"a/b/", []string{"a/b/c"}},
		{"a/b/c", []string{"a/b/c"}},
		{"a/b/c/", []string{}},
		{"b/", []string{"b/x/y/z"}},
		{"b/x/y/z", []string{"b/x/y/z"}},
		{"seg/1", []string{"seg/1/f", "seg/12/f"}},
		{"seg/1/", []string{"seg/1/f"}},
		{"seg/3", []string{}},
		{"zzz", []string{}},
		{"nothing/here/", []string{}},
		{"a/.", []string{}},
	}
	for _, tt := range tests {
		t.Run("prefix="+tt.prefix, func(t *testing.T) {
			require.Equal(t, tt.want, listKeys(t, b, tt.prefix))
		})
	}
}

func testListInfo(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "p/one", []byte("1")))
	require.NoError(t, b.Put(ctx, "p/three", []byte("333")))
	var infos []ObjectInfo
	require.NoError(t, b.List(ctx, "p/", func(info ObjectInfo) error {
		infos = append(infos, info)
		return nil
	}))
	require.Len(t, infos, 2)
	for _, info := range infos {
		st, err := b.Stat(ctx, info.Key)
		require.NoError(t, err)
		require.Equal(t, st.Size, info.Size, info.Key)
		require.WithinDuration(t, st.ModTime, info.ModTime, time.Second, info.Key)
	}
	require.Equal(t, int64(1), infos[0].Size)
	require.Equal(t, int64(3), infos[1].Size)
}

func testListStops(t *testing.T, b Bucket) {
	ctx := t.Context()
	for i := range 5 {
		require.NoError(t, b.Put(ctx, fmt.Sprintf("k/%d", i), []byte{byte(i)}))
	}
	stop := errors.New("enough")
	var seen []string
	err := b.List(ctx, "k/", func(info ObjectInfo) error {
		seen = append(seen, info.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	require.Same(t, stop, err, "List must return the callback's error itself")
	require.Equal(t, []string{"k/0", "k/1"}, seen)
}

func testListCallbackDeletes(t *testing.T, b Bucket) {
	ctx := t.Context()
	for i := range 4 {
		require.NoError(t, b.Put(ctx, fmt.Sprintf("gc/%d/f", i), []byte("x")))
	}
	require.NoError(t, b.Put(ctx, "keep", []byte("x")))
	var deleted []string
	require.NoError(t, b.List(ctx, "gc/", func(info ObjectInfo) error {
		deleted = append(deleted, info.Key)
		return b.Delete(ctx, info.Key)
	}))
	require.Equal(t, []string{"gc/0/f", "gc/1/f", "gc/2/f", "gc/3/f"}, deleted)
	require.Equal(t, []string{"keep"}, listKeys(t, b, ""))
}

func testListInvalidPrefix(t *testing.T, b Bucket) {
	for _, prefix := range []string{"/a", "a//", "a//b", "../", "a/../b", "./", "a\\b", "a\x00", ".objstore-tmp/", "\xff"} {
		err := b.List(t.Context(), prefix, func(ObjectInfo) error {
			t.Fatalf("callback called for invalid prefix %q", prefix)
			return nil
		})
		require.ErrorIs(t, err, ErrInvalidKey, "prefix %q", prefix)
	}
}

func testDelete(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.Put(ctx, "d/one", []byte("1")))
	require.NoError(t, b.Put(ctx, "d/two", []byte("2")))
	require.NoError(t, b.Delete(ctx, "d/one"))

	_, err := b.Get(ctx, "d/one")
	require.True(t, IsNotFound(err), "Get after Delete: %v", err)
	_, err = b.Stat(ctx, "d/one")
	require.True(t, IsNotFound(err), "Stat after Delete: %v", err)
	require.Equal(t, []string{"d/two"}, listKeys(t, b, ""))

	require.NoError(t, b.Delete(ctx, "d/one"), "deleting twice")
	require.NoError(t, b.Delete(ctx, "never/existed"), "deleting a key never written")
	got, err := b.Get(ctx, "d/two")
	require.NoError(t, err)
	require.Equal(t, "2", string(got))

	require.NoError(t, b.Put(ctx, "d/one", []byte("again")), "a deleted key can be written again")
	got, err = b.Get(ctx, "d/one")
	require.NoError(t, err)
	require.Equal(t, "again", string(got))
}

var invalidKeys = []string{
	"",
	"/abs",
	"trailing/",
	"double//slash",
	".",
	"..",
	"./a",
	"a/./b",
	"a/..",
	"../escape",
	"back\\slash",
	"nul\x00byte",
	"bad-utf8-\xff",
	".objstore-tmp",
	".objstore-tmp/put-123",
	strings.Repeat("e", 256),
	strings.Repeat("abcdefg/", 128) + "x", // 1025 bytes
}

func testInvalidKeys(t *testing.T, b Bucket) {
	ctx := t.Context()
	for _, key := range invalidKeys {
		name := fmt.Sprintf("%.40q", key)
		require.ErrorIs(t, b.Put(ctx, key, []byte("x")), ErrInvalidKey, "Put %s", name)
		_, err := b.Get(ctx, key)
		require.ErrorIs(t, err, ErrInvalidKey, "Get %s", name)
		_, err = b.GetRange(ctx, key, 0, 1)
		require.ErrorIs(t, err, ErrInvalidKey, "GetRange %s", name)
		_, err = b.Stat(ctx, key)
		require.ErrorIs(t, err, ErrInvalidKey, "Stat %s", name)
		require.ErrorIs(t, b.Delete(ctx, key), ErrInvalidKey, "Delete %s", name)
	}
	require.Empty(t, listKeys(t, b, ""), "no invalid key may have been stored")
}

func testValidKeys(t *testing.T, b Bucket) {
	ctx := t.Context()
	keys := []string{
		"with space/and+plus",
		"ünïcode/ключ/键",
		"a..b/c.d",
		".hidden/.file",
		"x/.objstore-tmp", // reserved only as the first element
		"...",
		"percent%20/question?/hash#/amp&eq=",
		strings.Repeat("e", 255),
		strings.Repeat("abcdefg/", 100) + "x",
	}
	for _, key := range keys {
		require.NoError(t, b.Put(ctx, key, []byte(key)), "Put %.40q", key)
	}
	for _, key := range keys {
		got, err := b.Get(ctx, key)
		require.NoError(t, err, "Get %.40q", key)
		require.Equal(t, key, string(got))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	require.Equal(t, want, listKeys(t, b, ""))
	for _, key := range keys {
		require.NoError(t, b.Delete(ctx, key), "Delete %.40q", key)
	}
	require.Empty(t, listKeys(t, b, ""))
}

func testLargeObject(t *testing.T, b Bucket) {
	ctx := t.Context()
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	require.NoError(t, b.Put(ctx, "big/object", data))
	got, err := b.Get(ctx, "big/object")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "8 MiB object differs after a round trip")
	info, err := b.Stat(ctx, "big/object")
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), info.Size)
	part, err := b.GetRange(ctx, "big/object", 3<<20+17, 1<<20)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data[3<<20+17:4<<20+17], part), "range of the 8 MiB object differs")
	tail, err := b.GetRange(ctx, "big/object", int64(len(data))-5, 100)
	require.NoError(t, err)
	require.Equal(t, data[len(data)-5:], tail)
}

func testContextCancelled(t *testing.T, b Bucket) {
	require.NoError(t, b.Put(t.Context(), "exists", []byte("x")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	require.ErrorIs(t, b.Put(ctx, "new", []byte("x")), context.Canceled, "Put")
	_, err := b.Get(ctx, "exists")
	require.ErrorIs(t, err, context.Canceled, "Get")
	_, err = b.GetRange(ctx, "exists", 0, 1)
	require.ErrorIs(t, err, context.Canceled, "GetRange")
	_, err = b.Stat(ctx, "exists")
	require.ErrorIs(t, err, context.Canceled, "Stat")
	require.ErrorIs(t, b.Delete(ctx, "exists"), context.Canceled, "Delete")
	err = b.List(ctx, "", func(ObjectInfo) error {
		t.Fatal("callback called with a cancelled context")
		return nil
	})
	require.ErrorIs(t, err, context.Canceled, "List")

	_, err = b.Get(t.Context(), "new")
	require.True(t, IsNotFound(err), "a cancelled Put must not store: %v", err)
	_, err = b.Get(t.Context(), "exists")
	require.NoError(t, err, "a cancelled Delete must not delete")

	// Cancelled while List is under way: the walk stops with the context's
	// error instead of reporting a partial listing as complete.
	for i := range 3 {
		require.NoError(t, b.Put(t.Context(), fmt.Sprintf("l/%d", i), []byte("x")))
	}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	err = b.List(ctx, "l/", func(ObjectInfo) error {
		calls++
		cancel()
		return nil
	})
	require.ErrorIs(t, err, context.Canceled, "List cancelled midway")
	require.Equal(t, 1, calls)
}

// testAtomicOverwrite overwrites one key with objects of different sizes and
// contents while readers check that each read is one whole object.
func testAtomicOverwrite(t *testing.T, b Bucket) {
	ctx := t.Context()
	object := func(v int) []byte { return bytes.Repeat([]byte{byte('a' + v)}, 16<<10*(v+1)) }
	const versions = 6
	require.NoError(t, b.Put(ctx, "hot", object(0)))

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := b.Get(ctx, "hot")
				if err != nil {
					errs <- err
					return
				}
				v := int(got[0] - 'a')
				if v < 0 || v >= versions || !bytes.Equal(got, object(v)) {
					errs <- fmt.Errorf("read a torn object: %d bytes starting %q", len(got), got[:1])
					return
				}
			}
		})
	}
	for i := range 30 {
		if err := b.Put(ctx, "hot", object(i%versions)); err != nil {
			errs <- err
			break
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func testPutStream(t *testing.T, b Bucket) {
	ctx := t.Context()
	require.NoError(t, b.PutStream(ctx, "s/obj", func(w io.Writer) error {
		for _, part := range []string{"hello", ", ", "", "weir"} {
			if _, err := io.WriteString(w, part); err != nil {
				return err
			}
		}
		return nil
	}))
	got, err := b.Get(ctx, "s/obj")
	require.NoError(t, err)
	require.Equal(t, "hello, weir", string(got))
	require.NoError(t, b.PutStream(ctx, "s/empty", func(io.Writer) error { return nil }))
	info, err := b.Stat(ctx, "s/empty")
	require.NoError(t, err)
	require.Zero(t, info.Size)
	require.ErrorIs(t, b.PutStream(ctx, "/bad", func(io.Writer) error {
		t.Fatal("write called for an invalid key")
		return nil
	}), ErrInvalidKey)
}

// testPutStreamLarge streams more than one S3 part in writes of uneven sizes, as an encoder
// does, so that S3 takes its multipart path.
func testPutStreamLarge(t *testing.T, b Bucket) {
	ctx := t.Context()
	data := make([]byte, streamPartSize+3<<20+7)
	_, _ = rand.Read(data)
	require.NoError(t, b.PutStream(ctx, "big/stream", func(w io.Writer) error {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+mrand.IntN(2<<20))
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	}))
	got, err := b.Get(ctx, "big/stream")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "streamed object differs after a round trip")
}

// testPutStreamFails fails the write after part of the object, and after more than a part of
// it: nothing is stored, the previous object stays, the write's error is returned.
func testPutStreamFails(t *testing.T, b Bucket) {
	ctx := t.Context()
	errWrite := errors.New("test: encoder failed")
	require.NoError(t, b.Put(ctx, "k", []byte("old")))
	for _, size := range []int{10, streamPartSize + 1<<20} {
		for _, key := range []string{"k", "new"} {
			err := b.PutStream(ctx, key, func(w io.Writer) error {
				if _, err := w.Write(make([]byte, size)); err != nil {
					return err
				}
				return errWrite
			})
			require.ErrorIs(t, err, errWrite, "%s after %d bytes", key, size)
		}
		got, err := b.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "old", string(got), "a failed stream must leave the old object alone")
		_, err = b.Get(ctx, "new")
		require.True(t, IsNotFound(err), "a failed stream must not store: %v", err)
	}
}

func testPutStreamCancelled(t *testing.T, b Bucket) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.PutStream(ctx, "new", func(io.Writer) error {
		t.Fatal("write called with a cancelled context")
		return nil
	}), context.Canceled)

	// Cancelled while the object is written: the next write fails, nothing is stored.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	err := b.PutStream(ctx, "new", func(w io.Writer) error {
		if _, err := w.Write([]byte("first")); err != nil {
			return err
		}
		cancel()
		_, err := w.Write([]byte("second"))
		return err
	})
	require.ErrorIs(t, err, context.Canceled)
	_, err = b.Get(t.Context(), "new")
	require.True(t, IsNotFound(err), "a cancelled stream must not store: %v", err)
}
