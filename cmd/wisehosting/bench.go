package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/core/bench"
	"github.com/wisehosting/wisehosting/core/bench/loadgen"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "loadgen" {
		// The load generator the hub sections start in their own process;
		// it can also be pointed at a running core by hand.
		if err := loadgen.Main(ctx, args[1:], os.Stdin, stdout, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errUsage
			}
			return err
		}
		return nil
	}
	fs := newFlags("bench", stderr)
	sections := fs.String("sections", "", "comma-separated sections to run (default: all)")
	quick := fs.Bool("quick", false, "small workloads, for a smoke test (figures not comparable)")
	runs := fs.Int("runs", 3, "repetitions per measurement; the median is reported")
	verbose := fs.Bool("v", false, "log progress")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark process (the core, in the hub sections) to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 || *runs < 1 {
		return usageErr("bench [-sections a,b] [-quick] [-runs N] [-v] | bench loadgen -core URL -keys FILE [flags]")
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
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	return rep.WriteTable(stdout)
}
