-- 001_init: every table of the data layer (seed 001) plus app capacity
-- reservations and the event outbox.
--
-- Units used throughout: CPU in millicores (integer, 1000 = one core), memory
-- and disk in bytes (bigint), network rates in Mbit/s (double precision).
-- Columns marked "encrypted" hold the column cipher's "v1:<base64url>" form.
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    email            text        NOT NULL,
    name             text        NOT NULL DEFAULT '',
    avatar_url       text        NOT NULL DEFAULT '',
    google_id        text        UNIQUE,
    plan             text        NOT NULL DEFAULT 'free',
    totp_secret      text        NOT NULL DEFAULT '',          -- encrypted
    totp_enabled     boolean     NOT NULL DEFAULT false,
    totp_verified_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_check CHECK (email <> '' AND email = lower(email)),
    CONSTRAINT users_plan_check CHECK (plan ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    CONSTRAINT users_totp_check CHECK (NOT totp_enabled OR totp_secret <> '')
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE workers (
    id              bigserial PRIMARY KEY,
    name            text        NOT NULL,
    ip              text        NOT NULL DEFAULT '',   -- informational only
    address         text        NOT NULL DEFAULT '',   -- private address the edge proxy dials
    zone            text        NOT NULL DEFAULT 'default',
    -- set by the operator (`worker add -address/-zone`): a worker's own
    -- report never overrides a pinned value, but may update an unpinned one
    address_pinned  boolean     NOT NULL DEFAULT false,
    zone_pinned     boolean     NOT NULL DEFAULT false,
    region_name     text        NOT NULL DEFAULT '',
    api_key_hash    text        NOT NULL,              -- sha256 hex of the worker's API key
    key_id          text        NOT NULL,              -- JWT kid; random, changes on rotation
    envelope_key    text        NOT NULL,              -- encrypted envelope HMAC key
    status          text        NOT NULL DEFAULT 'offline',
    runtimes        text[]      NOT NULL DEFAULT '{exec}',
    capacity_cpu    bigint      NOT NULL DEFAULT 0,    -- millicores
    capacity_memory bigint      NOT NULL DEFAULT 0,    -- bytes
    used_cpu        bigint      NOT NULL DEFAULT 0,    -- sum of app_reservations.cpu
    used_memory     bigint      NOT NULL DEFAULT 0,    -- sum of app_reservations.memory
    cpu_percent     double precision NOT NULL DEFAULT 0,  -- live, from heartbeats
    memory_percent  double precision NOT NULL DEFAULT 0,
    disk_percent    double precision NOT NULL DEFAULT 0,
    running_apps    integer     NOT NULL DEFAULT 0,
    version         text        NOT NULL DEFAULT '',
    last_heartbeat  timestamptz,
    key_rotated_at  timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workers_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    CONSTRAINT workers_status_check CHECK (status IN ('online', 'offline', 'draining')),
    CONSTRAINT workers_zone_check CHECK (zone ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT workers_runtimes_check CHECK (runtimes <@ ARRAY['exec', 'podman']::text[]),
    -- at most a million cores and an exbibyte: anything above is a bug or a lie
    CONSTRAINT workers_capacity_check CHECK (capacity_cpu BETWEEN 0 AND 1000000000
        AND capacity_memory BETWEEN 0 AND 1152921504606846976),
    CONSTRAINT workers_used_check CHECK (used_cpu >= 0 AND used_memory >= 0),
    CONSTRAINT workers_hash_check CHECK (api_key_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT workers_envelope_key_sealed_check CHECK (envelope_key LIKE 'v1:%')
) WITH (fillfactor = 50);  -- used/heartbeat columns change constantly: leave room for HOT updates
CREATE UNIQUE INDEX workers_name_key ON workers (name);
CREATE UNIQUE INDEX workers_api_key_hash_key ON workers (api_key_hash);
-- No index on status/last_heartbeat: scanning a few thousand workers is
-- cheap, and one would turn every heartbeat update into a non-HOT update.

CREATE TABLE apps (
    id               bigserial PRIMARY KEY,
    uuid             uuid        NOT NULL UNIQUE,
    user_id          bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             text        NOT NULL,
    subdomain        text        NOT NULL,
    status           text        NOT NULL DEFAULT 'created',
    runtime          text        NOT NULL DEFAULT 'exec',
    git_repo         text        NOT NULL DEFAULT '',
    git_branch       text        NOT NULL DEFAULT '',
    build_command    text        NOT NULL DEFAULT '',
    run_command      text        NOT NULL DEFAULT '',
    dockerfile       text        NOT NULL DEFAULT '',
    port             integer     NOT NULL DEFAULT 0,     -- port the app listens on, reported by its worker
    worker_id        bigint      REFERENCES workers (id) ON DELETE SET NULL,  -- where it runs now
    container_id     text        NOT NULL DEFAULT '',
    restart_count    integer     NOT NULL DEFAULT 0,
    violation_reason text        NOT NULL DEFAULT '',
    commit_sha       text        NOT NULL DEFAULT '',
    auto_deploy      boolean     NOT NULL DEFAULT false,
    webhook_id       text        NOT NULL DEFAULT '',
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT apps_name_check CHECK (name ~ '^[a-z0-9-]{7,32}$'),
    CONSTRAINT apps_subdomain_check CHECK (subdomain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT apps_status_check CHECK (status IN ('created', 'deploying', 'running', 'stopped',
        'exited', 'crashloop', 'failed', 'violated', 'deleted')),
    CONSTRAINT apps_deleted_check CHECK ((status = 'deleted') = (deleted_at IS NOT NULL)),
    CONSTRAINT apps_runtime_check CHECK (runtime IN ('exec', 'podman')),
    CONSTRAINT apps_port_check CHECK (port BETWEEN 0 AND 65535),
    CONSTRAINT apps_restart_count_check CHECK (restart_count >= 0)
);
-- Names and subdomains are unique among live apps; a deleted app frees both.
CREATE UNIQUE INDEX apps_user_name_key ON apps (user_id, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX apps_subdomain_key ON apps (subdomain) WHERE deleted_at IS NULL;
CREATE INDEX apps_user_idx ON apps (user_id, created_at DESC);
CREATE INDEX apps_worker_idx ON apps (worker_id) WHERE worker_id IS NOT NULL;
CREATE INDEX apps_running_idx ON apps (worker_id) WHERE status = 'running';

-- Capacity belongs to the app, not to the job: a worker's used_cpu/used_memory
-- is the sum of the reservations on it. An app holds one reservation where it
-- runs and, while a redeploy elsewhere is in flight, a second one on the new
-- worker; success moves it, failure or stop releases it. RESTRICT on app_id
-- means an app cannot vanish while it still holds capacity: the store releases
-- first, in the same transaction.
CREATE TABLE app_reservations (
    app_id     bigint      NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
    worker_id  bigint      NOT NULL REFERENCES workers (id) ON DELETE CASCADE,
    cpu        bigint      NOT NULL,
    memory     bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, worker_id),
    CONSTRAINT app_reservations_amount_check CHECK (cpu >= 0 AND memory >= 0)
);
CREATE INDEX app_reservations_worker_idx ON app_reservations (worker_id);

CREATE TABLE deployments (
    id             bigserial PRIMARY KEY,
    app_id         bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    worker_id      bigint      REFERENCES workers (id) ON DELETE SET NULL,
    status         text        NOT NULL DEFAULT 'pending',
    trigger        text        NOT NULL DEFAULT 'manual',
    commit_sha     text        NOT NULL DEFAULT '',
    commit_message text        NOT NULL DEFAULT '',
    branch         text        NOT NULL DEFAULT '',
    build_logs     text        NOT NULL DEFAULT '',
    error          text        NOT NULL DEFAULT '',
    started_at     timestamptz,
    finished_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployments_status_check CHECK (status IN ('pending', 'building', 'deploying',
        'succeeded', 'failed', 'cancelled')),
    CONSTRAINT deployments_trigger_check CHECK (trigger IN ('manual', 'push', 'api', 'restart'))
);
CREATE INDEX deployments_app_idx ON deployments (app_id, created_at DESC, id DESC);

CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    type          text        NOT NULL,
    app_id        bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    deployment_id bigint      REFERENCES deployments (id) ON DELETE SET NULL,
    worker_id     bigint      REFERENCES workers (id) ON DELETE SET NULL,
    pinned        boolean     NOT NULL DEFAULT false,   -- worker preset; placement keeps it
    status        text        NOT NULL DEFAULT 'pending',
    priority      integer     NOT NULL DEFAULT 0,
    cpu           bigint      NOT NULL DEFAULT 0,       -- the app's plan limits, millicores
    memory        bigint      NOT NULL DEFAULT 0,       -- bytes
    runtime       text        NOT NULL DEFAULT 'exec',
    zone          text        NOT NULL DEFAULT '',      -- '' = any zone
    payload       text        NOT NULL DEFAULT '',      -- encrypted JSON
    message       text        NOT NULL DEFAULT '',
    progress      integer     NOT NULL DEFAULT 0,
    result        jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    assigned_at   timestamptz,
    started_at    timestamptz,
    completed_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_type_check CHECK (type IN ('deploy', 'restart', 'start', 'stop', 'delete')),
    CONSTRAINT jobs_status_check CHECK (status IN ('pending', 'assigned', 'processing',
        'completed', 'failed', 'cancelled')),
    CONSTRAINT jobs_runtime_check CHECK (runtime IN ('exec', 'podman')),
    CONSTRAINT jobs_resources_check CHECK (cpu >= 0 AND memory >= 0),
    CONSTRAINT jobs_progress_check CHECK (progress BETWEEN 0 AND 100)
);
-- The scheduler's claim: pending by priority, then age.
CREATE INDEX jobs_pending_idx ON jobs (priority DESC, created_at, id) WHERE status = 'pending';
-- Replay on connect (NextAssignedJob), and stuck-job recovery (a scan of the
-- few in-flight rows; a separate assigned_at index would cost every
-- assignment one more index insert).
CREATE INDEX jobs_worker_active_idx ON jobs (worker_id, created_at, id)
    WHERE status IN ('assigned', 'processing');
-- At most one active job per app: a second deploy while one is in flight is
-- a conflict, so reservations and app status never race between two jobs of
-- one app. Also serves FindActiveJobForApp.
CREATE UNIQUE INDEX jobs_one_active_per_app ON jobs (app_id)
    WHERE status IN ('pending', 'assigned', 'processing');
CREATE INDEX jobs_deployment_idx ON jobs (deployment_id) WHERE deployment_id IS NOT NULL;

CREATE TABLE app_env_vars (
    app_id     bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key        text        NOT NULL,
    value      text        NOT NULL,                     -- encrypted
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, key),
    CONSTRAINT app_env_vars_key_check CHECK (key ~ '^[A-Z][A-Z0-9_]{0,63}$')
);

CREATE TABLE git_provider_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text        NOT NULL,
    username      text        NOT NULL DEFAULT '',
    token         text        NOT NULL,                  -- encrypted
    refresh_token text        NOT NULL DEFAULT '',       -- encrypted
    scopes        text        NOT NULL DEFAULT '',
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT git_provider_tokens_provider_check CHECK (provider IN ('github', 'gitlab',
        'bitbucket', 'codeberg')),
    CONSTRAINT git_provider_tokens_user_provider_key UNIQUE (user_id, provider)
);

CREATE TABLE webhooks (
    id                bigserial PRIMARY KEY,
    user_id           bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url               text        NOT NULL,
    secret            text        NOT NULL,              -- encrypted whsec_ secret
    events            text[]      NOT NULL DEFAULT '{}', -- patterns such as app.*
    description       text        NOT NULL DEFAULT '',
    active            boolean     NOT NULL DEFAULT true,
    disabled_reason   text        NOT NULL DEFAULT '',
    total_deliveries  bigint      NOT NULL DEFAULT 0,
    failed_deliveries bigint      NOT NULL DEFAULT 0,
    last_delivery_at  timestamptz,
    last_status_code  integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhooks_url_check CHECK (url ~ '^https?://'),
    CONSTRAINT webhooks_counters_check CHECK (total_deliveries >= 0 AND failed_deliveries >= 0)
);
CREATE INDEX webhooks_user_idx ON webhooks (user_id);
CREATE INDEX webhooks_active_idx ON webhooks (id) WHERE active;

CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    webhook_id  bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id    text        NOT NULL,
    event       text        NOT NULL,
    attempt     integer     NOT NULL DEFAULT 1,
    status_code integer,
    success     boolean     NOT NULL DEFAULT false,
    duration_ms integer     NOT NULL DEFAULT 0,
    error       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_attempt_check CHECK (attempt >= 1),
    CONSTRAINT webhook_deliveries_duration_check CHECK (duration_ms >= 0)
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);

