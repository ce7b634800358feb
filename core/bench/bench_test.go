package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/bench/loadgen"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/plugins"
	"github.com/wisehosting/wisehosting/sdk"
)

// loadgenEnv makes this test binary the load generator (the role of
// `wisehosting bench loadgen`); pluginEnv ("kind/name") makes it serve a
// built-in plugin (`wisehosting plugin serve`).
const (
	loadgenEnv = "WH_BENCH_LOADGEN"
	pluginEnv  = "WH_BENCH_PLUGIN"
)

func TestMain(m *testing.M) {
	if kn := os.Getenv(pluginEnv); kn != "" {
		kind, name, _ := strings.Cut(kn, "/")
		p, ok := plugins.Lookup(kind, name)
		if !ok {
			fmt.Fprintln(os.Stderr, "no built-in", kn)
			os.Exit(1)
		}
		sdk.Serve(p)
		os.Exit(0)
	}
	if os.Getenv(loadgenEnv) == "1" {
		if err := loadgen.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// selfBuiltin serves built-in plugins from this test binary.
func selfBuiltin(kind, name string) (pluginhost.Command, error) {
	return pluginhost.Command{Path: os.Args[0], Env: []string{pluginEnv + "=" + kind + "/" + name}}, nil
}

// selfLoadgen runs the load generator as this test binary.
func selfLoadgen(args []string) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), loadgenEnv+"=1")
	return cmd, nil
}

// TestQuickRun runs every section in quick mode: the harness must start its
// own Postgres, produce a row per metric, and print the table.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Postgres cluster")
	}
	rep, err := Run(context.Background(), Options{Quick: true, Runs: 1, Logger: testutil.Logger(t), Loadgen: selfLoadgen, Builtin: selfBuiltin})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rep.Rows {
		if r.Value <= 0 {
			t.Errorf("%s %s = %v, want a positive measurement", r.Section, r.Metric, r.Value)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, sec := range Sections() {
		if !strings.Contains(buf.String(), sec.Name) {
			t.Errorf("no %s rows in the table:\n%s", sec.Name, buf.String())
		}
	}
	if _, err := Run(context.Background(), Options{Sections: []string{"nope"}}); err == nil {
		t.Fatal("unknown section accepted")
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[float64]string{1234567: "1,234,567", 999.5: "999.5", 12.345: "12.3", 0.01234: "0.0123"} {
		if got := formatValue(in); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", in, got, want)
		}
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}
