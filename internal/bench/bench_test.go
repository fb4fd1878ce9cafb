package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReportOutputs checks the two renderings of a report: the aligned table `weir bench`
// prints, and the Markdown BENCHMARKS.md is made from, with targets judged both ways.
func TestReportOutputs(t *testing.T) {
	r := newReport("x", "a title", Options{})
	tb := Table{Title: "t", Columns: []string{"size", "time"}}
	tb.Add("16 MB", ms(68_900_000))
	r.Tables = append(r.Tables, tb)
	r.atMost("flush", 68.9, 500, " ms")
	r.atLeast("ratio", 0.31, 0.5, "")
	r.Notes = append(r.Notes, "a note")

	var out bytes.Buffer
	r.Print(&out)
	require.Contains(t, out.String(), "16 MB")
	require.Contains(t, out.String(), "68.9 ms")
	require.Contains(t, out.String(), "met    flush: 68.9 ms (want < 500 ms)")
	require.Contains(t, out.String(), "MISSED ratio: 0.31 (want ≥ 0.5)")

	var md bytes.Buffer
	r.Markdown(&md)
	lines := strings.Split(md.String(), "\n")
	require.Contains(t, lines, "| size | time |")
	require.Contains(t, lines, "|---|---|")
	require.Contains(t, lines, "| 16 MB | 68.9 ms |")
	require.Contains(t, lines, "- ratio: 0.31 (want ≥ 0.5), **missed**")
	require.Contains(t, lines, "- flush: 68.9 ms (want < 500 ms), met")
	require.Contains(t, lines, "- a note")
	require.NotEmpty(t, ThisMachine().String())
}
