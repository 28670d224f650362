/**
 * `vitlens profile`: a config's exact parameters, MACs per op category and counting convention,
 * element-wise counts and memory estimate, per stage — as a table, as JSON, or as the HTML report.
 */
import { parseArgs } from 'node:util';
import { CONVENTIONS } from '../../../protocol/categories';
import {
  formatBytes,
  formatFlops,
  formatInt,
  formatMacs,
  formatParams,
  GIGA_COLUMN,
  REPORT_BYTES,
  REPORT_MILLIONS,
} from '../../../protocol/format';
import type { ConfigAnalysis } from '../../core/config/analyze';
import type { ModelSpec } from '../../core/models/spec';
import { positionOf } from '../../core/config/parse';
import { CONVENTION_LABELS, README_CONVENTION, README_CONVENTION_NOTE } from '../../core/profile/categories';
import { profileModel, type ModelProfile } from '../../core/profile/profile';
import { summarize } from '../../core/profile/summary';
import {
  largestBatch,
  largestResolution,
  parseMemorySize,
  TRAINING_PRECISIONS,
  trainingFit,
  trainingMemoryAt,
  type LargestBatch,
  type LargestResolution,
  type TrainingMemoryEstimate,
  type TrainingPrecision,
} from '../../core/profile/training-memory';
import { largestBatchText, largestResolutionText, trainingMemoryText } from '../../core/profile/training-text';
import { PRODUCER } from '../../core/version';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { intArg, UsageError, type Command, type Out } from '../args';
import { diagnosticLines, hasErrors, readConfig } from '../config';

const USAGE =
  '  vitlens profile <config.yaml> [--resolution N]... [--batch B] [--json] [--html report.html]\n' +
  '                  [--train [--gpu-memory 80GiB] [--precision fp32|mixed]]';

/** What the options mean: printed at the end of `vitlens --help`. */
export const PROFILE_HELP = `  Exact parameters, multiply–accumulates (MACs) per op category and counting
  convention, element-wise counts and an inference memory estimate, per stage.
  --resolution  input size (square); repeat for several; default: the config's img_size or 224
  --batch       batch size (default 1)
  --json        machine-readable output with every figure: per stage, per layer and per op
  --html        also write the dashboard (profile, benchmark, pseudo-inverse charts and tables)
                as one self-contained HTML file, openable offline
  --train       also estimate training memory (one AdamW step at --batch, from the training
                graph): weights, gradients, AdamW state, saved activations and the step's peak,
                per stage and per layer; an estimate, not a measurement
  --gpu-memory  with --train (implies it): the largest batch that fits at each resolution and
                the largest resolution at --batch (estimates); e.g. 80GiB, 80GB (10⁹), 24G (GiB)
  --precision   fp32 (default) or mixed (bf16/fp16 activations, float32 master weights)
`;

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function textReport(file: string, a: ConfigAnalysis, profiles: ModelProfile[]): string {
  const spec = a.spec!;
  const out: string[] = [];
  out.push(`${file}: ${spec.name} — ${spec.title}`);
  for (const n of spec.notes) out.push(`  note: ${n}`);
  for (const p of profiles) {
    out.push('');
    out.push(
      `Input ${p.resolution}×${p.resolution}, batch ${p.batch}: ${formatInt(p.params, { group: ',' })} parameters (${formatParams(p.params, REPORT_MILLIONS)})`,
    );
    const head = [
      'stage',
      'attention',
      'tokens',
      'landmarks',
      'dim',
      'heads',
      'depth',
      'params',
      'GMACs (B)',
      'GMACs (E)',
      'peak act. (est.)',
    ];
    const widths = [10, 10, 7, 9, 5, 5, 5, 10, 10, 10, 16];
    out.push(head.map((h, i) => pad(h, widths[i]!, i > 1)).join(' '));
    for (const s of p.stages) {
      const name = s.group === 'top_level' ? 'pos.embed' : s.group === 'head' ? 'head' : `stage ${s.stage}`;
      const cells = [
        name,
        s.attention ?? '',
        s.tokens ? String(s.tokens) : '',
        s.landmarks != null ? String(s.landmarks) : '',
        s.dim ? String(s.dim) : '',
        s.heads ? String(s.heads) : '',
        s.depth ? String(s.depth) : '',
        formatParams(s.params, REPORT_MILLIONS),
        formatMacs(s.macsByConvention.B, GIGA_COLUMN),
        formatMacs(s.macsByConvention.E, GIGA_COLUMN),
        s.peakActivationBytes ? formatBytes(s.peakActivationBytes, REPORT_BYTES) : '',
      ];
      out.push(cells.map((c, i) => pad(c, widths[i]!, i > 1)).join(' '));
    }
    out.push('');
    out.push('MACs by counting convention (1 MAC = multiply + add; FLOPs = 2 × MACs):');
    for (const c of CONVENTIONS) {
      const mark = c === README_CONVENTION ? '  <- README convention' : '';
      out.push(
        `  ${c}  ${pad(formatMacs(p.macsByConvention[c], GIGA_COLUMN), 9, true)} GMACs  ${pad(formatFlops(2 * p.macsByConvention[c], GIGA_COLUMN), 9, true)} GFLOPs  ${CONVENTION_LABELS[c]}${mark}`,
      );
    }
    out.push(`  ${README_CONVENTION_NOTE}`);
    if (p.newtonIsLowerBound)
      out.push(
        "  Newton MACs are a lower bound: variant B's alpha back-off adds one m³ matmul per halving (data dependent).",
      );
    const m = p.memory;
    out.push(
      `Memory (estimate, float32 inference): weights ${formatBytes(m.parameterBytes, REPORT_BYTES)} + buffers ${formatBytes(m.bufferBytes, REPORT_BYTES)} + peak activations ${formatBytes(m.peakActivationBytes, REPORT_BYTES)} = ${formatBytes(m.peakTotalBytes, REPORT_BYTES)} (peak at ${m.peakAt})`,
    );
  }
  if (spec.published)
    out.push(
      `\nPublished (${spec.published.source}): ${spec.published.params} params, ${spec.published.gflops} "GFLOPs" (GMACs), top-1 ${spec.published.top1} %`,
    );
  return out.join('\n');
}

