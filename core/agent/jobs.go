package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// runJob runs a job and returns its result; after, when set, runs once the
// result is sent.
func (a *Agent) runJob(ctx context.Context, job wsproto.Job) (wsproto.JobResult, func()) {
	switch job.Type {
	case JobDeploy, JobRestart, JobStart:
		return a.deploy(ctx, job)
	case JobStop:
		return a.stopJob(job, false)
	case JobDelete:
		return a.stopJob(job, true)
	default:
		return failed("unknown job type %q", job.Type), nil
	}
}

func failed(format string, args ...any) wsproto.JobResult {
	return wsproto.JobResult{Success: false, Error: fmt.Sprintf(format, args...)}
}

// deploy fetches, builds and starts a release, then replaces the app's
// previous one (stopped once the new one answers and the result is out).
func (a *Agent) deploy(ctx context.Context, job wsproto.Job) (wsproto.JobResult, func()) {
	p := job.Payload
	if p == nil {
		return failed("%s job without a deploy payload", job.Type), nil
	}
	if p.AppID != 0 && p.AppID != job.AppID {
		return failed("the payload names app %d, the job app %d", p.AppID, job.AppID), nil
	}
	if !uuidRE.MatchString(p.AppUUID) {
		return failed("invalid app uuid %q", p.AppUUID), nil
	}
	rt := p.Runtime
	if rt == "" {
		rt = wsproto.RuntimeExec
	}
	drv := a.drivers[rt]
	if drv == nil || !a.offers(rt) {
		return failed("runtime %q is not offered by this worker (it offers %v)", rt, a.cfg.Runtimes), nil
	}
	if rt == wsproto.RuntimeExec && p.RunCommand == "" {
		return failed("no run command"), nil
	}
	ap := a.app(job.AppID, p.AppUUID)
	if ap.uuid != p.AppUUID {
		return failed("app %d is known here under another uuid", job.AppID), nil
	}
	a.saveApp(ap)

	buildDir := filepath.Join(a.appDir(p.AppUUID), "builds", strconv.FormatInt(job.JobID, 10))
	os.RemoveAll(buildDir) // a replayed job after an agent restart
	if err := os.MkdirAll(filepath.Dir(buildDir), 0o700); err != nil {
		return failed("%v", err), nil
	}

	bl := newBuildLog()
	bl.addRedaction(p.GitToken)
	stopLog := a.streamBuildLog(job, bl)
	res, rel, old := a.deployRelease(ctx, job, p, ap, drv, buildDir, bl)
	if !res.Success {
		bl.note("failed: " + firstLine(res.Error))
		os.RemoveAll(buildDir)
	}
	stopLog()
	if rel == nil {
		return res, nil
	}
	return res, func() {
		a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppRunning})
		if old != nil {
			a.retire(ap, old)
		}
	}
}

