/**
 * What ORT's profiles say: the file a profiled session wrote, per-op and per-EP kernel times, the
 * CPU arena's peak, and the tensor bytes live at once, replayed from the kernels ORT recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';

/** ORT names the file `<prefix>_<date>.json` and node's endProfiling() does not return it, so look. */
export function findProfileFile(prefix: string, notBeforeMs = 0): string | undefined {
  const dir = path.dirname(path.resolve(prefix));
  const base = path.basename(prefix) + '_';
  let best: { file: string; mtime: number } | undefined;
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith(base) || !f.endsWith('.json')) continue;
    const file = path.join(dir, f);
    const mtime = fs.statSync(file).mtimeMs;
    // Second-granular names and coarse mtimes: allow a second of slack before creation.
    if (mtime >= notBeforeMs - 1000 && (!best || mtime > best.mtime)) best = { file, mtime };
  }
  return best?.file;
}

export interface OrtProfileSummary {
  /** Kernel time per ONNX op type, summed over nodes and runs (µs; on WebGPU this is CPU-side dispatch only). */
  kernelTimeUs: Record<string, number>;
  /** Kernel count per execution provider, summed over runs (shows op placement). */
  kernelsByProvider: Record<string, number>;
  /** CPU EP only: the arena's peak bytes in use (ORT reports 0 on WebGPU, so absent there). */
  cpuArenaPeakBytes?: number;
  /** WebGPU only: GPU time from timestamp queries, in total and per ONNX op type (µs). */
  gpuTimeUs?: number;
  gpuTimeUsByOp?: Record<string, number>;
}

export interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: Record<string, unknown>;
}

/** Summarizes an ORT profile (Chrome trace event array). */
export function summarizeOrtProfile(events: readonly TraceEvent[]): OrtProfileSummary {
  const s: OrtProfileSummary = { kernelTimeUs: {}, kernelsByProvider: {} };
  const add = (r: Record<string, number>, k: string, v: number) => (r[k] = (r[k] ?? 0) + v);
  let peak = 0;
  for (const e of events) {
    if (e.cat === 'Node' && e.name?.endsWith('_kernel_time')) {
      add(s.kernelTimeUs, String(e.args?.op_name), e.dur ?? 0);
      add(s.kernelsByProvider, String(e.args?.provider), 1);
      peak = Math.max(peak, Number(e.args?.mem_in_use_peak ?? 0));
    } else if (e.cat === 'Api') {
      // "<node>&<Op>&<Program>": one event per GPU program dispatch.
      s.gpuTimeUs = (s.gpuTimeUs ?? 0) + (e.dur ?? 0);
      add((s.gpuTimeUsByOp ??= {}), e.name?.split('&')[1] ?? '?', e.dur ?? 0);
    }
  }
  if (peak > 0) s.cpuArenaPeakBytes = peak;
  return s;
}

export function readOrtProfile(file: string): OrtProfileSummary {
  return summarizeOrtProfile(readTraceEvents(file));
}

export function readTraceEvents(file: string): TraceEvent[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TraceEvent[];
}

