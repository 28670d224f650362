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

process.once('message', async (job: WorkerJob) => {
  try {
    const result = await executeJob(job, (message, done, total) => void send({ type: 'progress', message, done, total }));
    await send({ type: 'result', result });
  } catch (e) {
    await send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
  // Dawn and onnxruntime keep handles open; the job is done, so leave.
  process.exit(0);
});
