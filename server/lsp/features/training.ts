/**
 * The training-memory fact of a config for the `model` hover and the summary CodeLens, when the
 * user has set `vitlens.gpuMemory`: "trains at batch ≤ B on 80 GiB at 224 (est., fp32 + AdamW)".
 * The fit itself is computed off the request path (lsp/training-fits.ts); this only words it.
 */
import { formatBytes, REPORT_BYTES } from '../../../protocol/format';
import { parseMemorySize, type TrainingPrecision } from '../../core/profile/training-memory';
import { trainsAtLine } from '../../core/profile/training-text';
import type { AnalyzedDocument } from '../documents';
import type { FitRequest, FitState } from '../training-fits';

export type TrainingFact =
  | { kind: 'invalid'; setting: string; message: string }
  | { kind: 'state'; memoryBytes: number; resolution: number; fit: FitState };

/** Null when the setting is unset or the config has no model. */
export function trainingFact(
  doc: AnalyzedDocument,
  gpuMemory: string | null,
  fits: (req: FitRequest) => FitState,
  precision: TrainingPrecision = 'fp32',
): TrainingFact | null {
  const spec = doc.analysis.spec;
  if (!gpuMemory || !spec) return null;
  let memoryBytes: number;
  try {
    memoryBytes = parseMemorySize(gpuMemory);
  } catch (e) {
    return { kind: 'invalid', setting: gpuMemory, message: (e as Error).message };
  }
  const resolution = spec.resolutions[0]!;
  return { kind: 'state', memoryBytes, resolution, fit: fits({ spec, resolution, memoryBytes, precision }) };
}

/** The CodeLens suffix: only a finished fit (a pending one appears when the lenses refresh). */
export function trainingLensText(f: TrainingFact | null): string | null {
  return f?.kind === 'state' && f.fit.state === 'ready' ? trainsAtLine(f.fit.result.largest) : null;
}

/** The hover paragraph. */
export function trainingMarkdown(f: TrainingFact | null): string | null {
  if (!f) return null;
  if (f.kind === 'invalid') return `Training memory: the setting \`vitlens.gpuMemory\` ${f.message}`;
  const fit = f.fit;
  if (fit.state === 'pending')
    return `Training memory (\`vitlens.gpuMemory\`): estimating the largest batch at ${f.resolution}… (building the training graph; hover again in a moment).`;
  if (fit.state === 'failed') return `Training memory: no estimate for this model (${fit.message}).`;
  const { largest, total } = fit.result;
  const b = (n: number) => formatBytes(n, REPORT_BYTES);
  return (
    `**Training memory:** ${trainsAtLine(largest)}. ` +
    `${b(total.perSampleBytes)} per image + ${b(total.fixedBytes)} fixed (weights, AdamW state, the gradients in flight), linear from batch ${total.fromBatch} — ` +
    'an analytic estimate from the training graph, not a measurement; `vitlens profile <config> --train` breaks it down per layer.'
  );
}
