// Package sdktest is the conformance kit a plugin author runs in their own
// `go test`. It launches the plugin binary through go-plugin exactly as the
// core does (a real subprocess, the sdk's handshake and plugin set, gRPC
// only, AutoMTLS, the sdk's message-size limits) and checks:
//
//   - the handshake;
//   - Info: a valid kind, a name and a version, api_versions containing
//     sdk.APIVersion1;
//   - ConfigSpec: it converts to an hcldec spec (sdk/hclspec/decode), as the
//     core converts it;
//   - every good config snippet decodes against the spec and Configure
//     accepts it (one fresh plugin process per configuration, as the core
//     configures once per start), and the plugin is healthy;
//   - every bad config snippet is rejected, by the spec decode or by
//     Configure with INVALID_ARGUMENT (the Report says which, with the
//     diagnostic); a crash or another error code is a failure;
//   - the kind's call with sample inputs (Options can override them):
//     Scheduler.Place, Proxy.Render, AlertSink.Deliver, PlanSource.Plans;
//   - the process exits when the host kills it.
//
// A plugin author's test:
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, sdktest.Options{
//			Command:     func() *exec.Cmd { return exec.Command(binaryPath) },
//			GoodConfigs: []string{`path = "/tmp/x.jsonl"`},
//			BadConfigs:  []string{``, `path = 42 { }`},
//		})
//	}
//
// Plugins need not be built first: the test binary can serve the plugin
// itself. Call ServeIfChild at the top of TestMain and use SelfCommand:
//
//	func TestMain(m *testing.M) {
//		sdktest.ServeIfChild(func() sdk.Plugin { return myplugin.New() })
//		os.Exit(m.Run())
//	}
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, sdktest.Options{Command: sdktest.SelfCommand()})
//	}
package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Options configures Run. Only Command is required.
type Options struct {
	// Command returns a fresh, unstarted command that runs the plugin; it
	// is called once per plugin process (Run starts several). Use
	// SelfCommand to serve the plugin from the test binary itself. On Linux
	// Run sets Pdeathsig (SIGKILL) unless the command sets one, so a plugin
	// never outlives the test.
	Command func() *exec.Cmd

	// Kind, when set, is the kind the plugin must report (one of the sdk's
	// Kind constants), as the core expects the kind of its plugin block.
	Kind string

	// GoodConfigs are bodies of the plugin's config {} block (HCL, without
	// the `config {` `}` wrapper) that must decode and be accepted. None
	// means one empty body. The first one configures the plugin for the
	// kind-specific calls.
	GoodConfigs []string
	// BadConfigs are bodies that must be rejected, by the spec or by
	// Configure. Each must be valid HCL: a syntax error tests nothing about
	// the plugin and is reported as a failure.
	BadConfigs []string
	// EvalContext is used to decode the configs (variables, functions);
	// nil is none.
	EvalContext *hcl.EvalContext
	// Instance is the plugin block's name passed to Configure; default
	// "sdktest".
	Instance string

	// Jobs and Workers are the scheduler sample; default SampleJobs() and
	// SampleWorkers().
	Jobs    []*pluginv1.PlaceJob
	Workers []*pluginv1.PlaceWorker
	// Routes and Generation are the proxy sample; default SampleRoutes()
	// and generation 1.
	Routes     []*pluginv1.Route
	Generation uint64
	// Events is the alert-sink sample; default SampleEvents().
	Events []*pluginv1.Event

	// CallTimeout bounds every call to the plugin; default 30s.
	CallTimeout time.Duration
	// StartTimeout bounds a plugin's start and handshake; default 1 minute.
	StartTimeout time.Duration
	// Logger receives go-plugin's and the plugin's logs; default: t.Log at
	// Info level and above.
	Logger hclog.Logger
}

// Stage says where a configuration was rejected, if anywhere.
type Stage string

// Stages of a configuration.
const (
	// StageAccepted: the spec decoded it and Configure accepted it.
	StageAccepted Stage = "accepted"
	// StageSyntax: the snippet is not valid HCL.
	StageSyntax Stage = "syntax"
	// StageSpec: decoding against the plugin's spec failed (the core would
	// report it at file:line:col without starting Configure).
	StageSpec Stage = "spec"
	// StageConfigure: the spec decoded it but Configure rejected it.
	StageConfigure Stage = "configure"
	// StageNotRun: the check could not run (an earlier step failed).
	StageNotRun Stage = "not run"
)

