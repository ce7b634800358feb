package leastloaded

import (
	"context"
	"fmt"
	"slices"

	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
	"github.com/wisehosting/wisehosting/sdk/units"
)

// How place finds the best worker without rescanning the fleet per job:
//
//   - Workers are grouped by (runtime, zone) and by (runtime, any zone); each
//     group is a binary min-heap ordered by (score, running apps, id). A job
//     looks only at its group.
//   - The best worker of a group that has room for the job's full amount is
//     found by walking the heap in order from the root (a small side heap of
//     frontier positions) until the first worker that fits; the group heap
//     itself is not modified.
//   - Workers where the app already holds a reservation are checked one by
//     one with the reduced need (the growth only); there are few.
//   - After a placement only the chosen worker changes: its score can only
//     grow, and it is re-sifted in each of its groups (or dropped from them
//     when it can no longer hold the smallest job of the batch).
//   - Room only shrinks during a batch, so when no worker of a group has
//     room for (cpu, memory), no later job needing at least as much in both
//     does either: such jobs are answered without walking the heap.

// worker is the batch's view of one worker.
type worker struct {
	id       int64
	zone     string
	runtimes []string // distinct
	capCPU   int64
	capMem   int64
	usedCPU  int64
	usedMem  int64
	cpuPct   float64
	memPct   float64
	apps     int64
	score    float64
	pos      []int // pos[k] is the index of this worker in groups[k]
	groups   []*group
	inHeaps  bool
	ignored  bool // id 0, or an id seen before: never chosen
}

// fits reports whether the worker has room for cpu millicores and mem bytes.
func (w *worker) fits(cpu, mem int64) bool {
	return w.capCPU-w.usedCPU >= cpu && w.capMem-w.usedMem >= mem
}

// offers reports whether the worker offers runtime.
func (w *worker) offers(runtime string) bool { return slices.Contains(w.runtimes, runtime) }

// better orders workers: lower score, then fewer running apps, then lower id.
func better(a, b *worker) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	if a.apps != b.apps {
		return a.apps < b.apps
	}
	return a.id < b.id
}

type groupKey struct {
	runtime string
	zone    string
	anyZone bool
}

// member is an entry of a group heap: the worker and which of its slots
// (pos index) belongs to this group.
type member struct {
	w    *worker
	slot int
}

// group is a min-heap of workers (see better) plus the needs that are known
// not to fit anywhere in it.
type group struct {
	heap   []member
	failed []need // pairwise incomparable; bounded by maxFailed
}

type need struct{ cpu, mem int64 }

const maxFailed = 16

func (g *group) less(i, j int) bool { return better(g.heap[i].w, g.heap[j].w) }

func (g *group) swap(i, j int) {
	g.heap[i], g.heap[j] = g.heap[j], g.heap[i]
	g.heap[i].w.pos[g.heap[i].slot] = i
	g.heap[j].w.pos[g.heap[j].slot] = j
}

func (g *group) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !g.less(i, parent) {
			return
		}
		g.swap(i, parent)
		i = parent
	}
}

func (g *group) down(i int) {
	n := len(g.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && g.less(r, l) {
			m = r
		}
		if !g.less(m, i) {
			return
		}
		g.swap(i, m)
		i = m
	}
}

func (g *group) init() {
	for i := len(g.heap)/2 - 1; i >= 0; i-- {
		g.down(i)
	}
}

// fix restores the heap after the worker at i changed.
func (g *group) fix(i int) {
	g.down(i)
	g.up(i)
}

// remove drops the entry at i.
func (g *group) remove(i int) {
	last := len(g.heap) - 1
	if i != last {
		g.swap(i, last)
	}
	g.heap[last].w.pos[g.heap[last].slot] = -1
	g.heap = g.heap[:last]
	if i != last {
		g.fix(i)
	}
}

