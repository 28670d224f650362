/**
 * The ONNX runtime: lowers a Graph to an ONNX model (float32, one or a few ONNX nodes per
 * graph node, named `n<id>_<op>` so ORT profiles and logs map back to the graph) and runs
 * it on onnxruntime-node's CPU or WebGPU execution provider. Semantics follow
 * ReferenceRuntime exactly; see /work/shared/RUNTIMES.md §1 for the ORT facts relied on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { numel } from '../../shape';
import { liveNodes } from '../cost';
import type { Graph, Node, Tensor } from '../graph';
import type { WeightSource } from './reference';

/** ReduceSum/ReduceMax/ReduceSumSquare take axes as an input only from opset 18 on. */
export const MIN_OPSET = 18;
/** Opset 20 has Gelu (erf and tanh), which ORT's CPU and WebGPU EPs run as one kernel. */
export const DEFAULT_OPSET = 20;
/** lavapipe's limit; real GPUs are usually larger (read `adapter.limits` there). */
export const DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE = 128 * 1024 * 1024;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const A = onnx.AttributeProto.AttributeType;

function nodeName(id: number, node: Node): string {
  const kind = node.op === 'binary' || node.op === 'unary' || node.op === 'reduce' ? node.fn : node.op;
  return `n${id}_${kind}`;
}

/** The IR version each opset was released with (onnx/docs/Versioning.md): a model declaring an older IR than its opset is malformed. */
function irVersionFor(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : opset <= 22 ? 10 : 11;
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

type Attr = onnx.IAttributeProto;
const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: A.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: A.FLOAT, f: v });
const str = (name: string, v: string): Attr => ({ name, type: A.STRING, s: new TextEncoder().encode(v) });

function valueInfo(name: string, shape: readonly number[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } };
}

/** Collects ONNX nodes, initializers and the value name of each graph tensor. */
class Lowering {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly names = new Map<number, string>();
  private readonly used = new Set<string>();
  private readonly weightNames = new Map<string, string>();
  private readonly inputShapes = new Map<string, readonly number[]>();

  constructor(private readonly opset: number) {}

