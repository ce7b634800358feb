package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
)

func TestUsers(t *testing.T) {
	f := newFixture(t)
	u, err := f.s.FindUserByEmail(f.ctx, "  ADA@Example.com ")
	if err != nil || u.ID != f.user.ID || u.Plan != "free" {
		t.Fatalf("FindUserByEmail = %+v, %v", u, err)
	}
	// A Google sign-in with the same email links the existing account.
	g, err := f.s.UpsertGoogleUser(f.ctx, "g-123", "ada@example.com", "Ada L.", "https://a/x.png")
	if err != nil || g.ID != f.user.ID || g.Name != "Ada L." {
		t.Fatalf("UpsertGoogleUser (link) = %+v, %v", g, err)
	}
	// A later sign-in matches on google_id even when the email changed.
	g2, err := f.s.UpsertGoogleUser(f.ctx, "g-123", "ada@new.example", "Ada", "")
	if err != nil || g2.ID != f.user.ID || g2.Email != "ada@new.example" {
		t.Fatalf("UpsertGoogleUser (by id) = %+v, %v", g2, err)
	}
	n, err := f.s.UpsertGoogleUser(f.ctx, "g-456", "new@example.com", "New", "")
	if err != nil || n.ID == f.user.ID {
		t.Fatalf("UpsertGoogleUser (new) = %+v, %v", n, err)
	}
	if err := f.s.SetUserPlan(f.ctx, n.ID, "pro"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetUserPlan(f.ctx, 99999, "pro"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetUserPlan on a missing user = %v", err)
	}
	if _, err := f.s.FindUserByID(f.ctx, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindUserByID missing = %v", err)
	}
}

func TestWorkers(t *testing.T) {
	f := newFixture(t)
	c := storetest.Cipher(t)
	wc, _ := c.NewWorkerCredentials()
	w, err := f.s.CreateWorker(f.ctx, store.NewWorker{Name: "edge-2", Zone: "eu-1", Creds: store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != "offline" || w.Zone != "eu-1" || w.KeyID != wc.Kid {
		t.Fatalf("new worker = %+v", w)
	}
	wa, err := f.s.FindWorkerAuthByKeyHash(f.ctx, wc.KeyHash)
	if err != nil || wa.ID != w.ID {
		t.Fatalf("FindWorkerAuthByKeyHash = %+v, %v", wa, err)
	}
	key, err := c.OpenEnvelopeKey(wa.SealedEnvelopeKey)
	if err != nil || len(key) != 32 {
		t.Fatalf("envelope key: %v", err)
	}

	// Rotation replaces hash and kid; the old hash no longer resolves.
	wc2, _ := c.NewWorkerCredentials()
	w2, err := f.s.RotateWorkerKey(f.ctx, w.ID, store.WorkerCredentials{APIKeyHash: wc2.KeyHash, KeyID: wc2.Kid, SealedEnvelopeKey: wc2.SealedEnvelopeKey})
	if err != nil || w2.KeyID != wc2.Kid || !w2.KeyRotatedAt.After(w.KeyRotatedAt) && !w2.KeyRotatedAt.Equal(w.KeyRotatedAt) {
		t.Fatalf("RotateWorkerKey = %+v, %v", w2, err)
	}
	if _, err := f.s.FindWorkerAuthByKeyHash(f.ctx, wc.KeyHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old key hash still resolves: %v", err)
	}

	reg, err := f.s.RegisterWorker(f.ctx, w.ID, store.Registration{IP: "203.0.113.9", Address: "10.8.0.2",
		CapacityCPU: 2000, CapacityMemory: 4 << 30, Runtimes: []string{"exec", "podman"}, Version: "1.0"})
	if err != nil || reg.Address != "10.8.0.2" || len(reg.Runtimes) != 2 || reg.Zone != "eu-1" || !reg.ZonePinned || reg.AddressPinned {
		t.Fatalf("RegisterWorker = %+v, %v (the operator's zone is pinned)", reg, err)
	}
	// An unpinned address follows the worker's reports; a pinned zone does not.
	reg, err = f.s.RegisterWorker(f.ctx, w.ID, store.Registration{Address: "10.8.0.9", Zone: "us-2",
		CapacityCPU: 2000, CapacityMemory: 4 << 30})
	if err != nil || reg.Address != "10.8.0.9" || reg.Zone != "eu-1" {
		t.Fatalf("re-registration = %+v, %v", reg, err)
	}
	pinned, err := f.s.CreateWorker(f.ctx, store.NewWorker{Name: "edge-3", Address: "10.9.0.1", Creds: store.WorkerCredentials{
		APIKeyHash: strings.Repeat("c", 64), KeyID: "k3", SealedEnvelopeKey: "v1:x"}})
	if err != nil || !pinned.AddressPinned || pinned.ZonePinned {
		t.Fatalf("CreateWorker with an address = %+v, %v", pinned, err)
	}
	if reg, err = f.s.RegisterWorker(f.ctx, pinned.ID, store.Registration{Address: "127.0.0.1", Zone: "eu-2",
		CapacityCPU: 1, CapacityMemory: 1}); err != nil || reg.Address != "10.9.0.1" || reg.Zone != "eu-2" {
		t.Fatalf("registration against a pinned address = %+v, %v", reg, err)
	}

	list, err := f.s.ListWorkers(f.ctx)
	if err != nil || len(list) != 3 || list[0].Name != "edge-2" || list[1].Name != "edge-3" || list[2].Name != "w1" {
		t.Fatalf("ListWorkers = %v, %v", list, err)
	}
	if got, err := f.s.FindWorkerByName(f.ctx, "w1"); err != nil || got.ID != f.worker.ID {
		t.Fatalf("FindWorkerByName = %v, %v", got, err)
	}
}

func TestUpdateHeartbeatsBatched(t *testing.T) {
	f := newFixture(t)
	w2 := f.mustWorker(t, "w2", 1000, 1<<30)
	f.exec(t, `UPDATE workers SET status = 'offline' WHERE id = $1`, w2.ID)
	now := time.Now().UTC().Truncate(time.Microsecond)
	beats := []store.Heartbeat{
		{WorkerID: f.worker.ID, At: now.Add(-2 * time.Second), CPUPercent: 10},
		{WorkerID: f.worker.ID, At: now, CPUPercent: 55, MemoryPercent: 40, RunningApps: 3}, // newest wins
		{WorkerID: w2.ID, At: now, CPUPercent: 5},
		{WorkerID: 424242, At: now}, // unknown worker: ignored
	}
	if err := f.s.UpdateHeartbeats(f.ctx, beats); err != nil {
		t.Fatal(err)
	}
	w, _ := f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.CPUPercent != 55 || w.MemoryPercent != 40 || w.RunningApps != 3 || !w.LastHeartbeat.Equal(now) {
		t.Fatalf("worker after heartbeats = %+v", w)
	}
	// A late, older beat does not move the clock back.
	if err := f.s.UpdateHeartbeats(f.ctx, []store.Heartbeat{{WorkerID: f.worker.ID, At: now.Add(-time.Minute), CPUPercent: 1}}); err != nil {
		t.Fatal(err)
	}
	w, _ = f.s.FindWorkerByID(f.ctx, f.worker.ID)
	if w.CPUPercent != 55 {
		t.Fatalf("stale heartbeat applied: %+v", w)
	}
	// Only the hub's connect path brings a worker online: a late batch must
	// not revive a worker the health monitor took offline.
	if o, _ := f.s.FindWorkerByID(f.ctx, w2.ID); o.Status != "offline" {
		t.Fatalf("a heartbeat changed an offline worker's status to %s", o.Status)
	}
}

func TestSecretsAreEncryptedAtRest(t *testing.T) {
	f := newFixture(t)
	const envValue = "postgres://app:sup3r-secret@db/app"
	const gitToken = "ghp_0123456789abcdefSECRET"
	if err := f.s.SetAppEnvVar(f.ctx, f.app.ID, "DATABASE_URL", envValue); err != nil {
		t.Fatal(err)
	}
	if err := f.s.UpsertGitToken(f.ctx, f.user.ID, "github", "ada", gitToken); err != nil {
		t.Fatal(err)
	}
	payload := json.RawMessage(`{"env":{"DATABASE_URL":"` + envValue + `"}}`)
	d, err := f.s.CreateDeployment(f.ctx, f.app.ID, store.NewDeployment{}, store.NewJob{Payload: payload})
	if err != nil {
		t.Fatal(err)
	}

	raw := func(q string, args ...any) string {
		var v string
		if err := f.s.Pool().QueryRow(f.ctx, q, args...).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, v := range map[string]string{
		"env var":     raw(`SELECT value FROM app_env_vars WHERE app_id = $1`, f.app.ID),
		"git token":   raw(`SELECT token FROM git_provider_tokens WHERE user_id = $1`, f.user.ID),
		"job payload": raw(`SELECT payload FROM jobs WHERE id = $1`, d.Job.ID),
	} {
		if !strings.HasPrefix(v, "v1:") || strings.Contains(v, "sup3r-secret") || strings.Contains(v, "SECRET") {
			t.Errorf("%s stored as %q, want v1: ciphertext", name, v)
		}
	}

	// And the store reads them back in the clear.
	env, err := f.s.AppEnvMap(f.ctx, f.app.ID)
	if err != nil || env["DATABASE_URL"] != envValue {
		t.Fatalf("AppEnvMap = %v, %v", env, err)
	}
	tok, user, err := f.s.GetGitToken(f.ctx, f.user.ID, "github")
	if err != nil || tok != gitToken || user != "ada" {
		t.Fatalf("GetGitToken = %q %q %v", tok, user, err)
	}
	j, err := f.s.FindJob(f.ctx, d.Job.ID)
	if err != nil || string(j.Payload) != string(payload) {
		t.Fatalf("job payload = %s, %v", j.Payload, err)
	}
	linked, err := f.s.ListGitTokens(f.ctx, f.user.ID)
	if err != nil || len(linked) != 1 || linked[0].Provider != "github" {
		t.Fatalf("ListGitTokens = %+v, %v", linked, err)
	}
	if err := f.s.DeleteGitToken(f.ctx, f.user.ID, "github"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.GetGitToken(f.ctx, f.user.ID, "github"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetGitToken after delete = %v", err)
	}
	// A tampered ciphertext is an error, never garbage.
	f.exec(t, `UPDATE app_env_vars SET value = overlay(value placing
		CASE WHEN substr(value, 10, 1) = 'A' THEN 'B' ELSE 'A' END from 10 for 1) WHERE app_id = $1`, f.app.ID)
	if _, err := f.s.ListAppEnvVars(f.ctx, f.app.ID); err == nil {
		t.Fatal("tampered env var decrypted without error")
	}
}

func TestEnvVars(t *testing.T) {
	f := newFixture(t)
	for k, v := range map[string]string{"B_KEY": "2", "A_KEY": "1", "PORT": "3000"} {
		if err := f.s.SetAppEnvVar(f.ctx, f.app.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.SetAppEnvVar(f.ctx, f.app.ID, "PORT", "4000"); err != nil { // upsert
		t.Fatal(err)
	}
	vars, err := f.s.ListAppEnvVars(f.ctx, f.app.ID)
	if err != nil || len(vars) != 3 || vars[0].Key != "A_KEY" || vars[2].Value != "4000" {
		t.Fatalf("ListAppEnvVars = %+v, %v", vars, err)
	}
	if err := f.s.DeleteAppEnvVar(f.ctx, f.app.ID, "A_KEY"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteAppEnvVar(f.ctx, f.app.ID, "A_KEY"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
	for _, bad := range []string{"", "lower", "1ABC", "A-B", strings.Repeat("A", 65)} {
		if store.ValidEnvKey(bad) {
			t.Errorf("ValidEnvKey(%q) = true", bad)
		}
	}
	if !store.ValidEnvKey("A") || !store.ValidEnvKey("A_1") || !store.ValidEnvKey(strings.Repeat("A", 64)) {
		t.Error("valid keys rejected")
	}
}

func TestApps(t *testing.T) {
	f := newFixture(t)
	second := f.mustApp(t, f.user.ID, "second-app")
	apps, err := f.s.ListUserApps(f.ctx, f.user.ID)
	if err != nil || len(apps) != 2 || apps[0].ID != second.ID {
		t.Fatalf("ListUserApps = %v, %v", apps, err)
	}
	if n, _ := f.s.CountUserApps(f.ctx, f.user.ID); n != 2 {
		t.Fatalf("CountUserApps = %d", n)
	}
	got, err := f.s.FindAppByUUID(f.ctx, f.app.UUID)
	if err != nil || got.ID != f.app.ID {
		t.Fatalf("FindAppByUUID = %v, %v", got, err)
	}
	if _, err := f.s.FindAppByUUID(f.ctx, "not-a-uuid"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindAppByUUID(garbage) = %v", err)
	}
	if got, err := f.s.FindAppByUserIDAndName(f.ctx, f.user.ID, "second-app"); err != nil || got.ID != second.ID {
		t.Fatalf("FindAppByUserIDAndName = %v, %v", got, err)
	}
	if err := f.s.UpdateAppSpec(f.ctx, f.app.ID, store.AppSpec{GitRepo: "https://g/r.git", GitBranch: "dev", Runtime: "podman", Dockerfile: "Dockerfile"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetAppAutoDeploy(f.ctx, f.app.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetAppWebhookID(f.ctx, f.app.ID, "hook-9"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.MarkAppViolated(f.ctx, f.app.ID, "memory limit"); err != nil {
		t.Fatal(err)
	}
	a, _ := f.s.FindAppByID(f.ctx, f.app.ID)
	if a.GitBranch != "dev" || a.Runtime != "podman" || !a.AutoDeploy || a.WebhookID != "hook-9" || a.Status != "violated" || a.ViolationReason != "memory limit" {
		t.Fatalf("app after updates = %+v", a)
	}
	if err := f.s.UpdateAppSpec(f.ctx, f.app.ID, store.AppSpec{Runtime: "docker"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad runtime = %v", err)
	}
	// Soft delete cancels pending jobs.
	d, err := f.s.CreateDeployment(f.ctx, second.ID, store.NewDeployment{}, store.NewJob{})
	if err != nil {
		t.Fatal(err)
	}
	if del, err := f.s.MarkAppDeleted(f.ctx, second.ID); err != nil || del != nil {
		t.Fatalf("deleting an app that runs nowhere = %v, %v (no delete job needed)", del, err)
	}
	if _, err := f.s.MarkAppDeleted(f.ctx, second.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting twice = %v", err)
	}
	j, _ := f.s.FindJob(f.ctx, d.Job.ID)
	if j.Status != store.JobCancelled {
		t.Fatalf("pending job of a deleted app is %s", j.Status)
	}
	if n, _ := f.s.CountUserApps(f.ctx, f.user.ID); n != 1 {
		t.Fatalf("CountUserApps after delete = %d", n)
	}
}
