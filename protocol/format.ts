/**
 * How numbers are written for people: the display vocabulary of every view — the dashboard page,
 * the CLI's text, the editor's hovers. One definition per kind of number (plain numbers, bytes,
 * times, SI counts such as MACs, FLOPs and parameters, integers, errors, probabilities).
 *
 * The page prints three significant digits and lets the unit follow the value ("60.1 GiB",
 * "842 µs"); the CLI and the hovers print fixed decimals in fixed units, in columns and sentences
 * people compare from run to run ("60.09 GiB", "1.937 GMACs"). Those differences are options of
 * the one function, not second copies of it. Pure functions: this file imports nothing.
 */

export interface NumberFormat {
  /** Fixed decimals, trailing zeros kept ("1.50"). Without it: `digits` significant digits. */
  decimals?: number;
  /** Significant digits when `decimals` is not given (default 3): "1.23", "12.3", "123", "1235". */
  digits?: number;
  /** The most decimals significant digits may take (default 20): 2 writes 0.1234 as "0.12". */
  maxDecimals?: number;
  /** Significant digits drop their trailing zeros ("1.5", the default) unless this is false ("1.50"). */
  trim?: boolean;
}

const trimZeros = (s: string): string => (s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s);

/** A number in fixed notation, with fixed decimals or significant digits (see NumberFormat). */
export function formatNumber(value: number, o: NumberFormat = {}): string {
  if (!Number.isFinite(value)) return String(value);
  if (o.decimals !== undefined) return value.toFixed(o.decimals);
  const digits = o.digits ?? 3;
  const decimals = value === 0 ? digits - 1 : Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(value))));
  const text = value.toFixed(Math.min(decimals, o.maxDecimals ?? 20));
  return o.trim === false ? text : trimZeros(text);
}

/** Significant-digit fixed notation without trailing zeros: 3 → "1.23", "12.3", "123". */
export const sig = (value: number, digits = 3): string => formatNumber(value, { digits });

export type ByteUnit = 'B' | 'KiB' | 'MiB' | 'GiB' | 'TiB';
const BYTE_UNITS: readonly ByteUnit[] = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export interface BytesFormat {
  /**
   * Decimals in each unit (one number: in every unit); a unit without any gets three significant
   * digits. Bytes are always whole.
   */
  decimals?: number | Partial<Record<ByteUnit, number>>;
  /** The smallest unit written (default B): with 'MiB', 512 KiB is "0.5 MiB". */
  smallest?: ByteUnit;
  /** The largest unit written (default TiB). */
  largest?: ByteUnit;
  /** What a missing or non-finite value reads as (default "—"). */
  missing?: string;
}

/** Binary units, the largest that leaves at least 1 ("60.1 GiB"; with REPORT_BYTES "60.09 GiB"). */
export function formatBytes(bytes: number | null | undefined, o: BytesFormat = {}): string {
  if (bytes == null || !Number.isFinite(bytes)) return o.missing ?? '—';
  let i = BYTE_UNITS.indexOf(o.smallest ?? 'B');
  const last = BYTE_UNITS.indexOf(o.largest ?? 'TiB');
  // Divisions by powers of two are exact: the same value as bytes / 2 ** 30 written out.
  let v = bytes / 1024 ** i;
  while (Math.abs(v) >= 1024 && i < last) {
    v /= 1024;
    i++;
  }
  const unit = BYTE_UNITS[i]!;
  const decimals = typeof o.decimals === 'number' ? o.decimals : o.decimals?.[unit];
  return `${unit === 'B' ? String(Math.round(v)) : decimals !== undefined ? v.toFixed(decimals) : sig(v, 3)} ${unit}`;
}

/**
 * The bytes of the text outputs (CLI tables, hovers, refusal messages): fixed decimals up to GiB,
 * so a column of them lines up ("512 B", "2.0 KiB", "13.4 MiB", "1.25 GiB").
 */
export const REPORT_BYTES: BytesFormat = { decimals: { KiB: 1, MiB: 1, GiB: 2 }, largest: 'GiB' };

/** Buffer limits, in whole MiB whatever their size: "128 MiB", "4096 MiB". */
export const WHOLE_MIB: BytesFormat = { decimals: 0, smallest: 'MiB', largest: 'MiB' };

