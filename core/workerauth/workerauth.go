// Package workerauth turns a worker's bearer credential into the worker it
// belongs to. It implements the trust model documented in core/secrets: a
// worker authenticates with its own API key (minted here, on the core's
// side) or with a short-lived JWT bound to that key's id; the server secret
// is never a worker credential.
package workerauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
)

// Errors returned by Authenticate; all of them mean "401".
var (
	// ErrNoCredential means the bearer was empty.
	ErrNoCredential = errors.New("workerauth: no credential")
	// ErrUnknownKey means no worker has that API key.
	ErrUnknownKey = errors.New("workerauth: unknown API key")
	// ErrKeyRotated means the JWT was minted for a key that has since been rotated.
	ErrKeyRotated = errors.New("workerauth: token was issued for a rotated key")
)

// Store is what authentication reads.
type Store interface {
	FindWorkerAuthByKeyHash(ctx context.Context, apiKeyHash string) (*store.WorkerAuth, error)
	FindWorkerAuthByID(ctx context.Context, id int64) (*store.WorkerAuth, error)
}

// Method says how a worker authenticated.
type Method string

// Authentication methods.
const (
	MethodJWT    Method = "jwt"
	MethodAPIKey Method = "api_key"
)

// Identity is an authenticated worker.
type Identity struct {
	Worker *store.Worker
	// EnvelopeKey verifies and signs this worker's envelopes.
	EnvelopeKey []byte
	Method      Method
}

// Authenticator resolves worker credentials.
type Authenticator struct {
	store  Store
	jwt    *secrets.JWTIssuer
	cipher *secrets.Cipher
}

// New returns an Authenticator that opens envelope keys with cipher and
// verifies and issues JWTs with jwt (both derived from server.secret).
func New(st Store, cipher *secrets.Cipher, jwt *secrets.JWTIssuer) *Authenticator {
	return &Authenticator{store: st, jwt: jwt, cipher: cipher}
}

// failures are the Authenticate errors that mean the credential is bad
// (401), as opposed to the store or the cipher failing.
var failures = []error{
	ErrNoCredential, ErrUnknownKey, ErrKeyRotated,
	secrets.ErrTokenMalformed, secrets.ErrTokenTooLarge, secrets.ErrTokenAlgorithm, secrets.ErrTokenSignature,
	secrets.ErrTokenClaims, secrets.ErrTokenExpired, secrets.ErrTokenNotYetValid, secrets.ErrTokenKid,
}

// IsFailure reports whether an Authenticate or AuthenticateKey error means
// the credential was refused (answer 401) rather than that checking it
// failed (answer 500).
func IsFailure(err error) bool {
	for _, e := range failures {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Authenticate accepts a JWT (three dot-separated segments) or a raw API key.
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (*Identity, error) {
	if bearer == "" {
		return nil, ErrNoCredential
	}
	if strings.Count(bearer, ".") == 2 {
		return a.authenticateJWT(ctx, bearer)
	}
	return a.AuthenticateKey(ctx, bearer)
}

// AuthenticateKey accepts only a raw API key (registration and token refresh
// require the long-lived key, never a JWT).
func (a *Authenticator) AuthenticateKey(ctx context.Context, rawKey string) (*Identity, error) {
	if rawKey == "" {
		return nil, ErrNoCredential
	}
	wa, err := a.store.FindWorkerAuthByKeyHash(ctx, secrets.HashAPIKey(rawKey))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("workerauth: %w", err)
	}
	return a.identity(wa, MethodAPIKey)
}

func (a *Authenticator) authenticateJWT(ctx context.Context, token string) (*Identity, error) {
	claims, err := a.jwt.Verify(token)
	if err != nil {
		return nil, err
	}
	wa, err := a.store.FindWorkerAuthByID(ctx, claims.Sub)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("workerauth: %w", err)
	}
	if err := claims.CheckKid(wa.KeyID); err != nil {
		return nil, ErrKeyRotated
	}
	return a.identity(wa, MethodJWT)
}

func (a *Authenticator) identity(wa *store.WorkerAuth, m Method) (*Identity, error) {
	key, err := a.cipher.OpenEnvelopeKey(wa.SealedEnvelopeKey)
	if err != nil {
		return nil, fmt.Errorf("workerauth: worker %d: %w", wa.ID, err)
	}
	return &Identity{Worker: wa.Worker, EnvelopeKey: key, Method: m}, nil
}

// IssueToken mints a JWT for an authenticated worker.
func (a *Authenticator) IssueToken(w *store.Worker) (string, time.Time, error) {
	tok, exp, err := a.jwt.Sign(w.ID, w.KeyID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("workerauth: issue token: %w", err)
	}
	return tok, exp, nil
}

// Minted is a freshly minted worker key: APIKey is shown to the operator
// once; Creds is what the store keeps.
type Minted struct {
	APIKey string
	Creds  store.WorkerCredentials
}

// Mint creates a new API key, its lookup hash, key id and sealed envelope key.
func Mint(c *secrets.Cipher) (*Minted, error) {
	wc, err := c.NewWorkerCredentials()
	if err != nil {
		return nil, fmt.Errorf("workerauth: mint: %w", err)
	}
	return &Minted{APIKey: wc.APIKey, Creds: store.WorkerCredentials{
		APIKeyHash: wc.KeyHash, KeyID: wc.Kid, SealedEnvelopeKey: wc.SealedEnvelopeKey,
	}}, nil
}

// AddWorker mints a key and records a new worker; the returned key is the
// only copy there will ever be.
func AddWorker(ctx context.Context, st *store.Store, c *secrets.Cipher, name, zone, address string) (*store.Worker, string, error) {
	m, err := Mint(c)
	if err != nil {
		return nil, "", err
	}
	w, err := st.CreateWorker(ctx, store.NewWorker{Name: name, Zone: zone, Address: address, Creds: m.Creds})
	if err != nil {
		return nil, "", err
	}
	return w, m.APIKey, nil
}

// RotateKey mints a new key for the worker: the old key and every JWT minted
// from it stop working at once.
func RotateKey(ctx context.Context, st *store.Store, c *secrets.Cipher, workerID int64) (*store.Worker, string, error) {
	m, err := Mint(c)
	if err != nil {
		return nil, "", err
	}
	w, err := st.RotateWorkerKey(ctx, workerID, m.Creds)
	if err != nil {
		return nil, "", err
	}
	return w, m.APIKey, nil
}
