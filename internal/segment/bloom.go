package segment

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"
)

// DefaultFPP is the false-positive rate a stats file's Bloom filter is sized for: a query
// node applying a delete reads a segment that does not hold the key once in a thousand times.
const DefaultFPP = 0.001

// bloomBlockBytes is the size of one block of the split-block filter: eight 32-bit words.
const bloomBlockBytes = 32

// maxBloomBytes bounds a filter (4.7 million keys at 0.1% per MiB); Parquet uses the same cap.
const maxBloomBytes = 128 << 20

// bloomSalt are the split-block filter's odd constants from the Parquet specification.
var bloomSalt = [8]uint32{
	0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d,
	0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
}

// Bloom is a split-block Bloom filter exactly as the Parquet format specifies it
// (parquet-format BloomFilter.md): the filter is z blocks of eight little-endian uint32 words;
// a key's 64-bit xxhash (seed 0) picks block ((hash>>32)*z)>>32, and in each word i of that
// block sets bit (uint32(hash)*salt[i])>>27. It has no false negatives. Keys are hashed as
// Parquet hashes PLAIN values: an int64 as its 8 little-endian bytes, a string as its bytes.
//
// Following the specification lets any Parquet implementation's split-block filter check Weir's
// stats files. Unlike Parquet writers, Weir does not round z up to a power of two, because the
// block index needs none and the rounding can double the size, and it sizes the filter from
// the block load rather than with the specification's formula, which misses its target (see
// bloomBlocks).
type Bloom struct {
	words []uint32
}

// NewBloom returns an empty filter sized for n distinct keys at false-positive rate fpp
// (DefaultFPP when fpp is not in (0, 1)).
func NewBloom(n int64, fpp float64) *Bloom {
	if !(fpp > 0 && fpp < 1) {
		fpp = DefaultFPP
	}
	return &Bloom{words: make([]uint32, 8*bloomBlocks(max(n, 1), fpp))}
}

// bloomBlocks returns the fewest blocks for which n keys give a false-positive rate of at most
// fpp, capped at maxBloomBytes. The Parquet specification's sizing, 8n/-ln(1-fpp^(1/8)) bits,
// assumes every block holds the same number of keys; they do not, and at 0.1% that size
// measures 0.2%. So the rate is computed over the real load: a block's key count is Poisson
// with mean n/z, a block holding k keys answers a foreign key yes with probability
// (1-(31/32)^k)^8, and the filter's rate is the mean of that over blocks.
func bloomBlocks(n int64, fpp float64) int {
	const maxBlocks = maxBloomBytes / bloomBlockBytes
	lo, hi := 1, maxBlocks // rate(hi) may still exceed fpp: then the cap wins
	for lo < hi {
		mid := lo + (hi-lo)/2
		if bloomRate(float64(n), float64(mid)) <= fpp {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// bloomRate returns the expected false-positive rate of n keys in z blocks.
func bloomRate(n, z float64) float64 {
	lambda := n / z
	if lambda > 1000 { // (1-(31/32)^1000)^8 is 1 in float64; and the sum below would be long
		return 1
	}
	// Sum the Poisson terms within 12 standard deviations of the mean, where all the mass is.
	from := max(0, int(lambda-12*math.Sqrt(lambda)-12))
	to := int(lambda + 12*math.Sqrt(lambda) + 12)
	var rate float64
	for k := from; k <= to; k++ {
		lg, _ := math.Lgamma(float64(k) + 1)
		p := math.Exp(float64(k)*math.Log(lambda) - lambda - lg)
		rate += p * math.Pow(1-math.Pow(31.0/32, float64(k)), 8)
	}
	return rate
}

// BloomFromBytes decodes a filter from the bytes Bytes returned.
func BloomFromBytes(b []byte) (*Bloom, error) {
	if len(b) == 0 || len(b)%bloomBlockBytes != 0 || len(b) > maxBloomBytes {
		return nil, fmt.Errorf("%w: bloom filter of %d bytes", ErrFormat, len(b))
	}
	words := make([]uint32, len(b)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return &Bloom{words: words}, nil
}

// Bytes returns the filter's bitset, the bytes Parquet stores after a BloomFilterHeader.
func (f *Bloom) Bytes() []byte {
	b := make([]byte, 4*len(f.words))
	for i, w := range f.words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// Len returns the size of the filter in bytes.
func (f *Bloom) Len() int { return 4 * len(f.words) }

// block returns the eight words of the block that hash h selects.
func (f *Bloom) block(h uint64) []uint32 {
	z := uint64(len(f.words) / 8)
	i := ((h >> 32) * z) >> 32
	return f.words[8*i : 8*i+8]
}

// AddHash inserts a key by its xxhash.
func (f *Bloom) AddHash(h uint64) {
	blk, key := f.block(h), uint32(h)
	for i, s := range bloomSalt {
		blk[i] |= 1 << ((key * s) >> 27)
	}
}

// HasHash reports whether a key with xxhash h may have been inserted.
func (f *Bloom) HasHash(h uint64) bool {
	blk, key := f.block(h), uint32(h)
	for i, s := range bloomSalt {
		if blk[i]&(1<<((key*s)>>27)) == 0 {
			return false
		}
	}
	return true
}

// HashInt64 returns the filter hash of an int64 key.
func HashInt64(v int64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	return xxhash.Sum64(b[:])
}

// HashString returns the filter hash of a string key.
func HashString(s string) uint64 { return xxhash.Sum64String(s) }
