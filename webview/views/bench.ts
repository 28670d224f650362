/**
 * Benchmark view: latency and memory against tokens on log–log axes (scaling and sweep
 * groups, with the fitted exponent in each label), achieved GFLOP/s per config case, every
 * case in a sortable table (refused / skipped / failed ones with their messages), harness
 * overhead and notes. While a job runs, cases arrive one by one: update() refreshes the
 * charts and the table in place (no re-render, so scroll position and focus stay).
 *
 * Training steps (`vitlens bench --train`, "Benchmark training step"): a badge says what a step is
 * (forward + backward, + AdamW) with its Newton backward and cotangent seed; the series are labelled
 * as training steps, the memory chart adds the forward pass's own peak, and the table gains forward
 * MACs, backward MACs, their ratio, the forward-only peak and the worst output. A report with both
 * forward passes and training steps (two runs merged, protocol/bench-mode.ts) gets a switch, and
 * everything shown is the chosen mode's.
 */
import { benchInMode, benchModes } from '../../protocol/bench-mode';
import type { BenchRunOptions } from '../../protocol/lsp';
import type {
  BenchCase,
  BenchMode,
  BenchReport,
  BenchTrainingSetup,
  MemoryFigure,
  RuntimeId,
  ScalingFit,
} from '../../protocol/results';
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
import { append, clear, h, nextId, prose } from '../dom';
import { Table, type Column } from '../table';
import { withAlpha } from '../theme';
import {
  badge,
  chartGrid,
  emptyState,
  facts,
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

/** Whether the report shown is one of training steps (the view passes one mode's report to every part). */
const isTrain = (b: BenchReport): boolean => b.mode === 'train';

/** "attention", or "attention training step" for a training step's series. */
const levelText = (b: BenchReport, level: string): string => (isTrain(b) ? `${level} training step` : level);

/** "SOFT attention · ort-cpu: time ∝ N^1.07 (r² 0.98)"; a training step's "SOFT attention training step · ort-cpu: …". */
export function seriesLabel(b: BenchReport, s: Series, what: 'time' | 'memory'): string {
  const base = `${attentionName(s.attention)} ${levelText(b, s.level)} · ${s.runtime}${s.group === 'sweep' ? ' (sweep)' : ''}${isSoftware(b, s.runtime) ? ' (software adapter)' : ''}`;
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

/** A training step's MACs in words: "forward 1.2 MMACs + backward 2.3 MMACs (1.92×)". */
function stepMacsText(c: BenchCase): string {
  const t = c.training;
  return t
    ? `forward ${formatMacs(t.forwardMacs)} + backward ${formatMacs(t.backwardMacs)} (${ratioText(t.backwardOverForward)})`
    : '';
}

/** Backward over forward MACs, as the CLI's table writes it: "1.92×". */
const ratioText = (r: number): string => `${r.toFixed(2)}×`;

function latencySpec(b: BenchReport): ChartSpec {
  const series = (): Series[] => seriesOf(b);
  const train = isTrain(b);
  return {
    id: 'bench-latency',
    title: train ? 'Training-step latency vs tokens (log–log)' : 'Latency vs tokens (log–log)',
    description: train
      ? 'Median time per training step (forward + backward in one graph, + the optimizer update where there is one); the exponent b of time ∝ Nᵇ is a least-squares fit on log–log axes (scaling group: landmark count fixed). Hover for p10–p90 and the forward/backward MACs.'
      : 'Median time per run; the exponent b of time ∝ Nᵇ is a least-squares fit on log–log axes (scaling group: landmark count fixed). Hover for p10–p90.',
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
                  ? `${attentionName(s!.attention)} ${levelText(b, s!.level)} · ${s!.runtime}, ${gridText(cs!)} grid: ${formatMs(tm.median)} (p10 ${formatMs(tm.p10)}, p90 ${formatMs(tm.p90)})${cs!.training ? `; ${stepMacsText(cs!)}` : ''}`
                  : (c.dataset.label ?? '');
              },
            },
          },
        },
      }),
    }),
    summary: () => {
      const ss = series();
      const what = train ? 'median training-step latency' : 'median latency';
      if (!ss.length) return `Log–log line chart of ${what} against tokens: no scaling or sweep cases yet.`;
      return `Log–log line chart of ${what} against tokens, ${ss.length} series: ${ss.map((s) => seriesLabel(b, s, 'time')).join('; ')}.`;
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
  /** A training step's forward pass alone (BenchTraining.forwardPeakBytes), beside the step's own peak. */
  forwardOnly?: boolean;
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
    const sorted = [...byLabel.values()].sort((x, y) => (x.kind === y.kind ? 0 : x.kind === 'estimated' ? -1 : 1));
    // A training step's estimate, then its forward pass's alone, then what the runtime measured.
    const forward: MemSeries = { series: s, kind: 'estimated', label: 'forward pass', points: [], forwardOnly: true };
    for (const c of s.cases)
      if (c.status === 'ok' && c.training && c.training.forwardPeakBytes > 0)
        forward.points.push({ tokens: c.tokens, bytes: c.training.forwardPeakBytes });
    const estimates = sorted.filter((m) => m.kind === 'estimated').length;
    if (forward.points.length) sorted.splice(estimates, 0, forward);
    out.push(...sorted);
  }
  return out;
}

