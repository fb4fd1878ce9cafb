package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-db/weir/internal/meta"
	"github.com/weir-db/weir/internal/metastore"
	"github.com/weir-db/weir/internal/subproc"
	"github.com/weir-db/weir/internal/wal"
)

const (
	// clusterRootPath is `weir run`'s default --root-path, which the roles are left at.
	clusterRootPath = "weir"
	// procStartTimeout bounds a role's start until its /healthz answers 200. A data node
	// started again under its node ID first waits for its previous session to expire.
	procStartTimeout = time.Minute
	// healthPoll is the pause between readiness probes.
	healthPoll = 20 * time.Millisecond
	// portAttempts is how often a start picks new ports when one it picked was taken by
	// another process before the role bound it.
	portAttempts = 3
	// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every
	// Linux architecture Go supports.
	clockTicks = 100
	// logTailBytes is how much of a role's log an error about it quotes.
	logTailBytes = 4 << 10
)

var (
	errExited    = errors.New("bench: process exited")
	errRunning   = errors.New("bench: process already running")
	errPortTaken = errors.New("bench: port taken")
)

// healthClient probes the roles' /healthz; a role that does not answer within its timeout
// is not ready.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// clusterConfig is what startCluster runs.
type clusterConfig struct {
	// Name names the scratch folder (weir-bench-<name>-*).
	Name string
	// DataNodes is the number of data nodes, with node IDs 1..DataNodes.
	DataNodes int
	// Extra flags of each role's `weir run`.
	CoordArgs, DataNodeArgs, ProxyArgs []string
	// SessionTTL is every role's --session-ttl; 0 keeps Weir's default.
	SessionTTL time.Duration
}

// cluster is Weir with each role a separate `weir run` process, the way an operator deploys
// it, for the benchmarks that kill a role or measure what crossing process boundaries costs.
// etcd and NATS JetStream run embedded in the bench process itself, over local object storage:
// they are not what these benchmarks measure, and it keeps the children to Weir's own roles.
type cluster struct {
	dir       string
	endpoints []string // etcd's client URLs
	natsURL   string
	catalog   *meta.Catalog
	log       *wal.Log
	coord     *proc
	proxy     *proc
	nodes     []*proc
	closers   []func() error
}

// startCluster starts etcd and NATS (fsync before every acknowledgement, standalone's default
// --wal-sync), then the coordinator, the data nodes and one proxy as child processes of
// o.Executable, and returns once every role reports ready.
func startCluster(ctx context.Context, o Options, cfg clusterConfig) (_ *cluster, err error) {
	exe := o.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the weir binary: %w", err)
		}
	}
	dir, cleanup, err := o.scratch(cfg.Name)
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, closers: []func() error{func() error { cleanup(); return nil }}}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	if err := c.startServers(ctx, o.logger()); err != nil {
		return nil, err
	}
	common := []string{"--etcd", strings.Join(c.endpoints, ","), "--nats", c.natsURL,
		"--storage", "file://" + filepath.Join(dir, "objects")}
	if cfg.SessionTTL > 0 {
		common = append(common, "--session-ttl", cfg.SessionTTL.String())
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	c.coord = c.newProc(exe, "coord", 1, slices.Concat(common, cfg.CoordArgs))
	if err := c.coord.Start(ctx); err != nil {
		return nil, err
	}
	for id := 1; id <= cfg.DataNodes; id++ {
		n := c.newProc(exe, "datanode", int64(id), slices.Concat(common, cfg.DataNodeArgs))
		c.nodes = append(c.nodes, n)
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
	}
	c.proxy = c.newProc(exe, "proxy", 1, slices.Concat(common, cfg.ProxyArgs))
	c.proxy.milvus = true
	if err := c.proxy.Start(ctx); err != nil {
		return nil, err
	}
	// --cpuprofile covers this process only; each role serves its own profiles.
	for _, p := range c.procs() {
		o.step("%s: pprof at http://%s/debug/pprof/, log %s", p.name, p.HTTPAddr(), p.logPath)
	}
	return c, nil
}

