/**
 * `vitlens approx`: how good each approximate attention is on a model's real activations — per
 * stage, for each method and hyperparameter setting, its MACs per head and its error against the
 * exact attention (matrix and output, as run and with the exact pseudo-inverse), as means over the
 * heads; --json gives every head and every point; --html the dashboard's report with its view of them.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { APPROX_METHODS, type ApproxMethod, type ApproxReport, type ApproxStage } from '../../../protocol/approx';
import { attentionName, formatMacs, formatMs, formatSci } from '../../../protocol/format';
import { FileError } from '../../inputs/file-error';
import { configInputs } from '../../inputs/locate';
import { ApproxInputError, analyseApprox, type ApproxOptions } from '../../jobs/approx/sweep';
import { WeightMismatchError } from '../../jobs/infer/model-weights';
import { landmarkStrides } from '../../core/models/build';
import { nystromSettings } from '../../core/models/comparison';
import type { ModelSpec } from '../../core/models/spec';
import { PRODUCER } from '../../core/version';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { intArg, listArg, seedArg, UsageError, type Command, type Out } from '../args';
import { loadRunnableConfig } from '../config';

const USAGE = `  vitlens approx <config.yaml> [--checkpoint FILE | --checkpoint-search-path DIR... | --random]
                [--image FILE | --random-image] [--resize eval|none]
                [--seed N] [--resolution N] [--stage S...] [--method soft|nystrom|performer|linformer|softmax_sr ...]
                [--heads K] [--max-tokens N] [--max-landmarks M] [--iterations K,...] [--nystrom-iterations K,...]
                [--features M,...] [--performer-seeds K] [--linformer-k K,...] [--all-points] [--json] [--out FILE]
                [--html report.html]`;

const HELP = `  approx: weights from --checkpoint, else the config's checkpoint:, else (or with --random) seeded random
  ones; the image from --image, else the config's first images: entry, else (or with --random-image) a
  seeded random input tensor. The text shows each method at the model's setting across sizes and at the
  model's size across iterations (--all-points: every point); --json and --out FILE write everything;
  --html FILE the dashboard (one offline file) with error against MACs charted per stage.`;

const num = (x: number | null) => (x === null ? '—' : formatSci(x, 2));

/** Points shown in text: every size at the model's iteration count and every count at the model's size (the JSON has the whole grid). */
function shownPoints(
  method: ApproxMethod,
  stage: ApproxStage,
  spec: ModelSpec,
  points: ApproxStage['methods'][number]['points'],
) {
  if (method !== 'soft' && method !== 'nystrom') return points;
  const stageSpec = spec.stages.find((s) => s.index === stage.stage)!;
  const iterations = method === 'soft' ? spec.newton.maxIter : nystromSettings(stageSpec, spec).iterations;
  const own = landmarkStrides(stageSpec, stage.grid.h, stage.grid.w)[0];
  return points.filter((p) => p.setting.ratio === own || p.setting.iterations === iterations);
}