export interface TensorLiveness {
  /** Largest sum of bytes of tensors live at once: graph inputs and node outputs, initializers excluded. */
  peakBytes: number;
  /** The node whose execution reaches the peak (its inputs and outputs are all live then). */
  peakNode: string;
  /** Every counted tensor's bytes added up, as if nothing were ever freed or reused: an upper bound. */
  totalBytes: number;
  /** The largest single counted tensor: a lower bound on any peak. */
  largestBytes: number;
  /** Node executions replayed (one run). */
  nodes: number;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float: 4,
  float16: 2,
  bfloat16: 2,
  double: 8,
  int64: 8,
  uint64: 8,
  int32: 4,
  uint32: 4,
  int16: 2,
  uint16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/**
 * Ops whose WebGPU kernels alias their input (`.Alias(0, 0)` in ORT's kernel
 * definitions): the output shares the input's buffer, so it adds no bytes and keeps that
 * buffer alive as long as the view is used.
 */
const VIEW_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten']);

/** `[{"float":[196,64]}]` (the profile's input_/output_type_shape) → bytes per tensor; null if a type is unknown. */
function tensorBytes(typeShapes: unknown): (number | null)[] {
  if (!Array.isArray(typeShapes)) return [];
  return typeShapes.map((entry) => {
    const [type, shape] = Object.entries(entry as Record<string, number[]>)[0] ?? [];
    const size = type === undefined ? undefined : BYTES_PER_ELEMENT[type];
    return size === undefined || !Array.isArray(shape) ? null : size * shape.reduce((a, b) => a * b, 1);
  });
}

/**
 * Replays one profiled run to find the tensor bytes live at once: sizes are the ones ORT
 * recorded for each kernel (`input_type_shape` / `output_type_shape` of its Node events),
 * lifetimes come from the optimized model ORT ran (a tensor lives from the kernel that writes
 * it until the last kernel that reads it, in the profile's execution order; graph outputs
 * until the end). Only kernels on `provider` count (their outputs live in that EP's memory),
 * plus the graph inputs they read (copied to the device for the run).
 *
 * What this is not: the device allocation. Weights are excluded, and an allocator may round
 * buffers up or keep freed ones cached. Returns null when a profiled node is missing from
 * the model or a tensor type is unknown, since the replay would then be wrong.
 */
export function replayTensorLiveness(
  events: readonly TraceEvent[],
  model: Uint8Array,
  provider: string,
): TensorLiveness | null {
  const graph = onnx.ModelProto.decode(model).graph;
  if (!graph) return null;
  const nodes = new Map((graph.node ?? []).map((n) => [n.name ?? '', n]));
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const graphInputs = new Set((graph.input ?? []).map((v) => v.name));
  const graphOutputs = new Set((graph.output ?? []).map((v) => v.name));

  // The last run's kernels, in execution order (the session may have run more than once).
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const lastRun = runs[runs.length - 1];
  const kernels = events
    .filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'))
    .filter(
      (e) => !lastRun || ((e.ts ?? 0) >= (lastRun.ts ?? 0) && (e.ts ?? 0) <= (lastRun.ts ?? 0) + (lastRun.dur ?? 0)),
    )
    .sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));

  /** One tensor's storage: its bytes and the first and last steps it is live. */
  interface Storage {
    bytes: number;
    born: number;
    lastUse: number;
  }
  const storageOf = new Map<string, Storage>();
  const storages: Storage[] = [];
  const steps: string[] = [];
  for (const e of kernels) {
    const name = e.name!.slice(0, -'_kernel_time'.length);
    const node = nodes.get(name);
    if (!node) return null;
    if (e.args?.provider !== provider) continue;
    const step = steps.push(name) - 1;
    const inBytes = tensorBytes(e.args?.input_type_shape);
    for (const [i, input] of (node.input ?? []).entries()) {
      if (!input || initializers.has(input)) continue;
      let storage = storageOf.get(input);
      if (!storage) {
        // Written by a kernel of another provider: host memory, not counted.
        if (!graphInputs.has(input)) continue;
        // A graph input: copied to the device before the first kernel runs.
        const bytes = inBytes[i];
        if (bytes === null || bytes === undefined) return null;
        storage = { bytes, born: 0, lastUse: step };
        storages.push(storage);
        storageOf.set(input, storage);
      }
      storage.lastUse = Math.max(storage.lastUse, step);
    }
    const outBytes = tensorBytes(e.args?.output_type_shape);
    for (const [i, output] of (node.output ?? []).entries()) {
      if (!output) continue;
      const source = VIEW_OPS.has(node.opType ?? '') ? storageOf.get(node.input?.[0] ?? '') : undefined;
      if (source) {
        storageOf.set(output, source);
        continue;
      }
      const bytes = outBytes[i];
      if (bytes === null || bytes === undefined) return null;
      const storage = { bytes, born: step, lastUse: step };
      storages.push(storage);
      storageOf.set(output, storage);
    }
  }
  if (steps.length === 0) return null;
  for (const [name, storage] of storageOf) if (graphOutputs.has(name)) storage.lastUse = steps.length - 1;

  const delta = new Float64Array(steps.length + 1);
  for (const b of storages) {
    delta[b.born]! += b.bytes;
    delta[b.lastUse + 1]! -= b.bytes;
  }
  let live = 0;
  let peak = { bytes: 0, step: 0 };
  for (let step = 0; step < steps.length; step++) {
    live += delta[step]!;
    if (live > peak.bytes) peak = { bytes: live, step };
  }
  return {
    peakBytes: peak.bytes,
    peakNode: steps[peak.step]!,
    totalBytes: storages.reduce((a, b) => a + b.bytes, 0),
    largestBytes: storages.reduce((a, b) => Math.max(a, b.bytes), 0),
    nodes: steps.length,
  };
}
