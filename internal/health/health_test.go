package health

import (
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "weir_test_total", Help: "x"}).Add(3)
	s, err := Listen("127.0.0.1:0", reg)
	require.NoError(t, err)
	code, _ := get(t, "http://"+s.Addr()+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready yet")
	s.SetReady(true)
	code, body := get(t, "http://"+s.Addr()+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get(t, "http://"+s.Addr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "weir_test_total 3")
	code, body = get(t, "http://"+s.Addr()+"/debug/pprof/goroutine?debug=1")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine profile:", "profiles are served")
	require.NoError(t, s.Close())
	_, err = http.Get("http://" + s.Addr() + "/healthz")
	require.Error(t, err, "closed")

	_, err = Listen(s.Addr()+"x", reg)
	require.Error(t, err)
}
