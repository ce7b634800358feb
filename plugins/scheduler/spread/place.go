package spread

import (
	"cmp"
	"context"
	"math"
	"math/bits"
	"slices"

	"github.com/wisehosting/wisehosting/sdk/placement"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// How place finds the best worker without rescanning the fleet per job:
//
//   - Workers are grouped by (runtime, zone); workers without a zone form
//     zone "". Each zone's app count is kept up to date.
//   - A group is a tree over its workers (a segment tree, leaves in a fixed
//     order). Each node knows, of the workers below it, the most free CPU,
//     the most free memory, and the best worker by (score, running apps,
//     id). The best worker of a group with room for a job is found depth
//     first, the better child first, skipping every subtree where no worker
//     has the CPU or no worker has the memory, or whose best cannot beat
//     the best found so far.
//   - A job naming a zone searches that zone's group. A job without one
//     visits its runtime's groups from the zone with the fewest apps up,
//     and stops at the first zone with room, after the other zones with the
//     same count (which compete on their workers).
//   - The leaves are sorted by (score, running apps, id) at the batch's
//     start, so that a subtree holds workers of similar load.
//   - After a placement only the chosen worker changes (and its zone's
//     count): its leaf and the path above it are recomputed in each of its
//     groups, O(log n). A worker that can no longer hold the smallest job of
//     the batch leaves the trees; it can still take jobs of apps reserved on
//     it.
//   - Workers where the app already holds capacity are checked first, one
//     by one, with the growth; there are few.
//   - Room only shrinks during a batch, so when no worker of a group has
//     room for (cpu, memory), no later job needing at least as much in both
//     does either (placement.Misses): such jobs skip the group.

// state is the plugin's own view of a worker, beside placement.Worker.
type state struct {
	score   float64
	zone    int // index in batch.zoneApps
	inTrees bool
	leaves  []leaf // the worker's leaf in each of its groups
}

type leaf struct {
	t *tree
	k int // leaf index
}

// node summarises the workers below it.
type node struct {
	maxCPU, maxMem int64 // most free CPU, most free memory
	// The best worker below: lowest score, then fewest running apps, then
	// lowest id.
	score    float64
	apps, id int64
}

// empty is the node of no worker: it fits nothing and is worse than any.
var empty = node{maxCPU: math.MinInt64, maxMem: math.MinInt64, score: math.Inf(1), apps: math.MaxInt64, id: math.MaxInt64}

// before orders workers: lower score, then fewer running apps, then lower
// id.
func before(a, b *node) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	if a.apps != b.apps {
		return a.apps < b.apps
	}
	return a.id < b.id
}

func combine(a, b node) node {
	best := a
	if before(&b, &a) {
		best = b
	}
	best.maxCPU, best.maxMem = max(a.maxCPU, b.maxCPU), max(a.maxMem, b.maxMem)
	return best
}

// tree is a group: a segment tree over its workers. nodes[1] is the root,
// node i has children 2i and 2i+1, leaf k is nodes[size+k].
type tree struct {
	zone    int
	size    int
	nodes   []node
	workers []*placement.Worker // by leaf index
	misses  placement.Misses
}

// newTree returns a tree for n workers of zone, all leaves empty; fill them
// with put, then call build.
func newTree(zone, n int) *tree {
	size := 1 << bits.Len(uint(n-1))
	return &tree{zone: zone, size: size, nodes: make([]node, 2*size), workers: make([]*placement.Worker, 0, n)}
}

// put fills the next leaf with w, whose leaf node is nd, and returns its
// index.
func (t *tree) put(w *placement.Worker, nd node) int {
	k := len(t.workers)
	t.workers = append(t.workers, w)
	t.nodes[t.size+k] = nd
	return k
}

// build empties the leaves put did not fill and computes the inner nodes.
func (t *tree) build() {
	for k := t.size + len(t.workers); k < 2*t.size; k++ {
		t.nodes[k] = empty
	}
	for i := t.size - 1; i >= 1; i-- {
		t.nodes[i] = combine(t.nodes[2*i], t.nodes[2*i+1])
	}
}

// set replaces leaf k and recomputes the path above it, up to the first
// node that does not change.
func (t *tree) set(k int, nd node) {
	i := t.size + k
	t.nodes[i] = nd
	for i > 1 {
		i /= 2
		c := combine(t.nodes[2*i], t.nodes[2*i+1])
		if c == t.nodes[i] {
			return
		}
		t.nodes[i] = c
	}
}

