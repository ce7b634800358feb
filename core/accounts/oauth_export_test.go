package accounts

import (
	"context"
	"net/http"
)

// SetFinishLogin replaces how s finishes an OAuth login (tests of the 2FA
// hook).
func SetFinishLogin(s *Service, f func(ctx context.Context, w http.ResponseWriter, r *http.Request, userID int64, provider string) (bool, error)) {
	s.finishLogin = f
}
