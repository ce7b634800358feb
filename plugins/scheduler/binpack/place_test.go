package binpack

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	pt "github.com/wisehosting/wisehosting/sdk/placement/placementtest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const gib = int64(1) << 30

// wk builds a worker offering exec with 4000 mCPU / 8GiB, nothing used.
type want struct {
	worker int64
	reason string
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name    string
		weights *Weights
		jobs    []*pluginv1.PlaceJob
		workers []*pluginv1.PlaceWorker
		want    []want
	}{
		{
			// Left after placement: w1 0.75+0.875, w2 0.25+0.375, w3 0+0.125.
			name:    "the fullest worker that fits wins",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2, pt.Used(2000, 4*gib)), pt.Worker(3, pt.Used(3000, 6*gib))},
			want:    []want{{worker: 3}},
		},
		{
			name:    "live load and app counts do not matter",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(1, 1, 0)), pt.Worker(2, pt.Used(1000, gib), pt.Load(99, 99, 40))},
			want:    []want{{worker: 2}},
		},
		{
			name: "the fullest that still fits: too full is skipped",
			jobs: []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, 2*gib))},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1),
				pt.Worker(2, pt.Used(2500, 2*gib)), // 1500 mCPU free
				pt.Worker(3, pt.Used(0, 7*gib)),    // 1GiB free
				pt.Worker(4, pt.Used(1000, 3*gib)),
			},
			want: []want{{worker: 4}},
		},
		{
			name:    "a batch fills a worker before it starts on an empty one",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2), pt.Job(3), pt.Job(4)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2, pt.Used(1000, 2*gib)), pt.Worker(3)},
			// w2 takes three jobs (4000 mCPU used, full); the fourth opens
			// the lower id of the two empty ones, and w3 stays empty.
			want: []want{{worker: 2}, {worker: 2}, {worker: 2}, {worker: 1}},
		},
		{
			// Left after placement: w5 0 + 0.6, w2 0.45 + 0.6. The larger
			// of the two fractions would rank them alike (0.6), and the
			// tie would go to w2, the lower id.
			name: "the two fractions are summed, not maxed",
			jobs: []*pluginv1.PlaceJob{pt.Job(1, pt.Size(1000, 0))},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(2, pt.Used(1200, gib*16/5)), // 2800 mCPU free: 0.45 left
				pt.Worker(5, pt.Used(3000, gib*16/5)), // 1000 mCPU free: 0 left
			},
			want: []want{{worker: 5}},
		},
		{
			// Left after placement: small 0/2000 + 1/4 = 0.25, big
			// 3000/16000 + 7/32 ≈ 0.41: fractions, not amounts.
			name:    "room is measured in fractions of the worker's capacity",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Capacity(16000, 32*gib), pt.Used(12000, 24*gib)), pt.Worker(2, pt.Capacity(2000, 4*gib), pt.Used(1000, 2*gib))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "a perfect fit wins",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(4000, 8*gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Capacity(8000, 16*gib)), pt.Worker(2)},
			want:    []want{{worker: 2}},
		},
		{
			name:    "ties go to the lower id",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(9, pt.Used(1000, gib)), pt.Worker(4, pt.Used(1000, gib)), pt.Worker(7, pt.Used(1000, gib))},
			want:    []want{{worker: 4}},
		},
		{
			// By memory alone w1 (1GiB left) beats w2 (5GiB left), though
			// w1 has far more CPU left.
			name:    "custom weights: memory only",
			weights: &Weights{Memory: 1},
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(0, 6*gib)), pt.Worker(2, pt.Used(3000, 2*gib))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "custom weights: the same batch with the defaults",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(0, 6*gib)), pt.Worker(2, pt.Used(3000, 2*gib))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "runtime must be offered",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Runtime("podman"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(3000, 7*gib)), pt.Worker(2, pt.Runtimes("exec", "podman"))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "zone must match when set",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("eu-2")), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("eu-1"), pt.Used(3000, 7*gib)), pt.Worker(2, pt.Zone("eu-2")), pt.Worker(3)},
			want:    []want{{worker: 2}, {worker: 1}},
		},
		{
			name:    "a job without a zone may go to a worker without one",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("eu-1")), pt.Worker(2, pt.Used(2000, 2*gib))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "an exact fit fits",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(4000, 8*gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{worker: 1}},
		},
		{
			name:    "a full worker takes an app already reserved there",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Current(1))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(4000, 8*gib)), pt.Worker(2, pt.Used(3000, 6*gib))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "a reservation covers only what it holds: growth must fit",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(3100, 0)), pt.Worker(2)},
			want:    []want{{worker: 2}},
		},
		{
			// On w1 the job takes 1000 mCPU more: 0 + 0.5 left; on w2 the
			// full 2000 mCPU / 1GiB: 0.25 + 0.875. (The full amount would
			// not fit on w1.)
			name:    "growth that fits is scored for the growth",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(3000, 4*gib)), pt.Worker(2, pt.Used(1000, 0))},
			want:    []want{{worker: 1}},
		},
		{
			// Staying costs nothing but leaves w1 half empty (1.0 left);
			// on w2 the job leaves 0.05 + 0.175: binpack moves it.
			name:    "an app is not kept where it is reserved when a fuller worker fits it",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Current(1))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(2000, 4*gib)), pt.Worker(2, pt.Used(2800, gib*28/5))},
			want:    []want{{worker: 2}},
		},
		{
			// Staying leaves w1 as it is: 0.5 + 0.5 left. Were the job's
			// full amount charged there, w1 would seem to be left with
			// 0.25 + 0.375 and beat w2 (0.5 + 0.375), which it does not.
			name:    "a worker where the app holds capacity is scored for what the job really takes there",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Current(1))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(2000, 4*gib)), pt.Worker(2, pt.Used(1000, 4*gib))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "a reservation elsewhere does not help",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(2, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(4000, 0))},
			want:    []want{{reason: "no worker has 1000 mCPU / 1GiB free"}},
		},
		{
			name:    "a reservation on a worker of the wrong zone does not count",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("eu-1"), pt.Reserved(2, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("eu-1"), pt.Used(4000, 0)), pt.Worker(2, pt.Zone("us-1"), pt.Used(4000, 0))},
			want:    []want{{reason: "no worker in zone eu-1 has 1000 mCPU / 1GiB free"}},
		},
		{
			name:    "a batch fills workers up to capacity",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(3000, gib)), pt.Job(2, pt.Size(3000, gib)), pt.Job(3, pt.Size(3000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2, pt.Used(500, 0))},
			want:    []want{{worker: 2}, {worker: 1}, {reason: "no worker has 3000 mCPU / 1GiB free"}},
		},
		{
			name: "a second job of the same app reuses the first one's capacity",
			jobs: []*pluginv1.PlaceJob{
				pt.Job(1, pt.App(7), pt.Size(3000, gib)),
				pt.Job(2, pt.App(7), pt.Size(3000, gib)),
			},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{worker: 1}, {worker: 1}},
		},
		{
			name:    "a worker without CPU capacity takes jobs without CPU",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(0, gib)), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Capacity(0, 8*gib), pt.Used(0, 6*gib)), pt.Worker(2, pt.Used(0, 6*gib))},
			want:    []want{{worker: 1}, {worker: 2}},
		},
		{
			name:    "no worker offers the runtime",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Runtime("podman"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{reason: "no worker offers runtime podman"}},
		},
		{
			name:    "no worker in the zone",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("eu-1"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("us-1"))},
			want:    []want{{reason: "no worker in zone eu-1"}},
		},
		{
			name:    "no worker in the zone offers the runtime",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("eu-1"), pt.Runtime("podman"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("eu-1")), pt.Worker(2, pt.Runtimes("podman"))},
			want:    []want{{reason: "no worker in zone eu-1 offers runtime podman"}},
		},
		{
			name:    "no room anywhere",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(4000, 8*gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(1, 0)), pt.Worker(2, pt.Used(0, 1))},
			want:    []want{{reason: "no worker has 4000 mCPU / 8GiB free"}},
		},
		{
			name:    "no workers at all",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: nil,
			want:    []want{{reason: "no worker offers runtime exec"}},
		},
		{
			name:    "a job without runtime",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Runtime(""))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{reason: "the job names no runtime"}},
		},
		{
			name:    "a negative job",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(-1, 0)), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{reason: "the job asks for a negative amount of cpu or memory"}, {worker: 1}},
		},
		{
			name:    "an over-committed worker takes nothing",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(0, 0))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(5000, 0))},
			want:    []want{{reason: "no worker has 0 mCPU / 0B free"}},
		},
		{
			name:    "worker id 0 and duplicate ids are ignored",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(0, pt.Used(3000, 7*gib)), pt.Worker(3), pt.Worker(3, pt.Used(3000, 7*gib)), pt.Worker(5, pt.Used(2000, 2*gib))},
			// The first w3 (empty) counts, not the nearly full repeat, so
			// w5 is the fullest.
			want: []want{{worker: 5}, {worker: 5}},
		},
		{
			name:    "no jobs",
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New()
			if tt.weights != nil {
				p.weights.Store(tt.weights)
			}
			resp, err := p.Place(context.Background(), &pluginv1.PlaceRequest{Jobs: tt.jobs, Workers: tt.workers})
			if err != nil {
				t.Fatal(err)
			}
			got := resp.GetPlacements()
			if len(got) != len(tt.want) {
				t.Fatalf("%d placements, want %d: %v", len(got), len(tt.want), got)
			}
			for i, pl := range got {
				if pl.GetJobId() != tt.jobs[i].GetId() {
					t.Errorf("placement %d is for job %d, want %d", i, pl.GetJobId(), tt.jobs[i].GetId())
				}
				if pl.GetWorkerId() != tt.want[i].worker || pl.GetReason() != tt.want[i].reason {
					t.Errorf("job %d: worker %d reason %q, want worker %d reason %q",
						pl.GetJobId(), pl.GetWorkerId(), pl.GetReason(), tt.want[i].worker, tt.want[i].reason)
				}
			}
			if got := referencePlace(p.Weights(), tt.jobs, tt.workers); !slices.Equal(got, workerIDs(resp)) {
				t.Errorf("reference placed %v, plugin %v", got, workerIDs(resp))
			}
		})
	}
}

