package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// UsageBucket is the native width of usage_samples' buckets; UsageQuery
// buckets are multiples of it.
const UsageBucket = 5 * time.Minute

// UsageQuery asks UsageSeries for a user's usage over [From, To) in buckets
// of Bucket.
type UsageQuery struct {
	UserID int64
	// AppID keeps one app's samples; 0 takes all the user's apps (deleted
	// ones included: what they used was used).
	AppID int64
	// PerApp returns one series per app instead of their aggregate.
	PerApp bool
	// From and To bound the samples' bucket starts: From ≤ start < To.
	From, To time.Time
	// Bucket is a positive multiple of UsageBucket; buckets start at
	// multiples of it since 2000-01-01 UTC (a day bucket at midnight UTC).
	Bucket time.Duration
}

// UsagePoint is the usage of one bucket (of one app when PerApp). The
// averages are those of the samples' averages weighted by their sample
// counts, the maxima the largest maximum, NetBytes the sum of the byte
// deltas; Samples is the readings they are over.
type UsagePoint struct {
	BucketStart time.Time `json:"bucket_start"`
	// AppID, AppUUID and AppName are the app of a PerApp point, zero
	// otherwise.
	AppID    int64   `json:"app_id,omitempty"`
	AppUUID  string  `json:"app_uuid,omitempty"`
	AppName  string  `json:"app_name,omitempty"`
	CPUAvg   float64 `json:"cpu_avg"` // percent
	CPUMax   float64 `json:"cpu_max"`
	MemAvg   int64   `json:"mem_avg"` // bytes
	MemMax   int64   `json:"mem_max"`
	NetAvg   float64 `json:"net_avg"` // Mbit/s
	NetMax   float64 `json:"net_max"`
	NetBytes int64   `json:"net_bytes"`
	Samples  int64   `json:"samples"`
}

// UsageSeries aggregates the user's usage samples into q.Bucket-wide
// buckets in one query, oldest first (then by app). Buckets without samples
// are left out. A bucket that is not a positive multiple of UsageBucket, or
// To not after From, is ErrInvalid.
func (s *Store) UsageSeries(ctx context.Context, q UsageQuery) ([]UsagePoint, error) {
	if q.Bucket <= 0 || q.Bucket%UsageBucket != 0 {
		return nil, fmt.Errorf("store: usage series: bucket %s is not a positive multiple of %s: %w", q.Bucket, UsageBucket, ErrInvalid)
	}
	if !q.To.After(q.From) {
		return nil, fmt.Errorf("store: usage series: the range ends before it starts: %w", ErrInvalid)
	}
	// When a bucket's sample counts are all 0 the weighted averages fall
	// back to plain ones.
	rows, err := s.pool.Query(ctx, `
		SELECT u.bin, u.app, coalesce(a.uuid::text, ''), coalesce(a.name, ''),
			u.cpu_avg, u.cpu_max, u.mem_avg, u.mem_max, u.net_avg, u.net_max, u.net_bytes, u.samples
		FROM (
			SELECT date_bin(make_interval(secs => $5), bucket_start, timestamptz '2000-01-01 00:00:00+00') AS bin,
				CASE WHEN $6 THEN app_id ELSE 0 END AS app,
				coalesce(sum(cpu_avg * samples) / nullif(sum(samples), 0), avg(cpu_avg)) AS cpu_avg,
				max(cpu_max) AS cpu_max,
				round(coalesce(sum(mem_avg::numeric * samples) / nullif(sum(samples), 0), avg(mem_avg)))::bigint AS mem_avg,
				max(mem_max) AS mem_max,
				coalesce(sum(net_avg * samples) / nullif(sum(samples), 0), avg(net_avg)) AS net_avg,
				max(net_max) AS net_max,
				sum(net_bytes_delta)::bigint AS net_bytes,
				sum(samples)::bigint AS samples
			FROM usage_samples
			WHERE user_id = $1 AND ($2::bigint = 0 OR app_id = $2) AND bucket_start >= $3 AND bucket_start < $4
			GROUP BY bin, app
		) u
		LEFT JOIN apps a ON a.id = u.app
		ORDER BY u.bin, u.app`, q.UserID, q.AppID, q.From, q.To, q.Bucket.Seconds(), q.PerApp)
	if err != nil {
		return nil, mapErr("usage series", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsagePoint, error) {
		var p UsagePoint
		err := r.Scan(&p.BucketStart, &p.AppID, &p.AppUUID, &p.AppName, &p.CPUAvg, &p.CPUMax, &p.MemAvg, &p.MemMax, &p.NetAvg, &p.NetMax,
			&p.NetBytes, &p.Samples)
		p.BucketStart = p.BucketStart.UTC()
		return p, err
	})
	return out, mapErr("usage series", err)
}
