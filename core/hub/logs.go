package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Chunking of runtime logs (see store.LogChunk): consecutive lines of one
// app's stream in one message share a row, up to these bounds.
const (
	chunkMaxBytes = 64 << 10
	chunkMaxLines = 1000
)

// Batching of the log writer: one COPY per batch of at most this many
// bytes, or per Options.LogFlush, whichever comes first.
const writerBatchBytes = 4 << 20

// chunkBuilder accumulates one chunk and, when the app has bus
// subscribers, its lines.
type chunkBuilder struct {
	appID  int64
	stream string
	first  time.Time
	last   time.Time
	lines  int
	text   strings.Builder
	bus    []LogLine
	wantsB bool
}

func (c *conn) onRuntimeLog(ctx context.Context, env *wsproto.Envelope) *reply {
	h := c.h
	if c.logEmpty() {
		return c.rateLimited(len(env.Payload), -1)
	}
	var p wsproto.RuntimeLog
	if r := decode(env, &p); r != nil {
		return r
	}
	lines := p.Lines
	if over := len(lines) - wsproto.MaxLogLinesPerMessage; over > 0 {
		h.m.logDropLines.WithLabelValues(reasonTooMany).Add(float64(over))
		lines = lines[:wsproto.MaxLogLinesPerMessage]
	}
	size := 0
	for i := range lines {
		size += len(lines[i].Line)
	}
	if !c.allowLog(size) {
		return c.rateLimited(size, len(lines))
	}
	now := h.now()
	var (
		open    []*chunkBuilder // one per (app, stream) of this message
		done    []store.LogChunk
		refused []int64
		bytes   int64
		nlines  int
	)
	finish := func(b *chunkBuilder) {
		if b.lines == 0 {
			return
		}
		done = append(done, store.LogChunk{AppID: b.appID, WorkerID: c.workerID, Stream: b.stream,
			TS: b.first, TSEnd: b.last, Lines: b.lines, Text: b.text.String()})
		bytes += int64(b.text.Len())
		nlines += b.lines
		if len(b.bus) > 0 {
			h.bus.Publish(b.appID, b.bus)
		}
		b.lines, b.bus = 0, nil
		b.first, b.last = time.Time{}, time.Time{}
		b.text = strings.Builder{}
	}
	for i := range lines {
		l := &lines[i]
		ok, err := c.owns(ctx, l.AppID)
		if err != nil {
			return c.storeFailure("runtime_log", err, "")
		}
		if !ok {
			refused = append(refused, l.AppID)
			h.m.logDropLines.WithLabelValues(wsproto.CodeNotOwner).Inc()
			continue
		}
		line := sanitizeLine(l.Line)
		stream := l.Stream
		if stream != store.StreamStderr && stream != store.StreamSystem {
			stream = store.StreamStdout
		}
		ts := now
		if l.TS > 0 {
			if t := time.Unix(0, l.TS); !t.After(now.Add(wsproto.MaxClockSkew)) {
				ts = t
			}
		}
		var b *chunkBuilder
		for _, ob := range open {
			if ob.appID == l.AppID && ob.stream == stream {
				b = ob
				break
			}
		}
		if b == nil {
			b = &chunkBuilder{appID: l.AppID, stream: stream, wantsB: h.bus.Subscribed(l.AppID)}
			open = append(open, b)
		}
		if b.lines > 0 && (b.lines >= chunkMaxLines || b.text.Len()+1+len(line) > chunkMaxBytes) {
			finish(b)
		}
		if b.lines == 0 {
			b.first = ts
		} else {
			b.text.WriteByte('\n')
		}
		b.text.WriteString(line)
		b.lines++
		if ts.After(b.last) {
			b.last = ts
		}
		if b.first.After(ts) {
			b.first = ts
		}
		if b.wantsB {
			b.bus = append(b.bus, LogLine{AppID: l.AppID, WorkerID: c.workerID, TS: ts, Stream: stream, Line: line})
		}
	}
	for _, b := range open {
		finish(b)
	}
	if len(done) > 0 && !h.logs.enqueue(ctx, done, bytes, nlines) {
		h.m.logDropLines.WithLabelValues(reasonQueueFull).Add(float64(nlines))
		h.m.logDropBytes.WithLabelValues(reasonQueueFull).Add(float64(bytes))
	}
	if len(refused) > 0 {
		return refuse(wsproto.CodeNotOwner, "lines dropped for apps that are not this worker's: %s", idList(refused))
	}
	return nil
}

