package segment

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestBloomNoFalseNegatives(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ints := rapid.SliceOfN(rapid.Int64(), 1, 2000).Draw(t, "ints")
		strs := rapid.SliceOfN(rapid.String(), 1, 500).Draw(t, "strs")
		fpp := rapid.Float64Range(1e-6, 0.5).Draw(t, "fpp")
		f := NewBloom(int64(len(ints)+len(strs)), fpp)
		for _, v := range ints {
			f.AddHash(HashInt64(v))
		}
		for _, s := range strs {
			f.AddHash(HashString(s))
		}
		g, err := BloomFromBytes(f.Bytes())
		require.NoError(t, err)
		for _, v := range ints {
			require.True(t, g.HasHash(HashInt64(v)), "int %d", v)
		}
		for _, s := range strs {
			require.True(t, g.HasHash(HashString(s)), "string %q", s)
		}
	})
}

// TestBloomFalsePositiveRate measures the rate on keys never inserted.
func TestBloomFalsePositiveRate(t *testing.T) {
	const n, probes = 100_000, 1_000_000
	for _, fpp := range []float64{DefaultFPP, 0.01} {
		t.Run(fmt.Sprint(fpp), func(t *testing.T) {
			f := NewBloom(n, fpp)
			for i := range int64(n) {
				f.AddHash(HashInt64(i))
			}
			var fp int
			for i := range int64(probes) {
				if f.HasHash(HashInt64(n + i)) {
					fp++
				}
			}
			rate := float64(fp) / probes
			t.Logf("target %.4f: measured %.5f with %.1f bits per key", fpp, rate, float64(8*f.Len())/n)
			require.InDelta(t, fpp, rate, fpp*0.5, "measured rate near the target")
		})
	}
}

func TestBloomDefaults(t *testing.T) {
	require.Equal(t, NewBloom(1000, 0).Len(), NewBloom(1000, DefaultFPP).Len(), "0 means the default rate")
	require.Equal(t, NewBloom(1000, 2).Len(), NewBloom(1000, DefaultFPP).Len())
	require.Equal(t, bloomBlockBytes, NewBloom(0, 0.5).Len(), "at least one block")
	require.Equal(t, maxBloomBytes, NewBloom(1<<40, DefaultFPP).Len(), "capped")
	bits := float64(8*NewBloom(1_000_000, DefaultFPP).Len()) / 1_000_000
	require.True(t, bits > 14.4 && bits < 20, "bits per key at 0.1%%: %.1f", bits)
}

// TestBloomMatchesParquet checks the documented encoding: arrow-go's Parquet split-block filter,
// given the same keys and size, holds the same bits.
func TestBloomMatchesParquet(t *testing.T) {
	const size = 8 << 10 // the Parquet implementation rounds to a power of two
	f, err := BloomFromBytes(make([]byte, size))
	require.NoError(t, err)
	ref := metadata.NewBloomFilter(uint32(size), uint32(size), memory.DefaultAllocator)
	defer ref.Release()
	for i := range int64(3000) {
		f.AddHash(HashInt64(i * 7))
		ref.InsertHash(metadata.GetHash(ref.Hasher(), i*7))
	}
	for _, s := range []string{"", "a", "weir", "ключ"} {
		f.AddHash(HashString(s))
		ref.InsertHash(ref.Hasher().Sum64([]byte(s)))
	}
	var want bytes.Buffer
	_, err = ref.WriteTo(&want, nil)
	require.NoError(t, err)
	require.Equal(t, want.Bytes(), f.Bytes())
}

func TestBloomFromBytesRejects(t *testing.T) {
	for _, n := range []int{0, 31, 33, maxBloomBytes + bloomBlockBytes} {
		_, err := BloomFromBytes(make([]byte, n))
		require.ErrorIs(t, err, ErrFormat, "%d bytes", n)
	}
}

func TestBloomSizingIsQuick(t *testing.T) {
	require.Equal(t, maxBloomBytes, NewBloom(1<<62, 0.999).Len())
	require.Less(t, bloomRate(1000, 1), 1.0+1e-9)
	require.Equal(t, 1.0, bloomRate(1e9, 1))
}