// knownFailure reports whether a need at most n in both dimensions is known
// not to fit anywhere in the group.
func (g *group) knownFailure(n need) bool {
	for _, f := range g.failed {
		if n.cpu >= f.cpu && n.mem >= f.mem {
			return true
		}
	}
	return false
}

// addFailure records that n fits nowhere in the group.
func (g *group) addFailure(n need) {
	kept := g.failed[:0]
	for _, f := range g.failed {
		if f.cpu < n.cpu || f.mem < n.mem { // f is not dominated by n
			kept = append(kept, f)
		}
	}
	g.failed = kept
	if len(g.failed) < maxFailed {
		g.failed = append(g.failed, n)
	}
}

// bestFit returns the best worker of the group with room for n, or nil. It
// walks the heap in order using frontier (reused scratch) as a side heap of
// positions.
func (g *group) bestFit(n need, frontier *[]int) *worker {
	if len(g.heap) == 0 {
		return nil
	}
	if w := g.heap[0].w; w.fits(n.cpu, n.mem) {
		return w
	}
	f := append((*frontier)[:0], 0)
	defer func() { *frontier = f[:0] }()
	lessPos := func(i, j int) bool { return better(g.heap[f[i]].w, g.heap[f[j]].w) }
	for len(f) > 0 {
		// Pop the frontier's best position.
		top := f[0]
		last := len(f) - 1
		f[0] = f[last]
		f = f[:last]
		for i := 0; ; {
			l := 2*i + 1
			if l >= len(f) {
				break
			}
			m := l
			if r := l + 1; r < len(f) && lessPos(r, l) {
				m = r
			}
			if !lessPos(m, i) {
				break
			}
			f[i], f[m] = f[m], f[i]
			i = m
		}
		if w := g.heap[top].w; w.fits(n.cpu, n.mem) {
			return w
		}
		for _, c := range [2]int{2*top + 1, 2*top + 2} {
			if c >= len(g.heap) {
				continue
			}
			f = append(f, c)
			for i := len(f) - 1; i > 0; {
				parent := (i - 1) / 2
				if !lessPos(i, parent) {
					break
				}
				f[i], f[parent] = f[parent], f[i]
				i = parent
			}
		}
	}
	return nil
}

// reservation is capacity an app holds on a worker.
type reservation struct {
	worker int64
	cpu    int64
	mem    int64
}

// batch is the state of one Place call.
type batch struct {
	weights  Weights
	maxApps  float64
	byID     map[int64]*worker
	groups   map[groupKey]*group
	minNeed  need
	runtimes map[string]bool    // offered by some worker
	zones    map[string]bool    // some worker is in the zone
	zoneRT   map[[2]string]bool // some worker in zone offers runtime
	// placed records, per app, the reservations this batch made, so a
	// second job for the same app sees the first one's placement.
	placed   map[int64][]reservation
	frontier []int
	res      []reservation // scratch
}

// scoreOf is the seed's weighted load score of w (lower is better). The
// explicit conversions keep the compiler from fusing multiply-adds, so the
// result does not depend on the platform.
func (b *batch) scoreOf(w *worker) float64 {
	appsNorm := 100 * float64(w.apps) / b.maxApps
	return float64(b.weights.CPU*w.cpuPct) + float64(b.weights.Memory*w.memPct) + float64(b.weights.Apps*appsNorm)
}

func place(ctx context.Context, weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) ([]*pluginv1.Placement, error) {
	b := newBatch(weights, jobs, workers)
	out := make([]*pluginv1.Placement, 0, len(jobs))
	for i, j := range jobs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out = append(out, b.placeJob(j))
	}
	return out, nil
}

