-- 011_app_purge: hard deletion of apps, and app change notifications.
--
-- A hard delete (DELETE /api/v1/apps/:app?hard=true) removes the app and
-- everything that cascades from it. While the app still runs on a worker
-- it cannot go at once: it is soft-deleted (its worker gets a delete job)
-- and marked purge_requested; the purge removes it once no job is active
-- and no worker holds capacity for it.
--
-- Every change of an app row notifies wisehosting_apps with the owner's id,
-- so every core drops its cached view of that user's apps (statuses change
-- on whichever core a worker reports to).

ALTER TABLE apps ADD COLUMN purge_requested boolean NOT NULL DEFAULT false;
CREATE INDEX apps_purge_idx ON apps (id) WHERE purge_requested;

CREATE FUNCTION wisehosting_notify_app_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('wisehosting_apps', OLD.user_id::text);
    ELSE
        PERFORM pg_notify('wisehosting_apps', NEW.user_id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apps_notify_change AFTER INSERT OR UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION wisehosting_notify_app_change();
