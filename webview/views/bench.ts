/**
 * Benchmark view: latency and memory against tokens on log–log axes (scaling and sweep
 * groups, with the fitted exponent in each label), achieved GFLOP/s per config case, every
 * case in a sortable table (refused / skipped / failed ones with their messages), harness
 * overhead and notes. While a job runs, cases arrive one by one: update() refreshes the
 * charts and the table in place (no re-render, so scroll position and focus stay).
 */
import type { BenchCase, BenchReport, MemoryFigure, RuntimeId, ScalingFit } from '../../protocol/results';
import { rooflineOf } from '../../protocol/roofline';
import {
  attentionName,
  formatBytes,
  formatInt,
  formatMacs,
  formatMs,
  formatPercent,
  formatSci,
  sig,
} from '../../protocol/format';
import {
  attentionStyle,
  axis,
  bytesLogAxis,
  chartCard,
  indexedStyle,
  logTick,
  options,
  type ChartCard,
  type ChartSpec,
} from '../charts';
import { append, clear, h, prose } from '../dom';
import { Table, type Column } from '../table';
import { withAlpha } from '../theme';
import {
  badge,
  chartGrid,
  emptyState,
  rerunButton,
  section,
  SOFTWARE_BADGE,
  tableSort,
  type ViewContext,
  type ViewInstance,
} from './common';

/** A case's token grid, rows × columns ("56×56"; a rectangular sweep grid "32×64"), or a dash where it has none. */
export const gridText = (c: BenchCase): string => (c.grid > 0 ? `${c.grid}×${c.gridW ?? c.grid}` : '—');

/** A roofline fraction, or a dash where the run measured no limits for the runtime. */
const formatFraction = (f: number | undefined): string => (f === undefined ? '—' : formatPercent(f));

const LEVEL_DASH: Record<string, number[]> = { attention: [], block: [8, 4] };

interface Series {
  key: string;
  group: BenchCase['group'];
  runtime: RuntimeId;
  attention: string;
  level: BenchCase['level'];
  cases: BenchCase[];
}

/** Cases of the scaling and sweep groups, grouped per (group, runtime, attention, level). */
function seriesOf(b: BenchReport): Series[] {
  const map = new Map<string, Series>();
  for (const c of b.cases) {
    if (c.group === 'config') continue;
    const key = `${c.group}|${c.runtime}|${c.attention}|${c.level}`;
    let s = map.get(key);
    if (!s)
      map.set(
        key,
        (s = { key, group: c.group, runtime: c.runtime, attention: c.attention, level: c.level, cases: [] }),
      );
    s.cases.push(c);
  }
  const order = (s: Series): string =>
    `${s.group === 'scaling' ? 0 : 1}|${runtimeIndex(b, s.runtime)}|${s.attention}|${s.level}`;
  for (const s of map.values()) s.cases.sort((x, y) => x.tokens - y.tokens);
  return [...map.values()].sort((x, y) => order(x).localeCompare(order(y)));
}

function runtimeIndex(b: BenchReport, id: RuntimeId): number {
  const i = b.runtimes.findIndex((r) => r.id === id);
  return i < 0 ? b.runtimes.length : i;
}

const isSoftware = (b: BenchReport, id: RuntimeId): boolean => b.runtimes.some((r) => r.id === id && r.software);

export function fitFor(
  b: BenchReport,
  s: { runtime: RuntimeId; attention: string; level: string },
): ScalingFit | undefined {
  return b.scaling.find((f) => f.runtime === s.runtime && f.attention === s.attention && f.level === s.level);
}

/** "SOFT attention · ort-cpu: time ∝ N^1.07 (r² 0.98)". */
export function seriesLabel(b: BenchReport, s: Series, what: 'time' | 'memory'): string {
  const base = `${attentionName(s.attention)} ${s.level} · ${s.runtime}${s.group === 'sweep' ? ' (sweep)' : ''}${isSoftware(b, s.runtime) ? ' (software adapter)' : ''}`;
  const fit = s.group === 'scaling' ? fitFor(b, s) : undefined;
  if (!fit) return base;
  return what === 'time'
    ? `${base}: time ∝ N^${fit.timeExponent.toFixed(2)} (r² ${fit.timeR2.toFixed(2)})`
    : `${base}: memory ∝ N^${fit.memoryExponent.toFixed(2)}`;
}

