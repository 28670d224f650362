/**
 * Attention heatmaps on a canvas: the colour scales (sequential viridis for maps that are
 * all ≥ 0, diverging blue–white–red centred on zero when a map has negative weights, as
 * SOFT's un-normalised implied attention can), nearest-neighbour upscaling of the key grid
 * to the picture, the query ring and the keyboard cursor. Colour is never the only cue: the
 * page prints the numbers beside every map, written by `weightFormatter`.
 */

export type Rgb = [number, number, number];

/** Viridis (perceptually uniform, readable for common colour-vision deficiencies), 11 stops. */
const VIRIDIS = [
  '#440154',
  '#482475',
  '#414487',
  '#355f8d',
  '#2a788e',
  '#21918c',
  '#22a884',
  '#44bf70',
  '#7ad151',
  '#bddf26',
  '#fde725',
];
/** ColorBrewer RdBu, reversed: negative blue, zero near-white, positive red. */
const RDBU = ['#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b'];

const hexRgb = (hex: string): Rgb => [
  parseInt(hex.slice(1, 3), 16),
  parseInt(hex.slice(3, 5), 16),
  parseInt(hex.slice(5, 7), 16),
];

function ramp(stops: string[], t: number): Rgb {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0.5)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexRgb(stops[i]!);
  const b = hexRgb(stops[i + 1]!);
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

export interface ColorScale {
  kind: 'sequential' | 'diverging';
  /** The map's own extremes. */
  min: number;
  max: number;
  /** The ends of the colour bar: min..max (sequential) or −m..+m with m = max |w| (diverging). */
  lo: number;
  hi: number;
  /** The colour of a weight. */
  color(v: number): Rgb;
  /** CSS linear-gradient (left → right = lo → hi) for the legend bar. */
  gradient(): string;
  /** Colour stops (offset 0–1, css colour) for a canvas gradient. */
  stops(): [number, string][];
  /** In words, for the legend and the aria-label. */
  describe: string;
}

export function finiteRange(values: number[]): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return Number.isFinite(min) ? { min, max } : { min: 0, max: 0 };
}

/** Sequential when every weight is ≥ 0, diverging (centred on zero) when any is negative. */
export function colorScale(values: number[]): ColorScale {
  const { min, max } = finiteRange(values);
  const diverging = min < 0;
  const m = Math.max(Math.abs(min), Math.abs(max));
  const lo = diverging ? -m : min;
  const hi = diverging ? m : max;
  const palette = diverging ? RDBU : VIRIDIS;
  const span = hi - lo;
  const t = (v: number): number => (span > 0 ? (v - lo) / span : 0.5);
  const stops = (): [number, string][] => palette.map((c, i) => [i / (palette.length - 1), c]);
  return {
    kind: diverging ? 'diverging' : 'sequential',
    min,
    max,
    lo,
    hi,
    color: (v) => ramp(palette, t(v)),
    stops,
    gradient: () =>
      `linear-gradient(to right, ${stops()
        .map(([o, c]) => `${c} ${(o * 100).toFixed(1)}%`)
        .join(', ')})`,
    describe: diverging
      ? 'diverging blue–white–red scale centred on zero (blue negative, near-white zero, red positive), symmetric about zero'
      : 'sequential viridis scale from the map’s minimum (dark purple) to its maximum (yellow)',
  };
}

/** Significant digits that keep a map's spread visible (0.37328 vs 0.37452, not 0.373 twice). */
export function digitsFor(min: number, max: number): number {
  const span = max - min;
  const mag = Math.max(Math.abs(min), Math.abs(max));
  if (!(span > 0) || !(mag > 0)) return 3;
  return Math.min(7, Math.max(3, Math.ceil(Math.log10(mag / span)) + 2));
}

/**
 * Weights of one map, all with the same decimals (0.20000 next to 0.20062, not 0.2) and enough
 * significant digits to tell its values apart; exponent notation for maps of tiny weights.
 */