func (a *Agent) deployRelease(ctx context.Context, job wsproto.Job, p *wsproto.DeployPayload, ap *appState, drv driver, buildDir string, bl *buildLog) (wsproto.JobResult, *release, *release) {
	bctx, cancel := context.WithTimeout(ctx, a.cfg.BuildTimeout)
	defer cancel()
	buildErr := func(what string, err error) wsproto.JobResult {
		switch {
		case errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return failed("%s: timed out after %s", what, a.cfg.BuildTimeout)
		case ctx.Err() != nil:
			return failed("%s: the worker agent is shutting down", what)
		}
		return failed("%s", withLastLines(what+": "+err.Error(), bl.lastLines()))
	}

	commit, subject, err := a.fetchSource(bctx, p, buildDir, bl)
	if err != nil {
		return buildErr("fetching the source", err), nil, nil
	}

	port, err := a.ports.acquire()
	if err != nil {
		return failed("%v", err), nil, nil
	}
	keepPort := false
	defer func() {
		if !keepPort {
			a.ports.release(port)
		}
	}()
	env, err := appEnv(p.Env, port)
	if err != nil {
		return failed("%v", err), nil, nil
	}
	spec := &runSpec{
		AppID: job.AppID, AppUUID: p.AppUUID, JobID: job.JobID, DeploymentID: job.DeploymentID,
		Runtime: drv.name(), Dir: buildDir, Command: p.RunCommand, Env: env, Port: port,
		Limits: p.Limits, Commit: commit, CommitMessage: subject,
	}
	if drv.name() == wsproto.RuntimePodman {
		if v, ok := p.Env["PORT"]; ok {
			spec.Env["PORT"] = v // the container's port; the host port is spec.Port
		} else {
			delete(spec.Env, "PORT")
		}
	}
	if err := drv.build(bctx, spec, p, bl); err != nil {
		drv.cleanup(&runSpec{Image: spec.Image})
		return buildErr("build failed", err), nil, nil
	}
	cancel()
	if ctx.Err() != nil {
		drv.cleanup(&runSpec{Image: spec.Image})
		return failed("the worker agent is shutting down"), nil, nil
	}

	ap.mu.Lock()
	old := ap.cur
	ap.mu.Unlock()
	undo, err := drv.prepare(ctx, spec, old)
	if err != nil {
		drv.cleanup(&runSpec{Image: spec.Image})
		return failed("preparing the release: %v", err), nil, nil
	}
	bl.note(fmt.Sprintf("starting on port %d", port))
	inst, err := drv.start(ctx, spec)
	if err != nil {
		undo()
		drv.cleanup(&runSpec{Image: spec.Image})
		return failed("starting the app: %v", err), nil, nil
	}
	if err := waitReady(ctx, port, inst, a.cfg.StartTimeout, nil); err != nil {
		inst.stop(0)
		inst.drainLogs()
		lines := inst.lastLines()
		inst.remove()
		undo()
		drv.cleanup(&runSpec{Stdout: spec.Stdout, Stderr: spec.Stderr, Image: spec.Image})
		return failed("%s", withLastLines(err.Error(), lines)), nil, nil
	}
	bl.note(fmt.Sprintf("the app accepts connections on port %d", port))
	if drv.name() == wsproto.RuntimePodman {
		os.RemoveAll(buildDir) // the image holds everything
	}

	rel := newRelease(spec, inst, drv)
	rel.stats.prime(a, rel)
	ap.mu.Lock()
	old = ap.cur
	ap.cur = rel
	ap.mu.Unlock()
	keepPort = true
	a.saveApp(ap)
	a.bg.Add(1)
	go a.supervise(ap, rel)

	msg := fmt.Sprintf("running on port %d", port)
	if commit != "" {
		msg = fmt.Sprintf("%s running on port %d", shortSHA(commit), port)
	}
	return wsproto.JobResult{
		Success: true, Message: msg, Port: int64(port), ContainerID: inst.containerID(),
		CommitSHA: commit, CommitMessage: subject,
	}, rel, old
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// stopJob stops an app (stop) or stops and removes it (delete).
func (a *Agent) stopJob(job wsproto.Job, del bool) (wsproto.JobResult, func()) {
	ap := a.lookup(job.AppID)
	if ap == nil && job.Payload != nil && uuidRE.MatchString(job.Payload.AppUUID) {
		ap = a.app(job.AppID, job.Payload.AppUUID)
	}
	if ap == nil {
		res := wsproto.JobResult{Success: true, Message: "the app does not run on this worker"}
		if del {
			return res, nil
		}
		return res, func() { a.sendStatus(wsproto.AppStatus{AppID: job.AppID, Status: wsproto.AppStopped}) }
	}
	was := a.stopApp(ap)
	if del {
		if ap.uuid != "" {
			if err := os.RemoveAll(a.appDir(ap.uuid)); err != nil {
				return failed("removing the app's files: %v", err), nil
			}
			if a.offers(wsproto.RuntimePodman) {
				// Whatever a lost release left behind.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, _ = a.podman.run(ctx, "rm", "-f", "--ignore", containerName(ap.uuid))
				cancel()
			}
		}
		a.mu.Lock()
		delete(a.apps, ap.id)
		a.mu.Unlock()
		return wsproto.JobResult{Success: true, Message: "deleted"}, nil
	}
	msg := "stopped"
	if !was {
		msg = "the app was not running"
	}
	return wsproto.JobResult{Success: true, Message: msg}, func() {
		a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppStopped})
	}
}

// streamBuildLog sends a job's build log while it grows: the whole log so
// far (capped) at most every BuildLogInterval, skipping a beat when the log
// budget is short, and once more at the end. The returned func sends the
// final log and waits.
func (a *Agent) streamBuildLog(job wsproto.Job, bl *buildLog) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	sent := -1
	send := func(final bool) {
		logs, v := bl.snapshot()
		if v == sent {
			return
		}
		if final {
			ctx, cancel := context.WithTimeout(a.sendCtx, 10*time.Second)
			_ = a.budget.wait(ctx, len(logs))
			cancel()
		} else if !a.budget.take(len(logs)) {
			return
		}
		m := wsproto.BuildLog{DeploymentID: job.DeploymentID, JobID: job.JobID, Logs: logs}
		if a.send(wsproto.TypeBuildLog, func(ctx context.Context) error { return a.client.SendBuildLog(ctx, m) }) == nil {
			sent = v
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(a.cfg.BuildLogInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				send(true)
				return
			case <-t.C:
				send(false)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