const tokensTick = logTick((v) => (v >= 1000 ? `${sig(v / 1000, 3)}k` : String(v)));

/** A case with a time to plot on a log axis. */
const timed = (c: BenchCase): boolean => c.status === 'ok' && c.timingMs != null && c.timingMs.median > 0;

function notPlotted(b: BenchReport, groups: BenchCase['group'][]): string | null {
  const bad = b.cases.filter((c) => groups.includes(c.group) && !timed(c));
  if (!bad.length) return null;
  return `Not plotted: ${bad.map((c) => `${attentionName(c.attention)} ${c.level} · ${c.runtime} at ${formatInt(c.tokens)} tokens (${c.status}${c.message ? `: ${c.message}` : ''})`).join('; ')}.`;
}

function latencySpec(b: BenchReport): ChartSpec {
  const series = (): Series[] => seriesOf(b);
  return {
    id: 'bench-latency',
    title: 'Latency vs tokens (log–log)',
    description:
      'Median time per run; the exponent b of time ∝ Nᵇ is a least-squares fit on log–log axes (scaling group: landmark count fixed). Hover for p10–p90.',
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: series().map((s) => {
          const st = attentionStyle(s.attention, t);
          const dash = s.group === 'sweep' ? [3, 3] : (LEVEL_DASH[s.level] ?? []);
          return {
            label: seriesLabel(b, s, 'time'),
            data: s.cases.filter(timed).map((c) => ({ x: c.tokens, y: c.timingMs!.median })),
            borderColor: st.color,
            backgroundColor: st.color,
            borderDash: dash,
            pointStyle: st.pointStyle,
            pointRadius: 4,
            pointHoverRadius: 6,
            borderWidth: 2,
          };
        }),
      },
      options: options(t, {
        scales: {
          x: {
            ...axis(t, 'Tokens N (log)'),
            type: 'logarithmic',
            ticks: { color: t.foreground, callback: tokensTick },
          },
          y: {
            ...axis(t, 'Median latency (log)'),
            type: 'logarithmic',
            ticks: { color: t.foreground, callback: logTick(formatMs) },
          },
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: (items: { parsed: { x: number } }[]) => `${formatInt(items[0]?.parsed.x)} tokens`,
              label: (c: { datasetIndex: number; dataIndex: number; dataset: { label?: string } }) => {
                const s = series()[c.datasetIndex];
                const cs = s?.cases.filter(timed)[c.dataIndex];
                const tm = cs?.timingMs;
                return tm
                  ? `${attentionName(s!.attention)} ${s!.level} · ${s!.runtime}, ${gridText(cs!)} grid: ${formatMs(tm.median)} (p10 ${formatMs(tm.p10)}, p90 ${formatMs(tm.p90)})`
                  : (c.dataset.label ?? '');
              },
            },
          },
        },
      }),
    }),
    summary: () => {
      const ss = series();
      if (!ss.length) return 'Log–log line chart of median latency against tokens: no scaling or sweep cases yet.';
      return `Log–log line chart of median latency against tokens, ${ss.length} series: ${ss.map((s) => seriesLabel(b, s, 'time')).join('; ')}.`;
    },
    table: () => ({
      columns: ['Series', 'Tokens', 'Grid', 'Median', 'p10', 'p90'],
      rows: series().flatMap((s) =>
        s.cases
          .filter(timed)
          .map((c) => [
            seriesLabel(b, s, 'time'),
            formatInt(c.tokens),
            gridText(c),
            formatMs(c.timingMs!.median),
            formatMs(c.timingMs!.p10),
            formatMs(c.timingMs!.p90),
          ]),
      ),
    }),
    note: () => noSeries(b) ?? notPlotted(b, ['scaling', 'sweep']),
  };
}

/** An empty log–log chart needs a reason: this run measured only the config's own shapes. */
function noSeries(b: BenchReport): string | null {
  if (seriesOf(b).length) return null;
  return 'No scaling or sweep cases in this report (yet: a live run measures them after the config cases; a run with --no-scaling and no --tokens has none). The per-stage figures are in the GFLOP/s chart and the table below.';
}