function profileCommand(args: string[], stdout: Out, stderr: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      resolution: { type: 'string', multiple: true },
      batch: { type: 'string' },
      json: { type: 'boolean' },
      html: { type: 'string' },
      train: { type: 'boolean' },
      'gpu-memory': { type: 'string' },
      precision: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('profile needs exactly one config file.');
  const file = positionals[0]!;
  const resolutions = (values.resolution ?? []).map((r) => intArg('resolution', r, 16, 8192));
  const batch = values.batch ? intArg('batch', values.batch, 1, 65536) : 1;
  const training = trainingOptions(values);
  const a = readConfig(file, stderr);
  if (typeof a === 'number') return a;
  const lines = diagnosticLines(file, a);
  const errors = hasErrors(a);
  // With --json the diagnostics are in the output; on stderr only when they stop the profile.
  if (!values.json || errors) for (const l of lines) stderr(l);
  if (errors || !a.spec) {
    stderr(`${file}: the config has errors; nothing profiled.`);
    return 2;
  }
  const spec = a.spec;
  const profiles = (resolutions.length ? resolutions : spec.resolutions).map((r) => profileModel(spec, r, batch));
  if (training?.gpuMemory != null && batch === 1)
    stderr(
      'Searching the largest resolution at batch 1: each probe builds the training graph, and large inputs take seconds (give --batch for another batch).',
    );
  const train = training
    ? trainingReport(
        spec,
        profiles.map((p) => p.resolution),
        batch,
        training,
      )
    : null;
  if (values.html) {
    writeReport(
      values.html,
      dashboardData({ spec, source: file, producer: PRODUCER, resolution: profiles[0]!.resolution, view: 'profile' }),
    );
    stderr(`wrote ${values.html}`);
  }
  if (values.json) {
    const diagnostics = a.diagnostics.map((d) => ({
      ...positionOf(a.parsed, d.span.start),
      severity: d.severity,
      code: d.code,
      key: d.key ?? null,
      message: d.message,
    }));
    stdout(
      JSON.stringify(
        {
          file,
          model: spec.name,
          diagnostics,
          profiles: profiles.map((p) => summarize(spec, p, { ops: true })),
          ...(train ? { training: train } : {}),
        },
        null,
        2,
      ),
    );
  } else {
    stdout(textReport(file, a, profiles));
    if (train) stdout(trainingText(train));
  }
  return 0;
}

interface TrainingRequest {
  precision: TrainingPrecision;
  /** Bytes of GPU memory to fit, when given. */
  gpuMemory: number | null;
}

function trainingOptions(values: {
  train?: boolean;
  'gpu-memory'?: string;
  precision?: string;
}): TrainingRequest | null {
  const precision = values.precision ?? 'fp32';
  if (!TRAINING_PRECISIONS.includes(precision as TrainingPrecision))
    throw new UsageError(`--precision must be one of ${TRAINING_PRECISIONS.join(', ')}, got "${precision}".`);
  let gpuMemory: number | null = null;
  if (values['gpu-memory'] !== undefined) {
    try {
      gpuMemory = parseMemorySize(values['gpu-memory']);
    } catch (e) {
      throw new UsageError(`--gpu-memory: ${(e as Error).message}`);
    }
  }
  if (!values.train && gpuMemory === null) {
    if (values.precision !== undefined) throw new UsageError('--precision applies to --train (training memory).');
    return null;
  }
  return { precision: precision as TrainingPrecision, gpuMemory };
}

/** What --train adds to the output (the `training` member of --json). */
interface TrainingReport {
  kind: 'estimate';
  precision: TrainingPrecision;
  gpuMemoryBytes: number | null;
  /** One per profiled resolution, at --batch. */
  estimates: TrainingMemoryEstimate[];
  /** With --gpu-memory: per profiled resolution. */
  largestBatch: LargestBatch[];
  /** With --gpu-memory: at --batch. */
  largestResolution: LargestResolution | null;
}

function trainingReport(spec: ModelSpec, resolutions: number[], batch: number, r: TrainingRequest): TrainingReport {
  // One fit (two training graphs) per resolution serves the estimate and the largest batch.
  const fits = resolutions.map((resolution) => trainingFit(spec, { resolution, precision: r.precision }));
  const memory = r.gpuMemory;
  return {
    kind: 'estimate',
    precision: r.precision,
    gpuMemoryBytes: memory,
    estimates: fits.map((fit) => trainingMemoryAt(fit, batch)),
    largestBatch: memory === null ? [] : fits.map((fit) => largestBatch(fit, memory)),
    largestResolution: memory === null ? null : largestResolution(spec, memory, { batch, precision: r.precision }),
  };
}

function trainingText(t: TrainingReport): string {
  const out: string[] = [];
  for (const e of t.estimates) out.push('', ...trainingMemoryText(e));
  if (t.largestBatch.length || t.largestResolution) out.push('');
  for (const b of t.largestBatch) out.push(largestBatchText(b));
  if (t.largestResolution) out.push(largestResolutionText(t.largestResolution));
  return out.join('\n');
}

export const profile: Command = { name: 'profile', usage: USAGE, run: profileCommand };
