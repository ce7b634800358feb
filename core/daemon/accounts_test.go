package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/store"
)

// The daemon serves the accounts API, and a revoke link its mailer signs
// is honoured by that API (one revoke key, derived once). The prune runs
// under its advisory lock.
func TestDaemonServesAccounts(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	cfg.Security.SecureCookies = false // plain HTTP test server
	var sid int64
	var uid int64
	r := start(t, cfg, func(d *Daemon) {
		u, err := d.Database().Store.CreateUser(context.Background(), store.NewUser{Email: "ada@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		uid = u.ID
		d.api.Group().POST("/test/login", func(w http.ResponseWriter, req bunrouter.Request) error {
			var err error
			sid, err = d.Accounts().Login(req.Context(), w, req.Request, uid, false)
			if err != nil {
				return err
			}
			return api.WriteJSON(w, http.StatusOK, map[string]int64{"session_id": sid})
		})
	})
	base := "http://" + r.addr
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error.Code
	}
	if code, ec := get("/api/v1/me"); code != http.StatusUnauthorized || ec != "unauthorized" {
		t.Fatalf("/api/v1/me without a session: %d %q", code, ec)
	}
	resp, err := hc.Post(base+"/test/login", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := get("/api/v1/me"); code != http.StatusOK {
		t.Fatalf("/api/v1/me after login: %d", code)
	}
	tok := r.d.Mailer().SignRevokeToken(uid, sid, time.Now())
	if code, _ := get(mail.RevokePath + "?" + url.Values{"token": {tok}}.Encode()); code != http.StatusOK {
		t.Fatalf("revoke link: %d", code)
	}
	if code, _ := get("/api/v1/me"); code != http.StatusUnauthorized {
		t.Fatalf("/api/v1/me after the revoke link: %d", code)
	}
	ran, err := r.d.Accounts().Prune(t.Context())
	if err != nil || !ran {
		t.Fatalf("prune: %v, %v", ran, err)
	}
	var n int
	if err := r.d.Database().Store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d sessions after the prune, %v", n, err)
	}
}