interface MemSeries {
  series: Series;
  kind: MemoryFigure['kind'];
  label: string;
  points: { tokens: number; bytes: number }[];
}

function memorySeries(b: BenchReport): MemSeries[] {
  const out: MemSeries[] = [];
  for (const s of seriesOf(b)) {
    const byLabel = new Map<string, MemSeries>();
    for (const c of s.cases) {
      if (c.status !== 'ok') continue;
      for (const m of c.memory) {
        if (!(m.bytes > 0)) continue;
        const k = `${m.kind}|${m.label}`;
        let ms = byLabel.get(k);
        if (!ms) byLabel.set(k, (ms = { series: s, kind: m.kind, label: m.label, points: [] }));
        ms.points.push({ tokens: c.tokens, bytes: m.bytes });
      }
    }
    out.push(...[...byLabel.values()].sort((x, y) => (x.kind === y.kind ? 0 : x.kind === 'estimated' ? -1 : 1)));
  }
  return out;
}

function memLabel(b: BenchReport, m: MemSeries): string {
  const fit = m.kind === 'estimated' && m.series.group === 'scaling' ? fitFor(b, m.series) : undefined;
  const base = `${attentionName(m.series.attention)} ${m.series.level} · ${m.series.runtime}${m.series.group === 'sweep' ? ' (sweep)' : ''}`;
  return m.kind === 'estimated'
    ? `${base} — estimated${fit ? ` (∝ N^${fit.memoryExponent.toFixed(2)})` : ''}`
    : `${base} — measured: ${m.label}`;
}

function memorySpec(b: BenchReport): ChartSpec {
  return {
    id: 'bench-memory',
    title: 'Memory vs tokens (log–log)',
    description:
      'Dashed lines with hollow triangles: analytic estimate (graph liveness, float32). Solid lines with filled circles: what the runtime measured.',
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: memorySeries(b).map((m) => {
          const st = attentionStyle(m.series.attention, t);
          const est = m.kind === 'estimated';
          return {
            label: memLabel(b, m),
            data: m.points.map((p) => ({ x: p.tokens, y: p.bytes })),
            borderColor: st.color,
            backgroundColor: est ? t.background : st.color,
            pointBackgroundColor: est ? t.background : st.color,
            pointBorderColor: st.color,
            borderDash: est ? [7, 4] : [],
            pointStyle: est ? 'triangle' : 'circle',
            pointRadius: est ? 5 : 4,
            pointBorderWidth: 1.5,
            borderWidth: est ? 1.5 : 2.5,
          };
        }),
      },
      options: options(t, {
        scales: {
          x: {
            ...axis(t, 'Tokens N (log)'),
            type: 'logarithmic',
            ticks: { color: t.foreground, callback: tokensTick },
          },
          y: bytesLogAxis(t, 'Memory (log)', formatBytes),
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: (items: { parsed: { x: number } }[]) => `${formatInt(items[0]?.parsed.x)} tokens`,
              label: (c: { dataset: { label?: string }; parsed: { y: number } }) =>
                `${c.dataset.label}: ${formatBytes(c.parsed.y)}`,
            },
          },
        },
      }),
    }),
    summary: () => {
      const ms = memorySeries(b);
      if (!ms.length) return 'Log–log line chart of memory against tokens: no scaling or sweep cases yet.';
      const est = ms.filter((m) => m.kind === 'estimated').length;
      return `Log–log line chart of memory against tokens: ${est} estimated (dashed) and ${ms.length - est} measured (solid) series: ${ms.map((m) => memLabel(b, m)).join('; ')}.`;
    },
    table: () => ({
      columns: ['Series', 'Kind', 'Tokens', 'Bytes'],
      rows: memorySeries(b).flatMap((m) =>
        m.points.map((p) => [
          memLabel(b, m),
          m.kind,
          formatInt(p.tokens),
          `${formatBytes(p.bytes)} (${formatInt(p.bytes)} B)`,
        ]),
      ),
    }),
    note: () => noSeries(b),
  };
}

