-- Transactional enqueue and completion notices.
--
-- A job enqueued inside the caller's transaction on Temporal is an outbox row
-- (status 'pending'); after commit a relay starts its workflow. Relays LISTEN on
-- algajobs_relay_<schema>, woken by the commit of a pending row.
CREATE FUNCTION notify_job_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('algajobs_relay_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_pending
    AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION notify_job_pending();

-- The relay walks only pending rows, oldest first.
CREATE INDEX jobs_pending_idx ON jobs (created_at) WHERE status = 'pending';
