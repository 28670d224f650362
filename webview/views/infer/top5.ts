/** What the model predicted for one item: the top-5 classes, each probability printed and drawn as a bar. */
import type { ClassPrediction, InferItem } from '../../../protocol/infer';
import { formatProbability, sig } from '../../../protocol/format';
import { h } from '../../dom';
import { Table } from '../../table';
import { clamp01 } from './selection';

function probabilityCell(p: number): HTMLElement {
  const fill = h('span', { className: 'prob-fill' });
  // CSSOM, not a style attribute: allowed under the page's CSP. The bar's full width is 100 %.
  fill.style.width = `${(clamp01(p) * 100).toFixed(2)}%`;
  return h(
    'span',
    { className: 'prob' },
    h('span', { className: 'prob-value' }, formatProbability(p)),
    h('span', { className: 'prob-bar', 'aria-hidden': 'true' }, fill),
  );
}

type RankedPrediction = ClassPrediction & { rank: number };

export function top5Table(item: InferItem, index: number): HTMLElement {
  if (!item.top5.length) return h('p', { className: 'muted' }, 'No predictions for this item.');
  const table = new Table<RankedPrediction>({
    id: `infer-top5-${index}`,
    caption: `Top-5 predictions for ${item.name}`,
    hideCaption: true,
    sortable: false,
    columns: [
      { key: 'rank', label: 'Rank', numeric: true, value: (r) => r.rank },
      { key: 'label', label: 'Class', value: (r) => r.label },
      { key: 'index', label: 'Index', numeric: true, value: (r) => r.index },
      {
        key: 'probability',
        label: 'Probability',
        numeric: true,
        value: (r) => r.probability,
        format: (r) => probabilityCell(r.probability),
      },
      {
        key: 'logit',
        label: 'Logit',
        numeric: true,
        value: (r) => r.logit,
        format: (r) => sig(r.logit, 4).replace(/^-/, '−'),
      },
    ],
  });
  table.setRows(item.top5.map((p, i) => ({ ...p, rank: i + 1 })));
  return table.element;
}
