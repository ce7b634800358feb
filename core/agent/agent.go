// Package agent is the reference WiseHosting worker agent (`wisehosting
// worker run`): it holds a worker's connection through a protocol client,
// heartbeats with the host's resources, runs deploy/restart/start/stop/
// delete jobs with the exec or the podman runtime, supervises the apps,
// and ships their logs, statistics and limit violations.
//
// Like a worker anyone could write, it imports only the standard library,
// the sdk (wsproto, and the sdk/worker client that plugs into Client) and
// hclog — nothing of the core.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Client is what the agent needs from a worker-protocol client; the
// sdk/worker client satisfies it. Every message the agent sends goes
// through it.
type Client interface {
	// Jobs delivers the jobs the core hands this worker (replayed ones
	// included); it is closed when the client stops.
	Jobs() <-chan wsproto.Job
	// HeartbeatInterval is how often the core wants a heartbeat (0 before
	// registration).
	HeartbeatInterval() time.Duration

	SendHeartbeat(context.Context, wsproto.Heartbeat) error
	SendJobStatus(context.Context, wsproto.JobStatus) error
	SendJobResult(context.Context, wsproto.JobResult) error
	SendAppStats(context.Context, wsproto.AppStats) error
	SendAppStatus(context.Context, wsproto.AppStatus) error
	SendViolation(context.Context, wsproto.Violation) error
	SendRuntimeLog(context.Context, wsproto.RuntimeLog) error
	SendBuildLog(context.Context, wsproto.BuildLog) error
}

// errorSource is the optional part of a client that reports the core's
// error frames; the agent logs them.
type errorSource interface {
	Errors() <-chan wsproto.Error
}

// Job types.
const (
	JobDeploy  = "deploy"
	JobRestart = "restart"
	JobStart   = "start"
	JobStop    = "stop"
	JobDelete  = "delete"
)

// Agent runs jobs for one worker.
type Agent struct {
	cfg    Config
	client Client
	log    hclog.Logger

	drivers map[string]driver
	podman  *podmanDriver
	ports   *portAllocator
	budget  *tokenBucket
	logs    *logShipper
	host    *hostSampler
	askpass string

	// sendCtx carries every message; it ends last, when Run returns.
	sendCtx    context.Context
	sendCancel context.CancelFunc
	// jobCtx is the context of running jobs: cancelled once the shutdown
	// grace has passed.
	jobCtx    context.Context
	jobCancel context.CancelFunc
	// quit is closed when the agent stops watching apps.
	quit     chan struct{}
	bg       sync.WaitGroup // supervisors, retiring releases
	jobsWG   sync.WaitGroup // per-app job runners
	sem      chan struct{}
	runOnce  sync.Once
	stopping chan struct{} // closed when no further job may start

	mu       sync.Mutex
	jobs     map[int64]*jobRecord
	doneJobs []int64 // finished job ids, oldest first, for pruning
	queues   map[int64][]wsproto.Job
	apps     map[int64]*appState
	unsent   map[int64]wsproto.JobResult
	// unsentStatus holds the latest app status per app not yet sent.
	unsentStatus map[int64]wsproto.AppStatus
}

// appState is an app this worker knows.
type appState struct {
	id   int64
	uuid string

	mu  sync.Mutex
	cur *release // nil when the app does not run here
	// retiring counts replaced releases still being stopped.
	retiring sync.WaitGroup
}

type jobRecord struct {
	done   bool
	result wsproto.JobResult
}

// maxJobRecords bounds the finished jobs remembered for deduplication.
const maxJobRecords = 4096

// New returns an agent for client. It creates the data directory.
func New(cfg Config, client Client) (*Agent, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("agent: no client")
	}
	for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "apps"), filepath.Join(cfg.DataDir, "bin")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	a := &Agent{
		cfg:      cfg,
		client:   client,
		log:      cfg.Logger,
		ports:    newPortAllocator(cfg.PortMin, cfg.PortMax),
		budget:   newTokenBucket(wsproto.LogRate, wsproto.LogBurst),
		host:     newHostSampler(procRoot, cfg.DataDir),
		quit:     make(chan struct{}),
		stopping: make(chan struct{}),
		sem:      make(chan struct{}, cfg.MaxConcurrentJobs),
		jobs:     map[int64]*jobRecord{},
		queues:   map[int64][]wsproto.Job{},
		apps:     map[int64]*appState{},
		unsent:   map[int64]wsproto.JobResult{},

		unsentStatus: map[int64]wsproto.AppStatus{},
	}
	a.sendCtx, a.sendCancel = context.WithCancel(context.Background())
	a.jobCtx, a.jobCancel = context.WithCancel(context.Background())
	a.logs = newLogShipper(func(ctx context.Context, m wsproto.RuntimeLog) error {
		return a.send(wsproto.TypeRuntimeLog, func(ctx context.Context) error { return client.SendRuntimeLog(ctx, m) })
	}, a.connected, a.budget, cfg.LogFlushInterval)
	a.podman = newPodmanDriver(a)
	a.drivers = map[string]driver{
		wsproto.RuntimeExec:   &execDriver{a: a},
		wsproto.RuntimePodman: a.podman,
	}
	var err error
	if a.askpass, err = writeAskpass(cfg.DataDir); err != nil {
		return nil, err
	}
	return a, nil
}

