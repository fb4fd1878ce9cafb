package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Commands are the commands Run accepts.
var Commands = []string{"channels", "segments", "checkpoints", "verify"}

// Run runs one command and writes its result to w: an aligned table, or one JSON document
// (an array of rows; for verify {"findings": [...], "summary": {...}}). findings is the number
// of inconsistencies verify found, 0 for the other commands.
func (in *Inspector) Run(ctx context.Context, command string, w io.Writer, asJSON bool) (findings int, err error) {
	var t Table
	var doc any
	switch command {
	case "channels":
		rows, err := in.Channels(ctx)
		if err != nil {
			return 0, err
		}
		t, doc = ChannelTable(rows), rows
	case "segments":
		rows, err := in.Segments(ctx)
		if err != nil {
			return 0, err
		}
		t, doc = SegmentTable(rows), rows
	case "checkpoints":
		rows, err := in.Checkpoints(ctx)
		if err != nil {
			return 0, err
		}
		t, doc = CheckpointTable(rows), rows
	case "verify":
		rep, err := in.Verify(ctx)
		if err != nil {
			return 0, err
		}
		if asJSON {
			return rep.Summary.Findings, WriteJSON(w, rep)
		}
		return rep.Summary.Findings, rep.WriteText(w)
	default:
		return 0, fmt.Errorf("%w %q (want one of %s)", ErrUnknownCommand, command, strings.Join(Commands, ", "))
	}
	if asJSON {
		return 0, WriteJSON(w, doc)
	}
	return 0, WriteTable(w, t)
}

// WriteJSON writes v as one indented JSON document.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes t with aligned columns.
func WriteTable(w io.Writer, t Table) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Header(), "\t"))
	for _, row := range t.Cells() {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// FindingTable prints findings as a table.
type FindingTable []Finding

// Header implements Table.
func (FindingTable) Header() []string {
	return []string{"KIND", "COLLECTION", "CHANNEL", "SEGMENT", "OBJECT", "DETAIL"}
}

// Cells implements Table.
func (t FindingTable) Cells() [][]string {
	out := make([][]string, 0, len(t))
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, f := range t {
		coll, seg := "-", "-"
		if f.Collection != 0 {
			coll = i64(f.Collection)
		}
		if f.Segment != 0 {
			seg = i64(f.Segment)
		}
		out = append(out, []string{string(f.Kind), coll, dash(f.Channel), seg, dash(f.Object), f.Detail})
	}
	return out
}

// WriteText writes the findings as a table (nothing when there are none), a line per note,
// and the summary line last.
func (r *Report) WriteText(w io.Writer) error {
	if len(r.Findings) > 0 {
		if err := WriteTable(w, FindingTable(r.Findings)); err != nil {
			return err
		}
	}
	for _, n := range r.Summary.Notes {
		if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.Summary.String())
	return err
}