// ConfigResult is the outcome of one good or bad configuration.
type ConfigResult struct {
	// Index in GoodConfigs or BadConfigs.
	Index int
	// Config is the snippet.
	Config string
	// Stage is where it was rejected, or StageAccepted.
	Stage Stage
	// Message is the diagnostic (spec, syntax) or error (Configure) text,
	// empty when accepted.
	Message string
	// JSON is the decoded configuration passed to Configure, if it decoded.
	JSON string
}

// Report is what Run found; failures are also reported to t.
type Report struct {
	// Info is the plugin's Info answer, nil if the plugin did not start.
	Info *pluginv1.InfoResponse
	// APIVersion is the version negotiated for Configure.
	APIVersion string
	// Good and Bad have one result per configuration of Options.
	Good, Bad []ConfigResult
}

// supportedAPIVersions are the kind API versions this kit speaks, lowest
// first.
var supportedAPIVersions = []string{sdk.APIVersion1}

// planID is the form of a plan id (proto: [a-z0-9][a-z0-9_-]*).
var planID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Run runs the conformance checks against the plugin started by
// opts.Command, reporting every failure with t.Errorf (never t.Fatal, so a
// failing run still reports all it could check), and returns what it found.
func Run(t testing.TB, opts Options) *Report {
	t.Helper()
	r := &runner{t: t, opts: opts, report: &Report{}}
	r.defaults()
	r.run()
	return r.report
}

type runner struct {
	t      testing.TB
	opts   Options
	report *Report
	logw   *testWriter
}

func (r *runner) defaults() {
	o := &r.opts
	if o.Instance == "" {
		o.Instance = "sdktest"
	}
	if len(o.GoodConfigs) == 0 {
		o.GoodConfigs = []string{""}
	}
	if o.Jobs == nil {
		o.Jobs = SampleJobs()
	}
	if o.Workers == nil {
		o.Workers = SampleWorkers()
	}
	if o.Routes == nil {
		o.Routes = SampleRoutes()
	}
	if o.Generation == 0 {
		o.Generation = 1
	}
	if o.Events == nil {
		o.Events = SampleEvents()
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	if o.Logger == nil {
		r.logw = &testWriter{t: r.t}
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: "sdktest", Level: hclog.Info, Output: r.logw, DisableTime: true})
	}
}

func (r *runner) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("sdktest: "+format, args...)
}

func (r *runner) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.opts.CallTimeout)
}

