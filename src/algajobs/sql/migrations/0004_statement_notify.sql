-- Inserted jobs wake workers with one notice per statement, not one per row:
-- a batch of 1,000 ran 1,000 trigger calls. The notice says '' when some job
-- is due now, and the epoch of the earliest future one (workers keep the
-- earliest), as the per-row trigger did. Updates that requeue a job keep the
-- per-row trigger: they touch one row each.
DROP TRIGGER jobs_notify_queued ON jobs;

CREATE TRIGGER jobs_notify_requeued
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND NEW.runner_type = 'postgres')
    EXECUTE FUNCTION notify_job_queued();

CREATE FUNCTION notify_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_due boolean;
    next_due timestamptz;
BEGIN
    SELECT bool_or(run_at <= now()), min(run_at) FILTER (WHERE run_at > now())
    INTO now_due, next_due
    FROM inserted WHERE status = 'queued' AND runner_type = 'postgres';
    IF now_due THEN
        PERFORM pg_notify('algajobs_' || TG_TABLE_SCHEMA, '');
    END IF;
    IF next_due IS NOT NULL THEN
        PERFORM pg_notify('algajobs_' || TG_TABLE_SCHEMA, extract(epoch FROM next_due)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_inserted
    AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT
    EXECUTE FUNCTION notify_jobs_inserted();
