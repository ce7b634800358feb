// Package daemon wires the core together for `wisehosting serve`: config,
// data directory, embedded or external Postgres, migrations, the store, the
// plugins and the plan catalogue, the HTTP server and metrics, and the
// orderly shutdown of all of them.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wisehosting/wisehosting/core/accounts"
	"github.com/wisehosting/wisehosting/core/alerts"
	"github.com/wisehosting/wisehosting/core/api"
	"github.com/wisehosting/wisehosting/core/config"
	"github.com/wisehosting/wisehosting/core/domains"
	"github.com/wisehosting/wisehosting/core/events"
	"github.com/wisehosting/wisehosting/core/gitprovider"
	"github.com/wisehosting/wisehosting/core/hub"
	"github.com/wisehosting/wisehosting/core/mail"
	"github.com/wisehosting/wisehosting/core/metrics"
	"github.com/wisehosting/wisehosting/core/plans"
	"github.com/wisehosting/wisehosting/core/pluginhost"
	"github.com/wisehosting/wisehosting/core/proxy"
	"github.com/wisehosting/wisehosting/core/scheduler"
	"github.com/wisehosting/wisehosting/core/secrets"
	"github.com/wisehosting/wisehosting/core/store"
	"github.com/wisehosting/wisehosting/core/usage"
	"github.com/wisehosting/wisehosting/core/userapi"
	"github.com/wisehosting/wisehosting/core/workerauth"
	"github.com/wisehosting/wisehosting/sdk"
	"github.com/wisehosting/wisehosting/sdk/stdwebhook"
)

// Logger builds the core's logger from the logging block.
func Logger(cfg config.Logging) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "wisehosting",
		Level:      cfg.HCLogLevel(),
		JSONFormat: cfg.JSON,
		Output:     os.Stderr,
	})
}

// Daemon is a running core.
type Daemon struct {
	cfg      *config.Config
	log      hclog.Logger
	db       *Database
	registry *prometheus.Registry
	plugins  *pluginhost.Host
	plans    *plans.Catalogue
	api      *api.Server
	auth     *workerauth.Authenticator
	hub      *hub.Hub
	// scheduler is nil when no scheduler plugin is declared.
	scheduler *scheduler.Scheduler
	jobs      *scheduler.Jobs
	proxy     *proxy.Manager
	events    *events.Dispatcher
	mailer    *mail.Mailer
	// revokeKey signs (mailer) and verifies (accounts) the revoke links
	// of new-device mail: HKDF(server.secret, PurposeRevokeToken).
	revokeKey []byte
	accounts  *accounts.Service
	listener  *store.Listener
	http      *http.Server
	ln        net.Listener
	tls       *tls.Config

	// bgCtx and bgCancel scope the background loops (plan refresh, the
	// notification listener); bg waits for them.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// Options are what tests change in a daemon.
type Options struct {
	// BuiltinCommand serves built-in plugins (pluginhost.Options); nil
	// re-executes this binary.
	BuiltinCommand func(kind, name string) (pluginhost.Command, error)
}

// ConfigError carries the diagnostics of a configuration the daemon
// rejected after loading it, e.g. a plugin's `config {}` block; print them
// with Config.WriteDiagnostics.
type ConfigError struct {
	// Diagnostics name file:line:col and the plugin.
	Diagnostics hcl.Diagnostics
}

// Error implements error.
func (e *ConfigError) Error() string { return "daemon: " + e.Diagnostics.Error() }

// New opens everything the core needs before it can serve: the database
// (embedded Postgres started and owned here when configured; see
// OpenOptions.RequireOwner), migrations, the plugins and the plan
// catalogue, the router. It binds nothing; call Listen then Serve. A plugin
// that rejects its configuration yields a *ConfigError.
func New(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Daemon, error) {
	return NewWithOptions(ctx, cfg, log, Options{})
}

// NewWithOptions is New with Options.
func NewWithOptions(ctx context.Context, cfg *config.Config, log hclog.Logger, opts Options) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, log: log, registry: metrics.NewRegistry()}
	defer func() {
		if err != nil {
			d.Close(context.WithoutCancel(ctx))
		}
	}()
	if cfg.Server.TLS() {
		if d.tls, err = api.TLSConfig(cfg.Server.TLSCert, cfg.Server.TLSKey); err != nil {
			return nil, err
		}
	}
	if d.db, err = OpenDatabaseWith(ctx, cfg, log, OpenOptions{RequireOwner: true}); err != nil {
		return nil, err
	}
	if st := d.db.Migration; len(st.Pending) > 0 || st.Current > 0 {
		log.Info("database ready", "schema_version", st.Current, "embedded", d.db.Cluster != nil)
	}
	d.registry.MustRegister(metrics.NewPoolCollector(d.db.Store.Pool()))
	if err := d.startPlugins(ctx, opts); err != nil {
		return nil, err
	}
	jwt, err := secrets.NewJWTIssuer(cfg.Server.Secret.Value(), nil)
	if err != nil {
		return nil, fmt.Errorf("daemon: jwt issuer: %w", err)
	}
	d.auth = workerauth.New(d.db.Store, d.db.Cipher, jwt)
	if d.revokeKey, err = secrets.DeriveKey([]byte(cfg.Server.Secret.Value()), secrets.PurposeRevokeToken, secrets.KeySize); err != nil {
		return nil, fmt.Errorf("daemon: revoke token key: %w", err)
	}
	if d.mailer, err = mail.New(cfg.SMTP, d.revokeKey); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.api, err = api.New(api.Options{
		Logger:       log.Named("http"),
		Registry:     d.registry,
		MetricsToken: cfg.Server.MetricsToken.Value(),
		QuietPaths:   []string{"/health", "/ready", "/v1/workers/ws", "/v1/traefik/proxy-config", "/v1/traefik/config", "/v1/proxy/tls/ask"},
		Ready:        d.db.Store.Pool().Ping,
	})
	if err != nil {
		return nil, err
	}
	if err := d.startAccounts(); err != nil {
		return nil, err
	}
	(&api.WorkerRoutes{Auth: d.auth, Store: d.db.Store, AllowLoopbackAddress: cfg.Worker.AllowLoopbackAddress,
		HeartbeatInterval: cfg.Worker.HeartbeatInterval}).Register(d.api)
	if err := d.startHub(jwt); err != nil {
		return nil, err
	}
	(&api.StatsRoutes{Secret: cfg.Server.Secret.Value(), Store: d.db.Store, Connected: d.hub.Connected}).Register(d.api)
	d.http = api.HTTPServer(d.api, d.tls, log.Named("http"))
	return d, nil
}

