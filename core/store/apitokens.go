package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIToken is a user's API token. The token itself is never stored: only
// its sha256 identifies it, and Prefix tells it apart in lists.
type APIToken struct {
	ID         int64
	UserID     int64
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	// ExpiresAt is nil for a token that does not expire.
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

const apiTokenColumns = `id, user_id, name, prefix, created_at, last_used_at, expires_at, revoked_at`

func scanAPIToken(r pgx.Row) (*APIToken, error) {
	var t APIToken
	err := r.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt)
	return &t, err
}

// NewAPIToken describes an API token to create.
type NewAPIToken struct {
	UserID int64
	// Name is 1..100 characters.
	Name string
	// TokenHash is the sha256 hex of the token.
	TokenHash string
	// Prefix is the token's first characters (1..16), for display.
	Prefix string
	// ExpiresAt is nil for a token that does not expire.
	ExpiresAt *time.Time
}

// CreateAPIToken stores a token's hash. A bad name, prefix or hash, or an
// unknown user, is ErrInvalid; a hash in use ErrConflict.
func (s *Store) CreateAPIToken(ctx context.Context, nt NewAPIToken) (*APIToken, error) {
	t, err := scanAPIToken(s.pool.QueryRow(ctx, `
		INSERT INTO api_tokens (user_id, name, token_hash, prefix, expires_at) VALUES ($1, $2, $3, $4, $5)
		RETURNING `+apiTokenColumns, nt.UserID, nt.Name, nt.TokenHash, nt.Prefix, nt.ExpiresAt))
	if err != nil {
		return nil, mapErr("create api token", err)
	}
	return t, nil
}

// ListAPITokens returns the user's tokens that are not revoked, expired
// ones included, newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]*APIToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC`, userID)
	if err != nil {
		return nil, mapErr("list api tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*APIToken, error) { return scanAPIToken(r) })
	return out, mapErr("list api tokens", err)
}

// RevokeAPIToken revokes the user's token id; ErrNotFound when it is
// another user's, unknown or already revoked.
func (s *Store) RevokeAPIToken(ctx context.Context, id, userID int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, userID)
	if err != nil {
		return mapErr("revoke api token", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("revoke api token", pgx.ErrNoRows)
	}
	return nil
}

// FindAPITokenByHash returns the token of a hash when it is neither
// revoked nor expired; anything else is ErrNotFound.
func (s *Store) FindAPITokenByHash(ctx context.Context, tokenHash string) (*APIToken, error) {
	t, err := scanAPIToken(s.pool.QueryRow(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, tokenHash))
	if err != nil {
		return nil, mapErr("find api token", err)
	}
	return t, nil
}

// TouchAPIToken sets a token's last_used_at to now unless it was set less
// than SessionBumpInterval ago; touched reports whether it did.
func (s *Store) TouchAPIToken(ctx context.Context, id int64) (touched bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))`,
		id, SessionBumpInterval.Seconds())
	if err != nil {
		return false, mapErr("touch api token", err)
	}
	return tag.RowsAffected() == 1, nil
}
