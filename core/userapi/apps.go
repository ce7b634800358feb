package userapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// appRoutes are the routes of apps, their env vars and deployments.
func (s *Service) appRoutes() []Route {
	return []Route{}
}

// ownedApp returns the live app ref names — its UUID or its name — when
// it belongs to user; someone else's app is ErrNotFound, exactly as a
// missing one.
func (s *Service) ownedApp(ctx context.Context, user *store.User, ref string) (*store.App, error) {
	var (
		a   *store.App
		err error
	)
	if _, perr := uuid.Parse(ref); perr == nil {
		a, err = s.o.Store.FindAppByUUID(ctx, ref)
		if err == nil && a.UserID != user.ID {
			err = store.ErrNotFound
		}
	} else {
		a, err = s.o.Store.FindAppByUserIDAndName(ctx, user.ID, ref)
	}
	if err != nil {
		return nil, storeErr(err, "app")
	}
	return a, nil
}

var errNoApp = api.Errorf(http.StatusNotFound, "not_found", "no such app")