func TestPlaceDoesNotModifyTheRequest(t *testing.T) {
	req := &pluginv1.PlaceRequest{
		Jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2, pt.Reserved(1, 500, gib))},
		Workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(1000, gib)), pt.Worker(2)},
	}
	before := fmt.Sprint(req.GetJobs(), req.GetWorkers())
	if _, err := New().Place(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(req.GetJobs(), req.GetWorkers()); after != before {
		t.Errorf("request changed:\n%s\n%s", before, after)
	}
}

func TestPlaceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New().Place(ctx, &pluginv1.PlaceRequest{Jobs: []*pluginv1.PlaceJob{pt.Job(1)}}); err == nil {
		t.Fatal("no error from a cancelled context")
	}
}

func workerIDs(resp *pluginv1.PlaceResponse) []int64 {
	ids := make([]int64, 0, len(resp.GetPlacements()))
	for _, p := range resp.GetPlacements() {
		ids = append(ids, p.GetWorkerId())
	}
	return ids
}

// --- brute-force reference --------------------------------------------------

// refWorker is the reference's view of a worker.
type refWorker struct {
	id                               int64
	zone                             string
	runtimes                         []string
	capCPU, capMem, usedCPU, usedMem int64
}

type refRes struct{ cpu, mem int64 }

// refScore is the documented score, weighted fractions of the capacity
// left after taking (cpu, mem), computed in the same order of operations as
// the plugin (key − f_cpu*cpu − f_mem*mem), so that results match bit for
// bit. It checks itself against the textbook formula.
func refScore(wt Weights, w *refWorker, cpu, mem int64) float64 {
	fc, fm := 0.0, 0.0
	if w.capCPU > 0 {
		fc = wt.CPU / float64(w.capCPU)
	}
	if w.capMem > 0 {
		fm = wt.Memory / float64(w.capMem)
	}
	freeCPU, freeMem := w.capCPU-w.usedCPU, w.capMem-w.usedMem
	key := float64(fc*float64(freeCPU)) + float64(fm*float64(freeMem))
	s := key - float64(fc*float64(cpu)) - float64(fm*float64(mem))
	textbook := 0.0
	if w.capCPU > 0 {
		textbook += wt.CPU * float64(freeCPU-cpu) / float64(w.capCPU)
	}
	if w.capMem > 0 {
		textbook += wt.Memory * float64(freeMem-mem) / float64(w.capMem)
	}
	if math.Abs(s-textbook) > 1e-9*max(1, math.Abs(textbook)) {
		panic(fmt.Sprintf("score %g, textbook %g", s, textbook))
	}
	return s
}