func newBatch(weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) *batch {
	b := &batch{
		weights:  weights,
		maxApps:  1,
		byID:     make(map[int64]*worker, len(workers)),
		groups:   map[groupKey]*group{},
		runtimes: map[string]bool{},
		zones:    map[string]bool{},
		zoneRT:   map[[2]string]bool{},
		placed:   map[int64][]reservation{},
	}
	// The smallest full need of the batch: a worker without room for it
	// can only take jobs of apps reserved on it, which are checked directly.
	first := true
	for _, j := range jobs {
		if j.GetCpu() < 0 || j.GetMemory() < 0 {
			continue
		}
		if first {
			b.minNeed, first = need{j.GetCpu(), j.GetMemory()}, false
			continue
		}
		b.minNeed.cpu = min(b.minNeed.cpu, j.GetCpu())
		b.minNeed.mem = min(b.minNeed.mem, j.GetMemory())
	}
	ws := make([]worker, len(workers))
	for i, pw := range workers {
		w := &ws[i]
		*w = worker{
			id: pw.GetId(), zone: pw.GetZone(),
			capCPU: pw.GetCapacityCpu(), capMem: pw.GetCapacityMemory(),
			usedCPU: pw.GetUsedCpu(), usedMem: pw.GetUsedMemory(),
			cpuPct: pw.GetCpuPercent(), memPct: pw.GetMemoryPercent(),
			apps: pw.GetRunningApps(),
		}
		for _, r := range pw.GetRuntimes() {
			if !slices.Contains(w.runtimes, r) {
				w.runtimes = append(w.runtimes, r)
			}
		}
		if _, seen := b.byID[w.id]; seen || w.id == 0 {
			w.ignored = true
			continue
		}
		b.byID[w.id] = w
		b.maxApps = max(b.maxApps, float64(w.apps))
		b.zones[w.zone] = true
		for _, r := range w.runtimes {
			b.runtimes[r] = true
			b.zoneRT[[2]string{w.zone, r}] = true
		}
	}
	for i := range ws {
		w := &ws[i]
		w.score = b.scoreOf(w)
		if w.ignored || !w.fits(b.minNeed.cpu, b.minNeed.mem) {
			continue
		}
		w.inHeaps = true
		w.pos = make([]int, 0, 2*len(w.runtimes))
		w.groups = make([]*group, 0, 2*len(w.runtimes))
		for _, r := range w.runtimes {
			keys := []groupKey{{runtime: r, anyZone: true}, {runtime: r, zone: w.zone}}
			if w.zone == "" {
				keys = keys[:1] // zoned jobs never look at it
			}
			for _, k := range keys {
				g := b.groups[k]
				if g == nil {
					g = &group{heap: make([]member, 0, len(ws))}
					b.groups[k] = g
				}
				w.pos = append(w.pos, len(g.heap))
				g.heap = append(g.heap, member{w: w, slot: len(w.groups)})
				w.groups = append(w.groups, g)
			}
		}
	}
	for _, g := range b.groups {
		g.init()
	}
	return b
}

// reservations returns where the job's app holds capacity: the job's
// reservations (summed per worker) raised by what earlier jobs of this batch
// placed for the same app. The slice is scratch, valid until the next call.
func (b *batch) reservations(j *pluginv1.PlaceJob) []reservation {
	res := b.res[:0]
	add := func(r reservation, raise bool) {
		for i := range res {
			if res[i].worker == r.worker {
				if raise {
					res[i].cpu, res[i].mem = max(res[i].cpu, r.cpu), max(res[i].mem, r.mem)
				} else {
					res[i].cpu += r.cpu
					res[i].mem += r.mem
				}
				return
			}
		}
		res = append(res, r)
	}
	for _, r := range j.GetReserved() {
		add(reservation{worker: r.GetWorkerId(), cpu: max(0, r.GetCpu()), mem: max(0, r.GetMemory())}, false)
	}
	for _, r := range b.placed[j.GetAppId()] {
		add(r, true)
	}
	b.res = res
	return res
}

