/**
 * Runs a job in a child process (dist/worker.js) and turns everything that can go wrong
 * there into a clear error for the caller: a native crash (signal), an out-of-memory abort,
 * an unexpected exit, or a cancel (the child is killed). The caller's process is never at
 * risk, which is the point: the language server stays up whatever a benchmark does.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatBytes, type BytesFormat } from '../../protocol/format';
import type { JobCallbacks, JobResult, WorkerJob, WorkerMessage } from './job';

export class WorkerFailure extends Error {
  constructor(
    message: string,
    readonly reason: 'crashed' | 'out-of-memory' | 'cancelled' | 'failed',
  ) {
    super(message);
  }
}

export interface IsolateOptions extends JobCallbacks {
  signal?: AbortSignal;
  /** V8 heap limit of the worker (MiB); default from VITLENS_WORKER_HEAP_MB or node's own. */
  heapMb?: number;
  /** Called with the worker's pid once it runs (for status displays and tests). */
  onSpawn?: (pid: number) => void;
  /** Extra environment for the worker, on top of this process's (e.g. the VITLENS_WORKER_FAULT test hook). */
  env?: Record<string, string>;
}

/** dist/worker.js next to the running bundle, or the built one when running from source (tests). */
export function workerPath(): string {
  const candidates = [path.join(__dirname, 'worker.js'), path.join(__dirname, '..', '..', 'dist', 'worker.js')];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found)
    throw new Error(`the benchmark worker is missing (looked for ${candidates.join(', ')}): run \`npm run build\``);
  return found;
}

const STDERR_KEEP = 4000;
/** Nice value of a worker: lower priority than the language server that spawned it. */
const WORKER_NICE = 10;
const OUT_OF_MEMORY = /heap out of memory|Allocation failed|out of memory/i;
/** How often the worker's peak resident memory is read while it runs (Linux: /proc). */
const RSS_POLL_MS = 250;

/**
 * A process's peak resident set size so far (VmHWM, bytes), or null where /proc cannot say
 * (not Linux, or the process is gone: a zombie's status has no memory lines).
 */
function peakRss(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** A resident set size: whole MiB, or GiB with two decimals. */
const RSS_BYTES: BytesFormat = { decimals: { MiB: 0, GiB: 2 }, smallest: 'MiB', largest: 'GiB' };

export function runIsolated<J extends WorkerJob>(job: J, o: IsolateOptions = {}): Promise<JobResult<J>> {
  const heap = o.heapMb ?? (Number(process.env.VITLENS_WORKER_HEAP_MB) || undefined);
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(new WorkerFailure(`${job.kind} cancelled`, 'cancelled'));
    let child: ChildProcess;
    try {
      child = fork(workerPath(), [], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        execArgv: heap ? [`--max-old-space-size=${heap}`] : [],
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...o.env },
      });
    } catch (e) {
      return reject(new WorkerFailure(`could not start the benchmark worker: ${(e as Error).message}`, 'failed'));
    }
    if (child.pid !== undefined) {
      // Below the server's priority: hovers and diagnostics stay quick while a job saturates the
      // cores (measured: burst p99 ~330 → ~164 ms, steady p99 ≤ 8 ms). Timings are unaffected
      // when nothing else wants the CPU.
      try {
        os.setPriority(child.pid, WORKER_NICE);
      } catch {
        /* not permitted here: run at the same priority */
      }
      o.onSpawn?.(child.pid);
    }
    let stderr = '';
    let settled = false;
    let cancelled = false;
    // The worker's last-known peak RSS, read while it runs: once it is killed /proc no longer has it.
    let rssPeak: number | null = null;
    const readRss = () => {
      const r = child.pid !== undefined ? peakRss(child.pid) : null;
      if (r !== null) rssPeak = Math.max(rssPeak ?? 0, r);
    };
    const rssTimer = process.platform === 'linux' ? setInterval(readRss, RSS_POLL_MS) : undefined;
    rssTimer?.unref();
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_KEEP);
    });
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(rssTimer);
      o.signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = () => {
      cancelled = true;
      child.kill('SIGKILL');
    };
    o.signal?.addEventListener('abort', onAbort);
    child.on('message', (m: WorkerMessage) => {
      if (rssTimer) readRss();
      if (m.type === 'progress') o.onProgress?.(m.message, m.done, m.total);
      else if (m.type === 'case') o.onCase?.(m.case);
      else if (m.type === 'result') finish(() => resolve(m.result as JobResult<J>));
      else if (m.type === 'error') finish(() => reject(new WorkerFailure(m.message, 'failed')));
    });
    child.on('error', (e) => finish(() => reject(new WorkerFailure(`benchmark worker error: ${e.message}`, 'failed'))));
    child.on('exit', (code, signal) => {
      finish(() => {
        if (cancelled) return reject(new WorkerFailure(`${job.kind} cancelled`, 'cancelled'));
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        // V8 prints the reason ("FATAL ERROR: … JavaScript heap out of memory") above a native stack trace: quote the reason.
        const oom = stderr.split('\n').find((line) => OUT_OF_MEMORY.test(line));
        if (oom !== undefined) {
          return reject(
            new WorkerFailure(
              `the ${job.kind} worker ran out of memory${heap ? ` (heap limit ${heap} MiB)` : ''} and was stopped; nothing else was affected. Try a smaller resolution or batch. (${oom.trim()})`,
              'out-of-memory',
            ),
          );
        }
        const last = tail ? ` Last output: ${tail}` : '';
        if (signal === 'SIGKILL') {
          // Not ours (a cancel returned above): the kernel's OOM killer sends SIGKILL, and says so only in its own log.
          const peak =
            rssPeak !== null ? ` (its peak resident memory was at least ${formatBytes(rssPeak, RSS_BYTES)})` : '';
          return reject(
            new WorkerFailure(
              `the ${job.kind} worker was killed by SIGKILL before answering, not by ViT Lens: possibly by the kernel's out-of-memory killer${peak} or by another process; nothing else was affected. If memory ran out, try a smaller resolution or batch.${last}`,
              'crashed',
            ),
          );
        }
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(
          new WorkerFailure(
            `the ${job.kind} worker ${how} before answering (a native runtime crash?); nothing else was affected.${last}`,
            'crashed',
          ),
        );
      });
    });
    child.send(job);
  });
}