// referencePlace places jobs by checking every worker for every job, the
// obvious O(jobs × workers) way, with the plugin's documented rules.
func referencePlace(wt Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) []int64 {
	var ws []*refWorker
	seen := map[int64]bool{}
	for _, w := range workers {
		if w.GetId() == 0 || seen[w.GetId()] {
			continue
		}
		seen[w.GetId()] = true
		ws = append(ws, &refWorker{
			id: w.GetId(), zone: w.GetZone(), runtimes: w.GetRuntimes(),
			capCPU: w.GetCapacityCpu(), capMem: w.GetCapacityMemory(), usedCPU: w.GetUsedCpu(), usedMem: w.GetUsedMemory(),
		})
	}
	placed := map[int64]map[int64]refRes{} // app → worker → reservation made in this batch
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		if j.GetCpu() < 0 || j.GetMemory() < 0 {
			continue
		}
		res := map[int64]refRes{}
		for _, r := range j.GetReserved() {
			x := res[r.GetWorkerId()]
			res[r.GetWorkerId()] = refRes{x.cpu + max(0, r.GetCpu()), x.mem + max(0, r.GetMemory())}
		}
		for wid, r := range placed[j.GetAppId()] {
			x := res[wid]
			res[wid] = refRes{max(x.cpu, r.cpu), max(x.mem, r.mem)}
		}
		needOn := func(w *refWorker) (int64, int64) {
			if r, ok := res[w.id]; ok {
				return max(0, j.GetCpu()-r.cpu), max(0, j.GetMemory()-r.mem)
			}
			return j.GetCpu(), j.GetMemory()
		}
		var best *refWorker
		var bestScore float64
		for _, w := range ws {
			if !slices.Contains(w.runtimes, j.GetRuntime()) || (j.GetZone() != "" && w.zone != j.GetZone()) {
				continue
			}
			c, m := needOn(w)
			if w.capCPU-w.usedCPU < c || w.capMem-w.usedMem < m {
				continue
			}
			s := refScore(wt, w, c, m)
			if best == nil || s < bestScore || (s == bestScore && w.id < best.id) {
				best, bestScore = w, s
			}
		}
		if best == nil {
			continue
		}
		out[i] = best.id
		c, m := needOn(best)
		best.usedCPU += c
		best.usedMem += m
		r := res[best.id]
		if placed[j.GetAppId()] == nil {
			placed[j.GetAppId()] = map[int64]refRes{}
		}
		placed[j.GetAppId()][best.id] = refRes{max(r.cpu, j.GetCpu()), max(r.mem, j.GetMemory())}
	}
	return out
}

