package httpplans

import (
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/outbound/outboundtest"
	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/plugintest"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

func TestInfo(t *testing.T) { plugintest.CheckInfo(t, New(), sdk.KindPlans, Name, Version) }

// withRefresh is want with refresh_after_ms set as Plans sets it.
func withRefresh(want *pluginv1.PlansResponse, refresh time.Duration) *pluginv1.PlansResponse {
	c := proto.Clone(want).(*pluginv1.PlansResponse)
	c.RefreshAfterMs = (refresh / 2).Milliseconds()
	return c
}

func TestPlans(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *pluginv1.PlansResponse
	}{
		{name: "the seed's table", doc: seedJSON, want: plans.Default()},
		{
			name: "default_plan omitted means free; listed in any order",
			doc: `{"plans": [
				{"id": "pro", "name": "Pro", "max_apps": 5, "cpu": 2, "memory": "2GiB", "disk": "10GiB", "bandwidth": "100mbit"},
				{"id": "business", "name": "Business", "max_apps": 0, "cpu": 4, "memory": "8GiB", "disk": "50GiB", "bandwidth": null},
				{"id": "free", "name": "Free", "max_apps": 1, "cpu": 1, "memory": "512MiB", "disk": "1GiB", "bandwidth": "10mbit"}]}`,
			want: plans.Default(),
		},
		{
			name: "fractional cpu, sizes as numbers, defaults for name and bandwidth, smallest first",
			doc: `{"default_plan": "tiny", "plans": [
				{"id": "big",  "max_apps": 0, "cpu": 8,    "memory": "16GiB",  "disk": "100GiB", "bandwidth": "1gbit"},
				{"id": "tiny", "max_apps": 1, "cpu": 0.25, "memory": 268435456, "disk": "500MB"},
				{"id": "mid",  "max_apps": 3, "cpu": 1.5,  "memory": "1.5GiB", "disk": 2147483648, "bandwidth": "unlimited"},
				{"id": "mid2", "max_apps": 3, "cpu": 1.5,  "memory": "1.5GiB", "disk": "1GiB", "bandwidth": 0, "name": null}
			]}`,
			want: &pluginv1.PlansResponse{DefaultPlan: "tiny", Plans: []*pluginv1.Plan{
				{Id: "tiny", Name: "tiny", MaxApps: 1, Cpu: 250, Memory: 256 * mib, Disk: 500_000_000},
				{Id: "mid2", Name: "mid2", MaxApps: 3, Cpu: 1500, Memory: 1536 * mib, Disk: gib},
				{Id: "mid", Name: "mid", MaxApps: 3, Cpu: 1500, Memory: 1536 * mib, Disk: 2 * gib},
				{Id: "big", Name: "big", MaxApps: 0, Cpu: 8000, Memory: 16 * gib, Disk: 100 * gib, Bandwidth: 1_000_000_000},
			}},
		},
		{
			name: "ids with digits, underscores and dashes; unicode names; exponents; a BOM",
			doc: "\ufeff" + ` {"plans": [{"id": "free", "max_apps": 1e0, "cpu": 0.001, "memory": "1B", "disk": 1},
				{"id": "0_team-x", "name": "Team X ✓", "max_apps": 2, "cpu": 3, "memory": "3GiB", "disk": "3GiB"}]}` + "\n\n",
			want: &pluginv1.PlansResponse{DefaultPlan: "free", Plans: []*pluginv1.Plan{
				{Id: "free", Name: "free", MaxApps: 1, Cpu: 1, Memory: 1, Disk: 1},
				{Id: "0_team-x", Name: "Team X ✓", MaxApps: 2, Cpu: 3000, Memory: 3 * gib, Disk: 3 * gib},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.doc)
			p, _ := newPlugin(t)
			mustConfigure(t, p, urlConfig(srv.url("/plans.json")))
			got, err := plansNow(p)
			if err != nil {
				t.Fatal(err)
			}
			if want := withRefresh(tt.want, DefaultRefresh); !proto.Equal(got, want) {
				t.Errorf("plans =\n%v\nwant\n%v", got, want)
			}
			if err := p.Health(context.Background()); err != nil {
				t.Errorf("Health: %v", err)
			}
			// Later calls answer from the cache.
			if _, err := plansNow(p); err != nil || srv.count() != 1 {
				t.Errorf("second Plans: %v, %d requests", err, srv.count())
			}
		})
	}
}

