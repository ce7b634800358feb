package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/testutil"
)

// The daemon's mailer signs revoke links with a key derived from
// server.secret for that purpose alone: they verify with that key, not
// with the secret itself; without an smtp block it sends nothing.
func TestMailerRevokeKey(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	d, err := NewWithOptions(t.Context(), cfg, testutil.Logger(t), testPlugins())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	m := d.Mailer()
	if m.Enabled() {
		t.Error("the mailer is enabled without an smtp block")
	}
	now := time.Now()
	tok := m.SignRevokeToken(7, 42, now)
	key, err := secrets.DeriveKey([]byte(cfg.Server.Secret.Value()), secrets.PurposeRevokeToken, secrets.KeySize)
	if err != nil {
		t.Fatal(err)
	}
	if uid, sid, err := mail.VerifyRevokeToken(tok, key, now); err != nil || uid != 7 || sid != 42 {
		t.Fatalf("verify with the derived key: %d, %d, %v", uid, sid, err)
	}
	if _, _, err := mail.VerifyRevokeToken(tok, []byte(cfg.Server.Secret.Value()), now); err == nil {
		t.Fatal("the token verifies with the raw server secret")
	}
}