// --- randomized comparison ----------------------------------------------------

// randomBatch is a small random batch. Capacities come from a few sizes,
// or, with jitter, differ a little from worker to worker, as reported
// capacities of nominally equal machines do.
func randomBatch(r *rand.Rand, nJobs, nWorkers int, jitter bool) ([]*pluginv1.PlaceJob, []*pluginv1.PlaceWorker) {
	zones := []string{"", "eu-1", "eu-2", "us-1"}
	rts := [][]string{{"exec"}, {"podman"}, {"exec", "podman"}, {"podman", "exec", "podman"}, {}}
	pick := func(xs []int64) int64 { return xs[r.IntN(len(xs))] }
	cpus := []int64{0, 250, 500, 1000, 2000, 4000}
	mems := []int64{0, 256 << 20, 512 << 20, gib, 2 * gib, 4 * gib}
	workers := make([]*pluginv1.PlaceWorker, nWorkers)
	for i := range workers {
		capCPU, capMem := pick([]int64{2000, 4000, 8000, 16000}), pick([]int64{4 * gib, 8 * gib, 16 * gib})
		if jitter {
			capCPU += r.Int64N(100)
			capMem += r.Int64N(64 << 20)
		}
		if r.IntN(40) == 0 {
			capCPU = 0
		}
		w := &pluginv1.PlaceWorker{
			Id: int64(i + 1), Zone: zones[r.IntN(len(zones))], Runtimes: rts[r.IntN(len(rts))],
			CapacityCpu: capCPU, CapacityMemory: capMem,
			UsedCpu: r.Int64N(capCPU + capCPU/4 + 1), UsedMemory: r.Int64N(capMem + capMem/4),
			CpuPercent: float64(r.IntN(5) * 20), MemoryPercent: float64(r.IntN(5) * 20), RunningApps: r.Int64N(4),
		}
		if r.IntN(4) == 0 {
			// Coarse amounts, so that equal scores (ties) happen.
			w.UsedCpu, w.UsedMemory = w.UsedCpu/1000*1000, w.UsedMemory/gib*gib
		}
		if r.IntN(10) == 0 {
			w.Id = r.Int64N(int64(nWorkers)) + 1 // a duplicate, sometimes
		}
		workers[i] = w
	}
	r.Shuffle(len(workers), func(i, j int) { workers[i], workers[j] = workers[j], workers[i] })
	jobs := make([]*pluginv1.PlaceJob, nJobs)
	for i := range jobs {
		j := &pluginv1.PlaceJob{
			Id: int64(i + 1), AppId: r.Int64N(int64(nJobs/2+1)) + 1, Type: "deploy",
			Cpu: pick(cpus), Memory: pick(mems),
			Runtime: []string{"exec", "podman", "exec", "lxc"}[r.IntN(4)],
		}
		if r.IntN(3) == 0 {
			j.Zone = zones[1+r.IntN(len(zones)-1)]
		}
		for range r.IntN(3) {
			j.Reserved = append(j.Reserved, &pluginv1.Reservation{
				WorkerId: r.Int64N(int64(nWorkers)+2) + 1, Cpu: pick(cpus), Memory: pick(mems)})
		}
		if len(j.Reserved) > 0 && r.IntN(2) == 0 {
			j.CurrentWorkerId = j.Reserved[0].GetWorkerId()
		}
		if r.IntN(50) == 0 {
			j.Cpu = -1
		}
		jobs[i] = j
	}
	return jobs, workers
}

