package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// supervise watches a release: when its app exits without being asked to,
// it reports app_status exited and restarts it after a backoff; more than
// CrashLoopRestarts restarts within CrashLoopWindow make it crashloop
// (reported, not restarted again).
func (a *Agent) supervise(ap *appState, rel *release) {
	defer a.bg.Done()
	defer close(rel.supDone)
	for {
		select {
		case <-rel.inst.done():
		case <-a.quit:
			return
		case <-rel.stopCh:
			return
		}
		if rel.isStopping() {
			return
		}
		code := rel.inst.exitCode()
		rel.inst.afterExit()
		now := time.Now()
		recent := rel.restarts[:0]
		for _, t := range rel.restarts {
			if now.Sub(t) < a.cfg.CrashLoopWindow {
				recent = append(recent, t)
			}
		}
		rel.restarts = append(recent, now)
		count := rel.restartCount.Load()
		a.log.Warn("app exited", "app", ap.id, "exit_code", code, "restarts", count)
		a.logs.add(ap.id, "system", fmt.Sprintf("[worker] the app exited with code %d", code))
		a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppExited, ExitCode: code, RestartCount: count})
		if len(rel.restarts) > a.cfg.CrashLoopRestarts {
			rel.crashloop.Store(true)
			msg := fmt.Sprintf("exited %d times within %s; not restarting", len(rel.restarts), a.cfg.CrashLoopWindow)
			a.log.Warn("app crashloops", "app", ap.id, "restarts", count)
			a.logs.add(ap.id, "system", "[worker] the app "+msg)
			a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppCrashloop, RestartCount: count, ExitCode: code, Message: msg})
			return
		}
		delay := a.cfg.RestartBackoffMin << (len(rel.restarts) - 1)
		if delay > a.cfg.RestartBackoffMax || delay <= 0 {
			delay = a.cfg.RestartBackoffMax
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-a.quit:
			t.Stop()
			return
		case <-rel.stopCh:
			t.Stop()
			return
		}
		rel.mu.Lock()
		if rel.stopping {
			rel.mu.Unlock()
			return
		}
		err := rel.inst.restart(context.Background())
		rel.mu.Unlock()
		rel.restartCount.Add(1)
		if err != nil {
			// The previous run's done channel is still closed: the loop
			// counts this as another exit.
			a.log.Warn("app restart failed", "app", ap.id, "error", err)
			continue
		}
		a.saveApp(ap) // a new pid
		a.logs.add(ap.id, "system", fmt.Sprintf("[worker] restarted the app (restart %d)", rel.restartCount.Load()))
		if err := waitReady(context.Background(), rel.spec.Port, rel.inst, a.cfg.StartTimeout, rel.stopCh); err != nil {
			select {
			case <-rel.inst.done():
			default:
				if !rel.isStopping() {
					a.log.Warn("restarted app did not come up; killing it", "app", ap.id, "error", err)
					rel.inst.kill()
				}
			}
			continue
		}
		a.sendStatus(wsproto.AppStatus{AppID: ap.id, Status: wsproto.AppRunning, RestartCount: rel.restartCount.Load()})
	}
}

// stopRelease ends a release for good: the supervisor stands down, the app
// is stopped, and its port, files and container are freed.
func (a *Agent) stopRelease(rel *release) {
	rel.markStopping()
	rel.inst.stop(a.cfg.StopTimeout)
	<-rel.supDone
	rel.inst.remove()
	rel.drv.cleanup(rel.spec)
	a.ports.release(rel.spec.Port)
}

// stopApp stops an app's current release, and waits for replaced releases
// still stopping. It reports whether a release was running.
func (a *Agent) stopApp(ap *appState) bool {
	ap.mu.Lock()
	rel := ap.cur
	ap.cur = nil
	ap.mu.Unlock()
	if rel != nil {
		a.stopRelease(rel)
	}
	ap.retiring.Wait()
	a.saveApp(ap)
	return rel != nil
}

// retire stops a replaced release in the background, after the new one
// answered and its job result went out.
func (a *Agent) retire(ap *appState, old *release) {
	old.markStopping()
	ap.retiring.Add(1)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		defer ap.retiring.Done()
		a.stopRelease(old)
		a.log.Debug("previous release stopped", "app", ap.id, "job", old.spec.JobID)
	}()
}
