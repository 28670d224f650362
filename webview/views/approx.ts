/**
 * Approximation-quality view (`vitlens approx`, `vitlens/approx`): accuracy against cost. One chart
 * per measured stage: the relative error of each approximate attention against its exact
 * counterpart (y, log) by its analytic MACs per head (x, log), one series per method and variant —
 * SOFT as run and with the exact pseudo-inverse, Nyströmformer as run and exact, Performer,
 * Linformer, softmax-SR (PVT's spatial reduction, what the SOFT paper ran as "Linformer") — each
 * point one setting of the sweep (landmarks, features, k), its value the mean over the heads
 * measured with their min–max as an error bar. SOFT and Nyströmformer are read at the model's
 * iteration count across sizes, and across iterations at the model's size (a dotted series).
 * A select switches every chart between e_out (the outputs) and e_mat (the N×N matrices); a
 * vertical marker shows the exact attention's own MACs. Then the run's inputs, every stage, every
 * point in one table, and each method's cost formula and notes.
 */
import type { PointStyle } from 'chart.js';
import type {
  ApproxErrors,
  ApproxMethod,
  ApproxMethodReport,
  ApproxPoint,
  ApproxReport,
  ApproxStage,
} from '../../protocol/approx';
import { attentionName, formatInt, formatMacs, formatMs, formatSci } from '../../protocol/format';
import {
  axis,
  chartCard,
  decades,
  logTick,
  options,
  positive,
  type ChartCard,
  type ChartSpec,
  type SpreadPoint,
} from '../charts';
import { h, nextId, prose } from '../dom';
import { Table } from '../table';
import type { Theme } from '../theme';
import {
  badge,
  chartGrid,
  emptyState,
  facts,
  rerunButton,
  section,
  tableSort,
  type ViewContext,
  type ViewInstance,
} from './common';

export type ApproxMetric = 'out' | 'mat';

export const METRIC_LABEL: Record<ApproxMetric, string> = {
  out: 'e_out = ‖S·V − Ŝ·V‖_F / ‖S·V‖_F',
  mat: 'e_mat = ‖S − Ŝ‖_F / ‖S‖_F',
};
const METRIC_SHORT: Record<ApproxMetric, string> = { out: 'e_out', mat: 'e_mat' };

/** Colour, dash and point shape per method: each method its own colour, and never colour alone. */
const METHOD_STYLES: Record<ApproxMethod, { color: keyof Theme; dash: number[]; point: PointStyle }> = {
  soft: { color: 'blue', dash: [], point: 'circle' },
  nystrom: { color: 'purple', dash: [6, 3], point: 'rectRot' },
  performer: { color: 'green', dash: [12, 4], point: 'triangle' },
  linformer: { color: 'red', dash: [2, 3], point: 'crossRot' },
  softmax_sr: { color: 'orange', dash: [10, 3, 2, 3], point: 'rect' },
};
/** The exact-pseudo-inverse variant: short dashes and hollow markers. */
const EXACT_DASH = [3, 3];
/** The iteration sweep at the model's size: a thin dotted line and small rounded squares. */
const ITERATION_DASH = [1, 3];

type Variant = 'run' | 'exact' | 'iterations' | 'own';

/** One line of a stage's chart: a method, a variant of it, and its points in MACs order. */
export interface ApproxSeries {
  method: ApproxMethodReport;
  variant: Variant;
  label: string;
  /** The hyperparameter of each point in a few words ("m = 49 (r = 8)", "k = 16"). */
  points: { point: ApproxPoint; setting: string }[];
}

const field = (variant: Variant, metric: ApproxMetric): keyof ApproxErrors =>
  variant === 'exact' ? (metric === 'out' ? 'outExact' : 'matExact') : metric === 'out' ? 'outRun' : 'matRun';

/** The plotted value of a point: its mean over the heads, and their min and max. */
export function pointValue(
  p: ApproxPoint,
  variant: Variant,
  metric: ApproxMetric,
): { mean: number | null; min: number | null; max: number | null } {
  const f = field(variant, metric);
  const hs = p.heads.map((x) => x[f]).filter((v): v is number => v != null && Number.isFinite(v));
  return {
    mean: p.mean[f],
    min: hs.length ? Math.min(...hs) : null,
    max: hs.length ? Math.max(...hs) : null,
  };
}

