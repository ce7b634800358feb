-- 008_api_tokens: users' API tokens for the CLI and automation.
--
-- A token is shown once, when it is created ("wht_" followed by 43
-- characters of base64url); only its sha256 (hex) is kept, with its first
-- characters (prefix) so that lists can tell tokens apart. A token is
-- accepted as `Authorization: Bearer` wherever a session cookie is, until
-- it is revoked (revoked_at) or expires (expires_at, when set).
-- last_used_at is bumped at most once a minute.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    token_hash   text        NOT NULL,                   -- sha256 hex of the token
    prefix       text        NOT NULL,                   -- first characters, for display
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT api_tokens_name_check CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_tokens_prefix_check CHECK (length(prefix) BETWEEN 1 AND 16)
);
CREATE UNIQUE INDEX api_tokens_token_hash_key ON api_tokens (token_hash);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, id DESC) WHERE revoked_at IS NULL;
