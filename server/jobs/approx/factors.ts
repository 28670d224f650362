/**
 * Each approximation's factors on a stage's real activations, from the engine's own definitions:
 * the attention's graph (attention/*.ts) is built on the stage's attention input x with the stage's
 * projections, and its probe's factors (attention/probe.ts `AttentionFactors`) are evaluated on the
 * float64 reference runtime — K1, K2 and the Newton iterates SOFT runs; Nyströmformer's F, A, B and
 * its Z; Performer's φ(Q), φ(K) and D; Linformer's attention rows P and F. No attention's maths is
 * written here a second time: error.ts only multiplies the factors out against the exact attention.
 *
 * Every other attention sees the stage's own q, k and v: its graph reads the stage's own projection
 * weights under its own keys (`${prefix}.q`, `${prefix}.kv`, the layout softmax, Nyströmformer,
 * Performer and Linformer share). A SOFT stage has no key projection (its keys are its queries), so
 * there `.q` is SOFT's W_q and `.kv` is [W_q; W_v]: the other definitions then compute SOFT's Qs and
 * V, bit for bit, as their q, k and v.
 *
 * An iteration swept over its step count (SOFT's Newton–Raphson, Nyströmformer's inverse) is built
 * once, for the largest count, and each count's iterate taken from the probe's `iterates` (the
 * definitions build the iteration step by step and hand back every iterate, so iterate T of the
 * longest chain is the whole result of a T-step run; test/approx.test.ts checks it against runs of T steps).
 */
import { Graph, type Tensor } from '../../core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../../core/engine/lowerings/reference';
import { randomWeights } from '../../core/engine/weights';
import { linformerAttention } from '../../core/engine/attention/linformer';
import { averagePool, nystromAttention } from '../../core/engine/attention/nystrom';
import { performerAttention } from '../../core/engine/attention/performer';
import { symmetricNormaliseGraph } from '../../core/engine/attention/pinv';
import type { AttentionFactors, AttentionProbe } from '../../core/engine/attention/probe';
import { softLayer, type PreparedModel, type StageOperands } from './activations';

/** A float64 tensor of the reference runtime, [heads, rows, cols] flattened (B = 1 dropped). */
type Heads = Float64Array;

const f64 = (data: Float32Array | Float64Array): Float64Array =>
  data instanceof Float64Array ? data : Float64Array.from(data);

function run(g: Graph, inputs: Record<string, ArrayLike<number>>, weights: WeightSource, outputs: Tensor[]): Heads[] {
  return new ReferenceRuntime('float64').run(g, inputs, weights, outputs).map((t) => f64(t.data));
}

function factorsOf<K extends AttentionFactors['kind']>(
  probe: AttentionProbe,
  kind: K,
): Extract<AttentionFactors, { kind: K }> {
  const f = probe.factors;
  if (f?.kind !== kind) throw new Error(`approx: the ${kind} attention gave no factors to its probe`);
  return f as Extract<AttentionFactors, { kind: K }>;
}

const SOFT_KINDS = new Set(['soft', 'soft_norm']);

/**
 * The stage's own projection weights under the keys the other definitions read (file comment):
 * `.q` and `.kv`, SOFT's W_q and [W_q; W_v] on a SOFT stage. Random ones are drawn per key and
 * shape, as the model draws them.
 */
function projectionWeights(p: PreparedModel, ops: StageOperands): WeightSource {
  const prefix = ops.prefix!;
  const D = ops.stage.dim;
  const soft = SOFT_KINDS.has(ops.stage.attention);
  const [q, kv] = soft ? ['W_q', 'W_v'] : ['q', 'kv'];
  const keys = new Graph();
  for (const [name, width] of [
    [q, D],
    [kv, soft ? D : 2 * D],
  ] as const) {
    keys.weight(`${prefix}.${name}.weight`, [width, D]);
    keys.weight(`${prefix}.${name}.bias`, [width]);
  }
  const base = p.weights ?? randomWeights(keys, p.seed);
  const get = (key: string) => {
    const w = base.get(key);
    if (!w) throw new Error(`approx: weight "${key}" is missing`);
    return w;
  };
  const stacked = (leaf: string) => {
    const [wq, wv] = [get(`${prefix}.W_q.${leaf}`), get(`${prefix}.W_v.${leaf}`)];
    const data = new Float64Array(wq.data.length + wv.data.length);
    data.set(wq.data);
    data.set(wv.data, wq.data.length);
    return { shape: [2 * wq.shape[0]!, ...wq.shape.slice(1)], data };
  };
  const own = new Map(
    ['weight', 'bias'].flatMap((leaf) => [
      [`${prefix}.q.${leaf}`, get(`${prefix}.${q}.${leaf}`)],
      [`${prefix}.kv.${leaf}`, soft ? stacked(leaf) : get(`${prefix}.kv.${leaf}`)],
    ]),
  );
  return { get: (key) => own.get(key) };
}

