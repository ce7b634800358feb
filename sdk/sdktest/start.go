package sdktest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// Start launches the plugin command as the core does (handshake, gRPC,
// AutoMTLS, the real message limits), configures it with configJSON ("" =
// "{}") at the first API version, and returns its client, which type-asserts
// to the kind's interface. The process is killed at t.Cleanup. Use it for
// benchmarks and tests beyond the conformance run.
func Start(t testing.TB, command func() *exec.Cmd, kind, configJSON string) sdk.Client {
	t.Helper()
	r := &runner{t: t, opts: Options{Command: command, Kind: kind}}
	r.defaults()
	s, err := r.launch()
	if err != nil {
		t.Fatalf("sdktest: start: %v", err)
	}
	t.Cleanup(func() { r.stop(s) })
	if configJSON == "" {
		configJSON = "{}"
	}
	err = s.kind.Configure(context.Background(), &pluginv1.ConfigureRequest{
		ApiVersion: sdk.APIVersion1, ConfigJson: []byte(configJSON), Instance: r.opts.Instance})
	if err != nil {
		t.Fatalf("sdktest: start: configure: %v", err)
	}
	return s.kind
}
