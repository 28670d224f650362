/**
 * Entry point of the worker process (dist/worker.js), forked by isolate.ts: receives one job
 * over IPC, streams progress, sends the result, exits. Native runtimes (onnxruntime, Dawn,
 * tfjs) only ever load here, so their crashes and out-of-memory kills end this process,
 * not the language server.
 */
import { executeJob } from './execute';
import type { WorkerJob, WorkerMessage } from './jobs';

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => process.send!(m, undefined, {}, () => resolve()));
}

if (!process.send) {
  process.stderr.write('vitlens worker: must be started by the language server or CLI over IPC\n');
  process.exit(2);
}

/**
 * Test hook: VITLENS_WORKER_FAULT=heap makes the worker fill its V8 heap with small objects
 * until V8 aborts, which is how a real out-of-memory ends a worker. A benchmark itself cannot
 * provoke it on demand: its tensors live in typed arrays and native memory, outside the heap
 * that --max-old-space-size limits.
 */
function exhaustHeap(): never {
  const hoard: object[][] = [];
  for (;;) hoard.push(Array.from({ length: 1024 }, (_, i) => ({ i })));
}

process.once('message', async (job: WorkerJob) => {
  if (process.env.VITLENS_WORKER_FAULT === 'heap') exhaustHeap();
  try {
    const result = await executeJob(job, {
      onProgress: (message, done, total) => void send({ type: 'progress', message, done, total }),
      onCase: (c) => void send({ type: 'case', case: c }),
    });
    await send({ type: 'result', result });
  } catch (e) {
    await send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
  // Dawn and onnxruntime keep handles open; the job is done, so leave.
  process.exit(0);
});
