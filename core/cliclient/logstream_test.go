package cliclient_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/cliclient"
	"github.com/wisehosting/wisehosting/core/cliclient/clitest"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// recv reads n lines from ch, failing after 10 s.
func recv(t *testing.T, ch <-chan cliclient.LogLine, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended after %q, want %d lines", out, n)
			}
			out = append(out, l.Line)
		case <-timeout:
			t.Fatalf("got %q, want %d lines", out, n)
		}
	}
	return out
}

// streamEnd waits for the end of a stream and returns its error.
func streamEnd(t *testing.T, lines <-chan cliclient.LogLine, errc <-chan error) error {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if ok {
				t.Fatalf("unexpected line %+v", l)
			}
			select {
			case err := <-errc:
				return err
			case <-timeout:
				t.Fatal("no error after the lines closed")
			}
		case <-timeout:
			t.Fatal("the stream did not end")
		}
	}
}

// The stream sends the persisted tail, then live lines, of the apps
// asked for only, until the server closes it.
func TestCLIClientLogStream(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	web := srv.AddApp("web-front")
	srv.AddApp("api-back")
	srv.AddApp("unrelated")
	srv.Persist("web-front", "w1", "w2", "w3")
	srv.Persist("api-back", "a1")
	c := newClient(t, srv)

	lines, errc := c.LogStream(t.Context(), []string{web.UUID, "api-back"}, 2)
	if got := strings.Join(recv(t, lines, 3), ","); got != "w2,w3,a1" {
		t.Fatalf("backlog = %s, want the last 2 lines of each app", got)
	}
	testutil.WaitFor(t, 10*time.Second, "the stream to subscribe", func() bool { return srv.Subscribers() == 1 })
	srv.Emit("unrelated", "not for us")
	srv.Emit("web-front", "live-1", "live-2")
	srv.Emit("api-back", "live-3")
	if got := strings.Join(recv(t, lines, 3), ","); got != "live-1,live-2,live-3" {
		t.Fatalf("live lines = %s", got)
	}
	srv.CloseStreams()
	if err := streamEnd(t, lines, errc); err != nil {
		t.Fatalf("a normal close = %v, want nil", err)
	}
}

func TestCLIClientLogStreamFailures(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	srv.AddApp("web-front")
	c := newClient(t, srv)
	bad, err := cliclient.New(srv.URL, "wht_wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		client *cliclient.Client
		apps   []string
		status int
		text   string
	}{
		{"bad token", bad, []string{"web-front"}, 401, "unauthorized: missing or invalid credentials"},
		{"unknown app", c, []string{"web-front", "nope-nope"}, 404, "not_found: no such app: nope-nope"},
	}
	for _, tc := range tests {
		lines, errc := tc.client.LogStream(t.Context(), tc.apps, 10)
		err := streamEnd(t, lines, errc)
		if !cliclient.IsStatus(err, tc.status) || err.Error() != tc.text {
			t.Errorf("%s: %v, want %d %q", tc.name, err, tc.status, tc.text)
		}
	}
	if _, err := c.DialLogs(t.Context(), nil, 0); err == nil {
		t.Error("DialLogs without apps: want an error")
	}

	// An error the server sends on the stream.
	srv.SetStreamError(&cliclient.APIError{Code: "too_many_streams", Message: "close another log stream first"})
	lines, errc := c.LogStream(t.Context(), []string{"web-front"}, 0)
	err = streamEnd(t, lines, errc)
	var ae *cliclient.APIError
	if !errors.As(err, &ae) || ae.Code != "too_many_streams" || ae.Status != 0 {
		t.Errorf("a server error on the stream = %v", err)
	}
}

// Ending the context ends the stream with ctx.Err(); Next after Close
// fails.
func TestCLIClientLogStreamCancel(t *testing.T) {
	t.Parallel()
	srv := clitest.New(t)
	srv.AddApp("web-front")
	c := newClient(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	lines, errc := c.LogStream(ctx, []string{"web-front"}, 0)
	testutil.WaitFor(t, 10*time.Second, "the stream to subscribe", func() bool { return srv.Subscribers() == 1 })
	cancel()
	if err := streamEnd(t, lines, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled stream = %v, want context.Canceled", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the server to see the stream go", func() bool { return srv.Subscribers() == 0 })

	lc, err := c.DialLogs(t.Context(), []string{"web-front"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close = %v, want a read error", err)
	}
}
