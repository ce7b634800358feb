package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts/totp"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/store"
)

// Second-factor constants.
const (
	// PendingPrefix starts every pending-challenge token (the
	// wh_2fa_pending cookie).
	PendingPrefix = "whp_"
	// PendingTTL is how long a sign-in may wait for its second factor.
	PendingTTL = 5 * time.Minute
	// TOTPIssuer names the service in authenticator apps.
	TOTPIssuer = "WiseHosting"
	// pendingCookiePath scopes the pending cookie to the 2FA endpoints.
	pendingCookiePath = "/api/v1/2fa"
)

// Answers of the 2FA endpoints.
var (
	// errWrongCode answers a signed-in request whose code is wrong (403:
	// the session is fine, the code is not).
	errWrongCode = api.Errorf(http.StatusForbidden, "invalid_code", "the code is wrong, expired or already used")
	// errWrongLoginCode answers /2fa/verify with a wrong code.
	errWrongLoginCode = api.Errorf(http.StatusUnauthorized, "invalid_code", "the code is wrong, expired or already used")
	// errNoChallenge answers /2fa/verify without a live pending challenge.
	errNoChallenge = api.Errorf(http.StatusUnauthorized, "unauthorized", "no pending sign-in, or it has expired: sign in again")
	errTOTPOn      = api.Errorf(http.StatusConflict, "totp_enabled", "two-factor authentication is already on; disable it first to enrol a new authenticator")
	errTOTPOff     = api.Errorf(http.StatusConflict, "totp_not_enabled", "two-factor authentication is not on")
	errNotEnrolled = api.Errorf(http.StatusConflict, "totp_not_enrolled", "enrol an authenticator first (POST /api/v1/2fa/enroll)")
	// errSessionRequired answers an API token trying to manage 2FA: a
	// leaked token must not be able to put the account behind an
	// authenticator its owner does not have.
	errSessionRequired = api.Errorf(http.StatusForbidden, "session_required", "two-factor settings can be changed only from a signed-in browser session, not with an API token")
)

// sessionCaller returns the caller of a 2FA management request, which
// must be a browser session.
func sessionCaller(req bunrouter.Request) (*Caller, error) {
	c := CallerFrom(req.Context())
	if c.SessionID == 0 {
		return nil, errSessionRequired
	}
	return c, nil
}

// FinishLogin ends a sign-in whose first factor (an OAuth callback for
// provider) proved userID: when the user has 2FA on it starts the pending
// challenge (BeginTwoFactor) and returns twoFactorPending, and the client
// must POST the code to /api/v1/2fa/verify; otherwise it signs the user in
// (Login).
func (s *Service) FinishLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, userID int64, provider string) (twoFactorPending bool, err error) {
	u, err := s.o.Store.FindUserByID(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("accounts: finish login: %w", err)
	}
	if u.TOTPEnabled {
		return true, s.BeginTwoFactor(ctx, w, r, userID, provider)
	}
	_, err = s.Login(ctx, w, r, userID, false)
	return false, err
}

