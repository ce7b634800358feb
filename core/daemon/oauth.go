package daemon

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/secrets"
)

// oauthOptions turns the `oauth` blocks into the accounts service's
// providers, in provider order, with the key that signs the OAuth state
// (secrets.PurposeOAuthState of server.secret).
func oauthOptions(cfg *config.Config) ([]accounts.OAuthClient, []byte, error) {
	key, err := secrets.DeriveKey([]byte(cfg.Server.Secret.Value()), secrets.PurposeOAuthState, secrets.KeySize)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: oauth state key: %w", err)
	}
	out := make([]accounts.OAuthClient, 0, len(cfg.OAuth))
	for _, o := range cfg.OAuth {
		out = append(out, accounts.OAuthClient{Provider: o.Provider, ClientID: o.ClientID, ClientSecret: o.ClientSecret.Value(),
			AuthURL: o.AuthURL, TokenURL: o.TokenURL, APIURL: o.APIURL, Scopes: o.Scopes})
	}
	slices.SortFunc(out, func(a, b accounts.OAuthClient) int { return strings.Compare(a.Provider, b.Provider) })
	return out, key, nil
}
