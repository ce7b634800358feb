package placementtest

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// recorder is a testing.TB that remembers the first failure.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, args ...any) {
	r.failed = fmt.Sprintf(f, args...)
	runtime.Goexit()
}
func (r *recorder) Errorf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func check(jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker, got []*pluginv1.Placement) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CheckValid(r, jobs, workers, got)
	}()
	<-done
	return r.failed
}

func TestCheckValid(t *testing.T) {
	workers := []*pluginv1.PlaceWorker{Worker(1, Used(3500, 0)), Worker(2, Runtimes("podman"), Zone("b"))}
	place := func(ws ...int64) []*pluginv1.Placement {
		var out []*pluginv1.Placement
		for i, w := range ws {
			p := &pluginv1.Placement{JobId: int64(i + 1), WorkerId: w}
			if w == 0 {
				p.Reason = "no room"
			}
			out = append(out, p)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		jobs []*pluginv1.PlaceJob
		got  []*pluginv1.Placement
		fail bool
	}{
		{"fits", []*pluginv1.PlaceJob{Job(1, Size(500, GiB))}, place(1), false},
		{"growth only where the app holds", []*pluginv1.PlaceJob{Job(1, Reserved(1, 1000, GiB))}, place(1), false},
		{"overcommit", []*pluginv1.PlaceJob{Job(1)}, place(1), true},
		{"second job overcommits", []*pluginv1.PlaceJob{Job(1, Size(300, 0)), Job(2, Size(300, 0))}, place(1, 1), true},
		{"runtime", []*pluginv1.PlaceJob{Job(1, Size(1, 1))}, place(2), true},
		{"zone", []*pluginv1.PlaceJob{Job(1, Runtime("podman"), InZone("a"))}, place(2), true},
		{"unknown worker", []*pluginv1.PlaceJob{Job(1)}, place(9), true},
		{"unplaced with a reason", []*pluginv1.PlaceJob{Job(1)}, place(0), false},
		{"unplaced without a reason", []*pluginv1.PlaceJob{Job(1)}, []*pluginv1.Placement{{JobId: 1}}, true},
		{"missing placement", []*pluginv1.PlaceJob{Job(1), Job(2)}, place(0), true},
	} {
		if failed := check(tc.jobs, workers, tc.got); (failed != "") != tc.fail {
			t.Errorf("%s: CheckValid failure %q, want failure %v", tc.name, failed, tc.fail)
		}
	}
}
