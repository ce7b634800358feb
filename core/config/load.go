package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Options let callers (and tests) replace the process environment.
type Options struct {
	// LookupEnv resolves env() calls and the defaults below. Default:
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// CredentialsDir is the systemd credentials directory whose files
	// override secrets (see schema/config.md). Default: the
	// CREDENTIALS_DIRECTORY variable as seen by LookupEnv; empty disables
	// the overlay.
	CredentialsDir string
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.CredentialsDir == "" {
		o.CredentialsDir, _ = o.LookupEnv("CREDENTIALS_DIRECTORY")
	}
	return o
}

// Loader loads configuration files and keeps their sources, so that
// diagnostics can be printed with source snippets even when loading failed
// and no Config was returned. A Loader is not safe for concurrent use.
type Loader struct {
	opts  Options
	files map[string]*hcl.File
}

// NewLoader returns a Loader using opts (zero fields take their defaults).
func NewLoader(opts Options) *Loader {
	return &Loader{opts: opts.withDefaults(), files: map[string]*hcl.File{}}
}

// Load reads, decodes and validates the configuration file at path. The
// returned Config is nil when the diagnostics contain an error; warnings
// may accompany a valid Config.
func Load(path string, opts Options) (*Config, hcl.Diagnostics) {
	return NewLoader(opts).Load(path)
}

// Parse decodes and validates configuration source. filename names it in
// diagnostics, and its directory is the base of relative paths (data_dir,
// file(), tls_cert, …). The returned Config is nil when the diagnostics
// contain an error.
func Parse(src []byte, filename string, opts Options) (*Config, hcl.Diagnostics) {
	return NewLoader(opts).Parse(src, filename)
}

// Load reads, decodes and validates the configuration file at path; see the
// package-level Load.
func (l *Loader) Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration file",
			Detail:   fmt.Sprintf("Reading %s: %s.", path, unwrapPathError(err)),
			Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	return l.Parse(src, path)
}

// Parse decodes and validates configuration source; see the package-level
// Parse.
func (l *Loader) Parse(src []byte, filename string) (*Config, hcl.Diagnostics) {
	if filename == "" {
		filename = "wisehosting.hcl"
	}
	absFile, err := filepath.Abs(filename)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid configuration file name",
			Detail:   fmt.Sprintf("Resolving %s: %s.", filename, err),
			Subject:  &hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if file == nil || file.Body == nil {
		// Not expected from hclsyntax, but keep the contract: no nil deref.
		l.files[filename] = &hcl.File{Bytes: src}
		return nil, diags
	}
	d := newDecoder(filename, filepath.Dir(absFile), l.opts)
	cfg := d.decodeFile(file)
	cfg.Filename = absFile
	diags = append(diags, d.diags...)
	sortDiagnostics(diags, filename)

	masked := &hcl.File{Body: file.Body, Bytes: maskLiterals(file.Bytes, filename, file.Body), Nav: file.Nav}
	l.files[filename] = masked
	if diags.HasErrors() {
		return nil, diags
	}
	cfg.files = map[string]*hcl.File{filename: masked}
	cfg.evalCtx = d.ctx
	cfg.lookupEnv = l.opts.LookupEnv
	return cfg, diags
}

// Files returns the sources parsed so far, keyed by filename, with the
// values of secret attributes masked.
func (l *Loader) Files() map[string]*hcl.File { return l.files }

// WriteDiagnostics prints diags to w, one per entry, in the compiler style
// editors understand: "file:line:col: error: summary", the detail, and the
// source line with the subject underlined. Every string literal in printed
// source lines is masked, so no value written in the file (a secret, or
// anything else) is ever shown; the detail says what is wrong with it.
func (l *Loader) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	return writeDiagnostics(w, l.files, diags)
}

// WriteDiagnostics prints diags about the configuration file, e.g. from
// decoding a Plugin.Config body. It behaves like Loader.WriteDiagnostics.
func (c *Config) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	return writeDiagnostics(w, c.files, diags)
}

func writeDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if d.Subject == nil {
			fmt.Fprintf(&b, "%s: %s\n", sev, d.Summary)
		} else {
			fmt.Fprintf(&b, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary)
		}
		if d.Detail != "" {
			for _, line := range strings.Split(strings.TrimSpace(d.Detail), "\n") {
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
		if d.Subject != nil {
			if f := files[d.Subject.Filename]; f != nil {
				writeSnippet(&b, f.Bytes, *d.Subject)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("config: writing diagnostics: %w", err)
	}
	return nil
}

// writeSnippet prints the subject's first line with a gutter and underlines
// the subject's columns on it.
func writeSnippet(b *strings.Builder, src []byte, r hcl.Range) {
	lines := strings.Split(string(src), "\n")
	if r.Start.Line < 1 || r.Start.Line > len(lines) {
		return
	}
	line := strings.TrimRight(lines[r.Start.Line-1], "\r")
	gutter := fmt.Sprintf("%5d | ", r.Start.Line)
	fmt.Fprintf(b, "%s%s\n", gutter, line)
	start := r.Start.Column
	end := r.End.Column
	if r.End.Line != r.Start.Line || end <= start {
		end = len([]rune(line)) + 1
	}
	if start < 1 || start > len([]rune(line))+1 {
		return
	}
	width := max(end-start, 1)
	fmt.Fprintf(b, "%s%s%s\n", strings.Repeat(" ", len(gutter)-2)+"| ", strings.Repeat(" ", start-1), strings.Repeat("^", width))
}

// maskLiterals returns a copy of src in which the content of every string
// literal (quoted strings and heredoc bodies) is replaced by '*', byte for
// byte with newlines kept, so ranges stay valid while no value is shown.
// Block labels (plugin "proxy" "caddy") are names, not values, and stay.
func maskLiterals(src []byte, filename string, body hcl.Body) []byte {
	var labels []hcl.Range
	if b, ok := body.(*hclsyntax.Body); ok {
		var walk func(*hclsyntax.Body)
		walk = func(b *hclsyntax.Body) {
			for _, blk := range b.Blocks {
				labels = append(labels, blk.LabelRanges...)
				walk(blk.Body)
			}
		}
		walk(b)
	}
	inLabel := func(r hcl.Range) bool {
		for _, l := range labels {
			if r.Start.Byte >= l.Start.Byte && r.End.Byte <= l.End.Byte {
				return true
			}
		}
		return false
	}
	out := append([]byte(nil), src...)
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	for _, t := range tokens {
		if (t.Type != hclsyntax.TokenQuotedLit && t.Type != hclsyntax.TokenStringLit) || inLabel(t.Range) {
			continue
		}
		for i := t.Range.Start.Byte; i < t.Range.End.Byte && i < len(out); i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = '*'
			}
		}
	}
	return out
}
