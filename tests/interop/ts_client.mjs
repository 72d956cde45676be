// Starts algajobs jobs with @temporalio/client alone, as a TypeScript/JavaScript service would.
//
//   TEMPORAL_ADDRESS=127.0.0.1:7233 TASK_QUEUE=alga-jobs [WAIT_MS=30000] node ts_client.mjs <job-id-1> <job-id-2>
//
// Job 1 ("slow-ts") runs to the end while its state is queried; job 2 is cancelled while it
// runs. Prints one JSON line {first, second, observedState, progressState, cancelSeenState} and exits 0;
// exits 1 with a message on stderr on any failure. Every wait is bounded.
// The block between the docs markers is shown verbatim in docs/how-to/other-languages.md
// (tests/integration/test_other_clients.py checks that they match).

process.on('uncaughtException', (err) => fail(err?.stack ?? String(err)));
const [firstId, secondId] = process.argv.slice(2);
if (!firstId || !secondId || !process.env.TEMPORAL_ADDRESS || !process.env.TASK_QUEUE) {
  fail('usage: TEMPORAL_ADDRESS=host:port TASK_QUEUE=queue node ts_client.mjs <job-id-1> <job-id-2>');
}

// --8<-- [start:client]
import { Client, Connection } from '@temporalio/client';

const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
const client = new Client({ connection });

// Start an algajobs job: the four documented fields are enough; retry and timeout come from
// the worker's registry, and the run creates its own row in the `jobs` table.
function startJob(jobId, jobName, tenantId, data) {
  return client.workflow.start('genericJobWorkflow', {
    taskQueue: process.env.TASK_QUEUE ?? 'alga-jobs', // the algajobs workers' queue
    workflowId: `ts-job-${jobId}`, // any id unique to the job; stored as the row's external_id
    args: [{ jobId, jobName, tenantId, data }],
  });
}

// The job's state: { step, progress, startedAt, error?, ... }; step is "running" while the handler runs.
const jobState = (handle) => handle.query('getJobState');

// Ask the job to stop: a running handler is cancelled, and the job ends "cancelled".
const cancelJob = (handle, reason, cancelledBy) => handle.signal('cancelJob', { reason, cancelledBy });

// Wait for the outcome: { success, jobId, error?, result?, completedAt }.
const jobResult = (handle) => handle.result();
// --8<-- [end:client]

const WAIT_MS = Number(process.env.WAIT_MS ?? 30000);
const POLL_MS = 50;
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'skipped']);

function fail(message) {
  process.stderr.write(`ts_client: ${message}\n`);
  process.exit(1);
}

// Resolve with the promise, or reject once `ms` have passed.
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Query getJobState until `accept(state)` holds; fail early if the job ended, or after WAIT_MS.
async function until(handle, what, accept) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const state = await within(WAIT_MS, `getJobState on ${handle.workflowId}`, jobState(handle));
    if (accept(state)) return state;
    if (TERMINAL.has(state.step) || Date.now() > deadline) {
      throw new Error(`${handle.workflowId}: never ${what} (within ${WAIT_MS} ms); last state ${JSON.stringify(state)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const running = (state) => state.step === 'running';

async function main() {
  // (a) a job that runs to the end: its state is visible while it runs.
  const first = await startJob(firstId, 'slow-ts', 'ts', { steps: 30, stepMs: 100 });
  const observedState = await until(first, 'running', running);
  // The handler's ctx.report_progress reaches the query through the updateProgress signal.
  const progressState = await until(first, 'reported progress while running', (s) => running(s) && s.progress > 0);

  // (b) a job cancelled while it runs (it would take a minute otherwise).
  const second = await startJob(secondId, 'slow-ts', 'ts', { steps: 1200, stepMs: 50 });
  await until(second, 'running', running);
  await cancelJob(second, 'from ts', 'ts-client');
  const cancelSeenState = await until(second, 'acknowledged the cancel', (s) => s.cancelRequested === true);

  // (c) both outcomes.
  const [firstResult, secondResult] = await within(
    WAIT_MS,
    'waiting for both results',
    Promise.all([jobResult(first), jobResult(second)]),
  );
  return {
    first: { workflowId: first.workflowId, runId: first.firstExecutionRunId, result: firstResult },
    second: { workflowId: second.workflowId, runId: second.firstExecutionRunId, result: secondResult },
    observedState,
    progressState,
    cancelSeenState,
  };
}

try {
  const report = await main();
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (err) {
  fail(err?.stack ?? String(err));
} finally {
  await connection.close();
}
