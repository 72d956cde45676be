-- Every query algajobs runs, one named block each. Connections set
-- search_path to the configured schema, so tables are unqualified.

-- name: ping
-- Health check.
SELECT 1;

-- name: insert_job
-- Write a new job; a repeated job id or a live singleton key writes nothing. A
-- job queued on PostgreSQL wakes the workers at commit: a job due now names
-- itself ('job:<job_id>:<tenant>', so an idle worker can claim it by key), a
-- due time in the future is sent as its epoch (the workers wait for the
-- earliest). A worker that knows neither form reads a notice as "work is due".
WITH inserted AS (
    INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, priority,
                      run_at, max_attempts, singleton_key, metadata, external_id, queue)
    VALUES (%(tenant)s, %(job_id)s, %(type)s, %(status)s, %(runner_type)s, %(user_id)s,
            %(data)s, %(priority)s, coalesce(%(run_at)s, now()), %(max_attempts)s,
            %(singleton_key)s, %(metadata)s, %(external_id)s, %(queue)s)
    ON CONFLICT DO NOTHING
    RETURNING job_id, run_at, status, runner_type
)
SELECT i.job_id FROM inserted i
LEFT JOIN LATERAL (
    SELECT pg_notify('algajobs_' || current_schema(),
                     CASE WHEN i.run_at > now() THEN extract(epoch FROM i.run_at)::text
                          ELSE 'job:' || i.job_id || ':' || %(tenant)s END)
    WHERE i.status = 'queued' AND i.runner_type = 'postgres'
) AS woke ON true;

-- name: insert_jobs
-- Batch form of insert_job for jobs without singleton keys. The ids come as one
-- comma-separated text and the payloads as one JSON array: two parameters to
-- send instead of two arrays of a thousand elements to encode one by one.
-- Every row has the same due time: one notice wakes the workers.
WITH inserted AS (
    INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, priority,
                      run_at, max_attempts, queue)
    SELECT %(tenant)s, i.job_id, %(type)s, 'queued', 'postgres', %(user_id)s, d.data,
           %(priority)s, coalesce(%(run_at)s, now()), %(max_attempts)s, %(queue)s
    FROM unnest(string_to_array(%(job_ids)s, ',')::uuid[]) WITH ORDINALITY AS i(job_id, n)
    JOIN jsonb_array_elements(%(datas)s::jsonb) WITH ORDINALITY AS d(data, n) USING (n)
    ON CONFLICT DO NOTHING
    RETURNING run_at
)
SELECT pg_notify('algajobs_' || current_schema(),
                 CASE WHEN due.run_at > now() THEN extract(epoch FROM due.run_at)::text ELSE '' END)
FROM (SELECT run_at FROM inserted LIMIT 1) AS due;

-- name: find_live_job
-- The job that already holds an id or a singleton key.
SELECT job_id, runner_type, external_id FROM jobs
WHERE tenant = %(tenant)s
  AND (job_id = %(job_id)s
       OR (type = %(type)s AND singleton_key = %(singleton_key)s
           AND status IN ('pending', 'queued', 'processing', 'active')))
LIMIT 1;

