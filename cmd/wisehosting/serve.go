package main

import (
	"context"
	"errors"
	"io"

	"github.com/wisehosting/wisehosting/core/daemon"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", defaultConfig(), "config file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	log := daemon.Logger(cfg.Logging)
	log.Info("starting", "version", versionString(), "config", cfg.Filename)
	d, err := daemon.New(ctx, cfg, log)
	if ce := (*daemon.ConfigError)(nil); errors.As(err, &ce) {
		// A plugin rejected its configuration: file:line:col, like validate.
		return reportPluginDiagnostics(cfg, ce.Diagnostics, stderr)
	}
	if err != nil {
		return err
	}
	if _, err := d.Listen(); err != nil {
		d.Close(context.WithoutCancel(ctx))
		return err
	}
	return d.Serve(ctx)
}
