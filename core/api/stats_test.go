package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
)

type fakeFleet struct {
	st  store.WorkerStats
	err error
}

func (f *fakeFleet) FleetStats(context.Context) (*store.WorkerStats, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &f.st, nil
}

func TestStatsEndpoint(t *testing.T) {
	const secret = "stats-secret-0123456789abcdef"
	fleet := &fakeFleet{st: store.WorkerStats{Total: 3, Online: 2, Offline: 1, CapacityCPU: 8000, CapacityMemory: 16 << 30, UsedCPU: 500, UsedMemory: 1 << 30}}
	srvAPI, err := api.New(api.Options{Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	(&api.StatsRoutes{Secret: secret, Store: fleet, Connected: func() int { return 2 }}).Register(srvAPI.Group())
	srv := httptest.NewServer(srvAPI)
	defer srv.Close()
	get := func(bearer string) (int, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/stats", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, bearer := range []string{"", "wrong", secret + "x", "wh_worker_key"} {
		if code, body := get(bearer); code != 401 {
			t.Fatalf("bearer %q: %d %s", bearer, code, body)
		}
	}
	code, body := get(secret)
	if code != 200 {
		t.Fatalf("stats: %d %s", code, body)
	}
	var got map[string]int64
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"total_workers": 3, "online_workers": 2, "offline_workers": 1, "draining_workers": 0,
		"capacity_cpu": 8000, "capacity_memory": 16 << 30, "used_cpu": 500, "used_memory": 1 << 30, "connected_workers": 2}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %d, want %d (body %s)", k, got[k], v, body)
		}
	}
	fleet.err = errors.New("db down")
	if code, _ := get(secret); code != 500 {
		t.Fatalf("store failure: %d", code)
	}
	// No secret configured: nothing gets in.
	srvAPI2, _ := api.New(api.Options{Logger: testutil.Logger(t)})
	(&api.StatsRoutes{Store: fleet}).Register(srvAPI2.Group())
	srv2 := httptest.NewServer(srvAPI2)
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("without a secret: %d", resp.StatusCode)
	}
}
