package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// reply is a handler's refusal: the code and message of the error
// envelope answering the message.
type reply struct {
	code, msg string
}

func refuse(code, format string, args ...any) *reply {
	return &reply{code: code, msg: fmt.Sprintf(format, args...)}
}

// handler handles one verified message of its type.
type handler func(c *conn, ctx context.Context, env *wsproto.Envelope) *reply

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		wsproto.TypeHeartbeat:  (*conn).onHeartbeat,
		wsproto.TypeJobStatus:  (*conn).onJobStatus,
		wsproto.TypeJobResult:  (*conn).onJobResult,
		wsproto.TypeAppStats:   (*conn).onAppStats,
		wsproto.TypeAppStatus:  (*conn).onAppStatus,
		wsproto.TypeViolation:  (*conn).onViolation,
		wsproto.TypeRuntimeLog: (*conn).onRuntimeLog,
		wsproto.TypeBuildLog:   (*conn).onBuildLog,
	}
}

// handleFrame verifies one data frame — envelope shape, MAC, clock,
// sequence, in that order — and dispatches it. Every refusal is answered
// with an error envelope and counted; the frame's bytes are not retained.
func (c *conn) handleFrame(frame []byte) {
	h := c.h
	env, err := wsproto.Decode(frame)
	if err != nil {
		c.sendError(0, wsproto.CodeBadFrame, err.Error())
		return
	}
	if c.verifier == nil {
		c.verifier = wsproto.NewMAC(c.key[:])
	}
	if err := wsproto.OpenWith(c.verifier, wsproto.WorkerToCore, env); err != nil {
		c.badMACs++
		c.sendError(env.Seq, wsproto.CodeBadMAC, "the envelope MAC does not verify")
		if c.badMACs >= maxBadMACs {
			h.m.rejected.WithLabelValues(reasonBadMACClose).Inc()
			c.close(closeBadMACs, "too many envelopes with a bad MAC", reasonBadMACClose)
		}
		return
	}
	c.badMACs = 0
	if err := wsproto.CheckClock(env.TS, h.now()); err != nil {
		c.sendError(env.Seq, wsproto.CodeBadClock, fmt.Sprintf("ts is more than %s away from the core's clock", wsproto.MaxClockSkew))
		return
	}
	if !c.window.Accept(env.Seq) {
		c.sendError(env.Seq, wsproto.CodeReplayed, "sequence number already seen or too old")
		return
	}
	fn, ok := handlers[env.Type]
	if !ok {
		c.sendError(env.Seq, wsproto.CodeUnknownType, fmt.Sprintf("unknown message type %q", cutUTF8(env.Type, 64)))
		return
	}
	h.recv[env.Type].Inc()
	if r := c.dispatch(fn, env); r != nil {
		c.sendError(env.Seq, r.code, r.msg)
	}
}

// dispatch runs a handler with its own I/O deadline; a panic is recovered,
// counted and answered as an internal error.
func (c *conn) dispatch(fn handler, env *wsproto.Envelope) (r *reply) {
	ctx := &lazyTimeout{parent: c.h.opCtx, d: storeTimeout}
	defer ctx.cancel()
	defer func() {
		if v := recover(); v != nil {
			c.h.m.panics.Inc()
			c.h.log.Error("worker message handler panicked", "type", env.Type, "worker_id", c.workerID,
				"panic", v, "stack", string(debug.Stack()))
			r = refuse(wsproto.CodeInternal, "internal error")
		}
	}()
	return fn(c, ctx, env)
}

// lazyTimeout is a context that times out d after it is first asked for
// its deadline, channel or error. Most messages (statistics, heartbeats)
// are handled in memory and never ask: they cost no timer.
type lazyTimeout struct {
	parent context.Context
	d      time.Duration
	once   sync.Once
	ctx    context.Context
	stop   context.CancelFunc
}

func (l *lazyTimeout) real() context.Context {
	l.once.Do(func() { l.ctx, l.stop = context.WithTimeout(l.parent, l.d) })
	return l.ctx
}

// cancel releases the timer, if one was started; from then on the
// context is done.
func (l *lazyTimeout) cancel() {
	l.once.Do(func() { l.ctx = doneContext })
	if l.stop != nil {
		l.stop()
	}
}

// doneContext is a context canceled from the start (immutable).
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Deadline implements context.Context.
func (l *lazyTimeout) Deadline() (time.Time, bool) { return l.real().Deadline() }

// Done implements context.Context.
func (l *lazyTimeout) Done() <-chan struct{} { return l.real().Done() }

// Err implements context.Context.
func (l *lazyTimeout) Err() error { return l.real().Err() }

// Value implements context.Context.
func (l *lazyTimeout) Value(key any) any { return l.parent.Value(key) }

// decode unmarshals a payload; an error is a bad_payload reply.
func decode(env *wsproto.Envelope, v any) *reply {
	if len(env.Payload) == 0 {
		return refuse(wsproto.CodeBadPayload, "%s needs a payload", env.Type)
	}
	if err := wsproto.DecodePayload(env.Payload, v); err != nil {
		return refuse(wsproto.CodeBadPayload, "%s payload: %v", env.Type, err)
	}
	return nil
}

