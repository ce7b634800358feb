package accounts

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/store"
)

// errInvalidLink is the one answer to every revoke link that did not
// revoke a session: malformed, forged, expired, or naming a session that
// is unknown, another user's or already revoked. Nothing tells them apart.
var errInvalidLink = api.Errorf(http.StatusBadRequest, "invalid_link",
	"this link is invalid or has expired, or the session was already signed out")

// revokeByLink serves GET /api/session/revoke-token?token=…, the
// unauthenticated link of the new-device mail: the HMAC token is its only
// proof.
func (s *Service) revokeByLink(w http.ResponseWriter, req bunrouter.Request) error {
	tok := req.URL.Query().Get("token")
	userID, sessionID, err := mail.VerifyRevokeToken(tok, s.o.RevokeKey, s.o.Now())
	if err != nil {
		s.log.Debug("revoke link refused", "reason", err) // the error never quotes the token
		return errInvalidLink
	}
	if err := s.o.Store.RevokeSession(req.Context(), sessionID, userID); errors.Is(err, store.ErrNotFound) {
		return errInvalidLink
	} else if err != nil {
		return fmt.Errorf("accounts: revoke by link: %w", err)
	}
	s.audit(req.Request, userID, store.AuditSessionRevoked, map[string]any{"session_id": sessionID, "via": "email_link"})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	return api.WriteJSON(w, http.StatusOK, map[string]string{"status": "revoked",
		"message": "The session was signed out. If this sign-in was not you, review your account's sessions."})
}
