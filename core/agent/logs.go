package agent

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// tokenBucket paces the log bytes the agent sends so it stays within the
// core's per-connection log bucket (wsproto.LogRate, LogBurst) instead of
// having lines refused.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate, burst int) *tokenBucket {
	return &tokenBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (b *tokenBucket) refill(now time.Time) {
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
}

// take spends n tokens if there are that many.
func (b *tokenBucket) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// wait spends n tokens (at most the burst), waiting for them.
func (b *tokenBucket) wait(ctx context.Context, n int) error {
	if float64(n) > b.burst {
		n = int(b.burst)
	}
	for {
		b.mu.Lock()
		b.refill(time.Now())
		if float64(n) <= b.tokens {
			b.tokens -= float64(n)
			b.mu.Unlock()
			return nil
		}
		d := time.Duration((float64(n) - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(d + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lineSplitter cuts a byte stream into lines of at most wsproto.MaxLogLine
// bytes (a longer line is cut into several) and hands them to emit. It is
// not safe for concurrent use.
type lineSplitter struct {
	buf  []byte
	emit func(string)
}

func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexNL(p)
		if i < 0 {
			s.buf = append(s.buf, p...)
			for len(s.buf) >= wsproto.MaxLogLine {
				cut := utf8Cut(s.buf, wsproto.MaxLogLine)
				s.emit(string(s.buf[:cut]))
				s.buf = append(s.buf[:0], s.buf[cut:]...)
			}
			return n, nil
		}
		s.buf = append(s.buf, p[:i]...)
		p = p[i+1:]
		line := s.buf
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		for len(line) > wsproto.MaxLogLine {
			cut := utf8Cut(line, wsproto.MaxLogLine)
			s.emit(string(line[:cut]))
			line = line[cut:]
		}
		s.emit(string(line))
		s.buf = s.buf[:0]
	}
	return n, nil
}

// flush emits a pending partial line.
func (s *lineSplitter) flush() {
	if len(s.buf) > 0 {
		s.emit(string(s.buf))
		s.buf = s.buf[:0]
	}
}

func indexNL(p []byte) int {
	for i, c := range p {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// utf8Cut returns the largest cut ≤ max that does not split a rune.
func utf8Cut(b []byte, max int) int {
	if max >= len(b) {
		return len(b)
	}
	cut := max
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
		cut--
	}
	if cut == 0 {
		return max
	}
	return cut
}

// ring keeps the last n lines written to it.
type ring struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func newRing(n int) *ring { return &ring{n: n} }

func (r *ring) add(line string) {
	r.mu.Lock()
	r.lines = append(r.lines, line)
	if len(r.lines) > r.n {
		r.lines = append(r.lines[:0], r.lines[len(r.lines)-r.n:]...)
	}
	r.mu.Unlock()
}

func (r *ring) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// logShipper batches runtime log lines of every app into runtime_log
// messages: at most wsproto.MaxLogLinesPerMessage lines each, flushed every
// interval. Lines beyond the log budget are dropped and counted; a system
// line tells the app's owner how many.
type logShipper struct {
	send     func(context.Context, wsproto.RuntimeLog) error
	ready    func() bool // false: keep the lines for later
	budget   *tokenBucket
	interval time.Duration

	mu      sync.Mutex
	pending []wsproto.LogLine
	dropped map[int64]int
	kick    chan struct{}
}

// maxPendingLines bounds the lines held between flushes.
const maxPendingLines = 4 * wsproto.MaxLogLinesPerMessage

func newLogShipper(send func(context.Context, wsproto.RuntimeLog) error, ready func() bool, budget *tokenBucket, interval time.Duration) *logShipper {
	return &logShipper{send: send, ready: ready, budget: budget, interval: interval, dropped: map[int64]int{}, kick: make(chan struct{}, 1)}
}

// add queues one line.
func (s *logShipper) add(appID int64, stream, line string) {
	if len(line) > wsproto.MaxLogLine {
		line = line[:utf8Cut([]byte(line), wsproto.MaxLogLine)]
	}
	l := wsproto.LogLine{AppID: appID, TS: time.Now().UnixNano(), Stream: stream, Line: line}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= maxPendingLines || !s.budget.take(len(line)+1) {
		s.dropped[appID]++
		return
	}
	s.pending = append(s.pending, l)
	if len(s.pending) >= wsproto.MaxLogLinesPerMessage {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes until ctx ends, then flushes once more with flushCtx.
func (s *logShipper) run(ctx, flushCtx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush(flushCtx)
			return
		case <-t.C:
		case <-s.kick:
		}
		s.flush(ctx)
	}
}

func (s *logShipper) flush(ctx context.Context) {
	if !s.ready() {
		return
	}
	s.mu.Lock()
	for app, n := range s.dropped {
		note := "[worker] " + strconv.Itoa(n) + " log lines dropped: beyond the log rate limit"
		if s.budget.take(len(note)) {
			s.pending = append(s.pending, wsproto.LogLine{AppID: app, TS: time.Now().UnixNano(), Stream: "system", Line: note})
			delete(s.dropped, app)
		}
	}
	lines := s.pending
	s.pending = nil
	s.mu.Unlock()
	for len(lines) > 0 {
		n := min(len(lines), wsproto.MaxLogLinesPerMessage)
		_ = s.send(ctx, wsproto.RuntimeLog{Lines: lines[:n]})
		lines = lines[n:]
	}
}

// buildLog is a deployment's build output, capped like the core keeps it:
// the first half of wsproto.MaxBuildLog, wsproto.TruncationMarker, and the
// latest bytes. It is safe for concurrent use.
type buildLog struct {
	mu        sync.Mutex
	head      []byte
	tail      []byte
	truncated bool
	version   int // bumped on each write
	lines     *ring
	split     *lineSplitter
	redact    []string
}

const (
	buildHead = wsproto.MaxBuildLog / 2
	buildTail = wsproto.MaxBuildLog - buildHead - len(wsproto.TruncationMarker)
)

func newBuildLog() *buildLog {
	b := &buildLog{lines: newRing(15)}
	b.split = &lineSplitter{emit: b.lines.add}
	return b
}

// Write appends build output.
func (b *buildLog) Write(p []byte) (int, error) {
	n := len(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.redact) > 0 {
		s := string(p)
		for _, r := range b.redact {
			s = strings.ReplaceAll(s, r, "[REDACTED]")
		}
		p = []byte(s)
	}
	b.version++
	_, _ = b.split.Write(p)
	if room := buildHead - len(b.head); room > 0 && len(b.tail) == 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	b.tail = append(b.tail, p...)
	if len(b.head)+len(b.tail) > wsproto.MaxBuildLog {
		b.truncated = true
	}
	if b.truncated && len(b.tail) > 2*buildTail {
		b.tail = append(b.tail[:0], b.tail[len(b.tail)-buildTail:]...)
	}
	return n, nil
}

// printf-like note of the agent's own, on a line of its own.
func (b *buildLog) note(s string) {
	_, _ = b.Write([]byte("==> " + s + "\n"))
}

// snapshot returns the capped log and its version.
func (b *buildLog) snapshot() (string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.truncated {
		return string(b.head) + string(b.tail), b.version
	}
	t := b.tail
	if len(t) > buildTail {
		t = t[len(t)-buildTail:]
	}
	for i := 0; i < utf8.UTFMax && i < len(t) && !utf8.RuneStart(t[0]); i++ {
		t = t[1:]
	}
	return string(b.head) + wsproto.TruncationMarker + string(t), b.version
}

// lastLines returns the last output lines (for error messages).
func (b *buildLog) lastLines() []string {
	b.mu.Lock()
	b.split.flush()
	b.mu.Unlock()
	return b.lines.last()
}

func (b *buildLog) addRedaction(s string) {
	if s == "" {
		return
	}
	b.mu.Lock()
	b.redact = append(b.redact, s)
	b.mu.Unlock()
}