function gflopsSpec(b: BenchReport): ChartSpec {
  const model = () => {
    const config = b.cases.filter((c) => c.group === 'config');
    const labels: { stage: number; attention: string }[] = [];
    for (const c of config)
      if (!labels.some((l) => l.stage === c.stage && l.attention === c.attention))
        labels.push({ stage: c.stage, attention: c.attention });
    labels.sort((x, y) => x.stage - y.stage);
    const sets: { runtime: RuntimeId; level: BenchCase['level'] }[] = [];
    for (const c of config)
      if (!sets.some((s) => s.runtime === c.runtime && s.level === c.level))
        sets.push({ runtime: c.runtime, level: c.level });
    sets.sort((x, y) => runtimeIndex(b, x.runtime) - runtimeIndex(b, y.runtime) || x.level.localeCompare(y.level));
    const value = (
      l: { stage: number; attention: string },
      s: { runtime: RuntimeId; level: string },
    ): number | null => {
      const c = config.find(
        (x) => x.stage === l.stage && x.attention === l.attention && x.runtime === s.runtime && x.level === s.level,
      );
      return c && c.status === 'ok' ? c.gflopsPerSecond : null;
    };
    const setLabel = (s: { runtime: RuntimeId; level: string }): string =>
      `${s.runtime} · ${s.level}${isSoftware(b, s.runtime) ? ' (software adapter)' : ''}`;
    return { labels, sets, value, setLabel };
  };
  const lab = (l: { stage: number; attention: string }): string => `Stage ${l.stage} · ${attentionName(l.attention)}`;
  /** Two-line category labels: no rotation, nothing cut off. */
  const lab2 = (l: { stage: number; attention: string }): string[] => [`Stage ${l.stage}`, attentionName(l.attention)];
  return {
    id: 'bench-gflops',
    title: 'Achieved GFLOP/s per config case',
    description:
      'GFLOP/s = 2 × MACs / median time, at the config’s own shapes. Missing bars: the case was skipped, refused or failed (see the table).',
    size: 'tall',
    build: (t) => {
      const m = model();
      return {
        type: 'bar',
        data: {
          labels: m.labels.map(lab2),
          datasets: m.sets.map((s) => {
            const st = indexedStyle(runtimeIndex(b, s.runtime), t);
            const block = s.level === 'block';
            return {
              label: m.setLabel(s),
              data: m.labels.map((l) => m.value(l, s)),
              backgroundColor: block ? withAlpha(st.color, 0.35) : withAlpha(st.color, 0.85),
              borderColor: st.color,
              borderWidth: block ? 2 : 1,
              borderDash: [],
              pointStyle: block ? 'rect' : 'rectRot',
            };
          }),
        },
        options: options(t, {
          interaction: { mode: 'index', intersect: false },
          scales: {
            x: { ...axis(t, 'Stage · attention'), ticks: { color: t.foreground, maxRotation: 0, autoSkip: false } },
            y: { ...axis(t, 'Achieved GFLOP/s'), beginAtZero: true },
          },
          plugins: {
            tooltip: {
              callbacks: {
                label: (c: { dataset: { label?: string }; raw: unknown }) =>
                  `${c.dataset.label}: ${c.raw == null ? 'no result' : `${sig(Number(c.raw), 3)} GFLOP/s`}`,
              },
            },
          },
        }),
      };
    },
    summary: () => {
      const m = model();
      let best: { v: number; text: string } | null = null;
      for (const l of m.labels)
        for (const s of m.sets) {
          const v = m.value(l, s);
          if (v != null && (!best || v > best.v)) best = { v, text: `${lab(l)}, ${m.setLabel(s)}` };
        }
      return `Bar chart of achieved GFLOP/s for ${m.labels.length} stage × attention configurations and ${m.sets.length} runtime × level series${best ? `; highest ${sig(best.v, 3)} GFLOP/s (${best.text})` : ''}.`;
    },
    table: () => {
      const m = model();
      return {
        columns: ['Stage · attention', ...m.sets.map(m.setLabel)],
        rows: m.labels.map((l) => [
          lab(l),
          ...m.sets.map((s) => {
            const v = m.value(l, s);
            return v == null ? '—' : `${sig(v, 3)}`;
          }),
        ]),
      };
    },
  };
}

