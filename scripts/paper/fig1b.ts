/**
 * The SOFT paper's Figure 1b (docs/MATHS.md §4.4) reproduced on `vit_paper_fig1b` — 12 pre-norm
 * layers, hidden 384, 12 heads, m = 49 landmarks — at n = 784·p tokens for p = 1…8, batch 1.
 * n = 784·p is a square only for p = 1 and 4, and the grid attentions need H×W: the tokens are the
 * 28 × 28p patch grid of a 448 × 448p input (patch 16), and SOFT's and Nyströmformer's landmarks are
 * pooled 4 × 4p so m stays 49 (the preset's fixed 7×7 landmark grid).
 *
 * Memory: the profile's analytic estimate of the whole model (written to the `fig1b-estimate`
 * block of docs/PAPER.md, which test/paper.test.ts checks is current). Time, with `--measure`: the
 * benchmark harness (what `vitlens bench` runs, with `--grid 28x56,…`) on onnxruntime CPU, per
 * block and attention layer, written to the `fig1b-times` block, which the test leaves alone.
 *
 *   npm run paper:fig1b [-- --measure [--budget-ms 1500]]
 */
import os from 'node:os';
import { formatBytes, formatMs, REPORT_BYTES } from '../../protocol/format';
import type { BenchCase, BenchReport } from '../../protocol/results';
import { analyzeConfig } from '../../server/core/config/analyze';
import { stageLandmarks } from '../../server/core/models/build';
import { attentionSetting, linformerK } from '../../server/core/models/comparison';
import type { AttentionKind, ModelSpec } from '../../server/core/models/spec';
import { profileModel, type ModelProfile } from '../../server/core/profile/profile';
import { withAttention } from '../../server/core/profile/sweep';
import { runBenchmark } from '../../server/jobs/bench/harness';
import { probeDevices } from '../../server/runtimes/probe';
import { markdownTable, updatePaperDoc } from './doc';

export const FIG1B_P = [1, 2, 3, 4, 5, 6, 7, 8] as const;

/**
 * The paper's five (Transformer, Linformer, Performer, Nyströmformer, SOFT), with both things
 * "Linformer" can mean — Linformer itself (k = 49) and PVT's spatial reduction, which the paper's
 * Table 2 ran under that name (r = 4, so its keys grow as n/16) — and UFO beside them.
 */
export const FIG1B_ATTENTIONS: readonly AttentionKind[] = [
  'softmax',
  'linformer',
  'softmax_sr',
  'performer',
  'nystrom',
  'soft',
  'ufo',
];

const NAMES: Record<string, string> = {
  softmax: 'Transformer (softmax)',
  linformer: 'Linformer (k = 49)',
  softmax_sr: 'PVT spatial reduction (r = 4)',
  performer: 'Performer',
  nystrom: 'Nyströmformer',
  soft: 'SOFT',
  ufo: 'UFO',
};

/** Patch 16 on a 448 × 448p image: the 28 × 28p token grid, n = 784·p. */
export function fig1bGrid(p: number): { h: number; w: number } {
  return { h: 28, w: 28 * p };
}

export function fig1bSpec(kind: AttentionKind): ModelSpec {
  const spec = analyzeConfig('model: vit_paper_fig1b\n').spec;
  if (!spec) throw new Error('vit_paper_fig1b does not build');
  return withAttention(spec, kind);
}

export interface Fig1bEstimate {
  kind: AttentionKind;
  setting: string | null;
  /** One profile per p. */
  profiles: ModelProfile[];
}

export function fig1bEstimates(): Fig1bEstimate[] {
  return FIG1B_ATTENTIONS.map((kind) => {
    const spec = fig1bSpec(kind);
    const profiles = FIG1B_P.map((p) => {
      const { h, w } = fig1bGrid(p);
      return profileModel(spec, 16 * h, 1, 16 * w);
    });
    const { h, w } = fig1bGrid(1);
    const stage = spec.stages[0]!;
    // Linformer's E and F are made for each n; the product's wording names one n.
    const setting =
      kind === 'linformer'
        ? `k = ${linformerK(stage, spec, h, w)} (E, F ∈ ℝ^{k×n} learned per layer for each n)`
        : attentionSetting(stage, spec, h, w);
    return { kind, setting, profiles };
  });
}

const MIB = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