// BeginTwoFactor starts the second step of userID's sign-in: it stores a
// pending challenge (only the sha256 of its token, for PendingTTL) and
// sets the wh_2fa_pending cookie that /api/v1/2fa/verify redeems.
func (s *Service) BeginTwoFactor(ctx context.Context, w http.ResponseWriter, r *http.Request, userID int64, provider string) error {
	token, hash, err := NewToken(PendingPrefix)
	if err != nil {
		return err
	}
	if err := s.o.Store.CreatePendingTOTP(ctx, hash, store.PendingTOTP{UserID: userID, Provider: provider,
		ExpiresAt: s.o.Now().Add(PendingTTL)}); err != nil {
		return fmt.Errorf("accounts: begin two-factor: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: PendingCookie, Value: token, Path: pendingCookiePath, MaxAge: int(PendingTTL.Seconds()),
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	s.log.Debug("two-factor challenge started", "user_id", userID, "provider", provider, "ip", ClientIP(r))
	return nil
}

func (s *Service) clearPendingCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: PendingCookie, Value: "", Path: pendingCookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// codeRequest is the body of the endpoints that take a code: a TOTP code
// or, where allowed, a backup code.
type codeRequest struct {
	Code       string `json:"code"`
	BackupCode string `json:"backup_code"`
}

// factor is a checked-for-form code: exactly one field is set, canonical.
type factor struct{ code, backup string }

// readFactor decodes and checks the body: exactly one of code and, when
// allowBackup, backup_code.
func readFactor(r *http.Request, allowBackup bool) (factor, error) {
	var body codeRequest
	if err := api.DecodeJSON(r, 1<<10, &body); err != nil {
		return factor{}, err
	}
	switch {
	case body.BackupCode != "" && !allowBackup:
		return factor{}, api.Errorf(http.StatusBadRequest, "bad_code", "this endpoint takes a code from the authenticator app, not a backup code")
	case (body.Code == "") == (body.BackupCode == ""):
		if allowBackup {
			return factor{}, api.Errorf(http.StatusBadRequest, "bad_code", "send either code (from the authenticator app) or backup_code")
		}
		return factor{}, api.Errorf(http.StatusBadRequest, "bad_code", "code (from the authenticator app) is required")
	case body.Code != "":
		c, ok := totp.NormalizeCode(body.Code)
		if !ok {
			return factor{}, api.Errorf(http.StatusBadRequest, "bad_code", "code must be %d digits", totp.Digits)
		}
		return factor{code: c}, nil
	}
	c, err := NormalizeBackupCode(body.BackupCode)
	if err != nil {
		return factor{}, api.Errorf(http.StatusBadRequest, "bad_code", "backup_code must be %d letters and digits, as xxxx-xxxx", BackupCodeLength)
	}
	return factor{backup: c}, nil
}

// checkFactor verifies f for userID inside tx, st having been read under
// the row lock (LockTOTPTx): a TOTP code must be of a step later than the
// last one used, which it records; a backup code must match an unused
// one, which it consumes. It reports whether f was right.
func (s *Service) checkFactor(ctx context.Context, tx pgx.Tx, userID int64, st *store.TOTPState, f factor) (bool, error) {
	if f.backup != "" {
		codes, err := store.UnusedBackupCodesTx(ctx, tx, userID)
		if err != nil {
			return false, fmt.Errorf("accounts: backup codes: %w", err)
		}
		for _, c := range codes {
			ok, err := matchBackupCode(f.backup, c.Hash)
			if err != nil {
				s.log.Error("a stored backup code hash is unreadable", "user_id", userID, "code_id", c.ID, "error", err)
				continue
			}
			if ok {
				used, err := store.UseBackupCodeTx(ctx, tx, c.ID)
				if err != nil {
					return false, fmt.Errorf("accounts: backup codes: %w", err)
				}
				return used, nil
			}
		}
		return false, nil
	}
	secret, err := totp.DecodeSecret(st.Secret)
	if err != nil {
		return false, fmt.Errorf("accounts: the stored TOTP secret of user %d: %w", userID, err)
	}
	step, ok := totp.Verify(secret, f.code, s.o.Now(), st.LastStep)
	if !ok {
		return false, nil
	}
	used, err := store.UseTOTPStepTx(ctx, tx, userID, step)
	if err != nil {
		return false, fmt.Errorf("accounts: totp: %w", err)
	}
	return used, nil
}

// newBackupSet returns BackupCodeCount codes to show and their hashes to
// store.
func (s *Service) newBackupSet() (codes, hashes []string, err error) {
	codes, err = newBackupCodes(BackupCodeCount)
	if err != nil {
		return nil, nil, err
	}
	hashes = make([]string, len(codes))
	for i, c := range codes {
		canon, err := NormalizeBackupCode(c)
		if err != nil {
			return nil, nil, fmt.Errorf("accounts: a new backup code does not parse: %w", err)
		}
		if hashes[i], err = hashBackupCode(canon, s.o.Argon2); err != nil {
			return nil, nil, err
		}
	}
	return codes, hashes, nil
}

// auditTx records an audit event of the caller's request in tx.
func auditTx(ctx context.Context, tx pgx.Tx, r *http.Request, userID int64, kind string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	b, _ := json.Marshal(details)
	return store.RecordAuditEventTx(ctx, tx, store.NewAuditEvent{UserID: userID, Kind: kind, IP: ClientIP(r),
		UserAgent: clip(r.UserAgent(), maxUserAgent), Details: b})
}

// inTx runs fn in a transaction, passing api errors (the answers above)
// through unwrapped and wrapping the rest with op.
func (s *Service) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	err := s.o.Store.InTx(ctx, fn)
	var ae *api.Error
	if err == nil || errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("accounts: %s: %w", op, err)
}

// enrollResponse is the answer of POST /api/v1/2fa/enroll.
type enrollResponse struct {
	// Secret is the base32 secret, for typing into an app.
	Secret string `json:"secret"`
	// URI is the otpauth:// URI, for a QR code.
	URI string `json:"uri"`
}

// backupCodesResponse shows a new set of backup codes, once.
type backupCodesResponse struct {
	BackupCodes []string `json:"backup_codes"`
}

func (s *Service) enrollTOTP(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	c, err := sessionCaller(req)
	if err != nil {
		return err
	}
	raw, err := totp.NewSecret()
	if err != nil {
		return err
	}
	secret := totp.EncodeSecret(raw)
	if err := s.inTx(ctx, "enrol totp", func(tx pgx.Tx) error {
		st, err := s.o.Store.LockTOTPTx(ctx, tx, c.User.ID)
		if err != nil {
			return err
		}
		if st.Enabled {
			return errTOTPOn
		}
		return s.o.Store.SetTOTPSecretTx(ctx, tx, c.User.ID, secret)
	}); err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, enrollResponse{Secret: secret, URI: totp.URI(TOTPIssuer, c.User.Email, raw)})
}

