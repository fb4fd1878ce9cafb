package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/metastore"
)

// Index is the definition of an index on one field of a collection (Milvus allows one index per
// field). Params are the client's, as given and in its order, so that DescribeIndex echoes them
// exactly.
type Index struct {
	CollectionID int64     `json:"collection_id"`
	FieldID      int64     `json:"field_id"`
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Params       []Param   `json:"params"`
	CreatedAt    time.Time `json:"created_at"`
}

// Param is one key-value parameter of an index, as a client gave it.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (k keys) indexes(coll int64) string {
	return k.root + "/meta/indexes/" + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) index(coll, field int64) string { return k.indexes(coll) + strconv.FormatInt(field, 10) }

// indexNames holds one key per index name of a collection, its value the field ID, so that the
// transaction creating an index can require its name to be free as well as its field.
func (k keys) indexNames(coll int64) string {
	return k.root + "/meta/index-names/" + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) indexName(coll int64, name string) string { return k.indexNames(coll) + name }

// CreateIndex stores the definition of an index on a field of a live collection, in a
// transaction that compares the collection record (a collection dropped meanwhile gets none).
// When the field has an index already, or the name is taken by the index of another field,
// nothing is written and that index is returned with exists == true: the caller decides whether
// the request matches it.
func (c *Catalog) CreateIndex(ctx context.Context, idx *Index) (_ *Index, exists bool, err error) {
	// A lost race (the collection changed, or another request indexed the field) is looked at
	// again; the collection record changes only when it is dropped, so this ends.
	for range 3 {
		out, exists, err := c.createIndex(ctx, idx)
		if !errors.Is(err, metastore.ErrPredicateFailed) {
			return out, exists, err
		}
	}
	return nil, false, apierr.New(apierr.Unavailable, "create index %q: the collection keeps changing", idx.Name)
}

func (c *Catalog) createIndex(ctx context.Context, idx *Index) (_ *Index, exists bool, err error) {
	coll, rev, err := c.getCollection(ctx, idx.CollectionID)
	if err != nil {
		return nil, false, err
	}
	if coll.State != Created {
		return nil, false, apierr.Milvus(apierr.NoCollection, coll.DB, coll.Name).With("dropped")
	}
	key, nameKey := c.keys.index(idx.CollectionID, idx.FieldID), c.keys.indexName(idx.CollectionID, idx.Name)
	if existing, err := c.getIndex(ctx, key); existing != nil || err != nil {
		return existing, existing != nil, err
	}
	if kv, err := c.kv.Get(ctx, nameKey); err == nil {
		field, err := strconv.ParseInt(string(kv.Value), 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("meta: decode index name %q: %w", idx.Name, err)
		}
		existing, err := c.getIndex(ctx, c.keys.index(idx.CollectionID, field))
		if existing == nil && err == nil {
			// The name's index was dropped between the two reads: look again.
			return nil, false, metastore.ErrPredicateFailed
		}
		return existing, existing != nil, err
	} else if !errors.Is(err, metastore.ErrNotFound) {
		return nil, false, apierr.Wrap(apierr.Unavailable, err, "read index name %q", idx.Name)
	}
	id, err := c.ids.Alloc(ctx, 1)
	if err != nil {
		return nil, false, apierr.Wrap(apierr.Unavailable, err, "allocate index id")
	}
	out := *idx
	out.ID, out.CreatedAt = id, c.now().UTC()
	rec, err := json.Marshal(&out)
	if err != nil {
		return nil, false, err
	}
	_, err = c.kv.Txn(ctx,
		[]metastore.Cmp{metastore.ModRevisionEquals(c.keys.collection(idx.CollectionID), rev), metastore.KeyAbsent(key), metastore.KeyAbsent(nameKey)},
		[]metastore.Op{metastore.Put(key, rec), metastore.Put(nameKey, []byte(strconv.FormatInt(idx.FieldID, 10)))})
	if errors.Is(err, metastore.ErrPredicateFailed) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, writeErr(err, "create index %q", idx.Name)
	}
	return &out, false, nil
}

// ListIndexes returns the index definitions of a collection, by field ID.
func (c *Catalog) ListIndexes(ctx context.Context, collID int64) ([]*Index, error) {
	kvs, _, err := c.kv.Range(ctx, c.keys.indexes(collID))
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "list indexes")
	}
	out := make([]*Index, 0, len(kvs))
	for _, kv := range kvs {
		idx, err := decodeIndex(kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, idx)
	}
	return out, nil
}

// getIndex reads the definition under key: nil, nil when there is none.
func (c *Catalog) getIndex(ctx context.Context, key string) (*Index, error) {
	kv, err := c.kv.Get(ctx, key)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, apierr.Wrap(apierr.Unavailable, err, "read index %s", key)
	}
	return decodeIndex(kv.Value)
}

// DropIndex deletes the definition of the index on a field and frees its name; dropping one
// that does not exist succeeds, so that a retried request is harmless.
func (c *Catalog) DropIndex(ctx context.Context, collID, fieldID int64) error {
	key := c.keys.index(collID, fieldID)
	for range 3 {
		kv, err := c.kv.Get(ctx, key)
		if errors.Is(err, metastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return apierr.Wrap(apierr.Unavailable, err, "read the index of field %d", fieldID)
		}
		idx, err := decodeIndex(kv.Value)
		if err != nil {
			return err
		}
		// The record and its name go together; a concurrent drop and re-create of the field's
		// index changes the record, and the drop looks again.
		_, err = c.kv.Txn(ctx, []metastore.Cmp{metastore.ModRevisionEquals(key, kv.ModRevision)},
			[]metastore.Op{metastore.Delete(key), metastore.Delete(c.keys.indexName(collID, idx.Name)),
				// Its segments' records go with it; garbage collection removes their files.
				metastore.DeletePrefix(c.keys.segmentIndexesOf(collID, idx.ID)),
				metastore.DeletePrefix(c.keys.corruptIndexes(collID) + strconv.FormatInt(idx.ID, 10) + "/")})
		if errors.Is(err, metastore.ErrPredicateFailed) {
			continue
		}
		if err != nil {
			return writeErr(err, "drop the index of field %d", fieldID)
		}
		return nil
	}
	return apierr.New(apierr.Unavailable, "drop the index of field %d: it keeps changing", fieldID)
}

func decodeIndex(b []byte) (*Index, error) {
	idx := &Index{}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("meta: decode index: %w", err)
	}
	return idx, nil
}