/** The iteration count a method's size sweep is read at: the model's (the report says), else its marked point's. */
function modelIterations(r: ApproxReport, m: ApproxMethodReport): number | null {
  const counts = [...new Set(m.points.map((p) => p.setting.iterations).filter((t): t is number => t != null))];
  if (!counts.length) return null;
  const own = m.modelIterations ?? m.points.find((p) => p.model)?.setting.iterations;
  if (own != null && counts.includes(own)) return own;
  if (m.method === 'soft' && counts.includes(r.newton.iterations)) return r.newton.iterations;
  return Math.max(...counts);
}

const byMacs = (a: { point: ApproxPoint }, b: { point: ApproxPoint }) => a.point.macsPerHead - b.point.macsPerHead;

/** A point's setting in a few words, for the hover and the chart's data table. */
function settingText(method: ApproxMethod, p: ApproxPoint, variant: Variant): string {
  const s = p.setting;
  switch (method) {
    case 'soft':
    case 'nystrom':
      return variant === 'iterations'
        ? `T = ${s.iterations} (m = ${s.landmarks})`
        : `m = ${s.landmarks}${s.ratio != null ? ` (r = ${s.ratio})` : ''}`;
    case 'performer':
      return `m = ${s.features} features`;
    case 'linformer':
      return p.model ? `k = ${s.k} (the layer's E, F)` : `k = ${s.k}`;
    case 'softmax_sr':
      return `t = ${s.landmarks} keys${s.ratio != null ? ` (r = ${s.ratio})` : ''}`;
  }
}

/** The series of one stage, in the order the legend lists them. */
export function stageSeries(r: ApproxReport, s: ApproxStage): ApproxSeries[] {
  const out: ApproxSeries[] = [];
  const series = (method: ApproxMethodReport, variant: Variant, label: string, points: ApproxPoint[]) => {
    if (points.length)
      out.push({
        method,
        variant,
        label,
        points: points.map((point) => ({ point, setting: settingText(method.method, point, variant) })).sort(byMacs),
      });
  };
  for (const m of s.methods) {
    if (m.skipped || !m.points.length) continue;
    if (m.method === 'soft' || m.method === 'nystrom') {
      const T = modelIterations(r, m);
      const atT = m.points.filter((p) => p.setting.iterations === T);
      series(m, 'run', `${m.name} as run (${T} iterations)`, atT);
      series(m, 'exact', `${m.name} exact pinv`, atT);
      // Across iterations at the model's size (its marked point's, else the stage's landmark count).
      const size =
        m.points.find((p) => p.model)?.setting.landmarks ??
        (s.landmarks != null && m.points.some((p) => p.setting.landmarks === s.landmarks)
          ? s.landmarks
          : Math.max(...m.points.map((p) => p.setting.landmarks ?? 0)));
      const atSize = m.points.filter((p) => p.setting.landmarks === size);
      if (atSize.length > 1) series(m, 'iterations', `${m.name} as run, iterations swept (m = ${size})`, atSize);
    } else if (m.method === 'softmax_sr') {
      // The layer's own learned reduction is another reduction than mean pooling: its own marker, no line.
      series(
        m,
        'run',
        m.name,
        m.points.filter((p) => !p.model),
      );
      series(
        m,
        'own',
        `${m.name}, the layer's conv + LayerNorm`,
        m.points.filter((p) => p.model),
      );
    } else series(m, 'run', m.name, m.points);
  }
  return out;
}

/** The series a metric can plot: spatial reduction has no N×N matrix, so no e_mat. */
export function plottedSeries(r: ApproxReport, s: ApproxStage, metric: ApproxMetric): ApproxSeries[] {
  return stageSeries(r, s).filter((x) =>
    x.points.some((p) => positive(pointValue(p.point, x.variant, metric).mean) != null),
  );
}

const headsText = (s: ApproxStage): string =>
  s.headsAnalysed.length === s.heads
    ? `${s.heads} head${s.heads === 1 ? '' : 's'}`
    : `heads ${s.headsAnalysed.join(', ')} of ${s.heads}`;

export const gridText = (s: ApproxStage): string => `${s.grid.h}×${s.grid.w}`;

