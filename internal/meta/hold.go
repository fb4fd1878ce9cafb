package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/weir-db/weir/internal/metastore"
)

// Hold is a reader's claim on a channel's log: the records from Position on must stay, because
// the reader will read them (a query node tailing the channel from the checkpoint of the
// target it loaded). The channel's owner truncates the log below its own checkpoint and below
// every hold that has not expired. A reader renews its hold well before ExpiresAt; a hold left
// by a reader that died expires and stops holding the log.
//
// How a reader takes a hold: it reads its target (the checkpoint it will resume after), puts
// its hold at that checkpoint's position, and follows the log from there. The owner truncates
// only below its own checkpoint, never below the checkpoint the reader read at that moment, but
// it may have truncated further between the read and the hold: the reader's Follow then fails
// with wal.ErrTruncated, and the reader reads the target again (its files now cover what was
// truncated) and moves its hold.
type Hold struct {
	Reader string `json:"-"`
	// Position is the record the reader resumes after — its anchor, the checkpoint it read,
	// which its Follow checks — and is kept with everything after it.
	Position  uint64    `json:"position"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PutHold records (or renews) reader's hold on channel ch. Reader names are unique per reader
// ("querynode-3", say) and free of '/'.
func (c *Catalog) PutHold(ctx context.Context, ch string, h Hold) error {
	if h.Reader == "" || strings.Contains(h.Reader, "/") {
		return fmt.Errorf("meta: hold reader %q: must be non-empty and free of '/'", h.Reader)
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if _, err := c.kv.Txn(ctx, nil, []metastore.Op{metastore.Put(c.keys.hold(ch, h.Reader), b)}); err != nil {
		return fmt.Errorf("put hold of %s on %s: %w", h.Reader, ch, err)
	}
	return nil
}

// DeleteHold removes reader's hold on channel ch.
func (c *Catalog) DeleteHold(ctx context.Context, ch, reader string) error {
	if _, err := c.kv.Txn(ctx, nil, []metastore.Op{metastore.Delete(c.keys.hold(ch, reader))}); err != nil {
		return fmt.Errorf("delete hold of %s on %s: %w", reader, ch, err)
	}
	return nil
}

// Holds returns the holds on channel ch that have not expired at now.
func (c *Catalog) Holds(ctx context.Context, ch string, now time.Time) ([]Hold, error) {
	prefix := c.keys.holds(ch)
	kvs, _, err := c.kv.Range(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list holds on %s: %w", ch, err)
	}
	var out []Hold
	for _, kv := range kvs {
		var h Hold
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			return nil, fmt.Errorf("meta: decode hold %s: %w", kv.Key, err)
		}
		if h.ExpiresAt.After(now) {
			h.Reader = strings.TrimPrefix(kv.Key, prefix)
			out = append(out, h)
		}
	}
	return out, nil
}
