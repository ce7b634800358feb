//go:build linux

package hub

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// poller is the readiness loop of plain (non-TLS) connections: one epoll
// instance watches every idle connection's socket with EPOLLONESHOT, so an
// idle connection costs no goroutine. When a socket becomes readable the
// loop hands the connection to the worker pool, which reads what arrived and
// re-arms it. ONESHOT guarantees that at most one pool worker reads a
// connection at a time.
//
// The Go runtime's own netpoller keeps watching the same sockets (a socket
// may sit in several epoll sets): pool workers read and write through the
// ordinary net.Conn, with deadlines, and a read that finds a frame only
// partly arrived parks in the runtime like any other.
type poller struct {
	epfd   int
	wakefd int // eventfd: written by close to end the loop
	done   chan struct{}
	once   sync.Once
}

// pollEvents are the events a connection is armed for.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// wakeID is the event data of the wake eventfd; connection ids start at 1.
const wakeID = 0

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("hub: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("hub: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, fmt.Errorf("hub: epoll_ctl add eventfd: %w", err)
	}
	return &poller{epfd: epfd, wakefd: wakefd, done: make(chan struct{})}, nil
}

// setEventID stores a connection id in the event's data (the kernel hands
// the 64 bits back untouched; x/sys/unix names them Fd and Pad).
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// ctl runs epoll_ctl on c's socket. It runs inside RawConn.Control, which
// holds a reference on the descriptor: the number cannot be closed and
// reused by another connection meanwhile.
func (p *poller) ctl(c *conn, op int) error {
	var opErr error
	err := c.raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: pollEvents}
		setEventID(&ev, c.id)
		opErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return opErr
}

// add starts watching c (armed).
func (p *poller) add(c *conn) error {
	if err := p.ctl(c, unix.EPOLL_CTL_ADD); err != nil {
		return fmt.Errorf("hub: epoll add: %w", err)
	}
	return nil
}

// rearm watches c again after a pool worker has read what was there.
func (p *poller) rearm(c *conn) error {
	if err := p.ctl(c, unix.EPOLL_CTL_MOD); err != nil {
		return fmt.Errorf("hub: epoll rearm: %w", err)
	}
	return nil
}

// remove stops watching c; errors (already closed) do not matter, closing
// the socket removes it from the set anyway.
func (p *poller) remove(c *conn) {
	_ = p.ctl(c, unix.EPOLL_CTL_DEL)
}

// run waits for readiness and calls ready with each connection id until
// close is called; fail hears of an epoll_wait failure, which ends it.
func (p *poller) run(ready func(id uint64), fail func(error)) {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			fail(fmt.Errorf("hub: epoll_wait: %w", err))
			return
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			ready(id)
		}
	}
}

// close ends run and releases the epoll instance.
func (p *poller) close() {
	p.once.Do(func() {
		var one = [8]byte{1}
		_, _ = unix.Write(p.wakefd, one[:])
		<-p.done
		unix.Close(p.epfd)
		unix.Close(p.wakefd)
	})
}
