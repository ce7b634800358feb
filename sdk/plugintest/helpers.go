package plugintest

import (
	"bytes"
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/hclspec/decode"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// LogBuffer collects a plugin's log in a test; it is safe for concurrent
// writers.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// JSONLogger returns a Trace-level logger writing JSON lines into a new
// LogBuffer, as sdk.Logger writes them to the core.
func JSONLogger() (hclog.Logger, *LogBuffer) {
	buf := &LogBuffer{}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: buf, JSONFormat: true}), buf
}

// Configure decodes the HCL body src against spec exactly as the core
// decodes a plugin's config block (diagnostics come back as the error) and
// passes the result to p.Configure with sdk.APIVersion1.
func Configure(p sdk.Plugin, spec *pluginv1.Spec, src string) error {
	js, diags := decode.Source(spec, []byte(src), "test.hcl", nil)
	if diags.HasErrors() {
		return diags
	}
	return p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: js})
}