// offers reports whether the worker runs the runtime.
func (a *Agent) offers(rt string) bool {
	for _, r := range a.cfg.Runtimes {
		if r == rt {
			return true
		}
	}
	return false
}

// Run adopts the apps a previous agent left running, then runs jobs until
// ctx ends or the client's job channel closes. On the way out it stops
// taking jobs, lets running ones finish for ShutdownGrace, and leaves the
// apps running (or stops them with StopAppsOnExit). Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	first := false
	a.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("agent: Run called twice")
	}
	defer a.sendCancel()

	a.adoptAll()

	loops, stopLoops := context.WithCancel(context.Background())
	var lw sync.WaitGroup
	start := func(f func(context.Context)) {
		lw.Add(1)
		go func() { defer lw.Done(); f(loops) }()
	}
	start(a.heartbeatLoop)
	start(a.statsLoop)
	start(a.resendLoop)
	if es, ok := a.client.(errorSource); ok {
		start(func(ctx context.Context) { a.drainErrors(ctx, es.Errors()) })
	}
	logsDone := make(chan struct{})
	go func() { a.logs.run(loops, a.sendCtx); close(logsDone) }()

	jobs := a.client.Jobs()
	a.log.Info("worker agent running", "runtimes", a.cfg.Runtimes, "data_dir", a.cfg.DataDir)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case job, ok := <-jobs:
			if !ok {
				break loop
			}
			a.accept(job)
		}
	}

	a.log.Info("worker agent stopping: no new jobs")
	close(a.stopping)
	jobsDone := make(chan struct{})
	go func() { a.jobsWG.Wait(); close(jobsDone) }()
	select {
	case <-jobsDone:
	case <-time.After(a.cfg.ShutdownGrace):
		a.log.Warn("cancelling the jobs still running after the shutdown grace", "grace", a.cfg.ShutdownGrace)
		a.jobCancel()
		<-jobsDone
	}
	a.jobCancel()

	a.mu.Lock()
	apps := make([]*appState, 0, len(a.apps))
	for _, ap := range a.apps {
		apps = append(apps, ap)
	}
	a.mu.Unlock()
	if a.cfg.StopAppsOnExit {
		var wg sync.WaitGroup
		for _, ap := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if a.stopApp(ap) {
					a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppStopped, Message: "worker agent exiting"})
				}
			}()
		}
		wg.Wait()
	}
	close(a.quit)
	for _, ap := range apps {
		ap.mu.Lock()
		rel := ap.cur
		ap.mu.Unlock()
		if rel != nil {
			rel.inst.detach()
		}
	}
	a.bg.Wait()
	stopLoops()
	lw.Wait()
	<-logsDone
	a.log.Info("worker agent stopped")
	return nil
}

// accept takes a job from the core: replays of known jobs are dropped (a
// finished one gets its result again), others queue behind their app's.
func (a *Agent) accept(job wsproto.Job) {
	a.mu.Lock()
	if r, ok := a.jobs[job.JobID]; ok {
		var res *wsproto.JobResult
		if r.done {
			rc := r.result
			res = &rc
		}
		a.mu.Unlock()
		a.log.Debug("duplicate job ignored", "job", job.JobID, "finished", res != nil)
		if res != nil {
			a.sendResult(*res)
		}
		return
	}
	a.jobs[job.JobID] = &jobRecord{}
	q, busy := a.queues[job.AppID]
	a.queues[job.AppID] = append(q, job)
	if !busy {
		a.jobsWG.Add(1)
		go a.appJobs(job.AppID)
	}
	a.mu.Unlock()
	a.log.Debug("job accepted", "job", job.JobID, "type", job.Type, "app", job.AppID)
}