// logWriter persists runtime log chunks: handlers enqueue a message's
// chunks and a few writers batch them across messages and workers into one
// COPY per writerBatchBytes or flushEvery. The queue holds at most
// maxQueued bytes; a handler finding it full waits (up to enqueueWait) for
// the writers to make room. That wait is the hub's backpressure: the pool
// worker stops reading that connection, TCP pushes back on the worker, and
// the CPU is left to the COPYs instead of being spent decoding lines that
// would be dropped. Only after the wait are the lines dropped (counted).
type logWriter struct {
	h          *Hub
	in         chan logBatch
	room       *semaphore.Weighted
	queued     atomic.Int64
	maxQueued  int64
	flushEvery time.Duration
	writers    int
	mu         sync.RWMutex
	closed     bool
	wg         sync.WaitGroup
}

// enqueueWait bounds how long a handler waits for room in the log queue.
const enqueueWait = 5 * time.Second

type logBatch struct {
	chunks []store.LogChunk
	bytes  int64
	lines  int
}

func newLogWriter(h *Hub, flushEvery time.Duration, maxQueued int64, writers int) *logWriter {
	return &logWriter{h: h, in: make(chan logBatch, 4096), room: semaphore.NewWeighted(maxQueued), maxQueued: maxQueued,
		flushEvery: flushEvery, writers: max(writers, 1)}
}

func (w *logWriter) start() {
	for range w.writers {
		w.wg.Go(w.run)
	}
}

// enqueue hands chunks to the writers, waiting for room within ctx and
// enqueueWait; false means they were dropped (no room in time, or the hub
// is closing).
func (w *logWriter) enqueue(ctx context.Context, chunks []store.LogChunk, bytes int64, lines int) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	bytes = min(bytes, w.maxQueued) // what the semaphore accounts for
	if !w.room.TryAcquire(bytes) {
		wctx, cancel := context.WithTimeout(ctx, enqueueWait)
		err := w.room.Acquire(wctx, bytes)
		cancel()
		if err != nil {
			return false
		}
	}
	w.queued.Add(bytes)
	w.in <- logBatch{chunks: chunks, bytes: bytes, lines: lines}
	return true
}

func (w *logWriter) run() {
	var (
		pending []store.LogChunk
		bytes   int64
		lines   int
		timer   = time.NewTimer(time.Hour)
		armed   bool
	)
	timer.Stop()
	flush := func() {
		if len(pending) > 0 {
			w.write(pending, bytes, lines)
		}
		clear(pending)
		pending, bytes, lines = pending[:0], 0, 0
		if armed {
			timer.Stop()
			armed = false
		}
	}
	for {
		select {
		case b, ok := <-w.in:
			if !ok {
				flush()
				return
			}
			pending = append(pending, b.chunks...)
			bytes += b.bytes
			lines += b.lines
			if bytes >= writerBatchBytes {
				flush()
			} else if !armed {
				timer.Reset(w.flushEvery)
				armed = true
			}
		case <-timer.C:
			armed = false
			flush()
		}
	}
}

// write runs one COPY and accounts for it.
func (w *logWriter) write(chunks []store.LogChunk, bytes int64, lines int) {
	h := w.h
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := h.st.InsertRuntimeLogs(ctx, chunks)
	cancel()
	w.queued.Add(-bytes)
	w.room.Release(bytes)
	if err != nil {
		h.log.Error("runtime logs lost: COPY failed", "chunks", len(chunks), "lines", lines, "error", err)
		h.m.logDropLines.WithLabelValues(reasonDBError).Add(float64(lines))
		h.m.logDropBytes.WithLabelValues(reasonDBError).Add(float64(bytes))
		return
	}
	h.m.logBatches.Inc()
	h.m.logLines.Add(float64(lines))
	h.m.logBytes.Add(float64(bytes))
}

// close stops accepting chunks and waits (within ctx) for the writers to
// write what is queued.
func (w *logWriter) close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.in)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("hub: runtime logs still being written at shutdown (%d bytes queued): %w",
			w.queued.Load(), errors.Join(ctx.Err()))
	}
}