func TestPlaceMatchesReference(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 42))
	weightSets := []Weights{DefaultWeights, {CPU: 1}, {Memory: 1}, {CPU: 0.3, Memory: 2.5}}
	for iter := range 2000 {
		jobs, workers := randomBatch(r, 1+r.IntN(60), r.IntN(40), iter%2 == 1)
		wt := weightSets[iter%len(weightSets)]
		got, err := place(context.Background(), wt, jobs, workers)
		if err != nil {
			t.Fatal(err)
		}
		pt.CheckValid(t, jobs, workers, got)
		want := referencePlace(wt, jobs, workers)
		for i := range jobs {
			if got[i].GetWorkerId() != want[i] {
				t.Fatalf("iteration %d (weights %+v), job %d: plugin chose worker %d, reference %d\njobs: %v\nworkers: %v",
					iter, wt, jobs[i].GetId(), got[i].GetWorkerId(), want[i], jobs, workers)
			}
		}
	}
}

// Whatever the batch, the placements on a worker never add up to more than
// its free room (what a job adds is what its app did not already hold
// there), and a worker without room takes nothing.
func TestPlaceNeverOvercommits(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for iter := range 500 {
		// Many jobs for few workers: most workers end up full.
		jobs, workers := randomBatch(r, 20+r.IntN(200), 1+r.IntN(12), iter%2 == 1)
		got, err := place(context.Background(), DefaultWeights, jobs, workers)
		if err != nil {
			t.Fatal(err)
		}
		type amount struct{ cpu, mem int64 }
		free := map[int64]amount{}
		for _, w := range workers {
			if _, dup := free[w.GetId()]; !dup {
				free[w.GetId()] = amount{w.GetCapacityCpu() - w.GetUsedCpu(), w.GetCapacityMemory() - w.GetUsedMemory()}
			}
		}
		held := map[[2]int64]amount{}
		for _, j := range jobs {
			for _, res := range j.GetReserved() {
				k := [2]int64{j.GetAppId(), res.GetWorkerId()}
				h := held[k]
				held[k] = amount{h.cpu + max(0, res.GetCpu()), h.mem + max(0, res.GetMemory())}
			}
		}
		added, count := map[int64]amount{}, map[int64]int{}
		for i, pl := range got {
			wid := pl.GetWorkerId()
			if wid == 0 {
				continue
			}
			j := jobs[i]
			k := [2]int64{j.GetAppId(), wid}
			h := held[k]
			a := added[wid]
			added[wid] = amount{a.cpu + max(0, j.GetCpu()-h.cpu), a.mem + max(0, j.GetMemory()-h.mem)}
			held[k] = amount{max(h.cpu, j.GetCpu()), max(h.mem, j.GetMemory())}
			count[wid]++
		}
		for wid, a := range added {
			f := free[wid]
			if f.cpu < 0 || f.mem < 0 {
				t.Fatalf("iteration %d: worker %d has no room (%d/%d) but took %d jobs", iter, wid, f.cpu, f.mem, count[wid])
			}
			if a.cpu > f.cpu || a.mem > f.mem {
				t.Fatalf("iteration %d: worker %d had %d/%d free, its %d placements add %d/%d", iter, wid, f.cpu, f.mem, count[wid], a.cpu, a.mem)
			}
		}
	}
}

