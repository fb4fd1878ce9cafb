package bench

import (
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-db/weir/internal/distance"
	"github.com/weir-db/weir/internal/mnist"
	"github.com/weir-db/weir/internal/vecdata"
	"github.com/weir-db/weir/internal/vindex"
	"github.com/weir-db/weir/internal/vsearch"
)

//go:embed ann_baselines.py
var annBaselines string

// python is Debian's interpreter: its python3-hnswlib and python3-faiss import only under it
// (another python3 may come first on PATH).
const python = "/usr/bin/python3"

const annInstall = "apt-get install python3-hnswlib python3-faiss python3-numpy"

// annSet is a data set of the ANN section: rows, queries and their exact top-k.
type annSet struct {
	name       string
	dim        int
	base, qs   []float32
	nlist      int
	truth      [][]int
	baseF, qsF string // the rows and queries as files, for the baselines
}

func (s *annSet) rows() int    { return len(s.base) / s.dim }
func (s *annSet) queries() int { return len(s.qs) / s.dim }
func (s *annSet) query(i int) []float32 {
	return s.qs[i*s.dim : (i+1)*s.dim]
}

const annK = 10

// The sweeps: HNSW's ef and IVF's nprobe.
var (
	efSweep     = []int{10, 16, 24, 32, 48, 64, 96, 128, 256}
	nprobeSweep = []int{1, 2, 4, 8, 16, 32, 64, 128}
	recallBars  = []float64{0.90, 0.95, 0.99}
)

// ANN measures Weir's vector indexes beside hnswlib and faiss on the same vectors, one thread
// each, in the same run: on MNIST and on clustered vectors.
func ANN(ctx context.Context, o Options) (*Report, error) {
	return sectionReport(ctx, o, "ann", "vector indexes beside hnswlib and faiss, one thread each, same data, same run", annSection)
}

// sectionReport runs one section of a benchmark as a report of its own, timed.
func sectionReport(ctx context.Context, o Options, name, title string, section func(context.Context, Options, *Report) error) (*Report, error) {
	r := newReport(name, title, o)
	t0 := time.Now()
	if err := section(ctx, o, r); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(t0).Seconds()
	return r, nil
}

func annSection(ctx context.Context, o Options, r *Report) error {
	dir, cleanup, err := o.scratch("ann")
	if err != nil {
		return err
	}
	defer cleanup()
	baselines := pythonModules(ctx)
	if baselines != "" {
		r.Notes = append(r.Notes, "hnswlib and faiss not measured: "+baselines+"; install them with `"+annInstall+"`")
		fmt.Fprintf(os.Stderr, "weir bench: hnswlib and faiss baselines not measured (%s): %s\n", baselines, annInstall)
	}
	train, test, err := mnist.Load()
	if err != nil {
		return err
	}
	mn, mq, big, bq := 60000, 1000, 1_000_000, 1000
	if o.Quick {
		mn, mq, big, bq = 5000, 100, 20000, 100
	}
	sets := []*annSet{
		{name: "MNIST", dim: mnist.Dim, base: train.Head(mn).Vectors, qs: test.Head(mq).Vectors, nlist: 128},
		clusteredSet(big, bq, 128),
	}
	for _, s := range sets {
		o.step("ann: %s, %d × %d: exact top %d of %d queries", s.name, s.rows(), s.dim, annK, s.queries())
		s.truth = vecdata.Truth(vsearch.L2, s.base, s.dim, s.qs, annK)
		s.baseF, s.qsF = filepath.Join(dir, s.name+".base.f32"), filepath.Join(dir, s.name+".queries.f32")
		if err := writeF32(s.baseF, s.base); err != nil {
			return err
		}
		if err := writeF32(s.qsF, s.qs); err != nil {
			return err
		}
		if err := annSetReport(ctx, o, r, s, baselines == ""); err != nil {
			return err
		}
	}
	if err := ingestBesideBuilds(ctx, o, r); err != nil {
		return err
	}
	r.Notes = append(r.Notes,
		"every figure is one thread: Weir's searches one query at a time in this process; hnswlib and faiss (Debian's python3-hnswlib 0.6 and python3-faiss) in a child process on the same vectors, written to a file, their recall computed here against the same exact top 10",
		"Debian's faiss is built without AVX2 (its kernels are SSE), so hnswlib is the bar that matters; faiss is shown for its IVF and flat figures",
		"QPS at a recall is the best of a sweep (ef for HNSW, nprobe for IVF) among the settings reaching it; — when none does",
		"memory: Weir's is the index's own bytes plus the rows it searches (a query node holds them for the segment anyway); hnswlib's and faiss's the growth of the child's resident memory while building, vectors included",
		"IVF_SQ8 ranks by 8-bit codes (a quarter of the rows' bytes) and scores the best max(4·k, 32) again on the rows: results carry exact scores")
	return nil
}

