package batch

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// maxHashedStringBytes is how much of a varchar key Milvus hashes (typeutil's
// substringLengthForCRC): longer keys are routed by their first 100 bytes.
const maxHashedStringBytes = 100

// HashInt64 returns the routing hash Milvus computes for an int64 primary key
// (typeutil.Hash32Int64): 32-bit MurmurHash3 with seed 0 of the key's 8 little-endian bytes,
// with the top bit cleared. A row goes to virtual channel HashInt64(pk) % shards, so Weir
// places every key on the channel Milvus would.
func HashInt64(pk int64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(pk))
	return murmur3x86(b) & 0x7fffffff
}

// HashString returns the routing hash Milvus computes for a varchar primary key
// (typeutil.HashString2Uint32): CRC-32 (IEEE) of at most its first 100 bytes.
func HashString(pk string) uint32 {
	if len(pk) > maxHashedStringBytes {
		pk = pk[:maxHashedStringBytes]
	}
	return crc32.ChecksumIEEE([]byte(pk))
}

// ChannelOf returns the index of the virtual channel, among shards, that a key with routing
// hash h belongs to: h % shards, as Milvus's HashPK2Channels. It suits Split's channelOf.
// shards must be positive.
func ChannelOf(shards int) func(h uint32) int {
	return func(h uint32) int { return int(h % uint32(shards)) }
}

// murmur3x86 is MurmurHash3_x86_32 with seed 0 (Austin Appleby's reference, which
// github.com/spaolacci/murmur3's Sum32 implements and Milvus calls) specialised to an 8-byte
// key: two 4-byte blocks and no tail.
func murmur3x86(key [8]byte) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	var h uint32
	for _, k := range [2]uint32{binary.LittleEndian.Uint32(key[:4]), binary.LittleEndian.Uint32(key[4:])} {
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	h ^= 8 // the key length
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
