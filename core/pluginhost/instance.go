package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// inheritedEnv are the only variables of the core's environment a plugin
// sees; the core's own holds secrets (WISEHOSTING_SECRET, DATABASE_URL, …).
var inheritedEnv = []string{"PATH", "HOME", "TMPDIR", "LANG"}

// stableAfter is how long a plugin must stay up after a restart for the
// backoff to start over from MinBackoff; a plugin that crashes sooner keeps
// backing off further.
const stableAfter = 10 * time.Second

// instance is one plugin block: its current process, its state, and the
// supervisor that keeps it running.
type instance struct {
	h      *Host
	kind   string
	name   string
	block  config.Plugin
	source string
	log    hclog.Logger
	stderr *stderrTail
	// poke wakes the supervisor when a call saw the connection fail.
	poke chan struct{}
	// handle is what the accessors return; it implements the kind's
	// interface and survives restarts.
	handle sdk.Plugin

	mu         sync.RWMutex
	state      State
	since      time.Time
	proc       *proc
	info       *pluginv1.InfoResponse
	spec       *pluginv1.Spec
	apiVersion string
	configJSON []byte
	restarts   int
	lastErr    string
	healthy    bool
	healthMsg  string
	upSince    time.Time
	backoff    time.Duration
	stopped    bool
}

// proc is one running plugin process.
type proc struct {
	client *plugin.Client
	cmd    *exec.Cmd
	conn   sdk.Client
	pid    int
}

func newInstance(h *Host, p config.Plugin) *instance {
	in := &instance{
		h: h, kind: p.Kind, name: p.Name, block: p,
		source: "builtin",
		log:    h.log.Named("plugin." + p.Kind + "." + p.Name),
		stderr: newStderrTail(20),
		poke:   make(chan struct{}, 1),
		state:  StateStarting,
		since:  time.Now(),
	}
	if !p.Builtin() {
		in.source = p.Command
	} else if p.Source != "" {
		in.source = "builtin:" + p.Source
	}
	in.handle = newHandle(in, false)
	return in
}

// label names the plugin in messages: plugin "proxy" "traefik".
func (in *instance) label() string { return fmt.Sprintf("plugin %q %q", in.kind, in.name) }

// command returns the command line serving the plugin.
func (in *instance) command() (Command, error) {
	if in.block.Builtin() {
		return in.h.opts.BuiltinCommand(in.kind, in.block.BuiltinName())
	}
	return Command{Path: in.block.Command, Args: in.block.Args}, nil
}

// environ is the plugin's whole environment (go-plugin adds its handshake
// variables): the inherited few, the command's extras, then the block's env
// sorted by name.
func (in *instance) environ(extra []string) []string {
	var env []string
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, extra...)
	keys := make([]string, 0, len(in.block.Env))
	for k := range in.block.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+in.block.Env[k].Value())
	}
	return env
}

// launch starts the plugin process and completes the go-plugin handshake.
func (in *instance) launch() (*proc, error) {
	c, err := in.command()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(in.h.life, c.Path, c.Args...)
	cmd.Env = in.environ(c.Env)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		_ = killGroup(cmd.Process.Pid)
		return cmd.Process.Kill()
	}
	var secure *plugin.SecureConfig
	if in.block.Checksum != "" {
		sum, err := hex.DecodeString(in.block.Checksum)
		if err != nil {
			return nil, fmt.Errorf("checksum: %w", err)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	in.stderr.reset()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.HandshakeConfig(),
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		StartTimeout:     in.h.opts.StartTimeout,
		Logger:           in.log,
		Stderr:           in.stderr,
	})
	p := &proc{client: client, cmd: cmd}
	rpc, err := client.Client()
	if cmd.Process != nil {
		p.pid = cmd.Process.Pid
	}
	if err != nil {
		p.kill()
		if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
			// It ran and gave up: go-plugin's "unrecognized remote plugin
			// message" advice would mislead; its stderr says why.
			msg := fmt.Sprintf("starting %s: the plugin exited before its handshake (%s)", c.Path, cmd.ProcessState)
			if lines := in.stderr.lines(); len(lines) > 0 {
				msg += ": " + lines[len(lines)-1]
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("starting %s: %w", c.Path, err)
	}
	raw, err := rpc.Dispense(in.kind)
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("dispensing the %s plugin: %w", in.kind, err)
	}
	conn, ok := raw.(sdk.Client)
	if !ok {
		p.kill()
		return nil, fmt.Errorf("dispensing the %s plugin: unexpected client %T", in.kind, raw)
	}
	p.conn = conn
	return p, nil
}

