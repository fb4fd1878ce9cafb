package querynode

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	shards       prometheus.Gauge
	memory       prometheus.GaugeFunc
	rows         *prometheus.GaugeVec
	segments     *prometheus.GaugeVec
	consumed     *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
	handoffs     prometheus.Counter
	handoffPause prometheus.Histogram
	latency      *prometheus.HistogramVec
	indexBytes   *prometheus.GaugeVec
	segIndex     *prometheus.GaugeVec
	indexRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, used func() float64) *metrics {
	m := &metrics{
		shards: prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_querynode_shards", Help: "Shards serving."}),
		memory: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weir_querynode_memory_bytes",
			Help: "Memory the shards hold, as counted against --memory-limit."}, used),
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_rows",
			Help: "Rows held (files and channel), per collection."}, []string{"collection"}),
		segments: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_segments",
			Help: "Segments whose committed files are loaded, per collection."}, []string{"collection"}),
		consumed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_consumed_position",
			Help: "Last channel position applied, per channel."}, []string{"channel"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_consume_lag",
			Help: "Positions between the channel's end (as last read) and what the shard applied."}, []string{"channel"}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_querynode_handoffs_total",
			Help: "Handoffs: newly committed files replacing channel rows."}),
		handoffPause: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weir_querynode_handoff_pause_seconds",
			Help: "How long a handoff holds the shard's write lock.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weir_querynode_request_seconds",
			Help: "Search and query latency on this node, per kind.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"kind"}),
		indexBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_index_bytes",
			Help: "Memory of the vector indexes served (beyond the rows they search), per collection."}, []string{"collection"}),
		segIndex: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_querynode_segment_index_bytes",
			Help: "Memory of each segment's vector index served, by collection, segment and field."}, []string{"collection", "segment", "field"}),
		indexRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_querynode_index_files_refused_total",
			Help: "Index files that failed to load (checksum, truncation, rows): reported, searched exactly meanwhile."}),
	}
	if reg != nil {
		reg.MustRegister(m.shards, m.memory, m.rows, m.segments, m.consumed, m.lag, m.handoffs, m.handoffPause, m.latency,
			m.indexBytes, m.segIndex, m.indexRefused)
	}
	return m
}
