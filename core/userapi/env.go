package userapi

import (
	"net/http"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// envNote tells the caller when an env change applies.
const envNote = "env var changes take effect on the next deploy or restart"

// listEnv lists the app's env vars, decrypted: only the owner gets here.
func (s *Service) listEnv(w http.ResponseWriter, req bunrouter.Request) error {
	_, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	vars, err := s.o.Store.ListAppEnvVars(req.Context(), a.ID)
	if err != nil {
		return err
	}
	if vars == nil {
		vars = []store.EnvVar{}
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"env": vars})
}

type setEnvRequest struct {
	Value *string `json:"value"`
}

// setEnv sets one env var (encrypted at rest).
func (s *Service) setEnv(w http.ResponseWriter, req bunrouter.Request) error {
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	key := req.Param("key")
	var in setEnvRequest
	if err := decode(req, &in); err != nil {
		return err
	}
	if in.Value == nil {
		return badRequest(`the body must be {"value": "…"}`)
	}
	if err := checkEnvVar(key, *in.Value); err != nil {
		return badRequest("%v", err)
	}
	if err := s.o.Store.SetAppEnvVar(req.Context(), a.ID, key, *in.Value); err != nil {
		return storeErr(err, "app")
	}
	s.audit(req, u.ID, store.AuditEnvSet, map[string]any{"app": a.UUID, "key": key})
	return api.WriteJSON(w, http.StatusOK, map[string]any{"env_var": map[string]string{"key": key, "value": *in.Value},
		"note": envNote})
}

// deleteEnv removes one env var.
func (s *Service) deleteEnv(w http.ResponseWriter, req bunrouter.Request) error {
	u, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	key := req.Param("key")
	if !store.ValidEnvKey(key) {
		return api.Errorf(http.StatusNotFound, "not_found", "no env var %q", key)
	}
	if err := s.o.Store.DeleteAppEnvVar(req.Context(), a.ID, key); err != nil {
		return storeErr(err, "env var")
	}
	s.audit(req, u.ID, store.AuditEnvDelete, map[string]any{"app": a.UUID, "key": key})
	return api.WriteJSON(w, http.StatusOK, map[string]any{"note": envNote})
}
