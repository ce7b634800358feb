package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/plugins"
	"github.com/wisehosting/wisehosting/sdk"
)

// cmdPlugin is the internal `plugin serve <kind> <name>`: the core
// re-executes its own binary this way to serve a built-in plugin, so every
// plugin runs in its own process. Not in the usage text.
func cmdPlugin(args []string, stderr io.Writer) error {
	if len(args) != 3 || args[0] != "serve" {
		return usageErr("plugin serve <kind> <name> (internal: the core starts built-in plugins this way)")
	}
	kind, name := args[1], args[2]
	p, ok := plugins.Lookup(kind, name)
	if !ok {
		fmt.Fprintf(stderr, "wisehosting: no built-in %s plugin %q. Built-in plugins:\n", kind, name)
		printBuiltins(stderr)
		return errReported
	}
	sdk.Serve(p)
	return nil
}

// printBuiltins lists the built-in plugins, one per line.
func printBuiltins(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, b := range plugins.List() {
		fmt.Fprintf(tw, "  plugin %q %q\t%s\n", b.Kind, b.Name, b.Description)
	}
	_ = tw.Flush()
}

// cmdPlugins is `plugins list`: start every declared plugin, print what it
// is and whether it is healthy, stop them.
func cmdPlugins(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageErr("plugins list [-config FILE] [-builtin]")
	}
	fs := newFlags("plugins list", stderr)
	cfgPath := fs.String("config", defaultConfig(), "config file")
	builtin := fs.Bool("builtin", false, "list the built-in plugins instead (no config needed)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("plugins list takes no arguments, got %q", fs.Args())
	}
	if *builtin {
		printBuiltins(stdout)
		return nil
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	h := pluginhost.New(pluginhost.Options{Logger: quietLogger(stderr)})
	diags := h.Start(ctx, cfg)
	defer func() { _ = h.Stop(context.WithoutCancel(ctx)) }()
	if err := reportPluginDiagnostics(cfg, diags, stderr); err != nil {
		return err
	}
	h.CheckHealth(ctx)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSOURCE\tVERSION\tAPI\tHEALTH\tDESCRIPTION")
	for _, s := range h.Status() {
		health := "healthy"
		if !s.Healthy {
			health = "unhealthy"
			if s.HealthMessage != "" {
				health += ": " + firstLine(s.HealthMessage)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Kind, s.Name, s.Source, dash(s.Version), dash(s.APIVersion), health, dash(s.Description))
	}
	return tw.Flush()
}

// validatePlugins starts every plugin of cfg, checks its config block and
// stops it: the plugin half of `validate`.
func validatePlugins(ctx context.Context, cfg *config.Config, stderr io.Writer) error {
	diags := pluginhost.Validate(ctx, cfg, pluginhost.Options{Logger: quietLogger(stderr)})
	return reportPluginDiagnostics(cfg, diags, stderr)
}

// reportPluginDiagnostics prints diags with file:line:col and source
// snippets; errReported when any is an error.
func reportPluginDiagnostics(cfg *config.Config, diags hcl.Diagnostics, stderr io.Writer) error {
	if len(diags) > 0 {
		if err := cfg.WriteDiagnostics(stderr, diags); err != nil {
			return fmt.Errorf("print diagnostics: %w", err)
		}
	}
	if diags.HasErrors() {
		return errReported
	}
	return nil
}

// quietLogger logs warnings and errors (e.g. a plugin's own) to stderr, so
// a command's output stays its own.
func quietLogger(stderr io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "wisehosting", Level: hclog.Warn, Output: stderr})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
