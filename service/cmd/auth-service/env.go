package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/nova-auth/nova-auth/service/internal/config"
)

// envCmd prints the environment variables the service reads: a table, only
// the names (--names), or the README's Markdown table (--markdown).
func envCmd(_ context.Context, args []string, s stdio) error {
	fs := s.flags("env")
	names := fs.Bool("names", false, "print only the names, one per line")
	md := fs.Bool("markdown", false, "print a Markdown table")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *names:
		for _, n := range config.Names() {
			fmt.Fprintln(s.out, n)
		}
	case *md:
		fmt.Fprint(s.out, config.Markdown())
	default:
		tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
		for _, v := range config.Vars {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, v.Default, v.Help)
		}
		return tw.Flush()
	}
	return nil
}
