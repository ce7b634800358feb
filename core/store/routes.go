package store

import (
	"context"
	"fmt"

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

// WorkerRouteRow is one running app of a worker with verified custom
// domains, as the worker's own edge proxy reaches it (the legacy per-worker
// Traefik configuration).
type WorkerRouteRow struct {
	AppID int64
	// Name is the app's name; UUID names its container (wh-<uuid>).
	Name, UUID string
	// Runtime is "podman" or "exec".
	Runtime string
	// Port is the host port the worker reported.
	Port int
	// PortEnv is the app's PORT environment variable, decrypted; "" when
	// it has none.
	PortEnv string
	// Domains are the verified custom domains, sorted (never empty).
	Domains []string
}

// ListWorkerRoutes returns the running apps of worker workerID that listen
// on a port and have at least one verified custom domain, with their
// domains and PORT variable, ordered by name: one query (the seed's
// ListRunningAppsForWorker and ListVerifiedDomainsForApp per app, batched).
func (s *Store) ListWorkerRoutes(ctx context.Context, workerID int64) ([]WorkerRouteRow, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.id, a.name, a.uuid::text, a.runtime, a.port, d.hosts,
			coalesce((SELECT e.value FROM app_env_vars e WHERE e.app_id = a.id AND e.key = 'PORT'), '')
		FROM apps a
		CROSS JOIN LATERAL (SELECT array_agg(d.hostname::text ORDER BY d.hostname) AS hosts
			FROM domains d WHERE d.app_id = a.id AND d.status = 'verified') d
		WHERE a.worker_id = $1 AND a.status = 'running' AND a.deleted_at IS NULL AND a.port > 0
			AND d.hosts IS NOT NULL
		ORDER BY a.name`, workerID)
	if err != nil {
		return nil, mapErr("list worker routes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkerRouteRow, error) {
		var w WorkerRouteRow
		var sealed string
		if err := r.Scan(&w.AppID, &w.Name, &w.UUID, &w.Runtime, &w.Port, &w.Domains, &sealed); err != nil {
			return w, err
		}
		if sealed != "" {
			plain, err := s.cipher.Decrypt(sealed)
			if err != nil {
				return w, fmt.Errorf("decrypt PORT of app %d: %w", w.AppID, err)
			}
			w.PortEnv = plain
		}
		return w, nil
	})
	if err != nil {
		return nil, mapErr("list worker routes", err)
	}
	return out, nil
}
