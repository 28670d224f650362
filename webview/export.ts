/**
 * Exports: a PNG per chart (chart.toBase64Image) or inference overlay, the full DashboardData as JSON, and CSV of
 * the current view's main table — one clean table per file so it loads straight into a
 * spreadsheet or pandas:
 *   profile → <model>-profile-stages.csv   (one row per stage group)
 *   bench   → <model>-bench-cases.csv      (one row per case, every memory figure its own column; training steps:
 *                                            their mode, forward/backward MACs, ratio, forward peak, outputs)
 *   pinv    → <model>-pinv-iterations.csv  (long format: stage, attention, iteration, head, m, alpha, condition_number, k, residual, penrose, exact_error, predicted)
 *   approx  → <model>-approx-points.csv    (long format: one row per stage, method, setting and head, with its MACs and four errors)
 *   infer   → <model>-infer-top5.csv       (long format: item, name, kind, rank, class index, label, probability, logit)
 *   grad    → <model>-grad-parameters.csv  (one row per parameter tensor in model order: group, shape, the norms, ratio, flag)
 * Numbers are raw (MACs, bytes, milliseconds), never formatted.
 */
import type { ApproxReport } from '../protocol/approx';
import type { DashboardData, DashboardView } from '../protocol/dashboard';
import type { GradReport } from '../protocol/grad';
import type { InferReport } from '../protocol/infer';
import type { BenchCase, BenchReport, ModelProfileSummary, PinvReport } from '../protocol/results';
import type { PngSource } from './charts';
import type { Host } from './host';
import { gradGroups } from './views/grad';

type Cell = string | number | boolean | null | undefined;

