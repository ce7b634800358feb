package spread

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
			// 1: a=b=0, all equal: lowest id. 2: a=1 > b=0. 3: a=b=1, w3 is
			// the least loaded of both zones. 4: a=2 > b=1. (least-loaded
			// would put the fourth on w1, as loaded as w2.)
			name:    "zones take turns",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2), pt.Job(3), pt.Job(4)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("b")), pt.Worker(3, pt.Zone("a"))},
			want:    []want{{worker: 1}, {worker: 2}, {worker: 3}, {worker: 2}},
		},
		{
			name:    "the zone with fewer apps wins, however loaded its workers",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Load(10, 10, 5)), pt.Worker(2, pt.Zone("b"), pt.Load(90, 90, 1))},
			want:    []want{{worker: 2}},
		},
		{
			// a = 0 + 10 apps, b = 3.
			name: "a zone's count covers all its workers, whatever their runtime",
			jobs: []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("a"), pt.Runtimes("podman"), pt.Apps(10)),
				pt.Worker(3, pt.Zone("b"), pt.Load(50, 50, 3)),
			},
			want: []want{{worker: 3}},
		},
		{
			// a = 2 apps, b = 5: a; there w2 has the lower score.
			name: "the least loaded worker of the zone",
			jobs: []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1, pt.Zone("a"), pt.Load(50, 50, 1)), pt.Worker(2, pt.Zone("a"), pt.Load(10, 10, 1)),
				pt.Worker(3, pt.Zone("b"), pt.Load(0, 0, 5)),
			},
			want: []want{{worker: 2}},
		},
		{
			// w1 = 0.4*50 + 0.4*50 + 0.2*100 = 60, w2 = 8 + 8 + 20 = 36.
			name:    "zones with equal counts compete on their workers' scores",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Load(50, 50, 2)), pt.Worker(2, pt.Zone("b"), pt.Load(20, 20, 2))},
			want:    []want{{worker: 2}},
		},
		{
			// w1 = 0.4*10 + 0.2*100*2/2 = 24, w2 = 0.4*35 + 0.2*100*1/2 = 24.
			name:    "ties of score go to fewer running apps",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("b"), pt.Load(10, 0, 2)), pt.Worker(2, pt.Zone("b"), pt.Load(35, 0, 1))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "then to the lower id",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(9, pt.Zone("b"), pt.Load(5, 5, 1)), pt.Worker(4, pt.Zone("b"), pt.Load(5, 5, 1)), pt.Worker(7, pt.Zone("b"), pt.Load(5, 5, 1))},
			want:    []want{{worker: 4}},
		},
		{
			name: "a job naming a zone stays in it, however busy",
			jobs: []*pluginv1.PlaceJob{pt.Job(1, pt.InZone("b"))},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("b"), pt.Load(80, 80, 9)), pt.Worker(3, pt.Zone("b"), pt.Load(10, 10, 9)),
			},
			want: []want{{worker: 3}},
		},
		{
			name: "a full zone is skipped for the next least populated",
			jobs: []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(1, pt.Zone("a"), pt.Used(4000, 0)), pt.Worker(2, pt.Zone("b"), pt.Apps(5)), pt.Worker(3, pt.Zone("c"), pt.Apps(9)),
			},
			want: []want{{worker: 2}},
		},
		{
			name:    "workers without a zone are a zone of their own",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2, pt.InZone("a"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Apps(0)), pt.Worker(2, pt.Zone("a"), pt.Apps(3))},
			want:    []want{{worker: 1}, {worker: 2}},
		},
		{
			name:    "runtime must be offered",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Runtime("podman"))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("b"), pt.Runtimes("exec", "podman"), pt.Load(90, 90, 9))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "custom weights: cpu only",
			weights: &Weights{CPU: 1},
			jobs:    []*pluginv1.PlaceJob{pt.Job(1)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Load(10, 90, 9)), pt.Worker(2, pt.Zone("a"), pt.Load(20, 0, 0))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "an app stays where it holds capacity, even in a crowded zone",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Current(1))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Used(4000, 8*gib), pt.Load(90, 90, 10)), pt.Worker(2, pt.Zone("b"))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "but not when the growth does not fit there",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib), pt.Current(1))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Used(3500, 0), pt.Apps(1)), pt.Worker(2, pt.Zone("b"), pt.Apps(4)), pt.Worker(3, pt.Zone("a"), pt.Apps(2))},
			// Zone a (3 apps) beats b (4); w1 has no room for 1000 mCPU more.
			want: []want{{worker: 3}},
		},
		{
			name:    "growth that fits",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(2000, gib), pt.Reserved(1, 1000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Used(3000, 0), pt.Apps(5)), pt.Worker(2, pt.Zone("b"))},
			want:    []want{{worker: 1}},
		},
		{
			name:    "of the workers holding the app's capacity, the least populated zone's",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Reserved(2, 500, 0))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Apps(5)), pt.Worker(2, pt.Zone("b"), pt.Apps(1), pt.Load(90, 90, 1)), pt.Worker(3, pt.Zone("c"))},
			want:    []want{{worker: 2}},
		},
		{
			name:    "a second job of the same app follows the first",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.App(7)), pt.Job(2, pt.App(7), pt.Size(2000, 2*gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("b"))},
			want:    []want{{worker: 1}, {worker: 1}},
		},
		{
			// j1 stays on w1, where its app runs: zone a keeps 1 app, so j2
			// sees a tie and takes w1, the less loaded (28 against 36).
			name:    "an app that runs on its worker already is not counted twice",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Reserved(1, 1000, gib), pt.Current(1)), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Load(10, 10, 1)), pt.Worker(2, pt.Zone("b"), pt.Load(20, 20, 1))},
			want:    []want{{worker: 1}, {worker: 1}},
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
			name:    "an exact fit fits",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(4000, 8*gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1)},
			want:    []want{{worker: 1}},
		},
		{
			name:    "a batch fills workers up to capacity",
			jobs:    []*pluginv1.PlaceJob{pt.Job(1, pt.Size(3000, gib)), pt.Job(2, pt.Size(3000, gib)), pt.Job(3, pt.Size(3000, gib))},
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a")), pt.Worker(2, pt.Zone("b"))},
			want:    []want{{worker: 1}, {worker: 2}, {reason: "no worker has 3000 mCPU / 1GiB free"}},
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
			workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Used(1, 0)), pt.Worker(2, pt.Zone("b"), pt.Used(0, 1))},
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
			// Zone b counts w5's 2 apps, not the repeat of w3 (50 apps), and
			// there is no zone c.
			name: "worker id 0 and duplicate ids are ignored",
			jobs: []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2)},
			workers: []*pluginv1.PlaceWorker{
				pt.Worker(0, pt.Zone("c")), pt.Worker(3, pt.Zone("a"), pt.Apps(4)), pt.Worker(3, pt.Zone("b"), pt.Apps(50)), pt.Worker(5, pt.Zone("b"), pt.Apps(2)),
			},
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