func (r *runner) run() {
	t := r.t
	t.Helper()
	if r.logw != nil {
		defer r.logw.close()
	}
	for i := range r.opts.GoodConfigs {
		r.report.Good = append(r.report.Good, ConfigResult{Index: i, Config: r.opts.GoodConfigs[i], Stage: StageNotRun})
	}
	for i := range r.opts.BadConfigs {
		r.report.Bad = append(r.report.Bad, ConfigResult{Index: i, Config: r.opts.BadConfigs[i], Stage: StageNotRun})
	}
	if r.opts.Command == nil {
		r.errorf("Options.Command is required")
		return
	}
	if r.opts.Kind != "" && !slices.Contains(sdk.Kinds(), r.opts.Kind) {
		r.errorf("Options.Kind %q is not a plugin kind (%v)", r.opts.Kind, sdk.Kinds())
		return
	}

	// The first process: handshake, Info, ConfigSpec, the first good config,
	// health and the kind's call.
	first, err := r.launch()
	if err != nil {
		r.errorf("handshake: %v", err)
		return
	}
	defer r.stop(first)
	t.Logf("sdktest: handshake ok (protocol %d, gRPC, AutoMTLS)", first.client.NegotiatedVersion())

	info, ok := r.checkInfo(first)
	if !ok {
		return
	}
	kind := info.GetKind()
	if err := first.dispense(kind); err != nil {
		r.errorf("dispensing %s: %v", kind, err)
		return
	}

	spec, ok := r.checkSpec(first)
	if !ok {
		return
	}

	firstOK := false
	for i, cfg := range r.opts.GoodConfigs {
		res := &r.report.Good[i]
		raw, stage, msg := r.decode(fmt.Sprintf("GoodConfigs[%d]", i), cfg, spec)
		res.Stage, res.Message, res.JSON = stage, msg, string(raw)
		if stage != StageAccepted {
			r.errorf("GoodConfigs[%d] rejected by the %s: %s", i, stage, msg)
			continue
		}
		s := first
		if i > 0 {
			if s, err = r.launch(); err != nil {
				r.errorf("GoodConfigs[%d]: starting a fresh plugin process: %v", i, err)
				res.Stage = StageNotRun
				continue
			}
			if err := s.dispense(kind); err != nil {
				r.errorf("dispensing %s: %v", kind, err)
				r.stop(s)
				continue
			}
		}
		if err := r.configure(s, raw); err != nil {
			res.Stage, res.Message = StageConfigure, err.Error()
			r.errorf("GoodConfigs[%d] rejected by Configure: %v\n  config: %s\n  JSON: %s", i, err, oneLine(cfg), raw)
		} else if err := r.health(s); err != nil {
			r.errorf("GoodConfigs[%d]: Health after Configure: %v", i, err)
		} else if i == 0 {
			firstOK = true
		}
		if i > 0 {
			r.stop(s)
		}
	}

	for i, cfg := range r.opts.BadConfigs {
		res := &r.report.Bad[i]
		raw, stage, msg := r.decode(fmt.Sprintf("BadConfigs[%d]", i), cfg, spec)
		res.Stage, res.Message, res.JSON = stage, msg, string(raw)
		switch stage {
		case StageSyntax:
			r.errorf("BadConfigs[%d] is not valid HCL, so it tests nothing about the plugin: %s", i, msg)
			continue
		case StageSpec:
			t.Logf("sdktest: BadConfigs[%d] rejected by the spec: %s", i, msg)
			continue
		}
		s, err := r.launch()
		if err != nil {
			r.errorf("BadConfigs[%d]: starting a fresh plugin process: %v", i, err)
			res.Stage = StageNotRun
			continue
		}
		err = r.configure(s, raw)
		r.stop(s)
		if err != nil {
			res.Stage, res.Message = StageConfigure, err.Error()
			if code := status.Code(err); code != codes.InvalidArgument {
				// The protocol: a rejected configuration is INVALID_ARGUMENT;
				// any other code (a crash is UNAVAILABLE) is a plugin failure.
				r.errorf("BadConfigs[%d]: Configure failed with %s instead of rejecting the configuration with InvalidArgument: %v", i, code, err)
				continue
			}
			t.Logf("sdktest: BadConfigs[%d] rejected by Configure: %v", i, err)
			continue
		}
		res.Stage = StageAccepted
		r.errorf("BadConfigs[%d] was accepted by the spec and by Configure\n  config: %s\n  JSON: %s", i, oneLine(cfg), raw)
	}

	if !firstOK {
		r.errorf("%s calls not checked: the plugin was not configured with GoodConfigs[0]", kind)
		return
	}
	switch kind {
	case sdk.KindScheduler:
		r.checkScheduler(first)
	case sdk.KindProxy:
		r.checkProxy(first)
	case sdk.KindAlerts:
		r.checkAlerts(first)
	case sdk.KindPlans:
		r.checkPlans(first)
	}
}

// checkInfo calls Info and checks it; ok is false when nothing further can
// be checked.
func (r *runner) checkInfo(s *session) (*pluginv1.InfoResponse, bool) {
	r.t.Helper()
	ctx, cancel := r.ctx()
	defer cancel()
	info, err := s.base.Info(ctx)
	if err != nil {
		r.errorf("Info: %v", err)
		return nil, false
	}
	r.report.Info = info
	r.t.Logf("sdktest: Info: kind %q, name %q, version %q, api_versions %v, capabilities %v",
		info.GetKind(), info.GetName(), info.GetVersion(), info.GetApiVersions(), info.GetCapabilities())
	ok := true
	if !slices.Contains(sdk.Kinds(), info.GetKind()) {
		r.errorf("Info: kind %q is not a plugin kind (%v)", info.GetKind(), sdk.Kinds())
		ok = false
	} else if r.opts.Kind != "" && info.GetKind() != r.opts.Kind {
		r.errorf("Info: kind %q, want %q", info.GetKind(), r.opts.Kind)
		ok = false
	}
	if info.GetName() == "" {
		r.errorf("Info: empty name")
	}
	if info.GetVersion() == "" {
		r.errorf("Info: empty version")
	}
	if !slices.Contains(info.GetApiVersions(), sdk.APIVersion1) {
		r.errorf("Info: api_versions %v does not contain %q", info.GetApiVersions(), sdk.APIVersion1)
	}
	for i := len(supportedAPIVersions) - 1; i >= 0; i-- {
		if slices.Contains(info.GetApiVersions(), supportedAPIVersions[i]) {
			r.report.APIVersion = supportedAPIVersions[i]
			break
		}
	}
	if r.report.APIVersion == "" {
		r.errorf("Info: no API version in common with this kit (%v): nothing can be configured", supportedAPIVersions)
		ok = false
	}
	return info, ok
}

