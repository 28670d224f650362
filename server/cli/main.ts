/**
 * `vitlens`: the headless face of the language server's code.
 *   vitlens profile <config> [--resolution N]... [--batch B] [--json] [--html FILE]
 *   vitlens devices [--json]
 *   vitlens bench <config> [--backend ID]... [--tokens N,...|--resolution N...] [--json] [--out FILE] [--html FILE]
 *   vitlens pinv <config> [--resolution N] [--json] | vitlens pinv --matrices FILE [--variant A|B]
 *   vitlens infer <config> [--checkpoint FILE] (--image FILE... | --input-tensor FILE --shape 1,3,H,W) [--json]
 * Exit status: 0 success, 2 bad input (with file:line:col and key), 1 internal error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { analyzeConfig, type ConfigAnalysis } from '../core/config/analyze';
import { positionOf } from '../core/config/parse';
import { fileExistsNear } from '../inputs/locate';
import { CONVENTION_LABELS, README_CONVENTION, README_CONVENTION_NOTE } from '../core/profile/categories';
import { CONVENTIONS } from '../../protocol/categories';
import { bytes, grouped, millions } from '../core/profile/format';
import { profileModel, type ModelProfile } from '../core/profile/profile';
import { summarize } from '../core/profile/summary';
import { benchCommand, devicesCommand, pinvCommand } from './bench';
import { inferCommand } from './infer';
import { dashboardData } from '../report/data';
import { writeReport } from '../report/html';
import { PRODUCER, VERSION } from '../core/version';

const USAGE = `Usage:
  vitlens profile <config.yaml> [--resolution N]... [--batch B] [--json] [--html report.html]
  vitlens devices [--json]
  vitlens bench <config.yaml> [--backend ID]... [--resolution N]... [--tokens N,N,...]
                [--stage S]... [--attention A]... [--level attention|block]... [--no-scaling]
                [--budget-ms MS] [--batch B] [--json] [--out results.json] [--html report.html]
  vitlens pinv <config.yaml> [--resolution N] [--iterations K] [--float64] [--seed S] [--json] [--html report.html]
  vitlens pinv --matrices <file.json> [--variant A|B] [--iterations K] [--float64] [--json]
  vitlens infer <config.yaml> [--checkpoint FILE | --checkpoint-search-path DIR...]
                (--image FILE... | --input-tensor FILE --shape 1,3,H,W)
                [--backend ID] [--resolution N] [--resize eval|none] [--maps] [--query-point X,Y] [--json]

  Exact parameters, multiply–accumulates (MACs) per op category and counting
  convention, element-wise counts and an inference memory estimate, per stage.
  --resolution  input size (square); repeat for several; default: the config's img_size or 224
  --batch       batch size (default 1)
  --json        machine-readable output with every figure: per stage, per layer and per op
  --html        also write the dashboard (profile, benchmark, pseudo-inverse charts and tables)
                as one self-contained HTML file, openable offline
`;

export class UsageError extends Error {}

export const intArg = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got "${v}".`);
  return n;
};

function diagnosticLines(file: string, a: ConfigAnalysis): string[] {
  return a.diagnostics.map((d) => {
    const p = positionOf(a.parsed, d.span.start);
    const key = d.key ? ` (key \`${d.key}\`)` : '';
    return `${file}:${p.line + 1}:${p.character + 1}: ${d.severity} [${d.code}]${key} ${d.message}`;
  });
}

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
    out.push(`Input ${p.resolution}×${p.resolution}, batch ${p.batch}: ${grouped(p.params)} parameters (${millions(p.params)})`);
    const head = ['stage', 'attention', 'tokens', 'landmarks', 'dim', 'heads', 'depth', 'params', 'GMACs (B)', 'GMACs (E)', 'peak act. (est.)'];
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
        millions(s.params),
        (s.macsByConvention.B / 1e9).toFixed(3),
        (s.macsByConvention.E / 1e9).toFixed(3),
        s.peakActivationBytes ? bytes(s.peakActivationBytes) : '',
      ];
      out.push(cells.map((c, i) => pad(c, widths[i]!, i > 1)).join(' '));
    }
    out.push('');
    out.push('MACs by counting convention (1 MAC = multiply + add; FLOPs = 2 × MACs):');
    for (const c of CONVENTIONS) {
      const mark = c === README_CONVENTION ? '  <- README convention' : '';
      out.push(`  ${c}  ${pad((p.macsByConvention[c] / 1e9).toFixed(3), 9, true)} GMACs  ${pad(((2 * p.macsByConvention[c]) / 1e9).toFixed(3), 9, true)} GFLOPs  ${CONVENTION_LABELS[c]}${mark}`);
    }
    out.push(`  ${README_CONVENTION_NOTE}`);
    if (p.newtonIsLowerBound) out.push("  Newton MACs are a lower bound: variant B's alpha back-off adds one m³ matmul per halving (data dependent).");
    const m = p.memory;
    out.push(`Memory (estimate, float32 inference): weights ${bytes(m.parameterBytes)} + buffers ${bytes(m.bufferBytes)} + peak activations ${bytes(m.peakActivationBytes)} = ${bytes(m.peakTotalBytes)} (peak at ${m.peakAt})`);
  }
  if (spec.published) out.push(`\nPublished (${spec.published.source}): ${spec.published.params} params, ${spec.published.gflops} "GFLOPs" (GMACs), top-1 ${spec.published.top1} %`);
  return out.join('\n');
}

function profileCommand(args: string[], stdout: (s: string) => void, stderr: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { resolution: { type: 'string', multiple: true }, batch: { type: 'string' }, json: { type: 'boolean' }, html: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('profile needs exactly one config file.');
  const file = positionals[0]!;
  const resolutions = (values.resolution ?? []).map((r) => intArg('resolution', r, 16, 8192));
  const batch = values.batch ? intArg('batch', values.batch, 1, 65536) : 1;
  const a = readConfig(file, stderr);
  if (typeof a === 'number') return a;
  const lines = diagnosticLines(file, a);
  const hasErrors = a.diagnostics.some((d) => d.severity === 'error');
  if (!values.json || hasErrors) for (const l of lines) stderr(l);
  if (hasErrors || !a.spec) {
    stderr(`${file}: the config has errors; nothing profiled.`);
    return 2;
  }
  const spec = a.spec;
  const profiles = (resolutions.length ? resolutions : spec.resolutions).map((r) => profileModel(spec, r, batch));
  if (values.html) {
    writeReport(values.html, dashboardData({ spec, source: file, producer: PRODUCER, resolution: profiles[0]!.resolution, view: 'profile' }));
    stderr(`wrote ${values.html}`);
  }
  if (values.json) {
    const diagnostics = a.diagnostics.map((d) => ({ ...positionOf(a.parsed, d.span.start), severity: d.severity, code: d.code, key: d.key ?? null, message: d.message }));
    stdout(JSON.stringify({ file, model: spec.name, diagnostics, profiles: profiles.map((p) => summarize(spec, p, { ops: true })) }, null, 2));
  } else {
    stdout(textReport(file, a, profiles));
  }
  return 0;
}

/** Reads and analyses a config file; an unreadable file prints why and gives exit status 2. */
function readConfig(file: string, stderr: (s: string) => void): ConfigAnalysis | number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    stderr(`${file}: cannot read the config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 2;
  }
  const exists = fileExistsNear(file);
  return analyzeConfig(text, exists ? { fileExists: exists } : {});
}

/** Reads and analyses a config for the commands that run its model; prints diagnostics, refuses errors. */
export function loadRunnableConfig(file: string, stderr: (s: string) => void): (ConfigAnalysis & { spec: NonNullable<ConfigAnalysis['spec']> }) | number {
  const a = readConfig(file, stderr);
  if (typeof a === 'number') return a;
  const lines = diagnosticLines(file, a);
  if (a.diagnostics.some((d) => d.severity === 'error') || !a.spec) {
    for (const l of lines) stderr(l);
    stderr(`${file}: the config has errors; nothing run.`);
    return 2;
  }
  return a as ConfigAnalysis & { spec: NonNullable<ConfigAnalysis['spec']> };
}

/** The ModelSpec of a config without errors, or the exit status after printing why not. */
export function loadConfigSpec(file: string, stderr: (s: string) => void): ConfigAnalysis['spec'] | number {
  const a = loadRunnableConfig(file, stderr);
  return typeof a === 'number' ? a : a.spec;
}

export async function main(argv: string[], stdout: (s: string) => void = (s) => process.stdout.write(s + '\n'), stderr: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'profile':
        return profileCommand(rest, stdout, stderr);
      case 'devices':
        return await devicesCommand(rest, stdout);
      case 'bench':
        return await benchCommand(rest, stdout, stderr);
      case 'pinv':
        return pinvCommand(rest, stdout, stderr);
      case 'infer':
        return await inferCommand(rest, stdout, stderr);
      case '--version':
        stdout(`vitlens ${VERSION}`);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}".`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      stderr(`vitlens: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    stderr(`vitlens: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.stdout.write('', () => process.exit(code)));
}
