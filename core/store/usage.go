package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// UsageSample is one app's usage over one 5-minute bucket.
type UsageSample struct {
	AppID  int64 `json:"app_id"`
	UserID int64 `json:"user_id"`
	// BucketStart is a multiple of 5 minutes since 2000-01-01 UTC.
	BucketStart time.Time `json:"bucket_start"`
	CPUAvg      float64   `json:"cpu_avg"` // percent
	CPUMax      float64   `json:"cpu_max"`
	MemAvg      int64     `json:"mem_avg"` // bytes
	MemMax      int64     `json:"mem_max"`
	NetAvg      float64   `json:"net_avg"` // Mbit/s
	NetMax      float64   `json:"net_max"`
	// NetBytesDelta is the bytes received and sent during the bucket.
	NetBytesDelta int64 `json:"net_bytes_delta"`
	// Samples is how many readings the averages are over.
	Samples int `json:"samples"`
}

// RunningApp is a running app and its owner.
type RunningApp struct {
	AppID, UserID int64
}

// ListRunningApps returns every running app with its owner, by id.
func (s *Store) ListRunningApps(ctx context.Context) ([]RunningApp, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id FROM apps WHERE status = 'running' AND deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, mapErr("list running apps", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunningApp, error) {
		var a RunningApp
		err := r.Scan(&a.AppID, &a.UserID)
		return a, err
	})
	return out, mapErr("list running apps", err)
}

// UpsertUsageSamples writes samples in one statement. A bucket already
// stored for the app (a flush before a restart, or another core that held
// the app's worker earlier in the bucket) is merged: averages weighted by
// their sample counts, maxima and byte deltas combined.
func (s *Store) UpsertUsageSamples(ctx context.Context, samples []UsageSample) error {
	if len(samples) == 0 {
		return nil
	}
	n := len(samples)
	apps, users := make([]int64, n), make([]int64, n)
	buckets := make([]time.Time, n)
	cpuAvg, cpuMax, netAvg, netMax := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	memAvg, memMax, delta := make([]int64, n), make([]int64, n), make([]int64, n)
	counts := make([]int32, n)
	for i, u := range samples {
		apps[i], users[i], buckets[i] = u.AppID, u.UserID, u.BucketStart
		cpuAvg[i], cpuMax[i], netAvg[i], netMax[i] = u.CPUAvg, u.CPUMax, u.NetAvg, u.NetMax
		memAvg[i], memMax[i], delta[i], counts[i] = u.MemAvg, u.MemMax, u.NetBytesDelta, int32(u.Samples)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO usage_samples AS u (app_id, user_id, bucket_start, cpu_avg, cpu_max, mem_avg, mem_max,
			net_avg, net_max, net_bytes_delta, samples)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::float8[], $5::float8[], $6::bigint[],
			$7::bigint[], $8::float8[], $9::float8[], $10::bigint[], $11::int[])
		ON CONFLICT (app_id, bucket_start) DO UPDATE SET
			cpu_avg = (u.cpu_avg * u.samples + EXCLUDED.cpu_avg * EXCLUDED.samples) / greatest(u.samples + EXCLUDED.samples, 1),
			cpu_max = greatest(u.cpu_max, EXCLUDED.cpu_max),
			mem_avg = ((u.mem_avg::numeric * u.samples + EXCLUDED.mem_avg::numeric * EXCLUDED.samples) / greatest(u.samples + EXCLUDED.samples, 1))::bigint,
			mem_max = greatest(u.mem_max, EXCLUDED.mem_max),
			net_avg = (u.net_avg * u.samples + EXCLUDED.net_avg * EXCLUDED.samples) / greatest(u.samples + EXCLUDED.samples, 1),
			net_max = greatest(u.net_max, EXCLUDED.net_max),
			net_bytes_delta = u.net_bytes_delta + EXCLUDED.net_bytes_delta,
			samples = u.samples + EXCLUDED.samples`,
		apps, users, buckets, cpuAvg, cpuMax, memAvg, memMax, netAvg, netMax, delta, counts)
	return mapErr("upsert usage samples", err)
}

// ListUsageSamples returns an app's buckets in [from, to), oldest first.
func (s *Store) ListUsageSamples(ctx context.Context, appID int64, from, to time.Time) ([]UsageSample, error) {
	rows, err := s.pool.Query(ctx, `SELECT app_id, user_id, bucket_start, cpu_avg, cpu_max, mem_avg, mem_max, net_avg, net_max,
			net_bytes_delta, samples
		FROM usage_samples WHERE app_id = $1 AND bucket_start >= $2 AND bucket_start < $3 ORDER BY bucket_start`, appID, from, to)
	if err != nil {
		return nil, mapErr("list usage samples", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageSample, error) {
		var u UsageSample
		err := r.Scan(&u.AppID, &u.UserID, &u.BucketStart, &u.CPUAvg, &u.CPUMax, &u.MemAvg, &u.MemMax, &u.NetAvg, &u.NetMax,
			&u.NetBytesDelta, &u.Samples)
		u.BucketStart = u.BucketStart.UTC()
		return u, err
	})
	return out, mapErr("list usage samples", err)
}

// PruneUsageSamples deletes the buckets that started before before, in
// batches, and returns how many went.
func (s *Store) PruneUsageSamples(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
			DELETE FROM usage_samples WHERE (app_id, bucket_start) IN (
				SELECT app_id, bucket_start FROM usage_samples WHERE bucket_start < $1 LIMIT $2)`, before, pruneBatch)
		if err != nil {
			return total, mapErr("prune usage samples", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
