-- 009_git_token_link: linking a git provider (OAuth, mode=link) is audited
-- as git_token_link, the counterpart of git_token_revoke.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

ALTER TABLE audit_events DROP CONSTRAINT audit_events_kind_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_kind_check CHECK (kind IN ('login', 'logout',
    'session_revoked', 'app_deploy', 'app_restart', 'app_start', 'app_stop', 'app_delete', 'env_set',
    'env_delete', 'git_token_link', 'git_token_revoke', 'domain_create', 'domain_verify', 'domain_delete'));
