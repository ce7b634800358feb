package routetest

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/route"
)

// The tables are valid; every evil route fails route.Check.
func TestTables(t *testing.T) {
	for _, r := range append(append(SmallTable(), ManyRoutes(300)...), append(ContestedRoutes(), GoodRoute())...) {
		if _, reason := route.Check(r); reason != "" {
			t.Errorf("route %v: %s", r, reason)
		}
	}
	if checked, skipped := route.Prepare(SmallTable()); len(checked) != 4 || len(skipped) != 0 {
		t.Errorf("SmallTable: %d checked, %v skipped", len(checked), skipped)
	}
	if checked, skipped := route.Prepare(ManyRoutes(300)); len(checked) != 300 || len(skipped) != 0 {
		t.Errorf("ManyRoutes(300): %d checked, %v skipped", len(checked), skipped)
	}
	// The contested routes lose app-7 and app-9's platform host.
	checked, skipped := route.Prepare(append(ManyRoutes(10), ContestedRoutes()...))
	if len(checked) != 11 || len(skipped) != 3 {
		t.Errorf("ManyRoutes(10) and ContestedRoutes: %d checked, %d skipped", len(checked), len(skipped))
	}
	var names []string
	for _, e := range EvilRoutes() {
		names = append(names, e.Name)
		if _, reason := route.Check(e.Route); reason == "" {
			t.Errorf("%s: route.Check accepts %v", e.Name, e.Route)
		}
		if e.Mark == "" || !strings.Contains(fmt.Sprint(e.Route), e.Mark) || strings.Contains(fmt.Sprint(GoodRoute()), e.Mark) {
			t.Errorf("%s: mark %q is not the evil route's alone", e.Name, e.Mark)
		}
	}
	slices.Sort(names)
	if len(slices.Compact(names)) != len(EvilRoutes()) {
		t.Error("two evil routes share a name")
	}
}

// recorder records a check's failures; Fatal ends the calling goroutine as
// testing.T's does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Logf(string, ...any) {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// run runs check against a recorder and returns its failures.
func run(t *testing.T, check func(testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.failed
}

// canonical renders what route.Prepare keeps, one line a route.
func canonical(routes []*pluginv1.Route, _ uint64) []byte {
	checked, _ := route.Prepare(routes)
	var b strings.Builder
	for _, c := range checked {
		fmt.Fprintf(&b, "%s %v %s\n", c.Name, c.Hosts, c.Upstream)
	}
	return []byte(b.String())
}

func TestCheckDeterministic(t *testing.T) {
	table := append(ManyRoutes(50), ContestedRoutes()...)
	if failed := run(t, func(tb testing.TB) { CheckDeterministic(tb, canonical, table) }); len(failed) != 0 {
		t.Errorf("a canonical render failed: %q", failed)
	}
	tests := []struct {
		name   string
		render func([]*pluginv1.Route, uint64) []byte
		want   string
	}{
		{"input order", func(rs []*pluginv1.Route, _ uint64) []byte { return []byte(rs[0].GetName()) }, "shuffle 0 renders different bytes"},
		{"generation", func(rs []*pluginv1.Route, g uint64) []byte { return fmt.Appendf(canonical(rs, g), "%d", g) }, "the generation changed the output"},
		{"reorders", func(rs []*pluginv1.Route, g uint64) []byte {
			slices.SortFunc(rs, func(a, b *pluginv1.Route) int { return strings.Compare(a.GetName(), b.GetName()) })
			return canonical(rs, g)
		}, "reordered"},
		{"changes", func(rs []*pluginv1.Route, g uint64) []byte {
			for _, r := range rs {
				r.AppId += 1_000_000 // the same order among routes sharing a name
			}
			return canonical(rs, g)
		}, "Render changed route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := run(t, func(tb testing.TB) {
				CheckDeterministic(tb, tt.render, slices.Clone(append(ManyRoutes(50), ContestedRoutes()...)))
			})
			if len(failed) == 0 || !strings.Contains(strings.Join(failed, "\n"), tt.want) {
				t.Errorf("failures %q, want %q", failed, tt.want)
			}
		})
	}
}

func TestCheckLeftOut(t *testing.T) {
	e := EvilRoutes()[0]
	quiet := `{"@level":"warn","@message":"routes left out","skipped":1}`
	if failed := run(t, func(tb testing.TB) { CheckLeftOut(tb, e, []byte("good.apps.example.com"), quiet) }); len(failed) != 0 {
		t.Errorf("a clean render failed: %q", failed)
	}
	for _, tt := range []struct{ name, body, log, want string }{
		{"mark in output", "x " + e.Mark, quiet, "reached the output"},
		{"no warning", "", "", "no warning"},
		{"two skipped", "", `{"@level":"warn","skipped":2}`, "no warning"},
		{"host quoted", "", quiet + e.Route.GetHosts()[0], "quotes host"},
		{"upstream quoted", "", quiet + e.Route.GetUpstream(), "quotes the upstream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			failed := run(t, func(tb testing.TB) { CheckLeftOut(tb, e, []byte(tt.body), tt.log) })
			if len(failed) == 0 || !strings.Contains(strings.Join(failed, "\n"), tt.want) {
				t.Errorf("failures %q, want %q", failed, tt.want)
			}
		})
	}
}
