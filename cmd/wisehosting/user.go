package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/daemon"
	"github.com/wisehosting/wisehosting/core/store"
)

const userUsage = `usage:
  wisehosting user add -email EMAIL [-name NAME] [-plan PLAN] [-token-name NAME] [-config FILE]
  wisehosting user list [-json] [-config FILE]

'user add' creates the user (or finds it by e-mail) straight in the database
and mints an API token for it, printed once on the last line of stdout, for
'wisehosting login'. -plan sets the user's plan id (one of the plan
catalogue's; an unknown id gets the default plan's limits).`

// planRE is the rule the database enforces on users.plan.
var planRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// maxTokenName is the longest API token name the database takes.
const maxTokenName = 100

func cmdUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", userUsage)
	}
	fs := newFlags("user "+args[0], stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, userUsage) }
	cfgPath := fs.String("config", defaultConfig(), "config file")
	switch args[0] {
	case "add":
		email := fs.String("email", "", "the user's e-mail address (required)")
		name := fs.String("name", "", "display name (kept when the user exists and has one)")
		plan := fs.String("plan", "", "plan id (default: free for a new user; changes an existing user's)")
		tokenName := fs.String("token-name", "cli", "name of the API token, as GET /api/v1/tokens lists it")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if fs.NArg() > 0 {
			return usageErr("unexpected arguments %q\n%s", fs.Args(), userUsage)
		}
		addr, err := checkUserFlags(*email, *plan, *tokenName)
		if err != nil {
			return err
		}
		cfg, err := loadConfig(*cfgPath, stderr)
		if err != nil {
			return err
		}
		return withDatabase(ctx, cfg, func(db *daemon.Database) error {
			return userAdd(ctx, db.Store, cfg, stdout, addr, strings.TrimSpace(*name), *plan, strings.TrimSpace(*tokenName))
		})
	case "list":
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		if fs.NArg() > 0 {
			return usageErr("unexpected arguments %q\n%s", fs.Args(), userUsage)
		}
		return withStore(ctx, *cfgPath, stderr, func(db *daemon.Database) error {
			us, err := db.Store.ListUserSummaries(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				if us == nil {
					us = []*store.UserSummary{}
				}
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(us)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tPLAN\tAPPS\tTOKENS\t2FA\tCREATED")
			for _, u := range us {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%v\t%s\n", u.ID, u.Email, orDash(u.Name), u.Plan, u.Apps,
					u.Tokens, u.TOTPEnabled, u.CreatedAt.Format("2006-01-02"))
			}
			return tw.Flush()
		})
	}
	return usageErr("unknown user command %q\n%s", args[0], userUsage)
}

// checkUserFlags checks `user add`'s flags as the database will and
// returns the e-mail address, lower-cased; its errors are usage errors.
func checkUserFlags(email, plan, tokenName string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", usageErr("user add: -email is required\n%s", userUsage)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", usageErr("-email %q is not an e-mail address (want the bare address, like ada@example.com)", email)
	}
	if plan != "" && !planRE.MatchString(plan) {
		return "", usageErr("-plan %q is not a plan id: use lowercase letters, digits, '_' and '-' (at most 64)", plan)
	}
	tokenName = strings.TrimSpace(tokenName)
	if tokenName == "" || utf8.RuneCountInString(tokenName) > maxTokenName || !utf8.ValidString(tokenName) {
		return "", usageErr("-token-name must be 1 to %d characters", maxTokenName)
	}
	return strings.ToLower(email), nil
}

// userAdd finds or creates the user, sets the plan when asked, and mints
// an API token.
func userAdd(ctx context.Context, st *store.Store, cfg *config.Config, stdout io.Writer, email, name, plan, tokenName string) error {
	u, created, err := st.UpsertUserByEmail(ctx, email, name, "")
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	verb := "found existing user"
	if created {
		verb = "created user"
	}
	if plan != "" && plan != u.Plan {
		if err := st.SetUserPlan(ctx, u.ID, plan); err != nil {
			return fmt.Errorf("user add: set the plan of %s: %w", email, err)
		}
		if !created {
			verb += fmt.Sprintf(" (plan changed from %s)", u.Plan)
		}
		u.Plan = plan
	}
	live, err := st.ListAPITokens(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	if len(live) >= accounts.MaxAPITokens {
		return fmt.Errorf("user add: %s already has %d API tokens, the most allowed; revoke one first (DELETE /api/v1/tokens/<id>)", email, len(live))
	}
	token, hash, err := accounts.NewToken(accounts.APITokenPrefix)
	if err != nil {
		return err
	}
	t, err := st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, Name: tokenName, TokenHash: hash,
		Prefix: token[:len(accounts.APITokenPrefix)+4]})
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return fmt.Errorf("user add: the database refused the token %q: %w", tokenName, err)
		}
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s (id %d, plan %s).\n", verb, u.Email, u.ID, u.Plan)
	fmt.Fprintf(stdout, "API token %q (id %d) is below, shown once: only its hash is stored.\n", t.Name, t.ID)
	fmt.Fprintf(stdout, "Log in with it: wisehosting login -core %s  (paste the token, or pass it in $WISEHOSTING_TOKEN)\n", coreURLOf(cfg))
	fmt.Fprintln(stdout, token)
	return nil
}

// coreURLOf is the URL users reach the core at: server.base_url, else the
// listen address (a wildcard one as loopback).
func coreURLOf(cfg *config.Config) string {
	if cfg.Server.BaseURL != "" {
		return cfg.Server.BaseURL
	}
	scheme := "http"
	if cfg.Server.TLS() {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		return scheme + "://" + cfg.Server.Listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
