package userapi

import (
	"net/http"
	"strconv"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// limitParam parses ?limit= (default def, at most 100).
func limitParam(req bunrouter.Request, def int) (int, error) {
	v := req.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return 0, badRequest("limit must be a number from 1 to 100, not %q", v)
	}
	return n, nil
}

func (s *Service) listDeployments(w http.ResponseWriter, req bunrouter.Request) error {
	_, a, err := s.appParam(req)
	if err != nil {
		return err
	}
	limit, err := limitParam(req, 20)
	if err != nil {
		return err
	}
	ds, err := s.o.Store.ListDeployments(req.Context(), a.ID, limit)
	if err != nil {
		return err
	}
	out := make([]deploymentView, len(ds))
	for i, d := range ds {
		out[i] = viewDeployment(d, a)
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

// recentDeployments lists the caller's latest deployments across apps.
func (s *Service) recentDeployments(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u := userOf(ctx)
	limit, err := limitParam(req, 20)
	if err != nil {
		return err
	}
	ds, err := s.o.Store.ListRecentUserDeployments(ctx, u.ID, limit)
	if err != nil {
		return err
	}
	apps, err := s.userApps(ctx, u.ID)
	if err != nil {
		return err
	}
	byID := make(map[int64]*store.App, len(apps))
	for _, a := range apps {
		byID[a.ID] = a
	}
	out := make([]deploymentView, 0, len(ds))
	for _, d := range ds {
		a := byID[d.AppID]
		if a == nil {
			a = &store.App{Name: d.AppName}
		}
		out = append(out, viewDeployment(&d.Deployment, a))
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

// getDeployment shows one deployment with its build logs so far.
func (s *Service) getDeployment(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	u := userOf(ctx)
	id, ok := idParam(req, "deployment")
	if !ok {
		return api.Errorf(http.StatusNotFound, "not_found", "no such deployment")
	}
	d, err := s.o.Store.FindUserDeployment(ctx, id, u.ID)
	if err != nil {
		return storeErr(err, "deployment")
	}
	apps, err := s.userApps(ctx, u.ID)
	if err != nil {
		return err
	}
	a := &store.App{}
	for _, x := range apps {
		if x.ID == d.AppID {
			a = x
		}
	}
	v := viewDeployment(d, a)
	v.BuildLogs = &d.BuildLogs
	return api.WriteJSON(w, http.StatusOK, map[string]any{"deployment": v})
}
