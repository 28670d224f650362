/**
 * Exports: a PNG per chart (chart.toBase64Image) or inference overlay, the full DashboardData as JSON, and CSV of
 * the current view's main table — one clean table per file so it loads straight into a
 * spreadsheet or pandas:
 *   profile → <model>-profile-stages.csv   (one row per stage group)
 *   bench   → <model>-bench-cases.csv      (one row per case, every memory figure its own column)
 *   pinv    → <model>-pinv-iterations.csv  (long format: stage, attention, iteration, head, m, alpha, condition_number, k, residual, penrose, exact_error, predicted)
 *   infer   → <model>-infer-top5.csv       (long format: item, name, kind, rank, class index, label, probability, logit)
 * Numbers are raw (MACs, bytes, milliseconds), never formatted.
 */
import type { DashboardData, DashboardView } from '../protocol/dashboard';
import type { InferReport } from '../protocol/infer';
import type { BenchReport, ModelProfileSummary, PinvReport } from '../protocol/results';
import type { PngSource } from './charts';
import type { Host } from './host';

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

/** Long format: one row per item and rank (the top-5 of every image). */
export function inferTop5Csv(r: InferReport): string {
  const header = ['item', 'name', 'kind', 'rank', 'class_index', 'label', 'probability', 'logit'];
  const rows: Cell[][] = [];
  r.items.forEach((it, i) =>
    it.top5.forEach((p, k) => rows.push([i, it.name, it.kind, k + 1, p.index, p.label, p.probability, p.logit])),
  );
  return toCsv(header, rows);
}

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'vitlens';

export function modelName(d: DashboardData): string {
  return d.profile?.model ?? d.bench?.model ?? d.pinv?.model ?? d.profileSweep?.model ?? d.infer?.model ?? 'vitlens';
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
