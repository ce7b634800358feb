-- 010_totp_last_step: replay protection for TOTP codes, and audit kinds
-- for the second factor.
--
-- users.totp_last_step is the RFC 6238 time step (unix seconds / 30) of
-- the last TOTP code accepted for the user; a code is accepted only for a
-- later step, recorded with a conditional UPDATE, so a code (its step)
-- works at most once even when two requests race. It is reset to 0 when a
-- new secret is enrolled.
--
-- Like sessions, pending 2FA challenges and backup codes get CHECKs that
-- only their hashed forms fit (sha256 hex; an argon2id PHC string), so a
-- plaintext credential cannot be stored by mistake.
--
-- The audit log gains totp_enabled, totp_disabled and
-- backup_codes_regenerated.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

ALTER TABLE users
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT users_totp_last_step_check CHECK (totp_last_step >= 0);

ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_kind_check,
    ADD CONSTRAINT audit_events_kind_check CHECK (kind IN ('login', 'logout', 'session_revoked',
        'app_deploy', 'app_restart', 'app_start', 'app_stop', 'app_delete', 'env_set',
        'env_delete', 'git_token_link', 'git_token_revoke', 'domain_create', 'domain_verify', 'domain_delete',
        'totp_enabled', 'totp_disabled', 'backup_codes_regenerated'));

ALTER TABLE pending_totps
    ADD CONSTRAINT pending_totps_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$');

ALTER TABLE backup_codes
    ADD CONSTRAINT backup_codes_code_hash_check CHECK (code_hash LIKE '$argon2id$v=19$m=%');