  claim(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX lowering: value name "${name}" is used twice (an input named like a generated value?)`);
    this.used.add(name);
    return name;
  }

  of(t: Tensor): string {
    const n = this.names.get(t.id);
    if (n === undefined) throw new Error(`ONNX lowering: tensor ${t.id} used before it is defined`);
    return n;
  }

  emit(opType: string, name: string, inputs: string[], attribute: Attr[] = [], output = name): string {
    this.nodes.push({ opType, name, input: inputs, output: [this.claim(output)], attribute });
    return output;
  }

  floatInit(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push({ name: this.claim(name), dims: [...dims], dataType: FLOAT, rawData: bytesOf(data) });
    return name;
  }

  int64Init(name: string, values: readonly number[]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name: this.claim(name), dims: [values.length], dataType: INT64, rawData: bytesOf(data) });
    return name;
  }

  scalar(name: string, v: number): string {
    return this.floatInit(name, [], Float32Array.of(v));
  }

  lower(gn: Graph['nodes'][number], weights: WeightSource): string {
    const { node, out } = gn;
    const id = out.id;
    const name = nodeName(id, node);
    switch (node.op) {
      case 'input': {
        // Two input nodes with one name read the same feed, as in the reference runtime.
        const seen = this.inputShapes.get(node.name);
        if (seen) {
          if (seen.join() !== out.shape.join()) throw new Error(`input "${node.name}" declared as [${seen}] and [${out.shape}]`);
          return node.name;
        }
        this.inputShapes.set(node.name, out.shape);
        this.inputs.push(valueInfo(this.claim(node.name), out.shape));
        return node.name;
      }
      case 'weight': {
        const dedupe = `${node.key}\u0000${out.shape.join()}`;
        const known = this.weightNames.get(dedupe);
        if (known) return known;
        const w = weights.get(node.key);
        if (!w) throw new Error(`weight "${node.key}" is missing`);
        if (numel(w.shape) !== numel(out.shape)) throw new Error(`weight "${node.key}": shape [${w.shape}], expected [${out.shape}]`);
        const initName = this.used.has(node.key) ? `${node.key}#${id}` : node.key;
        this.floatInit(initName, out.shape, Float32Array.from(w.data));
        this.weightNames.set(dedupe, initName);
        return initName;
      }
      case 'constant':
        return this.floatInit(`n${id}_${node.label.replace(/[^\w.-]/g, '_')}`, out.shape, Float32Array.from(node.data));
      case 'binary': {
        const a = this.of(node.a);
        const b = this.of(node.b);
        if (node.fn === 'greater') {
          const mask = this.emit('Greater', `${name}_bool`, [a, b]);
          return this.emit('Cast', name, [mask], [int('to', FLOAT)]);
        }
        const op = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' }[node.fn];
        return this.emit(op, name, [a, b]);
      }
      case 'unary': {
        const a = this.of(node.a);
        if (node.fn === 'square') return this.emit('Mul', name, [a, a]);
        const op = { exp: 'Exp', erf: 'Erf', tanh: 'Tanh', sqrt: 'Sqrt', neg: 'Neg', reciprocal: 'Reciprocal', abs: 'Abs', relu: 'Relu' }[node.fn];
        return this.emit(op, name, [a]);
      }
      case 'scale':
        return this.emit('Mul', name, [this.of(node.a), this.scalar(`${name}_k`, node.k)]);
      case 'matmul':
        return this.emit('MatMul', name, [this.of(node.a), this.of(node.b)]);
      case 'reduce': {
        const op = { sum: 'ReduceSum', max: 'ReduceMax', sumSquares: 'ReduceSumSquare' }[node.fn];
        return this.emit(op, name, [this.of(node.a), this.int64Init(`${name}_axes`, [node.axis])], [int('keepdims', 1)]);
      }
      case 'transpose':
        return this.emit('Transpose', name, [this.of(node.a)], [ints('perm', node.perm)]);
      case 'reshape': {
        // allowzero keeps a literal 0 as 0 (ONNX would otherwise copy the input's dimension).
        const attrs = out.shape.includes(0) ? [int('allowzero', 1)] : [];
        return this.emit('Reshape', name, [this.of(node.a), this.int64Init(`${name}_shape`, out.shape)], attrs);
      }
      case 'softmax':
        return this.emit('Softmax', name, [this.of(node.a)], [int('axis', -1)]);
      case 'layerNorm': {
        // LayerNormalization wants scale/bias shaped like the normalized axis; the graph only promises numel.
        const len = out.shape[out.shape.length - 1]!;
        const asVector = (t: Tensor, what: string) =>
          t.shape.length === 1 ? this.of(t) : this.emit('Reshape', `${name}_${what}`, [this.of(t), this.int64Init(`${name}_${what}_shape`, [len])]);
        const inputs = [this.of(node.a), asVector(node.weight, 'weight'), asVector(node.bias, 'bias')];
        return this.emit('LayerNormalization', name, inputs, [int('axis', -1), float('epsilon', node.eps), int('stash_type', 1)]);
      }
      case 'gelu':
        return this.gelu(name, this.of(node.a), node.approximation);
      case 'conv2d': {
        const [kh, kw] = node.w.shape.slice(2) as [number, number];
        const inputs = [this.of(node.x), this.of(node.w)];
        if (node.bias) inputs.push(this.of(node.bias));
        const [ph, pw] = node.pad;
        return this.emit('Conv', name, inputs, [
          ints('kernel_shape', [kh, kw]),
          ints('strides', node.stride),
          ints('pads', [ph, pw, ph, pw]),
          ints('dilations', [1, 1]),
          int('group', node.groups),
        ]);
      }
      case 'slice':
        return this.emit('Slice', name, [
          this.of(node.a),
          this.int64Init(`${name}_starts`, [node.start]),
          this.int64Init(`${name}_ends`, [node.end]),
          this.int64Init(`${name}_axes`, [node.axis]),
        ]);
      case 'concat':
        return this.emit('Concat', name, node.parts.map((p) => this.of(p)), [int('axis', node.axis)]);
    }
  }

  private gelu(name: string, x: string, approximation: 'erf' | 'tanh'): string {
    if (this.opset >= 20) return this.emit('Gelu', name, [x], approximation === 'tanh' ? [str('approximate', 'tanh')] : []);
    // Before opset 20 there is no Gelu: compose 0.5·x·(1 + f(x)) exactly as the reference does.
    let inner: string;
    if (approximation === 'erf') {
      inner = this.emit('Erf', `${name}_erf`, [this.emit('Mul', `${name}_xs`, [x, this.scalar(`${name}_rsqrt2`, Math.SQRT1_2)])]);
    } else {
      const x2 = this.emit('Mul', `${name}_x2`, [x, x]);
      const x3 = this.emit('Mul', `${name}_x3`, [x2, x]);
      const cubic = this.emit('Mul', `${name}_cubic`, [x3, this.scalar(`${name}_c`, 0.044715)]);
      const sum = this.emit('Add', `${name}_sum`, [x, cubic]);
      const arg = this.emit('Mul', `${name}_arg`, [sum, this.scalar(`${name}_s`, Math.sqrt(2 / Math.PI))]);
      inner = this.emit('Tanh', `${name}_tanh`, [arg]);
    }
    const onePlus = this.emit('Add', `${name}_1p`, [inner, this.scalar(`${name}_one`, 1)]);
    const xHalf = this.emit('Mul', `${name}_xh`, [x, this.scalar(`${name}_half`, 0.5)]);
    return this.emit('Mul', name, [xHalf, onePlus]);
  }
}

