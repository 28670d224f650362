/**
 * A runtime running in a process of its own (the user's Python with torch, the onnxruntime host
 * of the CUDA EP), as a request/response channel of frames (frames.ts) over its stdin/stdout.
 * A process that exits, is killed or never answers fails every pending request with an error that
 * names the runtime and what the process last printed, so a broken install or a crashed driver is
 * a clear message, never a hang of the benchmark, and the next run starts a fresh process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { encodeFrame, FrameReader, type Frame } from './frames';

/** A request the process refused or failed: `kind` says whether the device ran out of memory or failed. */
export class RuntimeProcessError extends Error {
  override readonly name = 'RuntimeProcessError';
  constructor(
    message: string,
    readonly kind: 'out-of-memory' | 'device' | 'error' | 'exited' | 'timeout',
  ) {
    super(message);
  }
}

const STDERR_KEEP = 4000;

export interface ChannelOptions {
  /** Names the runtime in every error ("/usr/bin/python3 (torch 1.13.1)"). */
  who: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** How long one request may take before the process is taken for hung and killed. */
  requestTimeoutMs: number;
}

export class ChildChannel {
  private readonly child: ChildProcess;
  private readonly reader = new FrameReader();
  private readonly waiting = new Map<number, { resolve(f: Frame): void; reject(e: Error): void }>();
  private nextId = 1;
  private stderrTail = '';
  private endedWith: RuntimeProcessError | null = null;
  private readonly who: string;
  private readonly requestTimeoutMs: number;

  constructor(o: ChannelOptions) {
    this.who = o.who;
    this.requestTimeoutMs = o.requestTimeoutMs;
    this.child = spawn(o.command, o.args, { stdio: ['pipe', 'pipe', 'pipe'], env: o.env });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      for (const frame of this.reader.push(chunk)) {
        const id = frame.header.id as number;
        const w = this.waiting.get(id);
        if (!w) continue;
        this.waiting.delete(id);
        if (frame.header.ok) w.resolve(frame);
        else
          w.reject(
            new RuntimeProcessError(
              `${this.who}: ${String(frame.header.error)}`,
              (frame.header.kind as RuntimeProcessError['kind']) ?? 'error',
            ),
          );
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    this.child.stdin!.on('error', () => {}); // a dead child's pipe: the exit handler reports it
    this.child.on('error', (e) =>
      this.fail(new RuntimeProcessError(`${this.who} could not start: ${e.message}`, 'exited')),
    );
    this.child.on('exit', (code, signal) => {
      const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
      const said = this.stderrTail.trim().split('\n').slice(-6).join('\n');
      this.fail(new RuntimeProcessError(`${this.who} ${how}${said ? `; it said:\n${said}` : ''}`, 'exited'));
    });
  }

  private fail(e: RuntimeProcessError): void {
    this.endedWith ??= e;
    for (const w of this.waiting.values()) w.reject(this.endedWith);
    this.waiting.clear();
  }

  /** Sends one request; resolves with the answer, rejects with a RuntimeProcessError. */
  request(
    header: Record<string, unknown>,
    blobs: readonly ArrayBufferView[] = [],
    timeoutMs = this.requestTimeoutMs,
  ): Promise<Frame> {
    if (this.endedWith) return Promise.reject(this.endedWith);
    const id = this.nextId++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.waiting.delete(id)) return;
        const hung = new RuntimeProcessError(
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

  /** Whether the process has gone (exited, killed, never started): nothing it held needs freeing. */
  get ended(): boolean {
    return this.endedWith !== null;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Closes stdin (the process returns from its loop) and waits for the exit, killing it after `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
