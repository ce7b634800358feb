package userapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/store"
)

// maxPushBody bounds an inbound push delivery.
const maxPushBody = gitprovider.MaxPushBody

// hookPath is where a provider delivers an app's pushes.
const hookPath = "/api/v1/hooks/git/"

func (s *Service) autoDeployRoutes() []Route {
	return []Route{
		{Method: http.MethodPut, Path: "/api/v1/apps/:app/auto-deploy", Limited: true, handler: s.setAutoDeploy},
		{Method: http.MethodPost, Path: hookPath + ":app", Public: true, Limited: true, handler: s.receivePush},
	}
}

// hookSecret is the app's push webhook secret: derived from the core's
// key and the app's UUID, so nothing extra is stored and every core
// verifies deliveries alike.
func (s *Service) hookSecret(appUUID string) string {
	m := hmac.New(sha256.New, s.o.HookKey)
	m.Write([]byte(appUUID))
	return hex.EncodeToString(m.Sum(nil))
}

type autoDeployRequest struct {
	Enabled *bool `json:"enabled"`
}

// setAutoDeploy turns push auto-deploy on (creating the push webhook at
// the git provider with the user's linked token) or off (removing it).
func (s *Service) setAutoDeploy(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	var in autoDeployRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if in.Enabled == nil {
		return badRequest(`the body must be {"enabled": true|false}`)
	}
	if s.o.Git == nil || s.o.BaseURL == "" {
		return api.Errorf(http.StatusUnprocessableEntity, "auto_deploy_unavailable",
			"push auto-deploy needs server.base_url, the address git providers deliver to: ask the operator to set it")
	}
	if *in.Enabled && !a.AutoDeploy {
		repo, err := s.o.Git.ParseRepo(a.GitRepo)
		if err != nil {
			return api.Errorf(http.StatusUnprocessableEntity, "unsupported_provider",
				"push auto-deploy works with repositories on GitHub, GitLab, Bitbucket and Codeberg/Gitea: %v", err)
		}
		provider := string(repo.Provider)
		token, _, err := s.o.Store.GetGitToken(ctx, u.ID, provider)
		if errors.Is(err, store.ErrNotFound) {
			return api.Errorf(http.StatusUnprocessableEntity, "provider_not_linked",
				"link your %s account first (GET /api/v1/auth/%s/login): the webhook is created with your token", provider, provider)
		}
		if err != nil {
			return err
		}
		id, err := s.o.Git.CreateHook(ctx, token, repo, s.o.BaseURL+hookPath+a.UUID, s.hookSecret(a.UUID))
		if err != nil {
			return providerErr(err, "create the push webhook")
		}
		if err := s.o.Store.SetAppWebhookID(ctx, a.ID, id); err != nil {
			return storeErr(err, "app")
		}
	}
	if !*in.Enabled && a.AutoDeploy && a.WebhookID != "" {
		if err := s.removePushHook(ctx, u, a); err != nil {
			return providerErr(err, "remove the push webhook")
		}
	}
	if err := s.o.Store.SetAppAutoDeploy(ctx, a.ID, *in.Enabled); err != nil {
		return storeErr(err, "app")
	}
	s.wrote(u.ID)
	return api.WriteJSON(w, http.StatusOK, map[string]any{"auto_deploy": *in.Enabled, "branch": a.GitBranch})
}

// providerErr explains a git provider's refusal.
func providerErr(err error, what string) error {
	switch {
	case errors.Is(err, gitprovider.ErrUnauthorized):
		return api.Errorf(http.StatusUnprocessableEntity, "provider_token", "could not %s: %v (link the account again)", what, err).WithCause(err)
	case errors.Is(err, gitprovider.ErrForbidden), errors.Is(err, gitprovider.ErrNotFound), errors.Is(err, gitprovider.ErrRejected):
		return api.Errorf(http.StatusUnprocessableEntity, "provider_refused", "could not %s: %v", what, err).WithCause(err)
	}
	return api.Errorf(http.StatusBadGateway, "provider_error", "could not %s: %v", what, err).WithCause(err)
}

// removePushHook deletes the app's webhook at its provider and forgets it.
func (s *Service) removePushHook(ctx context.Context, u *store.User, a *store.App) error {
	if err := s.deleteProviderHook(ctx, u, a); err != nil {
		return err
	}
	return s.o.Store.SetAppWebhookID(ctx, a.ID, "")
}

// deleteProviderHook deletes the app's webhook at its provider; one
// already gone there (or its repository) counts as deleted.
func (s *Service) deleteProviderHook(ctx context.Context, u *store.User, a *store.App) error {
	repo, err := s.o.Git.ParseRepo(a.GitRepo)
	if err != nil {
		return nil // not on a provider: there is nothing to delete
	}
	token, _, err := s.o.Store.GetGitToken(ctx, u.ID, string(repo.Provider))
	if err != nil {
		return fmt.Errorf("userapi: the %s token: %w", repo.Provider, err)
	}
	if err := s.o.Git.DeleteHook(ctx, token, repo, a.WebhookID); err != nil && !errors.Is(err, gitprovider.ErrNotFound) {
		return err
	}
	return nil
}

// receivePush is where git providers deliver an app's pushes: a push to
// the app's branch, correctly signed, redeploys it at the pushed commit.
func (s *Service) receivePush(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	a, err := s.o.Store.FindAppByUUID(ctx, req.Param("app"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !a.AutoDeploy) || s.o.Git == nil {
		return api.Errorf(http.StatusNotFound, "not_found", "no app with push auto-deploy there")
	}
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, maxPushBody))
	if err != nil {
		return api.Errorf(http.StatusRequestEntityTooLarge, "too_large", "a push delivery is at most %d bytes", maxPushBody)
	}
	pushes, err := gitprovider.VerifyPush(req.Request, body, s.hookSecret(a.UUID))
	switch {
	case errors.Is(err, gitprovider.ErrNotPush):
		return api.WriteJSON(w, http.StatusAccepted, map[string]string{"result": "ignored", "reason": "not a push"})
	case errors.Is(err, gitprovider.ErrBadSignature):
		return api.Errorf(http.StatusUnauthorized, "bad_signature", "missing or wrong webhook signature")
	case err != nil:
		return badRequest("%v", err)
	}
	push, ok := gitprovider.ForBranch(pushes, a.GitBranch)
	if repo, perr := s.o.Git.ParseRepo(a.GitRepo); perr == nil && len(pushes) > 0 && pushes[0].Provider != repo.Provider {
		return api.Errorf(http.StatusUnauthorized, "bad_signature", "the delivery is from %s, the app's repository is on %s",
			pushes[0].Provider, repo.Provider)
	}
	if !ok {
		return api.WriteJSON(w, http.StatusAccepted, map[string]string{"result": "ignored",
			"reason": fmt.Sprintf("the app deploys branch %s", a.GitBranch)})
	}
	u, err := s.o.Store.FindUserByID(ctx, a.UserID)
	if err != nil {
		return err
	}
	d, err := s.redeploy(ctx, u, a, "push", push.Branch, push.CommitSHA, push.CommitMessage)
	if err != nil {
		return err
	}
	s.audit(req, u.ID, store.AuditAppDeploy, map[string]any{"app": a.UUID, "deployment": d.Deployment.ID,
		"trigger": "push", "commit": push.CommitSHA})
	return api.WriteJSON(w, http.StatusAccepted, map[string]any{"result": "deploying", "deployment": d.Deployment.ID})
}
