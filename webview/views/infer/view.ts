/**
 * Inference view: what the model predicted for each image (top-5 with probability bars and
 * the numbers) and where it looked — the attention map of the chosen stage and head, upscaled
 * onto the model's input picture as a heatmap with a printed scale, the query marked.
 *
 * In VS Code a click on the picture (or Enter on the keyboard cursor) asks the host for the
 * maps of the token under that point (`attentionQuery`); the answer (`attentionMaps`) replaces
 * that image's maps. A static report has nobody to ask: it shows the maps it was written with.
 *
 * This file is the view: the run's summary and one card per item (card.ts).
 */
import type { InferReport } from '../../../protocol/infer';
import { formatInt, formatMs } from '../../../protocol/format';
import { h, prose } from '../../dom';
import {
  badge,
  emptyState,
  facts,
  rerunButton,
  runtimeLine,
  section,
  type ViewContext,
  type ViewInstance,
} from '../common';
import { ItemCard } from './card';

function timingText(r: InferReport): string {
  const t = r.timingMs;
  return `preprocess ${formatMs(t.preprocess)} · build ${formatMs(t.build)} · session ${formatMs(t.session)} · forward ${formatMs(t.forward)}`;
}

export function renderInfer(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const r = ctx.data().infer;
  if (!r) {
    root.appendChild(
      emptyState(
        'No inference yet',
        'No inference yet — run `vitlens infer … --html` or use the Run inference CodeLens.',
        { ctx, view: 'infer', label: 'Run inference' },
      ),
    );
    return { update() {} };
  }
  const n = r.items.length;
  const count = `${n} ${r.items.every((x) => x.kind === 'image') ? (n === 1 ? 'image' : 'images') : n === 1 ? 'item' : 'items'}`;
  root.appendChild(
    h(
      'div',
      { className: 'summary' },
      h(
        'div',
        { className: 'lead-row' },
        h('p', { className: 'lead' }, `Inference of ${r.model}${r.config ? ` (${r.config})` : ''} on ${count}`),
        rerunButton(ctx, 'infer', 'Run inference again'),
      ),
      facts(
        [
          ['Model', r.model],
          [
            'Weights',
            [
              r.weights,
              r.checkpoint
                ? h(
                    'span',
                    { className: 'muted' },
                    ` · ${formatInt(r.checkpoint.tensors)} tensors, ${formatInt(r.checkpoint.elements)} values`,
                  )
                : [' ', badge('random weights — predictions mean nothing', 'warn')],
            ].flat(),
          ],
          ['Runtime and device', h('ul', { className: 'runtimes' }, runtimeLine(r.runtime))],
          ['Classes', formatInt(r.numClasses)],
          ['Input', `batch ${r.input.batch} · ${r.input.width}×${r.input.height} · ${r.input.transform}`],
          [
            'Timing (one run)',
            [timingText(r), h('span', { className: 'muted' }, ` · checkpoint read ${formatMs(r.timingMs.checkpoint)}`)],
          ],
        ],
        'facts facts--grid infer-facts',
      ),
      r.notes.length ? h('ul', { className: 'notes' }, ...r.notes.map((x) => h('li', null, ...prose(x)))) : null,
    ),
  );
  if (!n) {
    root.appendChild(h('p', { className: 'muted' }, 'This run has no items.'));
    return { update() {} };
  }
  const cards = r.items.map((item, i) => new ItemCard(ctx, r, i, item));
  root.appendChild(
    section('Predictions and attention', h('div', { className: 'infer-items' }, ...cards.map((c) => c.element))),
  );
  return {
    update() {
      const next = ctx.data().infer;
      if (!next) return;
      next.items.forEach((item, i) => cards[i]?.sync(item));
    },
    queryFailed(item, message) {
      cards[item]?.fail(message);
    },
  };
}
