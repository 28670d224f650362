/**
 * A profile in words for the text outputs: the one-line summary and the MACs of each counting
 * convention. The numbers are written by protocol/format.ts, the one place that formats them.
 */
import { CONVENTION_LABELS, README_CONVENTION } from './categories';
import { CONVENTIONS, type Convention } from '../../../protocol/categories';
import { formatMacs, formatParams, REPORT_GIGA, REPORT_MILLIONS } from '../../../protocol/format';
import type { ModelProfile } from './profile';

/** The one-line summary shown on the `model:` line. */
export function summaryLine(p: ModelProfile): string {
  return `${formatParams(p.params, REPORT_MILLIONS)} params · ${formatMacs(p.macsByConvention[README_CONVENTION], REPORT_GIGA)} (${README_CONVENTION}) @${p.resolution}`;
}

export function conventionRows(p: ModelProfile): { convention: Convention; label: string; macs: number }[] {
  return CONVENTIONS.map((c) => ({ convention: c, label: CONVENTION_LABELS[c], macs: p.macsByConvention[c] }));
}
