// Package plugintest serves a plugin in-process through the real gRPC path,
// so a unit test exercises exactly what the core will call: protobuf
// marshalling, the sdk's gRPC server and client glue, status codes, and the
// message-size limits.
//
//	c := plugintest.Connect(t, &mock.Scheduler{PlaceFunc: place})
//	resp, err := c.(sdk.Scheduler).Place(ctx, req)
//
// How it is built: go-plugin's plugin.TestPluginGRPCConn cannot be given
// server or dial options (its server is plugin.DefaultGRPCServer with gRPC's
// 4 MiB receive limit, its client dials with MaxInt32 limits), so it would
// test neither the sdk's sdk.MaxMessageSize nor what the core dials with.
// Connect instead runs go-plugin's own server, plugin.Serve, in test mode
// (plugin.ServeTestConfig) with the very configuration sdk.Serve uses
// (sdk.ServeConfig: sdk.GRPCPlugin and sdk.GRPCServerOptions), listening on a
// Unix socket in a temporary directory; and connects go-plugin's client to it
// through a reattach config with the core's client options (sdk.PluginSet,
// gRPC only, sdk.GRPCDialOptions), then dispenses the plugin's kind. Only the
// subprocess and AutoMTLS are left out; sdk/sdktest covers those.
package plugintest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/wisehosting/wisehosting/sdk"
)

// startTimeout bounds how long the in-process server may take to listen.
const startTimeout = 10 * time.Second

// Connect serves impl in-process over gRPC and returns the core's client for
// it. The client implements the kind's interface: type-assert it to
// sdk.Scheduler, sdk.Proxy (and sdk.ProxyApplier), sdk.AlertSink or
// sdk.PlanSource. impl must implement exactly one kind (sdk.KindOf). The
// server and the connection are closed by t.Cleanup; go-plugin's logs go to
// t.Log at Info level and above.
func Connect(t testing.TB, impl sdk.Plugin) sdk.Client {
	t.Helper()
	kind := sdk.KindOf(impl)
	if kind == "" {
		t.Fatalf("plugintest: %T must implement exactly one plugin kind (Scheduler, Proxy, AlertSink, PlanSource)", impl)
		return nil
	}

	logw := &testWriter{t: t}
	logger := hclog.New(&hclog.LoggerOptions{Name: "plugintest." + kind, Level: hclog.Info, Output: logw, DisableTime: true})

	ctx, cancel := context.WithCancel(context.Background())
	reattachCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	cfg := sdk.ServeConfig(impl, kind)
	cfg.Logger = logger.Named("plugin")
	cfg.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattachCh, CloseCh: closeCh}
	go plugin.Serve(cfg)

	stopServer := func() {
		cancel()
		select {
		case <-closeCh:
		case <-time.After(startTimeout):
			t.Errorf("plugintest: the in-process %s plugin server did not stop within %v", kind, startTimeout)
		}
	}
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattachCh:
	case <-closeCh:
		cancel()
		logw.close()
		t.Fatalf("plugintest: the in-process %s plugin server ended before serving (see the log above)", kind)
		return nil
	case <-time.After(startTimeout):
		stopServer()
		logw.close()
		t.Fatalf("plugintest: the in-process %s plugin server did not start within %v", kind, startTimeout)
		return nil
	}
	// The "process" to reattach to is this one: it ends when the server does.
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess{done: closeCh}, nil }

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.HandshakeConfig(),
		Plugins:          sdk.PluginSet(),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		Logger:           logger.Named("host"),
	})
	var rpc plugin.ClientProtocol
	t.Cleanup(func() {
		if rpc != nil {
			// Asks the server to stop (go-plugin's controller), then closes
			// the connection. Cancelling the serve context at the same time
			// would race inside go-plugin (two GRPCServer.Stop calls), so
			// give the server time to end on its own first.
			_ = rpc.Close()
			select {
			case <-closeCh:
			case <-time.After(startTimeout):
			}
		}
		stopServer()
		client.Kill() // a test-mode reattached client only forgets the plugin
		logw.close()
	})

	var err error
	rpc, err = client.Client()
	if err != nil {
		t.Fatalf("plugintest: connecting to the in-process %s plugin: %v", kind, err)
		return nil
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		t.Fatalf("plugintest: dispensing %s: %v", kind, err)
		return nil
	}
	c, ok := raw.(sdk.Client)
	if !ok {
		t.Fatalf("plugintest: dispensed %T, not an sdk.Client", raw)
		return nil
	}
	return c
}

// inProcess is the runner.AttachedRunner of a plugin served by this process:
// it "exits" when the in-process server has stopped.
type inProcess struct{ done <-chan struct{} }

// Wait returns when the in-process server has stopped.
func (p inProcess) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill does nothing: the server is stopped by Connect's cleanup.
func (inProcess) Kill(context.Context) error { return nil }

// ID names the "process".
func (inProcess) ID() string { return "in-process" }

// PluginToHost returns the address unchanged: both ends share a host.
func (inProcess) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin returns the address unchanged: both ends share a host.
func (inProcess) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
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
