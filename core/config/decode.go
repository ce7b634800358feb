package config

import (
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/wisehosting/wisehosting/sdk/units"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Defaults of the optional attributes; schema/config.md documents them.
const (
	DefaultDataDir           = "./data"
	DefaultListen            = "0.0.0.0:8443"
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultMaxConns          = 25
	DefaultMinConns          = 5
	DefaultMaxConnLifetime   = 5 * time.Minute
	DefaultPlacement         = "least-loaded"
	DefaultPollInterval      = 5 * time.Second
	DefaultStuckAfter        = 15 * time.Minute
	DefaultWorkerTimeout     = 2 * time.Minute
	DefaultBatchSize         = 2000
	DefaultConcurrency       = 2
	DefaultBuildTimeout      = 10 * time.Minute
	DefaultStartTimeout      = 30 * time.Second
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultLogRetention      = 7 * units.Day
	DefaultPortRangeStart    = 20000
	DefaultPortRangeEnd      = 29999
	DefaultNetwork           = "wisehosting"
	DefaultAPIRateWindow     = time.Minute
	DefaultSessionTTL        = 720 * time.Hour
	DefaultLogLevel          = "info"
	DefaultSMTPPort          = 587
	DefaultEventBatchSize    = 500
	DefaultEventMaxAge       = 3 * units.Day
	DefaultEventRetention    = 30 * units.Day
	DefaultWebhookTimeout    = 10 * time.Second
	DefaultWebhookConc       = 16
	DefaultDomainRecheck     = 6 * time.Hour
	DefaultDomainLookup      = 5 * time.Second
	DefaultDomainGrace       = 48 * time.Hour
)

// defaults returns a Config holding every default; dataDir is not yet
// resolved.
func defaults() *Config {
	return &Config{
		DataDir: DefaultDataDir,
		Server:  Server{Listen: DefaultListen, ShutdownTimeout: DefaultShutdownTimeout},
		Database: Database{
			MaxConns: DefaultMaxConns, MinConns: DefaultMinConns, MaxConnLifetime: DefaultMaxConnLifetime,
		},
		Scheduler: Scheduler{
			Placement: DefaultPlacement, PollInterval: DefaultPollInterval, StuckAfter: DefaultStuckAfter,
			WorkerTimeout: DefaultWorkerTimeout, BatchSize: DefaultBatchSize,
			Concurrency: DefaultConcurrency,
		},
		Worker: Worker{
			BuildTimeout: DefaultBuildTimeout, StartTimeout: DefaultStartTimeout,
			HeartbeatInterval: DefaultHeartbeatInterval, LogRetention: DefaultLogRetention,
		},
		Container: Container{PortRangeStart: DefaultPortRangeStart, PortRangeEnd: DefaultPortRangeEnd, Network: DefaultNetwork},
		Security:  Security{APIRateWindow: DefaultAPIRateWindow, SessionTTL: DefaultSessionTTL, SecureCookies: true},
		Logging:   Logging{Level: DefaultLogLevel},
		Events: Events{
			BatchSize: DefaultEventBatchSize, MaxAge: DefaultEventMaxAge, Retention: DefaultEventRetention,
			WebhookTimeout: DefaultWebhookTimeout, WebhookConcurrency: DefaultWebhookConc,
		},
		Domains: Domains{
			RecheckInterval: DefaultDomainRecheck, LookupTimeout: DefaultDomainLookup, GracePeriod: DefaultDomainGrace,
		},
		OAuth:  map[string]OAuth{},
		ranges: map[string]hcl.Range{},
	}
}

// singletonBlocks are the top-level blocks without labels, each allowed once.
var singletonBlocks = []string{"platform", "server", "database", "scheduler", "worker", "container", "security", "logging", "smtp", "proxy", "events", "domains"}

var rootSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "data_dir"}}}
	for _, b := range singletonBlocks {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: b})
	}
	s.Blocks = append(s.Blocks,
		hcl.BlockHeaderSchema{Type: "oauth", LabelNames: []string{"provider"}},
		hcl.BlockHeaderSchema{Type: "plugin", LabelNames: []string{"kind", "name"}},
	)
	return s
}()

