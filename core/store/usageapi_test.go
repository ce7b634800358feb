package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestUsageSeriesAggregates(t *testing.T) {
	f := newFixture(t)
	other := f.mustUser(t, "eve@example.com")
	app2 := f.mustApp(t, f.user.ID, "second-app")
	evesApp := f.mustApp(t, other.ID, "eves-app")
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	s := func(app *store.App, min int, cpuAvg, cpuMax float64, memAvg, memMax int64, net float64, delta int64, n int) store.UsageSample {
		return store.UsageSample{AppID: app.ID, UserID: app.UserID, BucketStart: at(min), CPUAvg: cpuAvg, CPUMax: cpuMax,
			MemAvg: memAvg, MemMax: memMax, NetAvg: net, NetMax: net * 2, NetBytesDelta: delta, Samples: n}
	}
	if err := f.s.UpsertUsageSamples(f.ctx, []store.UsageSample{
		s(f.app, 0, 10, 20, 100, 150, 1, 1000, 1),
		s(f.app, 5, 40, 90, 400, 500, 4, 2000, 3),
		s(f.app, 15, 20, 25, 200, 200, 2, 500, 2),
		s(f.app, 60, 50, 60, 1000, 1000, 5, 7, 5), // the next hour
		s(app2, 5, 80, 100, 1000, 2000, 8, 10000, 1),
		s(evesApp, 5, 99, 99, 9999, 9999, 9, 99999, 9),
		s(f.app, -5, 1, 1, 1, 1, 1, 1, 1),  // before the range
		s(f.app, 120, 1, 1, 1, 1, 1, 1, 1), // at its end: excluded
	}); err != nil {
		t.Fatal(err)
	}
	q := store.UsageQuery{UserID: f.user.ID, From: at(0), To: at(120)}
	pt := func(min int, cpuAvg, cpuMax float64, memAvg, memMax int64, netAvg, netMax float64, bytes, n int64) store.UsagePoint {
		return store.UsagePoint{BucketStart: at(min), CPUAvg: cpuAvg, CPUMax: cpuMax, MemAvg: memAvg, MemMax: memMax,
			NetAvg: netAvg, NetMax: netMax, NetBytes: bytes, Samples: n}
	}
	for _, tt := range []struct {
		name string
		q    func(q store.UsageQuery) store.UsageQuery
		want []store.UsagePoint
	}{
		{"one app, native", func(q store.UsageQuery) store.UsageQuery { q.AppID, q.Bucket = f.app.ID, 5*time.Minute; return q }, []store.UsagePoint{
			pt(0, 10, 20, 100, 150, 1, 2, 1000, 1),
			pt(5, 40, 90, 400, 500, 4, 8, 2000, 3),
			pt(15, 20, 25, 200, 200, 2, 4, 500, 2),
			pt(60, 50, 60, 1000, 1000, 5, 10, 7, 5),
		}},
		// (10·1 + 40·3 + 20·2)/6 = 28.333…, mem (100 + 1200 + 400)/6 = 283.33 → 283, net (1 + 12 + 4)/6.
		{"one app, hourly", func(q store.UsageQuery) store.UsageQuery { q.AppID, q.Bucket = f.app.ID, time.Hour; return q }, []store.UsagePoint{
			pt(0, 170.0/6, 90, 283, 500, 17.0/6, 8, 3500, 6),
			pt(60, 50, 60, 1000, 1000, 5, 10, 7, 5),
		}},
		// The 10:00-10:15 bucket holds 10:00 and 10:05 of app 1 and 10:05
		// of app 2: cpu (10 + 120 + 80)/5 = 42, mem (100 + 1200 + 1000)/5 = 460.
		{"all apps, 15 minutes", func(q store.UsageQuery) store.UsageQuery { q.Bucket = 15 * time.Minute; return q }, []store.UsagePoint{
			pt(0, 42, 100, 460, 2000, 4.2, 16, 13000, 5),
			pt(15, 20, 25, 200, 200, 2, 4, 500, 2),
			pt(60, 50, 60, 1000, 1000, 5, 10, 7, 5),
		}},
		{"all apps, a day", func(q store.UsageQuery) store.UsageQuery { q.Bucket = 24 * time.Hour; return q }, []store.UsagePoint{
			{BucketStart: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), CPUAvg: (10 + 120 + 40 + 250 + 80) / 12.0, CPUMax: 100,
				MemAvg: 642, MemMax: 2000, NetAvg: (1 + 12 + 4 + 25 + 8) / 12.0, NetMax: 16, NetBytes: 13507, Samples: 12},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.s.UsageSeries(f.ctx, tt.q(q))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d points %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if !approx(got[i], tt.want[i]) {
					t.Errorf("point %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}

	per, err := f.s.UsageSeries(f.ctx, store.UsageQuery{UserID: f.user.ID, PerApp: true, From: at(0), To: at(30), Bucket: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != 3 || per[0].AppID != f.app.ID || per[0].AppUUID != f.app.UUID || per[0].AppName != f.app.Name ||
		per[0].Samples != 4 || per[1].AppID != app2.ID || per[1].AppName != app2.Name || per[1].CPUAvg != 80 ||
		per[2].AppID != f.app.ID || !per[2].BucketStart.Equal(at(15)) {
		t.Errorf("per app %+v", per)
	}

	// Eve sees nothing of ada's, even naming ada's app.
	if got, err := f.s.UsageSeries(f.ctx, store.UsageQuery{UserID: other.ID, AppID: f.app.ID, From: at(0), To: at(120), Bucket: time.Hour}); err != nil || len(got) != 0 {
		t.Errorf("eve on ada's app: %+v, %v", got, err)
	}
	for _, bad := range []store.UsageQuery{
		{UserID: f.user.ID, From: at(0), To: at(60), Bucket: 7 * time.Minute},
		{UserID: f.user.ID, From: at(0), To: at(60)},
		{UserID: f.user.ID, From: at(60), To: at(60), Bucket: time.Hour},
	} {
		if _, err := f.s.UsageSeries(f.ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}

// approx compares points, the float averages to 1e-9.
func approx(a, b store.UsagePoint) bool {
	near := func(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 }
	return a.BucketStart.Equal(b.BucketStart) && a.AppID == b.AppID && near(a.CPUAvg, b.CPUAvg) && a.CPUMax == b.CPUMax &&
		a.MemAvg == b.MemAvg && a.MemMax == b.MemMax && near(a.NetAvg, b.NetAvg) && a.NetMax == b.NetMax &&
		a.NetBytes == b.NetBytes && a.Samples == b.Samples
}