// appJobs runs one app's jobs in order, one at a time.
func (a *Agent) appJobs(appID int64) {
	defer a.jobsWG.Done()
	for {
		a.mu.Lock()
		q := a.queues[appID]
		if len(q) == 0 {
			delete(a.queues, appID)
			a.mu.Unlock()
			return
		}
		job := q[0]
		a.queues[appID] = q[1:]
		a.mu.Unlock()

		select {
		case a.sem <- struct{}{}:
		case <-a.stopping:
			a.forget(appID)
			return
		}
		select {
		case <-a.stopping:
			<-a.sem
			a.forget(appID)
			return
		default:
		}
		a.execute(job)
		<-a.sem
	}
}

// forget drops an app's queued jobs at shutdown; the core replays them to
// the next connection.
func (a *Agent) forget(appID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, j := range a.queues[appID] {
		delete(a.jobs, j.JobID)
	}
	delete(a.queues, appID)
}

// execute runs one job and reports it.
func (a *Agent) execute(job wsproto.Job) {
	log := a.log.With("job", job.JobID, "type", job.Type, "app", job.AppID)
	log.Info("job started")
	t0 := time.Now()
	_ = a.send(wsproto.TypeJobStatus, func(ctx context.Context) error {
		return a.client.SendJobStatus(ctx, wsproto.JobStatus{JobID: job.JobID, Status: "processing"})
	})
	res, after := a.runJob(a.jobCtx, job)
	res.JobID = job.JobID

	a.mu.Lock()
	if r := a.jobs[job.JobID]; r != nil {
		r.done, r.result = true, res
	}
	a.doneJobs = append(a.doneJobs, job.JobID)
	for len(a.doneJobs) > maxJobRecords {
		delete(a.jobs, a.doneJobs[0])
		a.doneJobs = a.doneJobs[1:]
	}
	a.mu.Unlock()

	if res.Success {
		log.Info("job succeeded", "took", time.Since(t0).Round(time.Millisecond))
	} else {
		// The error text is the agent's own (redacted) message.
		log.Warn("job failed", "took", time.Since(t0).Round(time.Millisecond), "error", firstLine(res.Error))
	}
	a.sendResult(res)
	if after != nil {
		after()
	}
}

// sendResult sends a job result; one that cannot be sent now is retried
// until it is.
func (a *Agent) sendResult(res wsproto.JobResult) {
	err := a.send(wsproto.TypeJobResult, func(ctx context.Context) error { return a.client.SendJobResult(ctx, res) })
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.unsent[res.JobID] = res
	} else {
		delete(a.unsent, res.JobID)
	}
}

// resendLoop retries the job results and app statuses that could not be
// sent (the connection was down).
func (a *Agent) resendLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ResendInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.connected() {
			continue
		}
		a.mu.Lock()
		var results []wsproto.JobResult
		for _, r := range a.unsent {
			results = append(results, r)
		}
		var statuses []wsproto.AppStatus
		for _, st := range a.unsentStatus {
			statuses = append(statuses, st)
		}
		a.mu.Unlock()
		for _, r := range results {
			a.sendResult(r)
		}
		for _, st := range statuses {
			a.sendStatus(st)
		}
	}
}

// errNotConnected is returned for messages not sent because the client is
// between connections (sdk/worker's Send would wait for the next one).
var errNotConnected = errors.New("not connected to the core")

// connected reports whether the client holds a connection now (clients
// that cannot tell are taken as connected).
func (a *Agent) connected() bool {
	if c, ok := a.client.(interface{ Connected() bool }); ok {
		return c.Connected()
	}
	return true
}

// send sends one message unless the client is disconnected, waiting at most
// SendTimeout. Heartbeats, stats and logs are not queued: newer ones follow.
func (a *Agent) send(what string, f func(context.Context) error) error {
	if !a.connected() {
		return errNotConnected
	}
	ctx, cancel := context.WithTimeout(a.sendCtx, a.cfg.SendTimeout)
	defer cancel()
	err := f(ctx)
	if err != nil {
		a.log.Debug("message not sent", "type", what, "error", err)
	}
	return err
}

