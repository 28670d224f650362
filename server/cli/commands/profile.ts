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
import { positionOf } from '../../core/config/parse';
import { CONVENTION_LABELS, README_CONVENTION, README_CONVENTION_NOTE } from '../../core/profile/categories';
import { profileModel, type ModelProfile } from '../../core/profile/profile';
import { summarize } from '../../core/profile/summary';
import { PRODUCER } from '../../core/version';
import { dashboardData } from '../../report/data';
import { writeReport } from '../../report/html';
import { intArg, UsageError, type Command, type Out } from '../args';
import { diagnosticLines, hasErrors, readConfig } from '../config';

const USAGE = '  vitlens profile <config.yaml> [--resolution N]... [--batch B] [--json] [--html report.html]';

/** What the options mean: printed at the end of `vitlens --help`. */
export const PROFILE_HELP = `  Exact parameters, multiply–accumulates (MACs) per op category and counting
  convention, element-wise counts and an inference memory estimate, per stage.
  --resolution  input size (square); repeat for several; default: the config's img_size or 224
  --batch       batch size (default 1)
  --json        machine-readable output with every figure: per stage, per layer and per op
  --html        also write the dashboard (profile, benchmark, pseudo-inverse charts and tables)
                as one self-contained HTML file, openable offline
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
    },
  });
  if (positionals.length !== 1) throw new UsageError('profile needs exactly one config file.');
  const file = positionals[0]!;
  const resolutions = (values.resolution ?? []).map((r) => intArg('resolution', r, 16, 8192));
  const batch = values.batch ? intArg('batch', values.batch, 1, 65536) : 1;
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
        { file, model: spec.name, diagnostics, profiles: profiles.map((p) => summarize(spec, p, { ops: true })) },
        null,
        2,
      ),
    );
  } else {
    stdout(textReport(file, a, profiles));
  }
  return 0;
}

export const profile: Command = { name: 'profile', usage: USAGE, run: profileCommand };
