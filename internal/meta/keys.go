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

func (k keys) channels() string { return k.root + "/meta/channels/" }

// channel is the prefix of every key of one channel.
func (k keys) channel(ch string) string { return k.channels() + ch + "/" }

func (k keys) lease(ch string) string { return k.channel(ch) + "lease" }

func (k keys) checkpoint(ch string) string { return k.channel(ch) + "checkpoint" }

func (k keys) epoch(ch string) string { return k.channel(ch) + "epoch" }

func (k keys) holds(ch string) string { return k.channel(ch) + "holds/" }

func (k keys) hold(ch, reader string) string { return k.holds(ch) + reader }

func (k keys) segments() string { return k.root + "/meta/segments/" }

func (k keys) collectionSegments(coll int64) string {
	return k.segments() + strconv.FormatInt(coll, 10) + "/"
}

func (k keys) segment(coll, seg int64) string {
	return k.collectionSegments(coll) + strconv.FormatInt(seg, 10)
}

func (k keys) files() string { return k.root + "/meta/segment-files/" }

func (k keys) segmentFiles(coll, seg int64) string {
	return fmt.Sprintf("%s%d/%d/", k.files(), coll, seg)
}

func (k keys) file(coll, seg, file int64) string {
	return k.segmentFiles(coll, seg) + strconv.FormatInt(file, 10)
}

func (k keys) flushes(coll int64) string { return fmt.Sprintf("%s/meta/flush/%d/", k.root, coll) }

func (k keys) flush(coll int64, ts uint64) string {
	return k.flushes(coll) + strconv.FormatUint(ts, 10)
}

func (k keys) flushToken(id int64) string {
	return k.root + "/meta/flush-tokens/" + strconv.FormatInt(id, 10)
}

// tsBound is where a proxy keeps the bound of its timestamps (tso.Window).
func (k keys) tsBound(node int64) string {
	return fmt.Sprintf("%s/meta/proxies/%d/ts-bound", k.root, node)
}
