package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// Send marshals payload with encoding/json (it must be a JSON object, or
// nil for none), numbers it (Seq from 1 on each connection), stamps it (TS
// in Unix ms), seals it for wsproto.WorkerToCore and writes it. It is safe
// for concurrent use: messages are written whole, one at a time, in Seq
// order.
//
// When the client is not connected Send waits for a connection until ctx
// ends (then it returns ctx.Err()) or Run returns (ErrClosed). A write
// that fails (or takes longer than WriteWait) drops the connection and is
// returned: the message may or may not have reached the core, and is not
// retried.
func (c *Client) Send(ctx context.Context, msgType string, payload any) error {
	if msgType == "" || len(msgType) > 64 {
		return fmt.Errorf("worker: message type %q must be 1 to 64 bytes", msgType)
	}
	var p []byte
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("worker: send %s: %w", msgType, err)
		}
		switch {
		case string(b) == "null":
		case b[0] != '{':
			return fmt.Errorf("worker: send %s: the payload must marshal to a JSON object", msgType)
		default:
			p = b
		}
	}
	if len(p)+len(msgType)+envelopeOverhead > wsproto.MaxFrameSize {
		return fmt.Errorf("%w: %s payload of %d bytes", ErrTooLarge, msgType, len(p))
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.mu.Lock()
		cn, ready, stopped := c.cur, c.ready, c.stopped
		c.mu.Unlock()
		if stopped {
			return ErrClosed
		}
		if cn != nil {
			err := cn.writeMessage(msgType, 0, p)
			if !errors.Is(err, errConnClosed) {
				return err
			}
			continue // closed under us: close has detached it, wait for the next
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SendHeartbeat sends a heartbeat (see HeartbeatInterval for how often).
func (c *Client) SendHeartbeat(ctx context.Context, m wsproto.Heartbeat) error {
	return c.Send(ctx, wsproto.TypeHeartbeat, &m)
}

// SendJobStatus reports progress on a job.
func (c *Client) SendJobStatus(ctx context.Context, m wsproto.JobStatus) error {
	return c.Send(ctx, wsproto.TypeJobStatus, &m)
}

// SendJobResult finishes a job; the core then replays the next assigned
// job, if any.
func (c *Client) SendJobResult(ctx context.Context, m wsproto.JobResult) error {
	return c.Send(ctx, wsproto.TypeJobResult, &m)
}

// SendAppStats sends live statistics of this worker's apps.
func (c *Client) SendAppStats(ctx context.Context, m wsproto.AppStats) error {
	return c.Send(ctx, wsproto.TypeAppStats, &m)
}

// SendAppStatus reports a change of an app's process state.
func (c *Client) SendAppStatus(ctx context.Context, m wsproto.AppStatus) error {
	return c.Send(ctx, wsproto.TypeAppStatus, &m)
}

// SendViolation reports an app breaking one of its limits.
func (c *Client) SendViolation(ctx context.Context, m wsproto.Violation) error {
	return c.Send(ctx, wsproto.TypeViolation, &m)
}

// SendRuntimeLog sends app output lines (at most
// wsproto.MaxLogLinesPerMessage, within the core's log rate).
func (c *Client) SendRuntimeLog(ctx context.Context, m wsproto.RuntimeLog) error {
	return c.Send(ctx, wsproto.TypeRuntimeLog, &m)
}

// SendBuildLog sends a deployment's build output so far (the core keeps
// the latest; cap it to wsproto.MaxBuildLog, see CapBuildLog).
func (c *Client) SendBuildLog(ctx context.Context, m wsproto.BuildLog) error {
	return c.Send(ctx, wsproto.TypeBuildLog, &m)
}

// CapBuildLog caps a build log to wsproto.MaxBuildLog bytes the way the
// core does: the first and last halves, joined by
// wsproto.TruncationMarker (the cuts move back to UTF-8 character
// boundaries). Shorter logs are returned unchanged.
func CapBuildLog(s string) string {
	if len(s) <= wsproto.MaxBuildLog {
		return s
	}
	half := wsproto.MaxBuildLog / 2
	head, tail := half, len(s)-half
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + wsproto.TruncationMarker + s[tail:]
}
