package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// UserSummary is a user with the counts an operator's list shows.
type UserSummary struct {
	User
	// Apps counts the user's apps that are not deleted.
	Apps int64 `json:"apps"`
	// Tokens counts the user's API tokens that are neither revoked nor
	// expired.
	Tokens int64 `json:"tokens"`
}

// ListUserSummaries returns every user with its counts of apps and live
// API tokens, oldest first.
func (s *Store) ListUserSummaries(ctx context.Context) ([]*UserSummary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+userColumns+`,
			(SELECT count(*) FROM apps a WHERE a.user_id = u.id AND a.deleted_at IS NULL),
			(SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL
				AND (t.expires_at IS NULL OR t.expires_at > now()))
		FROM users u ORDER BY u.id`)
	if err != nil {
		return nil, mapErr("list user summaries", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*UserSummary, error) {
		var u UserSummary
		err := r.Scan(&u.ID, &u.Email, &u.Name, &u.AvatarURL, &u.GoogleID, &u.Plan, &u.TOTPEnabled,
			&u.TOTPVerifiedAt, &u.CreatedAt, &u.UpdatedAt, &u.Apps, &u.Tokens)
		return &u, err
	})
	return out, mapErr("list user summaries", err)
}
