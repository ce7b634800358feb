package leastloaded

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/placement"
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
			name:    "lowest score wins",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(50, 50, 0)), pt.Worker(2, pt.Load(10, 10, 0)), pt.Worker(3, pt.Load(10, 30, 0))},
			want:    []want{{worker: 2}},
		},
		{
			// maxApps = 10: w1 = 0.2*100 = 20, w2 = 0.4*20 = 8.
			name:    "app count is normalised against the busiest worker",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(0, 0, 10)), pt.Worker(2, pt.Load(20, 0, 0))},
			want:    []want{{worker: 2}},
		},
		{
			// w1 = 0.4*10 + 0.2*100*2/2 = 24, w2 = 0.4*35 = 14 +  0.2*50 = 24: tie, fewer apps wins.
			name:    "ties go to fewer running apps",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(10, 0, 2)), pt.Worker(2, pt.Load(35, 0, 1))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "then to the lower id",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(9, pt.Load(5, 5, 1)), pt.Worker(4, pt.Load(5, 5, 1)), pt.Worker(7, pt.Load(5, 5, 1))},
			want:    []want{{worker: 4}},
		},
		{
			name:    "custom weights: cpu only",
			weights: &Weights{CPU: 1},
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(10, 90, 9)), pt.Worker(2, pt.Load(20, 0, 0))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "runtime must be offered",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Runtime("podman"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2, pt.Runtimes("exec", "podman"), pt.Load(90, 90, 3))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "zone must match when set",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("eu-2")), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("eu-1"), pt.Load(60, 60, 0)), pt.Worker(2, pt.Zone("eu-2"), pt.Load(50, 50, 0)), pt.Worker(3, pt.Load(1, 1, 0))},
			want:    []want{{worker: 2}, {worker: 3}},
		},
		{
			name: "room for the full amount",
			jobs: []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, 2*gib))},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1, pt.Used(2500, 0)),                    // 1500 mCPU free
				pt.Worker(2, pt.Used(0, 7*gib), pt.Load(0, 0, 0)), // 1GiB free
				pt.Worker(3, pt.Used(2000, 6*gib), pt.Load(80, 80, 5)),
			},
			want: []want{{worker: 3}},
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
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(4000, 8*gib), pt.Load(90, 90, 4)), pt.Worker(2, pt.Used(4000, 8*gib))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "a reservation covers only what it holds: growth must fit",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(3100, 0)), pt.Worker(2, pt.Used(2000, 0), pt.Load(99, 99, 9))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "growth that fits",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Used(3000, 0), pt.Load(50, 50, 1)), pt.Worker(2, pt.Used(4000, 0))},
			want:    []want{{worker: 1}},
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
			name:    "a batch spreads over equal workers",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2), pt.Job(3), pt.Job(4)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2), pt.Worker(3)},
			// After each placement the chosen worker's cpu/mem percent
			// grows by 25/12.5 and it runs one more app.
			want: []want{{worker: 1}, {worker: 2}, {worker: 3}, {worker: 1}},
		},
		{
			name:    "a batch fills workers up to capacity",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(3000, gib)), pt.Job(2, pt.Size(3000, gib)), pt.Job(3, pt.Size(3000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1), pt.Worker(2, pt.Load(50, 50, 0))},
			want:    []want{{worker: 1}, {worker: 2}, {reason: "no worker has 3000 mCPU / 1GiB free"}},
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
			workers: []*pluginv1.PlaceWorker{pt.Worker(0), pt.Worker(3, pt.Load(50, 50, 1)), pt.Worker(3, pt.Load(0, 0, 0))},
			want:    []want{{worker: 3}, {worker: 3}},
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
				raw, err := json.Marshal(placement.LoadWeightsConfig{Weights: tt.weights})
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: raw}); err != nil {
					t.Fatal(err)
				}
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
		Workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Load(10, 10, 1)), pt.Worker(2)},
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
	cpuPct, memPct                   float64
	apps                             int64
}

type refRes struct{ cpu, mem int64 }

