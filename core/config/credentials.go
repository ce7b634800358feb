package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// credential maps a file of the systemd credentials directory to the
// attribute it overrides.
type credential struct {
	file string // name in $CREDENTIALS_DIRECTORY
	path string // attribute path, e.g. "server.secret"
	// set stores the value; it returns false when the target block is
	// absent (the credential then creates nothing).
	set func(c *Config, s Secret) bool
}

// Credentials lists the systemd credential names the overlay reads, in the
// order they are applied.
func Credentials() []string {
	names := make([]string, len(credentialTable))
	for i, cr := range credentialTable {
		names[i] = cr.file
	}
	return names
}

var credentialTable = func() []credential {
	t := []credential{
		{"api_server_secret", "server.secret", func(c *Config, s Secret) bool { c.Server.Secret = s; return true }},
		{"api_server_previous_secrets", "server.previous_secrets", func(c *Config, s Secret) bool {
			c.Server.PreviousSecrets = splitSecretLines(s)
			return true
		}},
		{"metrics_token", "server.metrics_token", func(c *Config, s Secret) bool { c.Server.MetricsToken = s; return true }},
		{"database_password", "database.password", func(c *Config, s Secret) bool { c.Database.Password = s; return true }},
		{"internal_api_token", "proxy.token", func(c *Config, s Secret) bool { c.Proxy.Token = s; return true }},
		{"smtp_password", "smtp.password", func(c *Config, s Secret) bool {
			if c.SMTP == nil {
				return false
			}
			c.SMTP.Password = s
			return true
		}},
	}
	for _, provider := range oauthProviders {
		t = append(t, credential{provider + "_oauth_client_secret", "oauth." + provider + ".client_secret", func(c *Config, s Secret) bool {
			o, ok := c.OAuth[provider]
			if !ok {
				return false
			}
			o.ClientSecret = s
			c.OAuth[provider] = o
			return true
		}})
	}
	return t
}()

// splitSecretLines reads a credential holding one secret per line; each
// line is trimmed of surrounding whitespace and blank lines are skipped.
func splitSecretLines(s Secret) []Secret {
	var out []Secret
	for line := range strings.Lines(s.Value()) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, NewSecret(line))
		}
	}
	return out
}

// credValue is a credential read from the credentials directory.
type credValue struct {
	value Secret
	where hcl.Range // the credential file, line 1
}

// readCredentials reads the files of Options.CredentialsDir before
// decoding. Missing files are skipped; unreadable ones are errors at the
// credential file; empty ones are ignored with a warning.
func (d *decoder) readCredentials() {
	dir := d.opts.CredentialsDir
	if dir == "" {
		return
	}
	for _, cr := range credentialTable {
		p := filepath.Join(dir, cr.file)
		where := hcl.Range{Filename: p, Start: hcl.InitialPos, End: hcl.InitialPos}
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		text, err := readSecretFile(p)
		if err != nil {
			d.errorf(where, "Cannot read credential", "Credential %s (for %s): %s.", cr.file, cr.path, err)
			continue
		}
		text = strings.TrimSpace(text)
		if text == "" {
			d.warnf(where, "Empty credential ignored", "Credential %s is empty, so %s keeps its configured value.", cr.file, cr.path)
			continue
		}
		d.creds[cr.path] = credValue{value: NewSecret(text), where: where}
	}
}

// overlayCredentials applies the credentials over the decoded values: a
// credential wins over the file, whose expression for that attribute was
// not even evaluated (so `secret = env("X")` needs no X when the
// credential exists). A credential for an absent smtp or oauth block
// creates nothing and draws a warning.
func (d *decoder) overlayCredentials() {
	for _, cr := range credentialTable {
		cv, ok := d.creds[cr.path]
		if !ok {
			continue
		}
		if !cr.set(d.cfg, cv.value) {
			block := cr.path[:strings.LastIndexByte(cr.path, '.')]
			d.warnf(cv.where, "Credential not used", "Credential %s sets %s, but the configuration has no %s block.", cr.file, cr.path, blockSyntax(block))
			continue
		}
		d.cfg.ranges[cr.path] = cv.where
		delete(d.failed, cr.path)
	}
}

// blockSyntax renders a block path as written in HCL: "oauth.google" →
// `oauth "google"`.
func blockSyntax(path string) string {
	typ, label, ok := strings.Cut(path, ".")
	if !ok {
		return typ
	}
	return typ + ` "` + label + `"`
}
