package meta

import (
	"fmt"
	"strconv"
)

// keys builds the catalog's metastore keys under one root.
type keys struct{ root string }

func (k keys) id() string { return k.root + "/meta/id" }

func (k keys) collections() string { return k.root + "/meta/collections/" }

func (k keys) collection(id int64) string { return k.collections() + strconv.FormatInt(id, 10) }

func (k keys) collectionNames(db string) string {
	return fmt.Sprintf("%s/meta/collection-names/%s/", k.root, db)
}

func (k keys) collectionName(db, name string) string { return k.collectionNames(db) + name }

func (k keys) partitions(coll int64) string {
	return fmt.Sprintf("%s/meta/partitions/%d/", k.root, coll)
}

func (k keys) partition(coll, part int64) string {
	return k.partitions(coll) + strconv.FormatInt(part, 10)
}

func (k keys) partitionNames(coll int64) string {
	return fmt.Sprintf("%s/meta/partition-names/%d/", k.root, coll)
}

func (k keys) partitionName(coll int64, name string) string { return k.partitionNames(coll) + name }
