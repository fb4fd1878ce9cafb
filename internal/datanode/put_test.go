package datanode

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/weir-db/weir/internal/objstore"
)

// TestPutRetriesStorageButNotEncodingErrors: put encodes a file again on every attempt, so it
// must tell an encoder that cannot encode (stop: it would fail forever) from storage that
// failed a write midway (retry until it works).
func TestPutRetriesStorageButNotEncodingErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mem := objstore.NewMemory()
	bucket := &flakyBucket{Bucket: mem}
	n, err := New(testConfig(1), nil, &countingIDs{}, nil, bucket, prometheus.NewRegistry(), quiet())
	require.NoError(t, err)
	p := &pipeline{n: n, ch: "ch", logger: quiet(), ctx: ctx}
	retries := func() float64 { return testutil.ToFloat64(n.m.retries.WithLabelValues("put")) }

	errBad := errors.New("test: records cannot be encoded")
	err = p.put("bad", func(w io.Writer) error {
		if _, err := io.WriteString(w, "header"); err != nil {
			return err
		}
		return errBad
	})
	require.ErrorIs(t, err, errBad)
	require.ErrorIs(t, err, errEncode)
	require.Zero(t, retries(), "an encoding error is not retried")

	bucket.down.Store(true)
	attempts := 0
	err = p.put("flaky", func(w io.Writer) error {
		attempts++
		if attempts == 3 {
			bucket.down.Store(false)
		}
		for _, part := range []string{"first ", "second"} {
			if _, err := io.WriteString(w, part); err != nil {
				return err // a storage error, wrapped or not by the encoder
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	require.Equal(t, float64(2), retries())
	got, err := mem.Get(ctx, "flaky")
	require.NoError(t, err)
	require.Equal(t, "first second", string(got), "the stored object is the last attempt's, whole")
}
