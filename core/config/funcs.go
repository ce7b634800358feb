package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileSize caps what file() and credentials read: they hold secrets, not
// data, and the cap keeps a mistaken path (a device, a huge log) harmless.
const maxFileSize = 1 << 20

// newEvalContext returns the context config expressions are evaluated in:
// the env() and file() functions and no variables.
func newEvalContext(baseDir string, lookupEnv func(string) (string, bool)) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":  envFunc(lookupEnv),
			"file": fileFunc(baseDir),
		},
	}
}

// envFunc implements env("NAME") and env("NAME", "default").
func envFunc(lookupEnv func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, `env takes a variable name and at most one default, e.g. env("NAME", "default")`)
			}
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the variable name is empty")
			}
			if v, ok := lookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf(`environment variable %q is not set; set it, or give a default: env(%q, "default")`, name, name)
		},
	})
}

// fileFunc implements file("path"): the file's text with trailing
// whitespace trimmed, a relative path resolved against baseDir.
func fileFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file, trailing whitespace trimmed; relative paths are resolved against the config file's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the path is empty")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(baseDir, p)
			}
			text, err := readSecretFile(p)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(text), nil
		},
	})
}

// readSecretFile reads a small regular UTF-8 text file and trims trailing
// whitespace. Its errors name the path but never the contents.
func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("file %q does not exist", path)
	case err != nil:
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%q is not a regular file", path)
	case fi.Size() > maxFileSize:
		return "", fmt.Errorf("file %q is larger than 1 MiB", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	}
	if len(data) > maxFileSize {
		return "", fmt.Errorf("file %q is larger than 1 MiB", path)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("file %q is not UTF-8 text", path)
	}
	return strings.TrimRightFunc(string(data), unicode.IsSpace), nil
}

// unwrapPathError drops the operation and path of an *fs.PathError, which
// the caller's message already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
