package workerauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/embedpg/pgtest"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/store/storetest"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk/wsproto"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type env struct {
	ctx    context.Context
	st     *store.Store
	cipher *secrets.Cipher
	auth   *workerauth.Authenticator
	clock  *time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	now := time.Now()
	e := &env{ctx: context.Background(), st: storetest.New(t), cipher: storetest.Cipher(t), clock: &now}
	jwt, err := secrets.NewJWTIssuer(storetest.Secret, func() time.Time { return *e.clock })
	if err != nil {
		t.Fatal(err)
	}
	e.auth = workerauth.New(e.st, e.cipher, jwt)
	return e
}

func TestRawKeyAndJWT(t *testing.T) {
	e := newEnv(t)
	w, key, err := workerauth.AddWorker(e.ctx, e.st, e.cipher, "edge-1", "eu", "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, secrets.APIKeyPrefix) {
		t.Fatalf("key %q lacks its prefix", key)
	}
	id, err := e.auth.Authenticate(e.ctx, key)
	if err != nil || id.Worker.ID != w.ID || id.Method != workerauth.MethodAPIKey {
		t.Fatalf("raw key: %+v, %v", id, err)
	}
	// The envelope key the core holds is the one the worker derives from its key.
	if string(id.EnvelopeKey) != string(wsproto.EnvelopeKey(key)) {
		t.Fatal("core and worker disagree on the envelope key")
	}
	tok, exp, err := e.auth.IssueToken(id.Worker)
	if err != nil || time.Until(exp) > secrets.JWTTTL+time.Second {
		t.Fatalf("IssueToken: %v, exp %v", err, exp)
	}
	id2, err := e.auth.Authenticate(e.ctx, tok)
	if err != nil || id2.Worker.ID != w.ID || id2.Method != workerauth.MethodJWT || string(id2.EnvelopeKey) != string(id.EnvelopeKey) {
		t.Fatalf("jwt: %+v, %v", id2, err)
	}
	// Registration and refresh take only the raw key, never a JWT.
	if _, err := e.auth.AuthenticateKey(e.ctx, tok); !errors.Is(err, workerauth.ErrUnknownKey) {
		t.Fatalf("JWT accepted where the raw key is required: %v", err)
	}
	// Expired tokens are refused.
	*e.clock = e.clock.Add(secrets.JWTTTL + time.Second)
	if _, err := e.auth.Authenticate(e.ctx, tok); !errors.Is(err, secrets.ErrTokenExpired) {
		t.Fatalf("expired JWT: %v", err)
	}
	if _, err := e.auth.Authenticate(e.ctx, ""); !errors.Is(err, workerauth.ErrNoCredential) {
		t.Fatalf("empty bearer: %v", err)
	}
}

func TestServerSecretIsNeverAWorkerCredential(t *testing.T) {
	e := newEnv(t)
	if _, _, err := workerauth.AddWorker(e.ctx, e.st, e.cipher, "edge-1", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, cred := range []string{storetest.Secret, "Bearer " + storetest.Secret, secrets.HashAPIKey(storetest.Secret)} {
		if _, err := e.auth.Authenticate(e.ctx, cred); err == nil {
			t.Fatalf("server secret form %q accepted as a worker credential", cred)
		}
		if _, err := e.auth.AuthenticateKey(e.ctx, cred); err == nil {
			t.Fatalf("server secret form %q accepted as an API key", cred)
		}
	}
	// Nor can a holder of the server secret forge a token for an unknown key
	// id: tokens are bound to the worker's current kid.
	jwt, _ := secrets.NewJWTIssuer(storetest.Secret, nil)
	forged, _, err := jwt.Sign(1, "guessed-kid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.Authenticate(e.ctx, forged); !errors.Is(err, workerauth.ErrKeyRotated) {
		t.Fatalf("token with a wrong kid: %v", err)
	}
}

func TestRotationInvalidatesKeyAndOutstandingJWTs(t *testing.T) {
	e := newEnv(t)
	w, oldKey, err := workerauth.AddWorker(e.ctx, e.st, e.cipher, "edge-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	oldTok, _, _ := e.auth.IssueToken(w)
	if _, err := e.auth.Authenticate(e.ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	w2, newKey, err := workerauth.RotateKey(e.ctx, e.st, e.cipher, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w2.KeyID == w.KeyID || newKey == oldKey {
		t.Fatal("rotation kept the key id or key")
	}
	if _, err := e.auth.Authenticate(e.ctx, oldTok); !errors.Is(err, workerauth.ErrKeyRotated) {
		t.Fatalf("JWT minted before rotation: %v", err)
	}
	if _, err := e.auth.Authenticate(e.ctx, oldKey); !errors.Is(err, workerauth.ErrUnknownKey) {
		t.Fatalf("old raw key after rotation: %v", err)
	}
	id, err := e.auth.Authenticate(e.ctx, newKey)
	if err != nil || string(id.EnvelopeKey) != string(wsproto.EnvelopeKey(newKey)) {
		t.Fatalf("new key: %v", err)
	}
	newTok, _, _ := e.auth.IssueToken(id.Worker)
	if _, err := e.auth.Authenticate(e.ctx, newTok); err != nil {
		t.Fatalf("JWT after rotation: %v", err)
	}
}

// Nothing a JWT holder sees — the token, its segments, its claims, or what
// the database stores for lookup — lets them sign an envelope the core
// accepts for that worker.
func TestJWTHolderCannotSignEnvelopes(t *testing.T) {
	e := newEnv(t)
	w, key, err := workerauth.AddWorker(e.ctx, e.st, e.cipher, "edge-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := e.auth.IssueToken(w)
	id, err := e.auth.Authenticate(e.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"type":"heartbeat","seq":1}`)
	if !wsproto.Verify(id.EnvelopeKey, msg, wsproto.Sign(wsproto.EnvelopeKey(key), msg)) {
		t.Fatal("control: the worker's own key must verify")
	}
	var candidates []string
	candidates = append(candidates, tok, secrets.HashAPIKey(key), w.KeyID)
	for _, seg := range strings.Split(tok, ".") {
		candidates = append(candidates, seg)
		if b, err := base64.RawURLEncoding.DecodeString(seg); err == nil {
			candidates = append(candidates, string(b))
		}
	}
	var sealed string
	if err := e.st.Pool().QueryRow(e.ctx, `SELECT envelope_key FROM workers WHERE id = $1`, w.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	candidates = append(candidates, sealed)
	for _, c := range candidates {
		for _, k := range [][]byte{[]byte(c), wsproto.EnvelopeKey(c)} {
			if wsproto.Verify(id.EnvelopeKey, msg, wsproto.Sign(k, msg)) {
				t.Fatalf("an envelope signed with material derived from %q verified", c)
			}
		}
	}
}
