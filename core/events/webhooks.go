package events

import (
	"context"

	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/sdk/event"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// Webhooks sends users' webhooks exactly as the webhook sink plugin sends
// its events (sdk/stdwebhook: Standard Webhooks signature, no redirects,
// 2xx delivered, 410 gone, 408/429/5xx retried with Retry-After), signed
// with each webhook's own whsec_ secret, stored encrypted. Unless the
// operator allows private targets (security.allow_private_targets), a user's
// webhook never reaches a loopback, private or link-local address, whatever
// its host name resolves to.
type Webhooks struct {
	client *stdwebhook.Client
	cipher *secrets.Cipher
}

// NewWebhooks returns a sender decrypting secrets with cipher.
func NewWebhooks(cipher *secrets.Cipher, o stdwebhook.ClientOptions) *Webhooks {
	return &Webhooks{client: stdwebhook.NewClient(o), cipher: cipher}
}

// SendWebhook implements WebhookSender.
func (w *Webhooks) SendWebhook(ctx context.Context, hook *store.Webhook, ev event.Event) stdwebhook.Result {
	raw, err := w.cipher.Decrypt(hook.Secret)
	if err != nil {
		return stdwebhook.Result{Outcome: stdwebhook.Failed, Message: "not sent: the webhook's secret cannot be decrypted (was the server secret changed without previous_secrets?)"}
	}
	key, err := stdwebhook.ParseSecret(raw)
	if err != nil {
		return stdwebhook.Result{Outcome: stdwebhook.Failed, Message: "not sent: the webhook's secret is not a whsec_ secret"}
	}
	r := w.client.Send(ctx, &stdwebhook.Endpoint{URL: hook.URL, Secrets: []stdwebhook.Secret{key}, Redact: stdwebhook.SecretForms(raw)}, ev)
	if r.Blocked {
		r.Message += "; users' webhooks may reach only public addresses (security.allow_private_targets)"
	}
	return r
}

// Close closes idle connections.
func (w *Webhooks) Close() { w.client.Close() }
