package cliclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
	"github.com/wisehosting/wisehosting/core/cliclient/clitest"
)

// lines returns build log lines [from, to), ~50 bytes each.
func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "step %04d %s\n", i, strings.Repeat("x", 40))
	}
	return b.String()
}

// capped is a capped snapshot: the first 10 lines, the marker, then the
// tail [from, to).
func capped(from, to int) string {
	return lines(0, 10) + cliclient.TruncationMarker + lines(from, to)
}

func TestCLIClientLogTail(t *testing.T) {
	t.Parallel()
	type step struct {
		full string
		text string
		gap  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"growing", []step{
			{"", "", false},
			{lines(0, 5), lines(0, 5), false},
			{lines(0, 20), lines(5, 20), false},
			{lines(0, 20), "", false},
		}},
		{"capped past what was printed", []step{
			{lines(0, 20), lines(0, 20), false},
			{capped(30, 70), lines(30, 70), true},
			{capped(45, 85), lines(70, 85), false},
			{capped(45, 85), "", false},
			{capped(200, 240), lines(200, 240), true},
		}},
		{"capped while in the head", []step{
			{lines(0, 5), lines(0, 5), false},
			{capped(50, 90), lines(5, 10) + cliclient.TruncationMarker + lines(50, 90), false},
			{capped(60, 95), lines(90, 95), false},
		}},
		{"capped with the end still in the tail", []step{
			{lines(0, 30), lines(0, 30), false},
			{capped(15, 55), lines(30, 55), false},
		}},
	}
	for _, tc := range tests {
		var lt cliclient.LogTail
		for i, s := range tc.steps {
			text, gap := lt.Next(s.full)
			if text != s.text || gap != s.gap {
				t.Errorf("%s, step %d: Next = (%d bytes starting %.20q, %v), want (%d bytes starting %.20q, %v)",
					tc.name, i, len(text), text, gap, len(s.text), s.text, s.gap)
			}
		}
	}
}

// watched records what WatchDeployment reports.
type watched struct {
	statuses []string
	log      strings.Builder
	gaps     int
}

func (w *watched) options() cliclient.WatchOptions {
	return cliclient.WatchOptions{
		Every:    time.Millisecond,
		OnStatus: func(s string) { w.statuses = append(w.statuses, s) },
		OnLog: func(text string, gap bool) {
			if gap {
				w.gaps++
				w.log.WriteString("<gap>")
			}
			w.log.WriteString(text)
		},
	}
}

func TestCLIClientWatchDeployment(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	srv.AddApp("web-front")
	c := newClient(t, srv)

	srv.SetDeployScript(
		clitest.Step{Status: "pending"},
		clitest.Step{Status: "building", Logs: lines(0, 5)},
		clitest.Step{Status: "building", Logs: lines(0, 20)},
		clitest.Step{Status: "building", Logs: capped(30, 70)},
		clitest.Step{Status: "deploying", Logs: capped(45, 85)},
		clitest.Step{Status: "succeeded", Logs: capped(45, 86)},
	)
	acc, err := c.DeployApp(t.Context(), "web-front", cliclient.Deploy{})
	if err != nil {
		t.Fatal(err)
	}
	var w watched
	d, err := c.WatchDeployment(t.Context(), acc.Deployment.ID, w.options())
	if err != nil || d.Status != cliclient.DeploymentSucceeded {
		t.Fatalf("WatchDeployment = %+v, %v", d, err)
	}
	if got := strings.Join(w.statuses, ","); got != "pending,building,deploying,succeeded" {
		t.Errorf("statuses = %s", got)
	}
	if want := lines(0, 20) + "<gap>" + lines(30, 86); w.log.String() != want || w.gaps != 1 {
		t.Errorf("log:\n%s\nwant:\n%s", w.log.String(), want)
	}

	srv.SetDeployScript(
		clitest.Step{Status: "building", Logs: "go build\n"},
		clitest.Step{Status: "failed", Logs: "go build\nmain.go:3: syntax error\n", Error: "the build failed: exit status 1"},
	)
	acc, err = c.DeployApp(t.Context(), "web-front", cliclient.Deploy{})
	if err != nil {
		t.Fatal(err)
	}
	w = watched{}
	d, err = c.WatchDeployment(t.Context(), acc.Deployment.ID, w.options())
	if err != nil || d.Status != cliclient.DeploymentFailed || d.Error != "the build failed: exit status 1" {
		t.Fatalf("a failed deployment: %+v, %v", d, err)
	}
	if w.log.String() != "go build\nmain.go:3: syntax error\n" {
		t.Errorf("log of the failed deployment = %q", w.log.String())
	}

	// A deployment that stays in progress: the context ends the wait.
	srv.SetDeployScript(clitest.Step{Status: "building"})
	acc, err = c.DeployApp(t.Context(), "web-front", cliclient.Deploy{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.WatchDeployment(ctx, acc.Deployment.ID, cliclient.WatchOptions{Every: time.Millisecond}); err != context.DeadlineExceeded {
		t.Errorf("an endless deployment = %v, want context.DeadlineExceeded", err)
	}

	// A job.
	srv.SetJobScript("assigned", "processing", "completed")
	acc, err = c.StopApp(t.Context(), "web-front")
	if err != nil {
		t.Fatal(err)
	}
	w = watched{}
	j, err := c.WatchJob(t.Context(), acc.Job.ID, w.options())
	if err != nil || j.Status != cliclient.JobCompleted || strings.Join(w.statuses, ",") != "assigned,processing,completed" {
		t.Errorf("WatchJob = %+v, %v after %v", j, err, w.statuses)
	}
}

// Transient failures (5xx, 429, network) are retried up to Retries in a
// row; any other API error ends the wait at once.
func TestCLIClientWatchRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int // answers before a succeeded deployment
		retries  int
		wantErr  string
		calls    int64
	}{
		{"two 503 then done", []int{503, 503}, 3, "", 3},
		{"429 then done", []int{429}, 3, "", 2},
		{"too many failures", []int{500, 502, 503, 504}, 3, "http_504", 4},
		{"404 at once", []int{404, 200}, 3, "not_found", 1},
		{"403 at once", []int{403}, 3, "forbidden", 1},
	}
	for _, tc := range tests {
		var calls atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			n := calls.Add(1)
			if int(n) <= len(tc.statuses) && tc.statuses[n-1] != 200 {
				st := tc.statuses[n-1]
				if st < 500 {
					w.WriteHeader(st)
					fmt.Fprintf(w, `{"error":{"code":%q,"message":"m"}}`, map[int]string{404: "not_found", 403: "forbidden", 429: "rate_limited"}[st])
					return
				}
				w.WriteHeader(st)
				return
			}
			fmt.Fprint(w, `{"deployment":{"id":7,"status":"succeeded","build_logs":"ok\n"}}`)
		}))
		c, err := cliclient.New(srv.URL, "wht_x", nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.WatchDeployment(t.Context(), "7", cliclient.WatchOptions{Every: time.Millisecond, Retries: tc.retries})
		srv.Close()
		switch {
		case tc.wantErr == "" && (err != nil || d.Status != "succeeded"):
			t.Errorf("%s: %+v, %v; want succeeded", tc.name, d, err)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
		}
		if calls.Load() != tc.calls {
			t.Errorf("%s: %d calls, want %d", tc.name, calls.Load(), tc.calls)
		}
	}
}
