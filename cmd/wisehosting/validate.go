package main

import (
	"context"
	"fmt"
	"io"
)

// cmdValidate checks a config file and, unless -plugins=false, starts each
// declared plugin to check its config block against the plugin's schema.
func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	quiet := fs.Bool("q", false, "print nothing on success")
	withPlugins := fs.Bool("plugins", true, "start each plugin and check its config block")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	path := defaultConfig()
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		return usageErr("validate takes one file, got %q", fs.Args())
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	if *withPlugins {
		if err := validatePlugins(ctx, cfg, stderr); err != nil {
			return err
		}
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: valid (%d plugin blocks)\n", cfg.Filename, len(cfg.Plugins))
	}
	return nil
}

// usageErr is an error that exits 2 after printing its message.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}
