package objstore

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateKey(t *testing.T) {
	valid := []string{"a", "a/b", "a.b", "...", ".a/b", "a/.objstore-tmp", "ключ", strings.Repeat("x", 255)}
	for _, key := range valid {
		require.NoError(t, validateKey(key), "%q", key)
	}
	for _, key := range invalidKeys {
		require.ErrorIs(t, validateKey(key), ErrInvalidKey, "%.40q", key)
	}
}

func TestValidatePrefix(t *testing.T) {
	valid := []string{"", "a", "a/", "a/b", "a/b/", "a/.", "a/..", ".", "..", ".objstore-tmp", ".obj", "a/.objstore-tmp/"}
	for _, p := range valid {
		require.NoError(t, validatePrefix(p), "%q", p)
	}
	invalid := []string{
		"/", "/a", "a//", "./", "../", "a/./", "a/../b", "a\\", "a\x00", "\xff",
		".objstore-tmp/", ".objstore-tmp/x", strings.Repeat("x", 256), "a/" + strings.Repeat("x", 256),
		strings.Repeat("abcdefg/", 129),
	}
	for _, p := range invalid {
		require.ErrorIs(t, validatePrefix(p), ErrInvalidKey, "%.40q", p)
	}
}

func TestClipRange(t *testing.T) {
	tests := []struct {
		size, off, length int64
		start, end        int64
		bad               bool
	}{
		{size: 10, off: 0, length: 10, start: 0, end: 10},
		{size: 10, off: 2, length: 3, start: 2, end: 5},
		{size: 10, off: 8, length: 5, start: 8, end: 10},
		{size: 10, off: 10, length: 1, start: 10, end: 10},
		{size: 10, off: 1, length: math.MaxInt64, start: 1, end: 10},
		{size: 0, off: 0, length: 0, start: 0, end: 0},
		{size: 10, off: 11, length: 0, bad: true},
		{size: 10, off: -1, length: 1, bad: true},
		{size: 10, off: 0, length: -1, bad: true},
	}
	for _, tt := range tests {
		start, end, err := clipRange(tt.size, tt.off, tt.length)
		if tt.bad {
			require.ErrorIs(t, err, ErrInvalidRange, "%+v", tt)
			continue
		}
		require.NoError(t, err, "%+v", tt)
		require.Equal(t, [2]int64{tt.start, tt.end}, [2]int64{start, end}, "%+v", tt)
	}
}