-- name: claim_jobs
-- Claim up to %(limit)s due jobs for one worker, shared fairly between tenants.
-- The ring walks (skip scan on jobs_claim_idx) the tenants with queued jobs,
-- starting after %(after)s (where the last claim's ring ended) and wrapping
-- round; tenants at their cap (%(full_tenants)s with no room) are passed over,
-- and %(limit)s of the others make this claim's ring. For each ring tenant and
-- each (type, queue) this worker runs, outside paused queues, the best due jobs
-- are read in priority order (so jobs of other types or of paused queues,
-- however many, cost nothing). Each tenant gives an
-- equal share (less when near its cap), within the per-type and per-queue
-- room, best priority first. Only queues served and not paused. Candidates are
-- read without locks; then as many of each kind as were chosen are locked as
-- they are read (SKIP LOCKED), so workers claiming at the same time take
-- different jobs.
-- Every row carries where the ring ended and how many tenants it held. When
-- nothing was claimed, one row with job_id NULL still says so, and whether
-- other workers took every candidate first (contended: claim again).
WITH RECURSIVE ring_after(tenant, n) AS (
    (SELECT tenant, 1 FROM jobs
     WHERE status = 'queued' AND runner_type = 'postgres' AND tenant > %(after)s
     ORDER BY tenant LIMIT 1)
    UNION ALL
    SELECT (SELECT j.tenant FROM jobs j
            WHERE j.status = 'queued' AND j.runner_type = 'postgres' AND j.tenant > r.tenant
            ORDER BY j.tenant LIMIT 1), r.n + 1
    FROM ring_after r WHERE r.tenant IS NOT NULL AND r.n < %(tenants)s
),
ring_before(tenant, n) AS (
    (SELECT tenant, 1 FROM jobs
     WHERE status = 'queued' AND runner_type = 'postgres' AND tenant <= %(after)s
     ORDER BY tenant LIMIT 1)
    UNION ALL
    SELECT (SELECT j.tenant FROM jobs j
            WHERE j.status = 'queued' AND j.runner_type = 'postgres'
              AND j.tenant > r.tenant AND j.tenant <= %(after)s
            ORDER BY j.tenant LIMIT 1), r.n + 1
    FROM ring_before r WHERE r.tenant IS NOT NULL AND r.n < %(tenants)s
),
walked AS (
    SELECT t.tenant, row_number() OVER (ORDER BY t.lap, t.n) AS pos,
           (SELECT f.room FROM unnest(%(full_tenants)s::text[], %(tenant_room)s::int[]) AS f(tenant, room)
            WHERE f.tenant = t.tenant) AS room
    FROM (
        SELECT tenant, 0 AS lap, n FROM ring_after WHERE tenant IS NOT NULL
        UNION ALL
        SELECT tenant, 1, n FROM ring_before WHERE tenant IS NOT NULL
    ) t
),
ring AS (
    SELECT tenant, pos, room FROM walked
    WHERE room IS NULL OR room > 0
    ORDER BY pos
    LIMIT %(limit)s
),
shares AS (
    SELECT tenant,
           least(ceil(%(limit)s::numeric / greatest((SELECT count(*) FROM ring), 1)), room, %(tenant_cap)s::int)
               AS share
    FROM ring
),
ring_end AS (
    SELECT (SELECT tenant FROM ring ORDER BY pos DESC LIMIT 1) AS tenant, (SELECT count(*) FROM ring) AS size
),
wanted AS (
    -- The types to read: a paused queue's types are not even looked at.
    SELECT t.type, t.queue FROM unnest(%(types)s::text[], %(type_queues)s::text[]) AS t(type, queue)
    WHERE t.queue NOT IN (SELECT queue FROM paused_queues)
),
candidates AS (
    -- Read without locks: what this claim would take if no other claim ran.
    SELECT c.*, shares.share FROM shares
    CROSS JOIN wanted
    CROSS JOIN LATERAL (
        SELECT j.tenant, j.job_id, j.type, j.queue, j.priority, j.run_at FROM jobs j
        WHERE j.tenant = shares.tenant AND j.type = wanted.type
          AND j.status = 'queued' AND j.runner_type = 'postgres' AND j.run_at <= now()
          AND j.queue = wanted.queue
        ORDER BY j.priority DESC, j.run_at
        LIMIT shares.share
    ) c
),
ranked AS (
    SELECT c.*,
           row_number() OVER (PARTITION BY c.tenant ORDER BY c.priority DESC, c.run_at) AS tenant_rank,
           row_number() OVER (PARTITION BY c.type ORDER BY c.priority DESC, c.run_at) AS type_rank,
           row_number() OVER (PARTITION BY c.queue ORDER BY c.priority DESC, c.run_at) AS queue_rank
    FROM candidates c
),
chosen AS (
    SELECT r.tenant, r.type, r.queue FROM ranked r
    LEFT JOIN unnest(%(capped_types)s::text[], %(type_room)s::int[]) AS ct(type, room) ON ct.type = r.type
    LEFT JOIN unnest(%(capped_queues)s::text[], %(queue_room)s::int[]) AS cq(queue, room) ON cq.queue = r.queue
    WHERE r.tenant_rank <= r.share
      AND (ct.room IS NULL OR r.type_rank <= ct.room) AND (cq.room IS NULL OR r.queue_rank <= cq.room)
    ORDER BY r.priority DESC, r.tenant_rank, r.run_at
    LIMIT %(limit)s
),
locked AS (
    -- As many jobs of each (tenant, type, queue) as were chosen, now locked as they
    -- are read and skipping rows other claims hold: concurrent claims take the next
    -- jobs of the same kind instead of all choosing the same ones and backing off.
    -- Only that many are locked, however many types the worker runs.
    SELECT l.ctid FROM (
        SELECT tenant, type, queue, count(*) AS n FROM chosen GROUP BY tenant, type, queue
    ) AS k
    CROSS JOIN LATERAL (
        SELECT j.ctid FROM jobs j
        WHERE j.tenant = k.tenant AND j.type = k.type
          AND j.status = 'queued' AND j.runner_type = 'postgres' AND j.run_at <= now()
          AND j.queue = k.queue
        ORDER BY j.priority DESC, j.run_at
        LIMIT k.n
        FOR NO KEY UPDATE OF j SKIP LOCKED
    ) AS l
),
claimed AS (
    UPDATE jobs AS j
    SET status = 'processing', attempts = j.attempts + 1, worker_id = %(worker_id)s,
        lease_expires_at = now() + %(lease)s, started_at = coalesce(j.started_at, now()),
        updated_at = now()
    -- By the locked version's address: no join for the planner to get wrong (it
    -- hashed the whole table when its statistics said the table was small). A row
    -- updated after this statement's snapshot is locked in a version the statement
    -- cannot see and is not updated: it stays queued, unclaimed, and the claim
    -- reports contention, so the worker claims again at once.
    WHERE j.ctid = ANY (ARRAY(SELECT ctid FROM locked))
    RETURNING j.tenant, j.job_id, j.type, j.queue, j.data, j.attempts, j.max_attempts, j.user_id,
              j.cancel_requested, j.metadata -> 'trace' AS trace, j.priority, j.run_at
)
-- In table order, not the order chosen: the worker puts them in priority order.
SELECT c.*, e.tenant AS ring_end, e.size AS ring_size, false AS contended
FROM claimed c CROSS JOIN ring_end e
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, e.tenant, e.size,
       -- Contended: there were due jobs to take (read without locks), but other
       -- claims held them all.
       EXISTS (SELECT 1 FROM chosen)
FROM ring_end e
WHERE NOT EXISTS (SELECT 1 FROM claimed) AND e.size > 0;

-- name: claim_notified_jobs
-- An idle worker's fast path: claim the jobs that insert notices named, by
-- primary key, instead of walking every tenant's queue. Only those still
-- queued and due, of a (type, queue) this worker runs (%(kinds)s: type, unit
-- separator, queue), outside paused queues. Locked in key order, skipping rows
-- another claim holds (that claim takes them), then updated by key: the lock
-- holds the row's newest version, queued, and the update lands on it even if
-- that version is newer than this statement's snapshot.
-- Cheap to plan, which matters: the server plans it on each run.
WITH locked AS (
    SELECT j.tenant, j.job_id FROM jobs j
    WHERE (j.tenant, j.job_id) IN (SELECT * FROM unnest(%(tenants)s::text[], %(job_ids)s::uuid[]))
      AND j.status = 'queued' AND j.runner_type = 'postgres' AND j.run_at <= now()
      AND j.type || chr(31) || j.queue = ANY (%(kinds)s::text[])
      AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = j.queue)
    ORDER BY j.tenant, j.job_id
    FOR NO KEY UPDATE OF j SKIP LOCKED
)
UPDATE jobs AS j
SET status = 'processing', attempts = j.attempts + 1, worker_id = %(worker_id)s,
    lease_expires_at = now() + %(lease)s, started_at = coalesce(j.started_at, now()),
    updated_at = now()