func (b *batch) placeJob(j *pluginv1.PlaceJob) *pluginv1.Placement {
	pl := &pluginv1.Placement{JobId: j.GetId()}
	if j.GetCpu() < 0 || j.GetMemory() < 0 {
		pl.Reason = "the job asks for a negative amount of cpu or memory"
		return pl
	}
	full := need{j.GetCpu(), j.GetMemory()}
	eligible := func(w *worker) bool {
		return w.offers(j.GetRuntime()) && (j.GetZone() == "" || w.zone == j.GetZone())
	}

	// Workers where the app holds capacity need room only for the growth.
	res := b.reservations(j)
	var best *worker
	for _, r := range res {
		w := b.byID[r.worker]
		if w == nil || !eligible(w) {
			continue
		}
		if w.fits(max(0, full.cpu-r.cpu), max(0, full.mem-r.mem)) && (best == nil || better(w, best)) {
			best = w
		}
	}
	// Every other worker needs room for the full amount.
	key := groupKey{runtime: j.GetRuntime(), zone: j.GetZone(), anyZone: j.GetZone() == ""}
	if g := b.groups[key]; g != nil && !g.knownFailure(full) {
		w := g.bestFit(full, &b.frontier)
		if w == nil {
			g.addFailure(full)
		} else if best == nil || better(w, best) {
			best = w
		}
	}
	if best == nil {
		pl.Reason = b.reason(j)
		return pl
	}

	// Take the capacity in the batch's view of the worker.
	add := full
	running := j.GetCurrentWorkerId() == best.id
	newRes := reservation{worker: best.id, cpu: full.cpu, mem: full.mem}
	for _, r := range res {
		if r.worker == best.id {
			add = need{max(0, full.cpu-r.cpu), max(0, full.mem-r.mem)}
			newRes.cpu, newRes.mem = max(r.cpu, full.cpu), max(r.mem, full.mem)
			break
		}
	}
	for _, r := range b.placed[j.GetAppId()] {
		running = running || r.worker == best.id
	}
	b.take(best, add, !running)
	b.record(j.GetAppId(), newRes)
	pl.WorkerId = best.id
	return pl
}

// take charges add to w (and one more running app when newApp) and moves w
// in its groups.
func (b *batch) take(w *worker, add need, newApp bool) {
	w.usedCPU += add.cpu
	w.usedMem += add.mem
	if w.capCPU > 0 {
		w.cpuPct += 100 * float64(add.cpu) / float64(w.capCPU)
	}
	if w.capMem > 0 {
		w.memPct += 100 * float64(add.mem) / float64(w.capMem)
	}
	if newApp {
		w.apps++
	}
	w.score = b.scoreOf(w)
	if !w.inHeaps {
		return
	}
	keep := w.fits(b.minNeed.cpu, b.minNeed.mem)
	for k, g := range w.groups {
		if keep {
			g.fix(w.pos[k])
		} else {
			g.remove(w.pos[k])
		}
	}
	w.inHeaps = keep
}

// record notes that app now holds r on r.worker.
func (b *batch) record(app int64, r reservation) {
	rs := b.placed[app]
	for i := range rs {
		if rs[i].worker == r.worker {
			rs[i] = r
			return
		}
	}
	b.placed[app] = append(rs, r)
}

// reason says why a job fits nowhere, most specific cause first.
func (b *batch) reason(j *pluginv1.PlaceJob) string {
	rt, zone := j.GetRuntime(), j.GetZone()
	switch {
	case rt == "":
		return "the job names no runtime"
	case !b.runtimes[rt]:
		return fmt.Sprintf("no worker offers runtime %s", rt)
	case zone != "" && !b.zones[zone]:
		return fmt.Sprintf("no worker in zone %s", zone)
	case zone != "" && !b.zoneRT[[2]string{zone, rt}]:
		return fmt.Sprintf("no worker in zone %s offers runtime %s", zone, rt)
	case zone != "":
		return fmt.Sprintf("no worker in zone %s has %d mCPU / %s free", zone, j.GetCpu(), units.FormatSize(j.GetMemory()))
	}
	return fmt.Sprintf("no worker has %d mCPU / %s free", j.GetCpu(), units.FormatSize(j.GetMemory()))
}