// storeFailure turns a store error into a reply: not_owner for rows that
// are not the worker's, bad_payload for values the database refused,
// internal (logged) otherwise.
func (c *conn) storeFailure(op string, err error, notFound string) *reply {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse(wsproto.CodeNotOwner, "%s", notFound)
	case errors.Is(err, store.ErrInvalid):
		return refuse(wsproto.CodeBadPayload, "%s: the values were refused", op)
	default:
		c.h.log.Error("worker message failed", "op", op, "worker_id", c.workerID, "error", err)
		return refuse(wsproto.CodeInternal, "%s failed on the core; retry later", op)
	}
}

// text makes a free-text field storable: control sequences and NUL
// stripped, at most maxText bytes.
func text(s string) string { return cutUTF8(stripControl(s, false), maxText) }

// clampPct keeps a reported percentage within what a column holds.
func clampPct(v float64) float64 { return max(0, min(v, 1e6)) }

func (c *conn) onHeartbeat(_ context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.Heartbeat
	if r := decode(env, &p); r != nil {
		return r
	}
	// Values are clamped so that one worker's nonsense cannot fail the
	// batched UPDATE for the whole fleet.
	c.h.hb.add(store.Heartbeat{
		WorkerID: c.workerID, At: c.h.now(),
		CPUPercent: clampPct(p.CPUPercent), MemoryPercent: clampPct(p.MemoryPercent), DiskPercent: clampPct(p.DiskPercent),
		RunningApps: max(0, min(p.RunningApps, 1<<31-1)),
	})
	return nil
}

func (c *conn) onJobStatus(ctx context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.JobStatus
	if r := decode(env, &p); r != nil {
		return r
	}
	if p.Status != store.JobProcessing && p.Status != store.JobAssigned {
		return refuse(wsproto.CodeBadPayload, "job_status status must be processing or assigned (finish a job with job_result)")
	}
	err := c.h.st.UpdateJobStatus(ctx, p.JobID, c.workerID, p.Status, text(p.Message), p.Progress)
	if err != nil {
		return c.storeFailure("job_status", err, fmt.Sprintf("job %d is not in flight on this worker", p.JobID))
	}
	return nil
}

func (c *conn) onJobResult(ctx context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.JobResult
	if r := decode(env, &p); r != nil {
		return r
	}
	if p.Port < 0 || p.Port > 65535 {
		return refuse(wsproto.CodeBadPayload, "port %d is not a TCP port", p.Port)
	}
	out := store.Outcome{
		Success: p.Success, Message: text(p.Message), Error: text(p.Error), Port: p.Port,
		ContainerID: text(p.ContainerID), CommitSHA: text(p.CommitSHA), CommitMessage: text(p.CommitMessage),
	}
	var comp *store.Completion
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if comp, err = c.h.st.CompleteJob(ctx, p.JobID, c.workerID, out); !errors.Is(err, store.ErrRetry) {
			break
		}
	}
	if err != nil {
		return c.storeFailure("job_result", err, fmt.Sprintf("job %d is not in flight on this worker", p.JobID))
	}
	h := c.h
	c.invalidateOwnership()
	if a := comp.App; a.Status != store.AppRunning || a.WorkerID == nil || *a.WorkerID != c.workerID {
		h.stats.drop(a.ID)
	}
	h.log.Debug("job finished", "job_id", p.JobID, "type", comp.Job.Type, "status", comp.Job.Status,
		"worker_id", c.workerID, "app_id", comp.App.ID)
	if f := comp.FollowUp; f != nil && f.WorkerID != nil {
		h.PushJob(*f.WorkerID, f.ID)
	}
	h.replay(ctx, c)
	return nil
}

func (c *conn) onAppStats(ctx context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.AppStats
	if r := decode(env, &p); r != nil {
		return r
	}
	now := c.h.now()
	var refused []int64
	for i := range p.Apps {
		a := &p.Apps[i]
		ok, err := c.owns(ctx, a.AppID)
		if err != nil {
			return c.storeFailure("app_stats", err, "")
		}
		if !ok {
			refused = append(refused, a.AppID)
			continue
		}
		c.h.stats.put(a.AppID, AppStats{
			WorkerID: c.workerID, CPUPercent: clampPct(a.CPUPercent), MemBytes: max(a.MemBytes, 0), MemLimit: max(a.MemLimit, 0),
			NetMbps: max(a.NetMbps, 0), NetTotalBytes: max(a.NetRxBytes, 0) + max(a.NetTxBytes, 0), DiskMbps: max(a.DiskMbps, 0),
			UpdatedAt: now,
		})
	}
	if len(refused) > 0 {
		return refuse(wsproto.CodeNotOwner, "not this worker's apps: %s", idList(refused))
	}
	return nil
}

// idList formats up to 10 ids.
func idList(ids []int64) string {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var b strings.Builder
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(ids)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}