FROM locked l
WHERE j.tenant = l.tenant AND j.job_id = l.job_id
RETURNING j.tenant, j.job_id, j.type, j.queue, j.data, j.attempts, j.max_attempts, j.user_id,
          j.cancel_requested, j.metadata -> 'trace' AS trace;

-- name: complete_jobs
-- Finish a batch of held jobs, in the attempt that ran (a job this worker
-- claimed again after its lease lapsed is a newer attempt, not this one's to
-- finish); done notices list them for wait_for_result. The batch comes as JSON
-- arrays of tenants and results and comma-separated ids and attempts: four
-- parameters, not four arrays to encode element by element.
-- The rows are locked first, in key order (as extend_leases locks them, so the
-- two never deadlock), each by its own primary-key lookup (LIMIT keeps it a
-- lookup the planner cannot turn into a scan). NO KEY UPDATE: a
-- once-step's foreign-key check on the row (KEY SHARE) must not block it. The
-- update then finds them by key, not by address: a row the heartbeat renewed
-- while the lock waited has a version newer than this statement's snapshot, and
-- an update by key re-checks that version and lands on it (by address, it would
-- miss it and skip the row).
WITH batch AS (
    SELECT t.tenant, i.job_id, a.attempt, nullif(r.result, 'null') AS result
    FROM jsonb_array_elements_text(%(tenants)s::jsonb) WITH ORDINALITY AS t(tenant, n)
    JOIN unnest(string_to_array(%(job_ids)s, ',')::uuid[]) WITH ORDINALITY AS i(job_id, n) USING (n)
    JOIN unnest(string_to_array(%(attempts)s, ',')::int[]) WITH ORDINALITY AS a(attempt, n) USING (n)
    JOIN jsonb_array_elements(%(results)s::jsonb) WITH ORDINALITY AS r(result, n) USING (n)
), held AS (
    SELECT u.tenant, u.job_id, u.result
    FROM (SELECT * FROM batch ORDER BY tenant, job_id) AS u
    CROSS JOIN LATERAL (
        SELECT 1 FROM jobs j
        WHERE j.tenant = u.tenant AND j.job_id = u.job_id
          AND j.status::text = 'processing' AND j.worker_id = %(worker_id)s AND j.attempts = u.attempt
        LIMIT 1
        FOR NO KEY UPDATE
    ) AS h
), done AS (
    UPDATE jobs AS j
    SET status = 'completed', result = held.result, progress = 100, completed_at = now(),
        updated_at = now(), worker_id = NULL, lease_expires_at = NULL, error = NULL
    FROM held
    -- A join on the key alone: the planner looks each row up by primary key (or, in a
    -- table of a few thousand rows, hashes it). Key arrays (tenant = ANY, job_id = ANY)
    -- would cost one index descent per (tenant, id) pair before PostgreSQL 17: 10 ms
    -- for a batch of 100 jobs of 100 tenants, against 2 ms this way.
    WHERE j.tenant = held.tenant AND j.job_id = held.job_id
    RETURNING j.job_id
), chunked AS (
    -- A notice holds under 8000 bytes: at most 200 ids (7,400 bytes) each.
    SELECT job_id, (row_number() OVER () - 1) / 200 AS chunk FROM done
)
SELECT pg_notify('algajobs_done_' || current_schema(), string_agg(job_id::text, ','))
FROM chunked GROUP BY chunk;

-- name: finish_job
-- End one held job (in the attempt that ran) as failed or cancelled.
WITH done AS (
    UPDATE jobs
    SET status = %(status)s, error = %(error)s, completed_at = now(), updated_at = now(),
        worker_id = NULL, lease_expires_at = NULL
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s
      AND status = 'processing' AND worker_id = %(worker_id)s AND attempts = %(attempt)s
    RETURNING job_id
)
SELECT pg_notify('algajobs_done_' || current_schema(), job_id::text) FROM done;

-- name: retry_job_later
-- Put one held job back in the queue after a failed attempt (the one that ran).
UPDATE jobs
SET status = 'queued', error = %(error)s, run_at = now() + %(delay)s, updated_at = now(),
    worker_id = NULL, lease_expires_at = NULL
WHERE tenant = %(tenant)s AND job_id = %(job_id)s
  AND status = 'processing' AND worker_id = %(worker_id)s AND attempts = %(attempt)s;

-- name: release_jobs
-- Hand unfinished jobs back on shutdown; the interrupted attempt does not count.
UPDATE jobs AS j
SET status = 'queued', attempts = greatest(j.attempts - 1, 0), worker_id = NULL,
    lease_expires_at = NULL, updated_at = now()
FROM unnest(%(tenants)s::text[], %(job_ids)s::uuid[], %(attempts)s::int[]) AS u(tenant, job_id, attempt)
WHERE j.tenant = u.tenant AND j.job_id = u.job_id
  AND j.status = 'processing' AND j.worker_id = %(worker_id)s AND j.attempts = u.attempt;

