package pluginv1_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository root relative to this package (sdk/proto/pluginv1).
const repoRoot = "../../.."

// goModule is the sdk's module path, which the generators strip from
// go_package to place files under sdk/.
const goModule = "github.com/wisehosting/wisehosting/sdk"

const toolsHint = "run `make tools` (installs protobuf-compiler and the pinned generators)"

// TestGeneratedCodeIsCurrent regenerates the plugin gRPC code exactly as
// `make proto` does, with protoc and the generators pinned in the Makefile
// (bin/tools), into a temporary directory and compares it byte for byte
// with the committed files. It fails, never skips, when a tool is missing:
// a stale check that silently does not run is no check.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatalf("protoc not found in PATH: %s", toolsHint)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatalf("reading the Makefile (the generators' pins): %v", err)
	}
	genGo := checkGenerator(t, root, makefile, "protoc-gen-go", "PROTOC_GEN_GO_VERSION")
	genGRPC := checkGenerator(t, root, makefile, "protoc-gen-go-grpc", "PROTOC_GEN_GO_GRPC_VERSION")
	if t.Failed() {
		return
	}

	var protos []string
	err = filepath.WalkDir(filepath.Join(root, "schema", "proto"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, _ := filepath.Rel(root, path)
			protos = append(protos, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(protos) == 0 {
		t.Fatal("no .proto files under schema/proto")
	}
	slices.Sort(protos) // as the Makefile's `find … | sort`

	out := t.TempDir()
	args := append([]string{
		"-I", "schema/proto",
		"--plugin=protoc-gen-go=" + genGo, "--plugin=protoc-gen-go-grpc=" + genGRPC,
		"--go_out=" + out, "--go_opt=module=" + goModule,
		"--go-grpc_out=" + out, "--go-grpc_opt=module=" + goModule,
	}, protos...)
	cmd := exec.Command(protoc, args...)
	cmd.Dir = root // the Makefile runs protoc from the root: paths in headers match
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	// Every generated file must be committed, identical.
	generated := map[string]bool{}
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		generated[filepath.ToSlash(rel)] = true
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		committed := filepath.Join(root, "sdk", rel)
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Errorf("sdk/%s is not committed (%v): run `make proto`", filepath.ToSlash(rel), err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("sdk/%s is stale: run `make proto`\n%s", filepath.ToSlash(rel), firstDifference(got, want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(generated) == 0 {
		t.Fatal("protoc generated nothing")
	}

	// Every committed generated file must still be generated (no leftovers
	// of a removed or renamed .proto).
	err = filepath.WalkDir(filepath.Join(root, "sdk", "proto"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pb.go") {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "sdk"), path)
		if !generated[filepath.ToSlash(rel)] {
			t.Errorf("sdk/%s is committed but no longer generated from schema/proto: delete it", filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkGenerator returns the path of bin/tools/<name> and checks it is the
// version the Makefile pins in variable pinVar (the Makefile installs a
// generator only when the file is missing, so a bumped pin needs a reinstall).
func checkGenerator(t *testing.T, root string, makefile []byte, name, pinVar string) string {
	t.Helper()
	path := filepath.Join(root, "bin", "tools", name)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s not found at bin/tools/%s: %s", name, name, toolsHint)
		return path
	}
	m := regexp.MustCompile(`(?m)^` + pinVar + `\s*:?=\s*(\S+)`).FindSubmatch(makefile)
	if m == nil {
		t.Errorf("the Makefile no longer pins %s with %s; update this test", name, pinVar)
		return path
	}
	pin := strings.TrimPrefix(string(m[1]), "v")
	b, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Errorf("bin/tools/%s --version: %v (%s): %s", name, err, bytes.TrimSpace(b), toolsHint)
		return path
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || strings.TrimPrefix(fields[len(fields)-1], "v") != pin {
		t.Errorf("bin/tools/%s is %q but the Makefile pins %s: remove bin/tools/%s, then %s",
			name, strings.TrimSpace(string(b)), m[1], name, toolsHint)
	}
	return path
}

// firstDifference describes the first line where got (committed) and want
// (regenerated) differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("first difference at line %d:\n  committed:   %q\n  regenerated: %q", i+1, gl, wl)
		}
	}
	return "files differ"
}
