package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Audit event kinds of the second factor (migration 009 adds them to the
// table's CHECK).
const (
	AuditTOTPEnabled            = "totp_enabled"
	AuditTOTPDisabled           = "totp_disabled"
	AuditBackupCodesRegenerated = "backup_codes_regenerated"
)

// TOTPState is a user's second-factor state, read under a row lock.
type TOTPState struct {
	// Secret is the enrolled TOTP secret in base32, decrypted; "" when
	// none is enrolled.
	Secret string
	// Enabled says the secret has been confirmed and logins need a code.
	Enabled bool
	// LastStep is the time step of the last accepted code (replay
	// protection), 0 when none.
	LastStep int64
}

// LockTOTPTx reads the user's TOTP state and locks the user's row until
// tx ends, so that checking a code and recording its step, or changing the
// state, cannot interleave with another request's. Unknown users are
// ErrNotFound.
func (s *Store) LockTOTPTx(ctx context.Context, tx pgx.Tx, userID int64) (*TOTPState, error) {
	var enc string
	var st TOTPState
	err := tx.QueryRow(ctx, `SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1 FOR UPDATE`,
		userID).Scan(&enc, &st.Enabled, &st.LastStep)
	if err != nil {
		return nil, mapErr("lock totp", err)
	}
	if enc != "" {
		if st.Secret, err = s.cipher.Decrypt(enc); err != nil {
			return nil, fmt.Errorf("store: lock totp of user %d: %w", userID, err)
		}
	}
	return &st, nil
}

// SetTOTPSecretTx stores a newly enrolled secret (base32), encrypted with
// the column cipher, and resets the replay step. It refuses with
// ErrConflict while 2FA is enabled (disable it first).
func (s *Store) SetTOTPSecretTx(ctx context.Context, tx pgx.Tx, userID int64, secret string) error {
	enc, err := s.cipher.Encrypt(secret)
	if err != nil {
		return fmt.Errorf("store: set totp secret: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		UPDATE users SET totp_secret = $2, totp_last_step = 0, totp_verified_at = NULL, updated_at = now()
		WHERE id = $1 AND NOT totp_enabled`, userID, enc)
	if err != nil {
		return mapErr("set totp secret", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: set totp secret: user %d is unknown or has 2FA enabled: %w", userID, ErrConflict)
	}
	return nil
}

// UseTOTPStepTx records step as the user's last accepted TOTP step if it
// is later than the one stored, and reports whether it was (false: the
// code's step was already used, a replay).
func UseTOTPStepTx(ctx context.Context, tx pgx.Tx, userID, step int64) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, userID, step)
	if err != nil {
		return false, mapErr("use totp step", err)
	}
	return tag.RowsAffected() == 1, nil
}

// EnableTOTPTx turns 2FA on for the user, whose secret must be enrolled
// (ErrConflict otherwise, or when it is already on).
func EnableTOTPTx(ctx context.Context, tx pgx.Tx, userID int64) error {
	tag, err := tx.Exec(ctx, `
		UPDATE users SET totp_enabled = true, totp_verified_at = now(), updated_at = now()
		WHERE id = $1 AND totp_secret <> '' AND NOT totp_enabled`, userID)
	if err != nil {
		return mapErr("enable totp", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: enable totp: user %d has no enrolled secret or 2FA is on: %w", userID, ErrConflict)
	}
	return nil
}

// DisableTOTPTx turns 2FA off: it forgets the secret and the replay step
// and deletes the user's backup codes and pending challenges.
func DisableTOTPTx(ctx context.Context, tx pgx.Tx, userID int64) error {
	if _, err := tx.Exec(ctx, `
		UPDATE users SET totp_enabled = false, totp_secret = '', totp_verified_at = NULL, totp_last_step = 0,
			updated_at = now()
		WHERE id = $1`, userID); err != nil {
		return mapErr("disable totp", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM backup_codes WHERE user_id = $1`, userID); err != nil {
		return mapErr("disable totp: backup codes", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pending_totps WHERE user_id = $1`, userID); err != nil {
		return mapErr("disable totp: pending challenges", err)
	}
	return nil
}

// BackupCode is one unused backup code of a user.
type BackupCode struct {
	ID int64
	// Hash is the code's argon2id hash in PHC string form.
	Hash string
}

// ReplaceBackupCodesTx deletes the user's backup codes, used or not, and
// stores hashes (argon2id PHC strings; anything else is ErrInvalid) as the
// new set.
func ReplaceBackupCodesTx(ctx context.Context, tx pgx.Tx, userID int64, hashes []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM backup_codes WHERE user_id = $1`, userID); err != nil {
		return mapErr("replace backup codes", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO backup_codes (user_id, code_hash) SELECT $1, unnest($2::text[])`,
		userID, hashes); err != nil {
		return mapErr("replace backup codes", err)
	}
	return nil
}

// UnusedBackupCodesTx returns the user's unused backup codes, oldest
// first.
func UnusedBackupCodesTx(ctx context.Context, tx pgx.Tx, userID int64) ([]BackupCode, error) {
	rows, err := tx.Query(ctx, `SELECT id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return nil, mapErr("unused backup codes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BackupCode, error) {
		var c BackupCode
		err := r.Scan(&c.ID, &c.Hash)
		return c, err
	})
	return out, mapErr("unused backup codes", err)
}

// UseBackupCodeTx marks backup code id used, once: it reports false when
// the code was already used (or is unknown).
func UseBackupCodeTx(ctx context.Context, tx pgx.Tx, id int64) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE backup_codes SET used_at = now() WHERE id = $1 AND used_at IS NULL`, id)
	if err != nil {
		return false, mapErr("use backup code", err)
	}
	return tag.RowsAffected() == 1, nil
}

// CountUnusedBackupCodes returns how many backup codes the user has left.
func (s *Store) CountUnusedBackupCodes(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, mapErr("count backup codes", err)
}

// PendingTOTP is a sign-in waiting for its second factor.
type PendingTOTP struct {
	UserID int64
	// Provider is how the first factor was proven (an OAuth provider).
	Provider  string
	ExpiresAt time.Time
}

// CreatePendingTOTP stores a pending challenge under the sha256 hex of its
// cookie token (anything else is ErrInvalid).
func (s *Store) CreatePendingTOTP(ctx context.Context, tokenHash string, p PendingTOTP) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pending_totps (token_hash, user_id, provider, expires_at) VALUES ($1, $2, $3, $4)`,
		tokenHash, p.UserID, p.Provider, p.ExpiresAt)
	return mapErr("create pending totp", err)
}

// FindPendingTOTP returns the challenge with that token hash if it has not
// expired at now, or ErrNotFound. It does not consume it.
func (s *Store) FindPendingTOTP(ctx context.Context, tokenHash string, now time.Time) (*PendingTOTP, error) {
	var p PendingTOTP
	err := s.pool.QueryRow(ctx, `SELECT user_id, provider, expires_at FROM pending_totps WHERE token_hash = $1 AND expires_at > $2`,
		tokenHash, now).Scan(&p.UserID, &p.Provider, &p.ExpiresAt)
	if err != nil {
		return nil, mapErr("find pending totp", err)
	}
	return &p, nil
}

// TakePendingTOTPTx deletes the challenge with that token hash and returns
// it if it had not expired at now, or ErrNotFound: of two concurrent
// takers only one gets it (the other waits for tx and then finds nothing,
// unless tx rolls back).
func TakePendingTOTPTx(ctx context.Context, tx pgx.Tx, tokenHash string, now time.Time) (*PendingTOTP, error) {
	var p PendingTOTP
	err := tx.QueryRow(ctx, `DELETE FROM pending_totps WHERE token_hash = $1 AND expires_at > $2
		RETURNING user_id, provider, expires_at`, tokenHash, now).Scan(&p.UserID, &p.Provider, &p.ExpiresAt)
	if err != nil {
		return nil, mapErr("take pending totp", err)
	}
	return &p, nil
}
