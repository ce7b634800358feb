-- 007_event_delivery: per-target delivery state of outbox events.
--
-- The dispatcher (core/events, one per cluster) reads pending outbox rows,
-- works out each event's targets (the alert-sink plugins whose patterns
-- match, the owner's webhooks subscribed to it) and delivers to all of
-- them. In the transaction that records the outcome, a target that did not
-- take the event gets a row here with its own retry schedule, and the
-- event becomes 'retrying'; when no row is left it is 'delivered', or
-- 'dead' if some target failed for good or ran out of time (events.max_age).
-- A core that dies mid-delivery has recorded nothing, so the event is still
-- pending and is sent again: delivery is at least once, and receivers
-- deduplicate on the event id (webhook-id).
--
-- This file is a tern migration: it is rendered as a Go template, so it must
-- not contain double braces.

ALTER TABLE event_outbox
    DROP CONSTRAINT event_outbox_status_check,
    ADD CONSTRAINT event_outbox_status_check CHECK (status IN ('pending', 'retrying', 'delivered', 'dead'));

-- The pending queue in commit order, and finished rows by age (retention).
DROP INDEX event_outbox_due_idx;
CREATE INDEX event_outbox_pending_idx ON event_outbox (id) WHERE status = 'pending';
DROP INDEX event_outbox_created_idx;
CREATE INDEX event_outbox_finished_idx ON event_outbox (created_at) WHERE status IN ('delivered', 'dead');

CREATE TABLE event_retries (
    outbox_id       bigint      NOT NULL REFERENCES event_outbox (id) ON DELETE CASCADE,
    -- target is "sink:<plugin instance name>" or "webhook:<webhooks.id>".
    target          text        NOT NULL,
    -- attempts made so far (the next one is attempts + 1).
    attempts        integer     NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL DEFAULT '',
    PRIMARY KEY (outbox_id, target),
    CONSTRAINT event_retries_target_check CHECK (target ~ '^(sink:[a-z0-9][a-z0-9._-]*|webhook:[0-9]+)$'),
    CONSTRAINT event_retries_attempts_check CHECK (attempts >= 1)
);
CREATE INDEX event_retries_due_idx ON event_retries (next_attempt_at);

-- A committed event wakes the dispatcher at once (one notification per
-- statement, folded per transaction).
CREATE FUNCTION wisehosting_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wisehosting_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER event_outbox_inserted AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION wisehosting_notify_events();
