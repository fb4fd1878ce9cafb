// Package dml is the format of the messages Weir appends to DML channels: inserts (a batch of
// rows of one partition, as Arrow IPC), deletes (primary keys), upserts (rows that first delete
// their own keys) and flush markers.
//
// A message is a fixed 32-byte header followed by a body:
//
//	offset size  field
//	0      2     magic "WD"
//	2      1     version (2; 1 is read too)
//	3      1     kind (1 insert, 2 delete, 3 flush, 4 upsert, 5 upsert deleting in every partition)
//	4      8     collection ID (int64, little-endian)
//	12     8     partition ID (int64; -1 = every partition, for deletes)
//	20     8     hybrid timestamp (uint64)
//	28     4     rows (uint32)
//	32     ...   body
//
// The header is fixed-size so a data node can route and filter a message (replay drops what
// segment meta already holds) without decoding its rows.
//
// An upsert is one message, not a delete followed by an insert: its body is the rows (as an
// insert's), and it deletes the rows' primary keys in its partition at its timestamp before it
// inserts them at the same timestamp. A delete (pk, ts) hides rows of pk stamped before ts, so
// the upserted rows survive their own delete. As one message it cannot be split or reordered:
// two messages of one append could be, when the server refuses one and takes the other and the
// retry stores the refused one after it.
//
// An upsert of kind UpsertAllPartitions deletes its rows' keys in every partition, not only in
// the one its rows go to: in a collection with a partition key the row that an upsert replaces
// may sit in another partition (its key value changed), and Milvus then deletes in all of them.
// A data node built before this kind existed refuses it as corrupt and stops the channel until
// it is upgraded: upgrade data nodes before proxies.
package dml

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Kind is what a message does.
type Kind uint8

// Message kinds.
const (
	Insert Kind = 1
	Delete Kind = 2
	Flush  Kind = 3
	Upsert Kind = 4
	// UpsertAllPartitions is an upsert whose delete applies to every partition (see the
	// package comment); its header's partition is where its rows go.
	UpsertAllPartitions Kind = 5
)

func (k Kind) String() string {
	switch k {
	case Insert:
		return "insert"
	case Delete:
		return "delete"
	case Flush:
		return "flush"
	case Upsert:
		return "upsert"
	case UpsertAllPartitions:
		return "upsert_all_partitions"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// AllPartitions is the partition ID of a delete that applies to every partition.
const AllPartitions int64 = -1

// DeleteScope is the partition a delete or upsert message deletes its keys in: AllPartitions for
// UpsertAllPartitions, the header's partition otherwise (which is AllPartitions for a delete of
// every partition).
func (h Header) DeleteScope() int64 {
	if h.Kind == UpsertAllPartitions {
		return AllPartitions
	}
	return h.PartitionID
}

// HeaderSize is the size of the fixed header that starts every message.
const HeaderSize = headerSize

const (
	headerSize = 32
	// version is the format this build writes. Version 2 added upsert messages and stamps a
	// message's header when it is appended, after its rows were encoded: the rows' own
	// timestamp column is not meaningful, and a reader stamps rows from the header. A data node
	// of a version-1 build refuses version-2 messages (its channel stops, loudly, until it is
	// upgraded) instead of storing rows with a wrong timestamp: upgrade data nodes before
	// proxies. Version-1 messages (rows stamped like their header) are read as they are.
	version       = 2
	oldestVersion = 1
)

var (
	ErrCorrupt = errors.New("dml: corrupt message")
)

// Header is the fixed part of every message.
type Header struct {
	Kind         Kind
	CollectionID int64
	PartitionID  int64
	Timestamp    uint64
	Rows         uint32
}

// Message is a header and its body: Arrow IPC rows for an insert or an upsert, encoded primary
// keys for a delete (see EncodePKs), nothing for a flush marker.
type Message struct {
	Header
	Body []byte
}

// Encode returns the wire form of m.
func Encode(m Message) []byte {
	b := make([]byte, headerSize+len(m.Body))
	PutHeader(b, m.Header)
	copy(b[headerSize:], m.Body)
	return b
}

// PutHeader writes h into the first HeaderSize bytes of b. A writer that builds the body
// behind room left for the header makes a message without copying the body.
func PutHeader(b []byte, h Header) {
	_ = b[headerSize-1]
	b[0], b[1], b[2], b[3] = 'W', 'D', version, byte(h.Kind)
	binary.LittleEndian.PutUint64(b[4:], uint64(h.CollectionID))
	binary.LittleEndian.PutUint64(b[12:], uint64(h.PartitionID))
	binary.LittleEndian.PutUint64(b[20:], h.Timestamp)
	binary.LittleEndian.PutUint32(b[28:], h.Rows)
}

// PutTimestamp rewrites the timestamp in the header of encoded message b: a writer that
// stamps a message only when it is about to be appended (in append order) encodes it first.
func PutTimestamp(b []byte, ts uint64) { binary.LittleEndian.PutUint64(b[20:], ts) }

// DecodeHeader reads the header of an encoded message.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrCorrupt, len(b), headerSize)
	}
	if b[0] != 'W' || b[1] != 'D' {
		return Header{}, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:2])
	}
	if b[2] < oldestVersion || b[2] > version {
		return Header{}, fmt.Errorf("%w: version %d, this build reads %d to %d", ErrCorrupt, b[2], oldestVersion, version)
	}
	h := Header{
		Kind:         Kind(b[3]),
		CollectionID: int64(binary.LittleEndian.Uint64(b[4:])),
		PartitionID:  int64(binary.LittleEndian.Uint64(b[12:])),
		Timestamp:    binary.LittleEndian.Uint64(b[20:]),
		Rows:         binary.LittleEndian.Uint32(b[28:]),
	}
	if h.Kind < Insert || h.Kind > UpsertAllPartitions {
		return Header{}, fmt.Errorf("%w: unknown kind %d", ErrCorrupt, b[3])
	}
	return h, nil
}