// startServers starts embedded etcd and NATS and the bench process's own clients of them.
func (c *cluster) startServers(ctx context.Context, logger *slog.Logger) error {
	etcd, err := metastore.StartEmbedded(ctx, metastore.EmbeddedConfig{Dir: filepath.Join(c.dir, "etcd"), Logger: logger})
	if err != nil {
		return err
	}
	c.closers = append(c.closers, etcd.Close)
	c.endpoints = etcd.Endpoints()
	nats, err := wal.StartEmbedded(wal.EmbeddedConfig{Dir: filepath.Join(c.dir, "nats"), Sync: wal.SyncAlways, Logger: logger})
	if err != nil {
		return err
	}
	c.closers = append(c.closers, func() error { nats.Shutdown(); return nil })
	c.natsURL = nats.ClientURL()
	store, err := metastore.Dial(ctx, metastore.Config{Endpoints: c.endpoints, Logger: logger})
	if err != nil {
		return err
	}
	c.closers = append(c.closers, store.Close)
	c.catalog = meta.NewCatalog(store, clusterRootPath, meta.NewIDAllocator(store, clusterRootPath, 1000), logger)
	if c.log, err = wal.Open(ctx, c.natsURL, wal.Config{Logger: logger}); err != nil {
		return err
	}
	c.closers = append(c.closers, c.log.Close)
	return nil
}

func (c *cluster) newProc(exe, role string, node int64, args []string) *proc {
	name := fmt.Sprintf("%s-%d", role, node)
	return &proc{name: name, role: role, node: node, exe: exe, args: args, logPath: filepath.Join(c.dir, "logs", name+".log")}
}

// ProxyAddr is the proxy's Milvus gRPC address.
func (c *cluster) ProxyAddr() string { return c.proxy.MilvusAddr() }

// DataNode returns data node i (0-based; node ID i+1).
func (c *cluster) DataNode(i int) *proc { return c.nodes[i] }