-- name: extend_leases
-- Heartbeat: keep the jobs this worker still holds (running, or done and not yet
-- written) claimed, each in the attempt it runs; report which were asked to
-- cancel. A row it gave up on is not renewed, so its lease expires and
-- maintenance requeues it. Locks in key order.
WITH held AS (
    SELECT j.tenant, j.job_id
    FROM jobs AS j
    JOIN unnest(%(tenants)s::text[], %(job_ids)s::uuid[], %(attempts)s::int[]) AS u(tenant, job_id, attempt)
      ON j.tenant = u.tenant AND j.job_id = u.job_id AND j.attempts = u.attempt
    WHERE j.status = 'processing' AND j.runner_type = 'postgres' AND j.worker_id = %(worker_id)s
    ORDER BY j.tenant, j.job_id
    FOR NO KEY UPDATE OF j
)
UPDATE jobs AS j
SET lease_expires_at = now() + %(lease)s
FROM held
WHERE j.tenant = held.tenant AND j.job_id = held.job_id
RETURNING j.tenant, j.job_id, j.cancel_requested;

-- name: recover_expired
-- Requeue jobs whose worker died (lease expired); fail those out of attempts.
WITH recovered AS (
    UPDATE jobs
    SET status = CASE WHEN attempts >= max_attempts THEN 'failed'::job_status
                      ELSE 'queued'::job_status END,
        error = 'worker lost (lease expired) during attempt ' || attempts,
        completed_at = CASE WHEN attempts >= max_attempts THEN now() END,
        worker_id = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE status = 'processing' AND runner_type = 'postgres' AND lease_expires_at < now()
    RETURNING tenant, job_id, status
)
SELECT tenant, job_id, status,
       CASE WHEN status = 'failed'
            THEN pg_notify('algajobs_done_' || current_schema(), job_id::text) END AS notified
FROM recovered;

-- name: update_progress
UPDATE jobs
SET progress = %(progress)s, progress_message = %(message)s, updated_at = now()
WHERE tenant = %(tenant)s AND job_id = %(job_id)s;

-- name: insert_detail
INSERT INTO job_details (tenant, detail_id, job_id, step_name, status, result,
                         retry_count, metadata)
VALUES (%(tenant)s, %(detail_id)s, %(job_id)s, %(step_name)s, %(status)s, %(result)s,
        %(retry_count)s, %(metadata)s);

-- name: begin_once_step
-- Take the step for this transaction. A step another run already committed
-- conflicts and inserts nothing; one still uncommitted elsewhere makes this wait
-- for its outcome (then conflicts, or proceeds if it rolled back).
INSERT INTO job_details (tenant, detail_id, job_id, step_name, status, retry_count, metadata, once)
VALUES (%(tenant)s, %(detail_id)s, %(job_id)s, %(step_name)s, 'processing', %(retry_count)s, '{}', true)
ON CONFLICT (tenant, job_id, step_name) WHERE once DO NOTHING
RETURNING detail_id;

-- name: finish_once_step
UPDATE job_details SET status = 'completed', result = %(result)s, processed_at = now()
WHERE tenant = %(tenant)s AND detail_id = %(detail_id)s
RETURNING status, result;

-- name: once_step_result
SELECT status, result FROM job_details
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND step_name = %(step_name)s AND once;

-- name: step_search_path
-- A once-step's connection: algajobs' tables first, then the user's in public.
SELECT set_config('search_path', current_setting('search_path') || ', public', true) AS now;

-- name: reset_session
-- After a once-step's fn: every setting returns to the connection's own (the startup
-- options: search path, jit), committed with the step.
RESET ALL;

-- name: cancel_job
-- Queued jobs and schedules end at once; a running job is asked to stop.
WITH old AS (
    SELECT tenant, job_id, status FROM jobs
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s
      AND status IN ('pending', 'queued', 'processing', 'active')
    FOR NO KEY UPDATE
), target AS (
    UPDATE jobs AS j
    SET status = CASE WHEN old.status = 'processing' THEN j.status
                      ELSE 'cancelled'::job_status END,
        completed_at = CASE WHEN old.status = 'processing' THEN j.completed_at ELSE now() END,
        cancel_requested = true, updated_at = now()
    FROM old
    WHERE j.tenant = old.tenant AND j.job_id = old.job_id
    RETURNING j.tenant, j.job_id, old.status AS previous_status, j.status, j.runner_type,
              j.external_id
), dropped AS (
    DELETE FROM schedules AS s USING target
    WHERE s.tenant = target.tenant AND s.schedule_id = target.job_id
)
SELECT previous_status, status, runner_type, external_id,
       CASE WHEN status = 'cancelled'
            THEN pg_notify('algajobs_done_' || current_schema(), job_id::text) END AS notified
FROM target;