// decoder accumulates the state of one decoding pass.
type decoder struct {
	filename string
	baseDir  string // absolute directory of the config file
	opts     Options
	ctx      *hcl.EvalContext
	diags    hcl.Diagnostics

	cfg *Config
	// blocks maps block paths ("server", "oauth.github") to their header.
	blocks map[string]hcl.Range
	// failed marks attribute paths whose value could not be decoded, so
	// validation does not pile a second error on them.
	failed map[string]bool
	// computed marks attribute paths whose expression calls a function
	// (env(), file()): their values must never be quoted in a diagnostic.
	computed map[string]bool
	// creds are the systemd credentials by attribute path.
	creds map[string]credValue
	// fileStart is the empty range at the file's first character, for
	// problems with no better place (a missing required block).
	fileStart hcl.Range
}

func newDecoder(filename, baseDir string, opts Options) *decoder {
	return &decoder{
		filename:  filename,
		baseDir:   baseDir,
		opts:      opts,
		ctx:       newEvalContext(baseDir, opts.LookupEnv),
		cfg:       defaults(),
		blocks:    map[string]hcl.Range{},
		failed:    map[string]bool{},
		computed:  map[string]bool{},
		creds:     map[string]credValue{},
		fileStart: hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos},
	}
}

func (d *decoder) errorf(subject hcl.Range, summary, detailFormat string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  subject.Ptr(),
	})
}

func (d *decoder) warnf(subject hcl.Range, summary, detailFormat string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detailFormat, args...),
		Subject:  subject.Ptr(),
	})
}

// sortDiagnostics orders diags by position: the config file first, then
// other files (credentials), each by offset.
func sortDiagnostics(diags hcl.Diagnostics, filename string) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename == filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

// decodeFile decodes, overlays credentials and validates.
func (d *decoder) decodeFile(file *hcl.File) *Config {
	c := d.cfg
	d.readCredentials()
	content, diags := file.Body.Content(rootSchema)
	d.diags = append(d.diags, diags...)

	d.decodeAttrs(content, "", []field{strField("data_dir", &c.DataDir)})

	seen := map[string]*hcl.Block{}
	plugins := map[[2]string]*hcl.Block{}
	for _, blk := range content.Blocks {
		if slices.Contains(singletonBlocks, blk.Type) {
			if prev := seen[blk.Type]; prev != nil {
				d.errorf(blk.DefRange, "Duplicate "+blk.Type+" block",
					"A %s block is already defined at %s; merge the two.", blk.Type, prev.DefRange)
				continue
			}
			seen[blk.Type] = blk
			d.blocks[blk.Type] = blk.DefRange
		}
		switch blk.Type {
		case "platform":
			d.decodeBody(blk.Body, "platform", nil, strField("domain", &c.Platform.Domain))
		case "server":
			s := &c.Server
			d.decodeBody(blk.Body, "server", nil,
				strField("listen", &s.Listen),
				secretField("secret", &s.Secret),
				pathField("tls_cert", &s.TLSCert),
				pathField("tls_key", &s.TLSKey),
				strField("base_url", &s.BaseURL),
				durField("shutdown_timeout", &s.ShutdownTimeout),
				secretField("metrics_token", &s.MetricsToken),
				secretListField("previous_secrets", &s.PreviousSecrets),
			)
		case "database":
			db := &c.Database
			d.decodeBody(blk.Body, "database", nil,
				secretField("url", &db.URL),
				secretField("password", &db.Password),
				intField("max_conns", &db.MaxConns),
				intField("min_conns", &db.MinConns),
				durField("max_conn_lifetime", &db.MaxConnLifetime),
			)
		case "scheduler":
			s := &c.Scheduler
			d.decodeBody(blk.Body, "scheduler", nil,
				strField("placement", &s.Placement),
				durField("poll_interval", &s.PollInterval),
				durField("stuck_after", &s.StuckAfter),
				durField("worker_timeout", &s.WorkerTimeout),
				intField("batch_size", &s.BatchSize),
				intField("concurrency", &s.Concurrency),
			)
		case "worker":
			w := &c.Worker
			d.decodeBody(blk.Body, "worker", nil,
				durField("build_timeout", &w.BuildTimeout),
				durField("start_timeout", &w.StartTimeout),
				durField("heartbeat_interval", &w.HeartbeatInterval),
				durField("log_retention", &w.LogRetention),
				boolField("allow_loopback_address", &w.AllowLoopbackAddress),
			)
		case "container":
			ct := &c.Container
			d.decodeBody(blk.Body, "container", nil,
				intField("port_range_start", &ct.PortRangeStart),
				intField("port_range_end", &ct.PortRangeEnd),
				strField("network", &ct.Network),
			)
		case "security":
			s := &c.Security
			d.decodeBody(blk.Body, "security", nil,
				durField("api_rate_window", &s.APIRateWindow),
				durField("session_ttl", &s.SessionTTL),
				boolField("secure_cookies", &s.SecureCookies),
				boolField("allow_private_targets", &s.AllowPrivateTargets),
				boolField("allow_local_repos", &s.AllowLocalRepos),
			)
		case "logging":
			l := &c.Logging
			d.decodeBody(blk.Body, "logging", nil,
				strField("level", &l.Level),
				boolField("json", &l.JSON),
			)
		case "smtp":
			s := &SMTP{Port: DefaultSMTPPort, StartTLS: true}
			d.decodeBody(blk.Body, "smtp", nil,
				strField("host", &s.Host),
				intField("port", &s.Port),
				strField("username", &s.Username),
				secretField("password", &s.Password),
				strField("from", &s.From),
				boolField("starttls", &s.StartTLS),
				pathField("ca_file", &s.CAFile),
			)
			c.SMTP = s
		case "proxy":
			d.decodeBody(blk.Body, "proxy", nil, secretField("token", &c.Proxy.Token))
		case "events":
			e := &c.Events
			d.decodeBody(blk.Body, "events", nil,
				intField("batch_size", &e.BatchSize),
				durField("max_age", &e.MaxAge),
				durField("retention", &e.Retention),
				durField("webhook_timeout", &e.WebhookTimeout),
				intField("webhook_concurrency", &e.WebhookConcurrency),
			)
		case "domains":
			dm := &c.Domains
			d.decodeBody(blk.Body, "domains", nil,
				strField("resolver", &dm.Resolver),
				durField("recheck_interval", &dm.RecheckInterval),
				durField("lookup_timeout", &dm.LookupTimeout),
				durField("grace_period", &dm.GracePeriod),
			)
		case "oauth":
			d.decodeOAuth(blk)
		case "plugin":
			d.decodePlugin(blk, plugins)
		}
	}

	if c.DataDir == "" {
		d.check("data_dir", errors.New(`must not be empty; omit it for the default "./data"`))
	} else {
		c.DataDir = d.absPath(c.DataDir)
	}
	d.overlayCredentials()
	d.validate()

	return c
}