/** "4.29–8.19 ms" (one unit when both share it), else "858 µs–4.74 ms". */
function msRange(a: number, b: number): string {
  const x = formatMs(a);
  const y = formatMs(b);
  const ux = x.split(' ')[1];
  return ux && ux === y.split(' ')[1] ? `${x.split(' ')[0]}–${y}` : `${x}–${y}`;
}

function statusCell(c: BenchCase): HTMLElement {
  return badge(c.status, c.status === 'ok' ? 'ok' : c.status === 'failed' ? 'error' : 'warn');
}

/** The distinct memory figures of a report (one table column each), estimates first. */
function memoryKinds(b: BenchReport): { label: string; kind: MemoryFigure['kind'] }[] {
  const out: { label: string; kind: MemoryFigure['kind'] }[] = [];
  for (const c of b.cases)
    for (const m of c.memory) if (!out.some((x) => x.label === m.label)) out.push({ label: m.label, kind: m.kind });
  return out.sort((x, y) => (x.kind === y.kind ? 0 : x.kind === 'estimated' ? -1 : 1));
}

const SUPERSCRIPTS = ['¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
const mark = (i: number): string => SUPERSCRIPTS[i] ?? `(${i + 1})`;

function memoryColumn(f: { label: string; kind: MemoryFigure['kind'] }, i: number): Column<BenchCase> {
  const name = f.kind === 'estimated' ? 'Est. memory' : 'Meas. memory';
  return {
    key: `mem${i}`,
    label: `${name} ${mark(i)}`,
    // The visible footnote mark points at the legend above the table; screen readers get the label here.
    header: h(
      'span',
      null,
      `${name} `,
      h('span', { 'aria-hidden': 'true' }, mark(i)),
      h('span', { className: 'visually-hidden' }, `: ${f.label}`),
    ),
    title: `${f.kind === 'estimated' ? 'Estimated' : 'Measured'}: ${f.label}`,
    numeric: true,
    value: (c) => c.memory.find((m) => m.label === f.label)?.bytes ?? null,
    format: (c) => formatBytes(c.memory.find((m) => m.label === f.label)?.bytes),
  };
}

/** The legend of the memory columns: what each figure is and how it was obtained. */
function memoryLegend(b: BenchReport): HTMLElement | null {
  const kinds = memoryKinds(b);
  if (!kinds.length) return null;
  return h(
    'p',
    { className: 'table-legend', 'aria-hidden': 'true' },
    'Memory columns: ',
    ...kinds.flatMap((k, i) => [i ? '; ' : '', h('strong', null, `${mark(i)} ${k.kind}`), ` — ${k.label}`]),
    '.',
  );
}

function runtimeCell(b: () => BenchReport): (c: BenchCase) => HTMLElement {
  return (c) =>
    h(
      'span',
      null,
      h('span', { className: 'nowrap' }, c.runtime),
      isSoftware(b(), c.runtime)
        ? [
            ' ',
            h(
              'span',
              { className: 'badge badge--warn badge--tiny', title: SOFTWARE_BADGE },
              'sw',
              h('span', { className: 'visually-hidden' }, ` (${SOFTWARE_BADGE})`),
            ),
          ]
        : null,
    );
}

function caseColumns(b: () => BenchReport): Column<BenchCase>[] {
  return [
    { key: 'runtime', label: 'Runtime', value: (c) => c.runtime, format: runtimeCell(b) },
    { key: 'group', label: 'Group', value: (c) => c.group },
    { key: 'stage', label: 'Stage', numeric: true, value: (c) => c.stage },
    { key: 'attention', label: 'Attention', value: (c) => attentionName(c.attention) },
    { key: 'level', label: 'Level', value: (c) => c.level },
    { key: 'tokens', label: 'Tokens', numeric: true, value: (c) => c.tokens, format: (c) => formatInt(c.tokens) },
    {
      key: 'grid',
      label: 'Grid',
      title: 'Token grid, rows × columns (sorts by rows)',
      numeric: true,
      value: (c) => c.grid,
      format: gridText,
    },
    { key: 'landmarks', label: 'Landmarks', numeric: true, value: (c) => c.landmarks },
    // What sizes the approximation (landmarks, random features, Linformer's k): the cost/accuracy knob.
    { key: 'setting', label: 'Setting', value: (c) => c.setting ?? '' },
    { key: 'status', label: 'Status', value: (c) => c.status, format: statusCell },
    {
      key: 'median',
      label: 'Median',
      numeric: true,
      value: (c) => c.timingMs?.median ?? null,
      format: (c) => formatMs(c.timingMs?.median),
    },
    {
      key: 'p10',
      label: 'p10 – p90',
      title: '10th and 90th percentile of the timed runs (sorts by p10)',
      numeric: true,
      value: (c) => c.timingMs?.p10 ?? null,
      format: (c) => (c.timingMs ? msRange(c.timingMs.p10, c.timingMs.p90) : '—'),
    },
    {
      key: 'gflops',
      label: 'GFLOP/s',
      numeric: true,
      value: (c) => c.gflopsPerSecond,
      format: (c) => (c.gflopsPerSecond == null ? '—' : sig(c.gflopsPerSecond, 3)),
    },
    {
      key: 'matmul',
      label: '% matmul',
      title:
        'Achieved GFLOP/s over the fp32 matmul throughput of the same runtime and device, measured in the same run (the roofline’s compute limit)',
      numeric: true,
      value: (c) => rooflineOf(c, b().limits)?.matmulFraction ?? null,
      format: (c) => formatFraction(rooflineOf(c, b().limits)?.matmulFraction),
    },
    {
      key: 'bandwidth',
      label: '% bandwidth (est.)',
      title:
        'Estimated bytes moved per second (every op reading its operands and writing its result once) over the read bandwidth measured in the same run',
      numeric: true,
      value: (c) => rooflineOf(c, b().limits)?.bandwidthFraction ?? null,
      format: (c) => formatFraction(rooflineOf(c, b().limits)?.bandwidthFraction),
    },
    {
      key: 'macs',
      label: 'MACs',
      numeric: true,
      value: (c) => c.macs,
      format: (c) => (c.status !== 'ok' && c.macs === 0 ? '—' : formatMacs(c.macs)),
    },
    ...memoryKinds(b()).map(memoryColumn),
    {
      key: 'relerr',
      label: 'Rel. error',
      title: 'max |runtime − reference| / max |reference|',
      numeric: true,
      value: (c) => c.relErrorVsReference,
      format: (c) => formatSci(c.relErrorVsReference),
    },
  ];
}

function casesTable(ctx: ViewContext, b: () => BenchReport): Table<BenchCase> {
  return new Table<BenchCase>({
    id: 'bench-cases',
    caption: 'Every benchmark case (refused, skipped and failed ones with their message)',
    hideCaption: true,
    ...tableSort(ctx, 'bench-cases'),
    rowClass: (c) => (c.status === 'ok' ? null : `row--${c.status}`),
    rowDetail: (c) =>
      c.message ? h('span', { className: 'case-message' }, h('strong', null, `${c.status}: `), c.message) : null,
    columns: caseColumns(b),
  });
}

function statusSummary(b: BenchReport): HTMLElement {
  const counts = { ok: 0, refused: 0, skipped: 0, failed: 0 };
  for (const c of b.cases) counts[c.status]++;
  const problems = new Map<string, { status: string; message: string; cases: BenchCase[] }>();
  for (const c of b.cases) {
    if (c.status === 'ok') continue;
    const k = `${c.status}|${c.message ?? ''}`;
    let p = problems.get(k);
    if (!p) problems.set(k, (p = { status: c.status, message: c.message ?? '(no message)', cases: [] }));
    p.cases.push(c);
  }
  return h(
    'div',
    { className: 'status-summary' },
    h(
      'p',
      null,
      `${b.cases.length} cases: `,
      badge(`${counts.ok} ok`, 'ok'),
      ' ',
      counts.refused ? badge(`${counts.refused} refused`, 'warn') : null,
      ' ',
      counts.skipped ? badge(`${counts.skipped} skipped`, 'warn') : null,
      ' ',
      counts.failed ? badge(`${counts.failed} failed`, 'error') : null,
    ),
    problems.size
      ? h(
          'ul',
          { className: 'problems' },
          ...[...problems.values()].map((p) =>
            h(
              'li',
              null,
              badge(p.status, p.status === 'failed' ? 'error' : 'warn'),
              ' ',
              h('span', null, p.message),
              h(
                'span',
                { className: 'muted' },
                ` — ${p.cases.map((c) => `${c.runtime} ${c.group} s${c.stage} ${attentionName(c.attention)} ${c.level} N=${formatInt(c.tokens)}`).join(', ')}`,
              ),
            ),
          ),
        )
      : null,
  );
}

function overheadLine(b: BenchReport): HTMLElement {
  const o = b.overhead;
  return h(
    'p',
    { className: 'overhead' },
    h('strong', null, 'Harness overhead: '),
    `process start ${formatMs(o.processStartMs)}, device probe ${formatMs(o.probeMs)}, graph builds ${formatMs(o.buildMs)}, sessions ${formatMs(o.sessionMs)} — ${formatPercent(o.fraction)} of the ${formatMs(o.totalMs)} run (not part of the timings).`,
  );
}

export function renderBench(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const initial = ctx.data().bench;
  if (!initial) {
    root.appendChild(
      emptyState(
        'No benchmark yet',
        'No benchmark yet — run `vitlens bench <config>` or use the Benchmark CodeLens above the config.',
        { ctx, view: 'bench', label: 'Run benchmark' },
      ),
    );
    return { update() {} };
  }
  const intro = h('div', { className: 'summary' });
  const statusEl = h('div');
  const grid = chartGrid();
  let bench = initial;
  const table = casesTable(ctx, () => bench);
  let memKey = JSON.stringify(memoryKinds(bench));
  const footer = h('div');
  const legendEl = h('div');
  root.append(intro, statusEl, grid, section('Cases', legendEl, table.element), footer);

  const cards: ChartCard[] = [
    chartCard(grid, latencySpec(bench)),
    chartCard(grid, memorySpec(bench)),
    chartCard(grid, gflopsSpec(bench)),
  ];
  cards[2]!.element.classList.add('span-2');

  const renderText = (): void => {
    clear(intro);
    append(intro, [
      h(
        'div',
        { className: 'lead-row' },
        h(
          'p',
          { className: 'lead' },
          `Benchmark of ${bench.model}${bench.config ? ` (${bench.config})` : ''}, started ${bench.startedAt.replace('T', ' ').slice(0, 19)} UTC`,
        ),
        rerunButton(ctx, 'bench', 'Run benchmark again'),
      ),
      bench.unavailable.length
        ? h(
            'ul',
            { className: 'unavailable' },
            ...bench.unavailable.map((u) =>
              h('li', null, badge('unavailable', 'warn'), ' ', h('code', null, u.id), ` — ${u.reason}`),
            ),
          )
        : null,
    ]);
    clear(statusEl);
    statusEl.appendChild(statusSummary(bench));
    clear(legendEl);
    append(legendEl, [memoryLegend(bench)]);
    clear(footer);
    if (bench.overhead.totalMs > 0) footer.appendChild(overheadLine(bench));
    if (bench.notes.length)
      footer.appendChild(
        section('Notes', h('ul', { className: 'notes' }, ...bench.notes.map((n) => h('li', null, ...prose(n))))),
      );
  };
  renderText();
  table.setRows(bench.cases);

  return {
    update() {
      const next = ctx.data().bench;
      if (!next) return;
      bench = next;
      renderText();
      cards[0]!.update(latencySpec(bench));
      cards[1]!.update(memorySpec(bench));
      cards[2]!.update(gflopsSpec(bench));
      const k = JSON.stringify(memoryKinds(bench));
      if (k !== memKey) {
        memKey = k;
        table.setColumns(caseColumns(() => bench));
      }
      table.setRows(bench.cases);
    },
  };
}

export { SOFTWARE_BADGE };