// pythonModules reports what is missing for the baselines ("" when nothing is).
func pythonModules(ctx context.Context) string {
	if _, err := os.Stat(python); err != nil {
		return python + " not found"
	}
	out, err := exec.CommandContext(ctx, python, "-c", "import numpy, hnswlib, faiss").CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[len(lines)-1]
	}
	return ""
}

// clusteredSet returns n rows and nq queries of dim values around √n centres (queries drawn
// like rows, never rows).
func clusteredSet(n, nq, dim int) *annSet {
	centres := max(1, int(math.Sqrt(float64(n))))
	return &annSet{name: fmt.Sprintf("clustered %dk", n/1000), dim: dim, nlist: centres,
		base: vecdata.Clustered(42, 1, n, dim, centres, 3), qs: vecdata.Clustered(42, 2, nq, dim, centres, 3)}
}

func writeF32(path string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return os.WriteFile(path, b, 0o644)
}

// point is one setting of a sweep: recall@k and queries per second.
type point struct {
	param  int
	recall float64
	qps    float64
}

// annResult is one implementation on one data set.
type annResult struct {
	name   string
	build  time.Duration
	mem    int64
	sweep  []point
	absent string // why it was not measured
}

// bestAt is the highest QPS among the points reaching recall at least bar (0 when none does).
func (a annResult) bestAt(bar float64) float64 {
	best := 0.0
	for _, p := range a.sweep {
		if p.recall >= bar {
			best = max(best, p.qps)
		}
	}
	return best
}

// weirIndex builds spec over the set and sweeps its search parameter.
func weirIndex(o Options, s *annSet, name string, spec vindex.Spec, sweep []int, sp func(int) vindex.SearchParams) (annResult, error) {
	o.step("ann: %s: Weir %s build", s.name, name)
	t := time.Now()
	ix, err := vindex.Build(spec, s.base, s.dim, 1)
	if err != nil {
		return annResult{}, err
	}
	res := annResult{name: "Weir " + name, build: time.Since(t), mem: ix.Bytes() + int64(4*len(s.base))}
	for _, p := range sweep {
		var got float64
		t := time.Now()
		for q := range s.queries() {
			hits, err := ix.Search(s.query(q), annK, sp(p), nil, -1)
			if err != nil {
				return annResult{}, err
			}
			got += vecdata.Recall(vecdata.Rows(hits), s.truth[q])
		}
		el := time.Since(t)
		res.sweep = append(res.sweep, point{param: p, recall: got / float64(s.queries()), qps: float64(s.queries()) / el.Seconds()})
	}
	return res, nil
}

