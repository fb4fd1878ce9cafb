package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/weir-db/weir/internal/meta"
)

// Settings of the recovery benchmark.
const (
	recoveryDim     = 128
	recoveryBatch   = 1000 // rows per insert request
	recoveryClients = 8
	// recoveryTTL and recoveryInterval make detection fast (the docs' fault figures use the
	// same): a dead node's session expires after the TTL, and the coordinator notices at its
	// next assignment round.
	recoveryTTL      = 2 * time.Second
	recoveryInterval = 200 * time.Millisecond
	// recoveryBuffer is each data node's memory limit, sync buffer and seal size: far above
	// the largest unflushed log, so that no node syncs before the kill and the new owner
	// replays the channel from its start.
	recoveryBuffer = 4 << 30
	// recoveryPoll is the pause between scrapes while the new owner takes the channel over:
	// the resolution of the figures.
	recoveryPoll = 5 * time.Millisecond
	// takeoverTimeout bounds the time from the kill to the channel being consumed again;
	// catchUpTimeout bounds a wait for a node to consume to the channel's end.
	takeoverTimeout = time.Minute
	catchUpTimeout  = 15 * time.Minute
)

var errRecovery = errors.New("bench: recovery")

// recoveryResult is one kill and takeover.
type recoveryResult struct {
	bytes      int64 // vector data inserted
	rows       int64
	ingest     time.Duration // the insert, all acknowledged
	leaseMoved time.Duration // from the kill until the new lease was seen
	detected   time.Duration // from the kill until the last poll before the new owner consumed
	caughtUp   time.Duration // from the kill until the new owner consumed the channel's end
	replayRows int64         // rows the new owner buffered
	replayCPU  time.Duration // the new owner's CPU time while it replayed
}

func (r recoveryResult) replay() time.Duration { return r.caughtUp - r.detected }
func (r recoveryResult) ingestRate() float64   { return float64(r.rows) / r.ingest.Seconds() }
func (r recoveryResult) replayRate() float64 {
	return float64(r.replayRows) / r.replay().Seconds()
}