const range = (min: number | null, max: number | null): string =>
  min == null || max == null ? '—' : min === max ? formatSci(min, 2) : `${formatSci(min, 2)}–${formatSci(max, 2)}`;

function stageSpec(r: ApproxReport, s: ApproxStage, metric: ApproxMetric): ChartSpec {
  const all = stageSeries(r, s);
  const list = plottedSeries(r, s, metric);
  const exactMacs = s.exactMacsPerHead;
  const reference = s.methods.some((m) => m.reference === 'gaussian')
    ? 'attention (softmax or SOFT’s Gaussian kernel)'
    : 'softmax attention';
  const xRange = decades([...all.flatMap((x) => x.points.map((p) => p.point.macsPerHead)), exactMacs]);
  const values = (x: ApproxSeries) =>
    x.points.map((p) => {
      const v = pointValue(p.point, x.variant, metric);
      return { ...p, ...v };
    });
  const yRange = decades(
    list.flatMap((x) =>
      values(x).flatMap((v) => [v.mean, v.min, v.max].map(positive).filter((y): y is number => y != null)),
    ),
  );
  const metricName = METRIC_SHORT[metric];
  return {
    id: `approx-stage-${s.stage}`,
    title: `Stage ${s.stage} — ${attentionName(s.attention)}, ${gridText(s)} grid, N = ${formatInt(s.tokens)}`,
    description: `${METRIC_LABEL[metric]} against the exact attention on the same Q, K, V (float64), mean over ${headsText(s)} with min–max over them as bars, by the method's MACs per head; both axes log. Exact-pinv points sit at the MACs of the run whose iteration they replace.`,
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: list.map((x) => {
          const st = METHOD_STYLES[x.method.method];
          const color = t[st.color] as string;
          const exact = x.variant === 'exact';
          const iterations = x.variant === 'iterations';
          const own = x.variant === 'own';
          const pts = values(x);
          return {
            label: x.label,
            data: pts.map((p): SpreadPoint => ({
              x: p.point.macsPerHead,
              y: positive(p.mean),
              yMin: positive(p.min),
              yMax: positive(p.max),
            })) as { x: number; y: number }[],
            borderColor: color,
            backgroundColor: color,
            pointBackgroundColor: exact ? t.background : color,
            pointBorderColor: color,
            borderDash: exact ? EXACT_DASH : iterations ? ITERATION_DASH : st.dash,
            pointStyle: own ? 'star' : iterations ? 'rectRounded' : st.point,
            // The model's own setting: a larger marker.
            pointRadius: pts.map((p) => (p.point.model ? 7 : iterations ? 2.5 : 4)),
            pointHoverRadius: 7,
            pointBorderWidth: 1.5,
            borderWidth: iterations ? 1.5 : 2,
            showLine: !own,
            spanGaps: false,
          };
        }),
      },
      options: options(t, {
        scales: {
          x: {
            ...axis(t, 'Attention MACs per head (log)'),
            type: 'logarithmic',
            ...(xRange ? { min: xRange.min, max: xRange.max } : {}),
            ticks: { color: t.foreground, callback: logTick((v) => formatMacs(v)) },
          },
          y: {
            ...axis(t, `Relative error ${metricName} (log)`),
            type: 'logarithmic',
            ...(yRange ? { min: yRange.min, max: yRange.max } : {}),
            ticks: {
              color: t.foreground,
              callback: (v: number | string) =>
                Math.abs(Math.log10(Number(v)) - Math.round(Math.log10(Number(v)))) < 1e-9
                  ? formatSci(Number(v), 0)
                  : '',
            },
          },
        },
        plugins: {
          vitlensGuides: {
            color: t.foreground,
            font: `${Math.max(11, Math.round(t.fontSize * 0.92))}px ${t.fontFamily}`,
            vertical: [{ value: exactMacs, label: `exact attention ${formatMacs(exactMacs)}` }],
          },
          tooltip: {
            callbacks: {
              title: (items: { datasetIndex: number; dataIndex: number }[]) => {
                const i = items[0];
                const p = i ? list[i.datasetIndex]?.points[i.dataIndex] : undefined;
                return p ? `${p.setting}${p.point.model ? ' — the model’s setting' : ''}` : '';
              },
              label: (c: { datasetIndex: number; dataIndex: number }) => {
                const x = list[c.datasetIndex];
                const p = x?.points[c.dataIndex];
                if (!x || !p) return '';
                const v = pointValue(p.point, x.variant, metric);
                const spread = p.point.heads.length > 1 ? ` (heads ${range(v.min, v.max)})` : '';
                return `${x.label}: ${metricName} ${formatSci(v.mean, 2)}${spread} · ${formatMacs(p.point.macsPerHead)}/head`;
              },
            },
          },
        },
      }),
    }),
    summary: () => {
      if (!list.length) return `Stage ${s.stage}: no ${metricName} to plot.`;
      const parts = list.map((x) => {
        const pts = values(x).filter((p) => positive(p.mean) != null);
        const best = pts.reduce((b, p) => (p.mean! < b.mean! ? p : b), pts[0]!);
        const own = pts.find((p) => p.point.model);
        return `${x.label}: ${pts.length} point${pts.length === 1 ? '' : 's'}, lowest ${formatSci(best.mean, 2)} at ${best.setting} (${formatMacs(best.point.macsPerHead)})${own ? `, the model's setting ${formatSci(own.mean, 2)}` : ''}`;
      });
      return `Log–log line chart of ${metricName}, the relative Frobenius error against the exact ${reference}, by MACs per head, for stage ${s.stage} (${attentionName(s.attention)}, ${gridText(s)} grid, ${formatInt(s.tokens)} tokens, ${headsText(s)}): ${parts.join('; ')}. Vertical marker: the exact attention, ${formatMacs(exactMacs)} per head.`;
    },
    table: () => ({
      columns: ['Series', 'Setting', 'MACs/head', `${metricName} (mean)`, 'Min over heads', 'Max over heads'],
      rows: list.flatMap((x) =>
        values(x).map((p) => [
          x.label,
          `${p.setting}${p.point.model ? ' *' : ''}`,
          formatMacs(p.point.macsPerHead),
          formatSci(p.mean, 3),
          formatSci(p.min, 3),
          formatSci(p.max, 3),
        ]),
      ),
    }),
    note: () => {
      const lines: string[] = [];
      if (all.some((x) => x.points.some((p) => p.point.model)))
        lines.push('Large markers (* in the table): the model’s own setting.');
      if (metric === 'mat' && all.some((x) => x.method.method === 'softmax_sr'))
        lines.push(`${attentionName('softmax_sr')} has no N×N matrix: it is in the e_out chart only.`);
      const hidden = list.flatMap((x) =>
        values(x)
          .filter((p) => p.mean != null && positive(p.mean) == null)
          .map((p) => `${x.label} at ${p.setting} (${formatSci(p.mean, 2)})`),
      );
      if (hidden.length) lines.push(`Not plotted (no place on a log axis): ${hidden.join('; ')}.`);
      const skipped = s.methods.filter((m) => m.skipped || !m.points.length);
      if (skipped.length)
        lines.push(
          `Not measured on this stage: ${skipped.map((m) => `${m.name} — ${m.skipped ?? `no setting fits ${formatInt(s.tokens)} tokens`}`).join('; ')}.`,
        );
      return lines.length ? lines.join(' ') : null;
    },
  };
}

