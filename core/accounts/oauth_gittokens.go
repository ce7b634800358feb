package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// listGitTokens answers GET /api/v1/git-tokens: the caller's linked git
// providers, never their tokens.
func (s *Service) listGitTokens(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	list, err := s.o.Store.ListGitTokens(req.Context(), c.User.ID)
	if err != nil {
		return fmt.Errorf("accounts: list git tokens: %w", err)
	}
	if list == nil {
		list = []store.LinkedProvider{}
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"git_tokens": list})
}

// revokeGitToken answers DELETE /api/v1/git-tokens/:provider: it forgets
// the caller's token for the provider and audits git_token_revoke.
func (s *Service) revokeGitToken(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	name := req.Param("provider")
	if d, ok := providers[name]; !ok || !d.git {
		return api.Errorf(http.StatusNotFound, "not_found", "no such git provider")
	}
	err := s.o.Store.DeleteGitToken(req.Context(), c.User.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "not_found", "%s is not linked", name)
	}
	if err != nil {
		return fmt.Errorf("accounts: revoke git token: %w", err)
	}
	details, _ := json.Marshal(map[string]string{"provider": name})
	if err := s.o.Store.RecordAuditEvent(req.Context(), store.NewAuditEvent{UserID: c.User.ID, Kind: store.AuditGitTokenRevoke,
		IP: ClientIP(req.Request), UserAgent: clip(req.UserAgent(), maxUserAgent), Details: details}); err != nil {
		return fmt.Errorf("accounts: revoke git token: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