// changeFactor runs fn for the session's user in a transaction holding the
// user's TOTP row lock, once the request's code (or backup code, when
// allowBackup) checked out. enabled is the 2FA state the change needs: on
// for disabling and regenerating, off (and enrolled) for enabling.
func (s *Service) changeFactor(req bunrouter.Request, op string, allowBackup, enabled bool,
	fn func(ctx context.Context, tx pgx.Tx, c *Caller, f factor) error) error {
	ctx := req.Context()
	c, err := sessionCaller(req)
	if err != nil {
		return err
	}
	f, err := readFactor(req.Request, allowBackup)
	if err != nil {
		return err
	}
	return s.inTx(ctx, op, func(tx pgx.Tx) error {
		st, err := s.o.Store.LockTOTPTx(ctx, tx, c.User.ID)
		switch {
		case err != nil:
			return err
		case enabled && !st.Enabled:
			return errTOTPOff
		case !enabled && st.Enabled:
			return errTOTPOn
		case !enabled && st.Secret == "":
			return errNotEnrolled
		}
		if ok, err := s.checkFactor(ctx, tx, c.User.ID, st, f); err != nil || !ok {
			return orElse(err, errWrongCode)
		}
		return fn(ctx, tx, c, f)
	})
}

// issueBackupCodes replaces the user's backup codes with a new set and
// returns it (shown once).
func (s *Service) issueBackupCodes(ctx context.Context, tx pgx.Tx, userID int64) ([]string, error) {
	codes, hashes, err := s.newBackupSet()
	if err != nil {
		return nil, err
	}
	if err := store.ReplaceBackupCodesTx(ctx, tx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

func (s *Service) enableTOTP(w http.ResponseWriter, req bunrouter.Request) error {
	var codes []string
	err := s.changeFactor(req, "enable totp", false, false, func(ctx context.Context, tx pgx.Tx, c *Caller, _ factor) error {
		if err := store.EnableTOTPTx(ctx, tx, c.User.ID); err != nil {
			return err
		}
		var err error
		if codes, err = s.issueBackupCodes(ctx, tx, c.User.ID); err != nil {
			return err
		}
		return auditTx(ctx, tx, req.Request, c.User.ID, store.AuditTOTPEnabled, nil)
	})
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, backupCodesResponse{BackupCodes: codes})
}

func (s *Service) disableTOTP(w http.ResponseWriter, req bunrouter.Request) error {
	err := s.changeFactor(req, "disable totp", true, true, func(ctx context.Context, tx pgx.Tx, c *Caller, f factor) error {
		if err := store.DisableTOTPTx(ctx, tx, c.User.ID); err != nil {
			return err
		}
		return auditTx(ctx, tx, req.Request, c.User.ID, store.AuditTOTPDisabled, map[string]any{"with_backup_code": f.backup != ""})
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) regenerateBackupCodes(w http.ResponseWriter, req bunrouter.Request) error {
	var codes []string
	err := s.changeFactor(req, "regenerate backup codes", false, true, func(ctx context.Context, tx pgx.Tx, c *Caller, _ factor) error {
		var err error
		if codes, err = s.issueBackupCodes(ctx, tx, c.User.ID); err != nil {
			return err
		}
		return auditTx(ctx, tx, req.Request, c.User.ID, store.AuditBackupCodesRegenerated, nil)
	})
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, backupCodesResponse{BackupCodes: codes})
}

// verifyResponse is the answer of POST /api/v1/2fa/verify.
type verifyResponse struct {
	SessionID int64 `json:"session_id"`
	// BackupCodesLeft, after signing in with a backup code, says how many
	// are left.
	BackupCodesLeft *int `json:"backup_codes_left,omitempty"`
}

// verifyTwoFactor redeems the pending challenge of the wh_2fa_pending
// cookie with a code or backup code. The challenge is deleted in the
// transaction that checks the code, so it signs in once; a wrong code
// rolls that back and leaves the challenge for another try (rate-limited
// per IP and per user) until it expires.
func (s *Service) verifyTwoFactor(w http.ResponseWriter, req bunrouter.Request) error {
	ctx, r := req.Context(), req.Request
	ck, err := r.Cookie(PendingCookie)
	if err != nil || ParseToken(PendingPrefix, ck.Value) != nil {
		return errNoChallenge
	}
	if !s.sameOrigin(r) {
		return errCSRF
	}
	hash := HashToken(ck.Value)
	p, err := s.o.Store.FindPendingTOTP(ctx, hash, s.o.Now())
	if errors.Is(err, store.ErrNotFound) {
		s.clearPendingCookie(w)
		return errNoChallenge
	}
	if err != nil {
		return fmt.Errorf("accounts: verify 2fa: %w", err)
	}
	if err := s.limitKeys(w, "user:"+strconv.FormatInt(p.UserID, 10)); err != nil {
		return err
	}
	f, err := readFactor(r, true)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "verify 2fa", func(tx pgx.Tx) error {
		if _, err := store.TakePendingTOTPTx(ctx, tx, hash, s.o.Now()); errors.Is(err, store.ErrNotFound) {
			return errNoChallenge // redeemed or expired meanwhile
		} else if err != nil {
			return err
		}
		st, err := s.o.Store.LockTOTPTx(ctx, tx, p.UserID)
		if err != nil {
			return err
		}
		if !st.Enabled {
			return errNoChallenge
		}
		if ok, err := s.checkFactor(ctx, tx, p.UserID, st, f); err != nil || !ok {
			return orElse(err, errWrongLoginCode)
		}
		return nil
	})
	if errors.Is(err, errWrongLoginCode) {
		s.log.Info("a wrong two-factor code was given", "user_id", p.UserID, "ip", ClientIP(r), "backup_code", f.backup != "")
	}
	if err != nil {
		return err
	}
	sid, err := s.Login(ctx, w, r, p.UserID, true)
	if err != nil {
		return err
	}
	s.clearPendingCookie(w)
	out := verifyResponse{SessionID: sid}
	if f.backup != "" {
		n, err := s.o.Store.CountUnusedBackupCodes(ctx, p.UserID)
		if err != nil {
			s.log.Warn("counting the backup codes left failed", "user_id", p.UserID, "error", err)
		} else {
			out.BackupCodesLeft = &n
		}
	}
	return api.WriteJSON(w, http.StatusOK, out)
}

// orElse returns err, or else fallback.
func orElse(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}
