-- Indexes for the operations dashboard's job list, which pages newest first
-- by keyset on (created_at, job_id), never OFFSET, so a page costs the same on
-- page 1 and page 10 000 of a million rows.

-- Every tenant at once (the operator's view).
CREATE INDEX jobs_created_keyset_idx ON jobs (created_at DESC, job_id DESC);
-- One tenant (a filtered or tenant-scoped view).
CREATE INDEX jobs_tenant_keyset_idx ON jobs (tenant, created_at DESC, job_id DESC);
-- Failed jobs: the list operators open most and bulk retry walks; partial, so
-- it holds only the few failed rows and costs the queue nothing otherwise.
CREATE INDEX jobs_failed_keyset_idx ON jobs (created_at DESC, job_id DESC) WHERE status = 'failed';
-- The keyset index above starts with (tenant, created_at DESC): the older index
-- on just that prefix only costs every insert, so it goes.
DROP INDEX jobs_tenant_created_idx;
