/**
 * `vitlens pinv`: how Newton–Schulz converges to the pseudo-inverse in a config's SOFT attention,
 * and Nyströmformer's third-order iteration in its Nyström stages (per stage and head, on the
 * model's own landmark matrices), or either iteration on matrices read from a file.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { PinvMatrixReport, PinvReport } from '../../../protocol/results';
import { NEWTON_VARIANTS, type NewtonVariant } from '../../core/models/spec';
import { PRODUCER } from '../../core/version';
import { analyseMatrices, analyseNystromMatrices, analysePinv } from '../../jobs/pinv';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { intArg, seedArg, UsageError, type Command, type Out } from '../args';
import { loadConfigSpec } from '../config';

const USAGE = `  vitlens pinv <config.yaml> [--resolution N] [--iterations K] [--float64] [--seed S] [--json] [--html report.html]
  vitlens pinv --matrices <file.json> [--variant A|B | --nystrom] [--iterations K] [--float64] [--json]`;

function pinvText(r: PinvReport): string {
  const nystrom = r.stages.filter((s) => s.method?.kind === 'nystrom');
  const settings: string[] = [];
  if (nystrom.length < r.stages.length || r.stages.length === 0)
    settings.push(`Newton variant ${r.variant} (${r.variantSource}), ${r.iterations} iterations`);
  if (nystrom.length) settings.push(`Nyströmformer third-order, ${nystrom[0]!.method!.traced} iterations`);
  const out = [
    `${r.model} @ ${r.resolution}: ${settings.join('; ')}${settings.length > 1 ? '; both' : ''} in ${r.arithmetic}; weights ${r.weights}; input ${r.input}`,
  ];
  for (const s of r.stages) {
    // With Nyström stages in the report, each stage says which iteration its heads ran.
    if (nystrom.length && s.method) out.push(`stage ${s.stage} (${s.attention}): ${s.method.label}`);
    if (s.skipped) {
      out.push(`stage ${s.stage}: ${s.skipped}`);
      continue;
    }
    for (const h of s.heads)
      out.push(
        `stage ${s.stage} head ${h.head} (m = ${h.m}, cond ${h.conditionNumber.toPrecision(3)}): ${h.verdict}; residual ≤ 1e-3 at ${h.reaches['1e-3']!.residual ?? '—'}, ≤ 1e-6 at ${h.reaches['1e-6']!.residual ?? '—'}`,
      );
  }
  out.push(r.summary);
  return out.join('\n');
}

function matricesText(rows: { name: string; report: PinvMatrixReport }[], nystrom: boolean): string {
  const out: string[] = [];
  for (const { name, report: r } of rows) {
    out.push(`${name} (m = ${r.m}, cond ${r.conditionNumber.toPrecision(3)}): ${r.verdict}`);
    out.push(
      nystrom
        ? '  k  ‖I − A·Z‖_F   ‖AZA − A‖/‖A‖  ‖Z − A⁻¹‖/‖A⁻¹‖  predicted'
        : '  k  ‖I − P·V‖_F   ‖AVA − A‖/‖A‖  ‖V − P⁻¹‖/‖P⁻¹‖  predicted',
    );
    for (const i of r.iterations)
      out.push(
        `  ${String(i.k).padStart(2)}  ${i.residual.toExponential(3)}   ${i.penrose.toExponential(3)}      ${i.exactError?.toExponential(3) ?? 'n/a'}       ${i.predicted.toExponential(3)}`,
      );
  }
  return out.join('\n');
}

/** Matrices from a JSON file: newton.json's {cases: {name: {A}}}, {name: A}, or a list of A. */
function readMatrices(file: string): { name: string; a: number[][] }[] {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const isMatrix = (x: unknown): x is number[][] =>
    Array.isArray(x) &&
    x.length > 0 &&
    x.every((r) => Array.isArray(r) && r.length === x.length && r.every((v) => typeof v === 'number'));
  const out: { name: string; a: number[][] }[] = [];
  const visit = (name: string, x: unknown) => {
    if (isMatrix(x)) out.push({ name, a: x });
    else if (x && typeof x === 'object' && isMatrix((x as { A?: unknown }).A))
      out.push({ name, a: (x as { A: number[][] }).A });
  };
  if (Array.isArray(data) && !isMatrix(data)) data.forEach((x, i) => visit(`matrix ${i}`, x));
  else if (isMatrix(data)) visit('matrix', data);
  else if (data && typeof data === 'object')
    for (const [k, v] of Object.entries((data as { cases?: object }).cases ?? data)) visit(k, v);
  if (out.length === 0)
    throw new UsageError(
      `${file}: no square matrices found (expected {cases: {name: {A: [[…]]}}}, {name: [[…]]} or [[[…]]]).`,
    );
  return out;
}

function pinvCommand(args: string[], stdout: Out, stderr: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      resolution: { type: 'string' },
      iterations: { type: 'string' },
      float64: { type: 'boolean' },
      seed: { type: 'string' },
      matrices: { type: 'string' },
      variant: { type: 'string' },
      nystrom: { type: 'boolean' },
      json: { type: 'boolean' },
      html: { type: 'string' },
    },
  });
  const dtype = values.float64 ? 'float64' : 'float32';
  const iterations = values.iterations ? intArg('iterations', values.iterations, 0, 1000) : undefined;
  if (values.matrices) {
    const nystrom = values.nystrom === true;
    if (nystrom && values.variant) throw new UsageError('--variant is a Newton setting; --nystrom has none.');
    const variant = (values.variant ?? 'A') as NewtonVariant;
    if (!NEWTON_VARIANTS.includes(variant)) throw new UsageError(`--variant must be A or B, got "${values.variant}".`);
    const rows = readMatrices(values.matrices).map(({ name, a }) => {
      const data = dtype === 'float64' ? Float64Array.from(a.flat()) : Float32Array.from(a.flat());
      return {
        name,
        report: nystrom
          ? analyseNystromMatrices(data, a.length, 1, iterations ?? 6, dtype)[0]!
          : analyseMatrices(data, a.length, 1, variant, iterations ?? 20, dtype)[0]!,
      };
    });
    stdout(
      values.json
        ? JSON.stringify(
            {
              file: values.matrices,
              ...(nystrom ? { iteration: 'nystrom' } : { variant }),
              arithmetic: dtype,
              matrices: rows.map((r) => ({ name: r.name, ...r.report })),
            },
            null,
            2,
          )
        : matricesText(rows, nystrom),
    );
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('pinv needs one config file (or --matrices FILE).');
  const spec = loadConfigSpec(positionals[0]!, stderr);
  if (typeof spec === 'number') return spec;
  const resolution = values.resolution
    ? intArg('resolution', values.resolution, 16, 4096)
    : (spec.resolutions[0] ?? 224);
  const r = analysePinv(spec, {
    resolution,
    dtype,
    ...(iterations !== undefined ? { iterations } : {}),
    ...(values.seed ? { seed: seedArg(values.seed) } : {}),
  });
  if (values.html) {
    writeReport(
      values.html,
      dashboardData({ spec, source: positionals[0]!, producer: PRODUCER, resolution, pinv: r, view: 'pinv' }),
    );
    stderr(`wrote ${values.html}`);
  }
  stdout(values.json ? JSON.stringify(r, null, 2) : pinvText(r));
  return 0;
}

export const pinv: Command = { name: 'pinv', usage: USAGE, run: pinvCommand };