-- name: retry_job
-- Manually requeue a failed or cancelled job, on the PostgreSQL queue, with fresh attempts.
-- (A Temporal job's external ids stay as the record of its first run.)
UPDATE jobs
SET status = 'queued', runner_type = 'postgres', attempts = 0, run_at = now(), error = NULL, result = NULL,
    cancel_requested = false, progress = 0, progress_message = NULL,
    completed_at = NULL, updated_at = now(),
    metadata = jsonb_set(metadata, '{manual_retries}',
                         to_jsonb(coalesce((metadata ->> 'manual_retries')::int, 0) + 1))
WHERE tenant = %(tenant)s AND job_id = %(job_id)s
  AND status IN ('failed', 'cancelled') AND NOT metadata ? 'schedule'
RETURNING job_id;

-- name: get_job
SELECT * FROM jobs WHERE tenant = %(tenant)s AND job_id = %(job_id)s;

-- name: list_jobs
SELECT * FROM jobs
WHERE tenant = %(tenant)s
  AND (%(status)s::job_status IS NULL OR status = %(status)s::job_status)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
ORDER BY created_at DESC, job_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_jobs_by_status
SELECT status, count(*) AS count FROM jobs
WHERE tenant = %(tenant)s AND (%(type)s::text IS NULL OR type = %(type)s::text)
GROUP BY status;

-- name: list_details
SELECT * FROM job_details
WHERE tenant = %(tenant)s AND job_id = %(job_id)s
ORDER BY processed_at, detail_id;

-- name: prune_finished
-- Delete finished jobs (and their details) older than the retention window.
DELETE FROM jobs
WHERE ctid IN (
    SELECT ctid FROM jobs
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND completed_at < now() - %(retention)s
    LIMIT %(limit)s
);

-- name: lock_schedule_key
SELECT pg_advisory_xact_lock(hashtextextended(%(tenant)s || '/' || %(type)s || '/' || %(singleton_key)s, 0));

-- name: find_schedule
SELECT schedule_id FROM schedules
WHERE tenant = %(tenant)s AND type = %(type)s AND singleton_key = %(singleton_key)s;

-- name: insert_schedule
INSERT INTO schedules (tenant, schedule_id, type, singleton_key, spec, data, priority,
                       max_attempts, user_id, next_run_at, queue)
VALUES (%(tenant)s, %(schedule_id)s, %(type)s, %(singleton_key)s, %(spec)s, %(data)s,
        %(priority)s, %(max_attempts)s, %(user_id)s, %(next_run_at)s, %(queue)s);

-- name: update_schedule
UPDATE schedules
SET spec = %(spec)s, data = %(data)s, priority = %(priority)s, queue = %(queue)s,
    max_attempts = %(max_attempts)s, user_id = %(user_id)s, next_run_at = %(next_run_at)s
WHERE tenant = %(tenant)s AND schedule_id = %(schedule_id)s;

-- name: update_schedule_job
UPDATE jobs
SET data = %(data)s, priority = %(priority)s, user_id = %(user_id)s, queue = %(queue)s,
    metadata = %(metadata)s, run_at = %(next_run_at)s, updated_at = now()
WHERE tenant = %(tenant)s AND job_id = %(schedule_id)s;

-- name: lock_due_schedules
-- Each due schedule is locked by exactly one worker; the others skip it.
SELECT tenant, schedule_id, type, spec, data, priority, max_attempts, user_id, next_run_at, queue
FROM schedules
WHERE next_run_at <= now()
ORDER BY next_run_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: insert_fired_jobs
-- One queued job per due tick; the tick index makes a second firing a no-op.
-- Wakes the workers: '' if a tick is due now, and the earliest later tick's epoch.
WITH inserted AS (
    INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, priority,
                      run_at, max_attempts, schedule_id, queue)
    SELECT u.tenant, u.job_id, u.type, 'queued', 'postgres', u.user_id, u.data, u.priority,
           u.tick, u.max_attempts, u.schedule_id, u.queue
    FROM unnest(%(tenants)s::text[], %(job_ids)s::uuid[], %(types)s::text[],
                %(user_ids)s::text[], %(datas)s::jsonb[], %(priorities)s::int[],
                %(ticks)s::timestamptz[], %(max_attempts)s::int[], %(schedule_ids)s::uuid[],
                %(queues)s::text[])
         AS u(tenant, job_id, type, user_id, data, priority, tick, max_attempts, schedule_id, queue)
    ON CONFLICT DO NOTHING
    RETURNING run_at
), due AS (
    SELECT bool_or(run_at <= now()) AS now_due, min(run_at) FILTER (WHERE run_at > now()) AS next_due
    FROM inserted
)
SELECT pg_notify('algajobs_' || current_schema(), notice)
FROM due
CROSS JOIN LATERAL (VALUES (CASE WHEN due.now_due THEN '' END),
                           (extract(epoch FROM due.next_due)::text)) AS n(notice)
WHERE notice IS NOT NULL;

-- name: advance_schedules
UPDATE schedules AS s
SET next_run_at = u.next_run_at, last_run_at = u.tick
FROM unnest(%(tenants)s::text[], %(schedule_ids)s::uuid[], %(ticks)s::timestamptz[],
            %(next_run_ats)s::timestamptz[]) AS u(tenant, schedule_id, tick, next_run_at)
WHERE s.tenant = u.tenant AND s.schedule_id = u.schedule_id;

-- name: next_schedule_due
SELECT min(next_run_at) AS next_run_at FROM schedules;


-- name: withdraw_unstarted_job
-- Undo a Temporal job row whose workflow could not be started (unless a run claimed it).
DELETE FROM jobs
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND runner_type = 'temporal'
  AND status IN ('pending', 'queued') AND external_run_id IS NULL
RETURNING job_id;

-- name: claim_for_temporal
-- Claim the job for one workflow run; whichever engine claims first runs it.
-- A retried claim by the same run is still a claim.
WITH claimed AS (
    UPDATE jobs
    SET status = 'processing', runner_type = 'temporal', attempts = greatest(attempts, 1),
        started_at = coalesce(started_at, now()), external_id = %(workflow_id)s,
        external_run_id = %(run_id)s, updated_at = now()
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s
      AND ((status IN ('pending', 'queued')
            AND NOT EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = jobs.queue))
           OR (status = 'processing' AND runner_type = 'temporal'
               AND external_run_id = %(run_id)s))
    RETURNING status, runner_type
)
SELECT true AS claimed, status, runner_type, false AS paused FROM claimed
UNION ALL
SELECT false, status, runner_type,
       status IN ('pending', 'queued') AND EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = jobs.queue)
FROM jobs
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND NOT EXISTS (SELECT 1 FROM claimed);