func TestInvalidDocument(t *testing.T) {
	const ok = `"max_apps": 1, "cpu": 1, "memory": "1GiB", "disk": "1GiB"`
	big := `{"plans": [{"id": "free", "name": "` + strings.Repeat("x", 2000) + `", ` + ok + `}]}`
	tests := []struct {
		name    string
		doc     string
		h       http.HandlerFunc // instead of doc
		extra   []string         // config lines
		want    []string         // substrings of the error
		wantNot []string
	}{
		// Not JSON.
		{name: "empty", doc: ``, want: []string{"not valid JSON: the document is empty"}},
		{name: "syntax error", doc: "{\"plans\": [\n  {\"id\": x}]}", want: []string{"not valid JSON: invalid character 'x' looking for beginning of value at line 2, column 10"}},
		{name: "truncated", doc: `{"plans": [`, want: []string{"the document ends too early"}},
		{name: "trailing data", doc: `{"plans": []} {}`, want: []string{"unexpected data after the document at line 1, column 15"}},
		{name: "html", doc: `<html>oops</html>`, want: []string{"not valid JSON: invalid character '<'"}},
		// Shape.
		{name: "not an object", doc: `[1]`, want: []string{`the document must be a JSON object {"default_plan": "…", "plans": […]}, not an array`}},
		{name: "unknown field", doc: `{"plan": {}}`, want: []string{`the document: unknown field "plan" (the fields are default_plan, plans)`}},
		{name: "field twice", doc: `{"plans": [{"id": "free", ` + ok + `}], "plans": [{"id": "free", ` + ok + `}]}`, want: []string{`the document: field "plans" appears twice`}},
		{name: "no plans field", doc: `{"default_plan": "free"}`, want: []string{"plans is missing or empty"}},
		{name: "null plans", doc: `{"plans": null}`, want: []string{"plans is missing or empty"}},
		{name: "empty plans: no default catalogue from a server", doc: `{"plans": []}`, want: []string{"plans is missing or empty"}},
		{name: "plans not an array", doc: `{"plans": {"free": {}}}`, want: []string{"plans must be an array of plan objects, not an object"}},
		{name: "default_plan not a string", doc: `{"default_plan": 1, "plans": [{"id": "free", ` + ok + `}]}`, want: []string{"default_plan must be a string, not a number"}},
		{name: "plan not an object", doc: `{"plans": ["free"]}`, want: []string{"plans[0] must be an object, not a string"}},
		{name: "plan without id", doc: `{"plans": [{` + ok + `}]}`, want: []string{"plans[0]: id is required"}},
		{name: "id not a string", doc: `{"plans": [{"id": 7, ` + ok + `}]}`, want: []string{"plans[0]: id must be a string, not a number"}},
		{name: "unknown plan field", doc: `{"plans": [{"id": "free", "gpu": 1, ` + ok + `}]}`, want: []string{`plan "free": unknown field "gpu"`}},
		{name: "plan field twice", doc: `{"plans": [{"id": "free", "cpu": 2, ` + ok + `}]}`, want: []string{`plan "free": field "cpu" appears twice`}},
		{name: "duplicate id", doc: `{"plans": [{"id": "free", ` + ok + `}, {"id": "pro", ` + ok + `}, {"id": "free", ` + ok + `}]}`, want: []string{`plan "free" appears twice (plans[0] and plans[2])`}},
		{name: "missing required", doc: `{"plans": [{"id": "free", "name": "Free"}]}`,
			want: []string{`plan "free": max_apps is required`, `plan "free": cpu is required`, `plan "free": memory is required`, `plan "free": disk is required`}},
		{name: "null required", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": null, "disk": "1GiB"}]}`, want: []string{`plan "free": memory is required`}},
		{name: "cpu as a string", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": "1", "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`plan "free": cpu must be a number, not a string`}},
		{name: "max_apps as a bool", doc: `{"plans": [{"id": "free", "max_apps": true, "cpu": 1, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`plan "free": max_apps must be a number, not a boolean`}},
		{name: "memory as an object", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": {}, "disk": "1GiB"}]}`, want: []string{`plan "free": memory must be a string such as "512MiB" or a number, not an object`}},
		{name: "name as a number", doc: `{"plans": [{"id": "free", "name": 5, ` + ok + `}]}`, want: []string{`plan "free": name must be a string, not a number`}},
		{name: "huge number", doc: `{"plans": [{"id": "free", "max_apps": 1e400, "cpu": 1, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`plan "free": max_apps 1e400 is out of range`}},
		// The static plugin's rules, with its messages.
		{name: "bad id: uppercase", doc: `{"plans": [{"id": "Free", ` + ok + `}]}`, want: []string{`plan "Free": the id must be`}},
		{name: "bad id: leading dash", doc: `{"plans": [{"id": "-x", ` + ok + `}]}`, want: []string{`plan "-x": the id must be`}},
		{name: "bad id: too long", doc: `{"plans": [{"id": "` + strings.Repeat("a", 65) + `", ` + ok + `}]}`, want: []string{"the id must be 1 to 64"}},
		{name: "bad id: empty", doc: `{"plans": [{"id": "", ` + ok + `}]}`, want: []string{`plan "": the id must be`}},
		{name: "default plan missing", doc: `{"plans": [{"id": "basic", ` + ok + `}]}`, want: []string{`default_plan "free" is not one of the declared plans (basic)`}},
		{name: "bad memory unit", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": "2GB2", "disk": "1GiB"}]}`, want: []string{`plan "free": memory: invalid size "2GB2"`}},
		{name: "bad disk unit", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": "1GiB", "disk": "10 gigs"}]}`, want: []string{`plan "free": disk: invalid size "10 gigs": unknown unit "gigs"`}},
		{name: "bad bandwidth", doc: `{"plans": [{"id": "free", "bandwidth": "10MB/s", ` + ok + `}]}`, want: []string{`plan "free": bandwidth: invalid bandwidth "10MB/s"`}},
		{name: "zero memory", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": 0, "disk": "1GiB"}]}`, want: []string{`plan "free": memory: must be above 0`}},
		{name: "zero disk", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": "1GiB", "disk": "0GiB"}]}`, want: []string{`plan "free": disk: must be above 0`}},
		{name: "negative memory", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": "-1GiB", "disk": "1GiB"}]}`, want: []string{`memory: invalid size "-1GiB": negative`}},
		{name: "fractional bytes", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1, "memory": 1.5, "disk": "1GiB"}]}`, want: []string{`plan "free": memory: invalid size "1.5"`}},
		{name: "zero cpu", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 0, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`plan "free": cpu: must be above 0`}},
		{name: "negative cpu", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": -2, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`cpu: must be above 0`}},
		{name: "too much cpu", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 1000001, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`cpu: must be above 0 and at most 1000000 cores`}},
		{name: "sub-millicore cpu", doc: `{"plans": [{"id": "free", "max_apps": 1, "cpu": 0.0005, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`cpu: 0.0005 cores is not a whole number of millicores`}},
		{name: "fractional max_apps", doc: `{"plans": [{"id": "free", "max_apps": 1.5, "cpu": 1, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`max_apps: must be a whole number`}},
		{name: "negative max_apps", doc: `{"plans": [{"id": "free", "max_apps": -1, "cpu": 1, "memory": "1GiB", "disk": "1GiB"}]}`, want: []string{`max_apps: must be between 0`}},
		{name: "control character in name", doc: `{"plans": [{"id": "free", "name": "a\nb", ` + ok + `}]}`, want: []string{`plan "free": name: control characters`}},
		{name: "name too long", doc: `{"plans": [{"id": "free", "name": "` + strings.Repeat("é", 65) + `", ` + ok + `}]}`, want: []string{`plan "free": name: at most 64 characters`}},
		{name: "every problem is reported", doc: `{"plans": [
			{"id": "free", "max_apps": 1, "cpu": 0, "memory": "x", "disk": "1GiB"},
			{"id": "pro",  "max_apps": 1, "cpu": 1, "memory": "1GiB", "disk": "1TB2"}]}`,
			want: []string{`plan "free": cpu`, `plan "free": memory`, `plan "pro": disk`}},
		// The answer.
		{name: "too large, with a Content-Length", extra: []string{`max_size = "1KiB"`},
			h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				fmt.Fprint(w, big)
			},
			want: []string{fmt.Sprintf("the document is %dB, larger than max_size (1KiB)", len(big))}},
		{name: "too large, chunked", extra: []string{`max_size = "1KiB"`},
			h: func(w http.ResponseWriter, r *http.Request) {
				for range 3 {
					fmt.Fprint(w, strings.Repeat(" ", 512))
					w.(http.Flusher).Flush()
				}
			},
			want: []string{"the document is larger than max_size (1KiB)"}},
		{name: "not found", h: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			want: []string{"answered 404 Not Found: 404 page not found"}},
		{name: "server error, quoted on one line and cut", h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "database\n\tdown\x00"+strings.Repeat("z", 500))
		}, want: []string{"answered 500 Internal Server Error: database down " + strings.Repeat("z", maxQuote-len("database down ")) + "…"},
			wantNot: []string{strings.Repeat("z", maxQuote-len("database down ")+1)}},
		{name: "no content", h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			want: []string{"the document is not a valid plan catalogue: not valid JSON: the document is empty"}},
		{name: "redirect not followed", h: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/moved" {
				fmt.Fprint(w, seedJSON)
				return
			}
			http.Redirect(w, r, "/moved", http.StatusFound)
		}, want: []string{"answered 302 Found: redirects are not followed"}},
		{name: "304 to an unconditional request", h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) },
			want: []string{"answered 304 Not Modified to a request that asked for no condition"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.doc)
			if tt.h != nil {
				srv.set(tt.h)
			}
			p, _ := newPlugin(t)
			mustConfigure(t, p, urlConfig(srv.url("/plans.json?token=query-secret"), tt.extra...))
			got, err := plansNow(p)
			if err == nil {
				t.Fatalf("accepted: %v", got)
			}
			msg := err.Error()
			if want := "fetching the plan catalogue from " + srv.url("/plans.json") + ": "; !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start with %q", msg, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, w := range append(tt.wantNot, "query-secret") {
				if strings.Contains(msg, w) {
					t.Errorf("error %q contains %q", msg, w)
				}
			}
			if h := p.Health(context.Background()); h == nil || !strings.Contains(h.Error(), "no plan catalogue yet") {
				t.Errorf("Health = %v", h)
			}
			if srv.count() != 1 {
				t.Errorf("%d requests, want 1", srv.count())
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{name: "no answer", h: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}},
		{name: "the body stalls", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			fmt.Fprint(w, `{"plans": [`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, "")
			srv.set(tt.h)
			p, _ := newPlugin(t)
			mustConfigure(t, p, urlConfig(srv.url("/"), `timeout = "200ms"`))
			start := time.Now()
			_, err := plansNow(p)
			if err == nil || !strings.Contains(err.Error(), "no complete answer within the timeout (200ms)") {
				t.Fatalf("err = %v", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// A caller's deadline shorter than timeout ends the fetch too (the core
// bounds each Plans call).
func TestCallerDeadline(t *testing.T) {
	srv := newServer(t, "")
	srv.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Plans(ctx)
	if err == nil || !strings.Contains(err.Error(), "stopped before a complete answer: context deadline exceeded") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	addr := outboundtest.ClosedAddr(t)
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig("http://"+addr+"/plans.json"))
	_, err := plansNow(p)
	if err == nil || !strings.Contains(err.Error(), "connection refused") ||
		!strings.HasPrefix(err.Error(), "fetching the plan catalogue from http://"+addr+"/plans.json: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestNotConfigured(t *testing.T) {
	p, _ := newPlugin(t)
	if _, err := plansNow(p); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Plans before Configure: %v", err)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("Health before Configure: %v", err)
	}
}

// Configure checks the config only: no request, healthy.
func TestConfigureDoesNotFetch(t *testing.T) {
	srv := newServer(t, seedJSON)
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	time.Sleep(50 * time.Millisecond)
	if n := srv.count(); n != 0 {
		t.Errorf("%d requests after Configure", n)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}
}

// The refresh goroutine keeps the last good catalogue across failing
// refetches of every kind, retries sooner, and takes the next good one.
func TestLastGoodKept(t *testing.T) {
	srv := newServer(t, oneJSON("free", 1))
	p, logs := newPlugin(t)
	clk := manualClock(p)
	mustConfigure(t, p, urlConfig(srv.url("/"), `refresh = "5m"`, `timeout = "300ms"`, `max_size = "1KiB"`))
	first, err := plansNow(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := withRefresh(oneWant("free", 1), 5*time.Minute); !proto.Equal(first, want) {
		t.Fatalf("first catalogue %v", first)
	}

	failures := []struct {
		name string
		set  func()
		want string
	}{
		{"server error", func() { srv.status(http.StatusServiceUnavailable, "maintenance") }, "answered 503 Service Unavailable: maintenance"},
		{"bad JSON", func() { srv.serve(`{"plans": [`) }, "not valid JSON"},
		{"invalid catalogue", func() { srv.serve(oneJSON("Free", 1)) }, `the id must be 1 to 64 characters`},
		{"empty catalogue", func() { srv.serve(`{"plans": []}`) }, "plans is missing or empty"},
		{"too large", func() { srv.serve(strings.Repeat(" ", 2000) + oneJSON("free", 2)) }, "larger than max_size (1KiB)"},
		{"timeout", func() { srv.set(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }) }, "no complete answer within the timeout (300ms)"},
	}
	for i, f := range failures {
		f.set()
		clk.tick(t)
		got, err := plansNow(p)
		if err != nil || !proto.Equal(got, first) {
			t.Fatalf("after a failing refetch (%s): %v, %v", f.name, got, err)
		}
		h := p.Health(context.Background())
		if h == nil || !strings.Contains(h.Error(), f.want) || !strings.Contains(h.Error(), "serving the catalogue fetched") ||
			!strings.Contains(h.Error(), fmt.Sprintf("the last %d fetch(es) failed", i+1)) {
			t.Errorf("Health after %s = %v", f.name, h)
		}
		if !strings.Contains(logs.String(), f.want) {
			t.Errorf("the log does not show %q:\n%s", f.want, logs)
		}
	}
	if n := strings.Count(logs.String(), "keeping the last good catalogue"); n != len(failures) {
		t.Errorf("%d warnings, want %d:\n%s", n, len(failures), logs)
	}
	if !strings.Contains(logs.String(), `"@level":"warn"`) {
		t.Errorf("no warning logged:\n%s", logs)
	}

	srv.serve(oneJSON("free", 7))
	clk.tick(t)
	got, err := plansNow(p)
	if want := withRefresh(oneWant("free", 7), 5*time.Minute); err != nil || !proto.Equal(got, want) {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
	if h := p.Health(context.Background()); h != nil {
		t.Errorf("Health after recovery: %v", h)
	}
	if !strings.Contains(logs.String(), "plan catalogue refresh works again") {
		t.Errorf("no recovery logged:\n%s", logs)
	}

	// Every wait: refresh, then RetryAfter after each failure, then refresh.
	want := []time.Duration{5 * time.Minute}
	for range failures {
		want = append(want, RetryAfter)
	}
	want = append(want, 5*time.Minute)
	if got := clk.waited(); !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
}

// The refresh goroutine works without any Plans call, and a failing first
// fetch is logged as such.
func TestRefreshWithoutPlans(t *testing.T) {
	srv := newServer(t, "")
	srv.status(http.StatusBadGateway, "")
	p, logs := newPlugin(t)
	clk := manualClock(p)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	clk.tick(t)
	if !strings.Contains(logs.String(), "plan catalogue fetch failed; there is no catalogue yet") {
		t.Errorf("log:\n%s", logs)
	}
	if h := p.Health(context.Background()); h == nil || !strings.Contains(h.Error(), "no plan catalogue yet") {
		t.Errorf("Health = %v", h)
	}
	srv.serve(seedJSON)
	clk.tick(t)
	n := srv.count()
	got, err := plansNow(p)
	if err != nil || !proto.Equal(got, withRefresh(plans.Default(), DefaultRefresh)) || srv.count() != n {
		t.Errorf("Plans after the goroutine fetched: %v, %v (%d requests, then %d)", got, err, n, srv.count())
	}
}

func TestConditionalRefetch(t *testing.T) {
	srv := newServer(t, "")
	var mu sync.Mutex
	etag, modified, doc := `"v1"`, "Mon, 02 Mar 2026 10:00:00 GMT", oneJSON("free", 1)
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		e, m, d := etag, modified, doc
		mu.Unlock()
		w.Header().Set("ETag", e)
		w.Header().Set("Last-Modified", m)
		if r.Header.Get("If-None-Match") == e {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, d)
	})
	change := func(e, d string) {
		mu.Lock()
		etag, doc = e, d
		mu.Unlock()
	}
	p, logs := newPlugin(t)
	clk := manualClock(p)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	first, err := plansNow(p)
	if err != nil {
		t.Fatal(err)
	}
	if h := srv.last(t); h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" {
		t.Errorf("the first request is conditional: %v", h)
	}

	// 304: kept.
	clk.tick(t)
	h := srv.last(t)
	if h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != modified {
		t.Errorf("refetch headers %v", h)
	}
	if got, err := plansNow(p); err != nil || !proto.Equal(got, first) {
		t.Errorf("after 304: %v, %v", got, err)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("Health after 304: %v", err)
	}
	if !strings.Contains(logs.String(), "plan catalogue not modified") {
		t.Errorf("log:\n%s", logs)
	}

	// Changed: fetched in full.
	change(`"v2"`, oneJSON("free", 2))
	clk.tick(t)
	if got, _ := plansNow(p); got.GetPlans()[0].GetMaxApps() != 2 {
		t.Errorf("after a change: %v", got)
	}

	// An invalid document's validators are not kept: the next refetch asks
	// for v2's successor, not v3's.
	change(`"v3"`, oneJSON("Bad", 3))
	clk.tick(t)
	if got, _ := plansNow(p); got.GetPlans()[0].GetMaxApps() != 2 {
		t.Errorf("after an invalid document: %v", got)
	}
	change(`"v3"`, oneJSON("free", 3)) // fixed, same ETag
	clk.tick(t)
	if h := srv.last(t); h.Get("If-None-Match") != `"v2"` {
		t.Errorf("If-None-Match after a refused document = %q, want v2's", h.Get("If-None-Match"))
	}
	if got, _ := plansNow(p); got.GetPlans()[0].GetMaxApps() != 3 {
		t.Errorf("after the fix: %v", got)
	}
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("Health after the fix: %v", err)
	}
}

func TestHeaders(t *testing.T) {
	const (
		token = "Bearer s3cr3t-t0ken-value"
		key   = "k3y-0123456789"
	)
	srv := newServer(t, seedJSON)
	p, logs := newPlugin(t)
	clk := manualClock(p)
	mustConfigure(t, p, urlConfig(srv.url("/plans.json"),
		fmt.Sprintf("headers = { Authorization = %q, \"x-api-key\" = %q, Accept = \"application/vnd.plans+json\" }", token, key)))
	if _, err := plansNow(p); err != nil {
		t.Fatal(err)
	}
	h := srv.last(t)
	for name, want := range map[string]string{
		"Authorization": token, "X-Api-Key": key, "Accept": "application/vnd.plans+json", "User-Agent": UserAgent,
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	// An answer echoing the credentials: masked in the error, the health
	// message and the log.
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials %s / %s", r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	})
	clk.tick(t)
	herr := p.Health(context.Background())
	if herr == nil || !strings.Contains(herr.Error(), "answered 401 Unauthorized: bad credentials [redacted] / [redacted]") {
		t.Errorf("Health = %v", herr)
	}
	// And a fresh plugin's first fetch returns the masked error.
	q, qlogs := newPlugin(t)
	mustConfigure(t, q, urlConfig(srv.url("/"), fmt.Sprintf("headers = { Authorization = %q }", token)))
	_, err := plansNow(q)
	if err == nil || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("err = %v", err)
	}
	for _, s := range []string{logs.String(), qlogs.String(), herr.Error(), err.Error()} {
		for _, secret := range []string{"s3cr3t-t0ken-value", key} {
			if strings.Contains(s, secret) {
				t.Errorf("a header value shows in %q", s)
			}
		}
	}
	if !strings.Contains(logs.String(), "[redacted]") {
		t.Errorf("the failure was not logged:\n%s", logs)
	}
}

// TestHeaderCutInQuote: an answer echoing a header value across the
// quote's limit shows no part of it: it is masked before it is cut.
func TestHeaderCutInQuote(t *testing.T) {
	const token = "Bearer s3cr3t-t0ken-value"
	srv := newServer(t, seedJSON)
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, strings.Repeat("x", maxQuote-5)+r.Header.Get("Authorization"))
	})
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/"), fmt.Sprintf("headers = { Authorization = %q }", token)))
	_, err := plansNow(p)
	if err == nil || !strings.Contains(err.Error(), "answered 403 Forbidden: "+strings.Repeat("x", maxQuote-5)+"[reda…") {
		t.Fatalf("err = %v", err)
	}
	for _, part := range []string{"Bear", "s3cr3t"} {
		if strings.Contains(err.Error(), part) {
			t.Fatalf("the error shows %q: %v", part, err)
		}
	}
}

func TestDefaultRequestHeaders(t *testing.T) {
	srv := newServer(t, seedJSON)
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	if _, err := plansNow(p); err != nil {
		t.Fatal(err)
	}
	h := srv.last(t)
	if h.Get("Accept") != "application/json" || h.Get("User-Agent") != UserAgent || h.Get("Authorization") != "" {
		t.Errorf("headers %v", h)
	}
}

// A gzip answer is decompressed; max_size applies to the document.
func TestCompressed(t *testing.T) {
	srv := newServer(t, "")
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			fmt.Fprint(w, seedJSON)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		fmt.Fprint(zw, seedJSON+strings.Repeat(" ", 4000))
		zw.Close()
	})
	for _, tt := range []struct {
		maxSize string
		ok      bool
	}{{"1MiB", true}, {"2KiB", false}} {
		p, _ := newPlugin(t)
		mustConfigure(t, p, urlConfig(srv.url("/"), fmt.Sprintf("max_size = %q", tt.maxSize)))
		got, err := plansNow(p)
		if tt.ok && (err != nil || !proto.Equal(got, withRefresh(plans.Default(), DefaultRefresh))) {
			t.Errorf("max_size %s: %v, %v", tt.maxSize, got, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "larger than max_size (2KiB)")) {
			t.Errorf("max_size %s: %v", tt.maxSize, err)
		}
	}
}

// Concurrent first Plans calls share one fetch.
func TestConcurrentFirstPlans(t *testing.T) {
	srv := newServer(t, "")
	release := make(chan struct{})
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, seedJSON)
	})
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := plansNow(p)
			if err == nil && len(got.GetPlans()) != 3 {
				err = fmt.Errorf("%d plans", len(got.GetPlans()))
			}
			errs <- err
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// Plans hands out copies: a caller changing one does not change the next.
func TestPlansReturnsACopy(t *testing.T) {
	srv := newServer(t, seedJSON)
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(srv.url("/")))
	a, err := plansNow(p)
	if err != nil {
		t.Fatal(err)
	}
	a.GetPlans()[0].Cpu = 1
	a.DefaultPlan = "x"
	b, _ := plansNow(p)
	if !proto.Equal(b, withRefresh(plans.Default(), DefaultRefresh)) {
		t.Errorf("catalogue changed through a returned copy: %v", b)
	}
}

// A new configuration starts afresh from its own URL and stops the
// previous configuration's refresh goroutine; a rejected one changes
// nothing.
func TestReconfigure(t *testing.T) {
	a := newServer(t, oneJSON("free", 1))
	b := newServer(t, oneJSON("free", 2))
	p, _ := newPlugin(t)
	mustConfigure(t, p, urlConfig(a.url("/")))
	if got, err := plansNow(p); err != nil || got.GetPlans()[0].GetMaxApps() != 1 {
		t.Fatalf("from a: %v, %v", got, err)
	}
	old := p.gen.Load()

	if err := configure(t, p, urlConfig(b.url("/"), `refresh = "1s"`)); err == nil {
		t.Fatal("refresh = 1s accepted")
	}
	if got, err := plansNow(p); err != nil || got.GetPlans()[0].GetMaxApps() != 1 || p.gen.Load() != old {
		t.Fatalf("after a rejected config: %v, %v", got, err)
	}

	mustConfigure(t, p, urlConfig(b.url("/"), `refresh = "1h"`))
	got, err := plansNow(p)
	if err != nil || got.GetPlans()[0].GetMaxApps() != 2 || got.GetRefreshAfterMs() != (30*time.Minute).Milliseconds() {
		t.Fatalf("from b: %v, %v", got, err)
	}
	select {
	case <-old.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Error("the previous configuration's refresh goroutine was not stopped")
	}
	if a.count() != 1 || b.count() != 1 {
		t.Errorf("requests: a %d, b %d", a.count(), b.count())
	}
}

func TestConfig(t *testing.T) {
	const u = `url = "https://plans.example.com/plans.json"`
	tests := []struct {
		name    string
		hcl     string
		wantErr string // "" = accepted
		check   func(t *testing.T, s *settings)
	}{
		{name: "defaults", hcl: u, check: func(t *testing.T, s *settings) {
			if s.refresh != DefaultRefresh || s.timeout != DefaultTimeout || s.maxSize != DefaultMaxSize || len(s.headers) != 0 {
				t.Errorf("settings %+v", s)
			}
		}},
		{name: "everything", hcl: "url = \"http://10.0.0.5:8080/p?token=abc\"\nrefresh = \"1d\"\ntimeout = \"2m30s\"\nmax_size = \"64MiB\"\nheaders = { authorization = \"Bearer x\", \"X-Tenant\" = \"a\" }",
			check: func(t *testing.T, s *settings) {
				if s.refresh != 24*time.Hour || s.timeout != 150*time.Second || s.maxSize != 64*mib ||
					s.headers.Get("Authorization") != "Bearer x" || s.headers.Get("X-Tenant") != "a" ||
					s.url != "http://10.0.0.5:8080/p?token=abc" || s.logURL != "http://10.0.0.5:8080/p" {
					t.Errorf("settings %+v", s)
				}
			}},
		{name: "bounds", hcl: u + "\nrefresh = \"10s\"\ntimeout = \"100ms\"\nmax_size = 1024"},
		{name: "ipv6", hcl: `url = "http://[::1]:8080/plans"`},
		{name: "no url", hcl: ``, wantErr: `"url" is required`},
		{name: "empty url", hcl: `url = ""`, wantErr: "url is required"},
		{name: "ftp", hcl: `url = "ftp://plans.example.com/x"`, wantErr: `url: the scheme must be http or https, not "ftp"`},
		{name: "relative", hcl: `url = "/plans.json"`, wantErr: `the scheme must be http or https, not ""`},
		{name: "no host", hcl: `url = "https:///plans.json"`, wantErr: "url must be absolute"},
		{name: "opaque", hcl: `url = "https:plans.json"`, wantErr: "url must be absolute"},
		{name: "user info", hcl: `url = "https://admin:hunter2@plans.example.com/"`, wantErr: "url must not hold a user name or password"},
		{name: "fragment", hcl: `url = "https://plans.example.com/#x"`, wantErr: "url must not have a #fragment"},
		{name: "spaces", hcl: `url = " https://plans.example.com/"`, wantErr: "url has leading or trailing white space"},
		{name: "bad port", hcl: `url = "https://plans.example.com:99999/"`, wantErr: `url: port "99999" is not between 1 and 65535`},
		{name: "empty port", hcl: `url = "https://plans.example.com:/"`, wantErr: "url: empty port"},
		{name: "unparsable", hcl: `url = "https://plans example.com/"`, wantErr: "url is not a valid URL"},
		{name: "refresh too short", hcl: u + "\nrefresh = \"9s\"", wantErr: `refresh = "9s": must be between 10s and 1d`},
		{name: "refresh too long", hcl: u + "\nrefresh = \"25h\"", wantErr: `refresh = "25h": must be between 10s and 1d`},
		{name: "refresh not a duration", hcl: u + "\nrefresh = \"often\"", wantErr: `refresh: invalid duration "often"`},
		{name: "timeout too short", hcl: u + "\ntimeout = \"50ms\"", wantErr: `timeout = "50ms": must be between 100ms and 5m`},
		{name: "timeout too long", hcl: u + "\ntimeout = \"6m\"", wantErr: `timeout = "6m": must be between 100ms and 5m`},
		{name: "timeout not a duration", hcl: u + "\ntimeout = 10", wantErr: `timeout: invalid duration "10"`},
		{name: "max_size too small", hcl: u + "\nmax_size = \"512B\"", wantErr: `max_size = "512B": must be between 1KiB and 64MiB`},
		{name: "max_size too large", hcl: u + "\nmax_size = \"1GiB\"", wantErr: `max_size = "1GiB": must be between 1KiB and 64MiB`},
		{name: "max_size not a size", hcl: u + "\nmax_size = \"lots\"", wantErr: `max_size: invalid size "lots"`},
		{name: "refused header", hcl: u + "\nheaders = { host = \"evil.example.com\" }", wantErr: `headers: "host" is refused`},
		{name: "conditional header", hcl: u + "\nheaders = { \"If-None-Match\" = \"x\" }", wantErr: `headers: "If-None-Match" is refused`},
		{name: "accept-encoding", hcl: u + "\nheaders = { \"Accept-Encoding\" = \"br\" }", wantErr: `headers: "Accept-Encoding" is refused`},
		{name: "bad header name", hcl: u + "\nheaders = { \"x y\" = \"1\" }", wantErr: `headers: "x y" is not a valid header name`},
		{name: "control character in a value", hcl: u + "\nheaders = { Authorization = \"Bearer abc\\r\\nX: 1\" }", wantErr: `headers: the value of "Authorization" holds a control character`},
		{name: "value too long", hcl: u + "\nheaders = { X-Big = \"" + strings.Repeat("v", MaxHeaderValue+1) + "\" }", wantErr: `headers: the value of "X-Big" is longer than 4096 bytes`},
		{name: "header twice", hcl: u + "\nheaders = { \"X-A\" = \"1\", \"x-a\" = \"2\" }", wantErr: `is set twice`},
		{name: "too many headers", hcl: u + "\nheaders = {\n" + manyHeaders(MaxHeaders+1) + "}", wantErr: "headers: at most 32 headers, not 33"},
		{name: "headers not a map", hcl: u + "\nheaders = [\"x\"]", wantErr: "map of string required"},
		{name: "unknown attribute", hcl: u + "\ninterval = \"5m\"", wantErr: "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPlugin(t)
			err := configure(t, p, tt.hcl)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, p.gen.Load().s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, secret := range []string{"hunter2", "Bearer abc"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %q: %v", secret, err)
				}
			}
			if p.gen.Load() != nil {
				t.Error("a rejected config is in force")
			}
		})
	}
}

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "\"X-H%d\" = \"v\"\n", i)
	}
	return b.String()
}

// Configure given JSON directly (not through the spec): empty strings mean
// the defaults, unknown fields are refused.
func TestConfigureJSON(t *testing.T) {
	tests := []struct{ name, json, wantErr string }{
		{name: "url only", json: `{"url": "https://plans.example.com/"}`},
		{name: "empty defaults", json: `{"url": "https://plans.example.com/", "refresh": "", "timeout": "", "max_size": "", "headers": null}`},
		{name: "empty", json: ``, wantErr: "url is required"},
		{name: "unknown field", json: `{"url": "https://plans.example.com/", "proxy": "x"}`, wantErr: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPlugin(t)
			err := p.Configure(context.Background(), &pluginv1.ConfigureRequest{ApiVersion: sdk.APIVersion1, ConfigJson: []byte(tt.json)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s := p.gen.Load().s; s.refresh != DefaultRefresh || s.timeout != DefaultTimeout || s.maxSize != DefaultMaxSize {
					t.Errorf("settings %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