export interface LoweredModel {
  bytes: Uint8Array;
  /** Graph input names the model actually reads (dead inputs are pruned). */
  inputNames: string[];
  /** The ONNX output name of each requested output, in request order (repeats allowed). */
  outputNames: string[];
}

/** Lowers the part of `graph` that `outputs` need to a serialized ONNX ModelProto. */
export function lowerGraph(graph: Graph, outputs: Tensor[], weights: WeightSource, opts: { opset?: number } = {}): LoweredModel {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (opset < MIN_OPSET) throw new Error(`ONNX lowering needs opset ≥ ${MIN_OPSET} (reductions take axes as an input), got ${opset}`);
  if (outputs.length === 0) throw new Error('ONNX lowering: no outputs requested');
  const L = new Lowering(opset);
  for (const gn of liveNodes(graph, outputs).map((id) => graph.nodes[id]!)) L.names.set(gn.out.id, L.lower(gn, weights));

  const graphOutputs: onnx.IValueInfoProto[] = [];
  const byTensor = new Map<number, string>();
  const outputNames = outputs.map((t, i) => {
    const known = byTensor.get(t.id);
    if (known) return known;
    const gn = graph.nodes[t.id]!;
    let name = L.of(t);
    // An input or initializer cannot double as a graph output, so copy it through an Identity.
    if (gn.node.op === 'input' || gn.node.op === 'weight' || gn.node.op === 'constant') name = L.emit('Identity', `output${i}_n${t.id}`, [name]);
    graphOutputs.push(valueInfo(name, t.shape));
    byTensor.set(t.id, name);
    return name;
  });

  const model: onnx.IModelProto = {
    irVersion: irVersionFor(opset),
    producerName: 'vitlens',
    opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'vitlens', node: L.nodes, initializer: L.initializers, input: L.inputs, output: graphOutputs },
  };
  return {
    bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(),
    inputNames: L.inputs.map((v) => v.name!),
    outputNames,
  };
}

/** The serialized ONNX model for `outputs` (see lowerGraph for the name bookkeeping). */
export function lowerToOnnx(graph: Graph, outputs: Tensor[], weights: WeightSource, opts: { opset?: number } = {}): Uint8Array {
  return lowerGraph(graph, outputs, weights, opts).bytes;
}

/**
 * Throws if a live tensor would not fit one WebGPU storage-buffer binding: ORT 1.30's WebGPU
 * Softmax silently returns wrong rows past that size (RUNTIMES.md §1), so refuse rather than mislead.
 */
export function checkWebGpuTensorSizes(graph: Graph, outputs: readonly Tensor[], maxStorageBufferBindingSize = DEFAULT_MAX_STORAGE_BUFFER_BINDING_SIZE): void {
  for (const { node, out } of liveNodes(graph, outputs).map((id) => graph.nodes[id]!)) {
    const bytes = numel(out.shape) * 4;
    if (bytes > maxStorageBufferBindingSize) {
      const what = node.op === 'input' ? ` "${node.name}"` : node.op === 'weight' ? ` "${node.key}"` : '';
      throw new Error(
        `${nodeName(out.id, node)}${what} output [${out.shape}] is ${bytes} bytes: onnxruntime WebGPU computes wrong results for tensors above ` +
          `maxStorageBufferBindingSize (${maxStorageBufferBindingSize} bytes); tile the work`,
      );
    }
  }
}