// sendStatus sends an app status; one that cannot be sent is kept (the
// latest per app) and retried, so the core learns of a crash that happened
// while the connection was down.
func (a *Agent) sendStatus(st wsproto.AppStatus) {
	err := a.send(wsproto.TypeAppStatus, func(ctx context.Context) error { return a.client.SendAppStatus(ctx, st) })
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.unsentStatus[st.AppID] = st
	} else {
		delete(a.unsentStatus, st.AppID)
	}
}

func (a *Agent) drainErrors(ctx context.Context, ch <-chan wsproto.Error) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			a.log.Warn("the core refused a message", "code", e.Code, "message", e.Message)
		}
	}
}

// heartbeatLoop sends a heartbeat at once, then every HeartbeatInterval;
// after a failed send it tries again within two seconds.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hb := a.host.sample()
		hb.RunningApps = int64(a.runningCount())
		next := a.client.HeartbeatInterval()
		if next <= 0 {
			next = DefaultHeartbeat
		}
		if err := a.send(wsproto.TypeHeartbeat, func(ctx context.Context) error { return a.client.SendHeartbeat(ctx, hb) }); err != nil {
			a.log.Debug("heartbeat not sent", "error", err)
			next = min(next, 2*time.Second)
		}
		t.Reset(next)
	}
}

func (a *Agent) runningCount() int {
	n := 0
	for _, rel := range a.releases() {
		if !rel.crashloop.Load() {
			n++
		}
	}
	return n
}

// releases returns the current release of every app that has one.
func (a *Agent) releases() []*release {
	a.mu.Lock()
	apps := make([]*appState, 0, len(a.apps))
	for _, ap := range a.apps {
		apps = append(apps, ap)
	}
	a.mu.Unlock()
	var out []*release
	for _, ap := range apps {
		ap.mu.Lock()
		if ap.cur != nil {
			out = append(out, ap.cur)
		}
		ap.mu.Unlock()
	}
	return out
}

// app returns the state of an app, creating it (uuid may be empty when
// unknown).
func (a *Agent) app(id int64, uuid string) *appState {
	a.mu.Lock()
	defer a.mu.Unlock()
	ap := a.apps[id]
	if ap == nil {
		ap = &appState{id: id, uuid: uuid}
		a.apps[id] = ap
	} else if ap.uuid == "" {
		ap.uuid = uuid
	}
	return ap
}

func (a *Agent) lookup(id int64) *appState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apps[id]
}

// saveApp persists an app's record (its current release, if any).
func (a *Agent) saveApp(ap *appState) {
	if ap.uuid == "" {
		return
	}
	ap.mu.Lock()
	rec := appRecord{AppID: ap.id, AppUUID: ap.uuid}
	if rel := ap.cur; rel != nil {
		rel.mu.Lock() // restarts and renames change the spec under it
		s := *rel.spec
		rel.mu.Unlock()
		rec.Release = &s
	}
	ap.mu.Unlock()
	dir := a.appDir(ap.uuid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		a.log.Error("cannot save app state", "app", ap.id, "error", err)
		return
	}
	if err := writeJSON(filepath.Join(dir, "state.json"), rec); err != nil {
		a.log.Error("cannot save app state", "app", ap.id, "error", err)
	}
}

// adoptAll takes over the apps a previous agent left in the data directory:
// running ones are watched again (and reported running), dead ones are
// restarted by their supervisor.
func (a *Agent) adoptAll() {
	ents, _ := os.ReadDir(filepath.Join(a.cfg.DataDir, "apps"))
	for _, e := range ents {
		if !e.IsDir() || !uuidRE.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "apps", e.Name(), "state.json"))
		if err != nil {
			continue
		}
		var rec appRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.AppUUID != e.Name() {
			a.log.Warn("ignoring unreadable app state", "dir", e.Name())
			continue
		}
		ap := a.app(rec.AppID, rec.AppUUID)
		spec := rec.Release
		if spec == nil {
			continue
		}
		drv := a.drivers[spec.Runtime]
		if drv == nil {
			continue
		}
		inst := drv.adopt(spec)
		a.ports.reserve(spec.Port)
		rel := newRelease(spec, inst, drv)
		rel.stats.prime(a, rel)
		ap.mu.Lock()
		ap.cur = rel
		ap.mu.Unlock()
		alive := true
		select {
		case <-inst.done():
			alive = false
		default:
		}
		a.log.Info("adopted app", "app", ap.id, "runtime", spec.Runtime, "port", spec.Port, "alive", alive)
		if alive {
			a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppRunning, Message: "adopted by a restarted worker agent"})
		}
		a.bg.Add(1)
		go a.supervise(ap, rel)
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
