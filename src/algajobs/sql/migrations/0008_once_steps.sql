-- ctx.once(step, fn): a step's effects and its job_details row commit in one
-- transaction, and the row is unique per (job, step), so a run after a crash,
-- a lost completion or a lease expiry finds the step done and gets its stored
-- result instead of applying the effects again. Plain details (add_detail)
-- stay repeatable: only once-steps are in the index.
ALTER TABLE job_details ADD COLUMN once boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX job_details_once_idx ON job_details (tenant, job_id, step_name) WHERE once;
