package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// GetSpec is a run of `bench loadgen get`: n GET requests to URL from C
// clients at once over keep-alive connections.
type GetSpec struct {
	URL string
	// Token is sent as the Bearer token; ETag, when set, as If-None-Match
	// (every answer must then be 304, otherwise 200).
	Token, ETag string
	N, C        int
	// Warm requests are sent first and not counted.
	Warm int
}

// Get runs s and returns every counted request's latency, sorted.
func Get(ctx context.Context, s GetSpec) ([]time.Duration, error) {
	if s.URL == "" || s.N <= 0 || s.C <= 0 || s.Warm < 0 {
		return nil, errors.New("loadgen get: -url, -n > 0 and -c > 0 are required")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: s.C, Proxy: nil}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	want := http.StatusOK
	if s.ETag != "" {
		want = http.StatusNotModified
	}
	total := s.N + s.Warm
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	lat := make([]time.Duration, total)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range s.C {
		wg.Go(func() {
			for i := range next {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				if s.Token != "" {
					req.Header.Set("Authorization", "Bearer "+s.Token)
				}
				if s.ETag != "" {
					req.Header.Set("If-None-Match", s.ETag)
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != want {
						err = fmt.Errorf("GET %s: status %d, want %d", s.URL, resp.StatusCode, want)
					}
				}
				lat[i] = time.Since(start)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// The first Warm requests to start are not counted.
	out := lat[s.Warm:]
	slices.Sort(out)
	return out, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// GetMain is `wisehosting bench loadgen get`: it runs Get and prints
// "p50 <ms> p99 <ms>".
func GetMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench loadgen get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s GetSpec
	fs.StringVar(&s.URL, "url", "", "URL to GET (required)")
	fs.StringVar(&s.Token, "token", "", "Bearer token")
	fs.StringVar(&s.ETag, "etag", "", "If-None-Match value (answers must be 304)")
	fs.IntVar(&s.N, "n", 1000, "requests counted")
	fs.IntVar(&s.C, "c", 4, "clients at once")
	fs.IntVar(&s.Warm, "warm", 40, "requests sent first and not counted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lat, err := Get(ctx, s)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	_, err = fmt.Fprintf(stdout, "p50 %.3f p99 %.3f\n", ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]))
	return err
}
