-- Named queues, worker presence and paused queues (DESIGN §11).

-- Every job and schedule belongs to a queue; rows from before queues existed
-- belong to 'default' (a constant default: no table rewrite).
ALTER TABLE jobs ADD COLUMN queue text NOT NULL DEFAULT 'default';
ALTER TABLE schedules ADD COLUMN queue text NOT NULL DEFAULT 'default';

-- The claim shares work fairly between tenants: it walks the tenants that
-- have queued rows (a skip scan on the leading column), then reads each
-- tenant's best due jobs of each type the worker runs, in priority order.
-- Reading per type keeps a claim's cost independent of how many jobs of
-- other types wait (a type no deployed worker runs yet, a capped or paused
-- one). This index serves every step and replaces the older one, ordered by
-- priority across all tenants and types.
CREATE INDEX jobs_claim_idx ON jobs (tenant, type, priority DESC, run_at)
    WHERE status = 'queued' AND runner_type = 'postgres';
DROP INDEX jobs_fetch_idx;

-- Which (queue, job type) pairs have jobs waiting, on either engine: health
-- compares them with what live workers serve ("no worker for type X").
CREATE INDEX jobs_waiting_idx ON jobs (queue, type, runner_type) WHERE status = 'queued';

-- Each running worker process says what it serves, and renews the row while
-- it lives; a row not renewed for a while belongs to a dead worker.
CREATE TABLE workers (
    worker_id    text          PRIMARY KEY,
    host         text          NOT NULL,
    pid          integer       NOT NULL,
    engines      runner_type[] NOT NULL,
    queues       text[]        NOT NULL,
    types        text[]        NOT NULL,
    started_at   timestamptz   NOT NULL DEFAULT now(),
    heartbeat_at timestamptz   NOT NULL DEFAULT now()
);

-- A paused queue is neither claimed on PostgreSQL nor run on Temporal: its
-- jobs wait, queued, until it is resumed.
CREATE TABLE paused_queues (
    queue     text        PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    paused_by text,
    reason    text
);
