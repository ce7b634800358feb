package store_test

import (
	"context"
	"os"
	"testing"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixture holds a store and a few rows most tests need.
type fixture struct {
	s      *store.Store
	ctx    context.Context
	user   *store.User
	worker *store.Worker
	app    *store.App
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{s: storetest.New(t), ctx: context.Background()}
	f.user = f.mustUser(t, "ada@example.com")
	f.worker = f.mustWorker(t, "w1", 4000, 8<<30)
	f.app = f.mustApp(t, f.user.ID, "hello-world")
	return f
}

func (f *fixture) mustUser(t *testing.T, email string) *store.User {
	t.Helper()
	u, err := f.s.CreateUser(f.ctx, store.NewUser{Email: email, Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mustWorker creates an online worker with the given capacity.
func (f *fixture) mustWorker(t *testing.T, name string, cpu, mem int64) *store.Worker {
	t.Helper()
	c := storetest.Cipher(t)
	wc, err := c.NewWorkerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.s.CreateWorker(f.ctx, store.NewWorker{Name: name, Creds: store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey}})
	if err != nil {
		t.Fatal(err)
	}
	w, err = f.s.RegisterWorker(f.ctx, w.ID, store.Registration{Address: "10.0.0.1", CapacityCPU: cpu, CapacityMemory: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetWorkerStatus(f.ctx, w.ID, "online"); err != nil {
		t.Fatal(err)
	}
	return w
}

func (f *fixture) mustApp(t *testing.T, userID int64, name string) *store.App {
	t.Helper()
	a, err := f.s.CreateApp(f.ctx, store.NewApp{UserID: userID, Name: name, GitRepo: "https://git.example/x.git", GitBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exec runs raw SQL and fails the test on error.
func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.s.Pool().Exec(f.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// count returns the number of rows of a query like "SELECT count(*) …".
func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.s.Pool().QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// assertCapacity fails unless every worker's counters equal its reservations.
func (f *fixture) assertCapacity(t *testing.T) {
	t.Helper()
	bad, err := store.CheckCapacity(f.ctx, f.s.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("capacity invariant broken: %+v", bad)
	}
}
