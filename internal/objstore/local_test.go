package objstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestLocal(t *testing.T) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	require.NoError(t, err)
	return l, dir
}

// stagedFiles lists what sits in the staging folder.
func stagedFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, tmpDirName))
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLocalLayoutIsPlainFiles(t *testing.T) {
	l, dir := newTestLocal(t)
	require.NoError(t, l.Put(t.Context(), "a/b/c.parquet", []byte("data")))
	got, err := os.ReadFile(filepath.Join(dir, "a", "b", "c.parquet"))
	require.NoError(t, err)
	require.Equal(t, "data", string(got))
	require.Equal(t, dir, l.Dir())
}

func TestLocalPutLeavesNoStagedFiles(t *testing.T) {
	l, dir := newTestLocal(t)
	ctx := t.Context()
	for i := range 5 {
		require.NoError(t, l.Put(ctx, fmt.Sprintf("seg/%d/f", i), []byte("x")))
		require.NoError(t, l.Put(ctx, "same", []byte{byte(i)}))
	}
	require.Empty(t, stagedFiles(t, dir))
	// Even a file left in the staging folder is never listed.
	require.NoError(t, os.WriteFile(filepath.Join(dir, tmpDirName, "put-crashed"), []byte("partial"), 0o600))
	require.Equal(t, []string{"same", "seg/0/f", "seg/1/f", "seg/2/f", "seg/3/f", "seg/4/f"}, listKeys(t, l, ""))
	require.Empty(t, listKeys(t, l, ".obj"))
}

func TestLocalFailedPutLeavesNoStagedFile(t *testing.T) {
	l, dir := newTestLocal(t)
	ctx := t.Context()
	require.NoError(t, l.Put(ctx, "file", []byte("x")))
	// "file" is a file, so it cannot also be a directory.
	err := l.Put(ctx, "file/below", []byte("y"))
	require.Error(t, err)
	require.ErrorContains(t, err, "put file/below")
	require.NoError(t, l.Put(ctx, "dir/obj", []byte("x")))
	require.Error(t, l.Put(ctx, "dir", []byte("y")), "a directory cannot be replaced by an object")
	require.Empty(t, stagedFiles(t, dir))
	got, err := l.Get(ctx, "file")
	require.NoError(t, err)
	require.Equal(t, "x", string(got), "a failed Put must leave the old object alone")
}

func TestLocalFailedPutStreamLeavesNoStagedFile(t *testing.T) {
	l, dir := newTestLocal(t)
	err := l.PutStream(t.Context(), "obj", func(w io.Writer) error {
		// More than the write buffer, so that part of it reached the staged file.
		if _, err := w.Write(make([]byte, 3*streamBuffer)); err != nil {
			return err
		}
		return errors.New("test: encoder failed")
	})
	require.ErrorContains(t, err, "encoder failed")
	require.Empty(t, stagedFiles(t, dir))
	require.Empty(t, listKeys(t, l, ""))
}

func TestLocalPutWithoutStagingFolder(t *testing.T) {
	l, dir := newTestLocal(t)
	require.NoError(t, os.RemoveAll(filepath.Join(dir, tmpDirName)))
	err := l.Put(t.Context(), "k", []byte("x"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = l.Stat(t.Context(), "k")
	require.True(t, IsNotFound(err))
}

func TestLocalOpenRemovesStaleStagedFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tmpDirName)
	require.NoError(t, os.MkdirAll(filepath.Join(tmp, "old-dir"), 0o750))
	old := time.Now().Add(-2 * staleTempAge)
	for _, name := range []string{"put-old", "put-fresh"} {
		require.NoError(t, os.WriteFile(filepath.Join(tmp, name), []byte("partial"), 0o600))
	}
	require.NoError(t, os.Chtimes(filepath.Join(tmp, "put-old"), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(tmp, "old-dir"), old, old))

	_, err := NewLocal(dir)
	require.NoError(t, err)
	// A fresh staged file may belong to a Put of another Local on the same
	// directory that is still running, so only the stale ones go.
	require.Equal(t, []string{"put-fresh"}, stagedFiles(t, dir))
}

func TestLocalDeleteRemovesEmptyParents(t *testing.T) {
	l, dir := newTestLocal(t)
	ctx := t.Context()
	require.NoError(t, l.Put(ctx, "a/b/c/d", []byte("x")))
	require.NoError(t, l.Put(ctx, "a/x", []byte("x")))

	require.NoError(t, l.Delete(ctx, "a/b/c/d"))
	require.NoDirExists(t, filepath.Join(dir, "a", "b"))
	require.FileExists(t, filepath.Join(dir, "a", "x"))

	require.NoError(t, l.Delete(ctx, "a/x"))
	require.NoDirExists(t, filepath.Join(dir, "a"))
	require.DirExists(t, dir, "the root stays")
	require.DirExists(t, filepath.Join(dir, tmpDirName), "the staging folder stays")

	require.NoError(t, l.Put(ctx, "top", []byte("x")))
	require.NoError(t, l.Delete(ctx, "top"))
	require.DirExists(t, dir)
}