/** Per stage: its input's projections by key path, each computed once (StageGraph). */
const projectionCache = new WeakMap<StageOperands, Map<string, Float64Array>>();

/**
 * A graph for another attention definition on the stage's input x [1, N, D]. Every layer built on
 * it projects x by the same weights (`${prefix}.q`, `${prefix}.kv`), so a projection of x enters
 * as an input holding x·Wᵀ + b, computed once per stage by the engine's own `linear` on the
 * reference runtime, instead of once per graph: the numbers are those the graph would compute.
 */
class StageGraph extends Graph {
  readonly x: Tensor;
  private readonly projections = new Map<string, { inF: number; outF: number; bias: boolean }>();

  constructor(
    private readonly p: PreparedModel,
    private readonly ops: StageOperands,
  ) {
    super();
    if (!ops.input || !ops.prefix) throw new Error(`approx: stage ${ops.stage.index} gave no attention input`);
    this.x = this.input('x', [1, ops.tokens, ops.stage.dim]);
  }

  override linear(x: Tensor, prefix: string, inF: number, outF: number, bias = true): Tensor {
    if (x !== this.x) return super.linear(x, prefix, inF, outF, bias);
    this.projections.set(prefix, { inF, outF, bias });
    return this.input(`linear:${prefix}`, [...x.shape.slice(0, -1), outF]);
  }

  /** The tensors of `outputs`, float64, with `extra` weights (a Linformer's E and F). */
  run(outputs: Tensor[], extra = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>()): Heads[] {
    const { p, ops } = this;
    let cache = projectionCache.get(ops);
    if (!cache) projectionCache.set(ops, (cache = new Map()));
    const inputs: Record<string, ArrayLike<number>> = { x: ops.input! };
    for (const [prefix, { inF, outF, bias }] of this.projections) {
      let value = cache.get(prefix);
      if (!value) {
        const g = new Graph();
        const y = g.linear(g.input('x', this.x.shape), prefix, inF, outF, bias);
        [value] = run(g, { x: ops.input! }, projectionWeights(p, ops), [y]);
        cache.set(prefix, value!);
      }
      inputs[`linear:${prefix}`] = value!;
    }
    return run(this, inputs, { get: (key) => extra.get(key) }, outputs);
  }
}

/** SOFT at landmark stride r: K1 [heads, N, m], K2 [heads, m, m] and the inverse it multiplies by after each of `iterations` Newton steps. */
export interface SoftFactors {
  m: number;
  k1: Heads;
  k2: Heads;
  /** Per count of `iterations`: [heads, m, m]; SOFT-Norm's D^-½·V·D^-½ where the stage runs it. */
  inverses: Heads[];
}

/** soft.ts's own layer at stride r (activations.ts softLayer), Newton iterated up to the largest count. Null when r leaves no landmark. */
export function softFactors(
  p: PreparedModel,
  ops: StageOperands,
  r: number,
  iterations: readonly number[],
): SoftFactors | null {
  const layer = softLayer(p, ops, r, Math.max(0, ...iterations));
  if (!layer) return null;
  const { g, probe } = layer;
  const f = factorsOf(probe, 'soft');
  const chain = f.iterates;
  const normalised = f.inverse !== f.newton;
  const inverses = iterations.map((T) => (normalised ? symmetricNormaliseGraph(g, f.k2, chain[T]!) : chain[T]!));
  const [k1, k2, ...runs] = run(g, layer.inputs, layer.weights, [f.k1, f.k2, ...inverses]);
  return { m: f.k2.shape[3]!, k1: k1!, k2: k2!, inverses: runs };
}

