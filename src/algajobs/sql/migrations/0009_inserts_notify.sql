-- The statements that queue PostgreSQL jobs (insert_job, insert_jobs,
-- insert_fired_jobs) now send their own wake-up notice, so the statement
-- trigger of 0004 goes: its transition table copied every inserted row and its
-- query read them all again, a fifth of the server time of a 1,000-job batch.
-- A process of an earlier version that inserts after this migration wakes no
-- worker: its jobs are found by the next poll (JOB_POLL_INTERVAL), not lost.
DROP TRIGGER jobs_notify_inserted ON jobs;
DROP FUNCTION notify_jobs_inserted();
