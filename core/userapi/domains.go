package userapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bunrouter"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/store"
)

// maxDomainsPerUser caps a user's custom domains: each costs the re-check
// loop a DNS lookup every few hours.
const maxDomainsPerUser = 200

// domainRoutes are the routes of custom domains. :domain is the domain's
// id or its hostname.
func (s *Service) domainRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/api/v1/domains", handler: s.listDomains},
		{Method: http.MethodGet, Path: "/api/v1/apps/:app/domains", handler: s.listAppDomains},
		{Method: http.MethodPost, Path: "/api/v1/apps/:app/domains", Limited: true, handler: s.createDomain},
		{Method: http.MethodGet, Path: "/api/v1/domains/:domain", handler: s.getDomain},
		{Method: http.MethodPost, Path: "/api/v1/domains/:domain/verify", Limited: true, handler: s.verifyDomain},
		{Method: http.MethodDelete, Path: "/api/v1/domains/:domain", handler: s.deleteDomain},
	}
}

// dnsRecord is the record a domain's owner must publish.
type dnsRecord struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// domainView is a domain as its owner sees it, token included: they need
// it for the record.
type domainView struct {
	ID                int64      `json:"id"`
	Hostname          string     `json:"hostname"`
	Status            string     `json:"status"`
	AppUUID           string     `json:"app_uuid"`
	AppName           string     `json:"app_name"`
	VerificationToken string     `json:"verification_token"`
	Record            dnsRecord  `json:"record"`
	VerifiedAt        *time.Time `json:"verified_at"`
	LastCheckedAt     *time.Time `json:"last_checked_at"`
	CheckError        string     `json:"check_error"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func viewDomain(d *store.Domain) domainView {
	return domainView{
		ID: d.ID, Hostname: d.Hostname, Status: d.Status, AppUUID: d.AppUUID, AppName: d.AppName,
		VerificationToken: d.Token,
		Record:            dnsRecord{Type: "TXT", Name: domains.RecordName(d.Hostname), Value: d.Token},
		VerifiedAt:        d.VerifiedAt, LastCheckedAt: d.LastCheckedAt, CheckError: d.CheckError,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

func viewDomains(ds []*store.Domain) map[string]any {
	out := make([]domainView, len(ds))
	for i, d := range ds {
		out[i] = viewDomain(d)
	}
	return map[string]any{"domains": out}
}

func (s *Service) listDomains(w http.ResponseWriter, req bunrouter.Request) error {
	ds, err := s.o.Store.ListDomainsForUser(req.Context(), userOf(req.Context()).ID)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, viewDomains(ds))
}

func (s *Service) listAppDomains(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	app, err := s.ownedApp(ctx, user, req.Param("app"))
	if err != nil {
		return err
	}
	ds, err := s.o.Store.ListDomainsForApp(ctx, app.ID, user.ID)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, viewDomains(ds))
}

// createDomainRequest is the body of POST /api/v1/apps/:app/domains.
type createDomainRequest struct {
	Hostname string `json:"hostname"`
}

// createDomain adds a pending domain to the app and answers 201 with it
// and the record to publish.
func (s *Service) createDomain(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	app, err := s.ownedApp(ctx, user, req.Param("app"))
	if err != nil {
		return err
	}
	var body createDomainRequest
	if err := decode(req, &body); err != nil {
		return err
	}
	host, err := domains.NormalizeHostname(body.Hostname, s.o.PlatformDomain)
	if err != nil {
		return badRequest("%v", err)
	}
	d, err := s.o.Store.CreateDomain(ctx, store.NewDomain{AppID: app.ID, UserID: user.ID, Hostname: host,
		Token: domains.NewToken(), ReplaceStaleBefore: s.o.Now().Add(-domains.StaleClaimAge), MaxPerUser: maxDomainsPerUser})
	switch {
	case errors.Is(err, store.ErrConflict):
		return api.Errorf(http.StatusConflict, "conflict", "%s is already added to an app", host).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return errNoApp
	case err != nil:
		return storeErr(err, "domain")
	}
	s.auditDomain(req.Request, user.ID, store.AuditDomainCreate, d)
	v := viewDomain(d)
	return api.WriteJSON(w, http.StatusCreated, map[string]any{"domain": v, "record": v.Record})
}

func (s *Service) getDomain(w http.ResponseWriter, req bunrouter.Request) error {
	d, err := s.ownedDomain(req.Context(), userOf(req.Context()), req.Param("domain"))
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"domain": viewDomain(d)})
}

// verifyDomain checks the domain's record now: 200 with the verified
// domain, or 422 verification_failed saying what was found (also stored
// as the domain's check_error). A failed check never un-verifies a
// verified domain; only the re-check loop's grace rule does. A domain
// that becomes verified is audited (domain_verify).
func (s *Service) verifyDomain(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	d, err := s.ownedDomain(ctx, user, req.Param("domain"))
	if err != nil {
		return err
	}
	if s.o.Domains == nil {
		return api.Errorf(http.StatusServiceUnavailable, "unavailable", "domain verification is not configured on this server")
	}
	checkErr := s.o.Domains.Check(ctx, d.Hostname, d.Token)
	if err := ctx.Err(); err != nil {
		// The client went away: nothing was learned.
		return err
	}
	if checkErr != nil {
		if _, err := s.o.Store.MarkDomainCheckFailed(ctx, d.ID, checkErr.Error(), s.o.Now()); err != nil {
			return storeErr(err, "domain")
		}
		return api.Errorf(http.StatusUnprocessableEntity, "verification_failed", "%s", checkErr.Error())
	}
	was := d.Status
	if d, err = s.o.Store.MarkDomainVerified(ctx, d.ID, s.o.Now()); err != nil {
		return storeErr(err, "domain")
	}
	if was != store.DomainVerified {
		s.auditDomain(req.Request, user.ID, store.AuditDomainVerify, d)
	}
	return api.WriteJSON(w, http.StatusOK, map[string]any{"domain": viewDomain(d)})
}

func (s *Service) deleteDomain(w http.ResponseWriter, req bunrouter.Request) error {
	ctx := req.Context()
	user := userOf(ctx)
	d, err := s.ownedDomain(ctx, user, req.Param("domain"))
	if err != nil {
		return err
	}
	if d, err = s.o.Store.DeleteDomain(ctx, d.ID, user.ID); err != nil {
		return storeErr(err, "domain")
	}
	s.auditDomain(req.Request, user.ID, store.AuditDomainDelete, d)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ownedDomain returns the user's domain ref names — its id or its
// hostname; someone else's is a 404, exactly as a missing one.
func (s *Service) ownedDomain(ctx context.Context, user *store.User, ref string) (*store.Domain, error) {
	var (
		d   *store.Domain
		err error
	)
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		if id <= 0 {
			return nil, errNoDomain
		}
		d, err = s.o.Store.FindDomain(ctx, id, user.ID)
	} else {
		host, nerr := domains.NormalizeHostname(ref, "")
		if nerr != nil {
			return nil, errNoDomain
		}
		d, err = s.o.Store.FindDomainByHostname(ctx, host, user.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoDomain
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

var errNoDomain = api.Errorf(http.StatusNotFound, "not_found", "no such domain")

// maxAuditUserAgent bounds the user agent an audit event keeps.
const maxAuditUserAgent = 512

// auditDomain records an audit event about d for the caller's request; a
// failure is logged, never the request's.
func (s *Service) auditDomain(r *http.Request, userID int64, kind string, d *store.Domain) {
	details, err := json.Marshal(map[string]any{"domain_id": d.ID, "hostname": d.Hostname, "app_uuid": d.AppUUID})
	if err == nil {
		ua := r.UserAgent()
		if len(ua) > maxAuditUserAgent {
			ua = strings.ToValidUTF8(ua[:maxAuditUserAgent], "")
		}
		err = s.o.Store.RecordAuditEvent(r.Context(), store.NewAuditEvent{UserID: userID, Kind: kind,
			IP: accounts.ClientIP(r), UserAgent: ua, Details: details})
	}
	if err != nil {
		s.log.Error("recording an audit event failed", "user_id", userID, "kind", kind, "error", err)
	}
}