func (d *decoder) decodeOAuth(blk *hcl.Block) {
	provider := blk.Labels[0]
	path := "oauth." + provider
	o := OAuth{Provider: provider, DefRange: blk.DefRange}
	d.decodeBody(blk.Body, path, nil,
		strField("client_id", &o.ClientID),
		secretField("client_secret", &o.ClientSecret),
		strField("auth_url", &o.AuthURL),
		strField("token_url", &o.TokenURL),
		strField("api_url", &o.APIURL),
		listField("scopes", &o.Scopes),
	)
	switch {
	case !slices.Contains(oauthProviders, provider):
		d.errorf(blk.LabelRanges[0], "Unknown OAuth provider",
			"%q is not a supported provider%s; use one of %s.", provider, suggest(provider, oauthProviders), quoteList(oauthProviders))
	case d.blocks[path] != (hcl.Range{}):
		d.errorf(blk.DefRange, "Duplicate oauth block",
			"An oauth %q block is already defined at %s; merge the two.", provider, d.blocks[path])
	default:
		d.blocks[path] = blk.DefRange
		d.cfg.OAuth[provider] = o
	}
}

var pluginConfigSchema = []hcl.BlockHeaderSchema{{Type: "config"}}

func (d *decoder) decodePlugin(blk *hcl.Block, seen map[[2]string]*hcl.Block) {
	kind, name := blk.Labels[0], blk.Labels[1]
	path := "plugin." + kind + "." + name
	p := Plugin{Kind: kind, Name: name, DefRange: blk.DefRange}
	content := d.decodeBody(blk.Body, path, pluginConfigSchema,
		strField("source", &p.Source),
		strField("command", &p.Command),
		listField("args", &p.Args),
		secretMapField("env", &p.Env),
		strField("checksum", &p.Checksum),
		listField("events", &p.Events),
	)
	if p.Command != "" && strings.ContainsRune(p.Command, '/') {
		p.Command = d.absPath(p.Command)
	}
	for _, cb := range content.Blocks {
		if p.Config != nil {
			d.errorf(cb.DefRange, "Duplicate config block",
				"Plugin %q %q already has a config block; merge the two.", kind, name)
			continue
		}
		p.Config = cb.Body
	}
	if p.Config == nil {
		// An empty body whose MissingItemRange is the plugin header, so
		// "missing required argument" errors from the plugin's schema point
		// at this block.
		p.Config = &hclsyntax.Body{SrcRange: blk.DefRange, EndRange: blk.DefRange}
	}

	key := [2]string{kind, name}
	switch {
	case !slices.Contains(pluginKinds, kind):
		d.errorf(blk.LabelRanges[0], "Unknown plugin kind",
			"%q is not a plugin kind%s; use one of %s.", kind, suggest(kind, pluginKinds), quoteList(pluginKinds))
	case !validPluginName(name):
		d.errorf(blk.LabelRanges[1], "Invalid plugin name",
			"Plugin name %q must be 1 to 64 characters: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.", name)
	case seen[key] != nil:
		d.errorf(blk.DefRange, "Duplicate plugin",
			"plugin %q %q is already declared at %s; each (kind, name) pair must be unique.", kind, name, seen[key].DefRange)
	default:
		seen[key] = blk
		d.blocks[path] = blk.DefRange
		d.cfg.Plugins = append(d.cfg.Plugins, p)
	}
}

