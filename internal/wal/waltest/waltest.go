// Package waltest is test support for what a DML channel's server can do to it: lose the tail
// of a channel, as a JetStream server that crashed under its default sync_interval (or whose
// volume was restored from an older backup) does.
package waltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// streamPrefix is the name prefix of a channel's stream (package wal's layout).
const streamPrefix = "WEIR_DML_"

// LoseTail makes the stopped JetStream server whose store directory is storeDir lose every
// record of channel after position keep, as a crash of a server that had not fsynced them
// would: the stream's message blocks are cut after that record and its index, which a clean
// shutdown writes, is removed, so the server rebuilds the stream's state from the blocks when
// it starts again. New records then reuse the lost positions.
func LoseTail(storeDir, channel string, keep uint64) error {
	msgs, err := filepath.Glob(filepath.Join(storeDir, "jetstream", "*", "streams", streamPrefix+channel, "msgs"))
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("waltest: the message folder of channel %s under %s: %d found (%v)", channel, storeDir, len(msgs), err)
	}
	blks, err := filepath.Glob(filepath.Join(msgs[0], "*.blk"))
	if err != nil {
		return err
	}
	slices.Sort(blks)
	for _, blk := range blks {
		if err := cutBlock(blk, keep); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(msgs[0], "index.db")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// The record layout of nats-server's file store (filestore.go): a uint32 length (its high bit
// set when the record has headers) covering the whole record, the uint64 sequence, the int64
// timestamp, then subject, headers, payload and an 8-byte hash.
const (
	headerBit = 1 << 31
	minRecord = 4 + 8 + 8 + 2 + 8
)

// cutBlock truncates one message block before its first record above position keep, or
// removes it when it starts above keep.
func cutBlock(path string, keep uint64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	off := 0
	for off+minRecord <= len(b) {
		rl := int(binary.LittleEndian.Uint32(b[off:]) &^ headerBit)
		seq := binary.LittleEndian.Uint64(b[off+4:]) &^ (1<<63 | 1<<62) // erased/tombstone bits
		if rl < minRecord || off+rl > len(b) {
			return fmt.Errorf("waltest: %s: bad record at offset %d", path, off)
		}
		if seq > keep {
			break
		}
		off += rl
	}
	if off == 0 {
		return os.Remove(path)
	}
	return os.Truncate(path, int64(off))
}