// choice is the best worker found so far for a job.
type choice struct {
	w        *placement.Worker
	zoneApps int64 // its zone's app count
	order    node  // its score, running apps and id
}

// beatenBy reports whether a worker in a zone with zoneApps apps, of order
// o, would be better than the choice.
func (c *choice) beatenBy(zoneApps int64, o *node) bool {
	if c.w == nil || zoneApps != c.zoneApps {
		return c.w == nil || zoneApps < c.zoneApps
	}
	return before(o, &c.order)
}

// search improves c with the best worker below node i with room for n; the
// tree's zone has zoneApps apps.
func (t *tree) search(i int, n placement.Need, zoneApps int64, c *choice) {
	nd := &t.nodes[i]
	if nd.maxCPU < n.CPU || nd.maxMem < n.Memory || !c.beatenBy(zoneApps, nd) {
		return
	}
	if i >= t.size { // a leaf: it fits, and beats c
		c.w, c.zoneApps, c.order = t.workers[i-t.size], zoneApps, *nd
		return
	}
	l, r := 2*i, 2*i+1
	if before(&t.nodes[r], &t.nodes[l]) {
		l, r = r, l
	}
	t.search(l, n, zoneApps, c)
	t.search(r, n, zoneApps, c)
}

// batch is the state of one Place call.
type batch struct {
	*placement.Batch
	weights   Weights
	maxApps   float64
	state     []state
	zoneApps  []int64             // by zone index
	groups    map[[2]string]*tree // by (runtime, zone)
	byRuntime map[string][]*tree  // a runtime's groups, one per zone
	minNeed   placement.Need
	order     []*tree // scratch: the groups of a job, by zone app count
}

// scoreOf is least-loaded's weighted load score of w (lower is better). The
// explicit conversions keep the compiler from fusing multiply-adds, so the
// result does not depend on the platform.
func (b *batch) scoreOf(w *placement.Worker) float64 {
	appsNorm := 100 * float64(w.RunningApps) / b.maxApps
	return float64(b.weights.CPU*w.CPUPercent) + float64(b.weights.Memory*w.MemoryPercent) + float64(b.weights.Apps*appsNorm)
}

func place(ctx context.Context, weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) ([]*pluginv1.Placement, error) {
	b := newBatch(weights, jobs, workers)
	return placement.Run(ctx, jobs, b.placeJob)
}

func newBatch(weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) *batch {
	b := &batch{
		Batch:     placement.NewBatch(workers),
		weights:   weights,
		maxApps:   1,
		groups:    map[[2]string]*tree{},
		byRuntime: map[string][]*tree{},
	}
	// The smallest full need of the batch: a worker without room for it
	// can only take jobs of apps reserved on it, which are checked directly.
	first := true
	for _, j := range jobs {
		if j.GetCpu() < 0 || j.GetMemory() < 0 {
			continue
		}
		n := placement.Need{CPU: j.GetCpu(), Memory: j.GetMemory()}
		if first {
			b.minNeed, first = n, false
			continue
		}
		b.minNeed = placement.Need{CPU: min(b.minNeed.CPU, n.CPU), Memory: min(b.minNeed.Memory, n.Memory)}
	}
	// Zones and their app counts, over every worker of the batch.
	zoneIndex := map[string]int{}
	var zoneNames []string
	b.state = make([]state, len(b.Workers))
	for _, w := range b.Workers {
		b.maxApps = max(b.maxApps, float64(w.RunningApps))
		z, ok := zoneIndex[w.Zone]
		if !ok {
			z = len(zoneNames)
			zoneIndex[w.Zone] = z
			zoneNames = append(zoneNames, w.Zone)
			b.zoneApps = append(b.zoneApps, 0)
		}
		b.state[w.Index].zone = z
		b.zoneApps[z] += w.RunningApps
	}
	// The workers that go into the trees, best first, so that neighbours in
	// a tree are alike.
	type entry struct {
		nd node
		w  *placement.Worker
	}
	inTrees := make([]entry, 0, len(b.Workers))
	for _, w := range b.Workers {
		st := &b.state[w.Index]
		st.score = b.scoreOf(w)
		if w.Fits(b.minNeed) {
			inTrees = append(inTrees, entry{nd: b.leafOf(w), w: w})
		}
	}
	slices.SortFunc(inTrees, func(x, y entry) int {
		switch {
		case before(&x.nd, &y.nd):
			return -1
		case before(&y.nd, &x.nd):
			return 1
		}
		return 0
	})

	// The groups: (runtime r, zone z) is group r*len(zones) + z.
	rtIndex := map[string]int{}
	var rtNames []string
	for _, e := range inTrees {
		for _, r := range e.w.Runtimes {
			if _, ok := rtIndex[r]; !ok {
				rtIndex[r] = len(rtNames)
				rtNames = append(rtNames, r)
			}
		}
	}
	nZ := len(zoneNames)
	groupsOf := func(w *placement.Worker, yield func(g int)) {
		z := b.state[w.Index].zone
		for _, name := range w.Runtimes {
			yield(rtIndex[name]*nZ + z)
		}
	}
	counts := make([]int, len(rtNames)*nZ)
	total := 0
	for _, e := range inTrees {
		groupsOf(e.w, func(g int) { counts[g]++; total++ })
	}
	trees := make([]*tree, len(counts))
	for g, n := range counts {
		if n > 0 {
			trees[g] = newTree(g%nZ, n)
		}
	}
	leaves := make([]leaf, 0, total) // every worker's leaves, in one allocation
	for _, e := range inTrees {
		st := &b.state[e.w.Index]
		first := len(leaves)
		groupsOf(e.w, func(g int) { leaves = append(leaves, leaf{t: trees[g], k: trees[g].put(e.w, e.nd)}) })
		st.leaves = leaves[first:len(leaves):len(leaves)]
		st.inTrees = true
	}
	for g, t := range trees {
		if t == nil {
			continue
		}
		t.build()
		rt := rtNames[g/nZ]
		b.groups[[2]string{rt, zoneNames[g%nZ]}] = t
		b.byRuntime[rt] = append(b.byRuntime[rt], t)
	}
	return b
}

