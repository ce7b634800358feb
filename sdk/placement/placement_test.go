package placement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const gib = int64(1) << 30

func pw(id int64, zone string, runtimes ...string) *pluginv1.PlaceWorker {
	return &pluginv1.PlaceWorker{Id: id, Zone: zone, Runtimes: runtimes, CapacityCpu: 4000, CapacityMemory: 8 * gib}
}

func ids(ws []*Worker) []int64 {
	out := make([]int64, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func TestNewBatch(t *testing.T) {
	first := pw(3, "a", "exec")
	first.UsedCpu, first.UsedMemory, first.CpuPercent, first.MemoryPercent, first.RunningApps = 1000, gib, 12.5, 25, 4
	workers := []*pluginv1.PlaceWorker{
		pw(0, "z", "exec"), first, pw(5, "", "podman", "exec", "podman"), pw(3, "b", "podman"), pw(7, "a"),
	}
	b := NewBatch(workers)
	if got, want := ids(b.Workers), []int64{3, 5, 7}; !slices.Equal(got, want) {
		t.Fatalf("workers %v, want %v (id 0 and the repeat of 3 left out)", got, want)
	}
	for i, w := range b.Workers {
		if w.Index != i {
			t.Errorf("worker %d has index %d, want %d", w.ID, w.Index, i)
		}
		if b.Worker(w.ID) != w {
			t.Errorf("Worker(%d) is not Workers[%d]", w.ID, i)
		}
	}
	if b.Worker(0) != nil || b.Worker(42) != nil {
		t.Error("Worker finds an ignored or unknown id")
	}
	w3 := b.Worker(3)
	if w3.Zone != "a" || w3.UsedCPU != 1000 || w3.UsedMemory != gib || w3.CPUPercent != 12.5 || w3.MemoryPercent != 25 || w3.RunningApps != 4 {
		t.Errorf("worker 3 = %+v, want the first occurrence's values", *w3)
	}
	if got := w3.Free(); got != (Need{CPU: 3000, Memory: 7 * gib}) {
		t.Errorf("Free = %+v", got)
	}
	if got := b.Worker(5).Runtimes; !slices.Equal(got, []string{"podman", "exec"}) {
		t.Errorf("runtimes %v, want each once in order", got)
	}
	if !b.Worker(5).Offers("exec") || b.Worker(7).Offers("exec") || b.Worker(3).Offers("podman") {
		t.Error("Offers is wrong")
	}
	// The request is untouched.
	if got := workers[2].GetRuntimes(); !slices.Equal(got, []string{"podman", "exec", "podman"}) {
		t.Errorf("the request's runtimes changed to %v", got)
	}
}

func TestFits(t *testing.T) {
	w := &Worker{CapacityCPU: 4000, CapacityMemory: 8 * gib, UsedCPU: 3000, UsedMemory: 6 * gib}
	for _, c := range []struct {
		n    Need
		fits bool
	}{
		{Need{}, true},
		{Need{1000, 2 * gib}, true},
		{Need{1001, 0}, false},
		{Need{0, 2*gib + 1}, false},
	} {
		if got := w.Fits(c.n); got != c.fits {
			t.Errorf("Fits(%+v) = %v", c.n, got)
		}
	}
	over := &Worker{CapacityCPU: 4000, CapacityMemory: 8 * gib, UsedCPU: 4001}
	if over.Fits(Need{}) {
		t.Error("an over-committed worker fits nothing, not even nothing")
	}
}

func TestJob(t *testing.T) {
	b := NewBatch([]*pluginv1.PlaceWorker{pw(1, "a", "exec"), pw(2, "b", "exec"), pw(3, "a", "podman")})
	pj := &pluginv1.PlaceJob{Id: 9, AppId: 4, Runtime: "exec", Cpu: 2000, Memory: 2 * gib, Reserved: []*pluginv1.Reservation{
		{WorkerId: 1, Cpu: 500, Memory: gib},
		{WorkerId: 1, Cpu: 500, Memory: -gib}, // summed per worker; a negative amount counts as 0
		{WorkerId: 2, Cpu: 3000, Memory: 0},
		{WorkerId: 2, Cpu: -700, Memory: 0},
		{WorkerId: 42, Cpu: 1000, Memory: gib}, // not a worker of the batch
	}}
	j, ok := b.Job(pj)
	if !ok || j.PB != pj || j.Need != (Need{2000, 2 * gib}) {
		t.Fatalf("Job = %+v, %v", j, ok)
	}
	if len(j.Holds) != 2 {
		t.Fatalf("holds %+v, want workers 1 and 2", j.Holds)
	}
	w1, w2, w3 := b.Worker(1), b.Worker(2), b.Worker(3)
	for _, c := range []struct {
		w          *Worker
		held, need Need
	}{
		{w1, Need{1000, gib}, Need{1000, gib}},
		{w2, Need{3000, 0}, Need{0, 2 * gib}}, // the growth is never negative
		{w3, Need{}, Need{2000, 2 * gib}},
	} {
		if got := j.Held(c.w); got != c.held {
			t.Errorf("Held(%d) = %+v, want %+v", c.w.ID, got, c.held)
		}
		if got := j.NeedOn(c.w); got != c.need {
			t.Errorf("NeedOn(%d) = %+v, want %+v", c.w.ID, got, c.need)
		}
	}
	if !j.Eligible(w1) || !j.Eligible(w2) || j.Eligible(w3) {
		t.Error("Eligible: exec is offered by 1 and 2, not 3")
	}
	pj.Zone = "a"
	if !j.Eligible(w1) || j.Eligible(w2) {
		t.Error("Eligible: a zoned job takes only its zone's workers")
	}
	w1.UsedCPU = 3000 // 1000 free: enough for the growth only
	if !j.FitsOn(w1) || j.FitsOn(w3) {
		t.Error("FitsOn is wrong")
	}

	for _, neg := range []*pluginv1.PlaceJob{{Cpu: -1}, {Memory: -1}} {
		if _, ok := b.Job(neg); ok {
			t.Errorf("Job(%v) is ok", neg)
		}
	}
}

func TestTake(t *testing.T) {
	workers := []*pluginv1.PlaceWorker{pw(1, "a", "exec"), pw(2, "a", "exec"), pw(3, "a", "exec")}
	workers[2].CapacityCpu = 0
	b := NewBatch(workers)
	w1, w2, w3 := b.Worker(1), b.Worker(2), b.Worker(3)
	take := func(pj *pluginv1.PlaceJob, w *Worker) bool {
		t.Helper()
		j, ok := b.Job(pj)
		if !ok {
			t.Fatal("not ok")
		}
		return b.Take(&j, w)
	}

	// A new app: the full amount, its share of the capacity, one more app.
	if !take(&pluginv1.PlaceJob{AppId: 1, Cpu: 1000, Memory: 2 * gib}, w1) {
		t.Error("a new app is not counted")
	}
	if w1.UsedCPU != 1000 || w1.UsedMemory != 2*gib || w1.CPUPercent != 25 || w1.MemoryPercent != 25 || w1.RunningApps != 1 {
		t.Errorf("after a new app: %+v", *w1)
	}
	// The same app again, bigger: only the growth, and not a new app.
	if take(&pluginv1.PlaceJob{AppId: 1, Cpu: 1500, Memory: gib}, w1) {
		t.Error("the second job of an app is counted as a new app")
	}
	if w1.UsedCPU != 1500 || w1.UsedMemory != 2*gib || w1.CPUPercent != 37.5 || w1.RunningApps != 1 {
		t.Errorf("after the growth: %+v", *w1)
	}
	// A third job of the app sees what the first two hold: the larger of each.
	j, _ := b.Job(&pluginv1.PlaceJob{AppId: 1, Cpu: 0, Memory: 0})
	if got := j.Held(w1); got != (Need{1500, 2 * gib}) {
		t.Errorf("held after two jobs: %+v", got)
	}
	// Elsewhere, the app is new again.
	if !take(&pluginv1.PlaceJob{AppId: 1, Cpu: 1000, Memory: gib}, w2) {
		t.Error("the app on another worker is not counted there")
	}
	// An app restarted where it runs, holding a reservation: nothing taken,
	// no new app.
	if take(&pluginv1.PlaceJob{AppId: 2, Cpu: 500, Memory: gib, CurrentWorkerId: 2,
		Reserved: []*pluginv1.Reservation{{WorkerId: 2, Cpu: 500, Memory: gib}}}, w2) {
		t.Error("an app where it runs is counted as new")
	}
	if w2.UsedCPU != 1000 || w2.UsedMemory != gib || w2.RunningApps != 1 {
		t.Errorf("after the restart: %+v", *w2)
	}
	// Without capacity there is no percent to raise.
	take(&pluginv1.PlaceJob{AppId: 3, Cpu: 0, Memory: gib}, w3)
	if w3.CPUPercent != 0 || w3.MemoryPercent != 12.5 {
		t.Errorf("a worker without CPU capacity: %+v", *w3)
	}
}

func TestReason(t *testing.T) {
	b := NewBatch([]*pluginv1.PlaceWorker{pw(1, "eu-1", "exec"), pw(2, "us-1", "podman")})
	for _, c := range []struct {
		job  *pluginv1.PlaceJob
		want string
	}{
		{&pluginv1.PlaceJob{Runtime: "exec", Cpu: -1}, "the job asks for a negative amount of cpu or memory"},
		{&pluginv1.PlaceJob{Runtime: "", Memory: -1}, "the job asks for a negative amount of cpu or memory"},
		{&pluginv1.PlaceJob{Runtime: ""}, "the job names no runtime"},
		{&pluginv1.PlaceJob{Runtime: "lxc", Zone: "nowhere"}, "no worker offers runtime lxc"},
		{&pluginv1.PlaceJob{Runtime: "exec", Zone: "nowhere"}, "no worker in zone nowhere"},
		{&pluginv1.PlaceJob{Runtime: "exec", Zone: "us-1"}, "no worker in zone us-1 offers runtime exec"},
		{&pluginv1.PlaceJob{Runtime: "exec", Zone: "eu-1", Cpu: 500, Memory: 3 * gib / 2}, "no worker in zone eu-1 has 500 mCPU / 1536MiB free"},
		{&pluginv1.PlaceJob{Runtime: "podman", Cpu: 8000, Memory: gib}, "no worker has 8000 mCPU / 1GiB free"},
	} {
		if got := b.Reason(c.job); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.job, got, c.want)
		}
	}
	pl := b.Unplaced(&pluginv1.PlaceJob{Id: 7, Runtime: "lxc"})
	if pl.GetJobId() != 7 || pl.GetWorkerId() != 0 || pl.GetReason() != "no worker offers runtime lxc" {
		t.Errorf("Unplaced = %v", pl)
	}
}

