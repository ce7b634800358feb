package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Domain statuses. A domain is pending until its DNS TXT record is first
// seen, then verified: only verified domains are routed (ListRoutes). A
// verified domain whose record disappears stays verified through a grace
// period (RecordDomainChecks) and then becomes failed, which takes it out
// of the routes; a later successful check makes it verified again. A
// pending domain that never verifies stays pending.
const (
	DomainPending  = "pending"
	DomainVerified = "verified"
	DomainFailed   = "failed"
)

// Domain is a custom domain of a user's app.
type Domain struct {
	ID     int64
	AppID  int64
	UserID int64
	// AppUUID and AppName identify the app for the owner.
	AppUUID, AppName string
	// Hostname is lowercase ASCII (internationalized names in punycode).
	Hostname string
	// Token is the value the TXT record must hold; the owner sees it.
	Token  string
	Status string
	// VerifiedAt is when the record was last seen, set by verification and
	// refreshed by every successful re-check; nil unless Status is
	// verified.
	VerifiedAt *time.Time
	// LastCheckedAt is the last check's time, whatever its outcome; nil
	// before the first.
	LastCheckedAt *time.Time
	// CheckError is why the last check failed; "" when it succeeded (or
	// none ran yet).
	CheckError string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// domainColumns select a Domain from domains d joined with its app a.
const domainColumns = `d.id, d.app_id, d.user_id, a.uuid::text, a.name, d.hostname, d.verification_token, d.status,
	d.verified_at, d.last_checked_at, d.check_error, d.created_at, d.updated_at`

func scanDomain(r pgx.Row) (*Domain, error) {
	var d Domain
	err := r.Scan(&d.ID, &d.AppID, &d.UserID, &d.AppUUID, &d.AppName, &d.Hostname, &d.Token, &d.Status,
		&d.VerifiedAt, &d.LastCheckedAt, &d.CheckError, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func collectDomains(rows pgx.Rows, err error) ([]*Domain, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Domain, error) { return scanDomain(r) })
}

// NewDomain holds what CreateDomain needs. Hostname must already be
// normalised (core/domains.NormalizeHostname); the database checks only
// its shape.
type NewDomain struct {
	AppID, UserID int64
	Hostname      string
	Token         string
	// ReplaceStaleBefore, when set, lets the creation take the hostname
	// over from another user whose claim is not verified and was made
	// before it: an unproven claim must not block the name's real owner
	// forever. Zero: never take over.
	ReplaceStaleBefore time.Time
	// MaxPerUser caps the user's domains (0: unlimited): with that many
	// already, CreateDomain fails with ErrQuota.
	MaxPerUser int
}

// CreateDomain adds a pending domain to the user's live app. The app
// missing, deleted or someone else's is ErrNotFound; the hostname already
// claimed (by anyone) is ErrConflict, except that a claim on a deleted app
// and, with ReplaceStaleBefore, another user's stale unverified claim are
// replaced. One statement.
func (s *Store) CreateDomain(ctx context.Context, nd NewDomain) (*Domain, error) {
	var stale *time.Time
	if !nd.ReplaceStaleBefore.IsZero() {
		stale = &nd.ReplaceStaleBefore
	}
	// gone runs before the insert (the insert reads it), so the replaced
	// row no longer holds the unique hostname when the new one arrives.
	d, err := scanDomain(s.pool.QueryRow(ctx, `
		WITH app AS (
			SELECT id, user_id FROM apps WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL),
		gone AS (
			DELETE FROM domains d USING apps a
			WHERE d.hostname = $3 AND a.id = d.app_id AND EXISTS (SELECT 1 FROM app)
				AND (a.deleted_at IS NOT NULL
					OR ($5::timestamptz IS NOT NULL AND d.user_id <> $2 AND d.status <> 'verified' AND d.created_at < $5))
			RETURNING d.id),
		d AS (
			INSERT INTO domains (app_id, user_id, hostname, verification_token)
			SELECT id, user_id, $3, $4 FROM app
			WHERE (SELECT count(*) FROM gone) >= 0
				AND ($6::int <= 0 OR (SELECT count(*) FROM domains WHERE user_id = $2) < $6::int)
			RETURNING *)
		SELECT `+domainColumns+` FROM d JOIN apps a ON a.id = d.app_id`,
		nd.AppID, nd.UserID, nd.Hostname, nd.Token, stale, nd.MaxPerUser))
	if errors.Is(err, pgx.ErrNoRows) && nd.MaxPerUser > 0 {
		// Tell a missing app from the limit.
		var owned bool
		qerr := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM apps WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL)`,
			nd.AppID, nd.UserID).Scan(&owned)
		if qerr != nil {
			return nil, mapErr("create domain", qerr)
		}
		if owned {
			return nil, fmt.Errorf("store: create domain: at most %d domains per user: %w", nd.MaxPerUser, ErrQuota)
		}
	}
	if err != nil {
		return nil, mapErr("create domain", err)
	}
	return d, nil
}

// ListDomainsForUser returns the user's domains on live apps, by
// hostname.
func (s *Store) ListDomainsForUser(ctx context.Context, userID int64) ([]*Domain, error) {
	out, err := collectDomains(s.pool.Query(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id
		WHERE d.user_id = $1 AND a.deleted_at IS NULL ORDER BY d.hostname`, userID))
	if err != nil {
		return nil, mapErr("list domains for user", err)
	}
	return out, nil
}

