package userapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
	"github.com/wisehosting/wisehosting/core/userapi"
)

func init() {
	fixtureBuilders = append(fixtureBuilders, func(e *env, f *fixture) {
		a := obsApp(e, f)
		// The apps fixture's app, when there is one, is :app; else this one.
		if _, ok := f.params["app"]; !ok {
			f.params["app"] = a.UUID
		}
		if err := e.st.UpsertUsageSamples(context.Background(), []store.UsageSample{{AppID: a.ID, UserID: e.ada.ID,
			BucketStart: time.Now().UTC().Truncate(5 * time.Minute).Add(-time.Hour), CPUAvg: 12.5, CPUMax: 13.5,
			MemAvg: 123456789, MemMax: 123456789, Samples: 3}}); err != nil {
			e.t.Fatal(err)
		}
	})
}

type usageReply struct {
	App    string             `json:"app"`
	From   time.Time          `json:"from"`
	To     time.Time          `json:"to"`
	Bucket string             `json:"bucket"`
	PerApp bool               `json:"per_app"`
	Points []store.UsagePoint `json:"points"`
}

func TestUsageRoutes(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC)
	clk := testutil.NewClock(now)
	e := newEnvWith(t, func(_ *env, o *userapi.Options) { o.Now = clk.Now })
	web := e.seedApp(e.ada, "web-frontend")
	api := e.seedApp(e.ada, "api-backend")
	evesApp := e.seedApp(e.eve, "eve-service")
	at := func(d time.Duration) time.Time { return now.Add(d) }
	sample := func(a *store.App, when time.Time, cpu, cpuMax float64, mem int64, delta int64, n int) store.UsageSample {
		return store.UsageSample{AppID: a.ID, UserID: a.UserID, BucketStart: when, CPUAvg: cpu, CPUMax: cpuMax,
			MemAvg: mem, MemMax: mem * 2, NetAvg: cpu / 10, NetMax: cpuMax / 10, NetBytesDelta: delta, Samples: n}
	}
	if err := e.st.UpsertUsageSamples(context.Background(), []store.UsageSample{
		sample(web, at(-60*time.Minute), 10, 20, 100, 1000, 2),
		sample(web, at(-55*time.Minute), 40, 50, 400, 3000, 2),
		sample(api, at(-55*time.Minute), 70, 95, 700, 5000, 1),
		sample(web, at(-70*time.Minute), 30, 35, 300, 10, 5),
		sample(web, at(-25*time.Hour), 99, 99, 999, 9, 1), // outside the default day
		sample(evesApp, at(-55*time.Minute), 50, 60, 500, 500, 1),
	}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) usageReply {
		t.Helper()
		var r usageReply
		e.must(e.ada, http.StatusOK, http.MethodGet, path, nil).JSON(t, &r)
		return r
	}

	// One app, hourly: 10:00 holds 10:50 alone, 11:00 holds 11:00 and 11:05.
	r := get("/api/v1/apps/web-frontend/usage?bucket=1h")
	if r.App != web.UUID || !r.From.Equal(at(-24*time.Hour)) || !r.To.Equal(now) || r.Bucket != "1h" || len(r.Points) != 2 {
		t.Fatalf("web hourly %+v", r)
	}
	if p := r.Points[1]; !p.BucketStart.Equal(at(-time.Hour)) || p.CPUAvg != 25 || p.CPUMax != 50 || p.MemAvg != 250 ||
		p.MemMax != 800 || p.NetAvg != 2.5 || p.NetMax != 5 || p.NetBytes != 4000 || p.Samples != 4 || p.AppID != 0 {
		t.Errorf("web 11:00 %+v", p)
	}
	if p := r.Points[0]; !p.BucketStart.Equal(at(-2*time.Hour)) || p.CPUAvg != 30 || p.Samples != 5 || p.NetBytes != 10 {
		t.Errorf("web 10:00 %+v", p)
	}
	// All the caller's apps, aggregated: 11:00 is (10·2 + 40·2 + 70·1)/5 = 34.
	r = get("/api/v1/usage?bucket=1h&from=" + url.QueryEscape(at(-2*time.Hour).Format(time.RFC3339)))
	if !r.From.Equal(at(-2*time.Hour)) || r.PerApp || len(r.Points) != 2 {
		t.Fatalf("all hourly %+v", r)
	}
	if p := r.Points[1]; p.CPUAvg != 34 || p.CPUMax != 95 || p.MemAvg != 340 || p.MemMax != 1400 || p.NetBytes != 9000 || p.Samples != 5 || p.AppUUID != "" {
		t.Errorf("all 11:00 %+v", p)
	}
	r = get("/api/v1/usage?bucket=15m&per_app=true&to=" + url.QueryEscape(at(-30*time.Minute).Format(time.RFC3339)))
	if !r.PerApp || len(r.Points) != 3 || r.Points[0].AppUUID != web.UUID || r.Points[0].CPUAvg != 30 ||
		r.Points[1].AppUUID != web.UUID || r.Points[1].CPUAvg != 25 || r.Points[1].Samples != 4 ||
		r.Points[2].AppUUID != api.UUID || r.Points[2].AppName != "api-backend" || r.Points[2].CPUAvg != 70 {
		t.Errorf("per app %+v", r)
	}
	// Native buckets by default over a day; a week takes 15 minutes, 90 days 6 hours.
	if r := get("/api/v1/apps/" + web.UUID + "/usage"); r.Bucket != "5m" || len(r.Points) != 3 || r.Points[0].CPUAvg != 30 {
		t.Errorf("default %+v", r)
	}
	week := url.QueryEscape(at(-7 * 24 * time.Hour).Format(time.RFC3339))
	if r := get("/api/v1/usage?from=" + week); r.Bucket != "15m" {
		t.Errorf("a week: bucket %s", r.Bucket)
	}
	ninety := url.QueryEscape(at(-90 * 24 * time.Hour).Format(time.RFC3339))
	if r := get("/api/v1/usage?from=" + ninety); r.Bucket != "6h" || len(r.Points) != 2 {
		t.Errorf("90 days: %+v", r)
	}
	if r := get("/api/v1/usage?bucket=1d&from=" + week); len(r.Points) != 2 || !r.Points[1].BucketStart.Equal(time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("daily %+v", r)
	}

	for _, tt := range []struct {
		q, msg string
	}{
		{"from=yesterday", "from must be an RFC 3339 time"},
		{"to=2025-03-02", "to must be an RFC 3339 time"},
		{"from=" + url.QueryEscape(now.Format(time.RFC3339)), "to must be after from"},
		{"from=" + url.QueryEscape(at(time.Hour).Format(time.RFC3339)), "to must be after from"},
		{"from=" + url.QueryEscape(at(-90*24*time.Hour-time.Second).Format(time.RFC3339)), "at most 90 days"},
		{"bucket=30m", "bucket must be one of 5m, 15m, 1h, 6h, 1d"},
		{"per_app=maybe", "per_app"},
	} {
		for _, p := range []string{"/api/v1/usage?", "/api/v1/apps/web-frontend/usage?"} {
			if p != "/api/v1/usage?" && strings.HasPrefix(tt.q, "per_app") {
				continue
			}
			if r := e.do(e.ada, http.MethodGet, p+tt.q, nil); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tt.msg) {
				t.Errorf("GET %s%s: %d\n%s", p, tt.q, r.Status, r.Body)
			}
		}
	}
	for _, p := range []string{"/api/v1/apps/no-such-app/usage", "/api/v1/apps/eve-service/usage", "/api/v1/apps/" + evesApp.UUID + "/usage"} {
		if r := e.do(e.ada, http.MethodGet, p, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, r.Status)
		}
	}
}
