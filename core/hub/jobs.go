package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

// jobMessage builds the job envelope's payload.
func jobMessage(j *store.Job) (wsproto.Job, error) {
	m := wsproto.Job{JobID: j.ID, Type: j.Type, AppID: j.AppID}
	if j.DeploymentID != nil {
		m.DeploymentID = *j.DeploymentID
	}
	if len(j.Payload) > 0 {
		var p wsproto.DeployPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return m, fmt.Errorf("hub: job %d: payload is not a deploy spec: %w", j.ID, err)
		}
		// The job row is the truth: a first deployment's payload is built
		// before its app has an id.
		p.AppID = j.AppID
		m.Payload = &p
	}
	return m, nil
}

// sendJob sends a job to c. cause is push or replay (metrics).
func (h *Hub) sendJob(c *conn, j *store.Job, cause string) {
	m, err := jobMessage(j)
	if err != nil {
		h.log.Error("cannot send job", "job_id", j.ID, "worker_id", c.workerID, "error", err)
		return
	}
	if err := c.send(wsproto.TypeJob, 0, m); err != nil {
		h.log.Debug("job not sent; the worker gets it when it reconnects", "job_id", j.ID, "worker_id", c.workerID, "error", err)
		return
	}
	h.m.pushes.WithLabelValues(cause).Inc()
	h.log.Debug("job sent", "job_id", j.ID, "type", j.Type, "worker_id", c.workerID, "cause", cause)
}

// pushJobs loads the jobs still waiting for their workers, in one query,
// and sends each to its worker's current connection.
func (h *Hub) pushJobs(ctx context.Context, placed []store.AssignedJob) {
	jobs, err := h.st.AssignedJobs(ctx, placed)
	if err != nil {
		h.log.Warn("cannot load jobs to push; workers get them by replay", "jobs", len(placed), "error", err)
		return
	}
	for _, j := range jobs {
		c := h.current(*j.WorkerID)
		if c == nil {
			continue // gone meanwhile: replay on its next connect
		}
		c.invalidateOwnership()
		h.sendJob(c, j, "push")
	}
}

// replay sends the worker's oldest job waiting to start, if any: on
// connect and after each job result, so jobs assigned while the worker was
// away or busy are delivered one after the other. A worker that already
// has the job (pushed earlier) recognizes it by job_id.
func (h *Hub) replay(ctx context.Context, c *conn) {
	j, err := h.st.NextAssignedJob(ctx, c.workerID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		h.log.Warn("cannot replay pending jobs", "worker_id", c.workerID, "error", err)
		return
	}
	c.invalidateOwnership()
	h.sendJob(c, j, "replay")
}
