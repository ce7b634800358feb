// Package loadgen simulates a fleet of workers for `make bench`: N clients
// of sdk/worker in one process, each registering, holding its WebSocket
// and heartbeating, and optionally sending app statistics, runtime logs or
// a flood of signed envelopes at configurable rates.
//
// It runs as its own process (`wisehosting bench loadgen`), so that the
// core's memory and file descriptors are the core's alone, and talks to
// whoever started it over its standard streams:
//
//	stdout: "ready N"      every client is connected
//	stdin:  "go"           start the timed phase (-duration)
//	stdout: "done sent=S errors=E"
//	stdin:  EOF            disconnect everyone and exit
//
// Without -duration there is no timed phase: after "ready" the clients
// stay connected (heartbeating, sending statistics and logs at their
// rates) until stdin closes.
package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wisehosting/wisehosting/sdk/units"
	"github.com/wisehosting/wisehosting/sdk/worker"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Spec is what the load generator does.
type Spec struct {
	// CoreURL is the core's base URL.
	CoreURL string
	// CA, when set, is the PEM file of the CA that signed the core's TLS
	// certificate.
	CA string
	// Workers are the simulated workers' credentials.
	Workers []Worker
	// SourceAddrs spreads the connections over this many loopback source
	// addresses (127.0.0.2 on); 0 means one per 5,000 workers.
	SourceAddrs int
	// Connecting bounds how many clients register and connect at once.
	Connecting int
	// Heartbeat overrides the heartbeat interval the core asks for.
	Heartbeat time.Duration
	// StatsEvery is how often each worker sends app_stats about its app
	// (0: never).
	StatsEvery time.Duration
	// LogRate is each worker's runtime log rate in bytes of line text per
	// second (0: none), sent in messages of LogMessage bytes of LogLine-byte
	// lines.
	LogRate, LogMessage, LogLine int
	// Flood makes the timed phase send signed envelopes as fast as the core
	// takes them: 90 % app_stats about the worker's app, 10 % heartbeats,
	// payloads of about PayloadSize bytes.
	Flood       bool
	PayloadSize int
	// Duration is the length of the timed phase (0: none).
	Duration time.Duration
}

// Worker is one simulated worker.
type Worker struct {
	// APIKey is the worker's raw key.
	APIKey string
	// AppID is an app running on it (for app_stats and runtime logs); 0
	// when it has none.
	AppID int64
}

// ParseWorkers reads a keys file: one worker per line, its raw API key and
// optionally the id of an app it runs, separated by a space.
func ParseWorkers(r io.Reader) ([]Worker, error) {
	var out []Worker
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			return nil, fmt.Errorf("loadgen: keys line %d: want \"KEY [APP_ID]\"", n)
		}
		w := Worker{APIKey: f[0]}
		if len(f) == 2 {
			id, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || id <= 0 {
				return nil, fmt.Errorf("loadgen: keys line %d: app id %q is not a positive integer", n, f[1])
			}
			w.AppID = id
		}
		out = append(out, w)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: read keys: %w", err)
	}
	return out, nil
}