// Recovery is `weir bench recovery`: kill -9 of the data node that owns a channel holding 64 MB
// and 1 GB of unflushed log, the time until another node consumes the channel again (detection)
// and until it has caught up with the channel's end (replay), and the replay rate beside the
// rate the same rows were ingested at. Each size runs on a fresh cluster of separate processes.
func Recovery(ctx context.Context, o Options) (*Report, error) {
	r := newReport("recovery", "kill -9 of the data node owning a channel: time until it is consumed again and caught up", o)
	start := time.Now()
	sizes := []int64{64e6, 1e9}
	if o.Quick {
		sizes = []int64{8e6}
	}
	t := Table{Title: "kill -9 of the owning data node; the other one takes the channel over and replays it",
		Columns: []string{"unflushed", "rows", "ingest rows/s", "lease moved", "detection", "replay", "total",
			"replay rows/s", "replay MB/s", "replay/ingest", "replay CPU"}}
	var last recoveryResult
	for _, size := range sizes {
		res, err := recoverOnce(ctx, o, size)
		if err != nil {
			return nil, fmt.Errorf("recovery with %s unflushed: %w", sizeLabel(size), err)
		}
		t.Add(sizeLabel(size), strconv.FormatInt(res.rows, 10), f0(res.ingestRate()), ms(res.leaseMoved), ms(res.detected),
			ms(res.replay()), ms(res.caughtUp), f0(res.replayRate()), f1(mbps(res.replayRows*recoveryDim*4, res.replay())),
			ratio(res.replayRate(), res.ingestRate()), f2(res.replayCPU.Seconds()/res.replay().Seconds())+" cores")
		key := "recovery." + sizeKey(size) + "."
		r.Figures[key+"rows"] = float64(res.rows)
		r.Figures[key+"replay_rows"] = float64(res.replayRows)
		r.Figures[key+"ingest_rows_per_s"] = res.ingestRate()
		r.Figures[key+"lease_moved_s"] = res.leaseMoved.Seconds()
		r.Figures[key+"detection_s"] = res.detected.Seconds()
		r.Figures[key+"replay_s"] = res.replay().Seconds()
		r.Figures[key+"total_s"] = res.caughtUp.Seconds()
		r.Figures[key+"replay_rows_per_s"] = res.replayRate()
		r.Figures[key+"replay_ingest_ratio"] = res.replayRate() / res.ingestRate()
		last = res
	}
	r.Tables = append(r.Tables, t)
	r.atLeast(fmt.Sprintf("replay rate / ingest rate (%s)", sizeLabel(last.bytes)), last.replayRate()/last.ingestRate(), 1, "")
	r.Notes = append(r.Notes,
		fmt.Sprintf("cluster: coordinator, 2 data nodes and a proxy as separate processes; session TTL %s, assign and reload interval %s; etcd and NATS (fsync per append) in the bench process",
			recoveryTTL, recoveryInterval),
		fmt.Sprintf("ingest: %d clients inserting %d-row requests of %d-dim float vectors into a 1-shard collection; MB are 10^6 bytes of vector data", recoveryClients, recoveryBatch, recoveryDim),
		"lease moved and detection are from the kill until the new lease was seen and until the new owner started consuming; replay is from then until it consumed the channel's end; total is both. Each is within one poll (5 ms and a scrape) of the event, the replay if anything longer",
		"no data node synced before the kill (checkpoint at 0), so the new owner replays every row; afterwards a flush stored exactly the rows inserted",
		"replay CPU: the new owner's CPU time over the replay time")
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// recoverOnce starts a fresh cluster with a 1-shard collection, finds the data node owning its
// channel and measures a kill of it with size bytes of vectors unflushed.
func recoverOnce(ctx context.Context, o Options, size int64) (res recoveryResult, err error) {
	buf := strconv.Itoa(recoveryBuffer)
	o.step("starting a cluster: coordinator, 2 data nodes, proxy")
	c, err := startCluster(ctx, o, clusterConfig{
		Name: "recovery", DataNodes: 2, SessionTTL: recoveryTTL,
		CoordArgs: []string{"--assign-interval", recoveryInterval.String(), "--reload-interval", recoveryInterval.String()},
		DataNodeArgs: []string{"--memory-limit", buf, "--sync-buffer-bytes", buf, "--seal-bytes", buf, "--seal-rows", "1000000000",
			"--sync-stale-age", "24h", "--seal-age", "24h", "--seal-idle", "24h"},
	})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	cl, err := dial(c.ProxyAddr())
	if err != nil {
		return res, err
	}
	defer cl.Close()

	const name = "recovery"
	if err := cl.createCollection(ctx, name, recoveryDim, 1); err != nil {
		return res, err
	}
	coll, err := c.catalog.GetCollectionByName(ctx, meta.DefaultDatabase, name)
	if err != nil {
		return res, err
	}
	ch := coll.VChannels[0]
	owner, err := c.owner(ctx, ch, takeoverTimeout)
	if err != nil {
		return res, err
	}
	// The coordinator gives a channel to the least loaded live node with the lowest ID.
	if owner != c.DataNode(0) {
		return res, fmt.Errorf("%w: %s owns %s, expected %s (the node killed must be the one with the short session TTL)", errRecovery, owner.name, ch, c.DataNode(0).name)
	}
	next := c.DataNode(1)
	// From here on a role that exits (other than the one killed) ends the run at once.
	wctx, stop := watch(ctx, c.coord, c.proxy, next)
	res, err = measureRecovery(wctx, o, c, cl, name, size, ch, owner, next)
	if err != nil && context.Cause(wctx) != nil {
		err = context.Cause(wctx)
	}
	stop()
	return res, err
}

// measureRecovery inserts, waits until owner has consumed everything, kills it, times next's
// takeover, and checks the rows.
func measureRecovery(ctx context.Context, o Options, c *cluster, cl *client, name string, size int64, ch string, owner, next *proc) (recoveryResult, error) {
	res, err := insertRecovery(ctx, o, cl, name, size)
	if err != nil {
		return res, err
	}
	o.step("waiting for %s to consume %s to its end", owner.name, ch)
	if err := waitDrained(ctx, c.log, owner.HTTPAddr(), ch); err != nil {
		return res, err
	}
	end, err := c.log.LastPosition(ctx, ch)
	if err != nil {
		return res, err
	}
	cp, err := c.catalog.ReadCheckpoint(ctx, ch)
	if err != nil {
		return res, err
	}
	if cp.Position != 0 {
		return res, fmt.Errorf("%w: %s synced up to position %d before the kill: the benchmark needs the whole log unflushed", errRecovery, owner.name, cp.Position)
	}
	o.step("kill -9 %s; waiting for %s to take %s over", owner.name, next.name, ch)
	if err := takeover(ctx, c, owner, next, ch, end, &res); err != nil {
		return res, err
	}
	o.step("flushing and counting rows")
	return res, checkRowCount(ctx, cl, name, res.rows)
}

// insertRecovery inserts size bytes of vectors (whole requests) and returns the rows and time taken.
func insertRecovery(ctx context.Context, o Options, cl *client, name string, size int64) (recoveryResult, error) {
	w := newWorkload(name, recoveryDim, recoveryBatch)
	n := int((size + w.vectorBytes() - 1) / w.vectorBytes())
	bar := o.bar(int64(n), "insert "+sizeLabel(size), " req")
	ins, err := cl.insert(ctx, w, 0, n, recoveryClients, func() { _ = bar.Add(1) })
	_ = bar.Finish()
	if err != nil {
		return recoveryResult{}, err
	}
	return recoveryResult{bytes: size, rows: int64(n) * recoveryBatch, ingest: ins.Elapsed}, nil
}

// takeover kills owner and polls the lease and next's metrics until next has consumed ch up to
// end. It records when the lease moved, when next started consuming and when it caught up,
// each within a poll (recoveryPoll and a scrape) of the event. Consuming counts from the last
// poll that saw nothing consumed yet, so the replay time is if anything overstated and the
// replay rate understated.
func takeover(ctx context.Context, c *cluster, owner, next *proc, ch string, end uint64, res *recoveryResult) error {
	t0 := time.Now()
	owner.Kill()
	var unseen, cpu0 time.Duration // the last poll that saw ch unconsumed, and next's CPU time then
	deadline := t0.Add(takeoverTimeout)
	for {
		if res.leaseMoved == 0 {
			if leases, err := c.catalog.ListLeases(ctx); err == nil && leases[ch].NodeID == next.node {
				res.leaseMoved = time.Since(t0)
			}
		}
		cpu := next.CPUTime()
		got, err := scrape(ctx, next.HTTPAddr(), "weir_datanode_consumed_position", "channel")
		v, ok := got[ch]
		now := time.Since(t0)
		switch {
		case err != nil:
		case !ok:
			unseen, cpu0 = now, cpu
		case res.detected == 0:
			res.detected = unseen
			res.leaseMoved = min(res.leaseMoved, unseen)
			if res.leaseMoved == 0 {
				res.leaseMoved = unseen // the lease moved since the last poll
			}
			deadline = time.Now().Add(catchUpTimeout)
		}
		if ok && uint64(v) >= end {
			res.caughtUp = now
			res.replayCPU = next.CPUTime() - cpu0
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s did not take %s over and catch up with position %d (at %.0f, last error: %v)", errRecovery, next.name, ch, end, v, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(recoveryPoll):
		}
	}
	rows, err := scrape(ctx, next.HTTPAddr(), "weir_datanode_rows_total", "")
	if err != nil {
		return err
	}
	res.replayRows = int64(rows[""])
	if res.replayRows != res.rows {
		return fmt.Errorf("%w: %s replayed %d rows, %d were inserted", errRecovery, next.name, res.replayRows, res.rows)
	}
	return nil
}

// checkRowCount flushes the collection and checks its row count: a benchmark that loses or
// doubles rows must not print a figure.
func checkRowCount(ctx context.Context, cl *client, name string, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if _, err := cl.flushAndWait(ctx, name); err != nil {
		return err
	}
	st, err := cl.GetCollectionStatistics(ctx, &milvuspb.GetCollectionStatisticsRequest{CollectionName: name})
	if err := check(st.GetStatus(), err, "get collection statistics"); err != nil {
		return err
	}
	for _, kv := range st.GetStats() {
		if kv.GetKey() == "row_count" {
			if kv.GetValue() != strconv.FormatInt(want, 10) {
				return fmt.Errorf("%w: row_count %s after the flush, %d rows were inserted", errRecovery, kv.GetValue(), want)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: no row_count in the collection statistics", errRecovery)
}

// sizeLabel and sizeKey name a size in decimal units: "64 MB" and "64mb".
func sizeLabel(b int64) string {
	if b >= 1e9 && b%1e9 == 0 {
		return fmt.Sprintf("%d GB", b/1e9)
	}
	return fmt.Sprintf("%d MB", b/1e6)
}

func sizeKey(b int64) string { return strings.ToLower(strings.ReplaceAll(sizeLabel(b), " ", "")) }
