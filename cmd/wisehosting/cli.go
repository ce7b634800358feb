package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/cliclient"
)

// The environment of the user commands.
const (
	// envCLIConfig names the credentials file.
	envCLIConfig = "WISEHOSTING_CLI_CONFIG"
	// envCore overrides the core URL of the credentials file.
	envCore = "WISEHOSTING_CORE"
	// envToken overrides the stored token (CI).
	envToken = "WISEHOSTING_TOKEN"
)

const loginUsage = `usage:
  wisehosting login [-core URL]    check an API token (wht_…) and store it
  wisehosting logout               forget the stored token

login reads the token from $WISEHOSTING_TOKEN, else one line of stdin (at a
terminal it prompts and does not echo). The core URL comes from -core, else
$WISEHOSTING_CORE, else the one stored. Credentials are kept in
$WISEHOSTING_CLI_CONFIG, else $XDG_CONFIG_HOME/wisehosting/cli.json, else
~/.config/wisehosting/cli.json (mode 0600). Every other command takes -core
too, and $WISEHOSTING_TOKEN overrides the stored token (CI).`

// cli runs the user commands (login, logout, apps) against the user API.
// Its fields are the process's environment, replaced in tests.
type cli struct {
	stdin io.Reader
	// terminal reports that stdin is a terminal (prompts, confirmations).
	terminal bool
	// hideInput turns the terminal's echo off and returns what turns it
	// back on; nil: input is echoed.
	hideInput      func() (restore func())
	stdout, stderr io.Writer
	getenv         func(string) string
	// home is the user's home directory (the fallback config location).
	home func() (string, error)
	hc   *http.Client
	now  func() time.Time
	// loc is the zone times are shown in.
	loc *time.Location
	// every is how often a deployment or job is polled.
	every time.Duration
}

// newCLI returns the cli of this process.
func newCLI(stdout, stderr io.Writer) *cli {
	c := &cli{
		stdin:    os.Stdin,
		terminal: isTerminal(os.Stdin),
		stdout:   stdout,
		stderr:   stderr,
		getenv:   os.Getenv,
		home:     os.UserHomeDir,
		hc:       &http.Client{Timeout: cliclient.DefaultTimeout},
		now:      time.Now,
		loc:      time.Local,
		every:    time.Second,
	}
	if c.terminal {
		c.hideInput = func() func() { return hideInput(os.Stdin) }
	}
	return c
}

// command runs one user command: args[0] is login, logout or apps.
func (c *cli) command(ctx context.Context, args []string) error {
	switch args[0] {
	case "login":
		return c.login(ctx, args[1:])
	case "logout":
		return c.logout(args[1:])
	case "apps":
		return c.apps(ctx, args[1:])
	}
	return usageErr("unknown command %q", args[0])
}

// cliConfig is the credentials file.
type cliConfig struct {
	Core  string `json:"core,omitempty"`
	Token string `json:"token,omitempty"`
}

// configPath is where the credentials are kept.
func (c *cli) configPath() (string, error) {
	if p := c.getenv(envCLIConfig); p != "" {
		return p, nil
	}
	if x := c.getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "wisehosting", "cli.json"), nil
	}
	home, err := c.home()
	if err != nil || home == "" {
		return "", fmt.Errorf("no place for the credentials: set $%s or $XDG_CONFIG_HOME (home directory: %v)", envCLIConfig, err)
	}
	return filepath.Join(home, ".config", "wisehosting", "cli.json"), nil
}

