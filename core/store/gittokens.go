package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LinkedProvider is a git provider account linked to a user (no token).
type LinkedProvider struct {
	Provider  string    `json:"provider"`
	Username  string    `json:"username"`
	Scopes    string    `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UpsertGitToken encrypts and stores the user's token for a provider.
func (s *Store) UpsertGitToken(ctx context.Context, userID int64, provider, username, token string) error {
	enc, err := s.cipher.Encrypt(token)
	if err != nil {
		return fmt.Errorf("store: upsert git token: encrypt: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO git_provider_tokens (user_id, provider, username, token) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, provider) DO UPDATE SET username = EXCLUDED.username,
			token = EXCLUDED.token, updated_at = now()`, userID, provider, username, enc)
	return mapErr("upsert git token", err)
}

// GetGitToken returns the decrypted token and username, or ErrNotFound.
func (s *Store) GetGitToken(ctx context.Context, userID int64, provider string) (token, username string, err error) {
	var enc string
	err = s.pool.QueryRow(ctx, `SELECT token, username FROM git_provider_tokens WHERE user_id = $1 AND provider = $2`,
		userID, provider).Scan(&enc, &username)
	if err != nil {
		return "", "", mapErr("get git token", err)
	}
	token, err = s.cipher.Decrypt(enc)
	if err != nil {
		return "", "", fmt.Errorf("store: get git token: decrypt: %w", err)
	}
	return token, username, nil
}

// ListGitTokens lists the user's linked providers without their tokens.
func (s *Store) ListGitTokens(ctx context.Context, userID int64) ([]LinkedProvider, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, username, scopes, created_at, updated_at
		FROM git_provider_tokens WHERE user_id = $1 ORDER BY provider`, userID)
	if err != nil {
		return nil, mapErr("list git tokens", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[LinkedProvider])
	if err != nil {
		return nil, mapErr("list git tokens", err)
	}
	return out, nil
}

// DeleteGitToken unlinks a provider; ErrNotFound when it was not linked.
func (s *Store) DeleteGitToken(ctx context.Context, userID int64, provider string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM git_provider_tokens WHERE user_id = $1 AND provider = $2`, userID, provider)
	if err != nil {
		return mapErr("delete git token", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("delete git token", pgx.ErrNoRows)
	}
	return nil
}
