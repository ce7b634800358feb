package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadCertPoolRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing.pem"), "no such file"},
		{"not PEM", write("x.pem", []byte("hello")), "holds no PEM certificate"},
		{"too large", write("big.pem", make([]byte, MaxCAFile+1)), "larger than"},
	} {
		if _, err := LoadCertPool(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
