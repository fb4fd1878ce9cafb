package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-db/weir/internal/standalone"
)

// BenchmarkIngest measures inserts of 1,000-row batches through the Milvus gRPC API into a
// running standalone — proxy, WAL with fsync on every append, and the data node consuming and
// writing Parquet, all in this process — and, in the same run, the baseline: raw JetStream
// appends of the same number of bytes to a stream on the same server with the same durability.
// It prints both rates and their ratio.
//
//	go test -run '^$' -bench Ingest -benchtime 200x ./internal/proxy/
func BenchmarkIngest(b *testing.B) {
	for _, dim := range []int{128, 768} {
		var weirMBs, rawMBs, weirRows float64
		s := startStandaloneB(b)
		conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20)))
		require.NoError(b, err)
		c := milvuspb.NewMilvusServiceClient(conn)
		coll := createColl(b, c, fmt.Sprintf("ingest%d", dim), 1, pk, vecField(fmt.Sprint(dim)), title, score)
		const rows = 1000
		vecBytes := float64(rows * dim * 4)
		var reqBytes int

		b.Run(fmt.Sprintf("dim=%d/weir", dim), func(b *testing.B) {
			ctx := context.Background()
			next := int64(1)
			b.SetBytes(int64(vecBytes))
			for b.Loop() {
				b.StopTimer()
				req := insertReq(coll, seq(next, rows), dim)
				next += rows
				reqBytes = proto.Size(req)
				b.StartTimer()
				res, err := c.Insert(ctx, req)
				require.NoError(b, err)
				requireOK(b, res.GetStatus())
			}
			weirMBs = vecBytes * float64(b.N) / 1e6 / b.Elapsed().Seconds()
			weirRows = float64(rows*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(weirRows, "rows/s")
		})
		b.Run(fmt.Sprintf("dim=%d/jetstream", dim), func(b *testing.B) {
			nc, err := nats.Connect(s.NATSURL())
			require.NoError(b, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(b, err)
			ctx := context.Background()
			name := fmt.Sprintf("RAW%d", dim)
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"raw." + name}, Storage: jetstream.FileStorage})
			require.NoError(b, err)
			payload := make([]byte, reqBytes) // the same bytes a Weir insert request carries
			b.SetBytes(int64(vecBytes))
			for b.Loop() {
				_, err := js.Publish(ctx, "raw."+name, payload)
				require.NoError(b, err)
			}
			rawMBs = vecBytes * float64(b.N) / 1e6 / b.Elapsed().Seconds()
		})
		conn.Close()
		if weirMBs > 0 && rawMBs > 0 {
			fmt.Printf("ingest dim=%d, 1,000-row batches, 1 client, wal-sync=always: weir %.0f rows/s = %.1f MB/s of vectors; raw JetStream append of the same bytes %.1f MB/s; ratio %.2f\n",
				dim, weirRows, weirMBs, rawMBs, weirMBs/rawMBs)
		}
	}
}

func startStandaloneB(b *testing.B) *standalone.Standalone {
	cfg := standalone.Defaults()
	cfg.DataDir, cfg.Listen, cfg.HTTPListen = b.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := standalone.Start(ctx, cfg, "bench", slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}