// Main is `wisehosting bench loadgen`: it parses args, then Runs; `bench
// loadgen get …` is GetMain instead.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "get" {
		return GetMain(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s Spec
	var keys, logRate string
	fs.StringVar(&s.CoreURL, "core", "", "the core's base URL (required)")
	fs.StringVar(&s.CA, "ca", "", "PEM file of the CA of the core's TLS certificate")
	fs.StringVar(&keys, "keys", "", `file of workers, one "KEY [APP_ID]" per line (required)`)
	fs.IntVar(&s.SourceAddrs, "source-addrs", 0, "loopback source addresses to spread over (0: one per 5000 workers)")
	fs.IntVar(&s.Connecting, "connecting", 64, "clients registering and connecting at once")
	fs.DurationVar(&s.Heartbeat, "heartbeat", 0, "heartbeat interval (0: what the core asks for)")
	fs.DurationVar(&s.StatsEvery, "stats-every", 0, "app_stats interval per worker (0: none)")
	fs.StringVar(&logRate, "log-rate", "0", "runtime log text per worker per second, e.g. 256KiB (0: none)")
	fs.IntVar(&s.LogMessage, "log-message", 64<<10, "bytes of line text per runtime_log message")
	fs.IntVar(&s.LogLine, "log-line", 100, "bytes per log line")
	fs.BoolVar(&s.Flood, "flood", false, "timed phase: signed envelopes as fast as the core takes them")
	fs.IntVar(&s.PayloadSize, "payload", 512, "flood payload size in bytes")
	fs.DurationVar(&s.Duration, "duration", 0, "length of the timed phase, started by \"go\" on stdin (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected arguments %q", fs.Args())
	}
	if s.CoreURL == "" || keys == "" {
		return errors.New("loadgen: -core and -keys are required")
	}
	rate, err := units.ParseSize(logRate)
	if err != nil {
		return fmt.Errorf("loadgen: -log-rate: %w", err)
	}
	s.LogRate = int(rate)
	f, err := os.Open(keys)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	s.Workers, err = ParseWorkers(f)
	f.Close()
	if err != nil {
		return err
	}
	return Run(ctx, s, stdin, stdout)
}

