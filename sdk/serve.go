package sdk

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Logger returns the logger a plugin should use: JSON lines on stderr,
// which the core re-logs under the plugin's name (plugin.<kind>.<name>).
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace, // the core filters by its own level
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// Serve runs p as a plugin subprocess and returns when the core ends it. It
// is what a plugin's main calls. A value that implements no kind, or whose
// Info disagrees with the kind it implements, exits with an error: the core
// starts plugins itself, so Serve run by hand says so.
func Serve(p Plugin) {
	if err := serve(p); err != nil {
		fmt.Fprintln(os.Stderr, "wisehosting plugin:", err)
		os.Exit(1)
	}
}

func serve(p Plugin) error {
	kind := KindOf(p)
	if kind == "" {
		return fmt.Errorf("%T must implement exactly one plugin kind (Scheduler, Proxy, AlertSink, PlanSource)", p)
	}
	info, err := p.Info(context.Background())
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if info.GetKind() != kind {
		return fmt.Errorf("Info says kind %q but %T implements %q", info.GetKind(), p, kind)
	}
	if os.Getenv(HandshakeConfig().MagicCookieKey) != HandshakeConfig().MagicCookieValue {
		return fmt.Errorf("%s %q is a WiseHosting plugin: declare it in wisehosting.hcl and the core starts it", kind, info.GetName())
	}
	plugin.Serve(ServeConfig(p, kind))
	return nil
}

// ServeConfig is the go-plugin configuration Serve uses, exported for
// harnesses that serve a plugin in-process (plugin.TestPluginGRPCConn).
func ServeConfig(p Plugin, kind string) *plugin.ServeConfig {
	return &plugin.ServeConfig{
		HandshakeConfig: HandshakeConfig(),
		Plugins:         plugin.PluginSet{kind: &GRPCPlugin{Kind: kind, Impl: p}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, GRPCServerOptions()...)...)
		},
		Logger: Logger(),
	}
}
