package cliclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// TruncationMarker is what joins the head and the tail of a capped build
// log.
const TruncationMarker = wsproto.TruncationMarker

// anchorLen is how much of the end of what was already seen LogTail looks
// for in a capped log.
const anchorLen = 512

// LogTail turns successive snapshots of a build log — the whole log so
// far each time, growing, and once long capped to its head and tail around
// TruncationMarker — into what each snapshot adds. The zero value is ready.
type LogTail struct {
	last string
}

// Next returns the part of full not returned before. gap reports that
// some of the log between the two was lost to the cap: text is then the
// snapshot's whole tail, to be shown after a truncation mark.
func (t *LogTail) Next(full string) (text string, gap bool) {
	if strings.HasPrefix(full, t.last) {
		text = full[len(t.last):]
		t.last = full
		return text, false
	}
	// The log was capped since (or its tail moved on): find the end of
	// what was seen in the new tail.
	seen := t.last
	if i := strings.Index(seen, TruncationMarker); i >= 0 {
		seen = seen[i+len(TruncationMarker):]
	}
	anchor := seen[max(0, len(seen)-anchorLen):]
	start := 0
	if i := strings.Index(full, TruncationMarker); i >= 0 {
		start = i + len(TruncationMarker)
	}
	t.last = full
	if anchor != "" {
		if j := strings.Index(full[start:], anchor); j >= 0 {
			return full[start+j+len(anchor):], false
		}
	}
	return full[start:], true
}

// WatchOptions tune WatchDeployment and WatchJob.
type WatchOptions struct {
	// Every is the polling interval; 0 means one second.
	Every time.Duration
	// Retries is how many failures in a row that may pass (network
	// errors, 5xx, 429) are retried before giving up; 0 means 10.
	Retries int
	// OnStatus is called with the first answer and each status change.
	OnStatus func(status string)
	// OnLog gets what each answer adds to the build log (deployments
	// only), as LogTail.Next returns it.
	OnLog func(text string, gap bool)
}

func (o WatchOptions) every() time.Duration {
	if o.Every > 0 {
		return o.Every
	}
	return time.Second
}

func (o WatchOptions) retries() int {
	if o.Retries > 0 {
		return o.Retries
	}
	return 10
}

// WatchDeployment polls the deployment until it reaches a final status
// (succeeded, failed or cancelled) and returns it. It reports status
// changes and the build log as it grows through o. It ends early with
// ctx's error or an error the API answered.
func (c *Client) WatchDeployment(ctx context.Context, id ID, o WatchOptions) (*Deployment, error) {
	var (
		tail   LogTail
		status string
	)
	var final *Deployment
	err := poll(ctx, o, func() (bool, error) {
		d, err := c.GetDeployment(ctx, id)
		if err != nil {
			return false, err
		}
		if text, gap := tail.Next(d.BuildLogs); (text != "" || gap) && o.OnLog != nil {
			o.OnLog(text, gap)
		}
		if d.Status != status {
			status = d.Status
			if o.OnStatus != nil {
				o.OnStatus(status)
			}
		}
		final = d
		return d.Done(), nil
	})
	if err != nil {
		return nil, err
	}
	return final, nil
}

// WatchJob polls the job until it reaches a final status (completed,
// failed or cancelled) and returns it, reporting status changes through
// o.OnStatus.
func (c *Client) WatchJob(ctx context.Context, id ID, o WatchOptions) (*Job, error) {
	var (
		status string
		final  *Job
	)
	err := poll(ctx, o, func() (bool, error) {
		j, err := c.GetJob(ctx, id)
		if err != nil {
			return false, err
		}
		if j.Status != status {
			status = j.Status
			if o.OnStatus != nil {
				o.OnStatus(status)
			}
		}
		final = j
		return j.Done(), nil
	})
	if err != nil {
		return nil, err
	}
	return final, nil
}

// poll calls check at once and then every o.every() until it reports done
// or fails for good: an API answer other than 5xx or 429, more than
// o.retries() transient failures in a row, or the end of ctx.
func poll(ctx context.Context, o WatchOptions, check func() (bool, error)) error {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		done, err := check()
		switch {
		case err == nil:
			failures = 0
			if done {
				return nil
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case !transient(err):
			return err
		default:
			failures++
			if failures > o.retries() {
				return err
			}
		}
		timer.Reset(o.every())
	}
}

// transient reports whether a failed request is worth retrying.
func transient(err error) bool {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return true
}