// Run connects every worker of s, reports "ready", runs the timed phase
// when stdin says "go", and disconnects everyone when stdin closes.
func Run(ctx context.Context, s Spec, stdin io.Reader, stdout io.Writer) error {
	if err := s.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fleet, err := newFleet(s)
	if err != nil {
		return err
	}
	defer fleet.stop()
	if err := fleet.connect(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready", len(fleet.clients))

	in := bufio.NewScanner(stdin)
	bctx, stopBackground := context.WithCancel(ctx)
	fleet.background(bctx, stopBackground)
	if s.Duration > 0 {
		if !in.Scan() {
			return nil // the parent went away
		}
		if cmd := strings.TrimSpace(in.Text()); cmd != "go" {
			return fmt.Errorf("loadgen: want \"go\" on stdin, got %q", cmd)
		}
		sent, errs := fleet.timed(ctx)
		fmt.Fprintf(stdout, "done sent=%d errors=%d\n", sent, errs)
	}
	for in.Scan() {
	}
	return nil
}

func (s *Spec) check() error {
	switch {
	case len(s.Workers) == 0:
		return errors.New("loadgen: no workers")
	case s.Flood && s.Duration <= 0:
		return errors.New("loadgen: -flood needs -duration")
	case s.LogRate > 0 && (s.LogLine <= 0 || s.LogLine > wsproto.MaxLogLine || s.LogMessage < s.LogLine):
		return fmt.Errorf("loadgen: log lines must be 1..%d bytes and messages at least one line", wsproto.MaxLogLine)
	case s.PayloadSize < 0 || s.PayloadSize > 64<<10:
		return errors.New("loadgen: -payload must be 0..65536 bytes")
	}
	if (s.LogRate > 0 || s.StatsEvery > 0 || s.Flood) && s.Workers[0].AppID == 0 {
		return errors.New("loadgen: statistics, logs and floods need an app id per worker in the keys file")
	}
	if s.Connecting <= 0 {
		s.Connecting = 64
	}
	if s.SourceAddrs <= 0 {
		s.SourceAddrs = (len(s.Workers) + 4999) / 5000
	}
	if s.SourceAddrs > 250 {
		return errors.New("loadgen: at most 250 source addresses")
	}
	return nil
}

// fleet is the running clients.
type fleet struct {
	s       Spec
	clients []*worker.Client
	done    []chan error
	cancel  []context.CancelFunc
	// stopBackground ends the steady traffic; wg waits for it.
	stopBackground context.CancelFunc
	wg             sync.WaitGroup
}

func newFleet(s Spec) (*fleet, error) {
	var tlsConf *tls.Config
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loadgen: %s holds no PEM certificate", s.CA)
		}
		tlsConf = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	}
	// One dialer and one HTTP client per source address; the HTTP clients
	// keep a few connections for the registrations and token refreshes.
	dialers := make([]*net.Dialer, s.SourceAddrs)
	httpClients := make([]*http.Client, s.SourceAddrs)
	for i := range dialers {
		dialers[i] = &net.Dialer{Timeout: 30 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		httpClients[i] = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			DialContext:         dialers[i].DialContext,
			TLSClientConfig:     tlsConf,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	f := &fleet{s: s}
	for i, w := range s.Workers {
		c, err := worker.New(worker.Config{
			CoreURL: s.CoreURL,
			APIKey:  w.APIKey,
			Registration: wsproto.RegisterRequest{
				Address:  "127.0.0.1",
				Capacity: wsproto.Capacity{CPU: 8000, Memory: 16 << 30},
				Runtimes: []string{wsproto.RuntimeExec},
				Version:  "loadgen",
			},
			HTTPClient: httpClients[i%s.SourceAddrs],
			Dialer:     dialers[i%s.SourceAddrs],
			MinBackoff: 200 * time.Millisecond,
			MaxBackoff: 5 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("loadgen: worker %d: %w", i, err)
		}
		f.clients = append(f.clients, c)
	}
	return f, nil
}

// connect starts every client, at most s.Connecting registering at once,
// and returns when all are connected.
func (f *fleet) connect(ctx context.Context) error {
	sem := make(chan struct{}, f.s.Connecting)
	f.done = make([]chan error, len(f.clients))
	f.cancel = make([]context.CancelFunc, len(f.clients))
	for i, c := range f.clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f.cancel[i] = cancel
		done := make(chan error, 1)
		f.done[i] = done
		go func() { done <- c.Run(cctx) }()
		go func() {
			defer func() { <-sem }()
			for !c.Connected() {
				select {
				case err := <-done:
					done <- err
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	for range f.s.Connecting {
		sem <- struct{}{}
	}
	for i, c := range f.clients {
		if !c.Connected() {
			select {
			case err := <-f.done[i]:
				return fmt.Errorf("loadgen: worker %d stopped: %w", i, err)
			default:
				return fmt.Errorf("loadgen: worker %d is not connected", i)
			}
		}
	}
	return nil
}

// background starts the steady per-worker traffic: heartbeats, statistics
// and logs at their rates. Each worker has one goroutine for it.
func (f *fleet) background(ctx context.Context, stop context.CancelFunc) {
	f.stopBackground = stop
	for i, c := range f.clients {
		f.wg.Go(func() { f.steady(ctx, c, f.s.Workers[i].AppID, i) })
	}
}

func (f *fleet) steady(ctx context.Context, c *worker.Client, appID int64, i int) {
	hbEvery := f.s.Heartbeat
	if hbEvery <= 0 {
		hbEvery = c.HeartbeatInterval()
	}
	// The first heartbeat goes at once, as an agent's does on connecting;
	// later ones and the statistics are spread over one interval.
	phase := time.Duration(int64(hbEvery) * int64(i%1000) / 1000)
	nextHB := time.Now()
	nextStats := time.Now().Add(phase)
	var logs *logSender
	if f.s.LogRate > 0 {
		logs = newLogSender(f.s, appID)
	}
	for {
		now := time.Now()
		if !now.Before(nextHB) {
			_ = c.SendHeartbeat(ctx, heartbeat())
			if nextHB = nextHB.Add(hbEvery); phase > 0 {
				nextHB, phase = nextHB.Add(phase-hbEvery), 0
			}
		}
		if f.s.StatsEvery > 0 && !now.Before(nextStats) {
			_ = c.SendAppStats(ctx, wsproto.AppStats{Apps: []wsproto.AppStat{appStat(appID)}})
			nextStats = nextStats.Add(f.s.StatsEvery)
		}
		next := nextHB
		if f.s.StatsEvery > 0 && nextStats.Before(next) {
			next = nextStats
		}
		if logs != nil {
			if logs.due(now) {
				_ = c.SendRuntimeLog(ctx, logs.message(now))
			}
			if logs.next.Before(next) {
				next = logs.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

// timed runs the flood, when asked for, for s.Duration (the steady traffic
// goes on meanwhile) and returns how many envelopes it sent and how many
// sends failed.
func (f *fleet) timed(ctx context.Context) (sent, errs int64) {
	if !f.s.Flood {
		select {
		case <-time.After(f.s.Duration):
		case <-ctx.Done():
		}
		for _, c := range f.clients {
			sent += int64(c.Stats().Sent)
		}
		return sent, 0
	}
	var nSent, nErr atomic.Int64
	fctx, cancel := context.WithTimeout(ctx, f.s.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for i, c := range f.clients {
		stats, hb := floodPayloads(f.s.Workers[i].AppID, f.s.PayloadSize)
		wg.Go(func() {
			for n := 0; fctx.Err() == nil; n++ {
				typ, p := wsproto.TypeAppStats, stats
				if n%10 == 9 {
					typ, p = wsproto.TypeHeartbeat, hb
				}
				if err := c.Send(fctx, typ, p); err != nil {
					if fctx.Err() == nil {
						nErr.Add(1)
					}
					continue
				}
				nSent.Add(1)
			}
		})
	}
	wg.Wait()
	return nSent.Load(), nErr.Load()
}

// stop disconnects every client and waits for them.
func (f *fleet) stop() {
	if f.stopBackground != nil {
		f.stopBackground()
	}
	f.wg.Wait()
	for _, cancel := range f.cancel {
		if cancel != nil {
			cancel()
		}
	}
	for _, d := range f.done {
		if d != nil {
			<-d
		}
	}
}

func heartbeat() wsproto.Heartbeat {
	return wsproto.Heartbeat{CPUPercent: 12.5, MemoryPercent: 40, DiskPercent: 55, MemoryTotal: 16 << 30,
		MemoryUsed: 6 << 30, DiskTotal: 500 << 30, DiskUsed: 275 << 30, Load1: 0.42, RunningApps: 1}
}

func appStat(appID int64) wsproto.AppStat {
	return wsproto.AppStat{AppID: appID, CPUPercent: 12.5, MemBytes: 123456789, MemLimit: 536870912,
		NetRxBytes: 987654321, NetTxBytes: 123456789, NetMbps: 1.25, DiskMbps: 0.5}
}

// floodPayloads returns an app_stats payload of about size bytes (repeated
// entries for the worker's app) and a heartbeat padded to about size bytes
// with a field the core ignores (unknown fields are allowed for forward
// compatibility).
func floodPayloads(appID int64, size int) (stats, hb json.RawMessage) {
	one, _ := json.Marshal(appStat(appID))
	n := max(1, (size-10)/(len(one)+1))
	entries := make([]wsproto.AppStat, n)
	for i := range entries {
		entries[i] = appStat(appID)
	}
	stats, _ = json.Marshal(wsproto.AppStats{Apps: entries})
	base, _ := json.Marshal(heartbeat())
	pad := max(0, size-len(base)-10)
	hb, _ = json.Marshal(struct {
		wsproto.Heartbeat
		Pad string `json:"pad"`
	}{heartbeat(), strings.Repeat("p", pad)})
	return stats, hb
}

// logSender paces one worker's runtime logs.
type logSender struct {
	lines []wsproto.LogLine
	every time.Duration
	next  time.Time
}

func newLogSender(s Spec, appID int64) *logSender {
	n := max(1, min(s.LogMessage/s.LogLine, wsproto.MaxLogLinesPerMessage))
	line := strings.Repeat("l", s.LogLine)
	ls := &logSender{lines: make([]wsproto.LogLine, n)}
	for i := range ls.lines {
		ls.lines[i] = wsproto.LogLine{AppID: appID, Stream: "stdout", Line: line}
	}
	ls.every = time.Duration(float64(time.Second) * float64(n*s.LogLine) / float64(s.LogRate))
	ls.next = time.Now()
	return ls
}

func (l *logSender) due(now time.Time) bool {
	if now.Before(l.next) {
		return false
	}
	l.next = l.next.Add(l.every)
	return true
}

func (l *logSender) message(now time.Time) wsproto.RuntimeLog {
	ts := now.UnixNano()
	for i := range l.lines {
		l.lines[i].TS = ts
	}
	return wsproto.RuntimeLog{Lines: l.lines}
}