export type SiPrefix = '' | 'k' | 'M' | 'G' | 'T';
const SI_SCALE: Record<SiPrefix, number> = { T: 1e12, G: 1e9, M: 1e6, k: 1e3, '': 1 };

export interface SiFormat extends NumberFormat {
  /** One prefix for every value ('G': a column of GMACs) instead of the one that fits the value. */
  prefix?: SiPrefix;
  /** Between the number and the prefixed unit (default a space; '' writes "13.07M"). */
  separator?: string;
  /** The number alone, for a column or a line that names the unit. */
  bare?: boolean;
}

/** Decimal SI prefix with a unit: 1.94e9 → "1.94 G" + unit. */
export function si(value: number | null | undefined, unit = '', o: SiFormat = {}): string {
  if (value == null || !Number.isFinite(value)) return '—';
  const prefix = o.prefix ?? (['T', 'G', 'M', 'k'] as const).find((p) => Math.abs(value) >= SI_SCALE[p]) ?? '';
  const scale = SI_SCALE[prefix];
  const text = formatNumber(value / scale, o);
  if (o.bare) return text;
  return prefix || unit ? `${text}${o.separator ?? ' '}${prefix}${unit}` : text;
}

/** Multiply–accumulates: "1.94 GMACs". */
export const formatMacs = (macs: number | null | undefined, o?: SiFormat): string => si(macs, 'MACs', o);
/** Floating-point operations (2 per MAC): "3.87 GFLOPs". */
export const formatFlops = (flops: number | null | undefined, o?: SiFormat): string => si(flops, 'FLOPs', o);
/** Parameter counts: "13.1 M". */
export const formatParams = (n: number | null | undefined, o?: SiFormat): string => si(n, '', o);

/** The text outputs' parameter counts, in millions with two decimals: "13.07M". */
export const REPORT_MILLIONS: SiFormat = { prefix: 'M', decimals: 2, separator: '' };
/** The text outputs' MACs and FLOPs in a sentence, in G with two decimals: "1.94 GMACs". */
export const REPORT_GIGA: SiFormat = { prefix: 'G', decimals: 2 };
/** A column of GMACs or GFLOPs (its header names the unit), three decimals: "1.937". */
export const GIGA_COLUMN: SiFormat = { prefix: 'G', decimals: 3, bare: true };

/** Plain integer with grouped thousands, by a thin space unless told otherwise: "63 504", "13,069,056". */
export function formatInt(n: number | null | undefined, o: { group?: string } = {}): string {
  if (n == null || !Number.isFinite(n)) return '—';
  return Math.round(n)
    .toLocaleString('en-US')
    .replace(/,/g, o.group ?? '\u2009');
}

export type TimeUnit = 'µs' | 'ms' | 's';

export interface TimeFormat extends NumberFormat {
  /** One unit instead of the one that reads best (µs under 1 ms, s from 1000 ms). */
  unit?: TimeUnit;
  /** The number alone, for a column or a line that names the unit. */
  bare?: boolean;
}

/** Milliseconds, switching to µs or s where that reads better: "842 µs", "12.3 ms", "1.24 s". */
export function formatMs(ms: number | null | undefined, o: TimeFormat = {}): string {
  if (ms == null || !Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  const unit = o.unit ?? (abs > 0 && abs < 1 ? 'µs' : abs >= 1000 ? 's' : 'ms');
  const text = formatNumber(unit === 'µs' ? ms * 1000 : unit === 's' ? ms / 1000 : ms, o);
  return o.bare ? text : `${text} ${unit}`;
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

/** A class probability as a percentage with two decimals ("13.49 %"); tiny ones keep two significant digits. */
export function formatProbability(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return '—';
  const pct = p * 100;
  if (pct === 0) return '0 %';
  if (Math.abs(pct) >= 0.01) return `${pct.toFixed(2)} %`;
  if (Math.abs(pct) >= 1e-6) return `${sig(pct, 2)} %`;
  return `${pct.toExponential(1).replace('e+', 'e')} %`;
}

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
  // PVT's spatial reduction is what the SOFT paper ran and reported as "Linformer" (its §4.2).
  softmax_sr: "softmax-SR (the SOFT paper's Linformer)",
  performer: 'Performer',
  nystrom: 'Nyströmformer',
  linformer: 'Linformer',
};
export const attentionName = (a: string | null | undefined): string => (a == null ? '—' : (ATTENTION_NAMES[a] ?? a));