// checkSpec fetches the config spec and converts it as the core does.
func (r *runner) checkSpec(s *session) (hcldec.Spec, bool) {
	r.t.Helper()
	ctx, cancel := r.ctx()
	defer cancel()
	ps, err := s.base.ConfigSpec(ctx)
	if err != nil {
		r.errorf("ConfigSpec: %v", err)
		return nil, false
	}
	spec, err := decode.Spec(ps)
	if err != nil {
		r.errorf("ConfigSpec does not convert to an hcldec spec: %v", err)
		return nil, false
	}
	return spec, true
}

// decode parses and decodes one config body the way the core decodes a
// plugin block's config {}.
func (r *runner) decode(filename, src string, spec hcldec.Spec) ([]byte, Stage, string) {
	f, diags := hclsyntax.ParseConfig([]byte(src), filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, StageSyntax, diags.Error()
	}
	raw, diags := decode.Body(f.Body, spec, r.opts.EvalContext)
	if diags.HasErrors() {
		return nil, StageSpec, diags.Error()
	}
	return raw, StageAccepted, ""
}

func (r *runner) configure(s *session, raw []byte) error {
	ctx, cancel := r.ctx()
	defer cancel()
	return s.base.Configure(ctx, &pluginv1.ConfigureRequest{
		ApiVersion: r.report.APIVersion, ConfigJson: raw, Instance: r.opts.Instance})
}

func (r *runner) health(s *session) error {
	ctx, cancel := r.ctx()
	defer cancel()
	return s.base.Health(ctx)
}

func (r *runner) checkScheduler(s *session) {
	r.t.Helper()
	sched, ok := s.kind.(sdk.Scheduler)
	if !ok {
		r.errorf("the dispensed client %T is not an sdk.Scheduler", s.kind)
		return
	}
	ctx, cancel := r.ctx()
	defer cancel()
	req := &pluginv1.PlaceRequest{Jobs: r.opts.Jobs, Workers: r.opts.Workers}
	resp, err := sched.Place(ctx, req)
	if err != nil {
		r.errorf("Place: %v", err)
		return
	}
	jobs, workers := map[int64]bool{}, map[int64]bool{}
	for _, j := range req.GetJobs() {
		jobs[j.GetId()] = true
	}
	for _, w := range req.GetWorkers() {
		workers[w.GetId()] = true
	}
	seen := map[int64]bool{}
	placed := 0
	for i, p := range resp.GetPlacements() {
		switch {
		case !jobs[p.GetJobId()]:
			r.errorf("Place: placement %d names job %d, not a job of the request", i, p.GetJobId())
		case seen[p.GetJobId()]:
			r.errorf("Place: job %d is placed more than once", p.GetJobId())
		}
		seen[p.GetJobId()] = true
		switch {
		case p.GetWorkerId() == 0 && p.GetReason() == "":
			r.errorf("Place: placement %d (job %d) places on no worker (0) without a reason", i, p.GetJobId())
		case p.GetWorkerId() != 0 && !workers[p.GetWorkerId()]:
			r.errorf("Place: placement %d (job %d) names worker %d, not a worker of the request", i, p.GetJobId(), p.GetWorkerId())
		case p.GetWorkerId() != 0:
			placed++
		}
	}
	r.t.Logf("sdktest: Place: %d jobs, %d workers: %d placements, %d on a worker",
		len(req.GetJobs()), len(req.GetWorkers()), len(resp.GetPlacements()), placed)
}