CREATE TABLE sessions (
    id           bigserial PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   text        NOT NULL,                   -- sha256 hex of the cookie token
    ip           text        NOT NULL DEFAULT '',
    city         text        NOT NULL DEFAULT '',
    country      text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    device       text        NOT NULL DEFAULT '',
    browser      text        NOT NULL DEFAULT '',
    os           text        NOT NULL DEFAULT '',
    two_factor   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CONSTRAINT sessions_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_idx ON sessions (user_id, last_seen_at DESC);
CREATE INDEX sessions_last_seen_idx ON sessions (last_seen_at);

CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    details    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_events_kind_check CHECK (kind IN ('login', 'logout', 'session_revoked',
        'app_deploy', 'app_restart', 'app_start', 'app_stop', 'app_delete', 'env_set',
        'env_delete', 'git_token_revoke', 'domain_create', 'domain_verify', 'domain_delete'))
);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, created_at DESC);
CREATE INDEX audit_events_user_ip_idx ON audit_events (user_id, ip);
CREATE INDEX audit_events_created_idx ON audit_events (created_at);

CREATE TABLE app_alert_rules (
    id              bigserial PRIMARY KEY,
    app_id          bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            text        NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    threshold       double precision NOT NULL DEFAULT 0,
    sustain_minutes integer     NOT NULL DEFAULT 5,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_alert_rules_kind_check CHECK (kind IN ('cpu', 'memory', 'network', 'disk', 'offline')),
    CONSTRAINT app_alert_rules_threshold_check CHECK (threshold >= 0),
    CONSTRAINT app_alert_rules_sustain_check CHECK (sustain_minutes BETWEEN 1 AND 1440),
    CONSTRAINT app_alert_rules_app_kind_key UNIQUE (app_id, kind)
);
CREATE INDEX app_alert_rules_enabled_idx ON app_alert_rules (app_id) WHERE enabled;

CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id          bigint      REFERENCES apps (id) ON DELETE CASCADE,
    kind            text        NOT NULL,
    severity        text        NOT NULL DEFAULT 'warning',
    source_type     text        NOT NULL,
    source_id       text        NOT NULL,
    title           text        NOT NULL DEFAULT '',
    message         text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'active',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    CONSTRAINT alerts_kind_check CHECK (kind IN ('cpu', 'memory', 'network', 'disk', 'offline',
        'crashloop', 'deployment_failed', 'violation')),
    CONSTRAINT alerts_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
    CONSTRAINT alerts_status_check CHECK (status IN ('active', 'acknowledged', 'resolved')),
    CONSTRAINT alerts_resolved_check CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
-- One open alert per (user, source_type, source_id): the manager's dedup, enforced.
CREATE UNIQUE INDEX alerts_open_source_key ON alerts (user_id, source_type, source_id)
    WHERE status <> 'resolved';
CREATE INDEX alerts_user_idx ON alerts (user_id, created_at DESC);

CREATE TABLE usage_samples (
    app_id          bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id         bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bucket_start    timestamptz NOT NULL,
    cpu_avg         double precision NOT NULL DEFAULT 0,  -- percent
    cpu_max         double precision NOT NULL DEFAULT 0,
    mem_avg         bigint      NOT NULL DEFAULT 0,       -- bytes
    mem_max         bigint      NOT NULL DEFAULT 0,
    net_avg         double precision NOT NULL DEFAULT 0,  -- Mbit/s
    net_max         double precision NOT NULL DEFAULT 0,
    net_bytes_delta bigint      NOT NULL DEFAULT 0,
    samples         integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, bucket_start),
    CONSTRAINT usage_samples_bucket_check
        CHECK (bucket_start = date_bin('5 minutes', bucket_start, timestamptz '2000-01-01 00:00:00+00')),
    CONSTRAINT usage_samples_values_check CHECK (cpu_avg >= 0 AND cpu_max >= cpu_avg
        AND mem_avg >= 0 AND mem_max >= mem_avg AND net_avg >= 0 AND net_max >= net_avg
        AND net_bytes_delta >= 0 AND samples >= 0)
);
CREATE INDEX usage_samples_user_idx ON usage_samples (user_id, bucket_start);
CREATE INDEX usage_samples_bucket_idx ON usage_samples (bucket_start);