-- name: finish_temporal_job
WITH done AS (
    UPDATE jobs
    SET status = %(status)s::job_status, error = %(error)s, result = %(result)s,
        progress = CASE WHEN %(status)s::job_status = 'completed' THEN 100 ELSE progress END,
        completed_at = now(), updated_at = now()
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND runner_type = 'temporal'
      AND status IN ('pending', 'queued', 'processing')
    RETURNING job_id
)
SELECT pg_notify('algajobs_done_' || current_schema(), job_id::text) FROM done;

-- name: record_handler_result
-- Temporal: the handler returned. Kept on the row so that a retry of the same
-- activity (its completion lost while the cluster was down) returns it instead
-- of running the handler a second time. The job is completed only once the
-- workflow has the result (its finish step): until then Temporal may still fail
-- the run (a result too large for its history, say), and the row must agree.
UPDATE jobs
SET result = %(result)s, metadata = metadata || '{"handler_done": true}', updated_at = now()
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'processing' AND runner_type = 'temporal';

-- name: handler_result
SELECT result FROM jobs
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'processing' AND runner_type = 'temporal'
  AND metadata ? 'handler_done';

-- name: set_attempts
-- A Temporal retry attempt starts: record it, unless its queue is paused (then it
-- does not run, and waits); say which. Only on a row Temporal still runs: a late
-- retry of a job since moved to PostgreSQL (retry_job) must not change the
-- attempt a PostgreSQL worker's writes are fenced by.
WITH paused AS (
    SELECT EXISTS (
        SELECT 1 FROM jobs j JOIN paused_queues p ON p.queue = j.queue
        WHERE j.tenant = %(tenant)s AND j.job_id = %(job_id)s
    ) AS paused
), counted AS (
    UPDATE jobs SET attempts = %(attempts)s, updated_at = now()
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND runner_type = 'temporal' AND status = 'processing'
      AND NOT (SELECT paused FROM paused)
)
SELECT paused FROM paused;

-- name: release_temporal_job
-- A run hands its claimed job back (no worker here has the handler, or the
-- queue was paused before a retry): queued again, for the next run to claim.
-- A job asked to cancel meanwhile ends cancelled instead (its signal may never
-- reach the next run); one whose handler already returned is not handed back.
WITH released AS (
    UPDATE jobs
    SET status = CASE WHEN cancel_requested THEN 'cancelled'::job_status ELSE 'queued'::job_status END,
        completed_at = CASE WHEN cancel_requested THEN now() END,
        error = CASE WHEN cancel_requested THEN 'cancelled while handed back' ELSE error END,
        external_run_id = NULL, updated_at = now(),
        metadata = metadata || jsonb_build_object('released', %(reason)s::text)
    WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'processing'
      AND runner_type = 'temporal' AND external_run_id = %(run_id)s AND NOT metadata ? 'handler_done'
    RETURNING job_id, status
)
SELECT pg_notify('algajobs_done_' || current_schema(), job_id::text) FROM released WHERE status = 'cancelled';

-- name: register_scheduled_run
-- A Temporal Schedule fired: the run gets its own jobs row, but only while the
-- schedule's 'active' row is there (not cancelled, not moved to PostgreSQL).
INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, max_attempts,
                  schedule_id, external_id, external_run_id, queue)
SELECT %(tenant)s, %(job_id)s, %(type)s, 'queued', 'temporal', %(user_id)s, %(data)s,
       %(max_attempts)s, %(schedule_id)s, %(workflow_id)s, %(run_id)s, %(queue)s
WHERE EXISTS (SELECT 1 FROM jobs
              WHERE tenant = %(tenant)s AND job_id = %(schedule_id)s
                AND runner_type = 'temporal' AND status = 'active')
ON CONFLICT DO NOTHING;

-- name: register_client_run
-- Another client (TypeScript, Go, the temporal CLI) started genericJobWorkflow:
-- the run creates its own row. An existing row with that id wins.
INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, max_attempts,
                  external_id, external_run_id, metadata, queue)
VALUES (%(tenant)s, %(job_id)s, %(type)s, 'queued', 'temporal', %(user_id)s, %(data)s,
        %(max_attempts)s, %(workflow_id)s, %(run_id)s, '{"started_by": "temporal client"}', %(queue)s)
ON CONFLICT DO NOTHING;

-- name: upsert_temporal_schedule
-- The 'active' row of a Temporal Schedule; its id is derived from (tenant, name, key).
INSERT INTO jobs (tenant, job_id, type, status, runner_type, user_id, data, priority,
                  max_attempts, metadata, external_id, run_at, queue)
VALUES (%(tenant)s, %(job_id)s, %(type)s, 'active', 'temporal', %(user_id)s, %(data)s,
        %(priority)s, %(max_attempts)s, %(metadata)s, %(external_id)s, %(run_at)s, %(queue)s)
ON CONFLICT (tenant, job_id) DO UPDATE
SET status = 'active', data = EXCLUDED.data, priority = EXCLUDED.priority, queue = EXCLUDED.queue,
    user_id = EXCLUDED.user_id, metadata = EXCLUDED.metadata, run_at = EXCLUDED.run_at,
    external_id = EXCLUDED.external_id, completed_at = NULL, cancel_requested = false,
    error = NULL, updated_at = now()
RETURNING (xmax = 0) AS created;

-- name: hand_over_to_postgres
-- Temporal could not (certainly) start the job: queue the same row on PostgreSQL.
-- A workflow that did start anyway finds the row claimed or claims it first;
-- either way the handler runs once.
UPDATE jobs
SET runner_type = 'postgres', status = 'queued', updated_at = now(), worker_id = NULL,
    lease_expires_at = NULL, metadata = metadata || jsonb_build_object('fallback', %(reason)s::text)
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND runner_type = 'temporal'
  AND status IN ('pending', 'queued') AND external_run_id IS NULL
RETURNING job_id;