func (c *conn) onAppStatus(ctx context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.AppStatus
	if r := decode(env, &p); r != nil {
		return r
	}
	switch p.Status {
	case wsproto.AppRunning, wsproto.AppStopped, wsproto.AppExited, wsproto.AppCrashloop:
	default:
		return refuse(wsproto.CodeBadPayload, "app_status status must be running, stopped, exited or crashloop")
	}
	if r := c.checkOwner(ctx, p.AppID, env.Type); r != nil {
		return r
	}
	rep, err := c.h.st.ReportAppStatus(ctx, c.workerID, p.AppID, p.Status, p.RestartCount, text(p.Message))
	if err != nil {
		return c.storeFailure("app_status", err, fmt.Sprintf("app %d is not on this worker", p.AppID))
	}
	if rep.Changed && rep.App.Status == store.AppStopped {
		c.h.stats.drop(p.AppID)
		c.invalidateOwnership()
	}
	if rep.Ignored != "" {
		c.h.log.Debug("app status report ignored", "app_id", p.AppID, "status", p.Status, "why", rep.Ignored)
	}
	return nil
}

func (c *conn) onViolation(ctx context.Context, env *wsproto.Envelope) *reply {
	var p wsproto.Violation
	if r := decode(env, &p); r != nil {
		return r
	}
	kind := text(p.Kind)
	if kind == "" || len(kind) > 32 {
		return refuse(wsproto.CodeBadPayload, "violation kind must be a short name (memory, cpu, disk, pids, bandwidth)")
	}
	if r := c.checkOwner(ctx, p.AppID, env.Type); r != nil {
		return r
	}
	reason := kind
	if m := text(p.Message); m != "" {
		reason = cutUTF8(kind+": "+m, maxText)
	}
	if _, err := c.h.st.ReportViolation(ctx, c.workerID, p.AppID, reason); err != nil {
		return c.storeFailure("violation", err, fmt.Sprintf("app %d is not on this worker", p.AppID))
	}
	return nil
}

// checkOwner refuses a message about an app that is not the worker's,
// from the ownership cache (no query unless the cache needs a reload).
func (c *conn) checkOwner(ctx context.Context, appID int64, typ string) *reply {
	ok, err := c.owns(ctx, appID)
	if err != nil {
		return c.storeFailure(typ, err, "")
	}
	if !ok {
		return refuse(wsproto.CodeNotOwner, "app %d is not on this worker", appID)
	}
	return nil
}

// allowLog takes n bytes from the connection's log token bucket
// (wsproto.LogRate per second, wsproto.LogBurst deep), shared by runtime
// and build logs. What counts is log text (the lines, the build output),
// not its JSON envelope. A message larger than what is left is refused
// whole, so a message above LogBurst never passes.
func (c *conn) allowLog(n int) bool {
	c.refillLog()
	if int64(n) > c.logTokens {
		return false
	}
	c.logTokens -= int64(n)
	return true
}

// logEmpty reports an empty bucket: the message is refused before it is
// even decoded.
func (c *conn) logEmpty() bool {
	c.refillLog()
	return c.logTokens <= 0
}

func (c *conn) refillLog() {
	now := c.h.mono()
	if elapsed := now - c.logAt; elapsed > 0 {
		if elapsed >= int64(wsproto.LogBurst/wsproto.LogRate+1)*1e9 {
			c.logTokens = wsproto.LogBurst
		} else {
			c.logTokens = min(wsproto.LogBurst, c.logTokens+elapsed*wsproto.LogRate/1e9)
		}
		c.logAt = now
	}
}

// rateLimited counts a log message refused by the bucket (lines < 0:
// not decoded) and answers it.
func (c *conn) rateLimited(bytes, lines int) *reply {
	c.h.m.logDropBytes.WithLabelValues(wsproto.CodeRateLimited).Add(float64(bytes))
	if lines > 0 {
		c.h.m.logDropLines.WithLabelValues(wsproto.CodeRateLimited).Add(float64(lines))
	}
	return refuse(wsproto.CodeRateLimited, "log rate above %d bytes/s (burst %d); message dropped", wsproto.LogRate, wsproto.LogBurst)
}

func (c *conn) onBuildLog(ctx context.Context, env *wsproto.Envelope) *reply {
	if c.logEmpty() {
		return c.rateLimited(len(env.Payload), -1)
	}
	var p wsproto.BuildLog
	if r := decode(env, &p); r != nil {
		return r
	}
	if !c.allowLog(len(p.Logs)) {
		return c.rateLimited(len(p.Logs), -1)
	}
	if p.DeploymentID <= 0 {
		return refuse(wsproto.CodeBadPayload, "build_log needs a deployment_id")
	}
	logs := capBuildLog(stripControl(p.Logs, false), wsproto.MaxBuildLog)
	if err := c.h.st.SetDeploymentBuildLogs(ctx, p.DeploymentID, c.workerID, logs); err != nil {
		return c.storeFailure("build_log", err, fmt.Sprintf("deployment %d has no job on this worker", p.DeploymentID))
	}
	return nil
}
