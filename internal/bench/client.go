package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// client is a Milvus gRPC client, the way an SDK talks to Weir.
type client struct {
	conn *grpc.ClientConn
	milvuspb.MilvusServiceClient
}

func dial(addr string) (*client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20), grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, MilvusServiceClient: milvuspb.NewMilvusServiceClient(conn)}, nil
}

func (c *client) Close() error { return c.conn.Close() }

func check(st *commonpb.Status, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.GetCode() != 0 || st.GetErrorCode() != commonpb.ErrorCode_Success {
		return fmt.Errorf("%s: %s (code %d)", what, st.GetReason(), st.GetCode())
	}
	return nil
}

// createCollection creates (id int64 pk, vec float vector of dim) with shards channels. The
// benchmarks measure vector ingest, so the rows carry nothing else.
func (c *client) createCollection(ctx context.Context, name string, dim, shards int) error {
	b, err := proto.Marshal(&schemapb.CollectionSchema{Name: name, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vec", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: fmt.Sprint(dim)}}},
	}})
	if err != nil {
		return err
	}
	st, err := c.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{CollectionName: name, Schema: b, ShardsNum: int32(shards)})
	return check(st, err, "create collection "+name)
}

// flushAndWait flushes a collection and polls GetFlushState until it reports flushed,
// returning the time from the Flush call.
func (c *client) flushAndWait(ctx context.Context, name string) (time.Duration, error) {
	t0 := time.Now()
	res, err := c.Flush(ctx, &milvuspb.FlushRequest{CollectionNames: []string{name}})
	if err := check(res.GetStatus(), err, "flush"); err != nil {
		return 0, err
	}
	req := &milvuspb.GetFlushStateRequest{CollectionName: name, FlushTs: res.GetCollFlushTs()[name]}
	if ids := res.GetCollSegIDs()[name]; ids != nil {
		req.SegmentIDs = ids.GetData()
	}
	for {
		st, err := c.GetFlushState(ctx, req)
		if err := check(st.GetStatus(), err, "get flush state"); err != nil {
			return 0, err
		}
		if st.GetFlushed() {
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// channel returns the one DML channel of a 1-shard collection.
func (c *client) channel(ctx context.Context, name string) (string, error) {
	res, err := c.DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{CollectionName: name})
	if err := check(res.GetStatus(), err, "describe "+name); err != nil {
		return "", err
	}
	chs := res.GetVirtualChannelNames()
	if len(chs) != 1 {
		return "", fmt.Errorf("collection %s has %d channels, want 1", name, len(chs))
	}
	return chs[0], nil
}

// workload is a pool of insert requests generated before the clock starts: the figures are
// Weir's insert path, not a random number generator. Requests differ only in their keys.
type workload struct {
	name      string
	dim, rows int
	vecs      [][]float32 // a few distinct vector blocks, reused round-robin
}

func newWorkload(name string, dim, rows int) *workload {
	w := &workload{name: name, dim: dim, rows: rows}
	rng := rand.New(rand.NewPCG(uint64(dim), 7))
	for range 4 {
		v := make([]float32, dim*rows)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		w.vecs = append(w.vecs, v)
	}
	return w
}

// request returns insert request number i (keys i*rows .. (i+1)*rows-1).
func (w *workload) request(i int) *milvuspb.InsertRequest {
	ids := make([]int64, w.rows)
	for j := range ids {
		ids[j] = int64(i*w.rows + j)
	}
	return &milvuspb.InsertRequest{CollectionName: w.name, NumRows: uint32(w.rows), FieldsData: []*schemapb.FieldData{
		{FieldName: "id", Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: ids}}}}},
		{FieldName: "vec", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(w.dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: w.vecs[i%len(w.vecs)]}}}}},
	}}
}

// vectorBytes is the vector data of one request.
func (w *workload) vectorBytes() int64 { return int64(w.rows * w.dim * 4) }

// requestBytes is the encoded size of one request on the wire.
func (w *workload) requestBytes() int { return proto.Size(w.request(0)) }

// insertResult is what an insert run measured.
type insertResult struct {
	Requests  int
	Start     time.Time
	Elapsed   time.Duration
	Latencies []time.Duration
}

// insert sends requests [first, first+n) over clients concurrent goroutines, each request
// built just before it is sent, and returns once all were acknowledged. progress, when set,
// is called after each acknowledged request.
func (c *client) insert(ctx context.Context, w *workload, first, n, clients int, progress func()) (insertResult, error) {
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	elapsed, err := spread(ctx, n, clients, func(ctx context.Context, i int) error {
		req := w.request(first + i)
		t := time.Now()
		res, err := c.Insert(ctx, req)
		if err := check(res.GetStatus(), err, "insert"); err != nil {
			return err
		}
		if got := res.GetInsertCnt(); got != int64(w.rows) {
			return fmt.Errorf("insert: %d rows acknowledged, sent %d", got, w.rows)
		}
		d := time.Since(t)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		if progress != nil {
			progress()
		}
		return nil
	})
	return insertResult{Requests: n, Start: start, Elapsed: elapsed, Latencies: lat}, err
}

// spread runs do(0) .. do(n-1) on workers goroutines, each taking the next i when it is done
// with one, as that many clients would, and returns the time until all returned; the first
// error cancels the rest.
func spread(ctx context.Context, n, workers int, do func(ctx context.Context, i int) error) (time.Duration, error) {
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := do(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
