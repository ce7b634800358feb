package sdktest

import (
	"time"

	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// SampleJobs is the default scheduler sample: a new deploy, a restart that
// holds a reservation on its worker and is pinned to a zone, and a start
// that fits no worker. Each call returns fresh values.
func SampleJobs() []*pluginv1.PlaceJob {
	return []*pluginv1.PlaceJob{
		{Id: 101, AppId: 1, Type: "deploy", Priority: 10, Cpu: 500, Memory: 256 * mib, Runtime: "exec"},
		{Id: 102, AppId: 2, Type: "restart", Priority: 5, Cpu: 1000, Memory: 512 * mib, Runtime: "podman",
			Zone: "eu-1", CurrentWorkerId: 12, Reserved: []*pluginv1.Reservation{{WorkerId: 12, Cpu: 1000, Memory: 512 * mib}}},
		{Id: 103, AppId: 3, Type: "start", Priority: 0, Cpu: 64_000, Memory: 1024 * gib, Runtime: "exec"},
	}
}

// SampleWorkers is the default scheduler sample: three workers in two zones
// with different runtimes and loads. Each call returns fresh values.
func SampleWorkers() []*pluginv1.PlaceWorker {
	return []*pluginv1.PlaceWorker{
		{Id: 11, Zone: "eu-1", Runtimes: []string{"exec", "podman"}, CapacityCpu: 4000, CapacityMemory: 8 * gib,
			UsedCpu: 1000, UsedMemory: 2 * gib, CpuPercent: 20, MemoryPercent: 30, RunningApps: 3},
		{Id: 12, Zone: "eu-1", Runtimes: []string{"podman"}, CapacityCpu: 8000, CapacityMemory: 16 * gib,
			UsedCpu: 6000, UsedMemory: 12 * gib, CpuPercent: 70, MemoryPercent: 75, RunningApps: 9},
		{Id: 13, Zone: "us-1", Runtimes: []string{"exec"}, CapacityCpu: 2000, CapacityMemory: 4 * gib,
			CpuPercent: 1, MemoryPercent: 5},
	}
}

// SampleRoutes is the default proxy sample: three apps sorted by name, one
// with a custom domain. Each call returns fresh values.
func SampleRoutes() []*pluginv1.Route {
	return []*pluginv1.Route{
		{AppId: 1, Name: "api", Hosts: []string{"api.apps.example.com"}, Upstream: "http://10.0.0.11:20001"},
		{AppId: 2, Name: "blog", Hosts: []string{"blog.apps.example.com", "www.example.org"}, Upstream: "http://10.0.0.12:20002"},
		{AppId: 3, Name: "shop", Hosts: []string{"shop.apps.example.com"}, Upstream: "http://10.0.0.11:20003"},
	}
}

// SampleEvents is the default alert-sink sample: a failed deployment (first
// attempt) and a CPU alert being retried. Each call returns fresh values.
func SampleEvents() []*pluginv1.Event {
	t := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	return []*pluginv1.Event{
		{Id: "sdktest-evt-1", Type: event.DeploymentFailed, TimeUnixNano: t, UserId: 7, AppId: 1,
			DataJson: []byte(`{"deployment_id":42,"error":"build failed: exit status 1"}`), Attempt: 1},
		{Id: "sdktest-evt-2", Type: event.AppCPU, TimeUnixNano: t + int64(time.Minute), UserId: 7, AppId: 2,
			DataJson: []byte(`{"value":97.5,"threshold":90}`), Attempt: 3},
	}
}
