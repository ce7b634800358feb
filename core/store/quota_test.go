package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

// The plan's max_apps holds for sequential creations, counts live apps
// only, and holds under concurrent creations for the same user.
func TestCreateAppMaxApps(t *testing.T) {
	f := newFixture(t)
	u := f.mustUser(t, "quota@example.com")
	create := func(name string, max int64) error {
		_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: u.ID, Name: name, MaxApps: max})
		return err
	}
	for _, name := range []string{"app-one", "app-two"} {
		if err := create(name, 2); err != nil {
			t.Fatal(err)
		}
	}
	err := create("app-three", 2)
	if !errors.Is(err, store.ErrQuota) || err.Error() != "store: create app: the plan allows 2 apps: plan limit reached" {
		t.Fatalf("third app on a 2-app plan: %v", err)
	}
	if err := create("app-three", 0); err != nil {
		t.Fatalf("0 is unlimited: %v", err)
	}
	if _, err := f.s.Pool().Exec(f.ctx, `UPDATE apps SET deleted_at = now(), status = 'deleted' WHERE user_id = $1 AND name IN ('app-one', 'app-two')`, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := create("app-four", 2); err != nil {
		t.Fatalf("deleted apps still counted: %v", err)
	}
	if _, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: 1 << 40, Name: "app-ghost", MaxApps: 2}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}

	// Twelve creations at once on a 3-app plan: exactly three succeed.
	racer := f.mustUser(t, "race@example.com")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, quota := 0, 0
	for i := range 12 {
		wg.Go(func() {
			_, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: racer.ID, Name: fmt.Sprintf("race-app-%d", i), MaxApps: 3})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrQuota):
				quota++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 3 || quota != 9 {
		t.Fatalf("%d created, %d refused; want 3 and 9", ok, quota)
	}
	if n, err := f.s.CountUserApps(f.ctx, racer.ID); err != nil || n != 3 {
		t.Fatalf("count %d, %v", n, err)
	}
}
