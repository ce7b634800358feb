// Package bench is the harness behind `make bench`: it starts its own
// Postgres (default durability settings, on disk), runs each section against
// fresh databases, and prints one table. Sections report medians of several
// runs and carry their same-run baseline or ceiling, because this machine is
// shared and only ratios measured side by side mean anything.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/embedpg"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
)

// Section is one part of the benchmark.
type Section struct {
	// Name is how -sections selects it.
	Name string
	// Run measures and returns its results.
	Run func(ctx context.Context, env *Env) ([]Result, error)
}

// Result is one row of the table.
type Result struct {
	Metric string
	Value  float64
	Unit   string
	// Compare is the same-run baseline or ceiling, e.g. "ceiling 61,000/s (72%)".
	Compare string
	// Target is the goal from the issue, when there is one.
	Target string
}

// Sections returns every section in run order.
func Sections() []Section {
	return []Section{
		{Name: "scheduling", Run: scheduling},
		{Name: "hub-idle", Run: hubIdle},
		{Name: "hub-envelopes", Run: hubEnvelopes},
		{Name: "hub-logs", Run: hubLogs},
		{Name: "proxy", Run: proxySection},
		{Name: "events", Run: eventsSection},
	}
}

// Options configure Run.
type Options struct {
	// Sections to run by name; empty means all.
	Sections []string
	// Quick shrinks every workload (for smoke tests); figures are not comparable.
	Quick bool
	// Runs is how many times each measurement repeats (median reported); default 3.
	Runs int
	// Dir holds the benchmark's Postgres cluster; default a temp dir removed afterwards.
	Dir    string
	Logger hclog.Logger
	// Loadgen returns the command that runs the load generator with args
	// (core/bench/loadgen.Main); nil runs this executable's
	// `bench loadgen`.
	Loadgen func(args []string) (*exec.Cmd, error)
	// Builtin returns the command serving a built-in plugin to the
	// benchmark's cores; nil runs this executable's `plugin serve`.
	Builtin func(kind, name string) (pluginhost.Command, error)
}

// Env is what a section gets.
type Env struct {
	Log     hclog.Logger
	Quick   bool
	Runs    int
	cluster *embedpg.Cluster
	dbs     int
	loadgen func(args []string) (*exec.Cmd, error)
	builtin func(kind, name string) (pluginhost.Command, error)
}

// Report is the outcome of a run.
type Report struct {
	Started  time.Time
	Duration time.Duration
	Rows     []Row
}

// Row is a Result with its section.
type Row struct {
	Section string
	Result
}

// Run starts Postgres, runs the selected sections and returns the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	secs := Sections()
	if len(opts.Sections) > 0 {
		var sel []Section
		for _, name := range opts.Sections {
			i := slices.IndexFunc(secs, func(s Section) bool { return s.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("bench: unknown section %q (have %s)", name, sectionNames(secs))
			}
			sel = append(sel, secs[i])
		}
		secs = sel
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "wh-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: temp dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := os.Chmod(tmp, 0o711); err != nil { // the server runs as the postgres user
			return nil, fmt.Errorf("bench: temp dir: %w", err)
		}
		dir = tmp
	}
	cluster, err := embedpg.Start(ctx, embedpg.Options{Dir: filepath.Join(dir, "postgres"), Logger: log.Named("embedpg"),
		Settings: map[string]string{"max_connections": "200"}})
	if err != nil {
		return nil, fmt.Errorf("bench: start postgres: %w", err)
	}
	defer cluster.Stop(context.WithoutCancel(ctx))
	env := &Env{Log: log, Quick: opts.Quick, Runs: max(opts.Runs, 1), cluster: cluster, loadgen: opts.Loadgen, builtin: opts.Builtin}
	if opts.Runs == 0 {
		env.Runs = 3
	}
	rep := &Report{Started: time.Now()}
	for _, s := range secs {
		log.Info("section", "name", s.Name)
		res, err := s.Run(ctx, env)
		if err != nil {
			return rep, fmt.Errorf("bench: section %s: %w", s.Name, err)
		}
		for _, r := range res {
			rep.Rows = append(rep.Rows, Row{Section: s.Name, Result: r})
		}
	}
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

func sectionNames(secs []Section) string {
	var n []string
	for _, s := range secs {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// benchSecret is the server secret of benchmark stores.
const benchSecret = "wisehosting-benchmark-secret-0123456789"

// NewStore creates a fresh migrated database and opens a store on it.
func (e *Env) NewStore(ctx context.Context, maxConns int32) (*store.Store, error) {
	cs, err := e.newDatabase(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx, cs); err != nil {
		return nil, err
	}
	cipher, err := secrets.NewCipher(benchSecret)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, store.Options{ConnString: cs, MaxConns: maxConns, MinConns: 1, Cipher: cipher, Logger: e.Log.Named("store")})
}

// newDatabase creates an empty database and returns its connection string.
func (e *Env) newDatabase(ctx context.Context) (string, error) {
	e.dbs++
	name := fmt.Sprintf("bench_%d", e.dbs)
	admin, err := pgx.Connect(ctx, e.cluster.ConnString("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
	admin.Close(ctx)
	if err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return e.cluster.ConnString(name), nil
}

// loadgenCmd is the command running the load generator with args.
func (e *Env) loadgenCmd(args []string) (*exec.Cmd, error) {
	if e.loadgen != nil {
		return e.loadgen(args)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	return exec.Command(self, append([]string{"bench", "loadgen"}, args...)...), nil
}

// WriteTable prints the report as an aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tMETRIC\tVALUE\tSAME-RUN COMPARISON\tTARGET")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", row.Section, row.Metric, formatValue(row.Value), row.Unit,
			dash(row.Compare), dash(row.Target))
	}
	fmt.Fprintf(tw, "\n(total %s; medians of repeated runs)\n", r.Duration.Round(time.Second))
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatValue prints large numbers with thousands separators and small ones
// with a few significant digits.
func formatValue(v float64) string {
	if v >= 1000 {
		return commas(int64(v + 0.5))
	}
	if v >= 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// median returns the median of xs (xs is sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
