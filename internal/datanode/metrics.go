package datanode

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	messages      *prometheus.CounterVec // by kind
	replayDropped *prometheus.CounterVec // by kind
	rows          prometheus.Counter
	syncs         prometheus.Counter
	syncSeconds   prometheus.Histogram
	syncBytes     prometheus.Counter
	buffered      prometheus.Gauge
	leaseLost     prometheus.Counter
	unknown       prometheus.Counter
	retries       *prometheus.CounterVec // by step
	pipelines     prometheus.Gauge
	checkpoint    *prometheus.GaugeVec   // by channel
	consumed      *prometheus.GaugeVec   // by channel
	logRewound    *prometheus.CounterVec // by channel
	logFirst      *prometheus.GaugeVec   // by channel
	logBytes      *prometheus.GaugeVec   // by channel
	truncations   prometheus.Counter
	restamped     prometheus.Counter
	restampedBy   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		messages: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_datanode_messages_total",
			Help: "DML messages consumed, by kind."}, []string{"kind"}),
		replayDropped: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_datanode_replay_dropped_messages_total",
			Help: "Messages dropped on replay because committed segment meta already holds them."}, []string{"kind"}),
		rows: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_rows_total",
			Help: "Rows buffered (inserts and deletes)."}),
		syncs: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_syncs_total",
			Help: "Syncs committed."}),
		syncSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "weir_datanode_sync_duration_seconds",
			Help: "Time from cutting a sync to committing its checkpoint.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		syncBytes: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_sync_bytes_total",
			Help: "Bytes of files written to object storage."}),
		buffered: f.NewGauge(prometheus.GaugeOpts{Name: "weir_datanode_buffered_bytes",
			Help: "Bytes of rows buffered across all channels, waiting for a sync to commit."}),
		leaseLost: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_lease_lost_total",
			Help: "Channel pipelines stopped because their lease compare failed."}),
		unknown: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_commit_outcome_unknown_total",
			Help: "Metastore commits whose outcome was unknown and had to be re-read."}),
		retries: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_datanode_retries_total",
			Help: "Retries after a failed step, by step."}, []string{"step"}),
		pipelines: f.NewGauge(prometheus.GaugeOpts{Name: "weir_datanode_pipelines",
			Help: "Channel pipelines running."}),
		checkpoint: f.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_datanode_checkpoint_position",
			Help: "Last committed checkpoint position, by channel."}, []string{"channel"}),
		consumed: f.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_datanode_consumed_position",
			Help: "Position of the last DML message consumed (buffered or dropped on replay), by channel: compare with the channel's end to see how far behind the node is."}, []string{"channel"}),
		logRewound: f.NewCounterVec(prometheus.CounterOpts{Name: "weir_datanode_log_rewound_total",
			Help: "Times a channel's pipeline stopped because the channel moved backward under it (its server lost acknowledged records and reuses their positions), by channel. The channel stays stopped: see docs/operations.md."}, []string{"channel"}),
		logFirst: f.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_datanode_log_first_position",
			Help: "First position a channel's log keeps after the node's last truncation, by channel."}, []string{"channel"}),
		logBytes: f.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_datanode_log_bytes",
			Help: "Bytes a channel's log holds after the node's last truncation, by channel."}, []string{"channel"}),
		truncations: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_log_truncations_total",
			Help: "Truncations of channel logs below their checkpoint and readers' holds."}),
		restamped: f.NewCounter(prometheus.CounterOpts{Name: "weir_datanode_restamped_messages_total",
			Help: "Messages stored with a later timestamp than their proxy gave them, to keep timestamps growing with positions: another proxy's clock ran ahead."}),
		restampedBy: f.NewHistogram(prometheus.HistogramOpts{Name: "weir_datanode_restamped_seconds",
			Help: "How far restamped messages were moved: about how far one proxy's clock ran ahead of another's.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
}