// killGrace bounds go-plugin's Kill before the process group is killed
// under it: Kill waits up to 2 s for a graceful exit, then for the plugin's
// stdout and stderr to close, which a grandchild holding them delays.
const killGrace = 2500 * time.Millisecond

// kill ends the process: go-plugin's graceful shutdown, then SIGKILL to the
// whole process group (anything the plugin spawned). It returns once the
// process is reaped.
func (p *proc) kill() {
	if p == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.client.Kill()
	}()
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			// The plugin itself is gone but something it spawned keeps its
			// pipes open: go-plugin would wait for it.
			if isZombie(p.pid) {
				_ = killGroup(p.pid)
			}
		case <-grace.C:
			_ = killGroup(p.pid)
		}
	}
	_ = killGroup(p.pid)
}

// exited reports whether go-plugin saw the plugin process end (cheap: no
// system call).
func (p *proc) exited() bool { return p.client.Exited() }

// gone is exited, also counting a zombie whose children still hold its
// pipes (go-plugin waits for those before it reaps the process).
func (p *proc) gone() bool { return p.exited() || isZombie(p.pid) }

// exitStatus describes how an exited process ended, e.g. "signal: killed".
// Call it only after kill returned (which waits for go-plugin to reap the
// process).
func (p *proc) exitStatus() string {
	if p.cmd.ProcessState == nil {
		return "exited"
	}
	return p.cmd.ProcessState.String()
}

// callCtx bounds a call the host makes itself.
func (in *instance) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, in.h.opts.CallTimeout)
}

// start is the first start: launch, Info, API negotiation, spec, config
// decoding and Configure. Every error is a diagnostic naming the plugin.
func (in *instance) start(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	diags := in.startPlugin(ctx, cfg)
	if diags.HasErrors() {
		in.mu.Lock()
		in.state, in.since = StateFailed, time.Now()
		in.lastErr = diags.Errs()[0].Error()
		in.mu.Unlock()
	}
	return diags
}

func (in *instance) startPlugin(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	p, err := in.launch()
	if err != nil {
		return hcl.Diagnostics{in.launchDiag(cfg, err)}
	}
	in.mu.Lock()
	in.proc = p
	in.mu.Unlock()

	cctx, cancel := in.callCtx(ctx)
	defer cancel()
	info, err := p.conn.Info(cctx)
	if err != nil {
		return in.failure(cfg, "Plugin failed", "Info: %s", err)
	}
	if info.GetKind() != in.kind {
		return hcl.Diagnostics{in.diag(in.block.DefRange, "Wrong plugin kind",
			"The block declares a %q plugin, but %s says it is a %q plugin (name %q). Check command, or the block's kind.",
			in.kind, in.source, info.GetKind(), info.GetName())}
	}
	api, ok := negotiate(in.h.opts.APIVersions, info.GetApiVersions())
	if !ok {
		return hcl.Diagnostics{in.diag(in.block.DefRange, "No common API version",
			"The plugin implements %s API versions %s; this core speaks %s. Upgrade the plugin or the core.",
			in.kind, quoteList(info.GetApiVersions()), quoteList(in.h.opts.APIVersions))}
	}
	pspec, err := p.conn.ConfigSpec(cctx)
	if err != nil {
		return in.failure(cfg, "Plugin failed", "ConfigSpec: %s", err)
	}
	spec, err := decode.Spec(pspec)
	if err != nil {
		return hcl.Diagnostics{in.diag(in.block.DefRange, "Invalid config spec",
			"The plugin declared an invalid schema for its config block (a bug in the plugin, not in this file): %s.", err)}
	}
	raw, diags := decode.Body(in.block.Config, spec, cfg.EvalContext())
	diags = in.own(diags)
	if diags.HasErrors() {
		return diags
	}
	in.mu.Lock()
	in.info, in.spec, in.apiVersion, in.configJSON = info, pspec, api, raw
	in.mu.Unlock()
	in.handle = newHandle(in, slices.Contains(info.GetCapabilities(), sdk.CapabilityProxyApply))

	if err := p.conn.Configure(cctx, in.configureRequest()); err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return append(diags, in.diag(configRange(in.block), "Invalid plugin configuration",
				"The plugin rejected its configuration: %s", status.Convert(err).Message()))
		}
		return append(diags, in.failure(cfg, "Plugin failed", "Configure: %s", err)...)
	}
	if !in.markRunning(p) {
		return append(diags, in.diag(in.block.DefRange, "Plugin host stopped", "The host was stopped while the plugin started."))
	}
	in.checkHealth(ctx)
	in.log.Info("plugin started", "source", in.source, "version", info.GetVersion(), "api_version", api, "pid", p.pid)
	return diags
}