interface PointRow {
  stage: ApproxStage;
  method: ApproxMethodReport;
  point: ApproxPoint;
}

function pointsTable(ctx: ViewContext, r: ApproxReport): Table<PointRow> {
  const sci = (v: number | null) => formatSci(v, 3);
  const table = new Table<PointRow>({
    id: 'approx-points',
    caption: 'Every point: errors are means over the heads measured (* the model’s own setting)',
    ...tableSort(ctx, 'approx-points'),
    columns: [
      { key: 'stage', label: 'Stage', numeric: true, value: (x) => x.stage.stage },
      { key: 'method', label: 'Method', value: (x) => x.method.name },
      {
        key: 'setting',
        label: 'Setting',
        value: (x) => x.point.label,
        format: (x) => `${x.point.label}${x.point.model ? ' *' : ''}`,
      },
      {
        key: 'macs',
        label: 'MACs/head',
        numeric: true,
        value: (x) => x.point.macsPerHead,
        format: (x) => formatMacs(x.point.macsPerHead),
      },
      {
        key: 'matRun',
        label: 'e_mat run',
        title: '‖S − Ŝ‖_F / ‖S‖_F with Ŝ as the model computes it',
        numeric: true,
        value: (x) => x.point.mean.matRun,
        format: (x) => sci(x.point.mean.matRun),
      },
      {
        key: 'matExact',
        label: 'e_mat exact',
        title: 'The same with the float64 pseudo-inverse in place of the iteration',
        numeric: true,
        value: (x) => x.point.mean.matExact,
        format: (x) => sci(x.point.mean.matExact),
      },
      {
        key: 'outRun',
        label: 'e_out run',
        title: '‖S·V − Ŝ·V‖_F / ‖S·V‖_F with Ŝ as the model computes it',
        numeric: true,
        value: (x) => x.point.mean.outRun,
        format: (x) => sci(x.point.mean.outRun),
      },
      {
        key: 'outExact',
        label: 'e_out exact',
        title: 'The same with the float64 pseudo-inverse in place of the iteration',
        numeric: true,
        value: (x) => x.point.mean.outExact,
        format: (x) => sci(x.point.mean.outExact),
      },
      {
        key: 'outSpread',
        label: 'e_out run over heads',
        title: 'Smallest and largest e_out (run) among the heads measured (sorts by the smallest)',
        numeric: true,
        value: (x) => pointValue(x.point, 'run', 'out').min,
        format: (x) => {
          const v = pointValue(x.point, 'run', 'out');
          return range(v.min, v.max);
        },
      },
    ],
  });
  table.setRows(
    r.stages.flatMap((stage) =>
      stage.methods.flatMap((method) => method.points.map((point) => ({ stage, method, point }))),
    ),
  );
  return table;
}

