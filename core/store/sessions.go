package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SessionBumpInterval is the least time between two last_seen_at bumps of
// a session (BumpSessionLastSeen): the rolling TTL needs no finer clock.
const SessionBumpInterval = time.Minute

// LockPruneSessions guards the 6-hourly prune of revoked and idle sessions
// and expired pending TOTP challenges.
const LockPruneSessions int64 = 0x5748_0000_0000_0005

// Session is a user's browser session. Its token is never stored: only
// sha256(token) identifies it.
type Session struct {
	ID        int64
	UserID    int64
	IP        string
	City      string
	Country   string
	UserAgent string
	// Device, Browser and OS are parsed from UserAgent when it was created.
	Device  string
	Browser string
	OS      string
	// TwoFactor records that the login passed a second factor.
	TwoFactor  bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	RevokedAt  *time.Time
}

const sessionColumns = `id, user_id, ip, city, country, user_agent, device, browser, os, two_factor,
	created_at, last_seen_at, revoked_at`

func scanSession(r pgx.Row) (*Session, error) {
	var x Session
	err := r.Scan(&x.ID, &x.UserID, &x.IP, &x.City, &x.Country, &x.UserAgent, &x.Device, &x.Browser, &x.OS,
		&x.TwoFactor, &x.CreatedAt, &x.LastSeenAt, &x.RevokedAt)
	return &x, err
}

// NewSession describes a session to create.
type NewSession struct {
	UserID int64
	// TokenHash is the sha256 hex of the cookie token.
	TokenHash string
	IP        string
	// City and Country are where IP is, when known.
	City, Country string
	UserAgent     string
	// Device, Browser and OS are parsed from UserAgent.
	Device, Browser, OS string
	// TwoFactor records that the login passed a second factor.
	TwoFactor bool
}

// CreateSession inserts a session and returns its id. A malformed hash or
// an unknown user is ErrInvalid, a hash already in use ErrConflict.
func (s *Store) CreateSession(ctx context.Context, ns NewSession) (int64, error) {
	return createSession(ctx, s.pool, ns)
}

// CreateSessionTx is CreateSession inside the caller's transaction (a login
// records its audit event and outbox event in the same one).
func CreateSessionTx(ctx context.Context, tx pgx.Tx, ns NewSession) (int64, error) {
	return createSession(ctx, tx, ns)
}

func createSession(ctx context.Context, q Querier, ns NewSession) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `
		INSERT INTO sessions (user_id, token_hash, ip, city, country, user_agent, device, browser, os, two_factor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		ns.UserID, ns.TokenHash, ns.IP, ns.City, ns.Country, ns.UserAgent, ns.Device, ns.Browser, ns.OS, ns.TwoFactor).Scan(&id)
	return id, mapErr("create session", err)
}

// FindSessionByTokenHash returns the live session of a token hash: not
// revoked and seen within ttl (the rolling, idle expiry). Anything else is
// ErrNotFound.
func (s *Store) FindSessionByTokenHash(ctx context.Context, tokenHash string, ttl time.Duration) (*Session, error) {
	x, err := scanSession(s.pool.QueryRow(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE token_hash = $1 AND revoked_at IS NULL AND last_seen_at > now() - make_interval(secs => $2)`,
		tokenHash, ttl.Seconds()))
	if err != nil {
		return nil, mapErr("find session", err)
	}
	return x, nil
}

// BumpSessionLastSeen moves a live session's last_seen_at to now and
// records the client's current IP and user agent, unless it was bumped
// less than SessionBumpInterval ago (the throttle is in the statement, so
// callers may call it on every request); bumped reports whether it did. A
// new IP clears the city and country that were the old one's.
func (s *Store) BumpSessionLastSeen(ctx context.Context, id int64, ip, userAgent string) (bumped bool, err error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE sessions SET last_seen_at = now(), ip = $2, user_agent = $3,
			city = CASE WHEN ip = $2 THEN city ELSE '' END,
			country = CASE WHEN ip = $2 THEN country ELSE '' END
		WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < now() - make_interval(secs => $4)`,
		id, ip, userAgent, SessionBumpInterval.Seconds())
	if err != nil {
		return false, mapErr("bump session", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListSessions returns the user's live sessions (not revoked, seen within
// ttl), most recently seen first.
func (s *Store) ListSessions(ctx context.Context, userID int64, ttl time.Duration) ([]*Session, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND last_seen_at > now() - make_interval(secs => $2)
		ORDER BY last_seen_at DESC, id DESC`, userID, ttl.Seconds())
	if err != nil {
		return nil, mapErr("list sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Session, error) { return scanSession(r) })
	return out, mapErr("list sessions", err)
}

// RevokeSession revokes the user's session id. It is ErrNotFound when the
// session is another user's, unknown or already revoked.
func (s *Store) RevokeSession(ctx context.Context, id, userID int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, userID)
	if err != nil {
		return mapErr("revoke session", err)
	}
	if tag.RowsAffected() == 0 {
		return mapErr("revoke session", pgx.ErrNoRows)
	}
	return nil
}

// RevokeOtherSessions revokes every live session of the user except keepID
// and returns how many it revoked.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID, keepID int64) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, userID, keepID)
	if err != nil {
		return 0, mapErr("revoke other sessions", err)
	}
	return tag.RowsAffected(), nil
}

// PruneSessions deletes, in batches, the revoked sessions and those idle
// for longer than ttl, and returns how many. Run it as a cluster-wide
// singleton (LockPruneSessions).
func (s *Store) PruneSessions(ctx context.Context, ttl time.Duration) (int64, error) {
	return s.pruneBatches(ctx, "prune sessions", `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE revoked_at IS NOT NULL OR last_seen_at < now() - make_interval(secs => $2)
		LIMIT $1)`, ttl.Seconds())
}

// PrunePendingTOTPs deletes the expired pending 2FA challenges and returns
// how many.
func (s *Store) PrunePendingTOTPs(ctx context.Context) (int64, error) {
	return s.pruneBatches(ctx, "prune pending totps", `DELETE FROM pending_totps WHERE token_hash IN (
		SELECT token_hash FROM pending_totps WHERE expires_at < now() LIMIT $1)`)
}

// pruneBatches runs a DELETE taking the batch size as $1 and args from
// $2 on, until it deletes fewer than pruneBatch rows.
func (s *Store) pruneBatches(ctx context.Context, op, sql string, args ...any) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, sql, append([]any{pruneBatch}, args...)...)
		if err != nil {
			return total, mapErr(op, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
