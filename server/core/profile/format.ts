/** Number formatting that always says what a number is (MACs vs FLOPs, estimate vs measurement). */
import { CONVENTION_LABELS, README_CONVENTION } from './categories';
import { CONVENTIONS, type Convention } from '../../../protocol/categories';
import type { ModelProfile } from './profile';

export function millions(n: number): string {
  return `${(n / 1e6).toFixed(2)}M`;
}

export function gmacs(n: number): string {
  return `${(n / 1e9).toFixed(2)} GMACs`;
}

export function gflops(macs: number): string {
  return `${((2 * macs) / 1e9).toFixed(2)} GFLOPs`;
}

export function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function grouped(n: number): string {
  return n.toLocaleString('en-US');
}

/** The one-line summary shown on the `model:` line. */
export function summaryLine(p: ModelProfile): string {
  return `${millions(p.params)} params · ${gmacs(p.macsByConvention[README_CONVENTION])} (${README_CONVENTION}) @${p.resolution}`;
}

export function conventionRows(p: ModelProfile): { convention: Convention; label: string; macs: number }[] {
  return CONVENTIONS.map((c) => ({ convention: c, label: CONVENTION_LABELS[c], macs: p.macsByConvention[c] }));
}