func (r *runner) checkProxy(s *session) {
	r.t.Helper()
	proxy, ok := s.kind.(sdk.Proxy)
	if !ok {
		r.errorf("the dispensed client %T is not an sdk.Proxy", s.kind)
		return
	}
	req := &pluginv1.RenderRequest{Routes: r.opts.Routes, Generation: r.opts.Generation}
	var out [2]*pluginv1.RenderResponse
	for i := range out {
		ctx, cancel := r.ctx()
		resp, err := proxy.Render(ctx, req)
		cancel()
		if err != nil {
			r.errorf("Render (call %d): %v", i+1, err)
			return
		}
		out[i] = resp
	}
	if len(out[0].GetBody()) == 0 {
		r.errorf("Render: empty body for %d routes", len(req.GetRoutes()))
	}
	if out[0].GetContentType() == "" {
		r.errorf("Render: empty content type")
	}
	if !bytes.Equal(out[0].GetBody(), out[1].GetBody()) || out[0].GetContentType() != out[1].GetContentType() {
		r.errorf("Render: two calls with the same routes gave different outputs (equal inputs must give byte-equal outputs; the core serves them with an ETag)\n  first:  %s\n  second: %s",
			abbrev(out[0].GetBody()), abbrev(out[1].GetBody()))
	}
	r.t.Logf("sdktest: Render: %d routes: %d bytes of %q", len(req.GetRoutes()), len(out[0].GetBody()), out[0].GetContentType())
}

func (r *runner) checkAlerts(s *session) {
	r.t.Helper()
	sink, ok := s.kind.(sdk.AlertSink)
	if !ok {
		r.errorf("the dispensed client %T is not an sdk.AlertSink", s.kind)
		return
	}
	ctx, cancel := r.ctx()
	defer cancel()
	req := &pluginv1.DeliverRequest{Events: r.opts.Events}
	resp, err := sink.Deliver(ctx, req)
	if err != nil {
		r.errorf("Deliver: %v", err)
		return
	}
	if len(resp.GetResults()) != len(req.GetEvents()) {
		r.errorf("Deliver: %d results for %d events (one per event)", len(resp.GetResults()), len(req.GetEvents()))
	}
	events := map[string]bool{}
	for _, e := range req.GetEvents() {
		events[e.GetId()] = true
	}
	seen := map[string]bool{}
	outcomes := map[pluginv1.DeliveryOutcome]int{}
	for i, res := range resp.GetResults() {
		switch {
		case !events[res.GetEventId()]:
			r.errorf("Deliver: result %d is for event %q, not an event of the request", i, res.GetEventId())
		case seen[res.GetEventId()]:
			r.errorf("Deliver: event %q has more than one result", res.GetEventId())
		}
		seen[res.GetEventId()] = true
		switch o := res.GetOutcome(); o {
		case pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED, pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY,
			pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED:
			outcomes[o]++
		default:
			r.errorf("Deliver: result %d (event %q) has outcome %v", i, res.GetEventId(), o)
		}
		if res.GetRetryAfterMs() < 0 {
			r.errorf("Deliver: result %d (event %q) has a negative retry_after_ms", i, res.GetEventId())
		}
	}
	for id := range events {
		if !seen[id] {
			r.errorf("Deliver: no result for event %q", id)
		}
	}
	r.t.Logf("sdktest: Deliver: %d events: %d delivered, %d retry, %d failed", len(req.GetEvents()),
		outcomes[pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_DELIVERED],
		outcomes[pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_RETRY],
		outcomes[pluginv1.DeliveryOutcome_DELIVERY_OUTCOME_FAILED])
}

