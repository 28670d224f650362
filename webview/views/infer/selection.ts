/**
 * What one card shows: the stage, the head (or the mean over heads) and the overlay's opacity,
 * and the map and weights that choice picks. Persisted per item in `selections.infer`.
 */
import type { AttentionMap } from '../../../protocol/infer';

export const DEFAULT_OPACITY = 0.5;

export interface ItemSelection {
  stage: number;
  /** null = mean over heads. */
  head: number | null;
  opacity: number;
}

export const clamp01 = (v: number): number => (Number.isFinite(v) ? Math.max(0, Math.min(1, v)) : 0.5);

/** The selected stage's map, or the first one when that stage is gone. */
export function selectedMap(maps: readonly AttentionMap[], sel: ItemSelection): AttentionMap | undefined {
  return maps.find((m) => m.stage === sel.stage) ?? maps[0];
}

/** The weights drawn: the selected head's, or the mean over heads. */
export function selectedValues(m: AttentionMap, sel: ItemSelection): number[] {
  return sel.head != null && m.heads[sel.head] ? m.heads[sel.head]! : m.mean;
}

/** The cls key's weight for the selected head (or the mean); null when the map has no cls key. */
export function selectedClsWeight(m: AttentionMap, sel: ItemSelection): number | null | undefined {
  return m.clsWeight ? (sel.head != null ? m.clsWeight.heads[sel.head] : m.clsWeight.mean) : null;
}
