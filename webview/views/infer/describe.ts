/**
 * The shown map in words: its label in the stage select, the query, the head, the strongest key
 * and the range of its weights — what the canvas's aria-label, the captions and the PNG say, so
 * a screen reader hears what a sighted user sees.
 */
import type { AttentionMap, InferReport } from '../../../protocol/infer';
import { attentionName } from '../../../protocol/format';
import { argmax, colorScale, weightFormatter, type ColorScale } from './heatmap';
import { selectedClsWeight, selectedValues, type ItemSelection } from './selection';

/** Where the query is: "cls token" or "row 3, col 4 of the 14×14 grid". */
export function queryPlace(m: AttentionMap): string {
  return m.query === 'cls' ? 'cls token' : `row ${m.query.row}, col ${m.query.col} of the ${m.grid.h}×${m.grid.w} grid`;
}

export const queryText = (m: AttentionMap): string => `query: ${queryPlace(m)}`;

export const headText = (head: number | null): string => (head == null ? 'mean over heads' : `head ${head}`);

/** The map's entry in the stage select. */
export function mapLabel(m: AttentionMap): string {
  const keys = m.keyGrid.h !== m.grid.h || m.keyGrid.w !== m.grid.w ? ` (keys ${m.keyGrid.h}×${m.keyGrid.w})` : '';
  return `Stage ${m.stage} · ${attentionName(m.attention)} · block ${m.block} · ${m.grid.h}×${m.grid.w}${keys}`;
}

/** A shown map read out once for every place that prints it. */
export interface MapReading {
  map: AttentionMap;
  /** The weights drawn (the head's or the mean), on the key grid, row-major. */
  values: number[];
  scale: ColorScale;
  /** Every weight of this map written with the same decimals. */
  fmt: (v: number | null | undefined) => string;
  /** "mean over heads" or "head 2". */
  head: string;
  /** The strongest key's place and weight, or "none". */
  strongest: string;
  /** The cls key's weight (null: the map has no cls key). */
  cls: number | null | undefined;
}

export function readMap(m: AttentionMap, sel: ItemSelection): MapReading {
  const values = selectedValues(m, sel);
  const scale = colorScale(values);
  const fmt = weightFormatter(scale.min, scale.max);
  const kw = m.keyGrid.w;
  const strongest = argmax(values);
  const sRow = strongest.index >= 0 ? Math.floor(strongest.index / kw) : -1;
  const sCol = strongest.index >= 0 ? strongest.index % kw : -1;
  return {
    map: m,
    values,
    scale,
    fmt,
    head: headText(sel.head),
    strongest:
      strongest.index >= 0
        ? `row ${sRow}, col ${sCol} of the ${m.keyGrid.h}×${m.keyGrid.w} key grid (weight ${fmt(strongest.value)})`
        : 'none',
    cls: selectedClsWeight(m, sel),
  };
}

/** The overlay canvas's aria-label. */
export function overlayLabel(name: string, r: MapReading): string {
  const { map: m, fmt, scale, cls } = r;
  return `Attention overlay on ${name}: stage ${m.stage} (${attentionName(m.attention)}, block ${m.block}), ${r.head}, ${queryText(m)}. Strongest key: ${r.strongest}. Weights from ${fmt(scale.min)} to ${fmt(scale.max)}${cls != null ? `; cls key weight ${fmt(cls)}` : ''}.`;
}

/** The canvas's aria-label when the run has no maps: the picture alone. */
export function pictureLabel(name: string, input: InferReport['input']): string {
  return `${name}: the model input (${input.width}×${input.height}); no attention maps in this run.`;
}