CREATE TABLE backup_codes (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text        NOT NULL,                     -- argon2id
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backup_codes_user_idx ON backup_codes (user_id) WHERE used_at IS NULL;

CREATE TABLE pending_totps (
    token_hash text        PRIMARY KEY,                  -- sha256 hex of the wh_2fa_pending cookie
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   text        NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_totps_expires_idx ON pending_totps (expires_at);

CREATE TABLE domains (
    id                 bigserial PRIMARY KEY,
    app_id             bigint      NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id            bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hostname           text        NOT NULL,
    verification_token text        NOT NULL,
    status             text        NOT NULL DEFAULT 'pending',
    verified_at        timestamptz,
    last_checked_at    timestamptz,
    check_error        text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domains_hostname_check CHECK (hostname = lower(hostname) AND length(hostname) <= 253
        AND hostname ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT domains_status_check CHECK (status IN ('pending', 'verified', 'failed')),
    CONSTRAINT domains_verified_check CHECK ((status = 'verified') = (verified_at IS NOT NULL))
);
CREATE UNIQUE INDEX domains_hostname_key ON domains (hostname);
CREATE INDEX domains_app_verified_idx ON domains (app_id) WHERE status = 'verified';
CREATE INDEX domains_user_idx ON domains (user_id);

-- High-volume, append-only, pruned by retention. No foreign key: a per-row FK
-- check would cost a large share of COPY throughput; the store deletes an
-- app's lines when it hard-deletes the app, and retention sweeps the rest.
CREATE TABLE runtime_logs (
    id        bigserial PRIMARY KEY,
    app_id    bigint      NOT NULL,
    worker_id bigint      NOT NULL DEFAULT 0,
    ts        timestamptz NOT NULL,
    stream    text        NOT NULL DEFAULT 'stdout',
    line      text        NOT NULL,
    CONSTRAINT runtime_logs_stream_check CHECK (stream IN ('stdout', 'stderr', 'system'))
);
CREATE INDEX runtime_logs_app_ts_idx ON runtime_logs (app_id, ts);
CREATE INDEX runtime_logs_ts_brin ON runtime_logs USING brin (ts);

-- The event outbox: written in the same transaction as the change that caused
-- each event, delivered to sinks by the dispatcher. No foreign keys: an event
-- outlives the user or app it speaks of.
CREATE TABLE event_outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    type            text        NOT NULL,
    user_id         bigint,
    app_id          bigint,
    payload         jsonb       NOT NULL DEFAULT '{}',
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT event_outbox_type_check CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT event_outbox_status_check CHECK (status IN ('pending', 'delivered', 'dead')),
    CONSTRAINT event_outbox_attempts_check CHECK (attempts >= 0)
);
CREATE UNIQUE INDEX event_outbox_event_id_key ON event_outbox (event_id);
CREATE INDEX event_outbox_due_idx ON event_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX event_outbox_created_idx ON event_outbox (created_at) WHERE status <> 'pending';
