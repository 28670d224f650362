/**
 * The user's Python running vitlens_torch.py, as a request/response channel. Frames are a 4-byte
 * little-endian length, a JSON header, then the raw bytes of each blob the header lists (the
 * format vitlens_torch.py documents). A Python that exits, is killed or never answers fails every
 * pending request with an error that names the interpreter and what it last printed, so a broken
 * torch is a clear message, never a hang of the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The shipped script: next to the bundle (dist/), or beside this file when running from source. */
export function torchScriptPath(): string {
  const script = path.join(__dirname, 'vitlens_torch.py');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` (esbuild.mjs copies it)`);
  return script;
}

export interface Frame {
  header: Record<string, unknown>;
  blobs: Buffer[];
}

/** Encodes one frame: the header gets the blobs' byte lengths. */
export function encodeFrame(header: Record<string, unknown>, blobs: readonly ArrayBufferView[] = []): Buffer {
  const json = Buffer.from(JSON.stringify({ ...header, blobs: blobs.map((b) => b.byteLength) }), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([length, json, ...blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

/** Splits a byte stream into frames as the bytes arrive. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    for (;;) {
      if (this.pending.length < 4) break;
      const headerLength = this.pending.readUInt32LE(0);
      if (this.pending.length < 4 + headerLength) break;
      const header = JSON.parse(this.pending.subarray(4, 4 + headerLength).toString('utf8')) as Record<string, unknown>;
      const sizes = (header.blobs as number[] | undefined) ?? [];
      const total = 4 + headerLength + sizes.reduce((a, b) => a + b, 0);
      if (this.pending.length < total) break;
      let offset = 4 + headerLength;
      const blobs = sizes.map((n) => {
        const blob = Buffer.from(this.pending.subarray(offset, offset + n));
        offset += n;
        return blob;
      });
      frames.push({ header, blobs });
      this.pending = this.pending.subarray(total);
    }
    return frames;
  }
}

/** A request Python refused or failed: `kind` says whether the device ran out of memory or failed. */
export class TorchError extends Error {
  override readonly name = 'TorchError';
  constructor(
    message: string,
    readonly kind: 'out-of-memory' | 'device' | 'error' | 'exited' | 'timeout',
  ) {
    super(message);
  }
}

const STDERR_KEEP = 4000;

const PYTHON_ENV = { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };

/**
 * Thread pools torch's CPU kernels use, sized before torch loads (OpenBLAS reads its size at load
 * time, whatever torch.set_num_threads says later), unless the user set them. Passive OpenMP
 * waiting: with libgomp's default spinning, OpenMP's and OpenBLAS's threads spin against each
 * other on a small machine and runs became 5–10× slower the moment anything else used a core
 * (docs/BENCHMARKS.md, the PyTorch baselines).
 */
function threadEnv(threads: number): Record<string, string> {
  const n = String(threads);
  return { OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n, OMP_WAIT_POLICY: 'PASSIVE' };
}

/**
 * glibc's allocator hands every block over 128 KiB back to the kernel when it is freed, so each
 * large tensor of every run is page-faulted in afresh (torch's CPU allocator does not cache): the
 * softmax attention of soft_tiny's stage 1 took 602 ms per run that way and 44 ms with freed
 * memory kept for reuse, as onnxruntime's arena does. PyTorch's own CPU tuning guide recommends a
 * caching allocator (jemalloc, tcmalloc) for the same reason; these glibc settings do it with
 * nothing installed. The user's own settings win.
 */
const ALLOCATOR_ENV = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 32),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 36),
  MALLOC_TOP_PAD_: String(2 ** 29),
};

/**
 * How long one request may take before Python is taken for hung and killed: 10 minutes (a run at
 * a size the device can barely hold can take minutes), or VITLENS_TORCH_TIMEOUT_MS.
 */
const REQUEST_TIMEOUT_MS = Number(process.env.VITLENS_TORCH_TIMEOUT_MS) || 600_000;

export class TorchProcess {
  private readonly child: ChildProcess;
  private readonly reader = new FrameReader();
  private readonly waiting = new Map<number, { resolve(f: Frame): void; reject(e: Error): void }>();
  private nextId = 1;
  private stderrTail = '';
  private endedWith: TorchError | null = null;

  constructor(
    /** Names the interpreter in every error ("/usr/bin/python3 (torch 1.13.1)"). */
    private readonly who: string,
    python: string,
    /** CPU threads for torch's intra-op pool (the count the other CPU runtimes use). */
    threads: number,
  ) {
    this.child = spawn(python, [torchScriptPath()], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...threadEnv(threads),
        ...ALLOCATOR_ENV,
        ...process.env,
        ...PYTHON_ENV,
        VITLENS_TORCH_THREADS: String(threads),
      },
    });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      for (const frame of this.reader.push(chunk)) {
        const id = frame.header.id as number;
        const w = this.waiting.get(id);
        if (!w) continue;
        this.waiting.delete(id);
        if (frame.header.ok) w.resolve(frame);
        else
          w.reject(
            new TorchError(
              `${this.who}: ${String(frame.header.error)}`,
              (frame.header.kind as TorchError['kind']) ?? 'error',
            ),
          );
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    this.child.stdin!.on('error', () => {}); // a dead child's pipe: the exit handler reports it
    this.child.on('error', (e) => this.fail(new TorchError(`${this.who} could not start: ${e.message}`, 'exited')));
    this.child.on('exit', (code, signal) => {
      const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
      const said = this.stderrTail.trim().split('\n').slice(-6).join('\n');
      this.fail(new TorchError(`${this.who} ${how}${said ? `; it said:\n${said}` : ''}`, 'exited'));
    });
  }

  private fail(e: TorchError): void {
    this.endedWith ??= e;
    for (const w of this.waiting.values()) w.reject(this.endedWith);
    this.waiting.clear();
  }

  /** Sends one request; resolves with Python's answer, rejects with a TorchError. */
  request(
    header: Record<string, unknown>,
    blobs: readonly ArrayBufferView[] = [],
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Frame> {
    if (this.endedWith) return Promise.reject(this.endedWith);
    const id = this.nextId++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.waiting.delete(id)) return;
        const hung = new TorchError(
          `${this.who} did not answer "${String(header.cmd)}" within ${timeoutMs / 1000} s`,
          'timeout',
        );
        reject(hung);
        // Taken for hung: killed, and every later request fails with this error at once.
        this.fail(hung);
        this.kill();
      }, timeoutMs);
      timer.unref();
      this.waiting.set(id, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin!.write(encodeFrame({ ...header, id }, blobs));
    });
  }

  /** Whether Python has gone (exited, killed, never started): nothing it held needs freeing. */
  get ended(): boolean {
    return this.endedWith !== null;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Closes stdin (Python returns from its loop) and waits for the exit, killing it after `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
