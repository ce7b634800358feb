package store_test

import (
	"sync"
	"testing"

	"github.com/wisehosting/wisehosting/core/store"
)

func TestUpsertUserByEmail(t *testing.T) {
	f := newFixture(t)
	// An existing user (created with name "Ada", no avatar): matched
	// case-insensitively, its name kept, its empty avatar filled in.
	u, created, err := f.s.UpsertUserByEmail(f.ctx, " ADA@Example.com", "Other", "https://a.example/ada.png")
	if err != nil || created || u.ID != f.user.ID || u.Name != "Ada" || u.AvatarURL != "https://a.example/ada.png" {
		t.Fatalf("existing: %+v created=%v err=%v", u, created, err)
	}
	u, created, err = f.s.UpsertUserByEmail(f.ctx, "ada@example.com", "", "https://a.example/new.png")
	if err != nil || created || u.AvatarURL != "https://a.example/ada.png" {
		t.Fatalf("a set avatar must not be overwritten: %+v %v", u, err)
	}
	u, created, err = f.s.UpsertUserByEmail(f.ctx, "New@example.com", "New", "")
	if err != nil || !created || u.Email != "new@example.com" || u.Name != "New" || u.Plan != "free" {
		t.Fatalf("new: %+v created=%v err=%v", u, created, err)
	}
	if _, _, err := f.s.UpsertUserByEmail(f.ctx, "", "x", ""); err == nil {
		t.Fatal("an empty email was accepted")
	}

	// Concurrent first sign-ins with one email make one user.
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	errs := make([]error, 8)
	creations := make([]bool, 8)
	for i := range ids {
		wg.Go(func() {
			u, c, err := f.s.UpsertUserByEmail(f.ctx, "race@example.com", "R", "")
			errs[i], creations[i] = err, c
			if err == nil {
				ids[i] = u.ID
			}
		})
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent upserts: ids %v errs %v", ids, errs)
		}
		if creations[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d calls reported creating the user, want 1", n)
	}
}

func TestGitTokenLinkAudit(t *testing.T) {
	f := newFixture(t)
	if err := f.s.RecordAuditEvent(f.ctx, store.NewAuditEvent{UserID: f.user.ID, Kind: store.AuditGitTokenLink}); err != nil {
		t.Fatal(err)
	}
}