export function csvCell(v: Cell): string {
  if (v == null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header: string[], rows: Cell[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export function benchCasesCsv(bench: BenchReport): string {
  const memLabels: string[] = [];
  for (const c of bench.cases) for (const m of c.memory) if (!memLabels.includes(m.label)) memLabels.push(m.label);
  const kindOf = new Map<string, string>();
  for (const c of bench.cases) for (const m of c.memory) kindOf.set(m.label, m.kind);
  // Training steps (alone, or merged with forward passes): a case's mode and what its step computed.
  const train = bench.mode === 'train' || bench.cases.some((c) => c.mode === 'train' || c.training);
  const trainingHeader = [
    'mode',
    'forward_macs',
    'backward_macs',
    'backward_over_forward',
    'forward_peak_bytes',
    'parameters',
    'parameter_values',
    'newton_backward',
    'optimizer',
    'outputs',
    'worst_output',
    'output_errors',
  ];
  const trainingRow = (c: BenchCase): Cell[] => {
    const t = c.training;
    return [
      c.mode ?? 'inference',
      t?.forwardMacs,
      t?.backwardMacs,
      t?.backwardOverForward,
      t?.forwardPeakBytes,
      t?.parameters,
      t?.parameterValues,
      t?.newtonBackward,
      t?.optimizer,
      t?.outputs,
      t?.worstOutput,
      t?.outputErrors?.map((e) => `${e.name}=${e.relError}`).join('; '),
    ];
  };
  const header = [
    'id',
    'runtime',
    'group',
    'stage',
    'attention',
    'level',
    'batch',
    'resolution',
    'tokens',
    'grid',
    'grid_w',
    'landmarks',
    'dim',
    'heads',
    'status',
    'message',
    'macs',
    'median_ms',
    'p10_ms',
    'p90_ms',
    'min_ms',
    'max_ms',
    'n',
    'rel_spread',
    'gflops_per_s',
    'warmup_runs',
    'warmup_first_ms',
    'setup_build_ms',
    'setup_session_ms',
    'rel_error_vs_reference',
    ...memLabels.map((l) => `memory_bytes [${kindOf.get(l)}: ${l}]`),
    ...(train ? trainingHeader : []),
  ];
  const rows = bench.cases.map((c) => [
    c.id,
    c.runtime,
    c.group,
    c.stage,
    c.attention,
    c.level,
    c.batch,
    c.resolution,
    c.tokens,
    c.grid,
    c.gridW ?? c.grid,
    c.landmarks,
    c.dim,
    c.heads,
    c.status,
    c.message,
    c.macs,
    c.timingMs?.median,
    c.timingMs?.p10,
    c.timingMs?.p90,
    c.timingMs?.min,
    c.timingMs?.max,
    c.timingMs?.n,
    c.timingMs?.relSpread,
    c.gflopsPerSecond,
    c.warmup?.runs,
    c.warmup?.firstMs,
    c.setupMs?.build,
    c.setupMs?.session,
    c.relErrorVsReference,
    ...memLabels.map((l) => c.memory.find((m) => m.label === l)?.bytes),
    ...(train ? trainingRow(c) : []),
  ]);
  return toCsv(header, rows);
}

export function profileStagesCsv(p: ModelProfileSummary): string {
  const kinds = Object.keys(p.stages[0]?.macsByKind ?? p.macsByKind);
  const conventions = Object.keys(p.macsByConvention);
  const header = [
    'group',
    'stage',
    'attention',
    'grid',
    'tokens',
    'landmarks',
    'dim',
    'heads',
    'depth',
    'params',
    ...conventions.map((c) => `macs_${c}`),
    ...kinds.map((k) => `macs_kind_${k}`),
    'peak_activation_bytes_estimate',
  ];
  const rows = p.stages.map((s) => [
    s.group,
    s.stage,
    s.attention,
    s.grid,
    s.tokens,
    s.landmarks,
    s.dim,
    s.heads,
    s.depth,
    s.params,
    ...conventions.map((c) => s.macsByConvention[c as keyof typeof s.macsByConvention]),
    ...kinds.map((k) => s.macsByKind[k as keyof typeof s.macsByKind]),
    s.peakActivationBytesEstimate,
  ]);
  return toCsv(header, rows);
}

export function pinvIterationsCsv(r: PinvReport): string {
  const header = [
    'stage',
    'attention',
    'iteration',
    'head',
    'm',
    'alpha',
    'condition_number',
    'k',
    'residual',
    'penrose',
    'exact_error',
    'predicted',
  ];
  const rows: Cell[][] = [];
  for (const s of r.stages)
    for (const hd of s.heads)
      for (const it of hd.iterations)
        rows.push([
          s.stage,
          s.attention,
          // Reports from before Nyström stages were analysed are all Newton.
          s.method?.kind ?? 'newton',
          hd.head,
          hd.m,
          hd.alpha,
          hd.conditionNumber,
          it.k,
          it.residual,
          it.penrose,
          it.exactError,
          it.predicted,
        ]);
  return toCsv(header, rows);
}

/**
 * Long format: one row per stage, method, setting and head measured — the setting's values, its MACs
 * per head, the four relative errors (null where they do not apply) and, for several random draws,
 * their min and max.
 */
export function approxPointsCsv(r: ApproxReport): string {
  const header = [
    'stage',
    'attention',
    'grid_h',
    'grid_w',
    'tokens',
    'head_dim',
    'method',
    'name',
    'reference',
    'setting',
    'model_setting',
    'ratio',
    'landmarks',
    'iterations',
    'features',
    'k',
    'seeds',
    'macs_per_head',
    'exact_macs_per_head',
    'head',
    'mat_run',
    'mat_exact',
    'out_run',
    'out_exact',
    'mat_run_min_over_draws',
    'mat_run_max_over_draws',
    'out_run_min_over_draws',
    'out_run_max_over_draws',
  ];
  const rows: Cell[][] = [];
  for (const s of r.stages)
    for (const m of s.methods)
      for (const p of m.points)
        for (const hd of p.heads)
          rows.push([
            s.stage,
            s.attention,
            s.grid.h,
            s.grid.w,
            s.tokens,
            s.headDim,
            m.method,
            m.name,
            m.reference,
            p.label,
            p.model,
            p.setting.ratio,
            p.setting.landmarks,
            p.setting.iterations,
            p.setting.features,
            p.setting.k,
            p.setting.seeds?.join(' '),
            p.macsPerHead,
            s.exactMacsPerHead,
            hd.head,
            hd.matRun,
            hd.matExact,
            hd.outRun,
            hd.outExact,
            hd.spread?.matRun?.[0],
            hd.spread?.matRun?.[1],
            hd.spread?.outRun[0],
            hd.spread?.outRun[1],
          ]);
  return toCsv(header, rows);
}

/** Long format: one row per item and rank (the top-5 of every image). */
export function inferTop5Csv(r: InferReport): string {
  const header = ['item', 'name', 'kind', 'rank', 'class_index', 'label', 'probability', 'logit'];
  const rows: Cell[][] = [];
  r.items.forEach((it, i) =>
    it.top5.forEach((p, k) => rows.push([i, it.name, it.kind, k + 1, p.index, p.label, p.probability, p.logit])),
  );
  return toCsv(header, rows);
}

/**
 * One row per parameter tensor in model (state-dict) order (`position` 1-based, the dashboard's #): its group (stage and module), shape and
 * size, the gradient's L2 norm and largest element, the parameter's norm, their ratio, the gradient
 * norm over the median, and the flag (empty when none). A non-finite norm is an empty cell.
 */
export function gradParametersCsv(r: GradReport): string {
  const header = [
    'position',
    'key',
    'group',
    'stage',
    'shape',
    'elements',
    'grad_norm',
    'grad_max_abs',
    'param_norm',
    'grad_to_param',
    'grad_to_median',
    'flag',
  ];
  const { of } = gradGroups(r);
  const rows: Cell[][] = r.parameters.map((p, i) => [
    i + 1,
    p.key,
    of[i]!.label,
    p.stage,
    p.shape.join('x'),
    p.elements,
    p.gradNorm,
    p.gradMaxAbs,
    p.paramNorm,
    p.ratio,
    p.toMedian,
    p.flag,
  ]);
  return toCsv(header, rows);
}

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'vitlens';

export function modelName(d: DashboardData): string {
  return (
    d.profile?.model ??
    d.bench?.model ??
    d.pinv?.model ??
    d.profileSweep?.model ??
    d.infer?.model ??
    d.approx?.model ??
    d.grad?.model ??
    'vitlens'
  );
}

/** What "Export CSV" writes for a view, or null when that view has no data. */
export function csvFor(
  view: DashboardView,
  d: DashboardData,
): { filename: string; content: string; what: string } | null {
  const m = slug(modelName(d));
  if (view === 'profile' && d.profile)
    return { filename: `${m}-profile-stages.csv`, content: profileStagesCsv(d.profile), what: 'profile stage table' };
  if (view === 'bench' && d.bench)
    return { filename: `${m}-bench-cases.csv`, content: benchCasesCsv(d.bench), what: 'benchmark cases' };
  if (view === 'pinv' && d.pinv)
    return {
      filename: `${m}-pinv-iterations.csv`,
      content: pinvIterationsCsv(d.pinv),
      what: 'pseudo-inverse iterations',
    };
  if (view === 'approx' && d.approx)
    return {
      filename: `${m}-approx-points.csv`,
      content: approxPointsCsv(d.approx),
      what: 'approximation errors of every stage, method, setting and head',
    };
  if (view === 'grad' && d.grad)
    return {
      filename: `${m}-grad-parameters.csv`,
      content: gradParametersCsv(d.grad),
      what: 'gradient norms of every parameter',
    };
  if (view === 'infer' && d.infer?.items.length)
    return {
      filename: `${m}-infer-top5.csv`,
      content: inferTop5Csv(d.infer),
      what: 'top-5 predictions of every image',
    };
  return null;
}

export function exportCsv(host: Host, view: DashboardView, d: DashboardData): string | null {
  const csv = csvFor(view, d);
  if (!csv) return null;
  host.save({ filename: csv.filename, mime: 'text/csv', encoding: 'utf8', content: csv.content });
  return csv.filename;
}

export function exportJson(host: Host, d: DashboardData): string {
  const filename = `${slug(modelName(d))}-dashboard.json`;
  host.save({ filename, mime: 'application/json', encoding: 'utf8', content: JSON.stringify(d, null, 2) + '\n' });
  return filename;
}

export function exportPng(host: Host, d: DashboardData, card: PngSource): string {
  const filename = `${slug(modelName(d))}-${slug(card.id)}.png`;
  host.save({ filename, mime: 'image/png', encoding: 'base64', content: card.toPngBase64() });
  return filename;
}
