package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// RouteRow is one running app as the edge proxy must reach it.
type RouteRow struct {
	AppID int64
	// Subdomain is the app's slug: its host is Subdomain.<platform domain>.
	Subdomain string
	// Port is the port the app listens on as its worker reported it; 0 when
	// not reported.
	Port int
	// WorkerAddress is the private address the worker registered (never its
	// informational ip).
	WorkerAddress string
	// Domains are the app's verified custom domains, sorted.
	Domains []string
}

// ListRoutes returns every running, not deleted app on a worker that has
// an address, with its verified custom domains, ordered by subdomain: one
// query for the whole table (the seed's ListRunningAppsWithWorkers and
// ListVerifiedDomainsByAppIDs in one round trip).
func (s *Store) ListRoutes(ctx context.Context) ([]RouteRow, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.id, a.subdomain, a.port, w.address,
			coalesce((SELECT array_agg(d.hostname::text ORDER BY d.hostname)
				FROM domains d WHERE d.app_id = a.id AND d.status = 'verified'), '{}')
		FROM apps a JOIN workers w ON w.id = a.worker_id
		WHERE a.status = 'running' AND a.deleted_at IS NULL AND w.address <> ''
		ORDER BY a.subdomain`)
	if err != nil {
		return nil, mapErr("list routes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RouteRow, error) {
		var rr RouteRow
		err := r.Scan(&rr.AppID, &rr.Subdomain, &rr.Port, &rr.WorkerAddress, &rr.Domains)
		return rr, err
	})
	if err != nil {
		return nil, mapErr("list routes", err)
	}
	return out, nil
}
