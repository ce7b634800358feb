package main

import (
	"fmt"
	"io"

	"github.com/wisehosting/wisehosting/core/config"
)

// loadConfig loads and validates path, printing diagnostics (with source
// snippets and file:line:col) to stderr. Warnings are printed too; only
// errors fail.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	l := config.NewLoader(config.Options{})
	cfg, diags := l.Load(path)
	if len(diags) > 0 {
		if err := l.WriteDiagnostics(stderr, diags); err != nil {
			return nil, fmt.Errorf("print diagnostics: %w", err)
		}
	}
	if diags.HasErrors() || cfg == nil {
		return nil, errReported
	}
	return cfg, nil
}