// baseline runs one of ann_baselines.py's libraries on the set.
func baseline(ctx context.Context, o Options, s *annSet, name string, args map[string]any) annResult {
	o.step("ann: %s: %s", s.name, name)
	args["base"], args["queries"], args["dim"], args["k"] = s.baseF, s.qsF, s.dim, annK
	a, _ := json.Marshal(args)
	cmd := exec.CommandContext(ctx, python, "-c", annBaselines, string(a))
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return annResult{name: name, absent: msg}
	}
	var rep struct {
		Build float64 `json:"build_s"`
		Mem   int64   `json:"mem_bytes"`
		Sweep []struct {
			Param   int     `json:"param"`
			Seconds float64 `json:"seconds"`
			IDs     string  `json:"ids"`
		} `json:"sweep"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return annResult{name: name, absent: err.Error()}
	}
	res := annResult{name: name, build: time.Duration(rep.Build * float64(time.Second)), mem: rep.Mem}
	nq := s.queries()
	if n, ok := args["nq"].(int); ok {
		nq = min(n, nq)
	}
	for _, p := range rep.Sweep {
		b, err := os.ReadFile(p.IDs)
		if err != nil || len(b) != 8*annK*nq {
			return annResult{name: name, absent: fmt.Sprintf("ids of %d: %v (%d bytes)", p.Param, err, len(b))}
		}
		var got float64
		for q := range nq {
			ids := make([]int, annK)
			for i := range ids {
				ids[i] = int(int64(binary.LittleEndian.Uint64(b[8*(q*annK+i):])))
			}
			got += vecdata.Recall(ids, s.truth[q])
		}
		res.sweep = append(res.sweep, point{param: p.Param, recall: got / float64(nq), qps: float64(nq) / p.Seconds})
	}
	return res
}

// annSetReport measures every implementation on s and adds its tables and targets to r.
func annSetReport(ctx context.Context, o Options, r *Report, s *annSet, withBaselines bool) error {
	var results []annResult
	add := func(res annResult, err error) error {
		if err != nil {
			return err
		}
		results = append(results, res)
		return nil
	}
	efParams := func(p int) vindex.SearchParams { return vindex.SearchParams{Ef: p} }
	probeParams := func(p int) vindex.SearchParams { return vindex.SearchParams{Nprobe: p} }
	nprobes := nprobeSweep[:0:0]
	for _, p := range nprobeSweep {
		if p <= s.nlist {
			nprobes = append(nprobes, p)
		}
	}
	if err := add(weirIndex(o, s, "HNSW", vindex.Spec{Type: vindex.HNSW, Metric: vsearch.L2, M: 16, EfConstruction: 200}, efSweep, efParams)); err != nil {
		return err
	}
	if withBaselines {
		results = append(results, baseline(ctx, o, s, "hnswlib HNSW", map[string]any{"lib": "hnswlib", "M": 16, "efc": 200, "sweep": efSweep}))
		results = append(results, baseline(ctx, o, s, "faiss IndexHNSWFlat", map[string]any{"lib": "faiss", "kind": "hnsw", "M": 16, "efc": 200, "sweep": efSweep}))
	}
	if err := add(weirIndex(o, s, "IVF_FLAT", vindex.Spec{Type: vindex.IVFFlat, Metric: vsearch.L2, Nlist: s.nlist}, nprobes, probeParams)); err != nil {
		return err
	}
	if err := add(weirIndex(o, s, "IVF_SQ8", vindex.Spec{Type: vindex.IVFSQ8, Metric: vsearch.L2, Nlist: s.nlist}, nprobes, probeParams)); err != nil {
		return err
	}
	if withBaselines {
		results = append(results, baseline(ctx, o, s, "faiss IndexIVFFlat", map[string]any{"lib": "faiss", "kind": "ivf", "nlist": s.nlist, "sweep": nprobes}))
	}

	t := Table{Title: fmt.Sprintf("%s, %d × %d, %d queries, top %d, L2, one thread", s.name, s.rows(), s.dim, s.queries(), annK),
		Columns: []string{"", "build", "memory", "QPS @ recall 0.90", "@ 0.95", "@ 0.99"}}
	sw := Table{Title: fmt.Sprintf("%s: the sweeps (ef for HNSW, nprobe for IVF): recall@10 / QPS", s.name), Columns: []string{"", "setting: recall / QPS"}}
	for _, res := range results {
		if res.absent != "" {
			t.Add(res.name, "not measured: "+firstLine(res.absent), "", "", "", "")
			continue
		}
		row := []string{res.name, fmt.Sprintf("%.1f s", res.build.Seconds()), fmt.Sprintf("%.0f MB", float64(res.mem)/1e6)}
		for _, bar := range recallBars {
			if q := res.bestAt(bar); q > 0 {
				row = append(row, f0(q))
			} else {
				row = append(row, "—")
			}
		}
		t.Add(row...)
		var cells []string
		for _, p := range res.sweep {
			cells = append(cells, fmt.Sprintf("%d: %.3f / %.0f", p.param, p.recall, p.qps))
		}
		sw.Add(res.name, strings.Join(cells, ", "))
		key := "ann." + slug(s.name) + "." + slug(res.name)
		r.Figures[key+".build_s"] = res.build.Seconds()
		for _, bar := range recallBars {
			r.Figures[fmt.Sprintf("%s.qps_at_%.2f", key, bar)] = res.bestAt(bar)
		}
	}
	r.Tables = append(r.Tables, t, sw)

	if err := exactBesideScan(ctx, o, r, s, withBaselines); err != nil {
		return err
	}

	var weir, lib annResult
	for _, res := range results {
		switch res.name {
		case "Weir HNSW":
			weir = res
		case "hnswlib HNSW":
			lib = res
		}
	}
	if lib.absent == "" && lib.name != "" {
		for _, bar := range recallBars {
			if w, l := weir.bestAt(bar), lib.bestAt(bar); l > 0 {
				r.atLeast(fmt.Sprintf("%s: HNSW QPS / hnswlib at recall %.2f", s.name, bar), w/l, 1.0, "")
			}
		}
		r.atMost(s.name+": HNSW build time / hnswlib", weir.build.Seconds()/lib.build.Seconds(), 1.2, "")
	}
	return nil
}

// rawSIMDScanGBs is the floor of an exact search: one pass over v with the SIMD inner product
// against a block of ones held in cache, in GB/s (the best of passes).
func rawSIMDScanGBs(v []float32, passes int) float64 {
	const block = 4096
	ones := make([]float32, block)
	for i := range ones {
		ones[i] = 1
	}
	best := 0.0
	for range passes {
		t := time.Now()
		var s float32
		for i := 0; i < len(v); i += block {
			end := min(i+block, len(v))
			s += distance.Dot(v[i:end], ones)
		}
		d := time.Since(t)
		if s == -1 { // keeps the sum alive
			fmt.Print("")
		}
		best = max(best, float64(4*len(v))/1e9/d.Seconds())
	}
	return best
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, s)
}

func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// exactBesideScan measures exact search over the set's rows beside a raw scan of them (and
// faiss's IndexFlatL2 when the baselines are measured).
func exactBesideScan(ctx context.Context, o Options, r *Report, s *annSet, withBaselines bool) error {
	// Exact search beside a raw scan of the same rows with the same SIMD kernel: three rounds,
	// each of nq searches then one scan pass, the best round of each. Interleaved, because this
	// VM's memory bandwidth moves by a fifth from one minute to the next, and best against best,
	// because that is what the scan's figure is.
	o.step("ann: %s: exact search beside a raw scan", s.name)
	nq := min(s.queries(), 50)
	var exact, scan float64
	for range 3 {
		start := time.Now()
		for q := range nq {
			if _, err := vsearch.Search(vsearch.L2, s.base, s.dim, s.query(q), annK, nil); err != nil {
				return err
			}
		}
		exact = max(exact, float64(nq)/time.Since(start).Seconds())
		scan = max(scan, rawSIMDScanGBs(s.base, 1))
	}
	limit := scan * 1e9 / float64(4*len(s.base))
	et := Table{Title: fmt.Sprintf("%s: exact search (FLAT), nq 1, top %d, one thread", s.name, annK), Columns: []string{"", "searches/s", "GB/s of vectors"}}
	et.Add("Weir exact search ("+distance.Kernel+" kernels)", f1(exact), f2(exact*float64(4*len(s.base))/1e9))
	et.Add("raw scan: one SIMD pass summing every float", f1(limit), f2(scan))
	if withBaselines {
		if fl := baseline(ctx, o, s, "faiss IndexFlatL2", map[string]any{"lib": "faiss", "kind": "flat", "nq": nq, "sweep": []int{0}}); fl.absent == "" && len(fl.sweep) == 1 {
			et.Add("faiss IndexFlatL2, one query at a time", f1(fl.sweep[0].qps), f2(fl.sweep[0].qps*float64(4*len(s.base))/1e9))
		} else {
			et.Add("faiss IndexFlatL2", "not measured: "+firstLine(fl.absent), "")
		}
	}
	r.Tables = append(r.Tables, et)
	key := "ann." + slug(s.name)
	r.Figures[key+".exact_qps"] = exact
	r.Figures[key+".raw_scan_qps"] = limit
	r.atLeast(s.name+": exact search / raw scan", exact/limit, 0.8, "")
	return nil
}

// Exact measures exact search beside a raw scan on the ann section's data alone (`weir bench
// exact`), without the indexes' builds and sweeps that take most of an hour.
func Exact(ctx context.Context, o Options) (*Report, error) {
	return sectionReport(ctx, o, "exact", "exact search beside a raw scan of the same rows, one thread", exactSection)
}

func exactSection(ctx context.Context, o Options, r *Report) error {
	train, _, err := mnist.Load()
	if err != nil {
		return err
	}
	mn, big := 60000, 1_000_000
	if o.Quick {
		mn, big = 5000, 20000
	}
	for _, s := range []*annSet{
		{name: "MNIST", dim: mnist.Dim, base: train.Head(mn).Vectors, qs: train.Head(mn).Vectors[:50*mnist.Dim]},
		clusteredSet(big, 50, 128),
	} {
		if err := exactBesideScan(ctx, o, r, s, false); err != nil {
			return err
		}
	}
	r.Notes = append(r.Notes, "three rounds, each of 50 searches (nq 1) then one scan pass; the best round of each")
	return nil
}