// A batch of new apps over zones of equal workers ends up balanced: zone
// counts differ by at most one.
func TestPlaceBalancesZones(t *testing.T) {
	var workers []*pluginv1.PlaceWorker
	for i := range int64(12) {
		workers = append(workers, pt.Worker(i+1, pt.Zone([]string{"a", "b", "c"}[i%3]), pt.Load(float64(i), float64(i), 0)))
	}
	var jobs []*pluginv1.PlaceJob
	for i := range int64(40) {
		jobs = append(jobs, pt.Job(i+1, pt.Size(250, gib/4)))
	}
	resp, err := New().Place(context.Background(), &pluginv1.PlaceRequest{Jobs: jobs, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	perZone := map[string]int{}
	for _, pl := range resp.GetPlacements() {
		if pl.GetWorkerId() == 0 {
			t.Fatalf("job %d not placed: %s", pl.GetJobId(), pl.GetReason())
		}
		perZone[workers[pl.GetWorkerId()-1].GetZone()]++
	}
	if slices.Max([]int{perZone["a"], perZone["b"], perZone["c"]})-slices.Min([]int{perZone["a"], perZone["b"], perZone["c"]}) > 1 {
		t.Errorf("zones got %v", perZone)
	}
}

func TestPlaceDoesNotModifyTheRequest(t *testing.T) {
	req := &pluginv1.PlaceRequest{
		Jobs:    []*pluginv1.PlaceJob{pt.Job(1), pt.Job(2, pt.Reserved(1, 500, gib))},
		Workers: []*pluginv1.PlaceWorker{pt.Worker(1, pt.Zone("a"), pt.Load(10, 10, 1)), pt.Worker(2, pt.Zone("b"))},
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
// obvious O(jobs × workers) way, with the plugin's documented rules; zone
// counts are summed afresh for every job.
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
	var zoneApps map[string]int64
	better := func(a, b *refWorker) bool {
		if za, zb := zoneApps[a.zone], zoneApps[b.zone]; za != zb {
			return za < zb
		}
		if sa, sb := score(a), score(b); sa != sb {
			return sa < sb
		}
		if a.apps != b.apps {
			return a.apps < b.apps
		}
		return a.id < b.id
	}
	placed := map[int64]map[int64]refRes{} // app → worker → reservation made in this batch
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		if j.GetCpu() < 0 || j.GetMemory() < 0 {
			continue
		}
		zoneApps = map[string]int64{}
		for _, w := range ws {
			zoneApps[w.zone] += w.apps
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
		eligible := func(w *refWorker) bool {
			return slices.Contains(w.runtimes, j.GetRuntime()) && (j.GetZone() == "" || w.zone == j.GetZone())
		}
		fits := func(w *refWorker, cpu, mem int64) bool {
			return w.capCPU-w.usedCPU >= cpu && w.capMem-w.usedMem >= mem
		}
		var best *refWorker
		// Stay where the app holds capacity, if the growth fits.
		for _, w := range ws {
			r, ok := res[w.id]
			if ok && eligible(w) && fits(w, max(0, j.GetCpu()-r.cpu), max(0, j.GetMemory()-r.mem)) && (best == nil || better(w, best)) {
				best = w
			}
		}
		// Else the best of all with room for the full amount.
		if best == nil {
			for _, w := range ws {
				if eligible(w) && fits(w, j.GetCpu(), j.GetMemory()) && (best == nil || better(w, best)) {
					best = w
				}
			}
		}
		if best == nil {
			continue
		}
		out[i] = best.id
		r := res[best.id]
		c, m := max(0, j.GetCpu()-r.cpu), max(0, j.GetMemory()-r.mem)
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

// Whatever the batch, the placements on a worker never add up to more than
// its free room (what a job adds is what its app did not already hold
// there), and a worker without room takes nothing.
func TestPlaceNeverOvercommits(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for iter := range 500 {
		// Many jobs for few workers: most workers end up full.
		jobs, workers := randomBatch(r, 20+r.IntN(200), 1+r.IntN(12))
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

// BenchmarkPlaceTight is the hard case: most workers are nearly full, so
// a job's best fitting worker hides among many that do not fit.
func BenchmarkPlaceTight(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for i, w := range workers {
		if i%50 != 0 {
			w.UsedCpu = w.GetCapacityCpu() - 1500
		}
	}
	benchmarkPlace(b, jobs, workers)
}

// BenchmarkPlaceManyZones spreads the same fleet over 50 zones.
func BenchmarkPlaceManyZones(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for i, w := range workers {
		w.Zone = fmt.Sprintf("z%02d", i%50)
	}
	for i, j := range jobs {
		if j.GetZone() != "" {
			j.Zone = fmt.Sprintf("z%02d", i%50)
		}
	}
	benchmarkPlace(b, jobs, workers)
}

func BenchmarkReference(b *testing.B) {
	jobs, workers := benchBatch(1000, 1000)
	for b.Loop() {
		referencePlace(DefaultWeights, jobs, workers)
	}
}
