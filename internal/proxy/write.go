package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/batch"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/schema"
	"github.com/weir-db/weir/internal/tso"
	"github.com/weir-db/weir/internal/wal"
)

// appendBackoff is the wait before the second attempt of an append; it doubles per attempt.
const appendBackoff = 100 * time.Millisecond

// errNoIDAllocator means the proxy was built without Deps.IDs and a collection needs keys.
var errNoIDAllocator = errors.New("proxy: no ID allocator")

// Insert validates the rows, routes each row to the channel its primary key hashes to (and, in a
// collection with a partition key, to the partition its key value hashes to) and appends them,
// each message stamped as it is appended. It answers once every channel acknowledged (durably,
// per the WAL's sync setting); a rejected request appends nothing.
func (s *Server) Insert(ctx context.Context, req *milvuspb.InsertRequest) (*milvuspb.MutationResult, error) {
	res, err := s.insert(ctx, req)
	if err != nil {
		s.logger.Debug("insert rejected", "collection", req.GetCollectionName(), "err", err)
		return &milvuspb.MutationResult{Status: apierr.Status(err)}, nil
	}
	return res, nil
}

func (s *Server) insert(ctx context.Context, req *milvuspb.InsertRequest) (*milvuspb.MutationResult, error) {
	coll, rt, rtErr, err := s.writeTarget(ctx, req.GetDbName(), req.GetCollectionName(), req.GetPartitionName(), req.GetSchemaTimestamp(), req.GetNamespace())
	if err != nil {
		return nil, err
	}
	rows, err := s.insertRows(ctx, coll, req.GetFieldsData(), req.GetNumRows(), rtErr)
	if err != nil {
		return nil, err
	}
	defer rows.Release()
	perChannel, err := s.channelRecords(coll, dml.Insert, rt, rows)
	if err != nil {
		return nil, err
	}
	_, ts, err := s.appendAll(ctx, coll, perChannel)
	if err != nil {
		return nil, err
	}
	n := rows.Len()
	return &milvuspb.MutationResult{
		Status: apierr.OK(), IDs: batch.IDs(rows.PrimaryKeys()), SuccIndex: succIndex(n),
		InsertCnt: int64(n), Timestamp: ts,
	}, nil
}

// Upsert replaces rows by primary key: each channel's rows go out as upsert messages, each of
// which deletes its own rows' keys in the target partition and inserts the rows, both at one
// timestamp (see package dml). One message per part of the batch, not a delete message and an
// insert message: those could be reordered by a retry, and the delete would then remove the
// rows the client was told are upserted. Collections with generated keys are upserted as Milvus
// does, under new keys (see upsertGenerated). In a collection with a partition key the messages delete the keys in
// every partition (dml.UpsertAllPartitions), as Milvus does there: the row an upsert replaces
// may sit in another partition than the new one, when its key value changed.
func (s *Server) Upsert(ctx context.Context, req *milvuspb.UpsertRequest) (*milvuspb.MutationResult, error) {
	res, err := s.upsert(ctx, req)
	if err != nil {
		s.logger.Debug("upsert rejected", "collection", req.GetCollectionName(), "err", err)
		return &milvuspb.MutationResult{Status: apierr.Status(err)}, nil
	}
	return res, nil
}

func (s *Server) upsert(ctx context.Context, req *milvuspb.UpsertRequest) (*milvuspb.MutationResult, error) {
	if req.GetPartialUpdate() || len(req.GetFieldOps()) > 0 {
		return nil, apierr.New(apierr.ParameterInvalid, "partial update is not supported by Weir: an upsert must carry every field of the rows it replaces")
	}
	coll, rt, rtErr, err := s.writeTarget(ctx, req.GetDbName(), req.GetCollectionName(), req.GetPartitionName(), req.GetSchemaTimestamp(), req.GetNamespace())
	if err != nil {
		return nil, err
	}
	if coll.KeyPartitions > 0 && req.GetPartitionName() != "" {
		return nil, rtErr // Milvus's upsert refuses a named partition before it reads the rows
	}
	if schema.PrimaryKey(coll.Schema).GetAutoID() {
		return s.upsertGenerated(ctx, coll, rt, rtErr, req)
	}
	rows, err := batch.FromFieldData(coll.Schema, req.GetFieldsData(), req.GetNumRows(), batch.FromOptions{Upsert: true, BeforeValues: nameFault(rtErr)})
	if err != nil {
		return nil, rowsErr(err, coll.Name)
	}
	defer rows.Release()
	if rtErr != nil {
		return nil, rtErr
	}
	kind := dml.Upsert
	if rt.keyed != nil {
		kind = dml.UpsertAllPartitions
	}
	perChannel, err := s.channelRecords(coll, kind, rt, rows)
	if err != nil {
		return nil, err
	}
	_, ts, err := s.appendAll(ctx, coll, perChannel)
	if err != nil {
		return nil, err
	}
	n := rows.Len()
	return &milvuspb.MutationResult{
		Status: apierr.OK(), IDs: batch.IDs(rows.PrimaryKeys()), SuccIndex: succIndex(n),
		UpsertCnt: int64(n), Timestamp: ts,
	}, nil
}

