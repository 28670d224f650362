/**
 * chart.js set-up (only what the views use, so esbuild tree-shakes the rest), the registry
 * of live charts (tests read it; PNG export and theme changes walk it), three small plugins
 * (a canvas background so exported PNGs are readable, guide lines: a vertical marker
 * and horizontal thresholds, and error bars: a point's spread as a whisker) and the chart card every view uses: title, canvas (role=img
 * with a summary), PNG button and a "Data table" alternative with exactly the plotted data.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  Tooltip,
  type ChartConfiguration,
  type ChartType,
  type Plugin,
  type PointStyle,
} from 'chart.js';
import { h, nextId } from './dom';
import { Table, type Column } from './table';
import { readTheme, type Theme, mix, withAlpha } from './theme';

// ── plugins ───────────────────────────────────────────────────────────────────────────────

export interface Guide {
  value: number;
  label: string;
}

export interface GuidesOptions {
  /** Vertical lines at x values (e.g. the configured Newton iteration count). */
  vertical?: Guide[];
  /** Horizontal lines at y values (e.g. error thresholds). */
  horizontal?: Guide[];
  color?: string;
  font?: string;
}

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    vitlensGuides?: GuidesOptions;
    vitlensBackground?: { color?: string };
    vitlensErrorBars?: { capWidth?: number };
  }
}

/** A point with a spread (min–max over heads, say): what the error-bar plugin draws as a whisker. */
export interface SpreadPoint {
  x: number;
  y: number | null;
  yMin?: number | null;
  yMax?: number | null;
}

/** Fills the canvas with the theme background, behind everything (exported PNGs are opaque). */
const backgroundPlugin: Plugin = {
  id: 'vitlensBackground',
  beforeDraw(chart, _args, options: { color?: string }) {
    if (!options.color) return;
    const { ctx } = chart;
    ctx.save();
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = options.color;
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

const guidesPlugin: Plugin = {
  id: 'vitlensGuides',
  afterDatasetsDraw(chart, _args, options: GuidesOptions) {
    const { ctx, chartArea: area, scales } = chart;
    const x = scales['x'];
    const y = scales['y'];
    if (!x || !y || !area) return;
    const color = options.color ?? '#888';
    ctx.save();
    ctx.font = options.font ?? '11px sans-serif';
    ctx.fillStyle = color;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    for (const g of options.horizontal ?? []) {
      const py = y.getPixelForValue(g.value);
      if (!Number.isFinite(py) || py < area.top - 0.5 || py > area.bottom + 0.5) continue;
      ctx.setLineDash([2, 4]);
      ctx.beginPath();
      ctx.moveTo(area.left, py);
      ctx.lineTo(area.right, py);
      ctx.stroke();
      ctx.textAlign = 'left';
      ctx.textBaseline = 'bottom';
      ctx.fillText(g.label, area.left + 4, py - 2);
    }
    for (const g of options.vertical ?? []) {
      const px = x.getPixelForValue(g.value);
      if (!Number.isFinite(px) || px < area.left - 0.5 || px > area.right + 0.5) continue;
      ctx.setLineDash([6, 3]);
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(px, area.top);
      ctx.lineTo(px, area.bottom);
      ctx.stroke();
      const right = px > (area.left + area.right) / 2;
      ctx.textAlign = right ? 'right' : 'left';
      ctx.textBaseline = 'top';
      ctx.fillText(g.label, right ? px - 5 : px + 5, area.top + 4);
    }
    ctx.restore();
  },
};

/**
 * Vertical whiskers from each point's `yMin` to `yMax` with caps, in its dataset's colour, for
 * every visible dataset whose points carry them (points without both draw nothing).
 */
const errorBarsPlugin: Plugin = {
  id: 'vitlensErrorBars',
  afterDatasetsDraw(chart, _args, options: { capWidth?: number }) {
    const { ctx, chartArea: area, scales } = chart;
    const x = scales['x'];
    const y = scales['y'];
    if (!x || !y || !area) return;
    const cap = options.capWidth ?? 4;
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.clip();
    chart.data.datasets.forEach((ds, i) => {
      if (!chart.isDatasetVisible(i)) return;
      const color = (ds as { borderColor?: unknown }).borderColor;
      ctx.strokeStyle = typeof color === 'string' ? color : '#888';
      ctx.lineWidth = 1.25;
      ctx.setLineDash([]);
      for (const raw of ds.data as unknown[]) {
        const p = raw as SpreadPoint | null;
        if (!p || p.yMin == null || p.yMax == null || !(p.yMax > p.yMin)) continue;
        // A log axis has no place for zero or below.
        if (y.type === 'logarithmic' && !(p.yMin > 0)) continue;
        const px = x.getPixelForValue(p.x);
        const top = y.getPixelForValue(p.yMax);
        const bottom = y.getPixelForValue(p.yMin);
        if (![px, top, bottom].every(Number.isFinite)) continue;
        ctx.beginPath();
        ctx.moveTo(px, top);
        ctx.lineTo(px, bottom);
        ctx.moveTo(px - cap, top);
        ctx.lineTo(px + cap, top);
        ctx.moveTo(px - cap, bottom);
        ctx.lineTo(px + cap, bottom);
        ctx.stroke();
      }
    });
    ctx.restore();
  },
};

Chart.register(
  BarController,
  LineController,
  BarElement,
  LineElement,
  PointElement,
  CategoryScale,
  LinearScale,
  LogarithmicScale,
  Legend,
  Tooltip,
  backgroundPlugin,
  guidesPlugin,
  errorBarsPlugin,
);

/** Deterministic and fast: no animation anywhere. */
Chart.defaults.animation = false;
Chart.defaults.animations = {} as typeof Chart.defaults.animations;
Chart.defaults.transitions = {} as typeof Chart.defaults.transitions;
Chart.defaults.responsive = true;
Chart.defaults.maintainAspectRatio = false;

export function applyThemeDefaults(theme: Theme): void {
  Chart.defaults.color = theme.foreground;
  Chart.defaults.borderColor = theme.grid;
  Chart.defaults.font.family = theme.fontFamily;
  Chart.defaults.font.size = Math.max(11, Math.round(theme.fontSize * 0.92));
}

// ── series styles (colour is never the only cue: dashes and point shapes differ too) ─────

export interface SeriesStyle {
  color: string;
  dash: number[];
  pointStyle: PointStyle;
}

const DASHES: number[][] = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4]];
const POINTS: PointStyle[] = ['circle', 'rect', 'triangle', 'rectRot', 'crossRot', 'star'];