// benchBatch is a realistic batch: a mixed fleet in three zones, jobs of
// plan sizes, a fifth of them zoned, some redeploys holding reservations
// (the same batch as least-loaded's benchmark).
func benchBatch(nJobs, nWorkers int) ([]*pluginv1.PlaceJob, []*pluginv1.PlaceWorker) {
	r := rand.New(rand.NewPCG(1, 2))
	zones := []string{"eu-1", "eu-2", "us-1"}
	workers := make([]*pluginv1.PlaceWorker, nWorkers)
	for i := range workers {
		capCPU, capMem := int64(16000), 64*gib
		workers[i] = &pluginv1.PlaceWorker{
			Id: int64(i + 1), Zone: zones[i%3], Runtimes: [][]string{{"exec", "podman"}, {"podman"}, {"exec"}}[i%3],
			CapacityCpu: capCPU, CapacityMemory: capMem,
			UsedCpu: r.Int64N(capCPU), UsedMemory: r.Int64N(capMem),
			CpuPercent: r.Float64() * 100, MemoryPercent: r.Float64() * 100, RunningApps: r.Int64N(40),
		}
	}
	jobs := make([]*pluginv1.PlaceJob, nJobs)
	for i := range jobs {
		j := &pluginv1.PlaceJob{
			Id: int64(i + 1), AppId: int64(i + 1), Type: "deploy",
			Cpu: []int64{1000, 2000, 4000}[i%3], Memory: []int64{512 << 20, 2 * gib, 8 * gib}[i%3],
			Runtime: []string{"podman", "exec"}[i%2],
		}
		if i%5 == 0 {
			j.Zone = zones[i%3]
		}
		if i%4 == 0 {
			w := r.Int64N(int64(nWorkers)) + 1
			j.CurrentWorkerId = w
			j.Reserved = []*pluginv1.Reservation{{WorkerId: w, Cpu: 1000, Memory: 512 << 20}}
		}
		jobs[i] = j
	}
	return jobs, workers
}

