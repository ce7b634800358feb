package httpplans

import (
	"context"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/sdk/plans"
)

// FuzzParseDocument: no document makes ParseDocument panic, and every
// catalogue it accepts is one the core accepts (ids valid and unique, the
// default plan present, no negative value) with every plan above 0 in cpu,
// memory and disk.
func FuzzParseDocument(f *testing.F) {
	for _, s := range []string{seedJSON, oneJSON("free", 1), `{"plans": []}`, `{"plans": [{"id": "free", "cpu": 1e400}]}`,
		`{"plans": [{"id": "a", "max_apps": 0, "cpu": 0.001, "memory": 1, "disk": "1B"}], "default_plan": "a"}`, `[]`, `"x"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		cat, err := ParseDocument(doc)
		if err != nil {
			return
		}
		ids := map[string]bool{}
		for _, p := range cat.GetPlans() {
			if !plans.IDPattern.MatchString(p.GetId()) || ids[p.GetId()] {
				t.Fatalf("plan id %q accepted (seen before: %v)", p.GetId(), ids[p.GetId()])
			}
			ids[p.GetId()] = true
			if p.GetMaxApps() < 0 || p.GetCpu() <= 0 || p.GetMemory() <= 0 || p.GetDisk() <= 0 || p.GetBandwidth() < 0 {
				t.Fatalf("plan %v accepted", p)
			}
		}
		if len(ids) == 0 || !ids[cat.GetDefaultPlan()] {
			t.Fatalf("catalogue %v accepted", cat)
		}
	})
}

func TestSleep(t *testing.T) {
	if !sleep(context.Background(), time.Millisecond) {
		t.Error("sleep ended early")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sleep(ctx, time.Hour) {
		t.Error("sleep went on after its context ended")
	}
}
