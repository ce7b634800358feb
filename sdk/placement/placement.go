// Package placement is the bookkeeping of a scheduler plugin
// (sdk.Scheduler) within one Place call: its own view of every worker, kept
// up to date after each placement, and the rules every placement follows,
// so that schedulers differ only in how they choose among the workers a job
// fits on. It holds no policy: which of those workers wins is the plugin's.
//
// The rules:
//
//   - Workers with id 0, and every repeat of an id after its first
//     occurrence, are ignored: never chosen, counted nowhere.
//   - A worker is eligible for a job when it offers the job's runtime and,
//     when the job names a zone, is in that zone.
//   - An eligible worker fits a job when its free room (capacity − used,
//     CPU and memory) covers what the job needs there: the job's cpu and
//     memory, or, on a worker where the job's app already holds capacity,
//     only the growth (the job's amount minus what the app holds, at least
//     0).
//   - What an app holds on a worker is the sum of the job's reservations
//     there, raised (each of CPU and memory to the larger) by what earlier
//     jobs of the same app took there in the same batch.
//   - Placing a job takes what it needed from the worker's free room, raises
//     the worker's CPU and memory percent by the same share of its capacity,
//     and counts one more running app there unless the app runs there
//     already (it is the job's current worker, or an earlier job of the app
//     in this batch went there).
//   - A job asking for a negative amount of CPU or memory fits nowhere.
//
// A plugin's Place, in outline:
//
//	b := placement.NewBatch(req.GetWorkers())
//	return placement.Run(ctx, req.GetJobs(), func(pj *pluginv1.PlaceJob) *pluginv1.Placement {
//		j, ok := b.Job(pj)
//		if !ok {
//			return b.Unplaced(pj)
//		}
//		best := choose(b, &j) // any worker w with j.FitsOn(w)
//		if best == nil {
//			return b.Unplaced(pj)
//		}
//		b.Take(&j, best)
//		return &pluginv1.Placement{JobId: pj.GetId(), WorkerId: best.ID}
//	})
//
// The package imports only the sdk and the standard library.
package placement