function stagesTable(ctx: ViewContext, r: ApproxReport): Table<ApproxStage> {
  const table = new Table<ApproxStage>({
    id: 'approx-stages',
    caption: 'The stages measured: where Q, K and V come from, and the exact attention’s cost',
    ...tableSort(ctx, 'approx-stages'),
    columns: [
      { key: 'stage', label: 'Stage', numeric: true, value: (s) => s.stage },
      { key: 'attention', label: 'Attention', value: (s) => attentionName(s.attention) },
      {
        key: 'grid',
        label: 'Grid',
        title: 'Token grid, rows × columns',
        numeric: true,
        value: (s) => s.grid.h * s.grid.w,
        format: (s) => (s.tokens ? gridText(s) : '—'),
      },
      { key: 'tokens', label: 'Tokens N', numeric: true, value: (s) => s.tokens, format: (s) => formatInt(s.tokens) },
      { key: 'heads', label: 'Heads', value: (s) => (s.tokens ? headsText(s) : String(s.heads)) },
      { key: 'd', label: 'd', title: 'Head width', numeric: true, value: (s) => s.headDim },
      {
        key: 'landmarks',
        label: 'Landmarks',
        title: 'The model’s landmark count m',
        numeric: true,
        value: (s) => s.landmarks,
      },
      {
        key: 'exact',
        label: 'Exact MACs/head',
        title: '2·N²·d',
        numeric: true,
        value: (s) => s.exactMacsPerHead,
        format: (s) => (s.exactMacsPerHead ? formatMacs(s.exactMacsPerHead) : '—'),
      },
      { key: 'time', label: 'Time', numeric: true, value: (s) => s.timeMs, format: (s) => formatMs(s.timeMs) },
      {
        key: 'operands',
        label: 'Q, K, V',
        value: (s) => s.skipped ?? s.operands,
        format: (s) => (s.skipped ? h('span', null, badge('skipped', 'warn'), ' ', s.skipped) : s.operands),
      },
    ],
  });
  table.setRows(r.stages);
  return table;
}

