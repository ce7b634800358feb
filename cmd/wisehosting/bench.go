package main

import (
	"context"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	sections := fs.String("sections", "", "comma-separated sections to run (default: all)")
	quick := fs.Bool("quick", false, "small workloads, for a smoke test (figures not comparable)")
	runs := fs.Int("runs", 3, "repetitions per measurement; the median is reported")
	verbose := fs.Bool("v", false, "log progress")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 || *runs < 1 {
		return usageErr("bench [-sections a,b] [-quick] [-runs N] [-v]")
	}
	level := hclog.Warn
	if *verbose {
		level = hclog.Info
	}
	opts := bench.Options{Quick: *quick, Runs: *runs,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "bench", Level: level, Output: stderr})}
	if *sections != "" {
		opts.Sections = strings.Split(*sections, ",")
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	return rep.WriteTable(stdout)
}