// insertRows validates and converts the columns of an insert, allocating the keys of a
// collection that generates them; rtErr, a fault of the request's partition, is reported after
// the columns' faults, as Milvus reports it. batch calls AutoIDs only after the request passed
// validation: a rejected request allocates nothing.
func (s *Server) insertRows(ctx context.Context, coll *meta.Collection, cols []*schemapb.FieldData, numRows uint32, rtErr error) (*batch.Rows, error) {
	var allocErr error
	rows, err := batch.FromFieldData(coll.Schema, cols, numRows, batch.FromOptions{
		BeforeValues: nameFault(rtErr),
		AutoIDs: func(n int) (int64, error) {
			if rtErr != nil {
				return 0, rtErr
			}
			if s.ids == nil {
				allocErr = errNoIDAllocator
				return 0, allocErr
			}
			first, err := s.ids.Alloc(ctx, int64(n))
			allocErr = err
			return first, err
		},
	})
	if allocErr != nil {
		return nil, apierr.Wrap(apierr.Unavailable, allocErr, "allocate primary keys for collection %q", coll.Name)
	}
	if rtErr != nil && (err == nil || errors.Is(err, rtErr)) {
		if rows != nil {
			rows.Release()
		}
		return nil, rtErr
	}
	if err != nil {
		return nil, rowsErr(err, coll.Name)
	}
	return rows, nil
}

// upsertGenerated upserts into a collection whose keys are generated, as Milvus 2.6 does: it
// deletes the keys the client sends and inserts the rows under new keys, which it returns. Per
// channel the old keys' delete messages and the new rows' insert messages go out in one append.
// The two halves touch different keys (generated keys are never reused), so no order between
// them, across channels or within one, can make a delete remove an upserted row. A failure part
// way leaves some keys deleted and some rows inserted, as a failed Milvus upsert does; the
// client's retry deletes the same keys again and inserts the rows under newer keys.
func (s *Server) upsertGenerated(ctx context.Context, coll *meta.Collection, rt route, rtErr error, req *milvuspb.UpsertRequest) (*milvuspb.MutationResult, error) {
	pk := schema.PrimaryKey(coll.Schema)
	// The whole request is checked as an upsert first (the keys are required and may not
	// repeat), then the rows without their keys become an insert's.
	old, err := batch.FromFieldData(coll.Schema, req.GetFieldsData(), req.GetNumRows(), batch.FromOptions{Upsert: true, BeforeValues: nameFault(rtErr)})
	if err != nil {
		return nil, rowsErr(err, coll.Name)
	}
	oldKeys := old.PrimaryKeys()
	old.Release()
	cols := slices.DeleteFunc(slices.Clone(req.GetFieldsData()), func(fd *schemapb.FieldData) bool {
		return fd.GetFieldName() == pk.GetName() || fd.GetFieldName() == "" && fd.GetFieldId() == pk.GetFieldID()
	})
	rows, err := s.insertRows(ctx, coll, cols, req.GetNumRows(), rtErr)
	if err != nil {
		return nil, err
	}
	defer rows.Release()
	perChannel, err := s.channelRecords(coll, dml.Insert, rt, rows)
	if err != nil {
		return nil, err
	}
	delPart := dml.AllPartitions // a keyed row may sit in any partition
	if rt.keyed == nil {
		delPart = rt.part.ID
	}
	for c, keys := range keysByChannel(coll, dml.PKs{Ints: oldKeys.Int64, Strs: oldKeys.Strings}) {
		if keys.Len() > 0 {
			dels, err := s.deleteMessages(coll.ID, delPart, keys)
			if err != nil {
				return nil, err
			}
			perChannel[c] = append(dels, perChannel[c]...)
		}
	}
	_, ts, err := s.appendAll(ctx, coll, perChannel)
	if err != nil {
		return nil, err
	}
	n := rows.Len()
	return &milvuspb.MutationResult{
		Status: apierr.OK(), IDs: batch.IDs(rows.PrimaryKeys()), SuccIndex: succIndex(n),
		UpsertCnt: int64(n), DeleteCnt: int64(n), Timestamp: ts,
	}, nil
}

