package userapi_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/domains/dnstest"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/userapi"
)

// The ownership fixture: ada's app (unless another builder named one)
// and a domain of it.
func init() {
	fixtureBuilders = append(fixtureBuilders, func(e *env, f *fixture) {
		ctx := context.Background()
		app, err := e.st.CreateApp(ctx, store.NewApp{UserID: e.ada.ID, Name: "ada-domains-app"})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, ok := f.params["app"]; !ok {
			f.params["app"] = app.UUID
		}
		d, err := e.st.CreateDomain(ctx, store.NewDomain{AppID: app.ID, UserID: e.ada.ID,
			Hostname: "secret-ada-domain.example.com", Token: domains.NewToken()})
		if err != nil {
			e.t.Fatal(err)
		}
		f.params["domain"] = strconv.FormatInt(d.ID, 10)
		f.markers = append(f.markers, d.Hostname, d.Token)
	})
	snapshotters = append(snapshotters, func(ctx context.Context, e *env) any {
		ds, err := e.st.ListDomainsForUser(ctx, e.ada.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		return ds
	})
	ownershipBodies["POST /api/v1/apps/:app/domains"] = map[string]string{"hostname": "eve-new.example.com"}
}

const platformDomain = "apps.example.net"

// domainEnv is env with a DNS server the verifier asks, a fake clock, and
// an app of ada's.
type domainEnv struct {
	*env
	dns   *dnstest.Server
	clock *testutil.Clock
	v     *domains.Verifier
	app   *store.App
}

func newDomainEnv(t *testing.T) *domainEnv {
	t.Helper()
	de := &domainEnv{dns: dnstest.New(t), clock: testutil.NewClock(time.Now().Truncate(time.Microsecond))}
	var err error
	if de.v, err = domains.NewVerifier(domains.VerifierOptions{Resolver: de.dns.Addr(), Timeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	de.env = newEnvWith(t, func(_ *env, o *userapi.Options) {
		o.Domains, o.PlatformDomain, o.Now = de.v, platformDomain, de.clock.Now
	})
	if de.app, err = de.st.CreateApp(context.Background(), store.NewApp{UserID: de.ada.ID, Name: "ada-web-app"}); err != nil {
		t.Fatal(err)
	}
	return de
}

// domainJSON is the wire form of a domain.
type domainJSON struct {
	ID                int64      `json:"id"`
	Hostname          string     `json:"hostname"`
	Status            string     `json:"status"`
	AppUUID           string     `json:"app_uuid"`
	AppName           string     `json:"app_name"`
	VerificationToken string     `json:"verification_token"`
	VerifiedAt        *time.Time `json:"verified_at"`
	LastCheckedAt     *time.Time `json:"last_checked_at"`
	CheckError        string     `json:"check_error"`
	Record            struct {
		Type, Name, Value string
	} `json:"record"`
}

func (de *domainEnv) add(user *store.User, app, host string) domainJSON {
	de.t.Helper()
	var d domainJSON
	de.must(user, http.StatusCreated, "POST", "/api/v1/apps/"+app+"/domains", map[string]string{"hostname": host}).Domain(de.t, &d)
	return d
}

func (de *domainEnv) list(user *store.User, path string) []domainJSON {
	de.t.Helper()
	var b struct{ Domains []domainJSON }
	de.must(user, http.StatusOK, "GET", path, nil).JSON(de.t, &b)
	return b.Domains
}

func TestDomainFlow(t *testing.T) {
	t.Parallel()
	de := newDomainEnv(t)
	ctx := context.Background()

	d := de.add(de.ada, de.app.Name, "  WWW.Ada.Example.  ")
	if d.Hostname != "www.ada.example" || d.Status != "pending" || d.AppUUID != de.app.UUID || d.AppName != de.app.Name ||
		!regexp.MustCompile(`^wisehosting-verify=[0-9a-f]{32}$`).MatchString(d.VerificationToken) ||
		d.Record.Type != "TXT" || d.Record.Name != "_wisehosting.www.ada.example" || d.Record.Value != d.VerificationToken {
		t.Fatalf("created %+v", d)
	}
	de.add(de.ada, de.app.UUID, "api.ada.example")
	if got := de.list(de.ada, "/api/v1/apps/"+de.app.UUID+"/domains"); len(got) != 2 || got[0].Hostname != "api.ada.example" {
		t.Fatalf("app's domains %+v", got)
	}
	if got := de.list(de.ada, "/api/v1/domains"); len(got) != 2 {
		t.Fatalf("all domains %+v", got)
	}
	if got := de.list(de.eve, "/api/v1/domains"); len(got) != 0 {
		t.Fatalf("eve sees %+v", got)
	}

	// Verification before the record exists: 422 with the reason, stored.
	path := fmt.Sprintf("/api/v1/domains/%d", d.ID)
	r := de.must(de.ada, http.StatusUnprocessableEntity, "POST", path+"/verify", nil)
	if r.ErrorCode() != "verification_failed" || !strings.Contains(string(r.Body), "no TXT record at _wisehosting.www.ada.example") {
		t.Fatalf("verify without a record: %s", r.Body)
	}
	var got domainJSON
	de.must(de.ada, http.StatusOK, "GET", path, nil).Domain(t, &got)
	if got.Status != "pending" || got.CheckError != "no TXT record at _wisehosting.www.ada.example" || got.LastCheckedAt == nil {
		t.Fatalf("after a failed verify: %+v", got)
	}
	// A wrong token: the reason says what was found.
	de.dns.Set(d.Record.Name, "wisehosting-verify=00000000000000000000000000000000")
	r = de.must(de.ada, http.StatusUnprocessableEntity, "POST", path+"/verify", nil)
	if r.ErrorCode() != "verification_failed" ||
		!strings.Contains(string(r.Body), `none matches the token (found \"wisehosting-verify=00000000000000000000000000000000\")`) {
		t.Fatalf("verify with a wrong token: %s", r.Body)
	}
	// A timeout is not proof of absence, but still no verification.
	de.dns.Drop(d.Record.Name)
	if r = de.must(de.ada, http.StatusUnprocessableEntity, "POST", path+"/verify", nil); !strings.Contains(string(r.Body), "DNS lookup failed") {
		t.Fatalf("verify with a timeout: %s", r.Body)
	}

	// The record published: verified, and routed once the app runs.
	de.dns.Set(d.Record.Name, d.VerificationToken)
	de.must(de.ada, http.StatusOK, "POST", "/api/v1/domains/www.ada.example/verify", nil).Domain(t, &got)
	if got.Status != "verified" || got.VerifiedAt == nil || got.CheckError != "" {
		t.Fatalf("verified: %+v", got)
	}
	if hosts, err := de.st.ListVerifiedDomainsForApp(ctx, de.app.ID); err != nil || !slices.Equal(hosts, []string{"www.ada.example"}) {
		t.Fatalf("verified domains %v, %v", hosts, err)
	}
	de.runApp(t)
	routes, err := de.st.ListRoutes(ctx)
	if err != nil || len(routes) != 1 || !slices.Equal(routes[0].Domains, []string{"www.ada.example"}) {
		t.Fatalf("routes %+v, %v", routes, err)
	}

	// Delete: 204, gone from the routes, a 404 afterwards.
	de.must(de.ada, http.StatusNoContent, "DELETE", path, nil)
	de.must(de.ada, http.StatusNotFound, "GET", path, nil)
	if routes, _ := de.st.ListRoutes(ctx); len(routes) != 1 || len(routes[0].Domains) != 0 {
		t.Fatalf("routes after delete %+v", routes)
	}

	events, err := de.st.ListAuditEvents(ctx, de.ada.ID, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
		if ev.IP != "127.0.0.1" || !strings.Contains(string(ev.Details), `"hostname"`) {
			t.Errorf("audit event %+v", ev)
		}
	}
	if want := []string{"domain_delete", "domain_verify", "domain_create", "domain_create"}; !slices.Equal(kinds, want) {
		t.Fatalf("audit kinds %v, want %v", kinds, want)
	}
}

// runApp puts ada's app on a worker with an address, running.
func (de *domainEnv) runApp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	wc, err := storetest.Cipher(t).NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	w, err := de.st.CreateWorker(ctx, store.NewWorker{Name: "w1", Creds: store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := de.st.RegisterWorker(ctx, w.ID, store.Registration{Address: "10.0.0.1", CapacityCPU: 1000, CapacityMemory: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := de.st.Pool().Exec(ctx, `UPDATE apps SET status = 'running', worker_id = $2, port = 3000 WHERE id = $1`, de.app.ID, w.ID); err != nil {
		t.Fatal(err)
	}
}

func TestDomainBadHostnames(t *testing.T) {
	t.Parallel()
	de := newDomainEnv(t)
	for i, tt := range []struct {
		body any
		want string
	}{
		{map[string]string{"hostname": ""}, "empty"},
		{map[string]string{"hostname": "10.0.0.1"}, "IP address"},
		{map[string]string{"hostname": "[::1]"}, "IP address"},
		{map[string]string{"hostname": "*.ada.example"}, "wildcards"},
		{map[string]string{"hostname": "localhost"}, "single label"},
		{map[string]string{"hostname": "apps.example.net"}, "platform's own domain"},
		{map[string]string{"hostname": "ada-web-app.apps.example.net"}, "platform's own domain"},
		{map[string]string{"hostname": strings.Repeat("a.", 121) + "com"}, "at most 240"},
		{map[string]string{"hostname": "https://ada.example/"}, "without scheme"},
		{map[string]string{"hostname": "a_b.ada.example"}, "not allowed"},
		{map[string]string{"hostname": "xn--zz.ada.example"}, "punycode"},
		{map[string]any{"hostname": 7}, "invalid JSON"},
		{map[string]string{"hostname": "x.ada.example", "extra": "1"}, "unknown field"},
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r := de.must(de.ada, http.StatusBadRequest, "POST", "/api/v1/apps/"+de.app.Name+"/domains", tt.body)
			if !strings.Contains(string(r.Body), tt.want) {
				t.Fatalf("body %s, want %q", r.Body, tt.want)
			}
		})
	}
}

func TestDomainConflicts(t *testing.T) {
	t.Parallel()
	de := newDomainEnv(t)
	ctx := context.Background()
	eveApp, err := de.st.CreateApp(ctx, store.NewApp{UserID: de.eve.ID, Name: "eve-web-app"})
	if err != nil {
		t.Fatal(err)
	}
	d := de.add(de.ada, de.app.Name, "www.ada.example")
	for _, tt := range []struct {
		name string
		user *store.User
		app  string
		host string
		code int
	}{
		{"another user", de.eve, eveApp.Name, "www.ada.example", http.StatusConflict},
		{"another spelling", de.eve, eveApp.Name, "WWW.ADA.EXAMPLE.", http.StatusConflict},
		{"the same user", de.ada, de.app.Name, "www.ada.example", http.StatusConflict},
		{"someone else's app", de.eve, de.app.UUID, "eve.example", http.StatusNotFound},
		{"missing app", de.ada, "no-such-app", "x.ada.example", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := de.must(tt.user, tt.code, "POST", "/api/v1/apps/"+tt.app+"/domains", map[string]string{"hostname": tt.host})
			if tt.code == http.StatusConflict && r.ErrorCode() != "conflict" {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
	// A claim that never verified is replaced after StaleClaimAge.
	if _, err := de.st.Pool().Exec(ctx, `UPDATE domains SET created_at = $2 WHERE id = $1`,
		d.ID, de.clock.Now().Add(-domains.StaleClaimAge-time.Hour)); err != nil {
		t.Fatal(err)
	}
	de.add(de.eve, eveApp.Name, "www.ada.example")
	if got := de.list(de.ada, "/api/v1/domains"); len(got) != 0 {
		t.Fatalf("ada's stale claim still listed: %+v", got)
	}
}

func TestDomainRefs(t *testing.T) {
	t.Parallel()
	de := newDomainEnv(t)
	d := de.add(de.ada, de.app.Name, "www.ada.example")
	for _, ref := range []string{strconv.FormatInt(d.ID, 10), "www.ada.example", "WWW.Ada.Example."} {
		var got domainJSON
		de.must(de.ada, http.StatusOK, "GET", "/api/v1/domains/"+ref, nil).Domain(t, &got)
		if got.ID != d.ID {
			t.Fatalf("GET %s: %+v", ref, got)
		}
	}
	for _, ref := range []string{"0", "-1", "99999999", "99999999999999999999", "nope", "other.example", "10.0.0.1"} {
		if r := de.must(de.ada, http.StatusNotFound, "GET", "/api/v1/domains/"+ref, nil); r.ErrorCode() != "not_found" {
			t.Fatalf("GET %s: %s", ref, r.Body)
		}
	}
}

// TestDomainVerifyUnconfigured: without a verifier, verification is a
// 503, not a crash.
func TestDomainVerifyUnconfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app, err := e.st.CreateApp(context.Background(), store.NewApp{UserID: e.ada.ID, Name: "ada-web-app"})
	if err != nil {
		t.Fatal(err)
	}
	var d domainJSON
	e.must(e.ada, http.StatusCreated, "POST", "/api/v1/apps/"+app.Name+"/domains", map[string]string{"hostname": "www.ada.example"}).Domain(t, &d)
	e.must(e.ada, http.StatusServiceUnavailable, "POST", fmt.Sprintf("/api/v1/domains/%d/verify", d.ID), nil)
}

// TestDomainRecheckFlips: a domain verified through the API whose record
// vanishes stays verified through the grace period, then the re-check
// loop fails it and it leaves the routes.
func TestDomainRecheckFlips(t *testing.T) {
	t.Parallel()
	de := newDomainEnv(t)
	ctx := context.Background()
	d := de.add(de.ada, de.app.Name, "www.ada.example")
	de.dns.Set(d.Record.Name, d.VerificationToken)
	de.must(de.ada, http.StatusOK, "POST", fmt.Sprintf("/api/v1/domains/%d/verify", d.ID), nil)
	de.runApp(t)
	c, err := domains.NewChecker(domains.CheckerOptions{Store: de.st, Verifier: de.v, Now: de.clock.Now, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	routed := func() bool {
		routes, err := de.st.ListRoutes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(routes) == 1 && slices.Equal(routes[0].Domains, []string{"www.ada.example"})
	}
	de.dns.Delete(d.Record.Name)
	start := de.clock.Now()
	for de.clock.Now().Sub(start) <= domains.DefaultGrace {
		de.clock.Advance(domains.DefaultInterval)
		if _, err := c.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if de.clock.Now().Sub(start) <= domains.DefaultGrace && !routed() {
			t.Fatalf("unrouted %s after the record vanished, within the grace period", de.clock.Now().Sub(start))
		}
	}
	if routed() {
		t.Fatal("still routed after the grace period")
	}
	var got domainJSON
	de.must(de.ada, http.StatusOK, "GET", fmt.Sprintf("/api/v1/domains/%d", d.ID), nil).Domain(t, &got)
	if got.Status != "failed" || got.CheckError != "no TXT record at _wisehosting.www.ada.example" {
		t.Fatalf("after the grace period: %+v", got)
	}
	// The owner republishes the record and verifies by hand.
	de.dns.Set(d.Record.Name, d.VerificationToken)
	de.must(de.ada, http.StatusOK, "POST", fmt.Sprintf("/api/v1/domains/%d/verify", d.ID), nil)
	if !routed() {
		t.Fatal("not routed after re-verification")
	}
}