/** Each method once (stages repeat them): what it is measured against, its cost formula and its notes. */
function methodsList(r: ApproxReport): HTMLElement {
  const seen = new Map<string, { m: ApproxMethodReport; notes: Set<string> }>();
  for (const s of r.stages)
    for (const m of s.methods) {
      if (m.skipped) continue;
      const e = seen.get(m.name) ?? { m, notes: new Set<string>() };
      for (const n of m.notes) e.notes.add(n);
      seen.set(m.name, e);
    }
  return h(
    'ul',
    { className: 'notes' },
    ...[...seen.values()].map(({ m, notes }) =>
      h(
        'li',
        null,
        h('strong', null, m.name),
        ` — against ${m.reference === 'gaussian' ? 'the Gaussian-kernel attention exp(−dist(Qs, Qs)/2) it approximates' : 'softmax(q·kᵀ/√d)'}; MACs per head ${m.cost}.`,
        notes.size ? h('ul', null, ...[...notes].map((n) => h('li', null, ...prose(n)))) : null,
      ),
    ),
  );
}

export function renderApprox(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const r = ctx.data().approx;
  if (!r) {
    root.appendChild(
      emptyState(
        'No approximation report yet',
        'No approximation report yet — run `vitlens approx <config> --html report.html` or use the Approximation quality CodeLens.',
        { ctx, view: 'approx', label: 'Run approximation analysis' },
      ),
    );
    return { update() {} };
  }
  const live = r.stages.filter((s) => !s.skipped && stageSeries(r, s).length > 0);
  const hasSoft = r.stages.some((s) => s.methods.some((m) => m.method === 'soft' && !m.skipped));
  let metric: ApproxMetric = ctx.selections.approxMetric === 'mat' ? 'mat' : 'out';

  root.appendChild(
    h(
      'div',
      { className: 'summary' },
      h(
        'div',
        { className: 'lead-row' },
        h(
          'p',
          { className: 'lead' },
          `Approximation quality of ${r.model}: each approximate attention against the exact attention it stands for, on the same real Q, K and V, by its cost.`,
        ),
        rerunButton(ctx, 'approx', 'Run analysis again'),
      ),
      facts(
        [
          ['Model', `${r.model} at ${r.resolution}×${r.resolution}`],
          [
            'Inputs',
            [
              r.input.description,
              r.input.checkpoint ? null : [' ', badge('random weights', 'warn', 'Not a trained model: see the notes')],
              r.input.image
                ? null
                : [' ', badge('random image', 'info', 'A seeded random input tensor, not a picture')],
            ].flat(),
          ],
          ['Arithmetic', `${r.arithmetic}: the activations on the float64 reference runtime, every error in float64`],
          ['Errors', `relative Frobenius norms: ${METRIC_LABEL.mat}; ${METRIC_LABEL.out}`],
          ...(hasSoft
            ? ([
                [
                  "SOFT's Newton–Raphson",
                  `variant ${r.newton.variant}, ${r.newton.iterations} iterations in the model`,
                ],
              ] as [string, string][])
            : []),
          ['Time', `activations ${formatMs(r.timingMs.activations)}, total ${formatMs(r.timingMs.total)}`],
        ],
        'facts facts--grid',
      ),
    ),
  );

  const metricId = nextId('approx-metric');
  const select = h('select', { id: metricId });
  for (const m of ['out', 'mat'] as const)
    select.appendChild(
      h('option', { value: m }, m === 'out' ? 'e_out — the outputs S·V' : 'e_mat — the attention matrices S'),
    );
  select.value = metric;
  const controls = h('div', { className: 'controls' }, h('label', { for: metricId }, 'Error '), select);
  const grid = chartGrid();
  root.append(
    section(
      'Error against cost',
      live.length ? controls : null,
      live.length ? grid : h('p', { className: 'muted' }, 'No stage was measured (see the stages below).'),
    ),
  );
  const cards: ChartCard[] = live.map((s) => chartCard(grid, stageSpec(r, s, metric)));
  select.addEventListener('change', () => {
    metric = select.value === 'mat' ? 'mat' : 'out';
    live.forEach((s, i) => cards[i]!.update(stageSpec(r, s, metric)));
    ctx.selections.approxMetric = metric;
    ctx.persist();
    ctx.announce(`Showing ${METRIC_SHORT[metric]}`);
  });

  root.appendChild(section('Points', pointsTable(ctx, r).element));
  root.appendChild(section('Stages', stagesTable(ctx, r).element));
  root.appendChild(section('Methods', methodsList(r)));
  if (r.notes.length)
    root.appendChild(
      section('Notes', h('ul', { className: 'notes' }, ...r.notes.map((n) => h('li', null, ...prose(n))))),
    );
  return { update() {} };
}
