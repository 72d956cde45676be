-- The dashboard's job list filtered by queue, newest first. A queue that
-- holds most jobs is served by jobs_created_keyset_idx plus a filter (a page
-- is found after a few rows); a small queue is not: its rows are far apart in
-- that index, so the planner read the whole table instead (14 ms at 100 000
-- jobs, and growing with the table), as it did for a queue with no jobs.
-- Partial: jobs of the default queue, usually nearly all of them, are not in
-- it, so inserting them costs nothing more. None of its columns ever changes,
-- so updates of a job stay HOT.
CREATE INDEX jobs_queue_keyset_idx ON jobs (queue, created_at DESC, job_id DESC) WHERE queue <> 'default';