// configureRequest is the Configure call for the stored configuration.
func (in *instance) configureRequest() *pluginv1.ConfigureRequest {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return &pluginv1.ConfigureRequest{ApiVersion: in.apiVersion, ConfigJson: in.configJSON, Instance: in.name}
}

// markRunning installs p as the plugin's process, unless the host is
// stopping (then it returns false and the caller kills p).
func (in *instance) markRunning(p *proc) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return false
	}
	in.proc = p
	in.state, in.since, in.upSince = StateRunning, time.Now(), time.Now()
	in.h.metrics.up.WithLabelValues(in.kind, in.name).Set(1)
	return true
}

// diag is an error diagnostic about this plugin; the summary names it.
func (in *instance) diag(subject hcl.Range, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  in.label() + ": " + summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  subject.Ptr(),
	}
}

// failure is a diagnostic for a plugin that misbehaved (crashed, failed a
// call), with what it last wrote to stderr.
func (in *instance) failure(cfg *config.Config, summary, detailFormat string, args ...any) hcl.Diagnostics {
	d := in.diag(in.commandRange(cfg), summary, detailFormat, args...)
	if lines := in.stderr.lines(); len(lines) > 0 {
		d.Detail += "\nLast lines of its stderr:\n" + strings.Join(lines, "\n")
	}
	return hcl.Diagnostics{d}
}

// launchDiag explains a failed launch; a checksum mismatch points at the
// checksum attribute.
func (in *instance) launchDiag(cfg *config.Config, err error) *hcl.Diagnostic {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		subject := in.block.DefRange
		if r, ok := cfg.Range("plugin." + in.kind + "." + in.name + ".checksum"); ok {
			subject = r
		}
		return in.diag(subject, "Checksum mismatch",
			"The SHA-256 of %s is not the block's checksum; the binary was not started. Check that it is the binary you expect, then update checksum.", in.source)
	}
	return in.failure(cfg, "Cannot start plugin", "%s", err)[0]
}

// commandRange is where the plugin's command is set, or its block header.
func (in *instance) commandRange(cfg *config.Config) hcl.Range {
	if !in.block.Builtin() && cfg != nil {
		if r, ok := cfg.Range("plugin." + in.kind + "." + in.name + ".command"); ok {
			return r
		}
	}
	return in.block.DefRange
}

// own prefixes every diagnostic's summary with the plugin's label, and gives
// those without a subject the config block's range.
func (in *instance) own(diags hcl.Diagnostics) hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		c := *d
		c.Summary = in.label() + ": " + d.Summary
		if c.Subject == nil {
			c.Subject = configRange(in.block).Ptr()
		}
		out = append(out, &c)
	}
	return out
}

// configRange is the range of the plugin's config block body, or the plugin
// block's header when it has none.
func configRange(p config.Plugin) hcl.Range {
	if b, ok := p.Config.(*hclsyntax.Body); ok {
		r := b.SrcRange
		if r.Start.Line == r.End.Line || r.Filename == "" {
			return r
		}
		// Only the opening line: a snippet of the whole body says nothing.
		return hcl.Range{Filename: r.Filename, Start: r.Start, End: hcl.Pos{Line: r.Start.Line, Column: r.Start.Column + 1, Byte: r.Start.Byte + 1}}
	}
	if p.Config != nil {
		return p.Config.MissingItemRange()
	}
	return p.DefRange
}

// negotiate picks the highest version both sides speak; numeric versions
// compare as numbers.
func negotiate(core, plugin []string) (string, bool) {
	var common []string
	for _, v := range plugin {
		if slices.Contains(core, v) {
			common = append(common, v)
		}
	}
	if len(common) == 0 {
		return "", false
	}
	slices.SortFunc(common, compareVersions)
	return common[len(common)-1], true
}

func compareVersions(a, b string) int {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	switch {
	case aerr == nil && berr == nil:
		return ai - bi
	case aerr == nil:
		return 1 // numeric beats non-numeric
	case berr == nil:
		return -1
	}
	return strings.Compare(a, b)
}