import (
	"context"
	"fmt"
	"slices"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// Need is an amount of CPU (millicores) and memory (bytes).
type Need struct {
	// CPU in millicores.
	CPU int64
	// Memory in bytes.
	Memory int64
}

// Covers reports whether n is at least m in both CPU and memory.
func (n Need) Covers(m Need) bool { return n.CPU >= m.CPU && n.Memory >= m.Memory }

// Worker is a batch's view of one worker: the request's values, with what
// the batch placed on it so far added in.
type Worker struct {
	// ID, Zone, CapacityCPU and CapacityMemory are the request's.
	ID                          int64
	Zone                        string
	CapacityCPU, CapacityMemory int64
	// Runtimes are the runtimes the worker offers, each once, in the
	// request's order. It may share the request's slice: do not modify it.
	Runtimes []string
	// UsedCPU and UsedMemory are the reserved capacity: the request's, plus
	// what the batch's placements took.
	UsedCPU, UsedMemory int64
	// CPUPercent and MemoryPercent are the live utilisation of the request
	// raised by the batch's placements (each adds its share of the
	// capacity).
	CPUPercent, MemoryPercent float64
	// RunningApps is the request's count plus the apps the batch placed
	// there that were not running there.
	RunningApps int64
	// Index is the worker's position in Batch.Workers, for plugins that keep
	// their own per-worker state in a slice.
	Index int
}

// Free returns the worker's free room: capacity minus used. A component is
// negative when the worker is over-committed.
func (w *Worker) Free() Need {
	return Need{CPU: w.CapacityCPU - w.UsedCPU, Memory: w.CapacityMemory - w.UsedMemory}
}

// Fits reports whether the worker's free room covers n.
func (w *Worker) Fits(n Need) bool { return w.Free().Covers(n) }

// Offers reports whether the worker offers runtime.
func (w *Worker) Offers(runtime string) bool { return slices.Contains(w.Runtimes, runtime) }

// Hold is capacity an app holds on a worker of the batch.
type Hold struct {
	// Worker is where the app holds it.
	Worker *Worker
	// Need is how much it holds.
	Need
}

// Job is a batch's view of the job being placed. Get it from Batch.Job.
type Job struct {
	// PB is the request's job.
	PB *pluginv1.PlaceJob
	// Need is the job's full amount: its cpu and memory.
	Need Need
	// Holds are the batch's workers where the job's app holds capacity, each
	// once (see the package doc). The slice is the batch's scratch space,
	// valid until its next call to Job.
	Holds []Hold
}

// Eligible reports whether w offers the job's runtime and is in the job's
// zone, if the job names one. It says nothing about room.
func (j *Job) Eligible(w *Worker) bool {
	return w.Offers(j.PB.GetRuntime()) && (j.PB.GetZone() == "" || w.Zone == j.PB.GetZone())
}

// Held returns what the job's app holds on w (zero when nothing).
func (j *Job) Held(w *Worker) Need {
	for _, h := range j.Holds {
		if h.Worker == w {
			return h.Need
		}
	}
	return Need{}
}

// NeedOn returns what placing the job on w takes from w's free room: its
// full amount, less what its app holds there (never below 0).
func (j *Job) NeedOn(w *Worker) Need {
	h := j.Held(w)
	return Need{CPU: max(0, j.Need.CPU-h.CPU), Memory: max(0, j.Need.Memory-h.Memory)}
}

// FitsOn reports whether the job may go to w: w is eligible and has room
// for NeedOn(w).
func (j *Job) FitsOn(w *Worker) bool { return j.Eligible(w) && w.Fits(j.NeedOn(w)) }

// Batch is the state of one Place call. It is not safe for concurrent use.
type Batch struct {
	// Workers are the request's workers less the ignored ones (id 0, and
	// repeated ids after the first), in the request's order; Workers[i].Index
	// is i.
	Workers []*Worker

	byID map[int64]*Worker
	// For Reason, built on its first call: runtimes offered by some
	// worker, zones some worker is in, (zone, runtime) pairs some worker
	// offers.
	runtimes map[string]bool
	zones    map[string]bool
	zoneRT   map[[2]string]bool
	// placed records what this batch's placements hold, so a second job
	// for the same app sees the first one's placement: placed[app] is the
	// index in log of the app's latest entry, each entry links to the
	// app's previous one.
	placed map[int64]int
	log    []logEntry
	holds  []Hold // scratch for Job
}

type logEntry struct {
	Hold
	prev int // index of the app's previous entry, or -1
}

// NewBatch returns the view of workers before any placement. It copies what
// it needs: the request is never modified.
func NewBatch(workers []*pluginv1.PlaceWorker) *Batch {
	b := &Batch{
		Workers: make([]*Worker, 0, len(workers)),
		byID:    make(map[int64]*Worker, len(workers)),
		placed:  map[int64]int{},
	}
	ws := make([]Worker, len(workers))
	for i, pw := range workers {
		id := pw.GetId()
		if _, seen := b.byID[id]; seen || id == 0 {
			continue
		}
		w := &ws[i]
		*w = Worker{
			ID: id, Zone: pw.GetZone(),
			CapacityCPU: pw.GetCapacityCpu(), CapacityMemory: pw.GetCapacityMemory(),
			UsedCPU: pw.GetUsedCpu(), UsedMemory: pw.GetUsedMemory(),
			CPUPercent: pw.GetCpuPercent(), MemoryPercent: pw.GetMemoryPercent(),
			RunningApps: pw.GetRunningApps(),
			Index:       len(b.Workers),
		}
		w.Runtimes = distinct(pw.GetRuntimes())
		b.byID[id] = w
		b.Workers = append(b.Workers, w)
	}
	return b
}

// Worker returns the batch's worker with that id, or nil (an unknown or
// ignored id).
func (b *Batch) Worker(id int64) *Worker { return b.byID[id] }

// Job returns the batch's view of pj: its need and where its app holds
// capacity. ok is false when pj asks for a negative amount of CPU or
// memory: it fits nowhere.
func (b *Batch) Job(pj *pluginv1.PlaceJob) (j Job, ok bool) {
	j = Job{PB: pj, Need: Need{CPU: pj.GetCpu(), Memory: pj.GetMemory()}}
	if j.Need.CPU < 0 || j.Need.Memory < 0 {
		return j, false
	}
	holds := b.holds[:0]
	find := func(w *Worker) int {
		for i := range holds {
			if holds[i].Worker == w {
				return i
			}
		}
		holds = append(holds, Hold{Worker: w})
		return len(holds) - 1
	}
	for _, r := range pj.GetReserved() {
		w := b.byID[r.GetWorkerId()]
		if w == nil {
			continue
		}
		h := &holds[find(w)]
		h.CPU += max(0, r.GetCpu())
		h.Memory += max(0, r.GetMemory())
	}
	for i := b.first(pj.GetAppId()); i >= 0; i = b.log[i].prev {
		p := &b.log[i]
		h := &holds[find(p.Worker)]
		h.CPU, h.Memory = max(h.CPU, p.CPU), max(h.Memory, p.Memory)
	}
	b.holds = holds
	j.Holds = holds
	return j, true
}

// Take places j on w in the batch's view: it charges w with j.NeedOn(w),
// raises w's CPU and memory percent by that share of its capacity, and
// counts one more running app on w unless the app runs there already (w is
// the job's current worker, or an earlier job of the app in this batch went
// to w); newApp says whether it did. Later jobs of the same app see that the
// app holds the larger of what it held there and the job's amount.
//
// Take does not check that j fits on w: that is the caller's choice.
func (b *Batch) Take(j *Job, w *Worker) (newApp bool) {
	held := j.Held(w)
	add := j.NeedOn(w)
	w.UsedCPU += add.CPU
	w.UsedMemory += add.Memory
	if w.CapacityCPU > 0 {
		w.CPUPercent += 100 * float64(add.CPU) / float64(w.CapacityCPU)
	}
	if w.CapacityMemory > 0 {
		w.MemoryPercent += 100 * float64(add.Memory) / float64(w.CapacityMemory)
	}
	app := j.PB.GetAppId()
	now := Hold{Worker: w, Need: Need{CPU: max(held.CPU, j.Need.CPU), Memory: max(held.Memory, j.Need.Memory)}}
	i := b.first(app)
	for i >= 0 && b.log[i].Worker != w {
		i = b.log[i].prev
	}
	newApp = i < 0 && j.PB.GetCurrentWorkerId() != w.ID
	if i < 0 {
		b.log = append(b.log, logEntry{Hold: now, prev: b.first(app)})
		b.placed[app] = len(b.log) - 1
	} else {
		b.log[i].Hold = now
	}
	if newApp {
		w.RunningApps++
	}
	return newApp
}

// first returns the index in b.log of app's latest entry, or -1.
func (b *Batch) first(app int64) int {
	if i, ok := b.placed[app]; ok {
		return i
	}
	return -1
}

// distinct returns rs without repeats, in order: rs itself when it has
// none.
func distinct(rs []string) []string {
	for i, r := range rs {
		if slices.Contains(rs[:i], r) {
			out := slices.Clone(rs[:i])
			for _, r := range rs[i+1:] {
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return rs
}

// Unplaced returns pj's placement when it fits nowhere: worker 0 and
// Reason.
func (b *Batch) Unplaced(pj *pluginv1.PlaceJob) *pluginv1.Placement {
	return &pluginv1.Placement{JobId: pj.GetId(), Reason: b.Reason(pj)}
}

// Reason says why pj fits on no worker of the batch, the most specific cause
// first: a negative amount, no runtime, no worker offering the runtime, no
// worker in the zone, none there offering the runtime, and otherwise a lack
// of room.
func (b *Batch) Reason(pj *pluginv1.PlaceJob) string {
	if b.zones == nil {
		b.runtimes, b.zones, b.zoneRT = map[string]bool{}, map[string]bool{}, map[[2]string]bool{}
		for _, w := range b.Workers {
			b.zones[w.Zone] = true
			for _, r := range w.Runtimes {
				b.runtimes[r] = true
				b.zoneRT[[2]string{w.Zone, r}] = true
			}
		}
	}
	rt, zone := pj.GetRuntime(), pj.GetZone()
	switch {
	case pj.GetCpu() < 0 || pj.GetMemory() < 0:
		return "the job asks for a negative amount of cpu or memory"
	case rt == "":
		return "the job names no runtime"
	case !b.runtimes[rt]:
		return fmt.Sprintf("no worker offers runtime %s", rt)
	case zone != "" && !b.zones[zone]:
		return fmt.Sprintf("no worker in zone %s", zone)
	case zone != "" && !b.zoneRT[[2]string{zone, rt}]:
		return fmt.Sprintf("no worker in zone %s offers runtime %s", zone, rt)
	case zone != "":
		return fmt.Sprintf("no worker in zone %s has %d mCPU / %s free", zone, pj.GetCpu(), units.FormatSize(pj.GetMemory()))
	}
	return fmt.Sprintf("no worker has %d mCPU / %s free", pj.GetCpu(), units.FormatSize(pj.GetMemory()))
}

// CheckEvery is how many jobs Run places between two checks of its
// context.
const CheckEvery = 256

// Run calls place for each job in order and returns the placements, one per
// job in the jobs' order. It checks ctx before the first job and then every
// CheckEvery jobs, and returns ctx's error, and no placements, once it is
// done.
func Run(ctx context.Context, jobs []*pluginv1.PlaceJob, place func(*pluginv1.PlaceJob) *pluginv1.Placement) ([]*pluginv1.Placement, error) {
	out := make([]*pluginv1.Placement, 0, len(jobs))
	for i, j := range jobs {
		if i%CheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out = append(out, place(j))
	}
	return out, nil
}

// Misses remembers needs that fit on no worker of a set of workers. Room
// only shrinks during a batch, so a need at least as large, in both CPU and
// memory, as one that missed misses too, and a plugin can answer it without
// looking. The zero value is empty and ready to use.
type Misses struct {
	needs []Need // pairwise incomparable; at most maxMisses
}

const maxMisses = 16

// Covers reports whether n is known to fit nowhere in the set: it is at
// least a need that missed.
func (m *Misses) Covers(n Need) bool {
	for _, f := range m.needs {
		if n.Covers(f) {
			return true
		}
	}
	return false
}

// Add records that n fits nowhere in the set. Only the smallest misses are
// kept, and at most a few: forgetting one costs a search, never a wrong
// answer.
func (m *Misses) Add(n Need) {
	kept := m.needs[:0]
	for _, f := range m.needs {
		if !f.Covers(n) { // f is not implied by n
			kept = append(kept, f)
		}
	}
	m.needs = kept
	if len(m.needs) < maxMisses {
		m.needs = append(m.needs, n)
	}
}
