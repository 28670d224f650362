/**
 * Entry point of the worker process (dist/worker.js), forked by isolate.ts: receives one job
 * over IPC, streams progress, sends the result, exits. Native runtimes (onnxruntime, Dawn,
 * tfjs) only ever load here, so their crashes and out-of-memory kills end this process,
 * not the language server.
 */
import fs from 'node:fs';
import os from 'node:os';
import { errorMessage } from '../core/errors';
import { executeJob } from './execute';
import { benchFaultHooks } from './bench/harness';
import type { WorkerJob, WorkerMessage } from './job';

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

/**
 * Test hook: VITLENS_WORKER_FAULT=device-lost destroys the tfjs WebGPU backend's GPUDevice right
 * after the first timed repetition of the first tfjs-webgpu case. Dawn then resolves
 * `device.lost` (reason 'destroyed') and fails every later submission and read: the path a
 * driver reset or an unplugged GPU takes, which nothing outside this process can provoke.
 */
function armDeviceLoss(): void {
  let fired = false;
  benchFaultHooks.afterTimedRun = async (runtime, repetition) => {
    if (fired || runtime !== 'tfjs-webgpu' || repetition !== 1) return;
    fired = true;
    if (!faultArmed()) return;
    const { loadTfjs } = await import('../runtimes/tfjs/load');
    const { tf } = await loadTfjs('webgpu');
    (tf.backend() as unknown as { device: { destroy(): void } }).device.destroy();
  };
}

/**
 * With VITLENS_WORKER_FAULT_ONCE=<path>, a fault fires only in the worker that removes that file
 * first, so that the next run in the same server works; without it, in every worker.
 */
function faultArmed(): boolean {
  const once = process.env.VITLENS_WORKER_FAULT_ONCE;
  if (!once) return true;
  try {
    fs.unlinkSync(once);
    return true;
  } catch {
    return false;
  }
}

/**
 * The server lowers this process's priority right after the fork (isolate.ts), but Linux sets
 * the priority of one thread: node's own threads (V8's GC and compiler workers), started before
 * that, keep the server's. They are brought down to the main thread's here; threads the runtimes
 * start later (onnxruntime's pool, Dawn, lavapipe) inherit it from the main thread.
 */
function lowerEveryThread(): void {
  if (process.platform !== 'linux') return;
  try {
    const nice = os.getPriority(0);
    for (const tid of fs.readdirSync('/proc/self/task')) {
      if (os.getPriority(Number(tid)) < nice) os.setPriority(Number(tid), nice);
    }
  } catch {
    // A thread that ended meanwhile, or not permitted: run as started.
  }
}

process.once('message', async (job: WorkerJob) => {
  lowerEveryThread();
  const fault = process.env.VITLENS_WORKER_FAULT;
  if (fault === 'heap' && faultArmed()) exhaustHeap();
  if (fault === 'device-lost') armDeviceLoss();
  try {
    const result = await executeJob(job, {
      onProgress: (message, done, total) => void send({ type: 'progress', message, done, total }),
      onCase: (c) => void send({ type: 'case', case: c }),
    });
    await send({ type: 'result', result });
  } catch (e) {
    await send({ type: 'error', message: errorMessage(e) });
  }
  // Dawn and onnxruntime keep handles open; the job is done, so leave.
  process.exit(0);
});
