/**
 * `vitlens bench`: times a config's attention and blocks on every runtime this machine has, with
 * memory and accuracy against the reference. Benchmarks run in this process (the CLI is its own
 * process already; the language server is the one that isolates them in a worker). Text output
 * names the runtime and device of every figure; --json gives everything.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import {
  formatBytes,
  formatMs,
  formatPercent,
  GIGA_COLUMN,
  REPORT_BYTES,
  si,
  type TimeFormat,
} from '../../../protocol/format';
import type { BenchCase, BenchReport } from '../../../protocol/results';
import { rooflineOf } from '../../../protocol/roofline';
import { ATTENTION_KINDS, NEWTON_BACKWARDS, type AttentionKind, type NewtonBackward } from '../../core/models/spec';
import { PRODUCER } from '../../core/version';
import { runBenchmark } from '../../jobs/bench/harness';
import { analysePinv } from '../../jobs/pinv';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { probeDevices } from '../../runtimes/probe';
import { wantsPyTorch } from '../../runtimes/torch/python';
import { intArg, listArg, runtimeArg, seedArg, UsageError, type Command, type Out } from '../args';
import { loadConfigSpec } from '../config';

const USAGE = `  vitlens bench <config.yaml> [--backend ID]... [--resolution N]... [--tokens N,N,...] [--grid HxW,...]
                [--stage S]... [--attention A|paper|all]... [--level attention|block]... [--no-scaling] [--no-limits]
                [--budget-ms MS] [--batch B] [--python PATH] [--json] [--out results.json] [--html report.html]
                [--train [--optimizer adamw] [--newton-backward analytic|unrolled] [--seed N]]`;

/**
 * Named sets for --attention: `paper` is the SOFT paper's comparison (its Table 2 and Figure 1b:
 * softmax, PVT spatial reduction — the paper's "Linformer" —, Performer, Nyströmformer, SOFT) with
 * the real Linformer beside them; `all` is every attention ViT Lens has.
 */
const ATTENTION_SETS: Record<string, readonly AttentionKind[]> = {
  paper: ['soft', 'softmax', 'softmax_sr', 'performer', 'nystrom', 'linformer'],
  all: ATTENTION_KINDS,
};

/** Milliseconds in the table's columns: three significant digits, at most two decimals, zeros kept ("123", "12.3", "0.12"). */
const MS_COLUMN: TimeFormat = { unit: 'ms', bare: true, trim: false, maxDecimals: 2 };
/** Milliseconds in a sentence, whole: "12 ms". */
const WHOLE_MS: TimeFormat = { unit: 'ms', decimals: 0 };

