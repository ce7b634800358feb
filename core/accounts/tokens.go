package accounts

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// API token limits.
const (
	// MaxAPITokens is how many live tokens a user may have.
	MaxAPITokens = 50
	// maxTokenName is the longest token name, in characters.
	maxTokenName = 100
	// maxTokenDays is the longest expiry a token may be given.
	maxTokenDays = 3650
)

// tokenView is an API token as lists show it (never the token).
type tokenView struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

func viewToken(t *store.APIToken) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt}
}

func (s *Service) listTokens(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	list, err := s.o.Store.ListAPITokens(req.Context(), c.User.ID)
	if err != nil {
		return fmt.Errorf("accounts: list api tokens: %w", err)
	}
	out := make([]tokenView, 0, len(list))
	for _, t := range list {
		out = append(out, viewToken(t))
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// createTokenRequest is the body of POST /api/v1/tokens.
type createTokenRequest struct {
	Name string `json:"name"`
	// ExpiresInDays, when set, makes the token expire (1..3650 days).
	ExpiresInDays int `json:"expires_in_days,omitempty"`
}

// createTokenResponse shows the token, once.
type createTokenResponse struct {
	tokenView
	Token string `json:"token"`
}

func (s *Service) createToken(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	var body createTokenRequest
	if err := api.DecodeJSON(req.Request, 4<<10, &body); err != nil {
		return err
	}
	body.Name = strings.TrimSpace(body.Name)
	if body.Name == "" || utf8.RuneCountInString(body.Name) > maxTokenName || !utf8.ValidString(body.Name) {
		return api.Errorf(http.StatusBadRequest, "bad_name", "name must be 1..%d characters", maxTokenName)
	}
	var expires *time.Time
	if body.ExpiresInDays != 0 {
		if body.ExpiresInDays < 0 || body.ExpiresInDays > maxTokenDays {
			return api.Errorf(http.StatusBadRequest, "bad_expiry", "expires_in_days must be within 1..%d", maxTokenDays)
		}
		e := s.o.Now().Add(time.Duration(body.ExpiresInDays) * 24 * time.Hour)
		expires = &e
	}
	live, err := s.o.Store.ListAPITokens(req.Context(), c.User.ID)
	if err != nil {
		return fmt.Errorf("accounts: create api token: %w", err)
	}
	if len(live) >= MaxAPITokens {
		return api.Errorf(http.StatusConflict, "too_many_tokens", "you have %d API tokens, the most allowed; revoke one first", len(live))
	}
	tok, hash, err := NewToken(APITokenPrefix)
	if err != nil {
		return err
	}
	t, err := s.o.Store.CreateAPIToken(req.Context(), store.NewAPIToken{UserID: c.User.ID, Name: body.Name,
		TokenHash: hash, Prefix: displayPrefix(tok), ExpiresAt: expires})
	if errors.Is(err, store.ErrInvalid) {
		return api.Errorf(http.StatusBadRequest, "bad_token", "the token could not be created with these values")
	}
	if err != nil {
		return fmt.Errorf("accounts: create api token: %w", err)
	}
	return api.WriteJSON(w, http.StatusCreated, createTokenResponse{tokenView: viewToken(t), Token: tok})
}

func (s *Service) revokeToken(w http.ResponseWriter, req bunrouter.Request) error {
	c := CallerFrom(req.Context())
	id, err := pathID(req)
	if err != nil {
		return err
	}
	if err := s.o.Store.RevokeAPIToken(req.Context(), id, c.User.ID); errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "not_found", "no such API token")
	} else if err != nil {
		return fmt.Errorf("accounts: revoke api token: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