export function attentionStyle(attention: string, theme: Theme): SeriesStyle {
  switch (attention) {
    case 'soft':
      return { color: theme.blue, dash: [], pointStyle: 'circle' };
    case 'soft_norm':
      return { color: theme.purple, dash: [4, 4], pointStyle: 'star' };
    case 'ufo':
      return { color: theme.green, dash: [8, 4], pointStyle: 'rect' };
    case 'softmax':
      return { color: theme.red, dash: [2, 3], pointStyle: 'triangle' };
    case 'softmax_sr':
      return { color: theme.orange, dash: [10, 3, 2, 3], pointStyle: 'rectRot' };
    case 'performer':
      return { color: theme.yellow, dash: [12, 4], pointStyle: 'crossRot' };
    case 'nystrom':
      return { color: theme.purple, dash: [1, 3], pointStyle: 'rectRounded' };
    case 'linformer':
      return { color: theme.orange, dash: [], pointStyle: 'cross' };
    default:
      return { color: theme.yellow, dash: [6, 2], pointStyle: 'crossRot' };
  }
}

/** The n-th generic series style (runtimes, heads …). */
export function indexedStyle(i: number, theme: Theme): SeriesStyle {
  const colors = [theme.blue, theme.orange, theme.green, theme.purple, theme.red, theme.yellow];
  return {
    color: colors[i % colors.length]!,
    dash: DASHES[i % DASHES.length]!,
    pointStyle: POINTS[i % POINTS.length]!,
  };
}