function benchText(r: BenchReport): string {
  const out: string[] = [`${r.config ?? r.model}: ${r.model}`];
  const train = r.mode === 'train' && r.training ? r.training : null;
  if (train)
    out.push(
      `training steps: forward + backward from the output (cotangent seed ${train.cotangentSeed}; gradients w.r.t. the input and every parameter)${train.optimizer ? ` + ${train.optimizer === 'adamw' ? 'AdamW' : train.optimizer} update (${train.optimizerSettings})` : ', no optimizer'}; SOFT's Newton inverse differentiated ${train.newtonBackward === 'analytic' ? 'analytically (−Vᵀ·G·Vᵀ)' : 'through every iteration'}`,
    );
  for (const d of r.runtimes) {
    const l = r.limits?.find((x) => x.runtime === d.id);
    const limits = l
      ? ` — measured here: ${l.matmul.gflopsPerSecond.toFixed(1)} GFLOP/s fp32 matmul (${l.matmul.n}³), ${l.read.gbPerSecond.toFixed(1)} GB/s read`
      : '';
    out.push(`  ${d.id}: ${d.runtime} on ${d.device}${limits}`);
  }
  for (const u of r.unavailable) out.push(`  ${u.id}: unavailable — ${u.reason}`);
  const head = [
    'runtime',
    'group',
    'stage',
    'attention',
    'level',
    'tokens',
    'm',
    'median ms',
    'p10–p90 ms',
    'GFLOP/s',
    '% matmul',
    '% bw est.',
    'mem est.',
    'mem measured',
    'rel.err',
    ...(train ? ['fwd GMACs', 'bwd GMACs', 'bwd/fwd', 'worst output'] : []),
  ];
  out.push('', head.join('\t'));
  /** The columns that say which case a row is, for measured and unmeasured rows alike. */
  const which = (c: BenchCase) => [c.runtime, c.group, c.stage, c.attention, c.level, c.tokens, c.landmarks ?? ''];
  for (const c of r.cases) {
    if (c.status !== 'ok') {
      out.push([...which(c), `${c.status}: ${c.message}`].join('\t'));
      continue;
    }
    const t = c.timingMs!;
    const measured = c.memory
      .filter((m) => m.kind === 'measured')
      .map((m) => formatBytes(m.bytes, REPORT_BYTES))
      .join(', ');
    const roofline = rooflineOf(c, r.limits);
    out.push(
      [
        ...which(c),
        formatMs(t.median, MS_COLUMN),
        `${formatMs(t.p10, MS_COLUMN)}–${formatMs(t.p90, MS_COLUMN)}`,
        c.gflopsPerSecond!.toFixed(2),
        roofline ? formatPercent(roofline.matmulFraction) : '—',
        roofline ? formatPercent(roofline.bandwidthFraction) : '—',
        formatBytes(c.memory[0]!.bytes, REPORT_BYTES),
        measured || '—',
        c.relErrorVsReference?.toExponential(1) ?? '—',
        ...(train && c.training
          ? [
              si(c.training.forwardMacs, '', GIGA_COLUMN),
              si(c.training.backwardMacs, '', GIGA_COLUMN),
              `${c.training.backwardOverForward.toFixed(2)}×`,
              c.training.worstOutput ?? '—',
            ]
          : []),
      ].join('\t'),
    );
  }
  if (r.scaling.length) {
    out.push('', 'Scaling with tokens (fixed landmark count), fitted exponents b of ∝ tokensᵇ:');
    for (const s of r.scaling) {
      const robust = s.timeExponentTheilSen !== undefined ? `, Theil–Sen ${s.timeExponentTheilSen.toFixed(2)}` : '';
      const contended = s.contendedPoints
        ? `; ${s.contendedPoints} point(s) timed while other processes were busy`
        : '';
      out.push(
        `  ${s.runtime} ${s.attention}: time b = ${s.timeExponent.toFixed(2)} (r² ${s.timeR2.toFixed(3)}${robust}), memory b = ${s.memoryExponent.toFixed(2)} over ${s.tokens[0]}…${s.tokens[s.tokens.length - 1]} tokens${contended}`,
      );
    }
  }
  const o = r.overhead;
  out.push(
    '',
    `Harness overhead: process start ${formatMs(o.processStartMs, WHOLE_MS)} + device probe ${formatMs(o.probeMs, WHOLE_MS)} + graph builds ${formatMs(o.buildMs, WHOLE_MS)} + sessions ${formatMs(o.sessionMs, WHOLE_MS)} = ${(o.fraction * 100).toFixed(1)} % of ${formatMs(o.totalMs, { unit: 's', decimals: 1 })}`,
  );
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

/** A --grid value `HxW`: a token grid of H rows and W columns for the sweep (n = H·W). */
function gridArg(v: string): { h: number; w: number } {
  const m = /^(\d+)[x×](\d+)$/.exec(v);
  if (!m) throw new UsageError(`--grid ${v}: expected rows x columns, e.g. 28x56.`);
  const h = intArg('grid', m[1]!, 1, 1 << 12);
  const w = intArg('grid', m[2]!, 1, 1 << 12);
  if (h * w > 1 << 22) throw new UsageError(`--grid ${v}: ${h * w} tokens, more than ${1 << 22}.`);
  return { h, w };
}

async function benchCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const processStartedAt = Date.now() - performance.now();
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      python: { type: 'string' },
      backend: { type: 'string', multiple: true },
      resolution: { type: 'string', multiple: true },
      tokens: { type: 'string', multiple: true },
      grid: { type: 'string', multiple: true },
      stage: { type: 'string', multiple: true },
      attention: { type: 'string', multiple: true },
      level: { type: 'string', multiple: true },
      'no-scaling': { type: 'boolean' },
      'no-limits': { type: 'boolean' },
      'scaling-tokens': { type: 'string', multiple: true },
      'budget-ms': { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      html: { type: 'string' },
      quiet: { type: 'boolean' },
      train: { type: 'boolean' },
      optimizer: { type: 'string' },
      'newton-backward': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (!values.train && (values.optimizer || values['newton-backward'] || values.seed))
    throw new UsageError('--optimizer, --newton-backward and --seed are options of --train.');
  if (values.optimizer && values.optimizer !== 'adamw')
    throw new UsageError(`--optimizer ${values.optimizer}: expected adamw.`);
  const newtonBackward = values['newton-backward'];
  if (newtonBackward && !NEWTON_BACKWARDS.includes(newtonBackward as NewtonBackward))
    throw new UsageError(`--newton-backward ${newtonBackward}: expected ${NEWTON_BACKWARDS.join(' or ')}.`);
  if (positionals.length !== 1) throw new UsageError('bench needs exactly one config file.');
  const backends = listArg(values.backend).map(runtimeArg);
  const attentions = [
    ...new Set(listArg(values.attention).flatMap((a): readonly string[] => ATTENTION_SETS[a] ?? [a])),
  ];
  for (const a of attentions)
    if (!ATTENTION_KINDS.includes(a as AttentionKind))
      throw new UsageError(
        `--attention ${a}: expected one of ${ATTENTION_KINDS.join(', ')}, or ${Object.keys(ATTENTION_SETS).join(' or ')}.`,
      );
  const levels = listArg(values.level);
  for (const l of levels)
    if (l !== 'attention' && l !== 'block') throw new UsageError(`--level ${l}: expected attention or block.`);
  const file = positionals[0]!;
  const spec = loadConfigSpec(file, stderr);
  if (typeof spec === 'number') return spec;
  const stages = listArg(values.stage).map((s) => intArg('stage', s, 1, spec.stages.length));
  const pytorch = wantsPyTorch(backends, true) && { python: values.python ?? null };
  const report = await probeDevices({ pytorch });
  const result = await runBenchmark(
    {
      model: spec,
      config: file,
      ...(backends.length ? { runtimes: backends } : {}),
      ...(attentions.length ? { attentions: attentions as AttentionKind[] } : {}),
      ...(levels.length ? { levels: levels as ('attention' | 'block')[] } : {}),
      ...(values.resolution
        ? { resolutions: listArg(values.resolution).map((r) => intArg('resolution', r, 16, 8192)) }
        : {}),
      ...(values.tokens ? { tokens: listArg(values.tokens).map((t) => intArg('tokens', t, 16, 1 << 22)) } : {}),
      ...(values.grid ? { grids: listArg(values.grid).map(gridArg) } : {}),
      ...(values['scaling-tokens']
        ? { scalingTokens: listArg(values['scaling-tokens']).map((t) => intArg('scaling-tokens', t, 49, 1 << 22)) }
        : {}),
      ...(stages.length ? { stages } : {}),
      scaling: !values['no-scaling'],
      limits: !values['no-limits'],
      ...(values['budget-ms'] ? { budgetMs: intArg('budget-ms', values['budget-ms'], 1, 600000) } : {}),
      ...(values.batch ? { batch: intArg('batch', values.batch, 1, 4096) } : {}),
      ...(values.train
        ? {
            train: {
              optimizer: values.optimizer === 'adamw' ? ('adamw' as const) : null,
              ...(newtonBackward ? { newtonBackward: newtonBackward as NewtonBackward } : {}),
              ...(values.seed ? { seed: seedArg(values.seed) } : {}),
            },
          }
        : {}),
      processStartedAt,
      onProgress: values.quiet ? () => {} : (m, done, total) => stderr(`[${done + 1}/${total}] ${m}`),
    },
    report,
  );
  const json = JSON.stringify({ devices: report, ...result }, null, 2);
  if (values.out) {
    fs.writeFileSync(values.out, json + '\n');
    if (!values.quiet) stderr(`wrote ${values.out}`);
  }
  if (values.html) {
    // The report shows all three views: the profile and the pinv analysis cost well under a second.
    const resolution = result.cases.find((c) => c.group === 'config')?.resolution ?? spec.resolutions[0] ?? 224;
    const pinv = spec.stages.some((s) => s.attention === 'soft' || s.attention === 'soft_norm')
      ? analysePinv(spec, { resolution })
      : null;
    writeReport(
      values.html,
      dashboardData({ spec, source: file, producer: PRODUCER, resolution, bench: result, pinv, view: 'bench' }),
    );
    if (!values.quiet) stderr(`wrote ${values.html}`);
  }
  stdout(values.json ? json : benchText(result));
  return 0;
}

export const bench: Command = { name: 'bench', usage: USAGE, run: benchCommand };