// Delete removes a parent directory as soon as it is empty, which can race
// with a Put that has just created it; the Put must still succeed.
func TestLocalPutRetriesWhenDeleteRemovesItsDirectory(t *testing.T) {
	l, dir := newTestLocal(t)
	removed := 0
	l.beforeRename = func(_, dst string) {
		if removed < 2 {
			removed++
			require.NoError(t, os.Remove(filepath.Dir(dst)))
		}
	}
	require.NoError(t, l.Put(t.Context(), "new/dir/k", []byte("v")))
	require.Equal(t, 2, removed)
	got, err := os.ReadFile(filepath.Join(dir, "new", "dir", "k"))
	require.NoError(t, err)
	require.Equal(t, "v", string(got))
}

func TestLocalPutGivesUpWhenStagedFileVanishes(t *testing.T) {
	l, _ := newTestLocal(t)
	l.beforeRename = func(staged, dst string) {
		require.NoError(t, os.Remove(staged))
		require.NoError(t, os.Remove(filepath.Dir(dst)))
	}
	err := l.Put(t.Context(), "d/k", []byte("v"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = l.Stat(t.Context(), "d/k")
	require.True(t, IsNotFound(err))
}

func TestLocalPutGivesUpAfterRepeatedRemovals(t *testing.T) {
	l, dir := newTestLocal(t)
	l.beforeRename = func(_, dst string) { require.NoError(t, os.Remove(filepath.Dir(dst))) }
	err := l.Put(t.Context(), "d/k", []byte("v"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Empty(t, stagedFiles(t, dir), "the staged file is removed when Put fails")
}

// Two writers that each put and delete keys in one directory keep removing
// and re-creating it under each other; every call must still succeed.
func TestLocalConcurrentPutAndDeleteInOneDirectory(t *testing.T) {
	l, _ := newTestLocal(t)
	ctx := t.Context()
	const rounds = 100
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for _, w := range []string{"a", "b"} {
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Sprintf("d/e/%s-%d", w, i)
				if err := l.Put(ctx, key, []byte("x")); err != nil {
					errs <- err
					continue
				}
				errs <- l.Delete(ctx, key)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, listKeys(t, l, ""))
}

func TestLocalListSkipsForeignEntries(t *testing.T) {
	l, dir := newTestLocal(t)
	require.NoError(t, l.Put(t.Context(), "real", []byte("x")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "back\\slash"), []byte("x"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "bad\xffname"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")))
	require.Equal(t, []string{"real"}, listKeys(t, l, ""))
}

func TestLocalNotARegularFile(t *testing.T) {
	l, dir := newTestLocal(t)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "emptydir"), 0o750))
	_, err := l.Get(t.Context(), "emptydir")
	require.True(t, IsNotFound(err), "Get: %v", err)
	_, err = l.Stat(t.Context(), "emptydir")
	require.True(t, IsNotFound(err), "Stat: %v", err)
	require.NoError(t, l.Delete(t.Context(), "emptydir"))
	require.DirExists(t, filepath.Join(dir, "emptydir"), "Delete removes objects, not directories")
}

func TestNewLocal(t *testing.T) {
	t.Run("creates nested directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "x", "y")
		l, err := NewLocal(dir)
		require.NoError(t, err)
		require.DirExists(t, filepath.Join(dir, tmpDirName))
		require.NoError(t, l.Put(t.Context(), "k", []byte("v")))
	})
	t.Run("relative path becomes absolute", func(t *testing.T) {
		base := t.TempDir()
		t.Chdir(base)
		l, err := NewLocal("data")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(base, "data"), l.Dir())
	})
	t.Run("reopen keeps objects", func(t *testing.T) {
		l, dir := newTestLocal(t)
		require.NoError(t, l.Put(t.Context(), "k", []byte("v")))
		again, err := NewLocal(dir)
		require.NoError(t, err)
		got, err := again.Get(t.Context(), "k")
		require.NoError(t, err)
		require.Equal(t, "v", string(got))
	})
	t.Run("empty", func(t *testing.T) {
		_, err := NewLocal("")
		require.ErrorContains(t, err, "empty directory")
	})
	t.Run("path is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		_, err := NewLocal(file)
		require.ErrorContains(t, err, "open local bucket")
	})
	t.Run("staging path is a file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, tmpDirName), nil, 0o600))
		_, err := NewLocal(dir)
		require.Error(t, err)
	})
}
