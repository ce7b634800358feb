package event

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"app.*", "app.cpu", true},
		{"app.*", "app.cpu.resolved", true},
		{"app.*", "app", false},
		{"app.*", "deployment.failed", false},
		{"*", "deployment.failed", true},
		{"*.failed", "deployment.failed", true},
		{"*.failed", "deployment.succeeded", false},
		{"app.*.resolved", "app.cpu.resolved", true},
		{"app.*.resolved", "app.cpu", false},
		{"deployment.failed", "deployment.failed", true},
		{"deployment.failed", "deployment.failed.x", false},
		{"deployment", "deployment.failed", false},
	}
	for _, c := range cases {
		t.Run(c.pattern+"~"+c.name, func(t *testing.T) {
			if got := Match(c.pattern, c.name); got != c.want {
				t.Fatalf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
			}
		})
	}
}

func TestValidPattern(t *testing.T) {
	for _, ok := range []string{"app.*", "*", "deployment.failed", "app.*.resolved"} {
		if err := ValidPattern(ok); err != nil {
			t.Errorf("ValidPattern(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "app..cpu", "App.cpu", "app.c*", "app cpu", "app.-"} {
		if err := ValidPattern(bad); err == nil {
			t.Errorf("ValidPattern(%q) = nil, want an error", bad)
		}
	}
}

func TestCatalogueNamesAreValidAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range All() {
		if err := ValidPattern(n); err != nil {
			t.Errorf("catalogue name %q: %v", n, err)
		}
		if seen[n] {
			t.Errorf("catalogue name %q repeated", n)
		}
		seen[n] = true
		if !Known(n) {
			t.Errorf("Known(%q) = false", n)
		}
	}
	if Known("app.nope") {
		t.Error("Known(app.nope) = true")
	}
}
