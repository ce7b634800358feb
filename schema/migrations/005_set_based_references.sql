-- 005_set_based_references: the references the scheduler writes in bulk are
-- checked once per statement instead of once per row.
--
-- A foreign key checks each new row with its own query (a row-level
-- trigger). A 1,000-job scheduling batch writes 1,000 jobs.worker_id and
-- 1,000 reservations (app_id, worker_id): 3,000 such queries, about 10 ms of
-- the batch's 30 (measured on the reference 2-core machine, PostgreSQL 15).
-- The three constraints below become statement-level triggers over
-- transition tables that do exactly what the foreign keys did, set-based:
--
--   referencing side: lock the referenced rows FOR KEY SHARE (so they cannot
--   be deleted until the writer commits) and refuse, with SQLSTATE 23503,
--   any new reference whose row does not exist;
--   referenced side: deleting a worker deletes its reservations (was ON
--   DELETE CASCADE) and clears jobs.worker_id (was ON DELETE SET NULL);
--   deleting an app that still holds a reservation fails with 23503 (was
--   ON DELETE RESTRICT; the store releases reservations first).
--
-- Ids are never updated (bigserial keys), so only inserts and deletes of
-- the referenced rows matter. Every other foreign key stays declarative.
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

ALTER TABLE app_reservations
    DROP CONSTRAINT app_reservations_app_id_fkey,
    DROP CONSTRAINT app_reservations_worker_id_fkey;
ALTER TABLE jobs
    DROP CONSTRAINT jobs_worker_id_fkey;

-- wisehosting_lock_referenced locks the rows of the given ids in table
-- (apps or workers) FOR KEY SHARE, in id order, and returns the first id
-- that has no row, or NULL. The ids go in as an array: = ANY probes the
-- primary key per id, where a join against a transition table would let the
-- planner hash the whole referenced table.
CREATE FUNCTION wisehosting_lock_referenced(tbl regclass, ids bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    found_ids bigint[];
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM %s WHERE id = ANY($1) ORDER BY id FOR KEY SHARE) l', tbl)
        INTO found_ids USING ids;
    IF coalesce(cardinality(found_ids), 0) = cardinality(ids) THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT i FROM unnest(ids) i WHERE i <> ALL (coalesce(found_ids, '{}')) LIMIT 1);
END
$$;

-- Referencing side: app_reservations rows added or changed by a statement.
CREATE FUNCTION app_reservations_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    missing := wisehosting_lock_referenced('apps', (SELECT array_agg(DISTINCT app_id) FROM changed));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'app_reservations: app % does not exist', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'app_reservations_app_reference',
                  TABLE = 'app_reservations';
    END IF;
    missing := wisehosting_lock_referenced('workers', (SELECT array_agg(DISTINCT worker_id) FROM changed));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'app_reservations: worker % does not exist', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'app_reservations_worker_reference',
                  TABLE = 'app_reservations';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER app_reservations_references_insert AFTER INSERT ON app_reservations
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION app_reservations_check_references();
CREATE TRIGGER app_reservations_references_update AFTER UPDATE ON app_reservations
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION app_reservations_check_references();

-- Referencing side: the workers jobs of a statement point at. (An update
-- re-checks references it left unchanged: a primary-key probe per distinct
-- worker, cheaper than joining the old and new transition tables.)
CREATE FUNCTION jobs_check_worker_reference() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    missing := wisehosting_lock_referenced('workers',
        (SELECT array_agg(DISTINCT worker_id) FROM changed WHERE worker_id IS NOT NULL));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'jobs: worker % does not exist', missing
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'jobs_worker_reference', TABLE = 'jobs';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_worker_reference_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_check_worker_reference();
CREATE TRIGGER jobs_worker_reference_update AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_check_worker_reference();

-- Referenced side: deleting workers.
CREATE FUNCTION workers_release_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM app_reservations WHERE worker_id = ANY (ARRAY(SELECT id FROM removed));
    UPDATE jobs SET worker_id = NULL WHERE worker_id = ANY (ARRAY(SELECT id FROM removed));
    RETURN NULL;
END
$$;
CREATE TRIGGER workers_release_references AFTER DELETE ON workers
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION workers_release_references();

-- Referenced side: deleting apps.
CREATE FUNCTION apps_restrict_reservations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
BEGIN
    SELECT r.app_id INTO held FROM app_reservations r
    WHERE r.app_id = ANY (ARRAY(SELECT id FROM removed)) LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'apps: app % still holds a reservation', held
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'app_reservations_app_reference',
                  TABLE = 'apps';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER apps_restrict_reservations AFTER DELETE ON apps
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION apps_restrict_reservations();