export interface OnnxSessionOptions {
  ep: 'cpu' | 'webgpu';
  /** intraOpNumThreads; defaults to os.availableParallelism(). */
  threads?: number;
  /** Profile file prefix: ORT writes `<prefix>_<date>.json` when the session is released. */
  profile?: string;
  /** ORT log severity (0 verbose … 4 fatal); 0 prints node placement. Default 3 (errors). */
  logSeverity?: 0 | 1 | 2 | 3 | 4;
  /** WebGPU only: the adapter's limit that every live tensor must fit (default 128 MiB). */
  maxStorageBufferBindingSize?: number;
  opset?: number;
  /** Where ORT saves the graph it actually runs (after fusions); profile node names refer to it. */
  optimizedModelPath?: string;
}

export interface OnnxOutput {
  shape: number[];
  data: Float32Array;
}

export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: string[],
    readonly outputNames: string[],
    private readonly inputShapes: Map<string, readonly number[]>,
    private readonly profilePrefix: string | undefined,
    private readonly createdAtMs: number,
  ) {}

  static async create(graph: Graph, outputs: Tensor[], weights: WeightSource, opts: OnnxSessionOptions): Promise<OnnxSession> {
    if (opts.ep === 'webgpu') checkWebGpuTensorSizes(graph, outputs, opts.maxStorageBufferBindingSize);
    const lowered = lowerGraph(graph, outputs, weights, opts.opset === undefined ? {} : { opset: opts.opset });
    const createdAtMs = Date.now();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(lowered.bytes, {
        executionProviders: opts.ep === 'webgpu' ? [{ name: 'webgpu' }] : ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? os.availableParallelism(),
        logSeverityLevel: opts.logSeverity ?? 3,
        ...(opts.profile ? { enableProfiling: true, profileFilePrefix: opts.profile } : {}),
        ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
      });
    } catch (e) {
      // ORT never falls back to CPU here, and its message points into its own sources: say what is missing.
      if (opts.ep === 'webgpu' && /Failed to get a WebGPU adapter/.test(String(e))) {
        throw new Error('onnxruntime WebGPU EP found no GPU adapter: it needs a Vulkan driver (a GPU ICD, or Mesa lavapipe for a software one)', { cause: e });
      }
      throw e;
    }
    const inputShapes = new Map(graph.inputs.map((i) => [i.name, i.tensor.shape] as const));
    return new OnnxSession(session, lowered.inputNames, lowered.outputNames, inputShapes, opts.profile, createdAtMs);
  }

  /** Feeds only the inputs the pruned model reads; extra entries are ignored, missing ones throw. */
  async run(inputs: Record<string, Float32Array>): Promise<OnnxOutput[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const data = inputs[name];
      const shape = this.inputShapes.get(name)!;
      if (!data || data.length !== numel(shape)) throw new Error(`input "${name}": expected ${numel(shape)} values, got ${data?.length ?? 'none'}`);
      feeds[name] = new ort.Tensor('float32', data, [...shape]);
    }
    const results = await this.session.run(feeds);
    return this.outputNames.map((name) => {
      const t = results[name];
      if (!t) throw new Error(`ORT returned no output "${name}"`);
      return { shape: [...t.dims], data: t.data as Float32Array };
    });
  }

  /** Releases the native session; returns the profile file ORT wrote, if profiling was on. */
  async release(): Promise<string | undefined> {
    await this.session.release();
    return this.profilePrefix ? findProfileFile(this.profilePrefix, this.createdAtMs) : undefined;
  }
}

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
  float: 4, float16: 2, bfloat16: 2, double: 8, int64: 8, uint64: 8, int32: 4, uint32: 4, int16: 2, uint16: 2, int8: 1, uint8: 1, bool: 1,
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
export function replayTensorLiveness(events: readonly TraceEvent[], model: Uint8Array, provider: string): TensorLiveness | null {
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
    .filter((e) => !lastRun || ((e.ts ?? 0) >= (lastRun.ts ?? 0) && (e.ts ?? 0) <= (lastRun.ts ?? 0) + (lastRun.dur ?? 0)))
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
