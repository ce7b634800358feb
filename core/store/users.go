package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is a person who owns apps.
type User struct {
	ID             int64      `db:"id" json:"id"`
	Email          string     `db:"email" json:"email"`
	Name           string     `db:"name" json:"name"`
	AvatarURL      string     `db:"avatar_url" json:"avatar_url"`
	GoogleID       *string    `db:"google_id" json:"-"`
	Plan           string     `db:"plan" json:"plan"`
	TOTPEnabled    bool       `db:"totp_enabled" json:"totp_enabled"`
	TOTPVerifiedAt *time.Time `db:"totp_verified_at" json:"totp_verified_at,omitempty"`
	CreatedAt      time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at" json:"updated_at"`
}

const userColumns = `id, email, name, avatar_url, google_id, plan, totp_enabled, totp_verified_at, created_at, updated_at`

// NewUser holds what CreateUser needs.
type NewUser struct {
	Email, Name, AvatarURL string
	// Plan is a plan id from the plan catalogue; empty means "free".
	Plan string
}

// scanUser reads one row selected with userColumns.
func scanUser(row pgx.Row) (*User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.AvatarURL, &u.GoogleID, &u.Plan, &u.TOTPEnabled,
		&u.TOTPVerifiedAt, &u.CreatedAt, &u.UpdatedAt)
	return &u, err
}

// CreateUser inserts a user. The email is stored lower-cased; a duplicate
// email is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	plan := nu.Plan
	if plan == "" {
		plan = "free"
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (email, name, avatar_url, plan) VALUES ($1, $2, $3, $4)
		RETURNING `+userColumns, normEmail(nu.Email), nu.Name, nu.AvatarURL, plan))
	if err != nil {
		return nil, mapErr("create user", err)
	}
	return u, nil
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// FindUserByID returns the user or ErrNotFound.
func (s *Store) FindUserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, mapErr("find user", err)
	}
	return u, nil
}

// FindUserByEmail returns the user with that email (case-insensitive) or ErrNotFound.
func (s *Store) FindUserByEmail(ctx context.Context, email string) (*User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, normEmail(email)))
	if err != nil {
		return nil, mapErr("find user by email", err)
	}
	return u, nil
}

// UpsertGoogleUser creates or refreshes the user signed in with Google: it
// matches on google_id first, then links an existing account with the same
// email, and otherwise creates one.
func (s *Store) UpsertGoogleUser(ctx context.Context, googleID, email, name, avatar string) (*User, error) {
	var u *User
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `
			UPDATE users SET email = $2, name = $3, avatar_url = $4, updated_at = now()
			WHERE google_id = $1 RETURNING `+userColumns, googleID, normEmail(email), name, avatar))
		if err == nil {
			return nil
		}
		if err != pgx.ErrNoRows {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `
			INSERT INTO users (email, name, avatar_url, google_id) VALUES ($1, $2, $3, $4)
			ON CONFLICT (email) DO UPDATE SET google_id = EXCLUDED.google_id,
				name = EXCLUDED.name, avatar_url = EXCLUDED.avatar_url, updated_at = now()
			RETURNING `+userColumns, normEmail(email), name, avatar, googleID))
		return err
	})
	if err != nil {
		return nil, mapErr("upsert google user", err)
	}
	return u, nil
}

// UpsertUserByEmail returns the user with that email (case-insensitive),
// creating it when there is none; created tells which. It is race-safe: two
// concurrent calls for one email give the same user. An existing user's
// name and avatar are filled in only where they are empty. The caller must
// have checked that the email is verified (e.g. by an OAuth provider).
func (s *Store) UpsertUserByEmail(ctx context.Context, email, name, avatar string) (u *User, created bool, err error) {
	var inserted bool
	row := s.pool.QueryRow(ctx, `
		INSERT INTO users (email, name, avatar_url) VALUES ($1, $2, $3)
		ON CONFLICT (email) DO UPDATE SET
			name = CASE WHEN users.name = '' THEN EXCLUDED.name ELSE users.name END,
			avatar_url = CASE WHEN users.avatar_url = '' THEN EXCLUDED.avatar_url ELSE users.avatar_url END
		RETURNING `+userColumns+`, (xmax = 0)`, normEmail(email), name, avatar)
	u = &User{}
	err = row.Scan(&u.ID, &u.Email, &u.Name, &u.AvatarURL, &u.GoogleID, &u.Plan, &u.TOTPEnabled,
		&u.TOTPVerifiedAt, &u.CreatedAt, &u.UpdatedAt, &inserted)
	if err != nil {
		return nil, false, mapErr("upsert user by email", err)
	}
	return u, inserted, nil
}

// SetUserPlan changes the user's plan id.
func (s *Store) SetUserPlan(ctx context.Context, userID int64, plan string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET plan = $2, updated_at = now() WHERE id = $1`, userID, plan)
	if err != nil {
		return mapErr("set user plan", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("set user plan", pgx.ErrNoRows)
	}
	return nil
}

// DeleteUser removes the user and everything that belongs to them (apps,
// deployments, jobs, sessions, webhooks, …). It refuses (ErrConflict) while
// any of their apps holds capacity on a worker or has an active job: what
// runs there must be stopped first, or it would keep running untracked.
func (s *Store) DeleteUser(ctx context.Context, userID int64) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		var busy bool
		err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM app_reservations r JOIN apps a ON a.id = r.app_id WHERE a.user_id = $1)
			    OR EXISTS (SELECT 1 FROM jobs j JOIN apps a ON a.id = j.app_id
			               WHERE a.user_id = $1 AND j.status IN ('pending', 'assigned', 'processing'))
			FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&busy)
		if err != nil {
			return mapErr("delete user", err)
		}
		if busy {
			return fmt.Errorf("store: delete user %d: their apps still hold capacity or have active jobs: %w", userID, ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM runtime_logs WHERE app_id IN (SELECT id FROM apps WHERE user_id = $1)`, userID); err != nil {
			return mapErr("delete user: logs", err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
		return mapErr("delete user", err)
	})
}
