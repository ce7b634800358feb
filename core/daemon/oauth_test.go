package daemon

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/config"
)

// The `oauth` blocks reach the accounts service: a configured provider's
// login redirects to its (overridden) authorize URL with the client id and
// the callback under server.base_url; a provider without a block is 404.
func TestDaemonServesOAuth(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `base_url = "https://paas.example.test"`)
	cfg.Security.SecureCookies = false
	cfg.OAuth = map[string]config.OAuth{"github": {Provider: "github", ClientID: "gh-id", ClientSecret: config.NewSecret("gh-secret"),
		AuthURL: "http://127.0.0.1:1/authorize", TokenURL: "http://127.0.0.1:1/token", APIURL: "http://127.0.0.1:1/api"}}
	r := start(t, cfg, nil)
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get("http://" + r.addr + "/api/v1/auth/github/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	q := loc.Query()
	if loc.Host != "127.0.0.1:1" || q.Get("client_id") != "gh-id" || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != "https://paas.example.test/api/v1/auth/github/callback" {
		t.Fatalf("authorize URL %s", loc)
	}
	if q.Has("client_secret") {
		t.Fatal("the client secret is in the authorize URL")
	}
	resp, err = hc.Get("http://" + r.addr + "/api/v1/auth/google/login?" + url.Values{"return": {"/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unconfigured provider: %d", resp.StatusCode)
	}
}