func (r *runner) checkPlans(s *session) {
	r.t.Helper()
	src, ok := s.kind.(sdk.PlanSource)
	if !ok {
		r.errorf("the dispensed client %T is not an sdk.PlanSource", s.kind)
		return
	}
	ctx, cancel := r.ctx()
	defer cancel()
	resp, err := src.Plans(ctx)
	if err != nil {
		r.errorf("Plans: %v", err)
		return
	}
	if len(resp.GetPlans()) == 0 {
		r.errorf("Plans: empty catalogue")
	}
	ids := map[string]bool{}
	for i, p := range resp.GetPlans() {
		id := p.GetId()
		switch {
		case !planID.MatchString(id):
			r.errorf("Plans: plan %d has id %q, want [a-z0-9][a-z0-9_-]*", i, id)
		case ids[id]:
			r.errorf("Plans: id %q appears more than once", id)
		}
		ids[id] = true
		for name, v := range map[string]int64{"max_apps": p.GetMaxApps(), "cpu": p.GetCpu(), "memory": p.GetMemory(),
			"disk": p.GetDisk(), "bandwidth": p.GetBandwidth()} {
			if v < 0 {
				r.errorf("Plans: plan %q has a negative %s (%d)", id, name, v)
			}
		}
	}
	if resp.GetDefaultPlan() == "" {
		r.errorf("Plans: no default_plan")
	} else if !ids[resp.GetDefaultPlan()] {
		r.errorf("Plans: default_plan %q is not a plan of the catalogue", resp.GetDefaultPlan())
	}
	if resp.GetRefreshAfterMs() < 0 {
		r.errorf("Plans: negative refresh_after_ms")
	}
	r.t.Logf("sdktest: Plans: %d plans, default %q", len(resp.GetPlans()), resp.GetDefaultPlan())
}

// session is one plugin process and the core's clients for it.
type session struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	base   sdk.Client // the base calls (Info, ConfigSpec, Configure, Health)
	kind   sdk.Client // the dispensed client of the plugin's kind
}

// launch starts a plugin process exactly as the core does and completes
// the handshake.
func (r *runner) launch() (*session, error) {
	cmd := r.opts.Command()
	if cmd == nil {
		return nil, errors.New("Options.Command returned nil")
	}
	setPdeathsig(cmd)
	stderr := &tail{max: 4 << 10}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.HandshakeConfig(),
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		Logger:           r.opts.Logger,
		StartTimeout:     r.opts.StartTimeout,
		Stderr:           stderr, // also logged; kept to explain a failed start
	})
	s := &session{client: client}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		hint := ""
		if isSelf(cmd) {
			hint = " (the command re-executes the test binary: call sdktest.ServeIfChild or ServeNamedIfChild at the top of TestMain)"
		}
		if out := stderr.String(); out != "" {
			hint += "\n  plugin stderr (end):\n    " + strings.ReplaceAll(strings.TrimSpace(out), "\n", "\n    ")
		}
		return nil, fmt.Errorf("starting %s: %w%s", cmd.Path, err, hint)
	}
	s.rpc = rpc
	if v := client.NegotiatedVersion(); v != int(sdk.HandshakeConfig().ProtocolVersion) {
		r.stop(s)
		return nil, fmt.Errorf("negotiated protocol version %d, want %d", v, sdk.HandshakeConfig().ProtocolVersion)
	}
	if p := client.Protocol(); p != plugin.ProtocolGRPC {
		r.stop(s)
		return nil, fmt.Errorf("protocol %q, want gRPC", p)
	}
	if err := rpc.Ping(); err != nil {
		r.stop(s)
		return nil, fmt.Errorf("ping: %w", err)
	}
	// The base service is the same whatever the kind: use the expected
	// kind's client until Info says which kind it is.
	kind := r.opts.Kind
	if kind == "" {
		kind = sdk.KindScheduler
	}
	if err := s.dispense(kind); err != nil {
		r.stop(s)
		return nil, err
	}
	s.base = s.kind
	return s, nil
}

func (s *session) dispense(kind string) error {
	raw, err := s.rpc.Dispense(kind)
	if err != nil {
		return err
	}
	c, ok := raw.(sdk.Client)
	if !ok {
		return fmt.Errorf("dispensed %T, not an sdk.Client", raw)
	}
	s.kind = c
	return nil
}

// stop ends the plugin process as the core does at shutdown and checks
// that it exited.
func (r *runner) stop(s *session) {
	r.t.Helper()
	s.client.Kill()
	if !s.client.Exited() {
		r.errorf("the plugin process did not exit when killed")
	}
}

// oneLine shows a config snippet on one line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "(empty)"
	}
	return s
}

// abbrev shows the start of a body.
func abbrev(b []byte) string {
	const n = 200
	if len(b) > n {
		return fmt.Sprintf("%q… (%d bytes)", b[:n], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// testWriter sends log lines to t.Log until closed: go-plugin's goroutines
// may still log after the test ends, when t.Log would panic.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

// Write logs p to the test unless the writer is closed.
func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write keeps the end of what was written.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String returns the kept end.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// selfExecutable is the test binary, for SelfCommand; errors are reported
// when the command runs.
func selfExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}