/** One colour per op kind for stacked bars: the six chart colours, then tints of them. */
export function opKindColor(kind: string, theme: Theme): string {
  const tint = (c: string): string => mix(c, theme.background, 0.45);
  const shade = (c: string): string => mix(c, theme.foreground, 0.35);
  const map: Record<string, string> = {
    stem: theme.purple,
    pos_embed: tint(theme.purple),
    projection: theme.blue,
    landmark_conv: tint(theme.yellow),
    gaussian_kernel: theme.orange,
    newton: theme.red,
    apply: theme.green,
    dwconv: tint(theme.blue),
    softmax_attention: shade(theme.red),
    ufo_attention: shade(theme.green),
    performer_attention: tint(theme.green),
    nystrom_attention: tint(theme.orange),
    nystrom_inverse: tint(theme.red),
    linformer_attention: shade(theme.orange),
    ffn: mix(theme.foreground, theme.background, 0.55),
    norm: shade(theme.yellow),
    head: shade(theme.blue),
  };
  return map[kind] ?? theme.foreground;
}

/** Shared axis styling. */
export function axis(theme: Theme, title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: { display: true, text: title, color: theme.foreground },
    ticks: { color: theme.foreground },
    grid: { color: theme.grid },
    border: { color: theme.border },
    ...extra,
  };
}

/** Common options: theme colours, legend at the bottom with point styles, background fill. */
export function baseOptions(theme: Theme): Record<string, unknown> {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    normalized: true,
    color: theme.foreground,
    borderColor: theme.grid,
    interaction: { mode: 'nearest', intersect: false },
    plugins: {
      vitlensBackground: { color: theme.background },
      legend: {
        position: 'bottom',
        labels: { color: theme.foreground, usePointStyle: true, boxHeight: 8, padding: 12 },
      },
      tooltip: {
        backgroundColor: withAlpha(theme.background, 0.96),
        titleColor: theme.foreground,
        bodyColor: theme.foreground,
        borderColor: theme.border,
        borderWidth: 1,
        usePointStyle: true,
      },
    },
  };
}

// ── chart cards and the registry ──────────────────────────────────────────────────────────

export type AnyChartConfig = ChartConfiguration<'line'> | ChartConfiguration<'bar'>;

export interface DataTableSpec {
  columns: string[];
  rows: (string | number | null)[][];
}

export interface ChartSpec {
  /** Stable id: registry key, PNG file name, DOM id prefix. */
  id: string;
  title: string;
  /** One line under the title: units, convention, what is an estimate. */
  description?: string;
  /** Height class of the chart box (CSS: chart-box--short / --tall). */
  size?: 'short' | 'normal' | 'tall';
  build(theme: Theme): AnyChartConfig;
  /** The aria-label of the canvas: what the chart shows and its headline numbers. */
  summary(): string;
  /** Exactly the plotted data, formatted for people. */
  table(): DataTableSpec;
  /** Optional line under the chart (e.g. points not plotted and why). */
  note?(): string | null;
}

export interface ChartSnapshot {
  type: string;
  labels: unknown[];
  datasets: {
    label: string;
    data: unknown[];
    borderColor: unknown;
    backgroundColor: unknown;
    borderDash: unknown;
    pointStyle: unknown;
    hidden: boolean;
  }[];
  guides: GuidesOptions | null;
  tickColor: unknown;
  ariaLabel: string;
}

const registry = new Map<string, ChartCard>();
let currentTheme: Theme | null = null;

export function theme(): Theme {
  currentTheme ??= readTheme();
  return currentTheme;
}

/** Re-colours every live chart (called when VS Code or the OS switches theme). */
export function setTheme(t: Theme): void {
  currentTheme = t;
  applyThemeDefaults(t);
  for (const card of registry.values()) card.refresh();
}

export function liveCharts(): Map<string, ChartCard> {
  return registry;
}

export function snapshot(): Record<string, ChartSnapshot> {
  const out: Record<string, ChartSnapshot> = {};
  for (const [id, card] of registry) out[id] = card.snapshot();
  return out;
}

/** Destroys the charts whose card is no longer in the document (a view was re-rendered). */
export function pruneCharts(): void {
  for (const [id, card] of registry) if (!card.element.isConnected) destroyChart(id);
}

export function destroyChart(id: string): void {
  const card = registry.get(id);
  if (!card) return;
  card.destroy();
  registry.delete(id);
}

export function destroyAllCharts(): void {
  for (const id of [...registry.keys()]) destroyChart(id);
}

/** Anything with a PNG button: a chart card, an inference overlay. */
export interface PngSource {
  /** Stable id: the PNG file name. */
  readonly id: string;
  /** The image, base64 without the data-URL prefix. */
  toPngBase64(): string;
}

