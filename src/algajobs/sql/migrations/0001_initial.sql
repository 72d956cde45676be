-- Monitoring tables shared by both engines; the jobs table doubles as the
-- PostgreSQL engine's queue, so a job is one row whichever engine runs it.

CREATE TYPE job_status AS ENUM (
    'pending', 'queued', 'processing', 'completed', 'failed', 'cancelled', 'active'
);
CREATE TYPE runner_type AS ENUM ('temporal', 'postgres');

CREATE TABLE jobs (
    tenant           text        NOT NULL,
    job_id           uuid        NOT NULL,
    type             text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    status           job_status  NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    user_id          text,
    runner_type      runner_type NOT NULL,
    external_id      text,
    external_run_id  text,
    data             jsonb       NOT NULL DEFAULT 'null',
    priority         integer     NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 1,
    singleton_key    text,
    schedule_id      uuid,
    progress         smallint    NOT NULL DEFAULT 0,
    progress_message text,
    error            text,
    result           jsonb,
    worker_id        text,
    lease_expires_at timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false,
    started_at       timestamptz,
    completed_at     timestamptz,
    PRIMARY KEY (tenant, job_id)
);

-- The fetch query walks only due, queued Postgres rows, best priority first.
CREATE INDEX jobs_fetch_idx ON jobs (priority DESC, run_at)
    WHERE status = 'queued' AND runner_type = 'postgres';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at)
    WHERE status = 'processing' AND runner_type = 'postgres';
CREATE INDEX jobs_tenant_created_idx ON jobs (tenant, created_at DESC);
CREATE INDEX jobs_finished_idx ON jobs (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
-- One live job per singleton key; finished jobs free the key.
CREATE UNIQUE INDEX jobs_singleton_idx ON jobs (tenant, type, singleton_key)
    WHERE singleton_key IS NOT NULL AND status IN ('pending', 'queued', 'processing', 'active');
-- One fired job per recurring schedule tick, however many workers race.
CREATE UNIQUE INDEX jobs_schedule_tick_idx ON jobs (tenant, schedule_id, run_at)
    WHERE schedule_id IS NOT NULL;

CREATE TABLE job_details (
    tenant       text        NOT NULL,
    detail_id    uuid        NOT NULL,
    job_id       uuid        NOT NULL,
    step_name    text        NOT NULL,
    status       job_status  NOT NULL,
    result       jsonb,
    processed_at timestamptz NOT NULL DEFAULT now(),
    retry_count  integer     NOT NULL DEFAULT 0,
    metadata     jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, detail_id),
    FOREIGN KEY (tenant, job_id) REFERENCES jobs (tenant, job_id) ON DELETE CASCADE
);
CREATE INDEX job_details_job_idx ON job_details (tenant, job_id, processed_at);

-- A recurring job: its 'active' jobs row (same id) is what users see.
CREATE TABLE schedules (
    tenant        text        NOT NULL,
    schedule_id   uuid        NOT NULL,
    type          text        NOT NULL,
    singleton_key text        NOT NULL DEFAULT '',
    spec          text        NOT NULL,
    data          jsonb       NOT NULL,
    priority      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL DEFAULT 1,
    user_id       text,
    next_run_at   timestamptz NOT NULL,
    last_run_at   timestamptz,
    PRIMARY KEY (tenant, schedule_id),
    UNIQUE (tenant, type, singleton_key),
    FOREIGN KEY (tenant, schedule_id) REFERENCES jobs (tenant, job_id) ON DELETE CASCADE
);
CREATE INDEX schedules_due_idx ON schedules (next_run_at);

-- Workers LISTEN on algajobs_<schema>: '' means "work is due now", a number
-- is the epoch at which a delayed job becomes due, 'cancel:<id>' asks the
-- worker running that job to cancel it.
CREATE FUNCTION notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'algajobs_' || TG_TABLE_SCHEMA,
        CASE WHEN NEW.run_at > now() THEN extract(epoch FROM NEW.run_at)::text ELSE '' END
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_queued
    AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND NEW.runner_type = 'postgres')
    EXECUTE FUNCTION notify_job_queued();

CREATE FUNCTION notify_job_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('algajobs_' || TG_TABLE_SCHEMA, 'cancel:' || NEW.job_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_cancel
    AFTER UPDATE OF cancel_requested ON jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NEW.status = 'processing')
    EXECUTE FUNCTION notify_job_cancel();