// Decode splits an encoded message into header and body. The body aliases b.
func Decode(b []byte) (Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return Message{}, err
	}
	return Message{Header: h, Body: b[headerSize:]}, nil
}

// PKs is a list of primary keys: exactly one of Ints and Strs is used.
type PKs struct {
	Ints []int64
	Strs []string
}

// Len is the number of keys.
func (p PKs) Len() int {
	if p.Strs != nil {
		return len(p.Strs)
	}
	return len(p.Ints)
}

const (
	pkInt64   = 1
	pkVarChar = 2
)

// EncodePKs encodes primary keys for a delete body: a type byte, a count, then little-endian
// int64s or length-prefixed strings.
func EncodePKs(p PKs) []byte {
	if p.Strs != nil {
		n := 1 + binary.MaxVarintLen64
		for _, s := range p.Strs {
			n += binary.MaxVarintLen64 + len(s)
		}
		b := make([]byte, 0, n)
		b = append(b, pkVarChar)
		b = binary.AppendUvarint(b, uint64(len(p.Strs)))
		for _, s := range p.Strs {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		return b
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+8*len(p.Ints))
	b = append(b, pkInt64)
	b = binary.AppendUvarint(b, uint64(len(p.Ints)))
	for _, v := range p.Ints {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// DecodePKs decodes a delete body.
func DecodePKs(b []byte) (PKs, error) {
	if len(b) < 1 {
		return PKs{}, fmt.Errorf("%w: empty key list", ErrCorrupt)
	}
	typ := b[0]
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > math.MaxInt32 {
		return PKs{}, fmt.Errorf("%w: bad key count", ErrCorrupt)
	}
	b = b[1+k:]
	switch typ {
	case pkInt64:
		if uint64(len(b)) != 8*n {
			return PKs{}, fmt.Errorf("%w: %d int64 keys need %d bytes, got %d", ErrCorrupt, n, 8*n, len(b))
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return PKs{Ints: out}, nil
	case pkVarChar:
		if n > uint64(len(b)) { // every string needs at least its length byte
			return PKs{}, fmt.Errorf("%w: %d string keys in %d bytes", ErrCorrupt, n, len(b))
		}
		out := make([]string, 0, n)
		for i := uint64(0); i < n; i++ {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return PKs{}, fmt.Errorf("%w: string key %d overruns the body", ErrCorrupt, i)
			}
			out = append(out, string(b[k:k+int(l)]))
			b = b[k+int(l):]
		}
		if len(b) != 0 {
			return PKs{}, fmt.Errorf("%w: %d trailing bytes after the keys", ErrCorrupt, len(b))
		}
		return PKs{Strs: out}, nil
	}
	return PKs{}, fmt.Errorf("%w: unknown key type %d", ErrCorrupt, typ)
}
