package datanode

import (
	"context"
	"time"

	"github.com/weir-db/weir/internal/meta"
)

// truncateTimeout bounds one truncation's metastore and log calls: it runs in the syncer and
// must not hold up the next sync for long.
const truncateTimeout = 5 * time.Second

// cpMark is a committed checkpoint: its position and when the log stored its record.
type cpMark struct {
	pos uint64
	at  int64 // Unix nanoseconds, the log's clock
}

// noteCheckpoint records a committed checkpoint for truncation. Syncer state.
func (p *pipeline) noteCheckpoint(cp meta.Checkpoint) {
	if cp.LogTime != 0 {
		p.marks = append(p.marks, cpMark{pos: cp.Position, at: cp.LogTime})
	}
}

// maybeTruncate truncates the channel's log, at most every TruncateInterval, below the newest
// committed checkpoint whose record is older than the keep time and below every reader's hold.
// What it drops is in committed segment files, and every record a pipeline or a reader resumes
// after (their anchors: the checkpoint, a hold's position) is kept. The keep time protects the
// server's record-ID table: a record the proxy may still retry must stay, or after a server
// restart the retry would be stored a second time. A failure is logged and tried again later:
// a log that is not truncated only grows. Syncer state.
func (p *pipeline) maybeTruncate() {
	cfg := p.n.cfg
	now := p.n.now()
	if now.Sub(p.truncatedAt) < cfg.TruncateInterval {
		return
	}
	p.truncatedAt = now
	ctx, cancel := context.WithTimeout(p.ctx, truncateTimeout)
	defer cancel()
	info, err := p.n.log.Info(ctx, p.ch)
	if err != nil {
		p.logger.Warn("truncate log: channel info", "err", err)
		return
	}
	keep := max(cfg.LogKeep, info.DuplicateWindow+time.Minute)
	cutoff := now.Add(-keep).UnixNano()
	i := -1
	for j, m := range p.marks {
		if m.at <= cutoff {
			i = j
		}
	}
	if i < 0 {
		return // no checkpoint old enough yet
	}
	p.marks = p.marks[i:] // the newest old enough stays: a later round may still need it
	before := p.marks[0].pos
	holds, err := p.n.catalog.Holds(ctx, p.ch, now)
	if err != nil {
		p.logger.Warn("truncate log: holds", "err", err)
		return
	}
	for _, h := range holds {
		before = min(before, h.Position)
	}
	if before <= info.First {
		return // nothing below it is kept any more
	}
	if err := p.n.log.Truncate(ctx, p.ch, before); err != nil {
		p.logger.Warn("truncate log", "before", before, "err", err)
		return
	}
	p.n.m.truncations.Inc()
	p.n.m.logFirst.WithLabelValues(p.ch).Set(float64(before))
	if after, err := p.n.log.Info(ctx, p.ch); err == nil {
		p.n.m.logBytes.WithLabelValues(p.ch).Set(float64(after.Bytes))
	}
	p.logger.Debug("log truncated", "before", before, "holds", len(holds))
}