export function weightFormatter(min: number, max: number): (v: number | null | undefined) => string {
  const d = digitsFor(min, max);
  const mag = Math.max(Math.abs(min), Math.abs(max));
  const tiny = mag > 0 && mag < 1e-4;
  const decimals = mag > 0 ? Math.max(0, Math.min(12, d - 1 - Math.floor(Math.log10(mag)))) : 0;
  return (v) => {
    if (v == null || !Number.isFinite(v)) return '—';
    const text = tiny ? v.toExponential(d - 1).replace('e+', 'e') : v.toFixed(decimals);
    return text.replace(/^-/, '−');
  };
}

/** Index and value of the largest weight (the strongest key). */
export function argmax(values: number[]): { index: number; value: number } {
  let index = -1;
  let value = -Infinity;
  values.forEach((v, i) => {
    if (Number.isFinite(v) && v > value) {
      value = v;
      index = i;
    }
  });
  return { index, value };
}

export interface OverlayDrawing {
  /** The model's input picture (null for raw tensors: the map is drawn on grey). */
  image: CanvasImageSource | null;
  values: number[];
  keyGrid: { h: number; w: number };
  scale: ColorScale;
  /** 0–1: how strongly the heatmap covers the picture. */
  opacity: number;
  /** The query's cell centre as fractions of the picture, or null (cls token). */
  query: { x: number; y: number; cellW: number; cellH: number } | null;
  /** The keyboard cursor's cell (fractions), drawn while the canvas has focus. */
  cursor: { x0: number; y0: number; x1: number; y1: number } | null;
}

/**
 * The picture (pixels kept sharp), the map upscaled by nearest neighbour (one flat block per
 * key token) blended at `opacity`, a ring with four ticks around the query's cell centre and
 * the keyboard cursor. Rings and cursor are drawn twice (dark, then light) so they read on any
 * picture and in any theme.
 */
export function drawOverlay(canvas: HTMLCanvasElement, d: OverlayDrawing): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const W = canvas.width;
  const H = canvas.height;
  ctx.save();
  ctx.clearRect(0, 0, W, H);
  ctx.imageSmoothingEnabled = false;
  if (d.image) ctx.drawImage(d.image, 0, 0, W, H);
  else {
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, W, H);
  }
  const { h: kh, w: kw } = d.keyGrid;
  ctx.globalAlpha = Math.max(0, Math.min(1, d.opacity));
  for (let r = 0; r < kh; r++) {
    const y0 = Math.round((r * H) / kh);
    const y1 = Math.round(((r + 1) * H) / kh);
    for (let c = 0; c < kw; c++) {
      const v = d.values[r * kw + c];
      if (v == null || !Number.isFinite(v)) continue;
      const [R, G, B] = d.scale.color(v);
      ctx.fillStyle = `rgb(${R}, ${G}, ${B})`;
      const x0 = Math.round((c * W) / kw);
      const x1 = Math.round(((c + 1) * W) / kw);
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    }
  }
  ctx.globalAlpha = 1;
  if (d.query) {
    const cx = d.query.x * W;
    const cy = d.query.y * H;
    const radius = Math.max(6, Math.min(16, Math.min(d.query.cellW * W, d.query.cellH * H) * 0.45));
    const tick = 7;
    const path = (): void => {
      ctx.beginPath();
      ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
      for (const [dx, dy] of [
        [1, 0],
        [-1, 0],
        [0, 1],
        [0, -1],
      ] as const) {
        ctx.moveTo(cx + dx * radius, cy + dy * radius);
        ctx.lineTo(cx + dx * (radius + tick), cy + dy * (radius + tick));
      }
    };
    path();
    ctx.strokeStyle = 'rgba(0, 0, 0, 0.85)';
    ctx.lineWidth = 4;
    ctx.stroke();
    path();
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 2;
    ctx.stroke();
  }
  if (d.cursor) {
    const x = d.cursor.x0 * W + 1.5;
    const y = d.cursor.y0 * H + 1.5;
    const w = (d.cursor.x1 - d.cursor.x0) * W - 3;
    const h = (d.cursor.y1 - d.cursor.y0) * H - 3;
    ctx.lineWidth = 3;
    ctx.setLineDash([]);
    ctx.strokeStyle = 'rgba(0, 0, 0, 0.85)';
    ctx.strokeRect(x, y, w, h);
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = '#ffffff';
    ctx.strokeRect(x, y, w, h);
  }
  ctx.restore();
}