// field decodes one attribute; the list of fields of a block is also its
// schema, so the two cannot drift apart.
type field struct {
	name   string
	secret bool
	decode func(d *decoder, path string, attr *hcl.Attribute)
}

// decodeBody decodes body against fields (attributes) and blocks, reporting
// unknown attributes and blocks, and returns the content for the caller to
// handle the nested blocks.
func (d *decoder) decodeBody(body hcl.Body, path string, blocks []hcl.BlockHeaderSchema, fields ...field) *hcl.BodyContent {
	schema := &hcl.BodySchema{Blocks: blocks}
	for _, f := range fields {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: f.name})
	}
	content, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	if content == nil {
		return &hcl.BodyContent{}
	}
	d.decodeAttrs(content, path, fields)
	return content
}

func (d *decoder) decodeAttrs(content *hcl.BodyContent, path string, fields []field) {
	for _, f := range fields {
		attr, ok := content.Attributes[f.name]
		if !ok {
			continue
		}
		p := f.name
		if path != "" {
			p = path + "." + f.name
		}
		if _, ok := d.creds[p]; ok {
			continue // a credential overrides it; see overlayCredentials
		}
		f.decode(d, p, attr)
	}
}

// eval evaluates attr and converts it to ty. ok is false when the value is
// null (treated as unset) or when an error was reported.
func (d *decoder) eval(path string, attr *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	d.cfg.ranges[path] = attr.Expr.Range()
	if callsFunction(attr.Expr) {
		d.computed[path] = true
	}
	if vars := attr.Expr.Variables(); len(vars) > 0 {
		for _, v := range vars {
			root := v.RootName()
			d.errorf(v.SourceRange(), "Variables are not supported",
				"%s: %q is read as a variable reference, but the configuration has no variables. "+
					`Quote literal text ("%s"), or use env("NAME") or file("path").`, path, root, root)
		}
		d.failed[path] = true
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		d.failed[path] = true
		return cty.NilVal, false
	}
	if v.IsNull() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Incorrect attribute value type",
			"%s must be %s: %s.", path, typeName(ty), err)
		d.failed[path] = true
		return cty.NilVal, false
	}
	if cv.IsNull() {
		return cty.NilVal, false
	}
	return cv, true
}

// callsFunction reports whether expr contains a function call anywhere
// (env("X"), "${file("p")}-suffix", …). An expression that is not native
// HCL syntax counts as calling one, so its value is never quoted.
func callsFunction(expr hcl.Expression) bool {
	e, ok := expr.(hclsyntax.Expression)
	if !ok {
		return true
	}
	found := false
	_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if _, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			found = true
		}
		return nil
	})
	return found
}

func (d *decoder) fail(path string, attr *hcl.Attribute, summary, detailFormat string, args ...any) {
	d.failed[path] = true
	d.errorf(attr.Expr.Range(), summary, detailFormat, args...)
}

func typeName(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "a bool (true or false)"
	case ty.IsListType():
		return "a list of strings"
	case ty.IsMapType():
		return "a map of strings"
	}
	return ty.FriendlyName()
}

