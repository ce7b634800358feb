package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestWorkerEndpoints(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	cipher := storetest.Cipher(t)
	jwt, _ := secrets.NewJWTIssuer(storetest.Secret, nil)
	auth := workerauth.New(st, cipher, jwt)
	srvAPI, err := api.New(api.Options{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	(&api.WorkerRoutes{Auth: auth, Store: st, HeartbeatInterval: 20 * time.Second}).Register(srvAPI.Group())
	srv := httptest.NewServer(srvAPI)
	defer srv.Close()

	wk, key, err := workerauth.AddWorker(ctx, st, cipher, "edge-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, bearer, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := `{"address":"10.8.0.2","ip":"203.0.113.7","zone":"eu-1","capacity":{"cpu":4000,"memory":8589934592},"runtimes":["podman","exec","exec"],"version":"1.2.3"}`

	code, body := post("/v1/workers/register", key, good)
	if code != 200 {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg wsproto.RegisterResponse
	if err := json.Unmarshal([]byte(body), &reg); err != nil {
		t.Fatal(err)
	}
	if reg.Worker.ID != wk.ID || reg.Worker.Address != "10.8.0.2" || reg.Worker.Zone != "eu-1" ||
		strings.Join(reg.Worker.Runtimes, ",") != "exec,podman" || reg.Token == "" || reg.TokenExpiresAt.IsZero() ||
		reg.HeartbeatIntervalMS != 20000 {
		t.Fatalf("register response = %+v", reg)
	}
	if id, err := auth.Authenticate(ctx, reg.Token); err != nil || id.Worker.ID != wk.ID {
		t.Fatalf("issued token does not authenticate: %v", err)
	}
	if strings.Contains(body, key) || strings.Contains(body, secrets.HashAPIKey(key)) {
		t.Fatal("registration response echoes key material")
	}

	// The server secret, a JWT, a wrong key or nothing: 401 on both endpoints.
	for _, bearer := range []string{storetest.Secret, reg.Token, "whk_" + strings.Repeat("A", 43), ""} {
		for _, path := range []string{"/v1/workers/register", "/v1/workers/refresh-token"} {
			if code, body := post(path, bearer, good); code != 401 || !strings.Contains(body, `"unauthorized"`) {
				t.Errorf("%s with bearer %.12q…: %d %s, want 401", path, bearer, code, body)
			}
		}
	}

	code, body = post("/v1/workers/refresh-token", key, "")
	var tok wsproto.TokenResponse
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("refresh: %d %s", code, body)
	}

	// After rotation the old key is refused.
	if _, _, err := workerauth.RotateKey(ctx, st, cipher, wk.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := post("/v1/workers/refresh-token", key, ""); code != 401 {
		t.Fatalf("refresh with a rotated key: %d", code)
	}
}

func TestWorkerRegistrationValidation(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	cipher := storetest.Cipher(t)
	jwt, _ := secrets.NewJWTIssuer(storetest.Secret, nil)
	srvAPI, _ := api.New(api.Options{Logger: testutil.Logger(t)})
	(&api.WorkerRoutes{Auth: workerauth.New(st, cipher, jwt), Store: st}).Register(srvAPI.Group())
	srv := httptest.NewServer(srvAPI)
	defer srv.Close()
	_, key, err := workerauth.AddWorker(ctx, st, cipher, "edge-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	cap := `"capacity":{"cpu":1000,"memory":1073741824}`
	cases := []struct {
		name, body string
		want       string // in the error message
	}{
		{"missing address", `{` + cap + `}`, "address is required"},
		{"address with port", `{"address":"10.0.0.1:80",` + cap + `}`, "without scheme or port"},
		{"address with URL", `{"address":"http://x",` + cap + `}`, "without scheme or port"},
		{"uppercase address", `{"address":"Worker.Local",` + cap + `}`, "uppercase"},
		{"single-label address", `{"address":"worker1",` + cap + `}`, "single label"},
		{"address injecting a rule", `{"address":"a.com` + "`" + `) || Host(` + "`" + `b.com",` + cap + `}`, "quote or backtick"},
		{"loopback", `{"address":"127.0.0.1",` + cap + `}`, "allow_loopback_address = true"},
		{"loopback /8", `{"address":"127.1.2.3",` + cap + `}`, "loopback address"},
		{"IPv6 loopback", `{"address":"::1",` + cap + `}`, "loopback address"},
		{"IPv4-mapped loopback", `{"address":"::ffff:127.0.0.1",` + cap + `}`, "loopback address"},
		{"localhost", `{"address":"localhost",` + cap + `}`, "loopback address name"},
		{"localhost subdomain", `{"address":"proxy.localhost",` + cap + `}`, "loopback address name"},
		{"metadata endpoint", `{"address":"169.254.169.254",` + cap + `}`, "link-local"},
		{"IPv6 link-local", `{"address":"fe80::1",` + cap + `}`, "link-local"},
		{"IPv6 zone", `{"address":"fe80::1%eth0",` + cap + `}`, "zone"},
		{"unspecified", `{"address":"0.0.0.0",` + cap + `}`, "unspecified"},
		{"this network", `{"address":"0.1.2.3",` + cap + `}`, "unspecified"},
		{"IPv6 unspecified", `{"address":"::",` + cap + `}`, "unspecified"},
		{"multicast", `{"address":"224.0.0.1",` + cap + `}`, "multicast"},
		{"IPv6 multicast", `{"address":"ff02::1",` + cap + `}`, "multicast"},
		{"broadcast", `{"address":"255.255.255.255",` + cap + `}`, "broadcast"},
		{"bad ip", `{"address":"10.0.0.1","ip":"nope",` + cap + `}`, "not an IP address"},
		{"zero capacity", `{"address":"10.0.0.1","capacity":{"cpu":0,"memory":1}}`, "must be positive"},
		{"cpu above 1000 cores", `{"address":"10.0.0.1","capacity":{"cpu":1000001,"memory":1}}`, "at most 1000000"},
		{"memory above 1 PiB", `{"address":"10.0.0.1","capacity":{"cpu":1,"memory":1125899906842625}}`, "1 PiB"},
		{"bad runtime", `{"address":"10.0.0.1",` + cap + `,"runtimes":["docker"]}`, "not one of exec, podman"},
		{"bad zone", `{"address":"10.0.0.1",` + cap + `,"zone":"EU 1"}`, "zone"},
		{"zone with a dot", `{"address":"10.0.0.1",` + cap + `,"zone":"eu.1"}`, "not a valid DNS label"},
		{"other name", `{"name":"edge-2","address":"10.0.0.1",` + cap + `}`, "belongs to worker"},
		{"unknown field", `{"address":"10.0.0.1",` + cap + `,"secret":"x"}`, "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, b := postRegister(t, srv.URL, key, tc.body)
			if code != 400 || !strings.Contains(b, `"code"`) || !strings.Contains(b, tc.want) {
				t.Fatalf("%d %s; want 400 mentioning %q", code, b, tc.want)
			}
		})
	}

	// Private, CGNAT/WireGuard and ULA addresses, FQDNs and the capacity
	// bounds themselves are fine.
	for _, body := range []string{
		`{"address":"10.8.0.2",` + cap + `}`,
		`{"address":"192.168.1.20",` + cap + `}`,
		`{"address":"172.16.0.9",` + cap + `}`,
		`{"address":"100.64.0.7",` + cap + `}`,
		`{"address":"fd00::7",` + cap + `}`,
		`{"address":"worker-1.wg.internal",` + cap + `}`,
		`{"address":"10.0.0.1","capacity":{"cpu":1000000,"memory":1125899906842624}}`,
	} {
		if code, b := postRegister(t, srv.URL, key, body); code != 200 {
			t.Errorf("%s: %d %s; want 200", body, code, b)
		}
	}
}

// postRegister posts a registration with the worker key and returns the
// status and body.
func postRegister(t *testing.T, base, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/workers/register", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The operator's address and zone (`worker add -address/-zone`) win over
// what the worker reports; the worker fills in only what the operator left
// empty.
func TestWorkerRegistrationOperatorWins(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	cipher := storetest.Cipher(t)
	jwt, _ := secrets.NewJWTIssuer(storetest.Secret, nil)
	auth := workerauth.New(st, cipher, jwt)
	routes := &api.WorkerRoutes{Auth: auth, Store: st}
	srvAPI, _ := api.New(api.Options{Logger: testutil.Logger(t)})
	routes.Register(srvAPI.Group())
	srv := httptest.NewServer(srvAPI)
	defer srv.Close()

	const cap = `"capacity":{"cpu":1000,"memory":1073741824}`
	tests := []struct {
		name                  string
		opZone, opAddress     string
		body                  string
		wantZone, wantAddress string
		wantCode              int
		allowLoopback         bool
	}{
		{"operator sets both", "eu-1", "10.0.0.5", `{"address":"10.9.9.9","zone":"us-2",` + cap + `}`, "eu-1", "10.0.0.5", 200, false},
		{"operator's address beats a reported loopback", "", "10.0.0.5", `{"address":"127.0.0.1",` + cap + `}`, "default", "10.0.0.5", 200, false},
		{"operator leaves both to the worker", "", "", `{"address":"10.9.9.9","zone":"us-2",` + cap + `}`, "us-2", "10.9.9.9", 200, false},
		{"operator's default zone yields", "default", "10.0.0.5", `{"zone":"us-2",` + cap + `}`, "us-2", "10.0.0.5", 200, false},
		{"nobody sets a zone", "", "", `{"address":"10.9.9.9",` + cap + `}`, "default", "10.9.9.9", 200, false},
		{"operator's loopback refused by config", "", "127.0.0.1", `{` + cap + `}`, "", "", 400, false},
		{"operator's loopback allowed by config", "", "127.0.0.1", `{` + cap + `}`, "default", "127.0.0.1", 200, true},
		{"reported loopback allowed by config", "", "", `{"address":"::1",` + cap + `}`, "default", "::1", 200, true},
		{"link-local refused even when loopback is allowed", "", "", `{"address":"169.254.169.254",` + cap + `}`, "", "", 400, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes.AllowLoopbackAddress = tt.allowLoopback
			_, key, err := workerauth.AddWorker(ctx, st, cipher, fmt.Sprintf("w-%d", i), tt.opZone, tt.opAddress)
			if err != nil {
				t.Fatal(err)
			}
			code, body := postRegister(t, srv.URL, key, tt.body)
			if code != tt.wantCode {
				t.Fatalf("%d %s; want %d", code, body, tt.wantCode)
			}
			if code != 200 {
				return
			}
			var reg wsproto.RegisterResponse
			if err := json.Unmarshal([]byte(body), &reg); err != nil {
				t.Fatal(err)
			}
			if reg.Worker.Zone != tt.wantZone || reg.Worker.Address != tt.wantAddress {
				t.Errorf("zone %q, address %q; want %q, %q", reg.Worker.Zone, reg.Worker.Address, tt.wantZone, tt.wantAddress)
			}
		})
	}
}

// fakeAuth authenticates every key as its worker.
type fakeAuth struct{ worker *store.Worker }

func (f fakeAuth) AuthenticateKey(context.Context, string) (*workerauth.Identity, error) {
	w := *f.worker
	return &workerauth.Identity{Worker: &w, Method: workerauth.MethodAPIKey}, nil
}

func (f fakeAuth) IssueToken(*store.Worker) (string, time.Time, error) {
	return "token", time.Now().Add(time.Minute), nil
}

// fakeStore fails RegisterWorker with err, or echoes the registration.
type fakeStore struct {
	err error
	got store.Registration
}

func (f *fakeStore) RegisterWorker(_ context.Context, id int64, r store.Registration) (*store.Worker, error) {
	f.got = r
	if f.err != nil {
		return nil, f.err
	}
	return &store.Worker{ID: id, Name: "edge-1", Address: r.Address, Zone: r.Zone,
		CapacityCPU: r.CapacityCPU, CapacityMemory: r.CapacityMemory, Runtimes: r.Runtimes}, nil
}

// Store errors map to statuses: a capacity below the reservations is a 409
// saying what is reserved, an invalid registration a 400.
func TestWorkerRegistrationStoreErrors(t *testing.T) {
	worker := &store.Worker{ID: 7, Name: "edge-1", Zone: "default", UsedCPU: 3000, UsedMemory: 4 << 30}
	tests := []struct {
		name     string
		err      error
		wantCode int
		want     []string // in the body
	}{
		{"capacity below reserved", fmt.Errorf("store: register worker 7: %w", store.ErrCapacity), 409,
			[]string{`"capacity_below_reserved"`, "3000 millicores", "4GiB", "1000 millicores", "1GiB"}},
		{"invalid", fmt.Errorf("store: register worker: check violation: %w", store.ErrInvalid), 400,
			[]string{`"invalid_registration"`}},
		{"worker gone", fmt.Errorf("store: register worker: %w", store.ErrNotFound), 401, []string{`"unauthorized"`}},
		{"other", errors.New("connection reset"), 500, []string{`"internal"`}},
		{"ok", nil, 200, []string{`"token":"token"`, `"address":"10.0.0.1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeStore{err: tt.err}
			srvAPI, _ := api.New(api.Options{Logger: testutil.Logger(t)})
			(&api.WorkerRoutes{Auth: fakeAuth{worker}, Store: fs}).Register(srvAPI.Group())
			srv := httptest.NewServer(srvAPI)
			defer srv.Close()
			code, body := postRegister(t, srv.URL, "whk_x", `{"address":"10.0.0.1","capacity":{"cpu":1000,"memory":1073741824}}`)
			if code != tt.wantCode {
				t.Fatalf("%d %s; want %d", code, body, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s: %s", w, body)
				}
			}
			if strings.Contains(body, "check violation") || strings.Contains(body, "connection reset") {
				t.Errorf("the store's error leaks into the response: %s", body)
			}
		})
	}
}

func TestCheckWorkerAddress(t *testing.T) {
	tests := []struct {
		addr           string
		ok, okLoopback bool // accepted without / with loopback allowed
	}{
		{"10.0.0.1", true, true},
		{"fd12:3456::1", true, true},
		{"2001:db8::1", true, true},
		{"worker-1.example.internal", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"localhost", false, true},
		{"a.localhost", false, true},
		{"localhost.localdomain", false, true},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.251", false, false},
		{"255.255.255.255", false, false},
		{"", false, false},
		{"worker1", false, false},
		{"127.1", false, false},
		{"10.0.0.1:80", false, false},
		{"Worker.example.com", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := api.CheckWorkerAddress(tt.addr, false); (err == nil) != tt.ok {
				t.Errorf("CheckWorkerAddress(%q, false) = %v; want ok=%v", tt.addr, err, tt.ok)
			} else if err != nil && tt.okLoopback && !errors.Is(err, api.ErrLoopbackAddress) {
				t.Errorf("CheckWorkerAddress(%q, false) = %v; want ErrLoopbackAddress", tt.addr, err)
			}
			if err := api.CheckWorkerAddress(tt.addr, true); (err == nil) != tt.okLoopback {
				t.Errorf("CheckWorkerAddress(%q, true) = %v; want ok=%v", tt.addr, err, tt.okLoopback)
			}
		})
	}
}