// loadConfigFile reads the credentials; a missing file is an empty config.
// A file others can read is used, with a warning.
func (c *cli) loadConfigFile() (cliConfig, string, error) {
	var cfg cliConfig
	path, err := c.configPath()
	if err != nil {
		return cfg, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, fmt.Errorf("read the credentials: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(c.stderr, "wisehosting: warning: %s is readable by others (mode %v); run: chmod 600 %s\n", path, fi.Mode().Perm(), path)
	}
	dec := json.NewDecoder(io.LimitReader(f, 64<<10))
	if err := dec.Decode(&cfg); err != nil {
		return cfg, path, fmt.Errorf("read the credentials in %s: %w (fix or remove the file, then log in again)", path, err)
	}
	return cfg, path, nil
}

// saveConfigFile replaces the credentials file atomically: its directory
// is created 0700, the file written 0600.
func saveConfigFile(path string, cfg cliConfig) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save the credentials: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("save the credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".cli-*.json")
	if err != nil {
		return fmt.Errorf("save the credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save the credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save the credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save the credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save the credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save the credentials: %w", err)
	}
	return nil
}

// flags returns a flag set with the -core flag every user command takes.
func (c *cli) flags(name string) (*flag.FlagSet, *string) {
	fs := newFlags(name, c.stderr)
	core := fs.String("core", "", "URL of the core (default: $WISEHOSTING_CORE, else the one logged in to)")
	return fs, core
}

// errNoCore means no core URL was given or stored.
var errNoCore = errors.New("no core URL")

// coreURL is the core to talk to: the flag, $WISEHOSTING_CORE or the
// stored one, normalized.
func (c *cli) coreURL(flagValue string, cfg cliConfig) (string, error) {
	raw := flagValue
	if raw == "" {
		raw = c.getenv(envCore)
	}
	if raw == "" {
		raw = cfg.Core
	}
	if raw == "" {
		return "", errNoCore
	}
	u, err := cliclient.ParseBaseURL(raw)
	if err != nil {
		return "", usageErr("-core: %s", strings.TrimPrefix(err.Error(), "cliclient: "))
	}
	return u.String(), nil
}

// client returns a client of the core with the token: $WISEHOSTING_TOKEN,
// else the stored one — only for the core it was stored for, so that a
// -core pointing elsewhere never receives it.
func (c *cli) client(coreFlag string) (*cliclient.Client, error) {
	cfg, _, err := c.loadConfigFile()
	if err != nil {
		return nil, err
	}
	core, err := c.coreURL(coreFlag, cfg)
	if err != nil {
		if !errors.Is(err, errNoCore) {
			return nil, err
		}
		return nil, errors.New("not logged in: run 'wisehosting login -core URL' (or set $WISEHOSTING_CORE and $WISEHOSTING_TOKEN)")
	}
	token := c.getenv(envToken)
	if token == "" {
		if cfg.Token == "" {
			return nil, fmt.Errorf("not logged in: run 'wisehosting login -core %s' (or set $WISEHOSTING_TOKEN)", core)
		}
		if stored, err := cliclient.ParseBaseURL(cfg.Core); err != nil || stored.String() != core {
			return nil, fmt.Errorf("not logged in to %s (the stored token is for %s): run 'wisehosting login -core %s'", core, cfg.Core, core)
		}
		token = cfg.Token
	}
	cl, err := cliclient.New(core, token, c.hc)
	if err != nil {
		return nil, err
	}
	cl.UserAgent = "wisehosting-cli/" + version
	return cl, nil
}

// failed wraps an error of the API with what was being done; a 401 gets
// the way out.
func failed(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if cliclient.IsStatus(err, http.StatusUnauthorized) {
		return fmt.Errorf("%s: %w (log in again: wisehosting login)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (c *cli) login(ctx context.Context, args []string) error {
	fs, coreFlag := c.flags("login")
	fs.Usage = func() { fmt.Fprintln(c.stderr, loginUsage) }
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("login takes no arguments (the token comes from $WISEHOSTING_TOKEN or stdin)\n%s", loginUsage)
	}
	cfg, path, err := c.loadConfigFile()
	if err != nil {
		return err
	}
	core, err := c.coreURL(*coreFlag, cfg)
	if err != nil {
		if !errors.Is(err, errNoCore) {
			return err
		}
		return usageErr("login: which core? pass -core URL (or set $WISEHOSTING_CORE)")
	}
	token := c.getenv(envToken)
	if token == "" {
		if token, err = c.readSecret(ctx, "API token (wht_…): "); err != nil {
			return fmt.Errorf("login: read the token: %w", err)
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return errors.New("login: no token: give it on stdin or in $WISEHOSTING_TOKEN")
	}
	if !strings.HasPrefix(token, accounts.APITokenPrefix) {
		return fmt.Errorf("login: that is not a WiseHosting API token: API tokens start with %q; get one from 'wisehosting user add' or POST /api/v1/tokens",
			accounts.APITokenPrefix)
	}
	if err := accounts.ParseToken(accounts.APITokenPrefix, token); err != nil {
		why := err.Error()
		if _, after, ok := strings.Cut(why, accounts.ErrMalformedToken.Error()+": "); ok {
			why = after
		}
		return fmt.Errorf("login: the token is damaged (%s): copy it whole", why)
	}
	cl, err := cliclient.New(core, token, c.hc)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	cl.UserAgent = "wisehosting-cli/" + version
	me, err := cl.Me(ctx)
	if err != nil {
		return fmt.Errorf("login: check the token with %s: %w", core, err)
	}
	if err := saveConfigFile(path, cliConfig{Core: core, Token: token}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	fmt.Fprintf(c.stdout, "logged in as %s at %s\n", me.Email, core)
	return nil
}

// readSecret reads one line from stdin; at a terminal it prompts on stderr
// and hides what is typed. ctx ends the wait.
func (c *cli) readSecret(ctx context.Context, prompt string) (string, error) {
	if c.terminal {
		fmt.Fprint(c.stderr, prompt)
		if c.hideInput != nil {
			restore := c.hideInput()
			defer func() {
				restore()
				fmt.Fprintln(c.stderr) // the Enter that was not echoed
			}()
		}
	}
	return c.readLine(ctx)
}

// readLine reads one line (at most 4 KiB) from stdin; EOF after a partial
// line returns it.
func (c *cli) readLine(ctx context.Context) (string, error) {
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReaderSize(io.LimitReader(c.stdin, 4<<10), 4<<10).ReadString('\n')
		if errors.Is(err, io.EOF) && line != "" {
			err = nil
		}
		done <- result{strings.TrimRight(line, "\r\n"), err}
	}()
	select {
	case r := <-done:
		return r.line, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *cli) logout(args []string) error {
	fs := newFlags("logout", c.stderr)
	fs.Usage = func() { fmt.Fprintln(c.stderr, loginUsage) }
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("logout takes no arguments\n%s", loginUsage)
	}
	cfg, path, err := c.loadConfigFile()
	if err != nil {
		return err
	}
	if cfg.Token == "" {
		fmt.Fprintln(c.stdout, "not logged in")
		return nil
	}
	// The core stays, so that the next login needs no -core.
	if err := saveConfigFile(path, cliConfig{Core: cfg.Core}); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	fmt.Fprintf(c.stdout, "logged out of %s: the token is forgotten here, but stays valid until it is revoked (DELETE /api/v1/tokens/<id>)\n", cfg.Core)
	return nil
}