/** The generated `fig1b-estimate` block of docs/PAPER.md. */
export function fig1bEstimateMarkdown(rows: Fig1bEstimate[] = fig1bEstimates()): string {
  const head = ['attention', 'setting', ...FIG1B_P.map((p) => `p = ${p} (n = ${784 * p})`), 'p = 8 / p = 1'];
  const numeric = head.map((_, i) => i >= 2);
  const table = (pick: (p: ModelProfile) => number) =>
    markdownTable(
      head,
      rows.map((r) => {
        const values = r.profiles.map(pick);
        return [NAMES[r.kind]!, r.setting ?? 'exact', ...values.map(MIB), (values[7]! / values[0]!).toFixed(1)];
      }),
      numeric,
    );
  const weights = (kind: AttentionKind, i: number) =>
    formatBytes(rows.find((r) => r.kind === kind)!.profiles[i]!.memory.parameterBytes, REPORT_BYTES);
  const landmarks = FIG1B_P.map((p) => {
    const { h, w } = fig1bGrid(p);
    return stageLandmarks(fig1bSpec('soft').stages[0]!, h, w);
  });
  const peakAt = rows.map((r) => `${NAMES[r.kind]} at ${r.profiles[7]!.memory.peakAt}`).join('; ');
  return [
    'Peak memory of the whole model, MiB (weights + buffers + the largest set of live float32 activations; analytic estimate, batch 1):',
    '',
    table((p) => p.memory.peakTotalBytes),
    '',
    'Of which activations, MiB:',
    '',
    table((p) => p.memory.peakActivationBytes),
    '',
    `Landmarks of SOFT and Nyströmformer at p = 1…8: ${landmarks.join(', ')} (the fixed 7×7 landmark grid, pooled 4 × 4p). ` +
      `Weights that grow with n: SOFT's landmark conv is [32, 32, 4, 4p] per layer (${weights('soft', 0)} at p = 1, ` +
      `${weights('soft', 7)} at p = 8), Linformer's E and F are 2·49·n per layer (${weights('linformer', 0)} → ` +
      `${weights('linformer', 7)}); the others' weights do not depend on n (softmax ${weights('softmax', 0)}). ` +
      `Where each peak lies at p = 8: ${peakAt}.`,
  ].join('\n');
}

/** The measured `fig1b-times` block: medians per block and per attention layer on onnxruntime CPU. */
export function fig1bTimesMarkdown(r: BenchReport): string {
  const runtime = r.runtimes[0];
  const cpu = os.cpus();
  const when = r.startedAt.slice(0, 10);
  const ms = (x: number) => formatMs(x, { unit: 'ms', decimals: 1, bare: true });
  const cell = (c: BenchCase | undefined) =>
    !c ? '—' : c.status === 'ok' && c.timingMs ? `${ms(c.timingMs.median)} (${ms(c.timingMs.min)})` : c.status;
  const arena = (c: BenchCase | undefined) => {
    const m = c?.memory.find((x) => x.kind === 'measured');
    return m ? MIB(m.bytes) : '—';
  };
  const find = (kind: AttentionKind, level: string, p: number) =>
    r.cases.find((c) => c.attention === kind && c.level === level && c.tokens === 784 * p);
  const head = ['attention', ...FIG1B_P.map((p) => `p = ${p}`)];
  const numeric = head.map((_, i) => i >= 1);
  const table = (level: string, f: (c: BenchCase | undefined) => string) =>
    markdownTable(
      head,
      FIG1B_ATTENTIONS.map((kind) => [NAMES[kind]!, ...FIG1B_P.map((p) => f(find(kind, level, p)))]),
      numeric,
    );
  const busy = r.cases.filter((c) => (c.hostLoad?.otherCores ?? 0) > 0.25).length;
  const problems = r.cases.filter((c) => c.status !== 'ok').map((c) => `${c.id}: ${c.status} (${c.message})`);
  return [
    `Measured ${when} with the benchmark harness on ${runtime ? `${runtime.runtime} on ${runtime.device}` : 'no runtime'} ` +
      `(${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB), batch 1, ` +
      `random weights, repeated runs (a point timed while other processes used more than a quarter of a core was timed ` +
      `again, up to 3 times, and the quietest attempt kept); ${busy} of ${r.cases.length} cases still ran beside such load. ` +
      `These figures belong to that machine; \`npm run paper:fig1b -- --measure\` rewrites them.`,
    '',
    'One block (pre-norm attention + MLP; the stack is 12 of them), median ms (fastest run in brackets, the figure least moved by other processes):',
    '',
    table('block', cell),
    '',
    'The attention layer alone, median ms (fastest run):',
    '',
    table('attention', cell),
    '',
    'onnxruntime CPU arena peak in use for one block (measured by its profiler), MiB:',
    '',
    table('block', arena),
    ...(problems.length ? ['', 'Cases not measured:', '', ...problems.map((p) => `- ${p}`)] : []),
  ].join('\n');
}

export async function measureFig1b(budgetMs = 1500): Promise<BenchReport> {
  const report = await probeDevices({ webgpu: false, nvidia: false });
  return runBenchmark(
    {
      model: fig1bSpec('soft'),
      config: null,
      runtimes: ['ort-cpu'],
      attentions: [...FIG1B_ATTENTIONS],
      levels: ['block', 'attention'],
      grids: FIG1B_P.map(fig1bGrid),
      resolutions: [],
      scaling: false,
      limits: false,
      budgetMs,
      // Other processes on a small machine move single timings: re-time busy points, keep the quietest.
      retimeContended: true,
      referenceMacsLimit: 0,
      onProgress: (m, done, total) => process.stderr.write(`[${done + 1}/${total}] ${m}\n`),
    },
    report,
  );
}

async function main(): Promise<void> {
  updatePaperDoc('GENERATED', 'fig1b-estimate', fig1bEstimateMarkdown());
  console.log('docs/PAPER.md: Figure 1b memory estimate written');
  const args = process.argv.slice(2);
  if (!args.includes('--measure')) return;
  const at = args.indexOf('--budget-ms');
  const report = await measureFig1b(at >= 0 ? Number(args[at + 1]) : undefined);
  updatePaperDoc('MEASURED', 'fig1b-times', fig1bTimesMarkdown(report));
  console.log('docs/PAPER.md: Figure 1b times written');
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
