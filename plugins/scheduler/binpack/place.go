package binpack

import (
	"cmp"
	"context"
	"math"
	"math/bits"
	"slices"

	"github.com/wisehosting/wisehosting/sdk/placement"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// How place finds the fullest worker that fits without scanning the fleet
// for every job:
//
//   - Workers are grouped by (runtime, zone); workers without a zone form
//     zone "". A job naming a zone looks at one group; a job without one
//     looks at its runtime's groups in turn, each search starting from the
//     best worker of the groups before.
//   - A worker's score for a job taking n from it is computed as
//     key − f_cpu*n.cpu − f_mem*n.memory, where f_x = w_x/capacity_x and
//     key = f_cpu*free_cpu + f_mem*free_memory is the room it has left now.
//   - A group is a tree over its workers (a segment tree, leaves in a fixed
//     order). Each node knows, of the workers below it, the most free CPU,
//     the most free memory, the least key, the largest f_cpu and f_mem and
//     the least id. From these, minKey − maxF_cpu*n.cpu − maxF_mem*n.memory
//     is a lower bound of the score of every worker below (rounding is
//     monotonic, so the bound holds in floating point too, bit for bit).
//   - The search goes depth first, the fuller child first, and skips every
//     subtree where no worker has the CPU or no worker has the memory, or
//     whose bound (then least id) cannot beat the best worker found so far.
//     For workers of one size the bound is exact, so it descends only where
//     a better worker may be.
//   - The leaves are sorted by room at the batch's start, then id, so that
//     a subtree holds workers of similar room and its bounds are tight; the
//     lowest ids come first among equals, so a fleet of identical workers is
//     searched down one path.
//   - After a placement only the chosen worker changes: its leaf and the
//     path above it are recomputed in each of its groups, O(log n). A worker
//     that can no longer hold the smallest job of the batch leaves the
//     trees; it can still take jobs of apps reserved on it.
//   - Workers where the app already holds capacity are skipped by the
//     search and checked one by one with the growth; there are few. (The
//     search must skip them: the full amount would leave less room on them
//     than the growth does, and rank them too well.)
//   - Room only shrinks during a batch, so when no worker of a group has
//     room for (cpu, memory), no later job needing at least as much in both
//     does either (placement.Misses): such jobs skip the group.

// score is the score of a worker with room key and factors fc, fm for a job
// taking n from it; lower is better. The explicit conversions keep the
// compiler from fusing multiply-adds, so the result does not depend on the
// platform, and tree bounds are computed the same way.
func score(key, fc, fm float64, n placement.Need) float64 {
	return key - float64(fc*float64(n.CPU)) - float64(fm*float64(n.Memory))
}

// room is key: the weighted room a worker with factors fc, fm and free
// room free has left.
func room(fc, fm float64, free placement.Need) float64 {
	return float64(fc*float64(free.CPU)) + float64(fm*float64(free.Memory))
}

// state is the plugin's own view of a worker, beside placement.Worker.
type state struct {
	fc, fm  float64 // weight/capacity for CPU and memory; 0 for a capacity ≤ 0
	key     float64 // room(fc, fm, free)
	inTrees bool
	leaves  []leaf // the worker's leaf in each of its groups
}

type leaf struct {
	t *tree
	k int // leaf index
}

// node summarises the workers below it.
type node struct {
	maxCPU, maxMem int64   // most free CPU, most free memory
	minKey         float64 // least room
	maxFC, maxFM   float64 // largest factors (smallest capacities)
	minID          int64
}

// empty is the node of no worker: it fits nothing and bounds nothing.
var empty = node{maxCPU: math.MinInt64, maxMem: math.MinInt64, minKey: math.Inf(1), minID: math.MaxInt64}

func combine(a, b node) node {
	return node{
		maxCPU: max(a.maxCPU, b.maxCPU), maxMem: max(a.maxMem, b.maxMem),
		minKey: min(a.minKey, b.minKey),
		maxFC:  max(a.maxFC, b.maxFC), maxFM: max(a.maxFM, b.maxFM),
		minID: min(a.minID, b.minID),
	}
}

// tree is a group: a segment tree over its workers. nodes[1] is the root,
// node i has children 2i and 2i+1, leaf k is nodes[size+k].
type tree struct {
	size    int
	nodes   []node
	workers []*placement.Worker // by leaf index
	misses  placement.Misses
}

// newTree returns a tree for n workers, all leaves empty; fill them with
// put, then call build.
func newTree(n int) *tree {
	size := 1 << bits.Len(uint(n-1))
	return &tree{size: size, nodes: make([]node, 2*size), workers: make([]*placement.Worker, 0, n)}
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
	w     *placement.Worker
	score float64
}

// beatenBy reports whether a worker with this score and id would be better
// than the choice: a lower score, then a lower id.
func (c *choice) beatenBy(s float64, id int64) bool {
	return c.w == nil || s < c.score || (s == c.score && id < c.w.ID)
}

// search improves c with the best worker below node i with room for n,
// other than the workers of skip.
func (t *tree) search(i int, n placement.Need, skip []placement.Hold, c *choice) {
	nd := &t.nodes[i]
	if nd.maxCPU < n.CPU || nd.maxMem < n.Memory {
		return
	}
	s := score(nd.minKey, nd.maxFC, nd.maxFM, n)
	if !c.beatenBy(s, nd.minID) {
		return
	}
	if i >= t.size { // a leaf: it fits, and s is its score
		w := t.workers[i-t.size]
		if !slices.ContainsFunc(skip, func(h placement.Hold) bool { return h.Worker == w }) {
			c.w, c.score = w, s
		}
		return
	}
	l, r := 2*i, 2*i+1
	if t.nodes[r].minKey < t.nodes[l].minKey {
		l, r = r, l
	}
	t.search(l, n, skip, c)
	t.search(r, n, skip, c)
}

// batch is the state of one Place call.
type batch struct {
	*placement.Batch
	state     []state
	groups    map[[2]string]*tree // by (runtime, zone)
	byRuntime map[string][]*tree  // a runtime's groups, one per zone
	minNeed   placement.Need
}

func place(ctx context.Context, weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) ([]*pluginv1.Placement, error) {
	b := newBatch(weights, jobs, workers)
	return placement.Run(ctx, jobs, b.placeJob)
}

func newBatch(weights Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) *batch {
	b := &batch{Batch: placement.NewBatch(workers), groups: map[[2]string]*tree{}, byRuntime: map[string][]*tree{}}
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
	factor := func(weight float64, capacity int64) float64 {
		if capacity <= 0 {
			return 0
		}
		return weight / float64(capacity)
	}
	b.state = make([]state, len(b.Workers))
	// The workers that go into the trees, with their sort keys.
	type entry struct {
		key float64
		id  int64
		w   *placement.Worker
	}
	inTrees := make([]entry, 0, len(b.Workers))
	for _, w := range b.Workers {
		st := &b.state[w.Index]
		st.fc, st.fm = factor(weights.CPU, w.CapacityCPU), factor(weights.Memory, w.CapacityMemory)
		st.key = room(st.fc, st.fm, w.Free())
		if w.Fits(b.minNeed) {
			inTrees = append(inTrees, entry{key: st.key, id: w.ID, w: w})
		}
	}
	// The fullest first, so that neighbours in a tree are alike.
	slices.SortFunc(inTrees, func(x, y entry) int {
		if x.key != y.key {
			return cmp.Compare(x.key, y.key)
		}
		return cmp.Compare(x.id, y.id)
	})

	// The groups: (runtime r, zone z) is group r*len(zones) + z. Workers
	// without a zone are in zone "" (which no job names).
	rtIndex, zoneIndex := map[string]int{}, map[string]int{}
	var rtNames, zoneNames []string
	for _, e := range inTrees {
		if _, ok := zoneIndex[e.w.Zone]; !ok {
			zoneIndex[e.w.Zone] = len(zoneNames)
			zoneNames = append(zoneNames, e.w.Zone)
		}
		for _, r := range e.w.Runtimes {
			if _, ok := rtIndex[r]; !ok {
				rtIndex[r] = len(rtNames)
				rtNames = append(rtNames, r)
			}
		}
	}
	nR, nZ := len(rtNames), len(zoneNames)
	groupsOf := func(w *placement.Worker, yield func(g int)) {
		z := zoneIndex[w.Zone]
		for _, name := range w.Runtimes {
			yield(rtIndex[name]*nZ + z)
		}
	}
	counts := make([]int, nR*nZ)
	total := 0
	for _, e := range inTrees {
		groupsOf(e.w, func(g int) { counts[g]++; total++ })
	}
	trees := make([]*tree, len(counts))
	for g, n := range counts {
		if n > 0 {
			trees[g] = newTree(n)
		}
	}
	leaves := make([]leaf, 0, total) // every worker's leaves, in one allocation
	for _, e := range inTrees {
		st := &b.state[e.w.Index]
		nd := b.leafOf(e.w)
		first := len(leaves)
		groupsOf(e.w, func(g int) { leaves = append(leaves, leaf{t: trees[g], k: trees[g].put(e.w, nd)}) })
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
	st := &b.state[w.Index]
	free := w.Free()
	return node{maxCPU: free.CPU, maxMem: free.Memory, minKey: st.key, maxFC: st.fc, maxFM: st.fm, minID: w.ID}
}

func (b *batch) placeJob(pj *pluginv1.PlaceJob) *pluginv1.Placement {
	j, ok := b.Job(pj)
	if !ok {
		return b.Unplaced(pj)
	}
	var c choice
	// Every eligible worker with room for the full amount, except those
	// where the app holds capacity: the full amount would leave less room
	// there than the job really leaves, and score them too well. Each
	// group's search starts from the best of the groups before.
	search := func(t *tree) {
		if t == nil || t.misses.Covers(j.Need) {
			return
		}
		found := c.w != nil
		t.search(1, j.Need, j.Holds, &c)
		if !found && c.w == nil && len(j.Holds) == 0 {
			t.misses.Add(j.Need)
		}
	}
	if z := pj.GetZone(); z != "" {
		search(b.groups[[2]string{pj.GetRuntime(), z}])
	} else {
		for _, t := range b.byRuntime[pj.GetRuntime()] {
			search(t)
		}
	}
	// Workers where the app holds capacity need room only for the growth.
	for _, h := range j.Holds {
		w := h.Worker
		if !j.Eligible(w) {
			continue
		}
		n := j.NeedOn(w)
		if !w.Fits(n) {
			continue
		}
		st := &b.state[w.Index]
		if s := score(st.key, st.fc, st.fm, n); c.beatenBy(s, w.ID) {
			c = choice{w: w, score: s}
		}
	}
	if c.w == nil {
		return b.Unplaced(pj)
	}
	b.Take(&j, c.w)
	b.refresh(c.w)
	return &pluginv1.Placement{JobId: pj.GetId(), WorkerId: c.w.ID}
}

// refresh brings w's room and its leaves up to date after a placement.
func (b *batch) refresh(w *placement.Worker) {
	st := &b.state[w.Index]
	st.key = room(st.fc, st.fm, w.Free())
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
