/**
 * The SOFT paper's Table 2 memory column beside ViT Lens's training memory estimate
 * (server/core/profile/training-memory.ts: one AdamW step of the training graph — weights,
 * gradients, AdamW state, the step's liveness peak) for the five backbones of
 * fixtures/configs/paper/table2_*.yaml, at the paper's batches, in float32 and in mixed precision.
 * Writes the `table2-memory` block of docs/PAPER.md; test/paper.test.ts regenerates it in memory
 * and checks the committed one.
 *
 *   npm run paper:table2-memory
 */
import { formatBytes, formatInt, REPORT_BYTES } from '../../protocol/format';
import {
  largestBatch,
  trainingFit,
  trainingMemoryAt,
  type TrainingFit,
  type TrainingPrecision,
} from '../../server/core/profile/training-memory';
import { markdownTable, updatePaperDoc } from './doc';
import { table2ConfigPath, table2Rows, TABLE2_ROWS } from './table2';

/** 8 GPUs: the official Tiny config's 128 per process × 8 = 1024 (docs/MATHS.md §3; see table2.ts). */
const GPUS = 8;
/** A 32 GB V100: 32 GiB nominal (nvidia-smi shows 32,510 MiB of it). */
const V100_BYTES = 32 * 2 ** 30;
const GiB = 2 ** 30;

export interface Table2MemoryRow {
  method: string;
  file: string;
  publishedGB: number;
  paperBatch: number;
  perGpuBatch: number;
  fits: Record<TrainingPrecision, TrainingFit>;
}

/** The five rows the paper has (Linformer itself is not one of them). */
export function table2MemoryRows(): Table2MemoryRow[] {
  const specs = new Map(table2Rows().map((r) => [r.row.file, r.spec]));
  return TABLE2_ROWS.filter((r) => r.published).map((r) => {
    const spec = specs.get(r.file)!;
    const paperBatch = r.published!.memoryBatch;
    return {
      method: r.method,
      file: r.file,
      publishedGB: r.published!.memoryGB,
      paperBatch,
      perGpuBatch: paperBatch / GPUS,
      fits: {
        fp32: trainingFit(spec, { resolution: 224, precision: 'fp32' }),
        mixed: trainingFit(spec, { resolution: 224, precision: 'mixed' }),
      },
    };
  });
}

const gib = (bytes: number): string => (bytes / GiB).toFixed(1);

/** The generated `table2-memory` block of docs/PAPER.md. */
export function table2MemoryMarkdown(rows: Table2MemoryRow[] = table2MemoryRows()): string {
  const head = [
    'row (paper)',
    'config',
    'paper: GB at batch',
    'ours fp32: one GPU’s share',
    'mixed',
    'ours fp32: whole batch on one device',
    'mixed',
    'per image fp32 / mixed',
    'fixed fp32',
    'largest batch on a 32 GiB V100: fp32',
    'mixed',
  ];
  const body = rows.map((r) => {
    const at = (p: TrainingPrecision, batch: number) => trainingMemoryAt(r.fits[p], batch).total.bytes;
    const dagger = r.paperBatch === 256 ? '†' : '';
    const fp32 = r.fits.fp32;
    return [
      r.method,
      `\`${table2ConfigPath(r.file).split('/').pop()}\``,
      `${r.publishedGB.toFixed(1)} GB at ${r.paperBatch}${dagger}`,
      `${gib(at('fp32', r.perGpuBatch))} at ${r.perGpuBatch}`,
      gib(at('mixed', r.perGpuBatch)),
      `${gib(at('fp32', r.paperBatch))} at ${r.paperBatch}`,
      gib(at('mixed', r.paperBatch)),
      `${formatBytes(fp32.asymptote.perSampleBytes, REPORT_BYTES)} / ${formatBytes(r.fits.mixed.asymptote.perSampleBytes, REPORT_BYTES)}`,
      formatBytes(fp32.residentBytes + fp32.asymptote.fixedBytes, REPORT_BYTES),
      formatInt(largestBatch(fp32, V100_BYTES).batch, { group: ',' }),
      formatInt(largestBatch(r.fits.mixed, V100_BYTES).batch, { group: ',' }),
    ];
  });
  const numeric = head.map((_, i) => i >= 2);
  const row = (file: string) => rows.find((r) => r.file === file)!;
  const share = (r: Table2MemoryRow, p: TrainingPrecision) =>
    trainingMemoryAt(r.fits[p], r.perGpuBatch).total.bytes / GiB;
  const soft = row('soft');
  const transformer = row('transformer');
  const ratio = (r: Table2MemoryRow, p: TrainingPrecision) => (r.publishedGB / share(r, p)).toFixed(1);
  const order = (p: TrainingPrecision) =>
    [...rows]
      .sort((a, b) => share(b, p) - share(a, p))
      .map((r) => r.method.replace(/ \(.*\)$/, ''))
      .join(' > ');
  const paperOrder = [...rows]
    .sort((a, b) => b.publishedGB - a.publishedGB)
    .map((r) => r.method.replace(/ \(.*\)$/, ''))
    .join(' > ');
  const tBatch = largestBatch(transformer.fits.fp32, V100_BYTES).batch;
  const over = (p: TrainingPrecision) =>
    rows.filter((r) => trainingMemoryAt(r.fits[p], r.paperBatch).total.bytes > V100_BYTES).length;
  return [
    markdownTable(head, body, numeric),
    '',
    `Ours in GiB (2³⁰ bytes), estimates at 224×224: weights, gradients and AdamW state (16 bytes per parameter; mixed precision adds a 2-byte copy of the weights) + buffers + the liveness peak of one training step's graph (saved activations, gradients made so far, transients); "one GPU's share" is ${GPUS} GPUs' split of the paper's batch (128, † 32). "Per image" and "fixed" are the line the estimate follows from a few images on (fp32). "Largest batch" is per GPU.`,
    '',
    `Read as one GPU's share in float32, the paper's figures are ${ratio(soft, 'fp32')}× ours for SOFT and ${ratio(transformer, 'fp32')}× for the Transformer (mixed precision: ${ratio(soft, 'mixed')}× and ${ratio(transformer, 'mixed')}×). Read as the whole batch on one device, ours exceed a 32 GiB V100 for ${over('fp32')} of the ${rows.length} rows in float32 and ${over('mixed')} in mixed precision, so that reading is unlikely to be what was measured. Ordered by our one-GPU estimate: ${order('fp32')}; the paper's order: ${paperOrder}. Our Transformer fits ${formatInt(tBatch, { group: ',' })} images per 32 GiB in float32, where the paper's † says 256 in all (32 per GPU) was "the maximal number possible".`,
  ].join('\n');
}

if (require.main === module) {
  updatePaperDoc('GENERATED', 'table2-memory', table2MemoryMarkdown());
  console.log('docs/PAPER.md: Table 2 training memory written');
}
