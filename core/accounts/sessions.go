package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// meView is GET /api/v1/me.
type meView struct {
	ID          int64     `json:"id"`
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	AvatarURL   string    `json:"avatar_url"`
	Plan        string    `json:"plan"`
	TOTPEnabled bool      `json:"totp_enabled"`
	CreatedAt   time.Time `json:"created_at"`
	// Auth is "session" or "token".
	Auth string `json:"auth"`
}

func (s *Service) me(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	u := c.User
	auth := "session"
	if c.TokenID != 0 {
		auth = "token"
	}
	return api.WriteJSON(w, http.StatusOK, meView{ID: u.ID, Email: u.Email, Name: u.Name, AvatarURL: u.AvatarURL,
		Plan: u.Plan, TOTPEnabled: u.TOTPEnabled, CreatedAt: u.CreatedAt, Auth: auth})
}

// sessionView is a session as the API shows it.
type sessionView struct {
	ID         int64     `json:"id"`
	IP         string    `json:"ip"`
	City       string    `json:"city,omitempty"`
	Country    string    `json:"country,omitempty"`
	Device     string    `json:"device"`
	Browser    string    `json:"browser"`
	OS         string    `json:"os"`
	TwoFactor  bool      `json:"two_factor"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// Current marks the session making the request.
	Current bool `json:"current"`
}

func (s *Service) listSessions(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	list, err := s.o.Store.ListSessions(req.Context(), c.User.ID, s.o.SessionTTL)
	if err != nil {
		return fmt.Errorf("accounts: list sessions: %w", err)
	}
	out := make([]sessionView, 0, len(list))
	for _, x := range list {
		out = append(out, sessionView{ID: x.ID, IP: x.IP, City: x.City, Country: x.Country, Device: x.Device,
			Browser: x.Browser, OS: x.OS, TwoFactor: x.TwoFactor, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt,
			Current: x.ID == c.SessionID})
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// pathID parses the :id parameter.
func pathID(req bunrouter.Request) (int64, error) {
	id, err := strconv.ParseInt(req.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, api.Errorf(http.StatusBadRequest, "bad_id", "the id in the path must be a positive integer")
	}
	return id, nil
}

// audit records an audit event of the caller's request; a failure is
// logged, never the request's.
func (s *Service) audit(r *http.Request, userID int64, kind string, details map[string]any) {
	b, err := json.Marshal(details)
	if err == nil {
		err = s.o.Store.RecordAuditEvent(r.Context(), store.NewAuditEvent{UserID: userID, Kind: kind, IP: ClientIP(r),
			UserAgent: clip(r.UserAgent(), maxUserAgent), Details: b})
	}
	if err != nil {
		s.log.Error("recording an audit event failed", "user_id", userID, "kind", kind, "error", err)
	}
}

func (s *Service) revokeSession(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	id, err := pathID(req)
	if err != nil {
		return err
	}
	if err := s.o.Store.RevokeSession(req.Context(), id, c.User.ID); errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "not_found", "no such session")
	} else if err != nil {
		return fmt.Errorf("accounts: revoke session: %w", err)
	}
	s.audit(req.Request, c.User.ID, store.AuditSessionRevoked, map[string]any{"session_id": id})
	if id == c.SessionID {
		s.clearCookie(w)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) revokeOthers(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	// With an API token there is no current session: every session goes.
	n, err := s.o.Store.RevokeOtherSessions(req.Context(), c.User.ID, c.SessionID)
	if err != nil {
		return fmt.Errorf("accounts: revoke other sessions: %w", err)
	}
	if n > 0 {
		s.audit(req.Request, c.User.ID, store.AuditSessionRevoked, map[string]any{"others": n, "kept_session_id": c.SessionID})
	}
	return api.WriteJSON(w, http.StatusOK, map[string]int64{"revoked": n})
}

func (s *Service) logout(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	if c.SessionID == 0 {
		return api.Errorf(http.StatusBadRequest, "no_session", "logout ends a browser session; to stop using an API token, revoke it")
	}
	if err := s.o.Store.RevokeSession(req.Context(), c.SessionID, c.User.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("accounts: logout: %w", err)
	}
	s.audit(req.Request, c.User.ID, store.AuditLogout, map[string]any{"session_id": c.SessionID})
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// auditView is an audit event as the API shows it.
type auditView struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"user_agent"`
	Details   json.RawMessage `json:"details"`
	CreatedAt time.Time       `json:"created_at"`
}

// Audit pages: default and largest limits.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 200
)

// listAudit serves GET /api/v1/audit?limit=&before=: the caller's events,
// newest first; next_before, when present, fetches the next page.
func (s *Service) listAudit(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	q := req.URL.Query()
	limit, before := defaultAuditLimit, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return api.Errorf(http.StatusBadRequest, "bad_limit", "limit must be an integer within 1..%d", maxAuditLimit)
		}
		limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return api.Errorf(http.StatusBadRequest, "bad_cursor", "before must be a positive integer (a previous page's next_before)")
		}
		before = n
	}
	list, err := s.o.Store.ListAuditEvents(req.Context(), c.User.ID, limit, before)
	if err != nil {
		return fmt.Errorf("accounts: list audit events: %w", err)
	}
	out := make([]auditView, 0, len(list))
	for _, e := range list {
		out = append(out, auditView{ID: e.ID, Kind: e.Kind, IP: e.IP, UserAgent: e.UserAgent, Details: e.Details, CreatedAt: e.CreatedAt})
	}
	body := map[string]any{"events": out}
	if len(list) == limit {
		body["next_before"] = list[len(list)-1].ID
	}
	return api.WriteJSON(w, http.StatusOK, body)
}
