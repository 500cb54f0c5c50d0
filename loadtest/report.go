package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bojand/ghz/printer"
	"github.com/bojand/ghz/runner"
)

// printTable writes the summary: one row per scenario, the overall row last.
func printTable(w io.Writer, rows []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tshare\tcalls\treq/s\tp50\tp90\tp95\tp99\tmax\terrors\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f%%\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.3f%%\t%s\n", r.Name, 100*r.Weight, r.Calls, r.RPS,
			fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P95), fmtDur(r.P99), fmtDur(r.Max), 100*r.ErrorRate, codeList(r.Codes))
	}
	tw.Flush()
	// What the failed calls said, per scenario (the overall row repeats
	// them): the code alone does not tell a refused stream from a database
	// outage.
	for i, r := range rows {
		if len(rows) > 1 && i == len(rows)-1 {
			break
		}
		msgs := make([]string, 0, len(r.ErrorMsgs))
		for m := range r.ErrorMsgs {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(w, "  %s failed ×%d, the first at %s: %s\n", r.Name, r.ErrorMsgs[m], r.FirstError.UTC().Format("15:04:05.000"), m)
		}
		if r.Retried > 0 {
			fmt.Fprintf(w, "  %s: %d failed attempts retried by gRPC itself, not failed calls (%s)\n", r.Name, r.Retried, msgList(r.RetriedMsgs))
		}
	}
}

// codeList prints the non-OK status codes with their counts.
func codeList(codes map[string]int) string {
	var out []string
	for c, n := range codes {
		if c != "OK" {
			out = append(out, fmt.Sprintf("%s=%d", c, n))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// writeJSON writes v as indented JSON to dir/name.
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
}

// writeHTML writes ghz's HTML report of one run to dir/<prefix><name>.html.
func writeHTML(dir, prefix string, rep *runner.Report) error {
	f, err := os.Create(filepath.Join(dir, prefix+rep.Name+".html"))
	if err != nil {
		return err
	}
	defer f.Close()
	// The per-call details make the page heavy and add nothing the
	// histogram does not show.
	r := *rep
	r.Details = nil
	if err := (&printer.ReportPrinter{Out: f, Report: &r}).Print("html"); err != nil {
		return err
	}
	return f.Close()
}

// msgList prints messages with their counts, most frequent first.
func msgList(msgs map[string]int) string {
	out := make([]string, 0, len(msgs))
	for m := range msgs {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if msgs[out[i]] != msgs[out[j]] {
			return msgs[out[i]] > msgs[out[j]]
		}
		return out[i] < out[j]
	})
	for i, m := range out {
		out[i] = fmt.Sprintf("%q ×%d", m, msgs[m])
	}
	return strings.Join(out, ", ")
}