type ExportHandler = (source: PngSource) => void;
let onExportPng: ExportHandler = () => {};
export function setPngExporter(handler: ExportHandler): void {
  onExportPng = handler;
}
/** A PNG button was pressed: hand the image to the page's exporter (save message or download). */
export function requestPng(source: PngSource): void {
  onExportPng(source);
}

export class ChartCard {
  readonly element: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly noteEl: HTMLParagraphElement;
  private readonly titleEl: HTMLHeadingElement;
  private readonly descEl: HTMLParagraphElement;
  private readonly pngButton: HTMLButtonElement;
  private readonly table: Table<(string | number | null)[]>;
  private chart: Chart | null = null;
  private tableColumns = '';

  constructor(private spec: ChartSpec) {
    const titleId = nextId(`${spec.id}-title`);
    this.canvas = h('canvas', { role: 'img', 'aria-label': '' });
    this.noteEl = h('p', { className: 'chart-note' });
    this.table = new Table<(string | number | null)[]>({
      id: `${spec.id}-data`,
      caption: `Data of “${spec.title}”`,
      columns: [],
      sortable: false,
    });
    const png = h(
      'button',
      { type: 'button', className: 'btn btn--small', title: 'Save this chart as a PNG image' },
      'PNG',
    );
    png.addEventListener('click', () => onExportPng(this));
    this.pngButton = png;
    this.titleEl = h('h3', { id: titleId });
    this.descEl = h('p', { className: 'chart-desc' });
    this.element = h(
      'section',
      { className: 'card chart-card', 'aria-labelledby': titleId, 'data-chart-id': spec.id },
      h('div', { className: 'card-head' }, this.titleEl, h('div', { className: 'card-tools' }, png)),
      this.descEl,
      h('div', { className: `chart-box chart-box--${spec.size ?? 'normal'}` }, this.canvas),
      this.noteEl,
      h('details', { className: 'data-table' }, h('summary', null, 'Data table'), this.table.element),
    );
    registry.get(spec.id)?.destroy();
    registry.set(spec.id, this);
  }

  get id(): string {
    return this.spec.id;
  }
  get title(): string {
    return this.spec.title;
  }
  get instance(): Chart | null {
    return this.chart;
  }

  /** Creates the chart; call once the card is in the document (it needs a sized box). */
  mount(): this {
    const cfg = this.spec.build(theme()) as ChartConfiguration;
    this.chart = new Chart(this.canvas, cfg);
    this.syncText();
    return this;
  }

  /** New data (same chart): rebuild the config from the spec and update in place. */
  update(spec: ChartSpec = this.spec): void {
    this.spec = spec;
    this.refresh();
  }

  /** Rebuild from the current spec and theme, keeping the chart object and its canvas. */
  refresh(): void {
    if (!this.chart) return;
    const cfg = this.spec.build(theme()) as ChartConfiguration;
    this.chart.data = cfg.data;
    this.chart.options = cfg.options ?? {};
    this.chart.update('none');
    this.syncText();
  }

  private syncText(): void {
    this.titleEl.textContent = this.spec.title;
    this.pngButton.setAttribute('aria-label', `Save “${this.spec.title}” as PNG`);
    this.descEl.textContent = this.spec.description ?? '';
    this.descEl.hidden = !this.spec.description;
    this.table.setCaption(`Data of “${this.spec.title}”`);
    this.canvas.setAttribute('aria-label', this.spec.summary());
    const note = this.spec.note?.() ?? null;
    this.noteEl.textContent = note ?? '';
    this.noteEl.hidden = !note;
    const t = this.spec.table();
    const key = t.columns.join('\u0000');
    if (key !== this.tableColumns) {
      this.tableColumns = key;
      this.table.setColumns(
        t.columns.map((c, i): Column<(string | number | null)[]> => ({
          key: String(i),
          label: c,
          value: (r) => r[i] ?? null,
          numeric: i > 0,
        })),
      );
    }
    this.table.setRows(t.rows);
  }

  toPngBase64(): string {
    if (!this.chart) return '';
    return this.chart.toBase64Image('image/png', 1).replace(/^data:image\/png;base64,/, '');
  }