// ListDomainsForApp returns the domains of the app, by hostname, when the
// app is live and the user's; otherwise none.
func (s *Store) ListDomainsForApp(ctx context.Context, appID, userID int64) ([]*Domain, error) {
	out, err := collectDomains(s.pool.Query(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id
		WHERE d.app_id = $1 AND d.user_id = $2 AND a.deleted_at IS NULL ORDER BY d.hostname`, appID, userID))
	if err != nil {
		return nil, mapErr("list domains for app", err)
	}
	return out, nil
}

// FindDomain returns the user's domain id on a live app; anything else,
// someone else's domain included, is ErrNotFound.
func (s *Store) FindDomain(ctx context.Context, id, userID int64) (*Domain, error) {
	d, err := scanDomain(s.pool.QueryRow(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id
		WHERE d.id = $1 AND d.user_id = $2 AND a.deleted_at IS NULL`, id, userID))
	if err != nil {
		return nil, mapErr("find domain", err)
	}
	return d, nil
}

// FindDomainByHostname is FindDomain by (normalised) hostname.
func (s *Store) FindDomainByHostname(ctx context.Context, hostname string, userID int64) (*Domain, error) {
	d, err := scanDomain(s.pool.QueryRow(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id
		WHERE d.hostname = $1 AND d.user_id = $2 AND a.deleted_at IS NULL`, hostname, userID))
	if err != nil {
		return nil, mapErr("find domain by hostname", err)
	}
	return d, nil
}

// ListVerifiedDomainsForApp returns the hostnames of the app's verified
// domains, sorted.
func (s *Store) ListVerifiedDomainsForApp(ctx context.Context, appID int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT hostname::text FROM domains WHERE app_id = $1 AND status = 'verified' ORDER BY hostname`, appID)
	if err != nil {
		return nil, mapErr("list verified domains", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr("list verified domains", err)
	}
	return out, nil
}

// DeleteDomain removes the user's domain and returns it; anything else is
// ErrNotFound.
func (s *Store) DeleteDomain(ctx context.Context, id, userID int64) (*Domain, error) {
	d, err := scanDomain(s.pool.QueryRow(ctx, `DELETE FROM domains d USING apps a
		WHERE d.id = $1 AND d.user_id = $2 AND a.id = d.app_id AND a.deleted_at IS NULL
		RETURNING `+domainColumns, id, userID))
	if err != nil {
		return nil, mapErr("delete domain", err)
	}
	return d, nil
}

// MarkDomainVerified records a successful check at at: the domain becomes
// (or stays) verified, and its VerifiedAt is at. It returns the domain.
func (s *Store) MarkDomainVerified(ctx context.Context, id int64, at time.Time) (*Domain, error) {
	return s.recordOne(ctx, "mark domain verified", DomainCheck{ID: id, OK: true}, at)
}

// MarkDomainCheckFailed records a failed check at at with its reason
// without changing the status: a pending domain stays pending, and only
// the re-check loop's grace rule (RecordDomainChecks) fails a verified
// one. It returns the domain.
func (s *Store) MarkDomainCheckFailed(ctx context.Context, id int64, reason string, at time.Time) (*Domain, error) {
	return s.recordOne(ctx, "mark domain check failed", DomainCheck{ID: id, Error: reason}, at)
}

func (s *Store) recordOne(ctx context.Context, op string, c DomainCheck, at time.Time) (*Domain, error) {
	if _, err := s.RecordDomainChecks(ctx, at, time.Time{}, []DomainCheck{c}); err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	d, err := scanDomain(s.pool.QueryRow(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.id = $1`, c.ID))
	if err != nil {
		return nil, mapErr(op, err)
	}
	return d, nil
}

// DomainDue says which domains a re-check pass takes (DomainsDueForCheck).
type DomainDue struct {
	// CheckedBefore: a domain never checked or last checked at or before
	// it is due.
	CheckedBefore time.Time
	// A pending domain created after PendingCreatedAfter is due already
	// when last checked at or before PendingCheckedBefore: new domains are
	// checked often while their owner sets up DNS. Zero: no such rule.
	PendingCreatedAfter, PendingCheckedBefore time.Time
}

// DomainsDueForCheck returns up to limit domains of live apps due for a
// DNS check, longest unchecked first: one query.
func (s *Store) DomainsDueForCheck(ctx context.Context, due DomainDue, limit int) ([]*Domain, error) {
	var pendingAfter, pendingBefore *time.Time
	if !due.PendingCreatedAfter.IsZero() && !due.PendingCheckedBefore.IsZero() {
		pendingAfter, pendingBefore = &due.PendingCreatedAfter, &due.PendingCheckedBefore
	}
	out, err := collectDomains(s.pool.Query(ctx, `SELECT `+domainColumns+`
		FROM domains d JOIN apps a ON a.id = d.app_id
		WHERE a.deleted_at IS NULL AND (d.last_checked_at IS NULL OR d.last_checked_at <= $1
			OR (d.status = 'pending' AND d.created_at > $2 AND d.last_checked_at <= $3))
		ORDER BY d.last_checked_at NULLS FIRST, d.id
		LIMIT $4`, due.CheckedBefore, pendingAfter, pendingBefore, limit))
	if err != nil {
		return nil, mapErr("domains due for check", err)
	}
	return out, nil
}

// DomainCheck is the outcome of one domain's DNS check.
type DomainCheck struct {
	ID int64
	// OK: the TXT record holds the domain's token.
	OK bool
	// Absent, when not OK: the answer proves the record missing or wrong
	// (no such name, no TXT record, none matching). False: the lookup
	// itself failed (timeout, SERVFAIL), which proves nothing.
	Absent bool
	// Error says why the check failed; "" when OK.
	Error string
}

// DomainTransition is a status change RecordDomainChecks made.
type DomainTransition struct {
	ID       int64
	Hostname string
	From, To string
}

// RecordDomainChecks records a pass's checks, made at at, and returns the
// status changes:
//
//   - OK: the domain becomes (or stays) verified, VerifiedAt = at.
//   - A verified domain fails only when its check is Absent, it was not
//     seen since failBefore (VerifiedAt before it), and the check before
//     this one failed too (LastCheckedAt after VerifiedAt): one DNS blip,
//     or a first failure after the checker was down for a while, never
//     takes a domain off the routes. A lookup error never fails it. A zero
//     failBefore never fails anything.
//   - Otherwise the status stays; CheckError and LastCheckedAt record the
//     check.
//
// The checks are written in one statement. Status changes, when there are
// any, take a second one in the same transaction: the route triggers
// (migration 006) fire for every statement that sets status, even one
// that changes no row, so a pass that changes nothing must not set it and
// wake every core's route reload.
func (s *Store) RecordDomainChecks(ctx context.Context, at, failBefore time.Time, checks []DomainCheck) ([]DomainTransition, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(checks))
	oks := make([]bool, len(checks))
	absent := make([]bool, len(checks))
	errs := make([]string, len(checks))
	for i, c := range checks {
		ids[i], oks[i], absent[i] = c.ID, c.OK, c.Absent && !c.OK
		if !c.OK {
			errs[i] = c.Error
		}
	}
	var fb *time.Time
	if !failBefore.IsZero() {
		fb = &failBefore
	}
	var out []DomainTransition
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH c AS (
				SELECT c.id, c.ok, c.err, d.status AS old,
					CASE WHEN c.ok THEN 'verified'
						WHEN d.status = 'verified' AND c.absent AND $2::timestamptz IS NOT NULL
							AND d.verified_at < $2 AND d.last_checked_at > d.verified_at THEN 'failed'
						ELSE d.status::text END AS new
				FROM unnest($3::bigint[], $4::bool[], $5::bool[], $6::text[]) AS c(id, ok, absent, err)
				JOIN domains d ON d.id = c.id
				FOR UPDATE OF d)
			UPDATE domains d SET last_checked_at = $1, check_error = c.err,
				verified_at = CASE WHEN c.ok AND d.status = 'verified' THEN $1 ELSE d.verified_at END,
				updated_at = CASE WHEN c.err <> d.check_error THEN $1 ELSE d.updated_at END
			FROM c WHERE d.id = c.id
			RETURNING d.id, d.hostname::text, c.old, c.new`,
			at, fb, ids, oks, absent, errs)
		if err != nil {
			return mapErr("record domain checks", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DomainTransition, error) {
			var t DomainTransition
			err := r.Scan(&t.ID, &t.Hostname, &t.From, &t.To)
			return t, err
		})
		if err != nil {
			return mapErr("record domain checks", err)
		}
		out = deleteUnchanged(out)
		if len(out) == 0 {
			return nil
		}
		tids := make([]int64, len(out))
		tos := make([]string, len(out))
		for i, t := range out {
			tids[i], tos[i] = t.ID, t.To
		}
		_, err = tx.Exec(ctx, `UPDATE domains d SET status = t.status,
				verified_at = CASE WHEN t.status = 'verified' THEN $1::timestamptz END, updated_at = $1
			FROM unnest($2::bigint[], $3::text[]) AS t(id, status) WHERE d.id = t.id`, at, tids, tos)
		return mapErr("record domain checks: status", err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deleteUnchanged keeps the transitions that change a status.
func deleteUnchanged(ts []DomainTransition) []DomainTransition {
	out := ts[:0]
	for _, t := range ts {
		if t.From != t.To {
			out = append(out, t)
		}
	}
	return out
}