// procs are the roles started so far.
func (c *cluster) procs() []*proc {
	var ps []*proc
	for _, p := range append([]*proc{c.coord, c.proxy}, c.nodes...) {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// CPUTime is the CPU time (user and system) the roles used so far, those killed included.
func (c *cluster) CPUTime() time.Duration {
	var sum time.Duration
	for _, p := range c.procs() {
		sum += p.CPUTime()
	}
	return sum
}

// owner waits until ch is leased to a running data node and returns that node.
func (c *cluster) owner(ctx context.Context, ch string, timeout time.Duration) (*proc, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		leases, err := c.catalog.ListLeases(ctx)
		if err == nil {
			for _, n := range c.nodes {
				if l, ok := leases[ch]; ok && l.NodeID == n.node && n.running() {
					return n, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("channel %s not leased to a running data node within %s (last error: %v): %w", ch, timeout, err, ctx.Err())
		case <-time.After(healthPoll):
		}
	}
}

// Close kills every role (nothing they hold is kept), stops etcd and NATS and removes the
// scratch folder.
func (c *cluster) Close() error {
	for _, p := range c.procs() {
		p.Kill()
	}
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// proc is one role's process, which can be killed and started again under the same node ID
// and flags, as a supervisor restarts a crashed process.
type proc struct {
	name, role string
	node       int64
	exe        string
	args       []string
	logPath    string
	milvus     bool // the proxy: also listens for the Milvus API

	mu struct {
		sync.Mutex
		httpAddr, milvusAddr string
		cmd                  *exec.Cmd
		done                 chan struct{} // closed once cmd has exited and been reaped
		spent                time.Duration // CPU time of the runs that have exited
	}
}

// Start runs the role and returns once its /healthz answers 200, picking its listen ports the
// first time (and again when one was taken before the role bound it).
func (p *proc) Start(ctx context.Context) error {
	if p.running() {
		return fmt.Errorf("start %s: %w", p.name, errRunning)
	}
	var err error
	for attempt := 0; attempt < portAttempts; attempt++ {
		if p.HTTPAddr() == "" || errors.Is(err, errPortTaken) {
			if err := p.pickPorts(); err != nil {
				return fmt.Errorf("start %s: %w", p.name, err)
			}
		}
		if err = p.start(ctx); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

// pickPorts picks free loopback ports for the role's HTTP and, for a proxy, Milvus addresses.
func (p *proc) pickPorts() error {
	n := 1
	if p.milvus {
		n = 2
	}
	ports, err := subproc.FreePorts(n)
	if err != nil {
		return err
	}
	httpAddr, milvusAddr := loopback(ports[0]), ""
	if p.milvus {
		milvusAddr = loopback(ports[1])
	}
	p.mu.Lock()
	p.mu.httpAddr, p.mu.milvusAddr = httpAddr, milvusAddr
	p.mu.Unlock()
	return nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func (p *proc) argv() []string {
	args := append([]string{"run", p.role, "--node-id", strconv.FormatInt(p.node, 10), "--http-listen", p.HTTPAddr()}, p.args...)
	if p.milvus {
		args = append(args, "--listen", p.MilvusAddr())
	}
	return args
}

func (p *proc) start(ctx context.Context) error {
	var offset int64
	if fi, err := os.Stat(p.logPath); err == nil {
		offset = fi.Size()
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	cmd := exec.Command(p.exe, p.argv()...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = subproc.SysProcAttr()
	err = cmd.Start()
	_ = f.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.mu.cmd, p.mu.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait() // its error repeats the exit status, which ProcessState holds
		p.mu.Lock()
		p.mu.spent += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		p.mu.Unlock()
		close(done)
	}()
	if err := p.waitHealthy(ctx, done, cmd); err != nil {
		p.Kill()
		out := subproc.LogFrom(p.logPath, offset)
		if strings.Contains(out, "address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("start %s: %w; its log:\n%s", p.name, err, subproc.Tail(out, logTailBytes))
	}
	return nil
}

// waitHealthy polls /healthz until it answers 200, the process exits or procStartTimeout
// passes.
func (p *proc) waitHealthy(ctx context.Context, done <-chan struct{}, cmd *exec.Cmd) error {
	ctx, cancel := context.WithTimeout(ctx, procStartTimeout)
	defer cancel()
	for {
		if p.Healthy(ctx) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%w before it was ready: %s", errExited, cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", procStartTimeout, ctx.Err())
		case <-time.After(healthPoll):
		}
	}
}

// Healthy reports whether the role's /healthz answers 200.
func (p *proc) Healthy(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTPAddr()+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill sends SIGKILL, as a crash does, and returns once the process has exited; a process not
// running is left alone.
func (p *proc) Kill() {
	p.mu.Lock()
	cmd, done := p.mu.cmd, p.mu.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // fails only when it has exited already
	<-done
}

func (p *proc) running() bool {
	p.mu.Lock()
	done := p.mu.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// exited is closed once the current run has exited; nil before the first start.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.done
}

// watch returns a context that is cancelled, with a cause quoting the role's log, when any of
// ps exits, so that a benchmark waiting on a role that died fails at once rather than at its
// timeout. stop releases the context and waits for the watchers.
func watch(ctx context.Context, ps ...*proc) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	for _, p := range ps {
		done := p.exited()
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-done:
				cancel(fmt.Errorf("%w: %s; its log:\n%s", errExited, p.name, subproc.Tail(p.Log(), logTailBytes)))
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() { cancel(nil); wg.Wait() }
}

// HTTPAddr is the address of the role's /healthz and /metrics.
func (p *proc) HTTPAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.httpAddr
}

// MilvusAddr is the proxy's Milvus gRPC address; "" for other roles.
func (p *proc) MilvusAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.milvusAddr
}

// CPUTime is the CPU time (user and system) of every run of the role so far: the exited runs
// from their exit status, the running one from /proc (Linux; elsewhere it counts only runs
// that have exited).
func (p *proc) CPUTime() time.Duration {
	p.mu.Lock()
	spent, cmd, done := p.mu.spent, p.mu.cmd, p.mu.done
	p.mu.Unlock()
	if cmd == nil {
		return spent
	}
	select {
	case <-done:
		return spent
	default:
	}
	return spent + procCPU(cmd.Process.Pid)
}

// procCPU reads utime and stime of a live process from /proc/<pid>/stat; 0 when it cannot.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it start with the state
	// (field 3), so utime and stime (fields 14 and 15) are at 11 and 12.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// Log returns everything the role has written over all its runs.
func (p *proc) Log() string { return subproc.LogFrom(p.logPath, 0) }
