package userapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// usageRoutes are the routes of the caller's resource usage.
func (s *Service) usageRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/usage", handler: s.userUsage},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/usage", handler: s.appUsage},
	}
}

// Usage ranges.
const (
	// maxUsageRange bounds to - from.
	maxUsageRange = 90 * 24 * time.Hour
	// defaultUsageRange is the range when from is not given: the last day.
	defaultUsageRange = 24 * time.Hour
	// maxAutoPoints: without a bucket, the finest one giving at most this
	// many buckets over the range is taken.
	maxAutoPoints = 1000
)

// usageBuckets are the bucket widths a query may ask for, finest first.
var usageBuckets = []struct {
	name string
	d    time.Duration
}{
	{"5m", 5 * time.Minute}, {"15m", 15 * time.Minute}, {"1h", time.Hour}, {"6h", 6 * time.Hour}, {"1d", 24 * time.Hour},
}

// usageParams are a usage query's range and bucket, read from the query
// string.
type usageParams struct {
	from, to time.Time
	bucket   time.Duration
	name     string // the bucket as asked: 5m, 15m, 1h, 6h, 1d
}

// parseUsageParams reads from, to (RFC 3339; defaults: the last 24 hours
// to now) and bucket (5m, 15m, 1h, 6h, 1d; default: the finest giving at
// most maxAutoPoints buckets).
func (s *Service) parseUsageParams(req bunrouter.Request) (usageParams, error) {
	var p usageParams
	q := req.URL.Query()
	parse := func(name string) (time.Time, bool, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, false, badRequest("%s must be an RFC 3339 time such as 2025-01-02T15:04:05Z", name)
		}
		return t.UTC(), true, nil
	}
	to, hasTo, err := parse("to")
	if err != nil {
		return p, err
	}
	if !hasTo {
		to = s.o.Now().UTC()
	}
	from, hasFrom, err := parse("from")
	if err != nil {
		return p, err
	}
	if !hasFrom {
		from = to.Add(-defaultUsageRange)
	}
	switch {
	case !to.After(from):
		return p, badRequest("to must be after from")
	case to.Sub(from) > maxUsageRange:
		return p, badRequest("the range from..to may span at most 90 days")
	}
	p.from, p.to = from, to
	if v := q.Get("bucket"); v != "" {
		for _, b := range usageBuckets {
			if b.name == v {
				p.bucket, p.name = b.d, b.name
			}
		}
		if p.bucket == 0 {
			return p, badRequest("bucket must be one of 5m, 15m, 1h, 6h, 1d")
		}
		return p, nil
	}
	p.bucket, p.name = usageBuckets[len(usageBuckets)-1].d, usageBuckets[len(usageBuckets)-1].name
	for _, b := range usageBuckets {
		if to.Sub(from)/b.d <= maxAutoPoints {
			p.bucket, p.name = b.d, b.name
			break
		}
	}
	return p, nil
}

// usageView is a usage answer.
type usageView struct {
	// App is the app's UUID (the per-app route).
	App    string    `json:"app,omitempty"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bucket string    `json:"bucket"`
	// PerApp: the points are per app (the user route with per_app=true).
	PerApp bool               `json:"per_app,omitempty"`
	Points []store.UsagePoint `json:"points"`
}

// appUsage serves GET /api/v1/apps/:app/usage?from=&to=&bucket=: the app's
// usage per bucket (buckets without samples left out).
func (s *Service) appUsage(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	a, err := s.ownedApp(ctx, user, req.Param("app"))
	if err != nil {
		return err
	}
	p, err := s.parseUsageParams(req)
	if err != nil {
		return err
	}
	return s.writeUsage(w, req, store.UsageQuery{UserID: user.ID, AppID: a.ID, From: p.from, To: p.to, Bucket: p.bucket},
		usageView{App: a.UUID, From: p.from, To: p.to, Bucket: p.name})
}

// userUsage serves GET /api/v1/usage?from=&to=&bucket=&per_app=: the usage
// of all the caller's apps per bucket, aggregated, or with per_app=true
// one point per app and bucket (each naming its app).
func (s *Service) userUsage(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	p, err := s.parseUsageParams(req)
	if err != nil {
		return err
	}
	perApp := false
	if v := req.URL.Query().Get("per_app"); v != "" {
		if perApp, err = strconv.ParseBool(v); err != nil {
			return badRequest("per_app must be true or false")
		}
	}
	return s.writeUsage(w, req, store.UsageQuery{UserID: userOf(ctx).ID, PerApp: perApp, From: p.from, To: p.to, Bucket: p.bucket},
		usageView{From: p.from, To: p.to, Bucket: p.name, PerApp: perApp})
}

func (s *Service) writeUsage(w http.ResponseWriter, req bunrouter.Request, q store.UsageQuery, v usageView) error {
	points, err := s.o.Store.UsageSeries(req.Context(), q)
	if err != nil {
		return fmt.Errorf("userapi: %w", err)
	}
	if points == nil {
		points = []store.UsagePoint{}
	}
	v.Points = points
	return api.WriteJSON(w, http.StatusOK, v)
}