func quoteList(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// --- calls ---------------------------------------------------------------

// conn returns the running plugin's client, or an ErrUnavailable error at
// once when it is down.
func (in *instance) conn() (sdk.Client, error) {
	in.mu.RLock()
	state, p, lastErr := in.state, in.proc, in.lastErr
	in.mu.RUnlock()
	if state != StateRunning || p == nil {
		why := string(state)
		if lastErr != "" && state != StateStopped {
			why += ": " + lastErr
		}
		return nil, fmt.Errorf("%s: %w (%s)", in.label(), ErrUnavailable, why)
	}
	if p.exited() {
		in.wake()
		return nil, fmt.Errorf("%s: %w (its process exited; restarting)", in.label(), ErrUnavailable)
	}
	return p.conn, nil
}

// wrap names the plugin and method in a call's error; a broken connection
// becomes ErrUnavailable and wakes the supervisor.
func (in *instance) wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.Unavailable {
		in.wake()
		return fmt.Errorf("%s: %s: %w: %w", in.label(), method, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", in.label(), method, err)
}

// wake asks the supervisor to check the plugin now.
func (in *instance) wake() {
	select {
	case in.poke <- struct{}{}:
	default:
	}
}

// checkHealth asks the plugin for its health and records the answer.
func (in *instance) checkHealth(ctx context.Context) {
	c, err := in.conn()
	if err == nil {
		cctx, cancel := in.callCtx(ctx)
		err = in.wrap("Health", c.Health(cctx))
		cancel()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.healthy = err == nil
	in.healthMsg = ""
	if err != nil {
		in.healthMsg = err.Error()
	}
}

func (in *instance) status() PluginStatus {
	in.mu.RLock()
	defer in.mu.RUnlock()
	st := PluginStatus{
		Kind: in.kind, Name: in.name, Source: in.source,
		APIVersion: in.apiVersion, State: in.state, Since: in.since,
		Restarts: in.restarts, LastError: in.lastErr,
		Healthy: in.healthy && in.state == StateRunning, HealthMessage: in.healthMsg,
	}
	if in.info != nil {
		st.Version, st.Description = in.info.GetVersion(), in.info.GetDescription()
		st.Capabilities = slices.Clone(in.info.GetCapabilities())
	}
	if in.proc != nil && in.state == StateRunning {
		st.PID = in.proc.pid
	}
	if !st.Healthy && st.HealthMessage == "" && in.state != StateRunning {
		st.HealthMessage = string(in.state)
	}
	return st
}

// cachedInfo returns a copy of the plugin's Info.
func (in *instance) cachedInfo() *pluginv1.InfoResponse {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.info == nil {
		return nil
	}
	return proto.Clone(in.info).(*pluginv1.InfoResponse)
}

// cachedSpec returns a copy of the plugin's config spec.
func (in *instance) cachedSpec() *pluginv1.Spec {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.spec == nil {
		return nil
	}
	return proto.Clone(in.spec).(*pluginv1.Spec)
}

// setConfig stores a configuration applied through the handle, so restarts
// re-send it.
func (in *instance) setConfig(raw []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.configJSON = slices.Clone(raw)
}

// --- supervision ---------------------------------------------------------

// supervise watches the plugin until the host stops, restarting it after a
// crash.
func (in *instance) supervise() {
	defer in.h.wg.Done()
	poll := time.NewTicker(in.h.opts.PollInterval)
	defer poll.Stop()
	health := time.NewTicker(in.h.opts.HealthInterval)
	defer health.Stop()
	for {
		var p *proc
		var why string
		select {
		case <-in.h.stopping:
			return
		case <-health.C:
			in.checkHealth(in.h.life)
			continue
		case <-poll.C:
			if p, why = in.crashed(false); p == nil {
				continue
			}
		case <-in.poke:
			if p, why = in.crashed(true); p == nil {
				continue
			}
		}
		in.recover(p, why)
	}
}

// exitWait is how long a supervisor that found the connection gone waits
// for the process to exit, to report how it ended.
const exitWait = 200 * time.Millisecond

// crashed returns the plugin's process when it is down, nil when it runs.
// why is "" for a process that exited, or how the connection failed while
// the process lived on. probe pings the plugin: a call saw its connection
// fail.
func (in *instance) crashed(probe bool) (p *proc, why string) {
	in.mu.RLock()
	p, state := in.proc, in.state
	in.mu.RUnlock()
	if state != StateRunning || p == nil {
		return nil, ""
	}
	if p.gone() {
		return p, ""
	}
	if !probe {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(in.h.life, time.Second)
	defer cancel()
	err := p.conn.Health(ctx)
	if status.Code(err) != codes.Unavailable {
		return nil, ""
	}
	for deadline := time.Now().Add(exitWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if p.gone() {
			return p, ""
		}
	}
	return p, "connection lost: " + status.Convert(err).Message()
}

// recover kills what is left of the crashed process p, marks the plugin
// restarting, logs why, and restarts it with backoff until it runs again or
// the host stops.
func (in *instance) recover(old *proc, why string) {
	in.mu.Lock()
	in.state, in.since = StateRestarting, time.Now()
	in.healthy, in.healthMsg = false, ""
	if time.Since(in.upSince) >= stableAfter || in.backoff == 0 {
		in.backoff = in.h.opts.MinBackoff
	}
	in.mu.Unlock()
	in.h.metrics.up.WithLabelValues(in.kind, in.name).Set(0)
	old.kill() // reaps it, so its exit status is known
	reason := why
	if reason == "" {
		reason = "process exited (" + old.exitStatus() + ")"
	}
	in.mu.Lock()
	in.lastErr = reason
	in.mu.Unlock()
	args := []any{"error", reason}
	if lines := in.stderr.lines(); len(lines) > 0 {
		args = append(args, "stderr", strings.Join(lines, "\n"))
	}
	in.log.Error("plugin crashed; restarting it", args...)

	for attempt := 1; ; attempt++ {
		in.mu.Lock()
		delay := jitter(in.backoff)
		in.backoff = min(in.backoff*2, in.h.opts.MaxBackoff)
		in.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-in.h.stopping:
			t.Stop()
			return
		case <-t.C:
		}
		in.mu.Lock()
		in.restarts++
		in.mu.Unlock()
		in.h.metrics.restarts.WithLabelValues(in.kind, in.name).Inc()

		p, err := in.restart()
		if err == nil {
			if !in.markRunning(p) {
				p.kill()
				return
			}
			in.mu.Lock()
			in.lastErr = "recovered from: " + reason
			in.mu.Unlock()
			in.checkHealth(in.h.life)
			in.log.Info("plugin restarted", "attempt", attempt, "pid", p.pid)
			return
		}
		select {
		case <-in.h.stopping:
			return
		default:
		}
		in.mu.Lock()
		in.lastErr = err.Error()
		next := in.backoff
		in.mu.Unlock()
		args := []any{"attempt", attempt, "error", err, "retry_in", next}
		if lines := in.stderr.lines(); len(lines) > 0 {
			args = append(args, "stderr", strings.Join(lines, "\n"))
		}
		in.log.Error("plugin restart failed", args...)
	}
}

// restart launches the plugin again, checks it is still the same kind,
// renegotiates the API version and re-sends the stored configuration.
func (in *instance) restart() (*proc, error) {
	p, err := in.launch()
	if err != nil {
		return nil, err
	}
	ctx, cancel := in.callCtx(in.h.life)
	defer cancel()
	fail := func(err error) (*proc, error) {
		p.kill()
		return nil, err
	}
	info, err := p.conn.Info(ctx)
	if err != nil {
		return fail(fmt.Errorf("Info: %w", err))
	}
	if info.GetKind() != in.kind {
		return fail(fmt.Errorf("the restarted plugin says it is a %q plugin, not %q", info.GetKind(), in.kind))
	}
	api, ok := negotiate(in.h.opts.APIVersions, info.GetApiVersions())
	if !ok {
		return fail(fmt.Errorf("the restarted plugin implements API versions %s; this core speaks %s",
			quoteList(info.GetApiVersions()), quoteList(in.h.opts.APIVersions)))
	}
	in.mu.Lock()
	in.info, in.apiVersion = info, api
	in.mu.Unlock()
	if err := p.conn.Configure(ctx, in.configureRequest()); err != nil {
		return fail(fmt.Errorf("Configure: %w", err))
	}
	return p, nil
}

// stop kills the plugin for good.
func (in *instance) stop() {
	in.mu.Lock()
	p := in.proc
	in.proc, in.stopped = nil, true
	if in.state != StateFailed { // a failed start stays visible as such
		in.state, in.since = StateStopped, time.Now()
	}
	in.healthy = false
	in.mu.Unlock()
	in.h.metrics.up.WithLabelValues(in.kind, in.name).Set(0)
	if p != nil {
		p.kill()
		in.log.Debug("plugin stopped", "pid", p.pid)
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
