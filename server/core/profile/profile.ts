/**
 * Profile: pure arithmetic over a ModelSpec at one input size and batch —
 * parameters, MACs per category/convention, element-wise counts, activation
 * bytes and an inference peak-memory estimate, per op, block, stage and model.
 */
import { stageGridShapes, stageLandmarks, usesNewton } from '../models/build';
import type { AttentionKind, ModelSpec } from '../models/spec';
import { CONVENTION_CATEGORIES } from './categories';
import {
  CONVENTIONS,
  ELEMENTWISE_KINDS,
  MAC_CATEGORIES,
  OP_KINDS,
  type Convention,
  type ElementwiseKind,
  type MacCategory,
  type OpKind,
} from '../../../protocol/categories';
import type { OpRecord, TensorEntry } from './recorder';
import { walkModel } from './walk';
import { numel } from '../shape';

const BYTES_PER_ELEMENT = 4; // float32 inference

export interface Totals {
  params: number;
  macsByCategory: Record<MacCategory, number>;
  macsByKind: Record<OpKind, number>;
  macsByConvention: Record<Convention, number>;
  elementwise: Record<ElementwiseKind, number>;
}

export interface StageProfile extends Totals {
  /** `stage1` … or `top_level` / `head`. */
  group: string;
  stage: number;
  attention: AttentionKind | null;
  /** Token grid rows (and columns: `grid` × `gridW`; equal for a square input). */
  grid: number;
  gridW: number;
  tokens: number;
  landmarks: number | null;
  dim: number;
  heads: number;
  depth: number;
  /** Largest live-activation set inside the stage, bytes (estimate). */
  peakActivationBytes: number;
}

export interface MemoryEstimate {
  /** Everything here is an analytic estimate, float32, not a measurement. */
  kind: 'estimate';
  parameterBytes: number;
  bufferBytes: number;
  peakActivationBytes: number;
  peakTotalBytes: number;
  /** Op at which the activation peak occurs. */
  peakAt: string;
}

export interface ModelProfile extends Totals {
  model: string;
  /** Input height; `width` is the same for a square input. */
  resolution: number;
  width: number;
  batch: number;
  stages: StageProfile[];
  ops: OpRecord[];
  tensors: TensorEntry[];
  memory: MemoryEstimate;
  /** Newton MACs are a lower bound when variant B's data-dependent alpha halvings are in play. */
  newtonIsLowerBound: boolean;
}

/** Zeroed records built once; `emptyTotals` copies them (a spread keeps key order and is far cheaper than fromEntries per group). */
const ZERO_CATEGORIES = Object.freeze(
  Object.fromEntries(MAC_CATEGORIES.map((c) => [c, 0])) as Record<MacCategory, number>,
);
const ZERO_KINDS = Object.freeze(Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>);
const ZERO_CONVENTIONS = Object.freeze(
  Object.fromEntries(CONVENTIONS.map((c) => [c, 0])) as Record<Convention, number>,
);
const ZERO_ELEMENTWISE = Object.freeze(
  Object.fromEntries(ELEMENTWISE_KINDS.map((k) => [k, 0])) as Record<ElementwiseKind, number>,
);

function emptyTotals(): Totals {
  return {
    params: 0,
    macsByCategory: { ...ZERO_CATEGORIES },
    macsByKind: { ...ZERO_KINDS },
    macsByConvention: { ...ZERO_CONVENTIONS },
    elementwise: { ...ZERO_ELEMENTWISE },
  };
}

function addOp(t: Totals, op: OpRecord): void {
  t.params += op.params;
  if (op.category) t.macsByCategory[op.category] += op.macs;
  t.macsByKind[op.kind] += op.macs;
  // Hot loop (every op, twice): for…in allocates nothing, unlike Object.entries.
  const ew = op.elementwise;
  for (const k in ew) t.elementwise[k as ElementwiseKind] += ew[k as ElementwiseKind]!;
}

function finishConventions(t: Totals): void {
  for (const c of CONVENTIONS) {
    t.macsByConvention[c] = CONVENTION_CATEGORIES[c].reduce((sum, cat) => sum + t.macsByCategory[cat], 0);
  }
}

/** The profile at a resolution×resolution input, or resolution×width (rows × columns) when `width` is given. */
export function profileModel(model: ModelSpec, resolution: number, batch = 1, width = resolution): ModelProfile {
  const rec = walkModel(model, resolution, batch, width);
  const grids = stageGridShapes(model, resolution, width);
  const total = emptyTotals();
  const groups = new Map<string, Totals & { peak: number }>();
  let peak = 0;
  let peakAt = '';
  const groupTotals = (name: string) => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { ...emptyTotals(), peak: 0 }));
    return g;
  };
  // Ops arrive in long runs of one group: keep the current one instead of a Map lookup per op.
  let groupName = '';
  let g: ReturnType<typeof groupTotals> | undefined;
  for (const op of rec.ops) {
    addOp(total, op);
    if (g === undefined || op.group !== groupName) g = groupTotals((groupName = op.group));
    addOp(g, op);
    g.peak = Math.max(g.peak, op.liveElems * BYTES_PER_ELEMENT);
    if (op.liveElems > peak) {
      peak = op.liveElems;
      peakAt = op.path;
    }
  }
  finishConventions(total);
  // Parameters are authoritative from the state_dict tensors (sum(p.numel()) in the official code).
  // One pass over ~1,000 tensors instead of two filtered copies; sums run in the same order.
  let parameterCount = 0;
  let bufferBytes = 0;
  for (const t of rec.tensors) {
    if (t.role === 'parameter') parameterCount += numel(t.shape);
    else bufferBytes += numel(t.shape) * (t.dtype === 'int64' ? 8 : 4);
  }
  total.params = parameterCount;

  const stages: StageProfile[] = [];
  for (const [group, g] of groups) {
    finishConventions(g);
    const stage = model.stages.find((s) => `stage${s.index}` === group);
    const grid = stage ? grids[stage.index - 1]! : { h: 0, w: 0 };
    stages.push({
      ...g,
      group,
      stage: stage?.index ?? 0,
      attention: stage?.attention ?? null,
      grid: grid.h,
      gridW: grid.w,
      tokens: stage ? grid.h * grid.w + (stage.clsToken ? 1 : 0) : 0,
      landmarks: stage && usesNewton(stage) ? stageLandmarks(stage, grid.h, grid.w) : null,
      dim: stage?.dim ?? 0,
      heads: stage?.heads ?? 0,
      depth: stage?.depth ?? 0,
      peakActivationBytes: g.peak,
    });
  }
  const order = (s: StageProfile) => (s.group === 'top_level' ? 0 : s.group === 'head' ? 1e9 : s.stage);
  stages.sort((a, b) => order(a) - order(b));

  const parameterBytes = parameterCount * BYTES_PER_ELEMENT;
  const peakActivationBytes = peak * BYTES_PER_ELEMENT;
  return {
    ...total,
    model: model.name,
    resolution,
    width,
    batch,
    stages,
    ops: rec.ops,
    tensors: rec.tensors,
    memory: {
      kind: 'estimate',
      parameterBytes,
      bufferBytes,
      peakActivationBytes,
      peakTotalBytes: parameterBytes + bufferBytes + peakActivationBytes,
      peakAt,
    },
    newtonIsLowerBound: model.stages.some(
      (s) => s.attention === 'soft_norm' || (s.attention === 'soft' && model.newton.variant === 'B'),
    ),
  };
}