// leafOf is w's leaf node.
func (b *batch) leafOf(w *placement.Worker) node {
	free := w.Free()
	return node{maxCPU: free.CPU, maxMem: free.Memory, score: b.state[w.Index].score, apps: w.RunningApps, id: w.ID}
}

func (b *batch) placeJob(pj *pluginv1.PlaceJob) *pluginv1.Placement {
	j, ok := b.Job(pj)
	if !ok {
		return b.Unplaced(pj)
	}
	var c choice
	// The app stays where it holds capacity, if the growth fits there.
	for _, h := range j.Holds {
		w := h.Worker
		if !j.FitsOn(w) {
			continue
		}
		za, o := b.zoneApps[b.state[w.Index].zone], b.leafOf(w)
		if c.beatenBy(za, &o) {
			c = choice{w: w, zoneApps: za, order: o}
		}
	}
	if c.w == nil {
		// Every eligible worker with room for the full amount (those
		// where the app holds capacity have no room even for the growth).
		if z := pj.GetZone(); z != "" {
			b.search(b.groups[[2]string{pj.GetRuntime(), z}], j.Need, &c)
		} else {
			// The least-populated zones first; stop once a zone with room
			// is found and the zones with the same count are searched.
			order := append(b.order[:0], b.byRuntime[pj.GetRuntime()]...)
			slices.SortStableFunc(order, func(x, y *tree) int { return cmp.Compare(b.zoneApps[x.zone], b.zoneApps[y.zone]) })
			for _, t := range order {
				if c.w != nil && b.zoneApps[t.zone] > c.zoneApps {
					break
				}
				b.search(t, j.Need, &c)
			}
			b.order = order[:0]
		}
	}
	if c.w == nil {
		return b.Unplaced(pj)
	}
	if b.Take(&j, c.w) {
		b.zoneApps[b.state[c.w.Index].zone]++
	}
	b.refresh(c.w)
	return &pluginv1.Placement{JobId: pj.GetId(), WorkerId: c.w.ID}
}

// search improves c with the best worker of t with room for n.
func (b *batch) search(t *tree, n placement.Need, c *choice) {
	if t == nil || t.misses.Covers(n) {
		return
	}
	found := c.w != nil
	t.search(1, n, b.zoneApps[t.zone], c)
	if !found && c.w == nil {
		t.misses.Add(n)
	}
}

// refresh brings w's score and its leaves up to date after a placement.
func (b *batch) refresh(w *placement.Worker) {
	st := &b.state[w.Index]
	st.score = b.scoreOf(w)
	if !st.inTrees {
		return
	}
	nd := empty
	if w.Fits(b.minNeed) {
		nd = b.leafOf(w)
	} else {
		st.inTrees = false
	}
	for _, l := range st.leaves {
		l.t.set(l.k, nd)
	}
}