function memLabel(b: BenchReport, m: MemSeries): string {
  const fit = m.kind === 'estimated' && m.series.group === 'scaling' ? fitFor(b, m.series) : undefined;
  const base = `${attentionName(m.series.attention)} ${levelText(b, m.series.level)} · ${m.series.runtime}${m.series.group === 'sweep' ? ' (sweep)' : ''}`;
  if (m.forwardOnly) return `${base} — estimated, forward pass only`;
  return m.kind === 'estimated'
    ? `${base} — estimated${fit ? ` (∝ N^${fit.memoryExponent.toFixed(2)})` : ''}`
    : `${base} — measured: ${m.label}`;
}

function memorySpec(b: BenchReport): ChartSpec {
  return {
    id: 'bench-memory',
    title: isTrain(b) ? 'Training-step memory vs tokens (log–log)' : 'Memory vs tokens (log–log)',
    description: isTrain(b)
      ? 'Dashed lines with hollow triangles: the training step’s analytic peak (weights, live activations, gradients and outputs; graph liveness, float32). Dotted lines with crosses: the forward pass’s own peak, as an inference case estimates it. Solid lines with filled circles: what the runtime measured.'
      : 'Dashed lines with hollow triangles: analytic estimate (graph liveness, float32). Solid lines with filled circles: what the runtime measured.',
    size: 'tall',
    build: (t) => ({
      type: 'line',
      data: {
        datasets: memorySeries(b).map((m) => {
          const st = attentionStyle(m.series.attention, t);
          const est = m.kind === 'estimated';
          if (m.forwardOnly)
            return {
              label: memLabel(b, m),
              data: m.points.map((p) => ({ x: p.tokens, y: p.bytes })),
              borderColor: st.color,
              backgroundColor: st.color,
              pointBackgroundColor: st.color,
              pointBorderColor: st.color,
              borderDash: [2, 3],
              pointStyle: 'crossRot',
              pointRadius: 5,
              pointBorderWidth: 1.5,
              borderWidth: 1.5,
            };
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
      const fwd = ms.filter((m) => m.forwardOnly).length;
      const est = ms.filter((m) => m.kind === 'estimated').length - fwd;
      return `Log–log line chart of ${isTrain(b) ? 'training-step ' : ''}memory against tokens: ${est} estimated (dashed)${fwd ? `, ${fwd} forward-pass estimate (dotted)` : ''} and ${ms.length - est - fwd} measured (solid) series: ${ms.map((m) => memLabel(b, m)).join('; ')}.`;
    },
    table: () => ({
      columns: ['Series', 'Kind', 'Tokens', 'Bytes'],
      rows: memorySeries(b).flatMap((m) =>
        m.points.map((p) => [
          memLabel(b, m),
          m.forwardOnly ? 'estimated (forward pass)' : m.kind,
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
      `${s.runtime} · ${levelText(b, s.level)}${isSoftware(b, s.runtime) ? ' (software adapter)' : ''}`;
    return { labels, sets, value, setLabel };
  };
  const lab = (l: { stage: number; attention: string }): string => `Stage ${l.stage} · ${attentionName(l.attention)}`;
  /** Two-line category labels: no rotation, nothing cut off. */
  const lab2 = (l: { stage: number; attention: string }): string[] => [`Stage ${l.stage}`, attentionName(l.attention)];
  return {
    id: 'bench-gflops',
    title: isTrain(b) ? 'Achieved GFLOP/s per config case (training steps)' : 'Achieved GFLOP/s per config case',
    description: isTrain(b)
      ? 'GFLOP/s = 2 × the step’s MACs (forward + backward) / median step time, at the config’s own shapes. Missing bars: the case was skipped, refused or failed (see the table).'
      : 'GFLOP/s = 2 × MACs / median time, at the config’s own shapes. Missing bars: the case was skipped, refused or failed (see the table).',
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

/** A figure with its exact value as the cell's tooltip ("1.23 MMACs", title "1,234,567 MACs"). */
const exactCell = (text: string, exact: string): HTMLElement => h('span', { title: exact }, text);

/** Every output's error against the reference, in the step's order: "out 1.2e-7, d/dx 3.4e-7, …". */
function outputErrorsText(c: BenchCase): string {
  const t = c.training;
  if (!t?.outputErrors) return 'not checked against the reference';
  return `each output against the reference (max |runtime − reference| / its own max |reference|): ${t.outputErrors.map((e) => `${e.name} ${formatSci(e.relError)}`).join(', ')}`;
}

/** The training step's own columns: its MACs apart, their ratio, and (after the estimates) the forward pass's peak. */
function trainingMacColumns(): Column<BenchCase>[] {
  return [
    {
      key: 'fwdmacs',
      label: 'Fwd MACs',
      title: 'MACs of the forward pass alone (graphCost up to the layer’s output)',
      numeric: true,
      value: (c) => c.training?.forwardMacs ?? null,
      format: (c) =>
        c.training ? exactCell(formatMacs(c.training.forwardMacs), `${formatInt(c.training.forwardMacs)} MACs`) : '—',
    },
    {
      key: 'bwdmacs',
      label: 'Bwd MACs',
      title: 'MACs of the rest of the step: the backward pass (an optimizer update adds none)',
      numeric: true,
      value: (c) => c.training?.backwardMacs ?? null,
      format: (c) =>
        c.training ? exactCell(formatMacs(c.training.backwardMacs), `${formatInt(c.training.backwardMacs)} MACs`) : '—',
    },
    {
      key: 'bwdfwd',
      label: 'Bwd/fwd',
      title: 'Backward MACs over forward MACs (a matmul’s two gradients cost twice its forward)',
      numeric: true,
      value: (c) => c.training?.backwardOverForward ?? null,
      format: (c) =>
        c.training
          ? exactCell(
              ratioText(c.training.backwardOverForward),
              `${c.training.backwardOverForward} — gradients for the input and ${c.training.parameters} parameter tensors (${formatInt(c.training.parameterValues)} values)${c.training.newtonBackward ? `; SOFT’s Newton inverse ${c.training.newtonBackward === 'analytic' ? 'differentiated analytically' : 'differentiated through every iteration'}` : ''}`,
            )
          : '—',
    },
  ];
}

function forwardPeakColumn(): Column<BenchCase> {
  return {
    key: 'fwdpeak',
    label: 'Fwd-only peak (est.)',
    title:
      'Analytic peak of the forward pass alone (what an inference case estimates), beside the training step’s own peak',
    numeric: true,
    value: (c) => c.training?.forwardPeakBytes ?? null,
    format: (c) =>
      c.training
        ? exactCell(formatBytes(c.training.forwardPeakBytes), `${formatInt(c.training.forwardPeakBytes)} B`)
        : '—',
  };
}

function worstOutputColumn(): Column<BenchCase> {
  return {
    key: 'worst',
    label: 'Worst output',
    title: 'The output of the step (layer output, d/dx, a parameter’s gradient or update) furthest from the reference',
    value: (c) => c.training?.worstOutput ?? null,
    format: (c) => (c.training?.worstOutput ? h('span', { title: outputErrorsText(c) }, c.training.worstOutput) : '—'),
  };
}

function caseColumns(b: () => BenchReport): Column<BenchCase>[] {
  const train = isTrain(b()) && b().cases.some((c) => c.training);
  const kinds = memoryKinds(b());
  const memory = kinds.map(memoryColumn);
  // The step's own estimate(s) first, then the forward pass's, then what the runtimes measured.
  if (train) memory.splice(kinds.filter((k) => k.kind === 'estimated').length, 0, forwardPeakColumn());
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
      label: train ? 'Step MACs' : 'MACs',
      ...(train ? { title: 'MACs of the whole training step: forward + backward' } : {}),
      numeric: true,
      value: (c) => c.macs,
      format: (c) => (c.status !== 'ok' && c.macs === 0 ? '—' : formatMacs(c.macs)),
    },
    ...(train ? trainingMacColumns() : []),
    ...memory,
    {
      key: 'relerr',
      label: 'Rel. error',
      title: train
        ? 'The worst output’s max |runtime − reference| / max |reference| (each output of the step against its own reference)'
        : 'max |runtime − reference| / max |reference|',
      numeric: true,
      value: (c) => c.relErrorVsReference,
      format: (c) => formatSci(c.relErrorVsReference),
    },
    ...(train ? [worstOutputColumn()] : []),
  ];
}

function casesTable(ctx: ViewContext, b: () => BenchReport): Table<BenchCase> {
  return new Table<BenchCase>({
    id: 'bench-cases',
    caption: `Every benchmark case${isTrain(b()) ? ' (training steps)' : ''} (refused, skipped and failed ones with their message)`,
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

const MODE_LABEL: Record<BenchMode, string> = { inference: 'Inference (forward pass)', train: 'Training step' };

/** The run's training setup: the report's, else what its cases say (a live run before its final report). */
function setupOf(b: BenchReport): Partial<BenchTrainingSetup> {
  if (b.training) return b.training;
  const cs = b.cases.flatMap((c) => (c.training ? [c.training] : []));
  if (!cs.length) return {};
  const newton = cs.find((t) => t.newtonBackward)?.newtonBackward;
  return {
    optimizer: cs.some((t) => t.optimizer === 'adamw') ? 'adamw' : null,
    ...(newton ? { newtonBackward: newton } : {}),
  };
}

/** "Training step: forward + backward + AdamW" (or without the optimizer). */
function trainingBadgeText(b: BenchReport): string {
  return `Training step: forward + backward${setupOf(b).optimizer === 'adamw' ? ' + AdamW' : ''}`;
}

/** What a training step of this report is: the badge, then the cotangent, the Newton backward and the optimizer. */
function trainingBlock(b: BenchReport): HTMLElement {
  const t = setupOf(b);
  const pending = 'with the final report';
  return h(
    'div',
    { className: 'training-setup', id: 'bench-training' },
    h('p', null, badge(trainingBadgeText(b), 'info', 'Every case of this view is one training step, timed as a whole')),
    facts(
      [
        [
          'Backward from',
          `a fixed N(0, 1) cotangent at the layer’s output, seed ${t.cotangentSeed ?? `(${pending})`}; gradients for the input and every parameter`,
        ],
        [
          'Newton backward',
          t.newtonBackward === 'analytic'
            ? 'analytic (−Vᵀ·G·Vᵀ: two m×m products per matrix instead of the iterations)'
            : t.newtonBackward === 'unrolled'
              ? 'unrolled (through every Newton iteration)'
              : `the config’s newton_backward (${pending})`,
        ],
        [
          'Optimizer',
          t.optimizer === 'adamw'
            ? `AdamW${t.optimizerSettings ? ` (${t.optimizerSettings})` : ''}, in the same graph`
            : t.optimizer === null
              ? 'none: gradients only'
              : pending,
        ],
        [
          'Figures',
          'MACs, times, GFLOP/s and the estimated peak are the whole step’s; the table splits forward from backward MACs and gives the forward pass’s own peak; every output is checked against the float64 reference.',
        ],
      ],
      'facts facts--grid',
    ),
  );
}

/** How "Run again" repeats this view's run: a training run with its optimizer and cotangent seed. */
function rerunOptions(b: BenchReport): BenchRunOptions {
  const t = setupOf(b);
  return {
    train: true,
    ...(t.optimizer !== undefined ? { optimizer: t.optimizer } : {}),
    ...(t.cotangentSeed !== undefined ? { seed: t.cotangentSeed } : {}),
  };
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
  let bench = initial;
  /** The mode shown: a live run's own; else the user's choice where the report has it; else the report's latest run's. */
  const pick = (): BenchMode => {
    const modes = benchModes(bench);
    if (ctx.data().live?.job === 'bench' && bench.mode) return bench.mode;
    const chosen = ctx.selections.benchMode;
    if (chosen && modes.includes(chosen)) return chosen;
    return bench.mode && modes.includes(bench.mode) ? bench.mode : modes[0]!;
  };
  /** A live run's mode becomes the choice, so a reload after it shows what it ran. */
  const follow = (): void => {
    if (ctx.data().live?.job === 'bench' && benchModes(bench).length > 1) ctx.selections.benchMode = mode;
  };
  let mode = pick();
  follow();
  let shown = benchInMode(bench, mode);

  const intro = h('div', { className: 'summary' });
  const modeEl = h('div');
  const trainingEl = h('div');
  const statusEl = h('div');
  const grid = chartGrid();
  const table = casesTable(ctx, () => shown);
  let memKey = '';
  const footer = h('div');
  const legendEl = h('div');
  root.append(intro, modeEl, trainingEl, statusEl, grid, section('Cases', legendEl, table.element), footer);

  const cards: ChartCard[] = [
    chartCard(grid, latencySpec(shown)),
    chartCard(grid, memorySpec(shown)),
    chartCard(grid, gflopsSpec(shown)),
  ];
  cards[2]!.element.classList.add('span-2');

  /** The switch, rebuilt only when the modes present change (so focus stays on it while cases arrive). */
  let switchKey = '';
  const renderSwitch = (): void => {
    const modes = benchModes(bench);
    const key = modes.length > 1 ? `${modes.join()}|${mode}` : '';
    if (key === switchKey) {
      // Counts change as cases arrive: refresh the labels' text only.
      for (const m of modes) {
        const count = modeEl.querySelector(`#bench-mode-${m}-count`);
        if (count) count.textContent = countText(m);
      }
      return;
    }
    switchKey = key;
    clear(modeEl);
    if (modes.length < 2) return;
    const name = nextId('bench-mode');
    const fieldset = h(
      'fieldset',
      { className: 'controls bench-mode', id: 'bench-mode' },
      h('legend', null, 'Benchmark of'),
    );
    for (const m of modes) {
      const id = `bench-mode-${m}`;
      const input = h('input', { type: 'radio', name, id, value: m });
      input.checked = m === mode;
      input.addEventListener('change', () => {
        if (!input.checked) return;
        mode = m;
        ctx.selections.benchMode = m;
        ctx.persist();
        switchKey = `${modes.join()}|${mode}`;
        refresh();
        ctx.announce(`Showing ${m === 'train' ? 'training steps' : 'forward passes (inference)'}`);
      });
      fieldset.append(
        h(
          'label',
          { for: id },
          input,
          ` ${MODE_LABEL[m]} `,
          h('span', { id: `${id}-count`, className: 'muted' }, countText(m)),
        ),
      );
    }
    modeEl.appendChild(fieldset);
  };
  const countText = (m: BenchMode): string => {
    const n = bench.cases.filter((c) => (c.mode ?? 'inference') === m).length;
    return `(${n} case${n === 1 ? '' : 's'})`;
  };

  const renderText = (): void => {
    clear(intro);
    append(intro, [
      h(
        'div',
        { className: 'lead-row' },
        h(
          'p',
          { className: 'lead' },
          `${mode === 'train' ? 'Training-step benchmark' : 'Benchmark'} of ${bench.model}${bench.config ? ` (${bench.config})` : ''}, started ${bench.startedAt.replace('T', ' ').slice(0, 19)} UTC`,
        ),
        mode === 'train'
          ? rerunButton(ctx, 'bench', 'Run training benchmark again', () => rerunOptions(shown))
          : rerunButton(ctx, 'bench', 'Run benchmark again'),
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
    renderSwitch();
    clear(trainingEl);
    if (mode === 'train') trainingEl.appendChild(trainingBlock(shown));
    clear(statusEl);
    statusEl.appendChild(statusSummary(shown));
    clear(legendEl);
    append(legendEl, [memoryLegend(shown)]);
    clear(footer);
    if (bench.overhead.totalMs > 0) footer.appendChild(overheadLine(bench));
    if (bench.notes.length)
      footer.appendChild(
        section('Notes', h('ul', { className: 'notes' }, ...bench.notes.map((n) => h('li', null, ...prose(n))))),
      );
  };

  /** Everything drawn from the report shown: text, charts, the table's columns (when they change) and rows. */
  const refresh = (): void => {
    shown = benchInMode(bench, mode);
    renderText();
    cards[0]!.update(latencySpec(shown));
    cards[1]!.update(memorySpec(shown));
    cards[2]!.update(gflopsSpec(shown));
    const k = JSON.stringify([mode, shown.cases.some((c) => c.training), memoryKinds(shown)]);
    if (k !== memKey) {
      memKey = k;
      table.setColumns(caseColumns(() => shown));
      table.setCaption(
        `Every benchmark case${mode === 'train' ? ' (training steps)' : ''} (refused, skipped and failed ones with their message)`,
      );
    }
    table.setRows(shown.cases);
  };
  memKey = JSON.stringify([mode, shown.cases.some((c) => c.training), memoryKinds(shown)]);
  renderText();
  table.setRows(shown.cases);

  return {
    update() {
      const next = ctx.data().bench;
      if (!next) return;
      bench = next;
      // The mode shown stays unless it has gone (or a live run of the other mode has started).
      const modes = benchModes(bench);
      if (!modes.includes(mode) || (ctx.data().live?.job === 'bench' && bench.mode && bench.mode !== mode))
        mode = pick();
      follow();
      refresh();
    },
  };
}

export { SOFTWARE_BADGE };
