package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
)

// NewDeviceData is the Data of an account.login_new_device event.
type NewDeviceData struct {
	SessionID int64  `json:"session_id"`
	IP        string `json:"ip"`
	Device    string `json:"device,omitempty"`
	Browser   string `json:"browser,omitempty"`
	OS        string `json:"os,omitempty"`
	TwoFactor bool   `json:"two_factor"`
}

// Login finishes a sign-in of userID that has been proven (an OAuth
// callback, and the second factor when twoFactor): it creates the session,
// records the "login" audit event and, when the user has no audit event
// from this IP yet, emits account.login_new_device, all in one
// transaction; then it sets the session cookie and, for a new device,
// sends the new-device mail in the background (Wait waits for it). It
// returns the new session's id.
func (s *Service) Login(ctx context.Context, w http.ResponseWriter, r *http.Request, userID int64, twoFactor bool) (int64, error) {
	u, err := s.o.Store.FindUserByID(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("accounts: login: %w", err)
	}
	token, hash, err := NewToken(SessionPrefix)
	if err != nil {
		return 0, err
	}
	ip, ua := ClientIP(r), clip(r.UserAgent(), maxUserAgent)
	cl := ParseUserAgent(ua)
	var sid int64
	var newDevice bool
	err = s.o.Store.InTx(ctx, func(tx pgx.Tx) error {
		seen, err := store.HasAuditEventForIPTx(ctx, tx, userID, ip)
		if err != nil {
			return err
		}
		newDevice = !seen
		sid, err = store.CreateSessionTx(ctx, tx, store.NewSession{UserID: userID, TokenHash: hash, IP: ip, UserAgent: ua,
			Device: cl.Device, Browser: cl.Browser, OS: cl.OS, TwoFactor: twoFactor})
		if err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"session_id": sid, "two_factor": twoFactor, "new_device": newDevice})
		if err := store.RecordAuditEventTx(ctx, tx, store.NewAuditEvent{UserID: userID, Kind: store.AuditLogin,
			IP: ip, UserAgent: ua, Details: details}); err != nil {
			return err
		}
		if !newDevice {
			return nil
		}
		data, _ := json.Marshal(NewDeviceData{SessionID: sid, IP: ip, Device: cl.Device, Browser: cl.Browser, OS: cl.OS, TwoFactor: twoFactor})
		return store.EmitEvents(ctx, tx, []event.Event{{Type: event.AccountLoginNewDevice, UserID: userID, Data: data}})
	})
	if err != nil {
		return 0, fmt.Errorf("accounts: login: %w", err)
	}
	s.setCookie(w, token)
	if newDevice {
		s.sendNewDeviceMail(mail.NewDeviceInfo{UserEmail: u.Email, UserID: userID, SessionID: sid, IP: ip,
			Device: cl.Device, Browser: cl.Browser, OS: cl.OS, Time: s.o.Now()})
	}
	return sid, nil
}

// sendNewDeviceMail sends the alert in a goroutine with its own timeout,
// when there is a mailer and a base URL for the link.
func (s *Service) sendNewDeviceMail(info mail.NewDeviceInfo) {
	if !s.o.Mailer.Enabled() || s.o.BaseURL == "" {
		return
	}
	s.mails.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mail.SendTimeout)
		defer cancel()
		if err := s.o.Mailer.SendNewDeviceAlert(ctx, info, s.o.BaseURL); err != nil && !errors.Is(err, mail.ErrDisabled) {
			s.log.Warn("sending the new-device mail failed", "user_id", info.UserID, "session_id", info.SessionID, "error", err)
		}
	})
}
