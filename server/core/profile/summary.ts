/** ModelProfile → the plain summary object shared by LSP, CLI JSON and the webview. */
import type { LayerSummary, ModelProfileSummary, OpSummary } from '../../../protocol/results';
import type { ModelSpec } from '../models/spec';
import { CONVENTION_CATEGORIES, README_CONVENTION, README_CONVENTION_NOTE } from './categories';
import { CONVENTIONS, type Convention } from '../../../protocol/categories';
import { conventionRows } from './format';
import type { ModelProfile } from './profile';
import type { OpRecord } from './recorder';

const BYTES = 4; // float32

/** The layer an op belongs to: the state_dict prefix up to the block index (`block1.0`, `blocks.3`) or the top module. */
export function layerOf(path: string): string {
  const parts = path.split('.');
  return parts.length > 1 && /^\d+$/.test(parts[1]!) ? `${parts[0]}.${parts[1]}` : parts[0]!;
}

function layers(ops: OpRecord[]): LayerSummary[] {
  type Acc = LayerSummary & { macs: Map<string, number> };
  const out: Acc[] = [];
  const byName = new Map<string, Acc>();
  for (const op of ops) {
    const name = layerOf(op.path);
    let l = byName.get(name);
    if (!l) {
      l = {
        name,
        group: op.group,
        stage: op.stage,
        block: op.block,
        params: 0,
        macsByConvention: {} as Record<Convention, number>,
        activationBytes: 0,
        peakActivationBytesEstimate: 0,
        macs: new Map(),
      };
      byName.set(name, l);
      out.push(l);
    }
    l.params += op.params;
    if (op.category) l.macs.set(op.category, (l.macs.get(op.category) ?? 0) + op.macs);
    l.activationBytes += op.outputElems * BYTES;
    l.peakActivationBytesEstimate = Math.max(l.peakActivationBytesEstimate, op.liveElems * BYTES);
  }
  return out.map(({ macs, ...l }) => ({
    ...l,
    macsByConvention: Object.fromEntries(
      CONVENTIONS.map((c) => [c, CONVENTION_CATEGORIES[c].reduce((s, k) => s + (macs.get(k) ?? 0), 0)]),
    ) as Record<Convention, number>,
  }));
}

function opSummaries(ops: OpRecord[]): OpSummary[] {
  return ops.map((op) => ({
    path: op.path,
    layer: layerOf(op.path),
    kind: op.kind,
    label: op.label,
    category: op.category,
    macs: op.macs,
    params: op.params,
    elementwise: op.elementwise,
    outputBytes: op.outputElems * BYTES,
  }));
}

export function summarize(spec: ModelSpec, p: ModelProfile, options: { ops?: boolean } = {}): ModelProfileSummary {
  return {
    model: spec.name,
    title: spec.title,
    notes: spec.notes,
    resolution: p.resolution,
    batch: p.batch,
    unit: 'MACs',
    params: p.params,
    macsByConvention: p.macsByConvention,
    conventions: conventionRows(p).map((r) => ({ ...r, flops: 2 * r.macs })),
    readmeConvention: README_CONVENTION,
    readmeConventionNote: README_CONVENTION_NOTE,
    macsByCategory: p.macsByCategory,
    macsByKind: p.macsByKind,
    elementwise: p.elementwise,
    newton: {
      variant: spec.newton.variant,
      iterations: spec.newton.maxIter,
      source: spec.newton.variantSource,
      macsAreLowerBound: p.newtonIsLowerBound,
    },
    kernelMethod: spec.kernelMethod,
    memory: {
      ...p.memory,
      note: 'Analytic inference estimate (float32 weights + buffers + the largest set of simultaneously live activations); not a measurement.',
    },
    stages: p.stages.map((s) => ({
      group: s.group,
      stage: s.stage,
      attention: s.attention,
      grid: s.grid,
      tokens: s.tokens,
      landmarks: s.landmarks,
      dim: s.dim,
      heads: s.heads,
      depth: s.depth,
      params: s.params,
      macsByConvention: s.macsByConvention,
      macsByCategory: s.macsByCategory,
      macsByKind: s.macsByKind,
      elementwise: s.elementwise,
      peakActivationBytesEstimate: s.peakActivationBytes,
    })),
    layers: layers(p.ops),
    ...(options.ops ? { ops: opSummaries(p.ops) } : {}),
    published: spec.published,
  };
}
