package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/store"
)

const phc = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"

func TestTOTPState(t *testing.T) {
	f := newFixture(t)
	tx := func(fn func(pgx.Tx) error) error { return f.s.InTx(f.ctx, fn) }
	var st *store.TOTPState
	if err := tx(func(tx pgx.Tx) (err error) { st, err = f.s.LockTOTPTx(f.ctx, tx, f.user.ID); return err }); err != nil || *st != (store.TOTPState{}) {
		t.Fatalf("fresh state %+v, %v", st, err)
	}
	if err := tx(func(tx pgx.Tx) error { return store.EnableTOTPTx(f.ctx, tx, f.user.ID) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("enable without a secret: %v", err)
	}
	if err := tx(func(tx pgx.Tx) error { return f.s.SetTOTPSecretTx(f.ctx, tx, f.user.ID, "GEZDGNBVGY3TQOJQ") }); err != nil {
		t.Fatal(err)
	}
	var stored string
	f.s.Pool().QueryRow(f.ctx, `SELECT totp_secret FROM users WHERE id = $1`, f.user.ID).Scan(&stored)
	if !strings.HasPrefix(stored, "v1:") || strings.Contains(stored, "GEZDGNBVGY3TQOJQ") {
		t.Fatalf("stored secret %q is not the cipher's form", stored)
	}

	// Steps only move forward.
	for _, tt := range []struct {
		step int64
		ok   bool
	}{{100, true}, {100, false}, {99, false}, {101, true}} {
		var ok bool
		if err := tx(func(tx pgx.Tx) (err error) { ok, err = store.UseTOTPStepTx(f.ctx, tx, f.user.ID, tt.step); return err }); err != nil || ok != tt.ok {
			t.Errorf("use step %d = %v, %v; want %v", tt.step, ok, err, tt.ok)
		}
	}
	if err := tx(func(tx pgx.Tx) error { return store.EnableTOTPTx(f.ctx, tx, f.user.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(tx pgx.Tx) (err error) { st, err = f.s.LockTOTPTx(f.ctx, tx, f.user.ID); return err }); err != nil ||
		*st != (store.TOTPState{Secret: "GEZDGNBVGY3TQOJQ", Enabled: true, LastStep: 101}) {
		t.Fatalf("enabled state %+v, %v", st, err)
	}
	if err := tx(func(tx pgx.Tx) error { return f.s.SetTOTPSecretTx(f.ctx, tx, f.user.ID, "X") }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("re-enrol while enabled: %v", err)
	}
	if u, _ := f.s.FindUserByID(f.ctx, f.user.ID); !u.TOTPEnabled || u.TOTPVerifiedAt == nil {
		t.Fatalf("user %+v", u)
	}

	// Backup codes: only argon2id hashes fit; each is used once; a new set
	// replaces the old.
	if err := tx(func(tx pgx.Tx) error { return store.ReplaceBackupCodesTx(f.ctx, tx, f.user.ID, []string{"abcd-efgh"}) }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("plaintext backup code: %v", err)
	}
	if err := tx(func(tx pgx.Tx) error { return store.ReplaceBackupCodesTx(f.ctx, tx, f.user.ID, []string{phc, phc}) }); err != nil {
		t.Fatal(err)
	}
	var codes []store.BackupCode
	if err := tx(func(tx pgx.Tx) (err error) { codes, err = store.UnusedBackupCodesTx(f.ctx, tx, f.user.ID); return err }); err != nil || len(codes) != 2 {
		t.Fatalf("codes %+v, %v", codes, err)
	}
	for i, want := range []bool{true, false} {
		var ok bool
		if err := tx(func(tx pgx.Tx) (err error) { ok, err = store.UseBackupCodeTx(f.ctx, tx, codes[0].ID); return err }); err != nil || ok != want {
			t.Errorf("use %d: %v, %v", i, ok, err)
		}
	}
	if n, err := f.s.CountUnusedBackupCodes(f.ctx, f.user.ID); err != nil || n != 1 {
		t.Fatalf("unused %d, %v", n, err)
	}
	if err := tx(func(tx pgx.Tx) error { return store.ReplaceBackupCodesTx(f.ctx, tx, f.user.ID, []string{phc}) }); err != nil {
		t.Fatal(err)
	}
	if c := f.count(t, `SELECT count(*) FROM backup_codes WHERE user_id = $1`, f.user.ID); c != 1 {
		t.Fatalf("%d codes after replacing", c)
	}

	// Disabling forgets the secret, the step, the codes and the challenges.
	now := time.Now()
	if err := f.s.CreatePendingTOTP(f.ctx, hash('e'), store.PendingTOTP{UserID: f.user.ID, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(tx pgx.Tx) error { return store.DisableTOTPTx(f.ctx, tx, f.user.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(tx pgx.Tx) (err error) { st, err = f.s.LockTOTPTx(f.ctx, tx, f.user.ID); return err }); err != nil || *st != (store.TOTPState{}) {
		t.Fatalf("state after disable %+v, %v", st, err)
	}
	if c := f.count(t, `SELECT (SELECT count(*) FROM backup_codes) + (SELECT count(*) FROM pending_totps)`); c != 0 {
		t.Fatalf("%d codes and challenges survived disabling", c)
	}
	for _, kind := range []string{store.AuditTOTPEnabled, store.AuditTOTPDisabled, store.AuditBackupCodesRegenerated} {
		if err := f.s.RecordAuditEvent(f.ctx, store.NewAuditEvent{UserID: f.user.ID, Kind: kind}); err != nil {
			t.Errorf("audit kind %s: %v", kind, err)
		}
	}
}

func TestPendingTOTP(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	if err := f.s.CreatePendingTOTP(f.ctx, "whp_plaintext", store.PendingTOTP{UserID: f.user.ID, ExpiresAt: now}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("plaintext token: %v", err)
	}
	if err := f.s.CreatePendingTOTP(f.ctx, hash('a'), store.PendingTOTP{UserID: f.user.ID, Provider: "github", ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if p, err := f.s.FindPendingTOTP(f.ctx, hash('a'), now); err != nil || p.UserID != f.user.ID || p.Provider != "github" {
		t.Fatalf("find %+v, %v", p, err)
	}
	if _, err := f.s.FindPendingTOTP(f.ctx, hash('a'), now.Add(5*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("find expired: %v", err)
	}
	take := func(at time.Time) (p *store.PendingTOTP, err error) {
		err = f.s.InTx(f.ctx, func(tx pgx.Tx) (err error) { p, err = store.TakePendingTOTPTx(f.ctx, tx, hash('a'), at); return err })
		return p, err
	}
	if _, err := take(now.Add(6 * time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take expired: %v", err)
	}
	if p, err := take(now); err != nil || p.UserID != f.user.ID {
		t.Fatalf("take %+v, %v", p, err)
	}
	if _, err := take(now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second take: %v", err)
	}
}