-- name: retire_postgres_schedule
-- A recurring job registered on Temporal again: stop its outage-time twin on PostgreSQL.
WITH gone AS (
    DELETE FROM schedules
    WHERE tenant = %(tenant)s AND type = %(type)s AND singleton_key = %(singleton_key)s
    RETURNING tenant, schedule_id
)
UPDATE jobs AS j
SET status = 'cancelled', completed_at = now(), updated_at = now(),
    error = 'moved back to Temporal'
FROM gone
WHERE j.tenant = gone.tenant AND j.job_id = gone.schedule_id;

-- name: retire_temporal_schedule
-- A recurring job registered on PostgreSQL during an outage: its Temporal twin,
-- which cannot be deleted now, stops running jobs (its runs find no active row).
UPDATE jobs
SET status = 'cancelled', completed_at = now(), updated_at = now(), error = 'moved to PostgreSQL'
WHERE tenant = %(tenant)s AND type = %(type)s AND runner_type = 'temporal' AND status = 'active'
  AND coalesce(metadata ->> 'singleton_key', '') = %(singleton_key)s;

-- name: live_postgres_schedules
-- Recurring jobs living on PostgreSQL (registered during an outage), for failback to Temporal.
SELECT s.tenant, s.type, s.singleton_key, s.spec, s.data, s.priority, s.user_id
FROM schedules AS s
JOIN jobs AS j ON j.tenant = s.tenant AND j.job_id = s.schedule_id
WHERE j.status = 'active'
ORDER BY s.next_run_at
LIMIT %(limit)s;

-- name: push_search_path
-- Enqueue in the caller's transaction: our schema on the path for this transaction only.
SELECT current_setting('search_path') AS previous, set_config('search_path', %(schema)s, true) AS now;

-- name: pop_search_path
SELECT set_config('search_path', %(path)s, true) AS now;