func strField(name string, dst *string) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		if v, ok := d.eval(path, attr, cty.String); ok {
			*dst = v.AsString()
		}
	}}
}

// pathField is a string holding a file path, made absolute against baseDir.
func pathField(name string, dst *string) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		if v, ok := d.eval(path, attr, cty.String); ok && v.AsString() != "" {
			*dst = d.absPath(v.AsString())
		}
	}}
}

func secretField(name string, dst *Secret) field {
	return field{name: name, secret: true, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		if v, ok := d.eval(path, attr, cty.String); ok {
			*dst = NewSecret(v.AsString())
		}
	}}
}

func boolField(name string, dst *bool) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		if v, ok := d.eval(path, attr, cty.Bool); ok {
			*dst = v.True()
		}
	}}
}

func intField(name string, dst *int) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		v, ok := d.eval(path, attr, cty.Number)
		if !ok {
			return
		}
		bf := v.AsBigFloat()
		if bf.IsInf() || !bf.IsInt() {
			d.fail(path, attr, "Invalid number", "%s must be a whole number.", path)
			return
		}
		i, acc := bf.Int64()
		if acc != big.Exact || i < -1<<31 || i > 1<<31-1 {
			d.fail(path, attr, "Invalid number", "%s is out of range.", path)
			return
		}
		*dst = int(i)
	}}
}

func durField(name string, dst *time.Duration) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		v, ok := d.eval(path, attr, cty.DynamicPseudoType)
		if !ok {
			return
		}
		if v.Type() == cty.Number {
			d.fail(path, attr, "Invalid duration",
				`%s takes a duration string with a unit, such as "30s", "15m", "12h" or "7d"; a bare number has no unit.`, path)
			return
		}
		sv, err := convert.Convert(v, cty.String)
		if err != nil || sv.IsNull() {
			d.fail(path, attr, "Incorrect attribute value type",
				`%s must be a duration string such as "30s", "15m", "12h" or "7d".`, path)
			return
		}
		dur, err := units.ParseDuration(sv.AsString())
		switch {
		case err != nil && d.computed[path]:
			// The parser's error quotes its input: say what is expected
			// instead.
			d.fail(path, attr, "Invalid duration",
				`%s: %s is not a duration; write number+unit pairs with units ns, us, ms, s, m, h or d, such as "30s", "15m", "12h" or "7d".`,
				path, fromFunction)
		case err != nil:
			d.fail(path, attr, "Invalid duration", "%s: %s.", path, err)
		case dur <= 0:
			d.fail(path, attr, "Invalid duration", "%s must be longer than zero.", path)
		default:
			*dst = dur
		}
	}}
}

// secretListField is a list of strings, each a Secret.
func secretListField(name string, dst *[]Secret) field {
	return field{name: name, secret: true, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		v, ok := d.eval(path, attr, cty.List(cty.String))
		if !ok {
			return
		}
		out := make([]Secret, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsNull() {
				d.fail(path, attr, "Invalid list element", "%s must not contain null.", path)
				return
			}
			out = append(out, NewSecret(ev.AsString()))
		}
		*dst = out
	}}
}

func listField(name string, dst *[]string) field {
	return field{name: name, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		v, ok := d.eval(path, attr, cty.List(cty.String))
		if !ok {
			return
		}
		out := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsNull() {
				d.fail(path, attr, "Invalid list element", "%s must not contain null.", path)
				return
			}
			out = append(out, ev.AsString())
		}
		*dst = out
	}}
}

func secretMapField(name string, dst *map[string]Secret) field {
	return field{name: name, secret: true, decode: func(d *decoder, path string, attr *hcl.Attribute) {
		v, ok := d.eval(path, attr, cty.Map(cty.String))
		if !ok {
			return
		}
		out := make(map[string]Secret, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			if ev.IsNull() {
				d.fail(path, attr, "Invalid map element", "%s[%q] must not be null.", path, k.AsString())
				return
			}
			out[k.AsString()] = NewSecret(ev.AsString())
		}
		*dst = out
	}}
}

// absPath resolves p against the config file's directory.
func (d *decoder) absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.baseDir, p)
}

// suggest returns ` (did you mean "x"?)` for the closest candidate, if any
// is close enough.
func suggest(got string, candidates []string) string {
	best, bestDist := "", 4
	for _, c := range candidates {
		if dist := levenshtein(got, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