// nameFault returns, for batch's BeforeValues, a fault of a write's partition name (Milvus's
// rules, or a name in a collection with a partition key): Milvus reports those after the columns
// were matched to the schema and before their data is checked. A partition that does not exist
// it reports last, after the data.
func nameFault(rtErr error) func() error {
	return func() error {
		if rtErr != nil && apierr.KindOf(rtErr) != apierr.PartitionNotFound {
			return rtErr
		}
		return nil
	}
}

// keysByChannel splits primary keys by the channel each hashes to.
func keysByChannel(coll *meta.Collection, keys dml.PKs) []dml.PKs {
	perChan := make([]dml.PKs, coll.Shards)
	channelOf := batch.ChannelOf(coll.Shards)
	for _, k := range keys.Strs {
		c := channelOf(batch.HashString(k))
		perChan[c].Strs = append(perChan[c].Strs, k)
	}
	for _, k := range keys.Ints {
		c := channelOf(batch.HashInt64(k))
		perChan[c].Ints = append(perChan[c].Ints, k)
	}
	return perChan
}

// rowsErr passes batch's rejections of the request through; anything else means a stored
// schema batch cannot use, which is Weir's fault, not the client's.
func rowsErr(err error, coll string) error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	return apierr.Wrap(apierr.Internal, err, "prepare rows of collection %q", coll)
}

// writeTarget resolves the collection of a mutation and where its rows go (routeOf), and checks
// the schema timestamp the client described the collection at. It answers from the target cache
// when it can and re-reads the metastore before rejecting anything the cache does not know.
//
// A fault of the partition name (one Milvus's rules refuse, one that does not exist, one named
// in a collection with a partition key) comes back as rtErr, for the caller to report after it
// checked the rows: Milvus resolves the partition last.
func (s *Server) writeTarget(ctx context.Context, reqDB, collName, partName string, schemaTS uint64, namespace string) (coll *meta.Collection, rt route, rtErr, err error) {
	if namespace != "" {
		return nil, route{}, nil, apierr.New(apierr.ParameterInvalid, "namespaces are not supported by Weir (got namespace %q)", namespace)
	}
	db, err := database(ctx, reqDB)
	if err != nil {
		return nil, route{}, nil, err
	}
	if e, ok := s.cache.get(db, collName); ok && checkSchemaTS(e.coll, schemaTS) == nil {
		if rt, err := routeOf(e.coll, e.parts, partName); err == nil {
			return e.coll, rt, nil, nil
		}
	}
	entry := s.cache.start()
	coll, err = s.lookup(ctx, db, collName, 0)
	if err != nil {
		return nil, route{}, nil, err
	}
	if err := checkChannels(coll); err != nil {
		return nil, route{}, nil, err
	}
	if err := checkSchemaTS(coll, schemaTS); err != nil {
		return nil, route{}, nil, err
	}
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return nil, route{}, nil, metaErr(err, "list partitions of collection %q", coll.Name)
	}
	entry.coll, entry.parts = coll, parts
	s.cache.put(db, collName, entry)
	if partName != "" && coll.KeyPartitions == 0 {
		if err := schema.ValidatePartitionName(partName); err != nil {
			return coll, route{}, err, nil
		}
	}
	rt, rtErr = routeOf(coll, parts, partName)
	return coll, rt, rtErr, nil
}

// checkSchemaTS compares the schema timestamp a client sends with the collection's. The Go
// SDK sends the UpdateTimestamp it described the collection at; on a mismatch (the collection
// was dropped and created again) it describes again and retries. Weir has no schema changes,
// so the timestamp is the creation time.
func checkSchemaTS(coll *meta.Collection, schemaTS uint64) error {
	if cur := tso.Compose(coll.CreatedAt, 0); schemaTS != 0 && schemaTS != cur {
		return apierr.Milvus(apierr.SchemaChanged, coll.Name).With("the client described it at schema timestamp %d, it is %d now", schemaTS, cur)
	}
	return nil
}

func partNameOrDefault(name string) string {
	if name == "" {
		return meta.DefaultPartition
	}
	return name
}

