-- 003_scheduler_wakeup: wake the scheduling loops at once.
--
-- Every core's scheduler LISTENs on wisehosting_jobs. A statement that adds
-- jobs, frees capacity (a reservation released) or changes what a worker
-- offers (status, capacity, runtimes, zone) notifies it, in the same
-- transaction, so the loop runs a pass as soon as the change commits;
-- poll_interval is only the safety net. Statement-level triggers: one
-- notification per statement however many rows, and Postgres folds equal
-- notifications of one transaction into one.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

CREATE FUNCTION wisehosting_notify_scheduler() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wisehosting_jobs', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_wake_scheduler AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_scheduler();

CREATE TRIGGER reservations_wake_scheduler AFTER DELETE OR UPDATE ON app_reservations
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_scheduler();

CREATE TRIGGER workers_wake_scheduler
    AFTER UPDATE OF status, capacity_cpu, capacity_memory, runtimes, zone ON workers
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_scheduler();