// jitterBatch is benchBatch on a fleet of several machine sizes whose
// reported capacities all differ a little, so that no two workers have the
// same size (the search's bounds are loosest then).
func jitterBatch(nJobs, nWorkers int) ([]*pluginv1.PlaceJob, []*pluginv1.PlaceWorker) {
	jobs, workers := benchBatch(nJobs, nWorkers)
	r := rand.New(rand.NewPCG(3, 4))
	for i, w := range workers {
		scale := []int64{1, 2, 4}[i%3]
		w.CapacityCpu = 8000*scale + r.Int64N(200)
		w.CapacityMemory = 32*gib*scale - r.Int64N(256<<20)
		w.UsedCpu, w.UsedMemory = r.Int64N(w.CapacityCpu), r.Int64N(w.CapacityMemory)
	}
	return jobs, workers
}

func TestPlace1000x1000(t *testing.T) {
	for _, c := range []struct {
		name  string
		batch func(int, int) ([]*pluginv1.PlaceJob, []*pluginv1.PlaceWorker)
	}{{"one size", benchBatch}, {"all sizes differ", jitterBatch}} {
		t.Run(c.name, func(t *testing.T) {
			jobs, workers := c.batch(1000, 1000)
			start := time.Now()
			got, err := place(context.Background(), DefaultWeights, jobs, workers)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			pt.CheckValid(t, jobs, workers, got)
			refStart := time.Now()
			want := referencePlace(DefaultWeights, jobs, workers)
			refTook := time.Since(refStart)
			placed := 0
			for i := range jobs {
				if got[i].GetWorkerId() != want[i] {
					t.Fatalf("job %d: plugin chose worker %d, reference %d", jobs[i].GetId(), got[i].GetWorkerId(), want[i])
				}
				if want[i] != 0 {
					placed++
				}
			}
			t.Logf("1000 jobs × 1000 workers: %d placed in %v (brute-force reference: %v)", placed, took, refTook)
		})
	}
}

func benchmarkPlace(b *testing.B, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) {
	p := New()
	req := &pluginv1.PlaceRequest{Jobs: jobs, Workers: workers}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Place(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlace is one Place call with 1,000 jobs × 1,000 workers.
func BenchmarkPlace(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	benchmarkPlace(b, jobs, workers)
}

// BenchmarkPlaceTight is a hard case: most workers are nearly full, so few
// fit a job, and those that do hide among those that do not.
func BenchmarkPlaceTight(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for i, w := range workers {
		if i%50 != 0 {
			w.UsedCpu = w.GetCapacityCpu() - 1500
		}
	}
	benchmarkPlace(b, jobs, workers)
}

// BenchmarkPlaceJitter is the other hard case: no two workers of one size.
func BenchmarkPlaceJitter(b *testing.B) {
	jobs, workers := jitterBatch(1000, 1000)
	benchmarkPlace(b, jobs, workers)
}

func BenchmarkReference(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for b.Loop() {
		referencePlace(DefaultWeights, jobs, workers)
	}
}
