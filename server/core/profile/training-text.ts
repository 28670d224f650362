/**
 * The training memory estimate in words: the CLI's breakdown (per stage and per layer), the fits,
 * and the one-line "trains at batch ≤ B" the editor shows. The numbers are written by
 * protocol/format.ts, as every other figure.
 */
import { formatBytes, formatInt, formatParams, REPORT_BYTES, REPORT_MILLIONS } from '../../../protocol/format';
import {
  PRECISION_LABELS,
  PRECISION_SHORT,
  type LargestBatch,
  type LargestResolution,
  type TrainingMemoryEstimate,
  type TrainingMemoryRow,
  type TrainingPrecision,
} from './training-memory';

const bytes = (n: number): string => formatBytes(n, REPORT_BYTES);

/** A GPU memory as the user would write it: "80 GiB", "80 GB", else "74.51 GiB". */
export function memoryLabel(n: number): string {
  if (n % 2 ** 30 === 0) return `${n / 2 ** 30} GiB`;
  if (n % 1e9 === 0) return `${n / 1e9} GB`;
  if (n % 2 ** 20 === 0 && n < 2 ** 30) return `${n / 2 ** 20} MiB`;
  return bytes(n);
}

/** "fp32 + AdamW", "mixed precision + AdamW". */
export function trainingSetup(precision: TrainingPrecision): string {
  return `${PRECISION_SHORT[precision]} + AdamW`;
}

/** The editor's line: "trains at batch ≤ 1103 on 80 GiB at 224 (est., fp32 + AdamW)". */
export function trainsAtLine(b: LargestBatch): string {
  const where = `on ${memoryLabel(b.memoryBytes)} at ${b.resolution}`;
  const est = `(est., ${trainingSetup(b.precision)})`;
  return b.batch > 0
    ? `trains at batch ≤ ${formatInt(b.batch, { group: ',' })} ${where} ${est}`
    : `does not train at batch 1 ${where} ${est}`;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function linear(fixed: number, perSample: number, what = 'batch'): string {
  return `${bytes(fixed)} + ${bytes(perSample)} × ${what}`;
}

function rowTable(rows: TrainingMemoryRow[], batch: number, first: string): string[] {
  const head = [first, 'params', 'weights+grads+AdamW', 'saved: fixed', 'per sample', `at batch ${batch}`];
  const widths = [16, 9, 20, 13, 11, 14];
  const out = [`  ${head.map((h, i) => pad(h, widths[i]!, i > 0)).join(' ')}`];
  for (const r of rows) {
    const cells = [
      r.name,
      formatParams(r.params, REPORT_MILLIONS),
      bytes(r.parameterStateBytes),
      bytes(r.fixedBytes),
      bytes(r.perSampleBytes),
      bytes(r.savedBytes),
    ];
    out.push(`  ${cells.map((c, i) => pad(c, widths[i]!, i > 0)).join(' ')}`);
  }
  return out;
}

/** The CLI's breakdown of one estimate. */
export function trainingMemoryText(e: TrainingMemoryEstimate, o: { layers?: boolean } = {}): string[] {
  const out: string[] = [];
  const perParam = (n: number) => `${formatInt(e.params, { group: ',' })} parameters × ${n} B`;
  out.push(
    `Training memory (estimate, one AdamW step) at ${e.resolution}×${e.resolution}, batch ${e.batch}; ${PRECISION_LABELS[e.precision]}:`,
  );
  const line = (label: string, n: number, note: string) =>
    out.push(`  ${pad(label, 22)} ${pad(bytes(n), 11, true)}  ${note}`);
  line('weights', e.weightBytes, `${perParam(4)} (float32)`);
  if (e.halfWeightBytes) line('half-precision weights', e.halfWeightBytes, `${perParam(2)} (autocast's copy)`);
  line('gradients', e.gradientBytes, `${perParam(4)} (float32)`);
  line('AdamW state', e.optimizerBytes, `${perParam(8)} (exp_avg + exp_avg_sq, float32)`);
  if (e.bufferBytes) line('buffers', e.bufferBytes, 'BatchNorm running statistics');
  const s = e.savedActivations;
  line('saved activations', s.bytes, `= ${linear(s.fixedBytes, s.perSampleBytes)}: forward tensors the backward reads`);
  const p = e.stepPeak;
  const at = `${p.at.phase === 'backward' ? 'in the backward of' : 'in the forward of'} ${p.at.layer}`;
  line(
    'peak during the step',
    p.bytes,
    `saved activations + gradients so far + transients, ${at}; = ${linear(p.fixedBytes, p.perSampleBytes)} from batch ${p.linearFromBatch}`,
  );
  line('total', e.total.bytes, 'weights + buffers + AdamW state + the peak during the step');
  out.push(
    `  Per sample: ${bytes(e.total.perSampleBytes)}; fixed: ${bytes(e.total.fixedBytes)} (from batch ${e.total.linearFromBatch}).`,
  );
  out.push('');
  out.push(...rowTable(e.stages, e.batch, 'stage'));
  if (o.layers !== false) {
    out.push('');
    out.push(...rowTable(e.layers, e.batch, 'layer'));
  }
  out.push(`  ${e.note}`);
  return out;
}

/** "Largest batch on 80 GiB at 224 (est., fp32 + AdamW): 1103 (total 79.97 GiB)". */
export function largestBatchText(b: LargestBatch): string {
  const head = `Largest batch on ${memoryLabel(b.memoryBytes)} at ${b.resolution}×${b.resolution} (est., ${trainingSetup(b.precision)})`;
  return b.batch > 0
    ? `${head}: ${formatInt(b.batch, { group: ',' })} (total ${bytes(b.totalBytes!)})`
    : `${head}: none — batch 1 does not fit`;
}

/** "Largest resolution at batch 64 on 80 GiB (est., …): 640 (multiples of 32; total …)". */
export function largestResolutionText(r: LargestResolution): string {
  const head = `Largest resolution at batch ${r.batch} on ${memoryLabel(r.memoryBytes)} (est., ${trainingSetup(r.precision)})`;
  const rejected = r.probes.filter((p) => p.error);
  const why = rejected.length
    ? `; not buildable: ${rejected.map((p) => `${p.resolution} (${p.error})`).join(', ')}`
    : '';
  return r.resolution !== null
    ? `${head}: ${r.resolution}×${r.resolution} (searched multiples of ${r.stride}; total ${bytes(r.totalBytes!)}${why})`
    : `${head}: none of the multiples of ${r.stride} tried fits${why}`;
}
