/** Number formatting shared by every view (tables, ticks, tooltips, aria-labels). */

const trim = (s: string): string => (s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s);

/** Significant-digit fixed notation without trailing zeros: 3 → "1.23", "12.3", "123". */
export function sig(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return trim(value.toFixed(Math.min(decimals, 20)));
}

/** Binary units, as the harness reports them ("60.09 GiB"). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? String(Math.round(v)) : sig(v, 3)} ${units[i]}`;
}

/** Decimal SI prefix with a unit: 1.94e9 → "1.94 G" + unit. */
export function si(value: number | null | undefined, unit = '', digits = 3): string {
  if (value == null || !Number.isFinite(value)) return '—';
  const prefixes: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  const abs = Math.abs(value);
  for (const [scale, p] of prefixes) if (abs >= scale) return `${sig(value / scale, digits)} ${p}${unit}`;
  return `${sig(value, digits)}${unit ? ` ${unit}` : ''}`;
}

/** Multiply–accumulates: "1.94 GMACs". */
export const formatMacs = (macs: number | null | undefined): string => si(macs, 'MACs');
/** Parameter counts: "13.1 M". */
export const formatParams = (n: number | null | undefined): string => si(n, '');
/** Plain integer with thin grouping: "63 504". */
export function formatInt(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US').replace(/,/g, '\u2009');
}

/** Milliseconds, switching to µs or s where that reads better. */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  if (abs > 0 && abs < 1) return `${sig(ms * 1000, 3)} µs`;
  if (abs >= 1000) return `${sig(ms / 1000, 3)} s`;
  return `${sig(ms, 3)} ms`;
}

/** Scientific notation for errors and residuals: "4.68e-7". */
export function formatSci(v: number | null | undefined, digits = 2): string {
  if (v == null || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 0.01 && abs < 1000) return sig(v, digits + 1);
  return v.toExponential(digits).replace('e+', 'e');
}

export const formatPercent = (fraction: number): string => `${sig(fraction * 100, 2)} %`;

/** "2026-11-21 13:14 UTC" from an ISO string (stable across machines: always UTC). */
export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Human names of the attention kinds. */
const ATTENTION_NAMES: Record<string, string> = {
  soft: 'SOFT',
  soft_norm: 'SOFT-Norm',
  ufo: 'UFO-ViT',
  softmax: 'softmax',
  softmax_sr: 'softmax-SR',
};
export const attentionName = (a: string | null | undefined): string => (a == null ? '—' : (ATTENTION_NAMES[a] ?? a));

/** Ticks of a log axis: only 1, 2, 5 × 10ᵏ get a label, so the axis stays readable. */
export function isNiceLogTick(v: number): boolean {
  if (!(v > 0)) return false;
  const mant = v / 10 ** Math.floor(Math.log10(v) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6);
}

/** A class probability as a percentage with two decimals ("13.49 %"); tiny ones keep two significant digits. */
export function formatProbability(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return '—';
  const pct = p * 100;
  if (pct === 0) return '0 %';
  if (Math.abs(pct) >= 0.01) return `${pct.toFixed(2)} %`;
  if (Math.abs(pct) >= 1e-6) return `${sig(pct, 2)} %`;
  return `${pct.toExponential(1).replace('e+', 'e')} %`;
}
