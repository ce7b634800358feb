package outboundtest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func post(t *testing.T, u, body string, h http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestReceiver(t *testing.T) {
	rc := Start(t, func(r *http.Request, body []byte) error {
		if r.Header.Get("X-Key") != "right" {
			return errors.New("wrong key")
		}
		return nil
	})
	if !strings.HasPrefix(rc.URL, "http://127.0.0.1:") || rc.HostPort() != strings.TrimPrefix(rc.URL, "http://") || rc.Port() == "" {
		t.Fatalf("URL %q, host and port %q, port %q", rc.URL, rc.HostPort(), rc.Port())
	}
	if code, _, _ := post(t, rc.URL+"/a?b=1", "first", http.Header{"X-Key": {"right"}}); code != http.StatusNoContent {
		t.Fatalf("default answer %d", code)
	}
	if code, body, _ := post(t, rc.URL, "x", nil); code != http.StatusUnauthorized || !strings.Contains(body, "wrong key") {
		t.Fatalf("rejected: %d %q", code, body)
	}
	rc.SetRespond(Reply(http.StatusTeapot, map[string]string{"X-Kind": "teapot"}, "short and stout"))
	if code, body, h := post(t, rc.URL+"/c", "second", http.Header{"X-Key": {"right"}}); code != http.StatusTeapot ||
		body != "short and stout" || h.Get("X-Kind") != "teapot" {
		t.Fatalf("Reply: %d %q %v", code, body, h)
	}
	rc.SetRespond(nil)
	if code, _, _ := post(t, rc.URL, "third", http.Header{"X-Key": {"right"}}); code != http.StatusNoContent {
		t.Fatalf("after SetRespond(nil): %d", code)
	}

	got := rc.Requests()
	if len(got) != 3 || got[0].Method != http.MethodPost || got[0].URI != "/a?b=1" || string(got[0].Body) != "first" ||
		got[0].Header.Get("X-Key") != "right" || got[1].URI != "/c" || string(got[2].Body) != "third" {
		t.Fatalf("requests %+v", got)
	}
	if errs := rc.Rejected(); len(errs) != 1 || errs[0].Error() != "wrong key" {
		t.Fatalf("rejected %v", errs)
	}
	if n := rc.Hits(); n != 4 {
		t.Fatalf("%d hits", n)
	}
}

func TestReceiverMaxInflight(t *testing.T) {
	rc := Start(t, nil)
	rc.SetRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	if n := rc.MaxInflight(); n != 0 {
		t.Fatalf("MaxInflight before any request: %d", n)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := http.Post(rc.URL, "text/plain", nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := rc.MaxInflight(); n < 2 || n > 3 {
		t.Fatalf("MaxInflight = %d, want 2 or 3", n)
	}
}

func TestStall(t *testing.T) {
	rc := Start(t, nil)
	rc.SetRespond(Stall(5 * time.Second))
	c := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := c.Post(rc.URL, "text/plain", nil); err == nil {
		t.Fatal("a stalled answer came within the client's timeout")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the client waited %v", took)
	}
	rc.SetRespond(Stall(50 * time.Millisecond))
	start = time.Now()
	code, _, _ := post(t, rc.URL, "", nil)
	if took := time.Since(start); code != http.StatusNoContent || took < 50*time.Millisecond {
		t.Fatalf("after the longest stall: %d after %v", code, took)
	}
}

func TestClosedAddr(t *testing.T) {
	addr := ClosedAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("address %q", addr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
}