func TestRun(t *testing.T) {
	jobs := make([]*pluginv1.PlaceJob, 2*CheckEvery+1)
	for i := range jobs {
		jobs[i] = &pluginv1.PlaceJob{Id: int64(i + 1)}
	}
	got, err := Run(context.Background(), jobs, func(pj *pluginv1.PlaceJob) *pluginv1.Placement {
		return &pluginv1.Placement{JobId: pj.GetId(), WorkerId: 100 + pj.GetId()}
	})
	if err != nil || len(got) != len(jobs) {
		t.Fatalf("Run = %d placements, %v", len(got), err)
	}
	for i, pl := range got {
		if pl.GetJobId() != int64(i+1) || pl.GetWorkerId() != int64(101+i) {
			t.Fatalf("placement %d = %v", i, pl)
		}
	}

	// A cancelled context stops Run before the first job and at the next
	// check.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := Run(ctx, jobs[:1], nil); !errors.Is(err, context.Canceled) || got != nil {
		t.Errorf("cancelled: %v, %v", got, err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err = Run(ctx, jobs, func(pj *pluginv1.PlaceJob) *pluginv1.Placement {
		calls++
		if calls == 10 {
			cancel()
		}
		return &pluginv1.Placement{JobId: pj.GetId()}
	})
	if !errors.Is(err, context.Canceled) || calls != CheckEvery {
		t.Errorf("cancelled during the batch: %v after %d calls, want the error after %d", err, calls, CheckEvery)
	}
}

func TestMisses(t *testing.T) {
	var m Misses
	if m.Covers(Need{}) {
		t.Error("an empty Misses covers a need")
	}
	m.Add(Need{1000, 2 * gib})
	m.Add(Need{3000, gib})
	for _, c := range []struct {
		n    Need
		want bool
	}{
		{Need{1000, 2 * gib}, true},
		{Need{5000, 3 * gib}, true},
		{Need{3000, gib}, true},
		{Need{999, 100 * gib}, false},
		{Need{2000, gib}, false},
	} {
		if got := m.Covers(c.n); got != c.want {
			t.Errorf("Covers(%+v) = %v", c.n, got)
		}
	}
	// A smaller miss replaces the ones it implies.
	m.Add(Need{500, gib / 2})
	if len(m.needs) != 1 || !m.Covers(Need{2000, gib}) {
		t.Errorf("after a smaller miss: %+v", m.needs)
	}
	// It keeps at most a few.
	for i := range int64(100) {
		m.Add(Need{CPU: 100 - i, Memory: 10 * i * gib})
	}
	if len(m.needs) > maxMisses {
		t.Errorf("%d misses kept", len(m.needs))
	}
}

// A first-fit scheduler: each job goes to the first worker it fits on.
func Example() {
	req := &pluginv1.PlaceRequest{
		Jobs: []*pluginv1.PlaceJob{
			{Id: 1, AppId: 10, Runtime: "exec", Cpu: 3000, Memory: gib},
			{Id: 2, AppId: 11, Runtime: "exec", Cpu: 3000, Memory: gib},
			{Id: 3, AppId: 10, Runtime: "exec", Cpu: 3500, Memory: gib}, // grows app 10
			{Id: 4, AppId: 12, Runtime: "exec", Cpu: 3000, Memory: gib},
		},
		Workers: []*pluginv1.PlaceWorker{
			{Id: 1, Runtimes: []string{"exec"}, CapacityCpu: 4000, CapacityMemory: 8 * gib},
			{Id: 2, Runtimes: []string{"exec"}, CapacityCpu: 4000, CapacityMemory: 8 * gib},
		},
	}
	b := NewBatch(req.GetWorkers())
	placements, _ := Run(context.Background(), req.GetJobs(), func(pj *pluginv1.PlaceJob) *pluginv1.Placement {
		j, ok := b.Job(pj)
		if !ok {
			return b.Unplaced(pj)
		}
		for _, w := range b.Workers {
			if j.FitsOn(w) {
				b.Take(&j, w)
				return &pluginv1.Placement{JobId: pj.GetId(), WorkerId: w.ID}
			}
		}
		return b.Unplaced(pj)
	})
	for _, pl := range placements {
		if pl.GetWorkerId() != 0 {
			fmt.Printf("job %d: worker %d\n", pl.GetJobId(), pl.GetWorkerId())
		} else {
			fmt.Printf("job %d: %s\n", pl.GetJobId(), pl.GetReason())
		}
	}
	// Output:
	// job 1: worker 1
	// job 2: worker 2
	// job 3: worker 1
	// job 4: no worker has 3000 mCPU / 1GiB free
}
