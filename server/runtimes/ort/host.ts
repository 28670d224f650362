/**
 * Entry point of the onnxruntime host process (dist/ort-host.js), started by child-runner.ts for
 * an execution provider whose libraries must be on LD_LIBRARY_PATH when the process starts (the
 * CUDA EP: its CUDA and cuDNN libraries often live in a toolkit folder or the user's PyTorch
 * wheels). Serves frames (child/frames.ts) on stdin/stdout until stdin closes:
 *
 *   prepare {ep, threads, deviceId, outputNames} + [model bytes] → {handle, inputNames, outputNames}
 *   run     {handle, inputs: [{name, shape}]} + blobs  → {outputs: [{shape}]} + output blobs
 *   bind    {handle, inputs: [{name, shape}]} + blobs  → {}   (kept for `time`)
 *   time    {handle}                                   → {ms} (one run of the bound inputs)
 *   release {handle}                                   → {}
 *
 * Errors answer {ok: false, error, kind}: 'out-of-memory' when the device ran out, 'device' for
 * other CUDA failures, so the parent can say which.
 */
import * as ort from 'onnxruntime-node';
import { encodeFrame, float32Of, FrameReader, type Frame } from '../child/frames';

interface Hosted {
  session: ort.InferenceSession;
  outputNames: readonly string[];
  bound: Record<string, ort.Tensor> | null;
}

const sessions = new Map<number, Hosted>();
let nextHandle = 1;

function feedsOf(frame: Frame): Record<string, ort.Tensor> {
  const specs = frame.header.inputs as { name: string; shape: number[] }[];
  return Object.fromEntries(
    specs.map((s, i) => [s.name, new ort.Tensor('float32', float32Of(frame.blobs[i]!), s.shape)]),
  );
}

function hosted(frame: Frame): Hosted {
  const h = sessions.get(frame.header.handle as number);
  if (!h) throw new Error(`no session ${String(frame.header.handle)}`);
  return h;
}

async function answer(frame: Frame): Promise<{ header: Record<string, unknown>; blobs: ArrayBufferView[] }> {
  switch (frame.header.cmd) {
    case 'prepare': {
      const ep = frame.header.ep as 'cuda' | 'cpu';
      const session = await ort.InferenceSession.create(frame.blobs[0]!, {
        executionProviders:
          ep === 'cuda' ? [{ name: 'cuda', deviceId: (frame.header.deviceId as number) ?? 0 }] : ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: frame.header.threads as number,
        logSeverityLevel: 3,
      });
      const handle = nextHandle++;
      // The lowering's names, in the graph's order: one tensor may be asked for twice (ORT lists it once).
      const outputNames = (frame.header.outputNames as string[] | undefined) ?? session.outputNames;
      sessions.set(handle, { session, outputNames, bound: null });
      return { header: { handle, inputNames: session.inputNames, outputNames: session.outputNames }, blobs: [] };
    }
    case 'run': {
      const h = hosted(frame);
      const results = await h.session.run(feedsOf(frame));
      const outs = h.outputNames.map((name) => results[name]!);
      return {
        header: { outputs: outs.map((t) => ({ shape: [...t.dims] })) },
        blobs: outs.map((t) => t.data as Float32Array),
      };
    }
    case 'bind':
      hosted(frame).bound = feedsOf(frame);
      return { header: {}, blobs: [] };
    case 'time': {
      const h = hosted(frame);
      if (!h.bound) throw new Error('time before bind');
      // session.run returns once the outputs are back in host memory: the device work is done.
      const started = performance.now();
      await h.session.run(h.bound);
      return { header: { ms: performance.now() - started }, blobs: [] };
    }
    case 'release': {
      const h = sessions.get(frame.header.handle as number);
      sessions.delete(frame.header.handle as number);
      await h?.session.release();
      return { header: {}, blobs: [] };
    }
  }
  throw new Error(`unknown request "${String(frame.header.cmd)}"`);
}

function kindOf(message: string): 'out-of-memory' | 'device' | 'error' {
  if (
    /out of memory|CUDA failure 2\b|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|Failed to allocate/i.test(
      message,
    )
  )
    return 'out-of-memory';
  if (/CUDA (failure|error)|CUBLAS_STATUS|CUDNN_STATUS|cudaError/i.test(message)) return 'device';
  return 'error';
}

/**
 * Test hook, as VITLENS_TORCH_FAULT is for the Python child: `exit:<cmd>` ends the process,
 * `hang:<cmd>` never answers, `oom:<cmd>` answers with the CUDA EP's out-of-memory message.
 */
const FAULT = process.env.VITLENS_ORT_HOST_FAULT ?? '';

async function answerWithFaults(frame: Frame): ReturnType<typeof answer> {
  const cmd = String(frame.header.cmd);
  if (FAULT === `exit:${cmd}`) process.exit(3);
  if (FAULT === `hang:${cmd}`) await new Promise(() => setInterval(() => {}, 60_000));
  if (FAULT === `oom:${cmd}`)
    throw new Error(
      'CUDA failure 2: out of memory ; GPU=0 ; expr=cudaMalloc(&p, size) (simulated by VITLENS_ORT_HOST_FAULT)',
    );
  return answer(frame);
}

// Requests are answered one at a time, in order: a session run is never overlapped with another.
const reader = new FrameReader();
let queue: Promise<void> = Promise.resolve();
process.stdin.on('data', (chunk: Buffer) => {
  for (const frame of reader.push(chunk)) {
    queue = queue.then(async () => {
      const id = frame.header.id;
      try {
        const { header, blobs } = await answerWithFaults(frame);
        process.stdout.write(encodeFrame({ ...header, id, ok: true }, blobs));
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        process.stdout.write(encodeFrame({ id, ok: false, error: message, kind: kindOf(message) }));
      }
    });
  }
});
process.stdin.on('end', () => {
  void queue.then(async () => {
    for (const h of sessions.values()) await h.session.release();
    process.exit(0);
  });
});
