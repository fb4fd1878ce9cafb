package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/msgpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/weir-db/weir/internal/apierr"
	"github.com/weir-db/weir/internal/dml"
	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
)

// Flush appends a flush marker to every channel of each collection and records where the
// markers landed. A data node seals every growing segment at a marker and moves the channel
// checkpoint past it only once everything before it is committed, so the flush is complete
// when every channel's checkpoint has reached its marker (GetFlushState). No coordinator is
// involved.
func (s *Server) Flush(ctx context.Context, req *milvuspb.FlushRequest) (*milvuspb.FlushResponse, error) {
	resp, err := s.flush(ctx, req)
	if err != nil {
		return &milvuspb.FlushResponse{Status: apierr.Status(err)}, nil
	}
	return resp, nil
}

func (s *Server) flush(ctx context.Context, req *milvuspb.FlushRequest) (*milvuspb.FlushResponse, error) {
	db, err := database(ctx, req.GetDbName())
	if err != nil {
		return nil, err
	}
	// Resolve every name first, so an unknown one fails the call before any marker is written.
	var colls []*meta.Collection
	seen := map[string]bool{}
	for _, name := range req.GetCollectionNames() {
		if seen[name] {
			continue
		}
		seen[name] = true
		// Milvus checks no name rules here: a name no collection can have is not found.
		coll, err := s.catalog.GetCollectionByName(ctx, db, name)
		if err != nil {
			return nil, err
		}
		if err := checkChannels(coll); err != nil {
			return nil, err
		}
		colls = append(colls, coll)
	}
	resp := &milvuspb.FlushResponse{
		Status: apierr.OK(), DbName: db,
		CollSegIDs: map[string]*schemapb.LongArray{}, FlushCollSegIDs: map[string]*schemapb.LongArray{},
		CollSealTimes: map[string]int64{}, CollFlushTs: map[string]uint64{},
		ChannelCps: map[string]*msgpb.MsgPosition{},
	}
	for _, coll := range colls {
		if err := s.flushCollection(ctx, coll, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (s *Server) flushCollection(ctx context.Context, coll *meta.Collection, resp *milvuspb.FlushResponse) error {
	msgs := make([][][]byte, len(coll.VChannels))
	for i := range msgs {
		// One copy per channel: each is stamped as its channel publishes it.
		msgs[i] = [][]byte{dml.Encode(dml.Message{Header: dml.Header{Kind: dml.Flush, CollectionID: coll.ID, PartitionID: dml.AllPartitions}})}
	}
	pos, ts, err := s.appendAll(ctx, coll, msgs)
	if err != nil {
		return err
	}
	token, err := s.ids.Alloc(ctx, 1)
	if err != nil {
		return metaErr(err, "allocate a flush token for collection %q", coll.Name)
	}
	fm := meta.FlushMarkers{Timestamp: ts, Token: token, Positions: make(map[string]uint64, len(coll.VChannels))}
	for i, ch := range coll.VChannels {
		fm.Positions[ch] = pos[i][0]
	}
	// A crash before this write leaves markers nobody waits for: harmless, the data node
	// seals at them all the same, and the client's retry writes new ones. The record is
	// found by the flush timestamp the client gets back; another proxy may have flushed the
	// same collection in the same millisecond, so on a clash the record (not the markers,
	// which are found by position) takes a new timestamp.
	for {
		err := s.catalog.SaveFlush(ctx, coll.ID, fm)
		if errors.Is(err, meta.ErrFlushExists) {
			fm.Timestamp = s.clock.Next()
			continue
		}
		if err != nil {
			return metaErr(err, "save flush markers of collection %q", coll.Name)
		}
		break
	}
	ts = fm.Timestamp
	segs, err := s.catalog.ListSegments(ctx, coll.ID)
	if err != nil {
		return metaErr(err, "list segments of collection %q", coll.Name)
	}
	sealing, flushed := []int64{}, []int64{}
	for _, seg := range segs {
		if seg.Level != meta.L1 {
			continue
		}
		switch seg.State {
		case meta.Growing, meta.Sealed:
			sealing = append(sealing, seg.ID)
		case meta.Flushed:
			flushed = append(flushed, seg.ID)
		}
	}
	// The token rides among the segment IDs: a client that asks GetFlushState by segment IDs
	// alone (the Node SDK) is then answered by the markers too, not just by segments already
	// in meta — rows still buffered in a data node have no segment record yet.
	resp.CollSegIDs[coll.Name] = &schemapb.LongArray{Data: append(sealing, token)}
	resp.FlushCollSegIDs[coll.Name] = &schemapb.LongArray{Data: flushed}
	resp.CollSealTimes[coll.Name] = time.Now().Unix()
	resp.CollFlushTs[coll.Name] = ts
	for _, ch := range coll.VChannels {
		cp, err := s.catalog.ReadCheckpoint(ctx, ch)
		if err != nil {
			return metaErr(err, "read checkpoint of channel %s", ch)
		}
		resp.ChannelCps[ch] = msgPosition(ch, cp)
	}
	s.logger.Debug("flush markers appended", "collection", coll.Name, "ts", ts, "positions", fm.Positions)
	return nil
}

// msgPosition is a checkpoint as Milvus reports one: the message ID is the position, 8 bytes
// little-endian.
func msgPosition(ch string, cp meta.Checkpoint) *msgpb.MsgPosition {
	return &msgpb.MsgPosition{ChannelName: ch, MsgID: binary.LittleEndian.AppendUint64(nil, cp.Position), Timestamp: cp.Timestamp}
}

// GetFlushState reports whether a flush is complete. With a flush timestamp and a collection
// (what the SDKs send after Flush) it compares each channel's checkpoint with the position of
// that flush's marker. Otherwise, or when no flush has that timestamp, it reports whether
// every listed segment is flushed (or gone, compacted away).
func (s *Server) GetFlushState(ctx context.Context, req *milvuspb.GetFlushStateRequest) (*milvuspb.GetFlushStateResponse, error) {
	flushed, err := s.flushState(ctx, req)
	if err != nil {
		return &milvuspb.GetFlushStateResponse{Status: apierr.Status(err)}, nil
	}
	return &milvuspb.GetFlushStateResponse{Status: apierr.OK(), Flushed: flushed}, nil
}

func (s *Server) flushState(ctx context.Context, req *milvuspb.GetFlushStateRequest) (bool, error) {
	db, err := database(ctx, req.GetDbName())
	if err != nil {
		return false, err
	}
	var colls []*meta.Collection
	if req.GetCollectionName() != "" {
		coll, err := s.lookup(ctx, db, req.GetCollectionName(), 0)
		if err != nil {
			return false, err
		}
		colls = []*meta.Collection{coll}
		if req.GetFlushTs() != 0 {
			fm, err := s.catalog.ReadFlush(ctx, coll.ID, req.GetFlushTs())
			switch {
			case err == nil:
				return s.markersReached(ctx, fm)
			case !errors.Is(err, metastore.ErrNotFound):
				return false, metaErr(err, "read flush %d of collection %q", req.GetFlushTs(), coll.Name)
			}
		}
	} else if len(req.GetSegmentIDs()) > 0 {
		// The segment-only form of the call names no collection: look in all of them.
		if colls, err = s.catalog.ListCollections(ctx, db); err != nil {
			return false, metaErr(err, "list collections")
		}
	}
	return s.segmentsFlushed(ctx, colls, req.GetSegmentIDs())
}

// markersReached reports whether every channel's checkpoint is at or past its marker.
func (s *Server) markersReached(ctx context.Context, fm meta.FlushMarkers) (bool, error) {
	for ch, pos := range fm.Positions {
		cp, err := s.catalog.ReadCheckpoint(ctx, ch)
		if err != nil {
			return false, metaErr(err, "read checkpoint of channel %s", ch)
		}
		if cp.Position < pos {
			return false, nil
		}
	}
	return true, nil
}

// segmentsFlushed reports whether none of ids is a growing or sealed segment of colls, and
// every flush token among them has its markers reached.
func (s *Server) segmentsFlushed(ctx context.Context, colls []*meta.Collection, ids []int64) (bool, error) {
	if len(ids) == 0 {
		return true, nil
	}
	want := make(map[int64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
		_, fm, err := s.catalog.ReadFlushToken(ctx, id)
		switch {
		case errors.Is(err, metastore.ErrNotFound):
			continue // a segment ID
		case err != nil:
			return false, metaErr(err, "read flush token %d", id)
		}
		if ok, err := s.markersReached(ctx, fm); err != nil || !ok {
			return false, err
		}
	}
	for _, coll := range colls {
		segs, err := s.catalog.ListSegments(ctx, coll.ID)
		if err != nil {
			return false, metaErr(err, "list segments of collection %q", coll.Name)
		}
		for _, seg := range segs {
			if want[seg.ID] && (seg.State == meta.Growing || seg.State == meta.Sealed) {
				return false, nil
			}
		}
	}
	return true, nil
}

// GetPersistentSegmentInfo lists the collection's insert (L1) segments that are not dropped,
// as recorded by the data nodes.
func (s *Server) GetPersistentSegmentInfo(ctx context.Context, req *milvuspb.GetPersistentSegmentInfoRequest) (*milvuspb.GetPersistentSegmentInfoResponse, error) {
	coll, err := s.lookup(ctx, req.GetDbName(), req.GetCollectionName(), 0)
	if err != nil {
		return &milvuspb.GetPersistentSegmentInfoResponse{Status: apierr.Status(err)}, nil
	}
	segs, err := s.liveSegments(ctx, coll)
	if err != nil {
		return &milvuspb.GetPersistentSegmentInfoResponse{Status: apierr.Status(err)}, nil
	}
	resp := &milvuspb.GetPersistentSegmentInfoResponse{Status: apierr.OK(), Infos: []*milvuspb.PersistentSegmentInfo{}}
	for _, seg := range segs {
		resp.Infos = append(resp.Infos, &milvuspb.PersistentSegmentInfo{
			SegmentID: seg.ID, CollectionID: seg.CollectionID, PartitionID: seg.PartitionID,
			NumRows: seg.Rows, State: segmentState(seg.State), Level: commonpb.SegmentLevel_L1,
		})
	}
	return resp, nil
}

// liveSegments returns the collection's L1 segments that are not dropped.
func (s *Server) liveSegments(ctx context.Context, coll *meta.Collection) ([]*meta.Segment, error) {
	segs, err := s.catalog.ListSegments(ctx, coll.ID)
	if err != nil {
		return nil, metaErr(err, "list segments of collection %q", coll.Name)
	}
	return meta.LiveInsertSegments(segs), nil
}

func segmentState(st meta.SegmentState) commonpb.SegmentState {
	switch st {
	case meta.Growing:
		return commonpb.SegmentState_Growing
	case meta.Sealed:
		return commonpb.SegmentState_Sealed
	case meta.Flushed:
		return commonpb.SegmentState_Flushed
	case meta.SegmentDropped:
		return commonpb.SegmentState_Dropped
	}
	return commonpb.SegmentState_SegmentStateNone
}

// rowCount counts the rows the collection's live L1 segments hold, of one partition when
// partID is not dml.AllPartitions. As in Milvus, deletes are not subtracted until compaction
// rewrites the segments.
func (s *Server) rowCount(ctx context.Context, coll *meta.Collection, partID int64) (int64, error) {
	segs, err := s.liveSegments(ctx, coll)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, seg := range segs {
		if partID == dml.AllPartitions || seg.PartitionID == partID {
			n += seg.Rows
		}
	}
	return n, nil
}
