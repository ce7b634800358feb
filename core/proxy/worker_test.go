package proxy_test

import (
	"strings"
	"testing"

	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/store"
)

func TestContainerPort(t *testing.T) {
	for env, want := range map[string]int{"3000": 3000, "": 8080, "abc": 8080, "0": 8080, "65536": 8080, "-1": 8080, " 80": 8080, "65535": 65535} {
		if got := proxy.ContainerPort(env); got != want {
			t.Errorf("ContainerPort(%q) = %d, want %d", env, got, want)
		}
	}
}

func TestWorkerConfigLeavesOutBadInput(t *testing.T) {
	body := string(proxy.WorkerConfig([]store.WorkerRouteRow{
		{Name: "good-app", UUID: "0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a10", Runtime: "podman", Port: 1, PortEnv: "nope",
			Domains: []string{"ok.example", "a`) || Host(`evil.example", "UP.example"}},
		{Name: "only-bad", UUID: "0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a11", Runtime: "podman", Domains: []string{"*.wild.example"}},
		{Name: "Bad_Name", UUID: "0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a12", Runtime: "podman", Domains: []string{"x.example"}},
		{Name: "bad-uuid", UUID: "../../x", Runtime: "podman", Domains: []string{"y.example"}},
		{Name: "exec-noport", Runtime: "exec", Port: 0, Domains: []string{"z.example"}},
	}))
	want := `{"http":{"routers":{"good-app":{"rule":"Host(` + "`ok.example`" + `)","service":"good-app"}},` +
		`"services":{"good-app":{"loadBalancer":{"servers":[{"url":"http://wh-0b7c6c1e-55b1-4c43-9d0e-3c1f4f0c2a10:8080"}]}}}}}` + "\n"
	if body != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
	if empty := string(proxy.WorkerConfig(nil)); strings.TrimSpace(empty) != `{"http":{"routers":{},"services":{}}}` {
		t.Errorf("empty: %s", empty)
	}
}
