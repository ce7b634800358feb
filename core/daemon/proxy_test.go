package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
)

// TestProxyFollowsTheStore: the daemon renders the route table for its
// proxy plugin (a real subprocess) and serves it at
// /v1/proxy/<name>/config; rows written straight to Postgres reach it
// through the route-change notifications, and a stopped app leaves it.
func TestProxyFollowsTheStore(t *testing.T) {
	t.Parallel()
	const token = "proxy-token-for-the-test-0123456789"
	cfg := testConfigWith(t, "", `
proxy {
  token = "`+token+`"
}
plugin "proxy" "lister" {}
`)
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addr, err := d.Listen()
	if err != nil {
		d.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	base := "http://" + addr.String()

	fetch := func(etag string) (int, string, string) {
		req, _ := http.NewRequest("GET", base+"/v1/proxy/lister/config", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("ETag")
	}
	waitBody := func(what string, cond func(string) bool) (string, string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body, etag := fetch("")
			if code == 200 && cond(body) {
				return body, etag
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: last answer %d %q", what, code, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_, emptyTag := waitBody("the first rendering", func(b string) bool { return strings.HasPrefix(b, "generation 1\n") })

	st := d.Database().Store
	minted, err := workerauth.Mint(d.Database().Cipher)
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.CreateWorker(t.Context(), store.NewWorker{Name: "edge-w1", Address: "10.9.0.2", Creds: minted.Creds})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(t.Context(), store.NewUser{Email: "proxy@example.com", Name: "P"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApp(t.Context(), store.NewApp{UserID: u.ID, Name: "shop-app"})
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := st.Pool().Exec(t.Context(), sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	exec(`UPDATE apps SET status = 'running', worker_id = $2, port = 3000 WHERE id = $1`, app.ID, w.ID)
	exec(`INSERT INTO domains (app_id, user_id, hostname, verification_token, status, verified_at)
		VALUES ($1, $2, 'shop.example.org', 't', 'verified', now())`, app.ID, u.ID)
	body, tag := waitBody("the running app", func(b string) bool { return strings.Contains(b, "shop.example.org") })
	t.Logf("route live after %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(body, app.Subdomain+" http://10.9.0.2:3000 "+app.Subdomain+".apps.test shop.example.org") {
		t.Errorf("rendering: %q", body)
	}
	if code, _, _ := fetch(tag); code != http.StatusNotModified {
		t.Errorf("If-None-Match with the current tag: %d", code)
	}
	if code, _, _ := fetch(emptyTag); code != http.StatusOK {
		t.Errorf("If-None-Match with an old tag: %d", code)
	}
	// The TLS permission check follows the same table.
	if code, _ := get(t, base+"/v1/proxy/tls/ask?domain=shop.example.org"); code != 200 {
		t.Errorf("ask for a routed host: %d", code)
	}

	exec(`UPDATE apps SET status = 'stopped' WHERE id = $1`, app.ID)
	waitBody("the stopped app to leave", func(b string) bool { return !strings.Contains(b, "shop.example.org") })
	if code, _ := get(t, base+"/v1/proxy/tls/ask?domain=shop.example.org"); code != 404 {
		t.Errorf("ask for a host no longer routed: %d", code)
	}
	if g := d.Proxy().State().Generation; g < 3 {
		t.Errorf("generation %d after two changes", g)
	}
}
