package hub

import (
	"sync"

	"github.com/gobwas/ws"
)

// Task kinds of the pool.
const (
	opRead uint8 = iota // read what arrived on the connection
	opPing              // send the connection a ping
)

type task struct {
	c  *conn
	op uint8
}

// pool is the fixed set of goroutines that serve readable connections and
// send pings. At most one of them reads a connection at a time (the epoll
// registration is one-shot and re-armed only when the turn ends).
type pool struct {
	tasks chan task
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newPool(size int) *pool {
	p := &pool{tasks: make(chan task, 4*size+1024), quit: make(chan struct{})}
	for range size {
		p.wg.Go(p.work)
	}
	return p
}

func (p *pool) work() {
	for {
		select {
		case <-p.quit:
			return
		case t := <-p.tasks:
			t.run()
		}
	}
}

func (t task) run() {
	switch t.op {
	case opRead:
		t.c.serve()
	case opPing:
		_ = t.c.writeFrame(ws.OpPing, nil)
	}
}

// submit queues t, waiting for room unless the pool is stopping. Only
// goroutines outside the pool call it (the readiness loop, the upgrade
// handler), so a full queue cannot deadlock the pool.
func (p *pool) submit(t task) {
	select {
	case p.tasks <- t:
	case <-p.quit:
	}
}

// trySubmit queues t if there is room.
func (p *pool) trySubmit(t task) bool {
	select {
	case p.tasks <- t:
		return true
	default:
		return false
	}
}

// stop ends the workers after their current task; queued tasks are
// dropped (their connections are closed by then).
func (p *pool) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
	})
}