// referencePlace places jobs by checking every worker for every job, the
// obvious O(jobs × workers) way, with the plugin's documented rules.
func referencePlace(wt Weights, jobs []*pluginv1.PlaceJob, workers []*pluginv1.PlaceWorker) []int64 {
	var ws []*refWorker
	seen := map[int64]bool{}
	maxApps := 1.0
	for _, w := range workers {
		if w.GetId() == 0 || seen[w.GetId()] {
			continue
		}
		seen[w.GetId()] = true
		ws = append(ws, &refWorker{
			id: w.GetId(), zone: w.GetZone(), runtimes: w.GetRuntimes(),
			capCPU: w.GetCapacityCpu(), capMem: w.GetCapacityMemory(), usedCPU: w.GetUsedCpu(), usedMem: w.GetUsedMemory(),
			cpuPct: w.GetCpuPercent(), memPct: w.GetMemoryPercent(), apps: w.GetRunningApps(),
		})
		maxApps = max(maxApps, float64(w.GetRunningApps()))
	}
	score := func(w *refWorker) float64 {
		norm := 100 * float64(w.apps) / maxApps
		return float64(wt.CPU*w.cpuPct) + float64(wt.Memory*w.memPct) + float64(wt.Apps*norm)
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
			s := score(w)
			if best == nil || s < bestScore || (s == bestScore && (w.apps < best.apps || (w.apps == best.apps && w.id < best.id))) {
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
		if best.capCPU > 0 {
			best.cpuPct += 100 * float64(c) / float64(best.capCPU)
		}
		if best.capMem > 0 {
			best.memPct += 100 * float64(m) / float64(best.capMem)
		}
		_, again := placed[j.GetAppId()][best.id]
		if j.GetCurrentWorkerId() != best.id && !again {
			best.apps++
		}
		r := res[best.id]
		if placed[j.GetAppId()] == nil {
			placed[j.GetAppId()] = map[int64]refRes{}
		}
		placed[j.GetAppId()][best.id] = refRes{max(r.cpu, j.GetCpu()), max(r.mem, j.GetMemory())}
	}
	return out
}

// --- randomized comparison ----------------------------------------------------

func randomBatch(r *rand.Rand, nJobs, nWorkers int) ([]*pluginv1.PlaceJob, []*pluginv1.PlaceWorker) {
	zones := []string{"", "eu-1", "eu-2", "us-1"}
	rts := [][]string{{"exec"}, {"podman"}, {"exec", "podman"}, {"podman", "exec", "podman"}, {}}
	pick := func(xs []int64) int64 { return xs[r.IntN(len(xs))] }
	cpus := []int64{0, 250, 500, 1000, 2000, 4000}
	mems := []int64{0, 256 << 20, 512 << 20, gib, 2 * gib, 4 * gib}
	workers := make([]*pluginv1.PlaceWorker, nWorkers)
	for i := range workers {
		capCPU, capMem := pick([]int64{2000, 4000, 8000, 16000}), pick([]int64{4 * gib, 8 * gib, 16 * gib})
		workers[i] = &pluginv1.PlaceWorker{
			Id: int64(i + 1), Zone: zones[r.IntN(len(zones))], Runtimes: rts[r.IntN(len(rts))],
			CapacityCpu: capCPU, CapacityMemory: capMem,
			UsedCpu: r.Int64N(capCPU + capCPU/4), UsedMemory: r.Int64N(capMem + capMem/4),
			// Coarse values so that ties happen.
			CpuPercent: float64(r.IntN(5) * 20), MemoryPercent: float64(r.IntN(5) * 20), RunningApps: r.Int64N(4),
		}
		if r.IntN(10) == 0 {
			workers[i].Id = r.Int64N(int64(nWorkers)) + 1 // a duplicate, sometimes
		}
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
	weightSets := []Weights{DefaultWeights, {CPU: 1}, {Apps: 1}, {CPU: 0.1, Memory: 0.7, Apps: 0.2}}
	for iter := range 2000 {
		jobs, workers := randomBatch(r, 1+r.IntN(60), r.IntN(40))
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

// benchBatch is a realistic batch: a mixed fleet in three zones, jobs of
// plan sizes, a fifth of them zoned, some redeploys holding reservations.
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

func TestPlace1000x1000(t *testing.T) {
	jobs, workers := benchBatch(1000, 1000)
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
}

func BenchmarkPlace1000x1000(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
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

// BenchmarkPlaceTight is the hard case: most workers are nearly full, so
// a job's best fitting worker sits deep in the heap.
func BenchmarkPlaceTight1000x1000(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for i, w := range workers {
		if i%50 != 0 {
			w.UsedCpu = w.GetCapacityCpu() - 1500
		}
	}
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

func BenchmarkReference1000x1000(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for b.Loop() {
		referencePlace(DefaultWeights, jobs, workers)
	}
}