// findPartition returns the partition called name ("" is the default one), or nil.
func findPartition(parts []*meta.Partition, name string) *meta.Partition {
	name = partNameOrDefault(name)
	for _, p := range parts {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// checkChannels guards the routing against a collection record whose channel list does not
// match its shard count (routing would index past it).
func checkChannels(coll *meta.Collection) error {
	if coll.Shards <= 0 || len(coll.VChannels) != coll.Shards {
		return apierr.New(apierr.Internal, "collection %q has %d shards and %d channels", coll.Name, coll.Shards, len(coll.VChannels))
	}
	return nil
}

// partition resolves a partition name; "" is the default partition.
func (s *Server) partition(ctx context.Context, coll *meta.Collection, name string) (*meta.Partition, error) {
	parts, err := s.catalog.ListPartitions(ctx, coll.ID)
	if err != nil {
		return nil, metaErr(err, "list partitions of collection %q", coll.Name)
	}
	if p := findPartition(parts, name); p != nil {
		return p, nil
	}
	return nil, apierr.Milvus(apierr.NoPartition, partNameOrDefault(name))
}

func metaErr(err error, format string, args ...any) error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	return apierr.Wrap(apierr.Unavailable, err, format, args...)
}

func succIndex(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}

// channelRecords splits rows by channel (their primary key) and partition (rt) and encodes the
// rows of each (channel, partition) as messages of kind (dml.Insert, dml.Upsert or
// dml.UpsertAllPartitions), to be stamped when appended (appendAll). Element i belongs to
// coll.VChannels[i] and holds its partitions' messages in partition order; nil means nothing for
// that channel. Everything is encoded before anything is appended, so a row too large for a
// message rejects the request with nothing written.
func (s *Server) channelRecords(coll *meta.Collection, kind dml.Kind, rt route, rows *batch.Rows) ([][][]byte, error) {
	groups, err := rt.groups(coll, rows)
	if err != nil {
		return nil, err
	}
	nparts := rt.partitions()
	subs := rows.Group(groups, coll.Shards*nparts)
	defer func() {
		for _, sub := range subs {
			if sub != nil {
				sub.Release()
			}
		}
	}()
	out := make([][][]byte, coll.Shards)
	for g, sub := range subs {
		if sub == nil {
			continue
		}
		c, p := g/nparts, g%nparts
		hdr := dml.Header{Kind: kind, CollectionID: coll.ID, PartitionID: rt.partitionID(p)}
		msgs, err := s.insertMessages(hdr, sub, coll.Name)
		if err != nil {
			return nil, err
		}
		out[c] = append(out[c], msgs...)
	}
	return out, nil
}

// insertMessages encodes a channel's rows as insert (or upsert) messages of at most
// MaxMessageBytes each. A message is the unit the data node's replay filter keeps or drops,
// and nothing ties the rows of one request together (an upsert message deletes only its own
// rows' keys), so splitting by rows is safe.
func (s *Server) insertMessages(hdr dml.Header, rows *batch.Rows, collName string) ([][]byte, error) {
	rec := rows.Record(hdr.Timestamp)
	defer rec.Release()
	limit := s.messageLimit()
	n := int(rec.NumRows())
	// Guess the number of messages from the record's size and cut it into equal row ranges;
	// a range that still encodes too large (rows of uneven size) is halved.
	parts := max(1, (batch.RecordBytes(rec)+limit-1)/(limit-limit/8))
	parts = min(parts, n)
	var out [][]byte
	for i := range parts {
		lo, hi := n*i/parts, n*(i+1)/parts
		msgs, err := encodeInsert(hdr, rec, lo, hi, limit, rows.PrimaryKeys(), collName)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

func encodeInsert(hdr dml.Header, rec arrow.RecordBatch, lo, hi, limit int, pks batch.PKs, collName string) ([][]byte, error) {
	sl := rec.NewSlice(int64(lo), int64(hi))
	// The rows are encoded behind room for the header: the message is built without another
	// copy of its body.
	msg, err := batch.AppendIPC(make([]byte, dml.HeaderSize), sl)
	sl.Release()
	if err != nil {
		return nil, apierr.Wrap(apierr.Internal, err, "encode rows of collection %q", collName)
	}
	if len(msg) <= limit {
		hdr.Rows = uint32(hi - lo)
		dml.PutHeader(msg, hdr)
		return [][]byte{msg}, nil
	}
	if hi-lo == 1 {
		var key any
		if pks.Strings != nil {
			key = pks.Strings[lo]
		} else {
			key = pks.Int64[lo]
		}
		return nil, apierr.New(apierr.ParameterTooLarge, "the row with primary key %v encodes to %d bytes, more than the %d bytes a DML message of Weir holds", key, len(msg)-dml.HeaderSize, limit-dml.HeaderSize)
	}
	mid := lo + (hi-lo)/2
	left, err := encodeInsert(hdr, rec, lo, mid, limit, pks, collName)
	if err != nil {
		return nil, err
	}
	right, err := encodeInsert(hdr, rec, mid, hi, limit, pks, collName)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// messageLimit is the most bytes one DML message may have: Config.MaxMessageBytes, or less when
// the WAL server allows less (a stock nats-server's max_payload is 1 MB), so that an insert of
// any size is split into messages the server takes instead of failing as too large.
func (s *Server) messageLimit() int {
	return min(s.cfg.MaxMessageBytes, s.channels.MaxRecordBytes(maxRecordIDBytes))
}

// deleteMessages encodes keys as delete messages of at most MaxMessageBytes each, to be
// stamped when appended.
func (s *Server) deleteMessages(collID, partID int64, keys dml.PKs) ([][]byte, error) {
	budget := s.messageLimit() - dml.HeaderSize - 16 // type byte and key count
	hdr := dml.Header{Kind: dml.Delete, CollectionID: collID, PartitionID: partID}
	var out [][]byte
	emit := func(p dml.PKs) {
		hdr.Rows = uint32(p.Len())
		out = append(out, dml.Encode(dml.Message{Header: hdr, Body: dml.EncodePKs(p)}))
	}
	if keys.Strs != nil {
		start, size := 0, 0
		for i, k := range keys.Strs {
			ks := len(k) + 10 // the length prefix
			if ks > budget {
				// Refused before anything is appended: a message is the largest record the
				// log takes, and one that fails would leave the other channels written.
				return nil, apierr.New(apierr.ParameterTooLarge, "primary key %d of the delete has %d bytes, more than a message of %d bytes holds", i, len(k), budget)
			}
			if i > start && size+ks > budget {
				emit(dml.PKs{Strs: keys.Strs[start:i]})
				start, size = i, 0
			}
			size += ks
		}
		emit(dml.PKs{Strs: keys.Strs[start:]})
		return out, nil
	}
	per := max(1, budget/8)
	for lo := 0; lo < len(keys.Ints); lo += per {
		emit(dml.PKs{Ints: keys.Ints[lo:min(lo+per, len(keys.Ints))]})
	}
	return out, nil
}

// appendAll appends each channel's messages (perChannel[i] to coll.VChannels[i]) in one
// Append per channel, the channels in parallel, and returns each channel's positions and the
// timestamp the client is given: the highest stamped on any of the messages. It returns once
// every channel's Append returned: a success is then acknowledged on every channel. Record IDs
// are unique to this request and message, so the retries of an append whose outcome is unknown
// store each record once.
//
// Messages are stamped when they are published, not when the request arrives: each message
// takes a fresh timestamp while the WAL holds its channel's publishing order
// (wal.BeforePublish), so a proxy's timestamps grow with the positions it gets. The data node
// stores a message at max(its timestamp, the previous message's + 1); stamped this way, a
// proxy's messages are never moved past the timestamp it returned to its client by its own
// earlier messages, and the client can read its writes back by that timestamp (a Session
// guarantee). A retry stamps again, later; a record the first attempt stored keeps its older
// stamp, which the returned timestamp still covers.
func (s *Server) appendAll(ctx context.Context, coll *meta.Collection, perChannel [][][]byte) ([][]wal.Position, uint64, error) {
	seq := s.requests.Add(1)
	pos := make([][]wal.Position, len(perChannel))
	stamped := make([]uint64, len(perChannel))
	// One goroutine per channel: at most 16 (schema.Shards' limit).
	var g errgroup.Group
	for c, msgs := range perChannel {
		if len(msgs) == 0 {
			continue
		}
		recs := make([]wal.Record, len(msgs))
		for i, m := range msgs {
			recs[i] = wal.Record{ID: fmt.Sprintf("%s-%d-%d-%d", s.recordPrefix, seq, c, i), Data: m}
		}
		ch := coll.VChannels[c]
		stamp := func() error {
			// A stamp per message: the data node stores each at least one above the message
			// before it, so messages sharing a stamp would be moved above it.
			for _, r := range recs {
				ts, err := s.clock.NextCtx(ctx)
				if err != nil {
					return apierr.Wrap(apierr.Unavailable, err, "timestamp for channel %s", ch)
				}
				dml.PutTimestamp(r.Data, ts)
				stamped[c] = ts
			}
			return nil
		}
		g.Go(func() error {
			p, err := s.appendChannel(ctx, coll, ch, recs, stamp)
			pos[c] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return pos, slices.Max(stamped), nil
}

// appendChannel appends recs to one channel of coll, stamping them as each attempt publishes
// them, and retrying an unknown outcome with the same records. A channel that does not exist
// (its collection's create crashed before creating it) is created — CreateChannel is
// idempotent — unless the collection was dropped meanwhile: garbage collection deletes a
// dropped collection's channels, and a proxy still holding it in its cache must not bring one
// back for good.
func (s *Server) appendChannel(ctx context.Context, coll *meta.Collection, ch string, recs []wal.Record, stamp func() error) ([]wal.Position, error) {
	var err error
	created := false
	for attempt := 0; attempt < s.cfg.AppendAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(appendBackoff << (attempt - 1))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, apierr.Wrap(apierr.Unavailable, errors.Join(err, ctx.Err()), "append to channel %s: outcome unknown; the request may have been partly applied", ch)
			}
		}
		var pos []wal.Position
		pos, err = s.channels.Append(ctx, ch, recs, wal.BeforePublish(stamp))
		var ae *apierr.Error
		switch {
		case err == nil:
			return pos, nil
		case errors.As(err, &ae) && attempt == 0:
			return nil, err // the stamp failed: nothing was published
		case errors.As(err, &ae):
			// Nothing of this attempt was published, but an earlier one may have been stored.
			return nil, apierr.Wrap(apierr.Unavailable, err, "append to channel %s: outcome unknown; the request may have been partly applied", ch)
		case errors.Is(err, wal.ErrChannelNotFound) && !created:
			if lerr := s.stillLive(ctx, coll); lerr != nil {
				return nil, lerr
			}
			if cerr := s.channels.CreateChannel(ctx, ch); cerr != nil {
				return nil, apierr.Wrap(apierr.Unavailable, cerr, "create missing channel %s", ch)
			}
			// Dropped between the check and the create: garbage collection may have found no
			// channel to delete and be done with the collection, so take it back.
			if lerr := s.stillLive(ctx, coll); apierr.KindOf(lerr) == apierr.CollectionNotFound {
				if derr := s.channels.DeleteChannel(ctx, ch); derr != nil {
					s.logger.Warn("delete channel of a dropped collection", "channel", ch, "err", derr)
				}
				return nil, lerr
			}
			s.logger.Warn("created missing channel", "channel", ch)
			created = true
			attempt-- // creating the channel is not a failed attempt
		case errors.Is(err, wal.ErrChannelNotFound), errors.Is(err, wal.ErrRecordTooLarge),
			errors.Is(err, wal.ErrInvalidRecordID), errors.Is(err, wal.ErrInvalidChannel):
			// Definite: nothing of recs was stored on this channel. A record too large means
			// the WAL's limit is below MaxMessageBytes, a configuration error.
			return nil, apierr.Wrap(apierr.Internal, err, "append to channel %s", ch)
		default:
			s.logger.Warn("append outcome unknown, retrying with the same record ids", "channel", ch, "attempt", attempt+1, "err", err)
		}
	}
	return nil, apierr.Wrap(apierr.Unavailable, err, "append to channel %s: outcome unknown after %d attempts; the request may have been partly applied", ch, s.cfg.AppendAttempts)
}

// stillLive re-reads coll's record past the cache: a CollectionNotFound error (and the cache
// entry dropped) when it was dropped since the cache read it.
func (s *Server) stillLive(ctx context.Context, coll *meta.Collection) error {
	live, err := s.catalog.GetCollection(ctx, coll.ID)
	if err != nil {
		return metaErr(err, "read collection %q", coll.Name)
	}
	if live.State != meta.Created {
		s.cache.invalidate(coll.DB, coll.Name)
		return apierr.Milvus(apierr.NoCollection, coll.DB, coll.Name).With("dropped")
	}
	return nil
}

// pkOf returns the primary key field of a collection.
func pkOf(coll *meta.Collection) *schemapb.FieldSchema { return schema.PrimaryKey(coll.Schema) }