/** Nyströmformer at pooling stride r: F [heads, N, m], A [heads, m, m], B [heads, m, N] and Z after each of `iterations` steps. */
export interface NystromFactors {
  m: number;
  f: Heads;
  a: Heads;
  b: Heads;
  z: Heads[];
}

/** nystrom.ts's own layer (no conv skip) on the stage's q, k, its inverse iterated up to the largest count. */
export function nystromFactors(
  p: PreparedModel,
  ops: StageOperands,
  r: number,
  iterations: readonly number[],
): NystromFactors {
  const g = new StageGraph(p, ops);
  const { stage, grid } = ops;
  const probe: AttentionProbe = { query: 0 };
  const steps = Math.max(0, ...iterations);
  nystromAttention(
    g,
    g.x,
    ops.prefix!,
    {
      batch: 1,
      gridH: grid.h,
      gridW: grid.w,
      dim: stage.dim,
      heads: stage.heads,
      ratio: r,
      iterations: steps,
      conv: { kind: 'none' },
    },
    probe,
  );
  const f = factorsOf(probe, 'nystrom');
  const chain = f.iterates;
  const [F, A, B, ...z] = g.run([f.f, f.a, f.b, ...iterations.map((T) => chain[T]!)]);
  return { m: f.a.shape[3]!, f: F!, a: A!, b: B!, z };
}

/** Performer with m features from `seed`: its factors D⁻¹φ(Q) and φ(K), [heads, N, m] each. */
export function performerFactors(
  p: PreparedModel,
  ops: StageOperands,
  features: number,
  seed: number,
): { left: Heads; right: Heads } {
  const g = new StageGraph(p, ops);
  const { stage } = ops;
  const probe: AttentionProbe = { query: 0 };
  performerAttention(
    g,
    g.x,
    ops.prefix!,
    { batch: 1, tokens: ops.tokens, dim: stage.dim, heads: stage.heads, features, seed },
    probe,
  );
  const f = factorsOf(probe, 'performer');
  const [left, right] = g.run([g.mul(f.phiQ, f.dInv), f.phiK]);
  return { left: left!, right: right! };
}

/** Linformer with projected length k and the given E and F ([k, N] each): its attention rows P [heads, N, k] and F. */
export function linformerFactors(
  p: PreparedModel,
  ops: StageOperands,
  k: number,
  projections: { e: Float64Array; f: Float64Array },
): { weights: Heads; f: Float64Array } {
  const g = new StageGraph(p, ops);
  const { stage } = ops;
  const prefix = ops.prefix!;
  const probe: AttentionProbe = { query: 0 };
  linformerAttention(g, g.x, prefix, { batch: 1, tokens: ops.tokens, dim: stage.dim, heads: stage.heads, k }, probe);
  const f = factorsOf(probe, 'linformer');
  const extra = new Map<string, { shape: readonly number[]; data: ArrayLike<number> }>([
    [`${prefix}.E`, { shape: [k, ops.tokens], data: projections.e }],
    [`${prefix}.F`, { shape: [k, ops.tokens], data: projections.f }],
  ]);
  const [weights, F] = g.run([f.weights, f.f], extra);
  return { weights: weights!, f: F! };
}

/**
 * The parameter-free spatial reduction: softmax attention over the r×r mean-pooled keys and values
 * (nystrom.ts's pooling), the stage's scaled q and k as they are: its output [heads, N, d].
 */
export function meanPoolReduction(ops: StageOperands, r: number): Heads {
  const { grid, stage, tokens: n, headDim: d } = ops;
  const H = stage.heads;
  const g = new Graph();
  const [q, k, v] = ['q', 'k', 'v'].map((name) => g.input(name, [1, H, n, d]));
  const keys = averagePool(g, k!, 1, H, grid.h, grid.w, r);
  const values = averagePool(g, v!, 1, H, grid.h, grid.w, r);
  // softmax(q·k̃ᵀ) for q, k̃ scaled by d^-¼ each: softmax attention's weights over the pooled keys.
  const weights = g.softmax(g.matmul(q!, g.transposeLast2(keys)));
  const [out] = run(g, { q: ops.q, k: ops.k, v: ops.v }, { get: () => undefined }, [g.matmul(weights, values)]);
  return out!;
}
