// Package placementtest is a test kit for scheduler plugins: builders for
// hand-made batches (Worker and Job with their options) and CheckValid,
// which replays a batch's placements against the rules every scheduler must
// keep whatever its policy (see package placement).
package placementtest

import (
	"slices"
	"testing"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// GiB is a gibibyte, in bytes.
const GiB = 1 << 30

// Worker builds a worker offering exec with 4000 mCPU and 8 GiB, then applies opts.
func Worker(id int64, opts ...func(*pluginv1.PlaceWorker)) *pluginv1.PlaceWorker {
	w := &pluginv1.PlaceWorker{Id: id, Runtimes: []string{"exec"}, CapacityCpu: 4000, CapacityMemory: 8 * GiB}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Used sets what is reserved on the worker.
func Used(cpu, mem int64) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.UsedCpu, w.UsedMemory = cpu, mem }
}

// Capacity sets the worker's capacity.
func Capacity(cpu, mem int64) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.CapacityCpu, w.CapacityMemory = cpu, mem }
}

// Apps sets the worker's running apps.
func Apps(n int64) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.RunningApps = n }
}

// Load sets the worker's live CPU and memory percent and running apps.
func Load(cpu, mem float64, apps int64) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.CpuPercent, w.MemoryPercent, w.RunningApps = cpu, mem, apps }
}

// Zone puts the worker in zone z.
func Zone(z string) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.Zone = z }
}

// Runtimes sets the runtimes the worker offers.
func Runtimes(rs ...string) func(*pluginv1.PlaceWorker) {
	return func(w *pluginv1.PlaceWorker) { w.Runtimes = rs }
}

// Job builds an exec deploy job for app 100+id asking 1000 mCPU and 1 GiB, then applies opts.
func Job(id int64, opts ...func(*pluginv1.PlaceJob)) *pluginv1.PlaceJob {
	j := &pluginv1.PlaceJob{Id: id, AppId: 100 + id, Type: "deploy", Runtime: "exec", Cpu: 1000, Memory: GiB}
	for _, o := range opts {
		o(j)
	}
	return j
}

// Size sets what the job asks for.
func Size(cpu, mem int64) func(*pluginv1.PlaceJob) {
	return func(j *pluginv1.PlaceJob) { j.Cpu, j.Memory = cpu, mem }
}

// App sets the job's app.
func App(id int64) func(*pluginv1.PlaceJob) { return func(j *pluginv1.PlaceJob) { j.AppId = id } }

// InZone restricts the job to zone z.
func InZone(z string) func(*pluginv1.PlaceJob) { return func(j *pluginv1.PlaceJob) { j.Zone = z } }

// Runtime sets the runtime the job needs.
func Runtime(r string) func(*pluginv1.PlaceJob) { return func(j *pluginv1.PlaceJob) { j.Runtime = r } }

// Current sets the worker the app runs on now.
func Current(w int64) func(*pluginv1.PlaceJob) {
	return func(j *pluginv1.PlaceJob) { j.CurrentWorkerId = w }
}

// Reserved adds capacity the app already holds on worker w.
func Reserved(w, cpu, mem int64) func(*pluginv1.PlaceJob) {
	return func(j *pluginv1.PlaceJob) {
		j.Reserved = append(j.Reserved, &pluginv1.Reservation{WorkerId: w, Cpu: cpu, Memory: mem})
	}
}

// CheckValid replays placements and fails t when one breaks a rule: one
// placement per job in order, the worker must exist, offer the job's
// runtime, be in the job's zone and have room for what the job takes there
// (only the growth where its app already holds capacity); an unplaced job
// needs a reason.
func CheckValid(t testing.TB, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker, got []*pluginv1.Placement) {
	t.Helper()
	if len(got) != len(jobs) {
		t.Fatalf("%d placements for %d jobs", len(got), len(jobs))
	}
	type room struct{ cpu, mem int64 }
	free := map[int64]*room{}
	byID := map[int64]*pluginv1.PlaceWorker{}
	for _, w := range workers {
		if _, dup := byID[w.GetId()]; !dup && w.GetId() != 0 {
			byID[w.GetId()] = w
			free[w.GetId()] = &room{w.GetCapacityCpu() - w.GetUsedCpu(), w.GetCapacityMemory() - w.GetUsedMemory()}
		}
	}
	held := map[[2]int64]room{} // (app, worker) → reserved
	for _, j := range jobs {
		for _, r := range j.GetReserved() {
			k := [2]int64{j.GetAppId(), r.GetWorkerId()}
			h := held[k]
			held[k] = room{h.cpu + max(0, r.GetCpu()), h.mem + max(0, r.GetMemory())}
		}
	}
	for i, pl := range got {
		j := jobs[i]
		if pl.GetJobId() != j.GetId() {
			t.Fatalf("placement %d is for job %d, want %d", i, pl.GetJobId(), j.GetId())
		}
		if pl.GetWorkerId() == 0 {
			if pl.GetReason() == "" {
				t.Errorf("job %d: unplaced without a reason", j.GetId())
			}
			continue
		}
		w := byID[pl.GetWorkerId()]
		switch {
		case w == nil:
			t.Fatalf("job %d: unknown worker %d", j.GetId(), pl.GetWorkerId())
		case !slices.Contains(w.GetRuntimes(), j.GetRuntime()):
			t.Fatalf("job %d (%s) on worker %d without that runtime", j.GetId(), j.GetRuntime(), w.GetId())
		case j.GetZone() != "" && w.GetZone() != j.GetZone():
			t.Fatalf("job %d (zone %s) on worker %d in zone %q", j.GetId(), j.GetZone(), w.GetId(), w.GetZone())
		}
		k := [2]int64{j.GetAppId(), w.GetId()}
		h := held[k]
		c, m := max(0, j.GetCpu()-h.cpu), max(0, j.GetMemory()-h.mem)
		f := free[w.GetId()]
		if f.cpu < c || f.mem < m {
			t.Fatalf("job %d needs %d/%d on worker %d which has %d/%d free", j.GetId(), c, m, w.GetId(), f.cpu, f.mem)
		}
		f.cpu -= c
		f.mem -= m
		held[k] = room{max(h.cpu, j.GetCpu()), max(h.mem, j.GetMemory())}
	}
}
