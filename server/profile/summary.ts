/** ModelProfile → the plain summary object shared by LSP, CLI JSON and the webview. */
import type { ModelProfileSummary } from '../../protocol/results';
import type { ModelSpec } from '../models/spec';
import { README_CONVENTION, README_CONVENTION_NOTE } from './categories';
import { conventionRows } from './format';
import type { ModelProfile } from './profile';

export function summarize(spec: ModelSpec, p: ModelProfile): ModelProfileSummary {
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
    newton: { variant: spec.newton.variant, iterations: spec.newton.maxIter, source: spec.newton.variantSource, macsAreLowerBound: p.newtonIsLowerBound },
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
    published: spec.published,
  };
}