export function approxText(r: ApproxReport, spec: ModelSpec, all = false): string {
  const out = [
    `${r.config ?? r.model}: ${r.model} @ ${r.resolution}; ${r.input.description}`,
    `arithmetic float64; errors are means over the heads measured; * marks the model's own setting`,
  ];
  if (r.stages.some((s) => s.attention === 'soft' || s.attention === 'soft_norm'))
    out.push(`SOFT's Newton–Raphson: variant ${r.newton.variant}, ${r.newton.iterations} iterations in the model`);
  // Each method's notes once, though stages repeat them.
  const notes = new Map<string, Set<string>>();
  for (const s of r.stages) {
    out.push('');
    if (s.skipped && s.tokens === 0) {
      out.push(`stage ${s.stage} (${attentionName(s.attention)}): skipped — ${s.skipped}`);
      continue;
    }
    const heads =
      s.headsAnalysed.length === s.heads
        ? `${s.heads} head${s.heads === 1 ? '' : 's'}`
        : `heads ${s.headsAnalysed.join(', ')} of ${s.heads}`;
    out.push(
      `stage ${s.stage} (${attentionName(s.attention)}, ${s.grid.h}×${s.grid.w} grid, N = ${s.tokens}, ${heads}, d = ${s.headDim}; exact attention ${formatMacs(s.exactMacsPerHead)}/head) — ${formatMs(s.timeMs)}`,
    );
    if (s.skipped) {
      out.push(`  skipped — ${s.skipped}`);
      continue;
    }
    const rows: string[][] = [
      ['method', 'setting', 'MACs/head', 'e_mat run', 'e_mat exact', 'e_out run', 'e_out exact'],
    ];
    for (const m of s.methods) {
      // The table's method column: names without their parenthesis ("softmax-SR (the SOFT paper's Linformer)").
      const name = m.name.replace(/ \(.*\)$/, '');
      if (m.skipped) {
        rows.push([name, `skipped — ${m.skipped}`]);
        continue;
      }
      for (const n of m.notes) notes.set(m.name, (notes.get(m.name) ?? new Set()).add(n));
      for (const p of all ? m.points : shownPoints(m.method, s, spec, m.points))
        rows.push([
          name,
          `${p.label}${p.model ? ' *' : ''}`,
          formatMacs(p.macsPerHead),
          num(p.mean.matRun),
          num(p.mean.matExact),
          num(p.mean.outRun),
          num(p.mean.outExact),
        ]);
    }
    // A skipped method's row is its name and the reason: it sets the first column's width only.
    const widths = rows[0]!.map((_, c) =>
      Math.max(...rows.filter((row) => c === 0 || row.length > 2).map((row) => row[c]!.length)),
    );
    for (const row of rows)
      out.push(
        '  ' +
          (row.length === 2
            ? `${row[0]!.padEnd(widths[0]!)}  ${row[1]}`
            : row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')),
      );
  }
  if (notes.size) {
    out.push('', 'notes:');
    for (const [name, lines] of notes) for (const l of lines) out.push(`  ${name}: ${l}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push(`time: activations ${formatMs(r.timingMs.activations)}, total ${formatMs(r.timingMs.total)}`);
  return out.join('\n');
}

const intList = (name: string, v: string[] | undefined, min: number, max: number) => {
  const xs = listArg(v).map((x) => intArg(name, x, min, max));
  return xs.length ? xs : undefined;
};

async function approxCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      checkpoint: { type: 'string' },
      'checkpoint-search-path': { type: 'string', multiple: true },
      random: { type: 'boolean' },
      image: { type: 'string' },
      'random-image': { type: 'boolean' },
      resize: { type: 'string' },
      seed: { type: 'string' },
      resolution: { type: 'string' },
      stage: { type: 'string', multiple: true },
      method: { type: 'string', multiple: true },
      heads: { type: 'string' },
      'max-tokens': { type: 'string' },
      'max-landmarks': { type: 'string' },
      iterations: { type: 'string', multiple: true },
      'nystrom-iterations': { type: 'string', multiple: true },
      features: { type: 'string', multiple: true },
      'performer-seeds': { type: 'string' },
      'linformer-k': { type: 'string', multiple: true },
      'all-points': { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      html: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('approx needs exactly one config file.');
  if (values.random && values.checkpoint) throw new UsageError('give --checkpoint or --random, not both.');
  if (values['random-image'] && values.image) throw new UsageError('give --image or --random-image, not both.');
  if (values.resize && values.resize !== 'eval' && values.resize !== 'none')
    throw new UsageError(`--resize must be eval or none, got "${values.resize}".`);
  const methods = listArg(values.method);
  for (const m of methods)
    if (!APPROX_METHODS.includes(m as ApproxMethod))
      throw new UsageError(`--method ${m}: expected one of ${APPROX_METHODS.join(', ')}.`);
  const file = positionals[0]!;
  const a = loadRunnableConfig(file, stderr);
  if (typeof a === 'number') return a;
  const fromConfig = configInputs(file, a.values, values['checkpoint-search-path'] ?? []);
  const checkpoint = values.random ? null : (values.checkpoint ?? fromConfig.checkpoint);
  const image = values['random-image'] ? null : (values.image ?? fromConfig.images[0] ?? null);
  if (!checkpoint && !values.random)
    stderr(`${file}: no checkpoint given or named by the config: random weights (official-style init) are measured.`);
  const options: ApproxOptions = {
    config: file,
    checkpoint,
    image,
    onProgress: (line) => stderr(`approx: ${line}`),
    ...(values.resize ? { resize: values.resize as 'eval' | 'none' } : {}),
    ...(values.seed ? { seed: seedArg(values.seed) } : {}),
    ...(values.resolution ? { resolution: intArg('resolution', values.resolution, 16, 4096) } : {}),
    ...(values.stage ? { stages: intList('stage', values.stage, 1, 64) } : {}),
    ...(methods.length ? { methods: methods as ApproxMethod[] } : {}),
    ...(values.heads ? { heads: intArg('heads', values.heads, 1, 1024) } : {}),
    ...(values['max-tokens'] ? { maxTokens: intArg('max-tokens', values['max-tokens'], 1, 1 << 20) } : {}),
    ...(values['max-landmarks'] ? { maxLandmarks: intArg('max-landmarks', values['max-landmarks'], 1, 4096) } : {}),
    ...(values.iterations ? { newtonIterations: intList('iterations', values.iterations, 0, 1000) } : {}),
    ...(values['nystrom-iterations']
      ? { nystromIterations: intList('nystrom-iterations', values['nystrom-iterations'], 0, 1000) }
      : {}),
    ...(values.features ? { performerFeatures: intList('features', values.features, 1, 1 << 16) } : {}),
    ...(values['performer-seeds']
      ? { performerSeeds: intArg('performer-seeds', values['performer-seeds'], 1, 100) }
      : {}),
    ...(values['linformer-k'] ? { linformerK: intList('linformer-k', values['linformer-k'], 1, 1 << 20) } : {}),
  };
  let report: ApproxReport;
  try {
    report = await analyseApprox(a.spec, options);
  } catch (e) {
    if (e instanceof FileError || e instanceof WeightMismatchError || e instanceof ApproxInputError) {
      stderr(`vitlens approx: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const json = JSON.stringify(report, null, 2);
  const write = (target: string, save: () => void): boolean => {
    try {
      save();
    } catch (e) {
      stderr(`vitlens approx: cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return false;
    }
    stderr(`wrote ${target}`);
    return true;
  };
  if (values.out && !write(values.out, () => fs.writeFileSync(values.out!, json + '\n'))) return 2;
  if (values.html) {
    const html = values.html;
    const data = dashboardData({
      spec: a.spec,
      source: file,
      producer: PRODUCER,
      resolution: report.resolution,
      approx: report,
      view: 'approx',
    });
    if (!write(html, () => writeReport(html, data))) return 2;
  }
  stdout(values.json ? json : approxText(report, a.spec, values['all-points'] ?? false));
  return 0;
}

export const approx: Command = { name: 'approx', usage: `${USAGE}\n${HELP}`, run: approxCommand };
