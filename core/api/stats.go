package api

import (
	"context"
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/store"
)

// StatsStore aggregates the fleet (store.Store.FleetStats).
type StatsStore interface {
	FleetStats(ctx context.Context) (*store.WorkerStats, error)
}

// StatsRoutes serves GET /v1/stats, the operator's view of the fleet.
type StatsRoutes struct {
	// Secret is server.secret, the Bearer token the endpoint requires
	// (compared in constant time). Empty refuses every request.
	Secret string
	// Store aggregates the workers.
	Store StatsStore
	// Connected returns how many workers hold a connection to this core
	// (hub.Hub.Connected); nil reports 0.
	Connected func() int
}

// Stats is the body of GET /v1/stats.
type Stats struct {
	store.WorkerStats
	// ConnectedWorkers counts the workers connected to the core that
	// answered (with several cores, each holds a share).
	ConnectedWorkers int `json:"connected_workers"`
}

// Register mounts GET /v1/stats.
func (sr *StatsRoutes) Register(m Mux) {
	m.Handle(http.MethodGet, "/v1/stats", sr.stats)
}

func (sr *StatsRoutes) stats(w http.ResponseWriter, req bunrouter.Request) error {
	if sr.Secret == "" || !BearerMatches(req.Request, sr.Secret) {
		return ErrUnauthorized
	}
	st, err := sr.Store.FleetStats(req.Context())
	if err != nil {
		return ErrInternal.WithCause(err)
	}
	out := Stats{WorkerStats: *st}
	if sr.Connected != nil {
		out.ConnectedWorkers = sr.Connected()
	}
	return WriteJSON(w, http.StatusOK, out)
}