// startHub starts the worker hub and the notification listener it relies
// on for key rotations. The WebSocket path authenticates through a 30 s
// cache of raw-key lookups (hub.KeyCache) that rotations invalidate;
// registration and token refresh keep reading the store directly.
func (d *Daemon) startHub(jwt *secrets.JWTIssuer) error {
	d.listener = d.db.Store.NewListener(d.log.Named("listen"))
	keys := hub.NewKeyCache(d.db.Store, hub.KeyCacheTTL)
	var err error
	d.hub, err = hub.New(hub.Options{
		Store:        d.db.Store,
		Auth:         workerauth.New(keys, d.db.Cipher, jwt),
		KeyCache:     keys,
		Listener:     d.listener,
		Logger:       d.log.Named("hub"),
		Registry:     d.registry,
		LogRetention: d.cfg.Worker.LogRetention,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.hub.Register(d.api)
	if err := d.startScheduler(); err != nil {
		return err
	}
	if err := d.startProxy(); err != nil {
		return err
	}
	// Threshold alerts over the live statistics this core holds (every
	// core runs one; the alerts' dedup keeps each alert single).
	poller, err := alerts.NewPoller(alerts.PollerOptions{Targets: d.db.Store, Stats: d.hub,
		Manager: alerts.NewManager(d.db.Store), Logger: d.log.Named("alerts")})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bg.Go(func() { poller.Run(d.bgCtx) })
	// Usage history of the apps whose statistics this core holds.
	rec, err := usage.New(usage.Options{Store: d.db.Store, Stats: d.hub, Logger: d.log.Named("usage")})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bg.Go(func() { rec.Run(d.bgCtx) })
	if err := d.startEvents(); err != nil {
		return err
	}
	if err := d.startUserAPI(); err != nil {
		return err
	}
	// Every subsystem has registered its channels: listen.
	d.bg.Go(func() {
		if err := d.listener.Run(d.bgCtx); err != nil {
			d.log.Error("notification listener stopped", "error", err)
		}
	})
	return nil
}

// startEvents runs the outbox dispatcher (one core of the cluster delivers)
// and the daily retention prune.
func (d *Daemon) startEvents() error {
	ec := d.cfg.Events
	disp, err := events.New(events.Options{
		Store: d.db.Store,
		Sinks: d.plugins.AlertSinks(),
		Webhooks: events.NewWebhooks(d.db.Cipher, stdwebhook.ClientOptions{
			Timeout: ec.WebhookTimeout, MaxConcurrency: ec.WebhookConcurrency, AllowPrivate: d.cfg.Security.AllowPrivateTargets,
		}),
		WebhookConcurrency: ec.WebhookConcurrency,
		BatchSize:          ec.BatchSize,
		MaxAge:             ec.MaxAge,
		Retention:          ec.Retention,
		Listen: func(fn func()) {
			d.listener.Handle(store.ChannelEvents, func(string) { fn() })
			d.listener.OnConnect(fn)
		},
		Logger:   d.log.Named("events"),
		Registry: d.registry,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.events = disp
	d.bg.Go(func() { disp.Run(d.bgCtx) })
	return nil
}

// startUserAPI mounts the user-facing REST API (apps, env vars,
// deployments, logs, custom domains, push auto-deploy, webhooks, alerts,
// usage) and runs its purge of hard-deleted apps and the re-check of
// custom domains.
func (d *Daemon) startUserAPI() error {
	hookKey, err := secrets.DeriveKey([]byte(d.cfg.Server.Secret.Value()), secrets.PurposeGitHook, secrets.KeySize)
	if err != nil {
		return fmt.Errorf("daemon: git hook key: %w", err)
	}
	apiBase := map[gitprovider.Provider]string{}
	for _, o := range d.cfg.OAuth {
		if p, err := gitprovider.ParseProvider(o.Provider); err == nil && o.APIURL != "" {
			apiBase[p] = o.APIURL
		}
	}
	git, err := gitprovider.New(gitprovider.Options{APIBase: apiBase, UserAgent: "WiseHosting"})
	if err != nil {
		return fmt.Errorf("daemon: git providers: %w", err)
	}
	verifier, err := domains.NewVerifier(domains.VerifierOptions{Resolver: d.cfg.Domains.Resolver, Timeout: d.cfg.Domains.LookupTimeout})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	checker, err := domains.NewChecker(domains.CheckerOptions{Store: d.db.Store, Verifier: verifier,
		Interval: d.cfg.Domains.RecheckInterval, Grace: d.cfg.Domains.GracePeriod, Logger: d.log.Named("domains")})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bg.Go(func() { checker.Run(d.bgCtx) })
	svc, err := userapi.New(userapi.Options{
		Store:               d.db.Store,
		Auth:                d.accounts,
		Plans:               d.plans,
		Jobs:                d.jobs,
		Stats:               d.hub,
		Logs:                d.hub,
		Listener:            d.listener,
		PlatformDomain:      d.cfg.Platform.Domain,
		AllowLocalRepos:     d.cfg.Security.AllowLocalRepos,
		HookKey:             hookKey,
		Git:                 git,
		Domains:             verifier,
		Cipher:              d.db.Cipher,
		AllowPrivateTargets: d.cfg.Security.AllowPrivateTargets,
		WebhookTimeout:      d.cfg.Events.WebhookTimeout,
		BaseURL:             d.cfg.Server.BaseURL,
		Logger:              d.log.Named("userapi"),
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	svc.Register(d.api)
	d.bg.Go(func() { svc.Run(d.bgCtx) })
	return nil
}

// startAccounts mounts the people-facing API (sessions, API tokens, the
// audit log, the revoke link of new-device mail) and runs the 6-hourly
// prune of dead sessions (one core of the cluster at a time).
func (d *Daemon) startAccounts() error {
	sec := d.cfg.Security
	oauth, oauthKey, err := oauthOptions(d.cfg)
	if err != nil {
		return err
	}
	d.accounts, err = accounts.New(accounts.Options{
		OAuth:         oauth,
		OAuthStateKey: oauthKey,
		Store:         d.db.Store,
		Mailer:        d.mailer,
		RevokeKey:     d.revokeKey,
		BaseURL:       d.cfg.Server.BaseURL,
		SessionTTL:    sec.SessionTTL,
		SecureCookies: sec.SecureCookies,
		RateWindow:    sec.APIRateWindow,
		Logger:        d.log.Named("accounts"),
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.accounts.Register(d.api)
	d.bg.Go(func() { d.accounts.RunPrune(d.bgCtx) })
	return nil
}

// Accounts returns the people-facing API service (sessions, API tokens,
// audit log); later slices finish logins through its Login.
func (d *Daemon) Accounts() *accounts.Service { return d.accounts }

// Mailer returns the account mailer (new-device sign-in mail and its
// signed revoke links); it is disabled without an smtp block.
func (d *Daemon) Mailer() *mail.Mailer { return d.mailer }

// Events returns the outbox dispatcher.
func (d *Daemon) Events() *events.Dispatcher { return d.events }

// startScheduler runs the health monitor and the placement loop with the
// configured scheduler plugin (scheduler.placement). Without any scheduler
// plugin declared jobs stay pending, which the log says once.
func (d *Daemon) startScheduler() error {
	d.jobs = &scheduler.Jobs{Store: d.db.Store, Pusher: d.hub}
	// Stuck jobs and silent workers are recovered with or without a
	// scheduler plugin.
	mon, err := scheduler.NewMonitor(scheduler.MonitorOptions{
		Store:         d.db.Store,
		StuckAfter:    d.cfg.Scheduler.StuckAfter,
		WorkerTimeout: d.cfg.Scheduler.WorkerTimeout,
		Every:         d.cfg.Scheduler.PollInterval,
		Logger:        d.log.Named("health"),
		Registry:      d.registry,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bg.Go(func() { _ = mon.Run(d.bgCtx) })
	if len(d.cfg.PluginsOfKind(sdk.KindScheduler)) == 0 {
		d.log.Warn("no scheduler plugin is declared: jobs that are not pinned to a worker stay pending",
			"hint", `declare one, e.g. plugin "scheduler" "least-loaded" {}`)
		return nil
	}
	placer, err := d.plugins.Scheduler(d.cfg.Scheduler.Placement)
	if err != nil {
		return fmt.Errorf("daemon: scheduler.placement: %w", err)
	}
	d.scheduler, err = scheduler.New(scheduler.Options{
		Store:         d.db.Store,
		Placer:        placer,
		Pusher:        d.hub,
		Listener:      d.listener,
		BatchSize:     d.cfg.Scheduler.BatchSize,
		Concurrency:   d.cfg.Scheduler.Concurrency,
		PollInterval:  d.cfg.Scheduler.PollInterval,
		WorkerTimeout: d.cfg.Scheduler.WorkerTimeout,
		Logger:        d.log.Named("scheduler"),
		Registry:      d.registry,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bg.Go(func() { _ = d.scheduler.Run(d.bgCtx) })
	return nil
}

// startProxy runs the route-table manager over every proxy plugin and
// mounts the proxy endpoints.
func (d *Daemon) startProxy() error {
	var targets []proxy.Target
	for _, p := range d.plugins.Proxies() {
		targets = append(targets, proxy.Target{Name: p.Name, Proxy: p.Proxy})
	}
	var err error
	d.proxy, err = proxy.NewManager(proxy.Options{
		Source:   d.db.Store,
		Domain:   d.cfg.Platform.Domain,
		Targets:  targets,
		Listener: d.listener,
		Logger:   d.log.Named("proxy"),
		Registry: d.registry,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if len(targets) > 0 && !d.cfg.Proxy.Token.IsSet() {
		d.log.Warn("proxy.token is not set: the pull endpoints (/v1/traefik/proxy-config, /v1/proxy/<name>/config) refuse every request",
			"hint", `proxy { token = env("WISEHOSTING_PROXY_TOKEN") }`)
	}
	(&api.ProxyRoutes{
		Token:  d.cfg.Proxy.Token.Value(),
		States: d.proxy,
		Auth:   d.auth,
		Store:  d.db.Store,
	}).Register(d.api)
	d.bg.Go(func() { d.proxy.Run(d.bgCtx) })
	return nil
}

// Proxy returns the route-table manager (the current generation and every
// proxy plugin's rendering of it).
func (d *Daemon) Proxy() *proxy.Manager { return d.proxy }

// Hub returns the worker hub (job pushes, live app statistics, the log bus).
func (d *Daemon) Hub() *hub.Hub { return d.hub }

// startPlugins starts every declared plugin, loads the plan catalogue from
// the plan source (if any) and starts its refresh loop.
func (d *Daemon) startPlugins(ctx context.Context, opts Options) error {
	start := time.Now()
	d.plugins = pluginhost.New(pluginhost.Options{
		Logger:         d.log,
		Registry:       d.registry,
		BuiltinCommand: opts.BuiltinCommand,
	})
	diags := d.plugins.Start(ctx, d.cfg)
	if diags.HasErrors() {
		return &ConfigError{Diagnostics: diags}
	}
	for _, w := range diags {
		d.log.Warn(w.Summary, "detail", w.Detail, "at", w.Subject)
	}
	if n := len(d.cfg.Plugins); n > 0 {
		d.log.Info("plugins started", "count", n, "took", time.Since(start).Round(time.Millisecond))
	}
	var src sdk.PlanSource
	if ps, ok := d.plugins.PlanSource(); ok {
		src = ps
	}
	d.plans = plans.New(src, d.log.Named("plans"))
	if err := d.plans.Load(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.bgCtx, d.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	d.bg.Go(func() { d.plans.Run(d.bgCtx) })
	return nil
}

// Jobs creates and finishes jobs for the rest of the core.
func (d *Daemon) Jobs() *scheduler.Jobs { return d.jobs }

// Database returns the daemon's database.
func (d *Daemon) Database() *Database { return d.db }

// Plugins returns the plugin host: the handles of every declared plugin
// (Scheduler, Proxy, AlertSinks, PlanSource) and their status.
func (d *Daemon) Plugins() *pluginhost.Host { return d.plugins }

// Plans returns the plan catalogue.
func (d *Daemon) Plans() *plans.Catalogue { return d.plans }

// Routes returns every route the daemon serves (api.Server.Routes): what
// schema/openapi.json must describe.
func (d *Daemon) Routes() []api.Route { return d.api.Routes() }

// Registry returns the daemon's Prometheus registry (served at /metrics).
func (d *Daemon) Registry() *prometheus.Registry { return d.registry }

// Listen binds the configured address.
func (d *Daemon) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", d.cfg.Server.Listen)
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", d.cfg.Server.Listen, err)
	}
	d.ln = ln
	return ln.Addr(), nil
}

// Serve serves HTTP(S) on the bound listener until ctx is done, then shuts
// down in order: in-flight requests finish (up to server.shutdown_timeout),
// then the plugins stop, then the store closes, then the embedded Postgres
// stops.
func (d *Daemon) Serve(ctx context.Context) error {
	if d.ln == nil {
		if _, err := d.Listen(); err != nil {
			d.Close(context.WithoutCancel(ctx))
			return err
		}
	}
	scheme := "http"
	if d.tls != nil {
		scheme = "https"
	}
	d.log.Info("serving", "addr", scheme+"://"+d.ln.Addr().String(), "tls", d.tls != nil)
	errc := make(chan error, 1)
	go func() {
		var err error
		if d.tls != nil {
			err = d.http.ServeTLS(d.ln, "", "")
		} else {
			err = d.http.Serve(d.ln)
		}
		errc <- err
	}()
	var serveErr error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
	case serveErr = <-errc:
		if errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	}
	// In-flight requests get shutdown_timeout to finish; then connections
	// are closed under them.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := api.Shutdown(sctx, d.http); err != nil {
		d.log.Warn("requests still running at shutdown_timeout; closing their connections", "error", err)
		_ = d.http.Close()
	}
	if err := d.Close(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	d.log.Info("stopped")
	return serveErr
}

// poolCloseTimeout bounds how long Close waits for pooled connections that a
// stuck handler still holds when ctx has no deadline of its own.
const poolCloseTimeout = 5 * time.Second

// Close stops the worker hub (closing every worker connection, flushing
// heartbeats and runtime logs), the background loops and the plugins (no
// plugin process outlives it), then releases the database and the embedded cluster
// (Postgres last). It never hangs on a handler that holds a connection: the
// pool gets until ctx's deadline (or poolCloseTimeout) to drain, then
// Postgres stops anyway — a fast shutdown, which ends any session left —
// never forced by the expired deadline itself.
func (d *Daemon) Close(ctx context.Context) error {
	var errs []error
	if d.hub != nil {
		// Workers get a close frame; pending heartbeats and logs are
		// written while the store is still open.
		start := time.Now()
		if err := d.hub.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("daemon: %w", err))
		}
		d.log.Debug("worker hub stopped", "took", time.Since(start))
	}
	if d.bgCancel != nil {
		d.bgCancel()
		d.bg.Wait()
	}
	if d.accounts != nil {
		d.accounts.Wait() // new-device mails in flight (each bounded by mail.SendTimeout)
	}
	if d.plugins != nil {
		start := time.Now()
		// Plugins are killed, never waited on for long: the wait is bounded
		// by their own kill grace, not by ctx.
		if err := d.plugins.Stop(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("daemon: %w", err))
		}
		d.log.Debug("plugins stopped", "took", time.Since(start))
	}
	start := time.Now()
	wait := poolCloseTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), 10*time.Millisecond)
	}
	errs = append(errs, d.db.closeWithin(context.WithoutCancel(ctx), wait, d.log))
	d.log.Debug("database closed", "took", time.Since(start))
	return errors.Join(errs...)
}
