package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Audit event kinds: the table's CHECK accepts these and nothing else.
const (
	AuditLogin          = "login"
	AuditLogout         = "logout"
	AuditSessionRevoked = "session_revoked"
	AuditAppDeploy      = "app_deploy"
	AuditAppRestart     = "app_restart"
	AuditAppStart       = "app_start"
	AuditAppStop        = "app_stop"
	AuditAppDelete      = "app_delete"
	AuditEnvSet         = "env_set"
	AuditEnvDelete      = "env_delete"
	AuditGitTokenLink   = "git_token_link"
	AuditGitTokenRevoke = "git_token_revoke"
	AuditDomainCreate   = "domain_create"
	AuditDomainVerify   = "domain_verify"
	AuditDomainDelete   = "domain_delete"
)

// AuditEvent is one row of a user's append-only audit log.
type AuditEvent struct {
	ID        int64
	UserID    int64
	Kind      string
	IP        string
	UserAgent string
	// Details is a JSON object.
	Details   json.RawMessage
	CreatedAt time.Time
}

// NewAuditEvent describes an audit event to record.
type NewAuditEvent struct {
	UserID int64
	// Kind is one of the Audit* constants; any other is ErrInvalid.
	Kind      string
	IP        string
	UserAgent string
	// Details is a JSON object; nil means {}.
	Details json.RawMessage
}

// RecordAuditEvent appends an audit event.
func (s *Store) RecordAuditEvent(ctx context.Context, e NewAuditEvent) error {
	return recordAuditEvent(ctx, s.pool, e)
}

// RecordAuditEventTx is RecordAuditEvent inside the caller's transaction.
func RecordAuditEventTx(ctx context.Context, tx pgx.Tx, e NewAuditEvent) error {
	return recordAuditEvent(ctx, tx, e)
}

func recordAuditEvent(ctx context.Context, q Querier, e NewAuditEvent) error {
	details := e.Details
	if len(details) == 0 {
		details = json.RawMessage(`{}`)
	}
	if !json.Valid(details) || details[0] != '{' {
		return fmt.Errorf("store: record audit event: details are not a JSON object: %w", ErrInvalid)
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_events (user_id, kind, ip, user_agent, details) VALUES ($1, $2, $3, $4, $5)`,
		e.UserID, e.Kind, e.IP, e.UserAgent, string(details))
	return mapErr("record audit event", err)
}

// ListAuditEvents returns up to limit (1..1000) of the user's audit
// events, newest first, with ids below before (0: from the newest); the
// last one's id is the next page's before.
func (s *Store) ListAuditEvents(ctx context.Context, userID int64, limit int, before int64) ([]*AuditEvent, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("store: list audit events: limit %d is not within 1..1000: %w", limit, ErrInvalid)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, user_id, kind, ip, user_agent, details, created_at FROM audit_events
		WHERE user_id = $1 AND ($2::bigint = 0 OR id < $2::bigint)
		ORDER BY id DESC LIMIT $3`, userID, before, limit)
	if err != nil {
		return nil, mapErr("list audit events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*AuditEvent, error) {
		var e AuditEvent
		var details []byte
		err := r.Scan(&e.ID, &e.UserID, &e.Kind, &e.IP, &e.UserAgent, &details, &e.CreatedAt)
		e.Details = json.RawMessage(details)
		return &e, err
	})
	return out, mapErr("list audit events", err)
}

// HasAuditEventForIP reports whether the user has any audit event from ip
// (a login from an IP without one is from a new device).
func (s *Store) HasAuditEventForIP(ctx context.Context, userID int64, ip string) (bool, error) {
	return hasAuditEventForIP(ctx, s.pool, userID, ip)
}

// HasAuditEventForIPTx is HasAuditEventForIP inside the caller's
// transaction.
func HasAuditEventForIPTx(ctx context.Context, tx pgx.Tx, userID int64, ip string) (bool, error) {
	return hasAuditEventForIP(ctx, tx, userID, ip)
}

func hasAuditEventForIP(ctx context.Context, q Querier, userID int64, ip string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE user_id = $1 AND ip = $2)`, userID, ip).Scan(&ok)
	return ok, mapErr("has audit event for ip", err)
}
