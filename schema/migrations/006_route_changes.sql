-- 006_route_changes: tell every core when the edge routes may have changed.
--
-- The route table (core/proxy) is every running app on a worker with an
-- address, its slug host and its verified custom domains. Each core keeps
-- it in memory and LISTENs on wisehosting_routes; a statement that can
-- change it notifies in the same transaction, so every core reloads as soon
-- as the change commits: an app started, stopped, moved, renamed or deleted,
-- its port reported; a domain added, verified, failed or removed; a worker's
-- address changed or the worker deleted. Statement-level triggers: one
-- notification per statement, folded per transaction by Postgres.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

CREATE FUNCTION wisehosting_notify_routes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wisehosting_routes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER apps_routes_changed
    AFTER UPDATE OF status, worker_id, subdomain, port, deleted_at ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_routes();
CREATE TRIGGER apps_routes_deleted AFTER DELETE ON apps
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_routes();

CREATE TRIGGER domains_routes_changed
    AFTER INSERT OR DELETE OR UPDATE OF status, hostname, app_id ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_routes();

CREATE TRIGGER workers_routes_changed AFTER UPDATE OF address ON workers
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_routes();
CREATE TRIGGER workers_routes_deleted AFTER DELETE ON workers
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_routes();