  snapshot(): ChartSnapshot {
    const c = this.chart;
    const cfgOptions = (c?.config.options ?? {}) as {
      plugins?: { vitlensGuides?: GuidesOptions };
      scales?: Record<string, { ticks?: { color?: unknown } }>;
    };
    return {
      type: (c?.config as { type?: string } | undefined)?.type ?? 'none',
      labels: [...(c?.data.labels ?? [])],
      datasets: (c?.data.datasets ?? []).map((d) => {
        const ds = d as unknown as Record<string, unknown>;
        return {
          label: String(ds['label'] ?? ''),
          data: [...((ds['data'] as unknown[]) ?? [])],
          borderColor: ds['borderColor'],
          backgroundColor: ds['backgroundColor'],
          borderDash: ds['borderDash'] ?? [],
          pointStyle: ds['pointStyle'] ?? null,
          hidden: Boolean(ds['hidden']),
        };
      }),
      guides: cfgOptions.plugins?.vitlensGuides ?? null,
      tickColor: cfgOptions.scales?.['x']?.ticks?.color ?? null,
      ariaLabel: this.canvas.getAttribute('aria-label') ?? '',
    };
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}

/** Builds a chart card, appends it to `parent` and creates the chart. */
export function chartCard(parent: HTMLElement, spec: ChartSpec): ChartCard {
  const card = new ChartCard(spec);
  parent.appendChild(card.element);
  return card.mount();
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** Deep merge of plain option objects (arrays and functions are replaced, not merged). */
export function merge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] = isPlain(b) && isPlain(v) ? merge(b, v) : v;
  }
  return out;
}

/** baseOptions(theme) with `extra` merged in. */
export function options<T = any>(t: Theme, extra: Record<string, unknown>): T {
  return merge(baseOptions(t), extra) as T;
}

/** Ticks of a log axis: only 1, 2, 5 × 10ᵏ get a label, so the axis stays readable. */
function isNiceLogTick(v: number): boolean {
  if (!(v > 0)) return false;
  const mant = v / 10 ** Math.floor(Math.log10(v) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6);
}

/** A log axis's tick callback: `fmt` labels the 1, 2, 5 × 10ᵏ ticks, the others stay blank. */
/** `v` where a log axis can plot it (finite and positive), else null. */
export const positive = (v: number | null | undefined): number | null =>
  v != null && Number.isFinite(v) && v > 0 ? v : null;

/** The whole decades around every plottable value (a log axis's range), or null when there is none. */
export function decades(values: readonly (number | null | undefined)[]): { min: number; max: number } | null {
  const v = values.map(positive).filter((x): x is number => x != null);
  if (!v.length) return null;
  return {
    min: 10 ** Math.floor(Math.log10(Math.min(...v)) + 1e-9),
    max: 10 ** Math.ceil(Math.log10(Math.max(...v)) - 1e-9),
  };
}

export const logTick =
  (fmt: (v: number) => string) =>
  (v: number | string): string =>
    isNiceLogTick(Number(v)) ? fmt(Number(v)) : '';

/**
 * A log axis in bytes with ticks at powers of two (1 MiB, 4 MiB, 16 MiB … rather than
 * chart.js's decimal 95.4 MiB, 954 MiB), at most about eight of them.
 */
export function bytesLogAxis(t: Theme, title: string, format: (v: number) => string): Record<string, unknown> {
  return {
    ...axis(t, title),
    type: 'logarithmic',
    ticks: { color: t.foreground, autoSkip: false, callback: (v: number | string) => format(Number(v)) },
    afterBuildTicks: (scale: { min: number; max: number; ticks: { value: number }[] }) => {
      if (!(scale.min > 0) || !(scale.max > scale.min)) return;
      const lo = Math.ceil(Math.log2(scale.min) - 1e-9);
      const hi = Math.floor(Math.log2(scale.max) + 1e-9);
      const step = [1, 2, 5, 10, 20].find((s) => Math.floor(hi / s) - Math.ceil(lo / s) + 1 <= 8) ?? 20;
      const ticks: { value: number }[] = [];
      for (let e = Math.ceil(lo / step) * step; e <= hi; e += step) ticks.push({ value: 2 ** e });
      if (ticks.length >= 2) scale.ticks = ticks;
    },
  };
}
