package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/testutil"
)

func TestListRoutes(t *testing.T) {
	f := newFixture(t)
	// f.worker has address 10.0.0.1; w2 has none.
	w2 := f.mustWorker(t, "w2", 1000, 1<<30)
	f.exec(t, `UPDATE workers SET address = '' WHERE id = $1`, w2.ID)
	run := func(name string, worker int64, port int) int64 {
		a := f.mustApp(t, f.user.ID, name)
		f.exec(t, `UPDATE apps SET status = 'running', worker_id = $2, port = $3 WHERE id = $1`, a.ID, worker, port)
		return a.ID
	}
	zeta := run("zeta-app", f.worker.ID, 3000)
	alpha := run("alpha-app", f.worker.ID, 0)
	run("no-address", w2.ID, 3000)
	stopped := run("stopped-app", f.worker.ID, 3000)
	f.exec(t, `UPDATE apps SET status = 'stopped' WHERE id = $1`, stopped)
	gone := run("deleted-app", f.worker.ID, 3000)
	f.exec(t, `UPDATE apps SET status = 'deleted', deleted_at = now() WHERE id = $1`, gone)
	for _, d := range []struct {
		host, status string
	}{{"www.zeta.example", "verified"}, {"a.zeta.example", "verified"}, {"pending.zeta.example", "pending"}, {"failed.zeta.example", "failed"}} {
		verified := "NULL"
		if d.status == "verified" {
			verified = "now()"
		}
		f.exec(t, `INSERT INTO domains (app_id, user_id, hostname, verification_token, status, verified_at)
			VALUES ($1, $2, $3, 't', $4, `+verified+`)`, zeta, f.user.ID, d.host, d.status)
	}
	got, err := f.s.ListRoutes(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RouteRow{
		{AppID: alpha, Subdomain: "alpha-app", Port: 0, WorkerAddress: "10.0.0.1", Domains: []string{}},
		{AppID: zeta, Subdomain: "zeta-app", Port: 3000, WorkerAddress: "10.0.0.1", Domains: []string{"a.zeta.example", "www.zeta.example"}},
	}
	if !slices.EqualFunc(got, want, func(a, b store.RouteRow) bool {
		return a.AppID == b.AppID && a.Subdomain == b.Subdomain && a.Port == b.Port &&
			a.WorkerAddress == b.WorkerAddress && slices.Equal(a.Domains, b.Domains)
	}) {
		t.Fatalf("routes =\n%+v\nwant\n%+v", got, want)
	}
}

func TestListWorkerRoutes(t *testing.T) {
	f := newFixture(t)
	w2 := f.mustWorker(t, "w2", 1000, 1<<30)
	run := func(name, runtime string, worker int64, port int, domains ...string) *store.App {
		a := f.mustApp(t, f.user.ID, name)
		f.exec(t, `UPDATE apps SET status = 'running', runtime = $2, worker_id = $3, port = $4 WHERE id = $1`, a.ID, runtime, worker, port)
		for _, d := range domains {
			f.exec(t, `INSERT INTO domains (app_id, user_id, hostname, verification_token, status, verified_at)
				VALUES ($1, $2, $3, 't', 'verified', now())`, a.ID, f.user.ID, d)
		}
		return a
	}
	web := run("web-app1", "podman", f.worker.ID, 30001, "www.web.example", "web.example")
	if err := f.s.SetAppEnvVar(f.ctx, web.ID, "PORT", "3000"); err != nil {
		t.Fatal(err)
	}
	bin := run("bin-app1", "exec", f.worker.ID, 30002, "bin.example")
	run("no-domain", "podman", f.worker.ID, 30003)
	run("no-portx", "podman", f.worker.ID, 0, "noport.example")
	run("elsewhere", "podman", w2.ID, 30004, "elsewhere.example")
	pending := run("pending-d", "podman", f.worker.ID, 30005)
	f.exec(t, `INSERT INTO domains (app_id, user_id, hostname, verification_token) VALUES ($1, $2, 'pending.example', 't')`, pending.ID, f.user.ID)

	got, err := f.s.ListWorkerRoutes(f.ctx, f.worker.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.WorkerRouteRow{
		{AppID: bin.ID, Name: "bin-app1", UUID: bin.UUID, Runtime: "exec", Port: 30002, Domains: []string{"bin.example"}},
		{AppID: web.ID, Name: "web-app1", UUID: web.UUID, Runtime: "podman", Port: 30001, PortEnv: "3000", Domains: []string{"web.example", "www.web.example"}},
	}
	if !slices.EqualFunc(got, want, func(a, b store.WorkerRouteRow) bool {
		return a.AppID == b.AppID && a.Name == b.Name && a.UUID == b.UUID && a.Runtime == b.Runtime &&
			a.Port == b.Port && a.PortEnv == b.PortEnv && slices.Equal(a.Domains, b.Domains)
	}) {
		t.Fatalf("worker routes =\n%+v\nwant\n%+v", got, want)
	}
}

// Every change that can alter the route table notifies ChannelRoutes at
// commit; unrelated updates do not.
func TestRouteChangesNotify(t *testing.T) {
	f := newFixture(t)
	l := f.s.NewListener(testutil.Logger(t))
	got := make(chan struct{}, 16)
	l.Handle(store.ChannelRoutes, func(string) { got <- struct{}{} })
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 10*time.Second, "listener up", l.Listening)
	f.exec(t, `INSERT INTO domains (app_id, user_id, hostname, verification_token) VALUES ($1, $2, 'x.example.com', 't')`, f.app.ID, f.user.ID)
	<-got // the insert of a domain
	cases := []struct {
		name, sql string
		args      []any
		notifies  bool
	}{
		{"app started", `UPDATE apps SET status = 'running', worker_id = $1 WHERE id = $2`, []any{f.worker.ID, f.app.ID}, true},
		{"app port reported", `UPDATE apps SET port = 3000 WHERE id = $1`, []any{f.app.ID}, true},
		{"domain verified", `UPDATE domains SET status = 'verified', verified_at = now() WHERE app_id = $1`, []any{f.app.ID}, true},
		{"domain removed", `DELETE FROM domains WHERE app_id = $1`, []any{f.app.ID}, true},
		{"worker address changed", `UPDATE workers SET address = '10.0.0.9' WHERE id = $1`, []any{f.worker.ID}, true},
		{"worker heartbeat", `UPDATE workers SET cpu_percent = 12, last_heartbeat = now() WHERE id = $1`, []any{f.worker.ID}, false},
		{"app restart counter", `UPDATE apps SET restart_count = restart_count + 1 WHERE id = $1`, []any{f.app.ID}, false},
		{"app stopped", `UPDATE apps SET status = 'stopped', worker_id = NULL WHERE id = $1`, []any{f.app.ID}, true},
	}
	for _, c := range cases {
		f.exec(t, c.sql, c.args...)
		select {
		case <-got:
			if !c.notifies {
				t.Errorf("%s notified %s", c.name, store.ChannelRoutes)
			}
		case <-time.After(300 * time.Millisecond):
			if c.notifies {
				t.Errorf("%s did not notify %s", c.name, store.ChannelRoutes)
			}
		}
	}
}