-- name: claim_pending
-- The outbox: lease up to %(limit)s committed pending rows to one relay (SKIP LOCKED);
-- a relay that dies leaves its lease to expire, and another starts the rows again.
WITH due AS (
    SELECT tenant, job_id FROM jobs
    WHERE status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j
SET worker_id = %(relay)s, lease_expires_at = now() + %(lease)s, updated_at = now()
FROM due
WHERE j.tenant = due.tenant AND j.job_id = due.job_id
RETURNING j.tenant, j.job_id, j.type, j.data, j.user_id, j.priority, j.run_at, j.singleton_key,
          j.created_at;

-- name: mark_started
-- The relay started the outbox row's workflow: it is now queued on Temporal.
UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, updated_at = now()
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'pending';

-- name: release_pending
-- The relay could not start it now: another round (or relay) tries again.
UPDATE jobs SET worker_id = NULL, lease_expires_at = NULL
WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'pending' AND worker_id = %(relay)s;

-- name: lock_migrations
-- Migrations of one schema run one process at a time.
SELECT pg_advisory_xact_lock(hashtextextended('algajobs-migrate:' || %(schema)s, 0));

-- name: create_migration_ledger
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version FROM schema_migrations;

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: dashboard_counts
-- The dashboard's overview: how many jobs in each (status, engine), one tenant or all.
SELECT status, runner_type, count(*) AS count FROM jobs
WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
GROUP BY status, runner_type;

-- name: dashboard_throughput
-- Jobs finished per minute over the last hour (walks jobs_finished_idx).
SELECT date_trunc('minute', completed_at) AS minute,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM jobs
WHERE completed_at >= now() - interval '1 hour' AND status IN ('completed', 'failed')
  AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
GROUP BY 1 ORDER BY 1;

-- name: dashboard_list_jobs
-- One page of jobs, newest first, keyset on (created_at, job_id) after the cursor
-- (jobs_created_keyset_idx, jobs_tenant_keyset_idx, jobs_failed_keyset_idx or, for a
-- queue other than 'default', jobs_queue_keyset_idx; never OFFSET).
-- NULL parameters mean "no filter"; each statement is planned with its values.
SELECT tenant, job_id, type, queue, status, runner_type, progress, attempts, max_attempts,
       created_at, updated_at, error IS NOT NULL AS has_error
FROM jobs
WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
  AND (%(status)s::job_status IS NULL OR status = %(status)s::job_status)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(engine)s::runner_type IS NULL OR runner_type = %(engine)s::runner_type)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s::timestamptz)
  AND (%(after_at)s::timestamptz IS NULL
       OR (created_at, job_id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
ORDER BY created_at DESC, job_id DESC
LIMIT %(limit)s;

-- name: dashboard_schedules
-- Live recurring jobs (status 'active') of either engine, with the PostgreSQL schedule's next tick
-- (walks jobs_active_idx in order: no scan of the finished jobs).
SELECT j.tenant, j.job_id, j.type, j.runner_type, j.singleton_key, j.external_id, j.created_at,
       j.updated_at, j.metadata ->> 'schedule' AS spec, s.next_run_at, s.last_run_at
FROM jobs j
LEFT JOIN schedules s ON s.tenant = j.tenant AND s.schedule_id = j.job_id
WHERE j.status = 'active' AND (%(tenant)s::text IS NULL OR j.tenant = %(tenant)s::text)
ORDER BY j.tenant, j.type, j.created_at
LIMIT %(limit)s;

-- name: dashboard_queues
-- Every known queue: served by a live worker, paused, or holding queued jobs
-- (a skip scan on jobs_waiting_idx, one probe per queue however many jobs
-- wait), with its pause, its live workers and its queued jobs counted up to
-- %(cap)s (an index-only walk of jobs_waiting_idx, so a huge backlog costs no more).
WITH RECURSIVE waiting(queue) AS (
    (SELECT queue FROM jobs WHERE status = 'queued' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT n.queue FROM waiting w
    CROSS JOIN LATERAL (
        SELECT queue FROM jobs WHERE status = 'queued' AND queue > w.queue ORDER BY queue LIMIT 1
    ) n
),
live AS (
    SELECT queues FROM workers WHERE heartbeat_at > now() - %(alive)s
),
known(queue) AS (
    SELECT queue FROM waiting
    UNION SELECT queue FROM paused_queues
    UNION SELECT unnest(queues) FROM live
)
SELECT k.queue, p.paused_at, p.paused_by, p.reason,
       (SELECT count(*) FROM live l WHERE k.queue = ANY(l.queues)) AS workers,
       (SELECT count(*) FROM (
            SELECT 1 FROM jobs j WHERE j.status = 'queued' AND j.queue = k.queue
            ORDER BY j.queue, j.type, j.runner_type LIMIT %(cap)s  -- the index's order: no table scan
        ) AS c) AS queued
FROM known k
LEFT JOIN paused_queues p ON p.queue = k.queue
ORDER BY k.queue;

-- name: dashboard_workers
-- Live workers for the queues page (engines as text: the enum array has no loader).
SELECT worker_id, host, pid, engines::text[] AS engines, queues, types, started_at, heartbeat_at
FROM workers
WHERE heartbeat_at > now() - %(alive)s
ORDER BY host, pid, worker_id;

-- name: dashboard_job_queue
-- The queue of one job (the job page's runner read has no queue).
SELECT queue FROM jobs WHERE tenant = %(tenant)s AND job_id = %(job_id)s;

-- name: testing_queue_state
-- Test kit (algajobs.testing): the work left for a worker serving %(types)s, per engine,
-- and how far away the next delayed PostgreSQL job is (null: none).
SELECT count(*) FILTER (WHERE runner_type = 'postgres' AND status = 'queued' AND run_at <= now()) AS due,
       count(*) FILTER (WHERE runner_type = 'postgres' AND status = 'processing') AS running,
       count(*) FILTER (WHERE runner_type = 'temporal'
                          AND status IN ('pending', 'queued', 'processing')) AS temporal_live,
       min(run_at) FILTER (WHERE runner_type = 'postgres' AND status = 'queued' AND run_at > now())
           - now() AS next_due_in
FROM jobs
WHERE type = ANY(%(types)s::text[]);

-- name: testing_advance_queue
-- Test kit: move the PostgreSQL queue's clock forward by %(by)s (every queued job falls due that
-- much sooner, so delays and retry backoffs keep their order) and wake the workers.
WITH moved AS (
    UPDATE jobs SET run_at = run_at - %(by)s
    WHERE runner_type = 'postgres' AND status = 'queued' AND run_at > now()
    RETURNING job_id
)
SELECT n.moved, pg_notify('algajobs_' || current_schema(), '')::text AS woke
FROM (SELECT count(*) AS moved FROM moved) AS n;

-- name: announce_worker
-- A worker process says what it serves; renewed every few seconds while it lives.
-- Rows of workers long dead are dropped on the way.
WITH gone AS (
    DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'
)
INSERT INTO workers (worker_id, host, pid, engines, queues, types)
VALUES (%(worker_id)s, %(host)s, %(pid)s, %(engines)s::runner_type[], %(queues)s, %(types)s)
ON CONFLICT (worker_id) DO UPDATE
SET engines = EXCLUDED.engines, queues = EXCLUDED.queues, types = EXCLUDED.types,
    heartbeat_at = now();

-- name: withdraw_worker
DELETE FROM workers WHERE worker_id = %(worker_id)s;

-- name: live_workers
SELECT worker_id, host, pid, engines, queues, types, started_at, heartbeat_at FROM workers
WHERE heartbeat_at > now() - %(alive)s
ORDER BY started_at;

-- name: unserved_job_types
-- The (queue, type, engine) triples with queued jobs, found by a skip scan on
-- jobs_waiting_idx (one probe per triple, however many jobs wait), minus those
-- a live worker serves.
WITH RECURSIVE waiting(queue, type, runner_type) AS (
    (SELECT queue, type, runner_type FROM jobs
     WHERE status = 'queued' ORDER BY queue, type, runner_type LIMIT 1)
    UNION ALL
    SELECT n.queue, n.type, n.runner_type FROM waiting w
    CROSS JOIN LATERAL (
        SELECT queue, type, runner_type FROM jobs
        WHERE status = 'queued' AND (queue, type, runner_type) > (w.queue, w.type, w.runner_type)
        ORDER BY queue, type, runner_type LIMIT 1
    ) n
)
SELECT w.queue, w.type, w.runner_type,
       EXISTS (SELECT 1 FROM paused_queues p WHERE p.queue = w.queue) AS paused
FROM waiting w
WHERE NOT EXISTS (
    SELECT 1 FROM workers k
    WHERE k.heartbeat_at > now() - %(alive)s
      AND w.queue = ANY(k.queues) AND w.type = ANY(k.types) AND w.runner_type = ANY(k.engines)
)
ORDER BY w.queue, w.type, w.runner_type;

-- name: pause_queue
INSERT INTO paused_queues (queue, paused_by, reason)
VALUES (%(queue)s, %(paused_by)s, %(reason)s)
ON CONFLICT (queue) DO NOTHING
RETURNING queue;

-- name: resume_queue
-- Resumed: wake PostgreSQL workers now (Temporal runs waiting on it re-check on their own).
WITH gone AS (
    DELETE FROM paused_queues WHERE queue = %(queue)s RETURNING queue
)
SELECT pg_notify('algajobs_' || current_schema(), '') AS woken FROM gone;

-- name: paused_queues
SELECT queue, paused_at, paused_by, reason FROM paused_queues ORDER BY queue;
