//go:build !linux

package hub

import "errors"

// poller is unavailable off Linux: every connection gets a reader
// goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("hub: epoll is Linux-only") }

func (p *poller) add(*conn) error               { return errors.New("hub: no poller") }
func (p *poller) rearm(*conn) error             { return errors.New("hub: no poller") }
func (p *poller) remove(*conn)                  {}
func (p *poller) run(func(uint64), func(error)) {}
func (p *poller) close()                        {}
