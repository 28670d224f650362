/**
 * The printed scale under the overlay: the colour bar, its end values (and zero for a diverging
 * scale), the word "weight", and a note saying which scale it is and how the map was upscaled.
 */
import { h } from '../../dom';
import type { MapReading } from './describe';

export class Legend {
  readonly element: HTMLElement;
  private readonly bar = h('div', { className: 'legend-bar', role: 'img', 'aria-label': '' });
  private readonly lo = h('span', { className: 'legend-lo' });
  private readonly mid = h('span', { className: 'legend-mid' });
  private readonly hi = h('span', { className: 'legend-hi' });
  private readonly note = h('p', { className: 'legend-note' });

  constructor() {
    this.element = h(
      'div',
      { className: 'heat-legend' },
      h(
        'div',
        { className: 'legend-row' },
        h('span', { className: 'legend-title' }, 'weight'),
        h(
          'div',
          { className: 'legend-scale' },
          this.bar,
          h('div', { className: 'legend-ticks' }, this.lo, this.mid, this.hi),
        ),
      ),
      this.note,
    );
  }

  hide(): void {
    this.element.hidden = true;
  }

  show({ scale, fmt }: MapReading): void {
    this.element.hidden = false;
    this.bar.style.backgroundImage = scale.gradient();
    this.bar.classList.toggle('legend-bar--diverging', scale.kind === 'diverging');
    this.lo.textContent = fmt(scale.lo);
    this.hi.textContent = scale.kind === 'diverging' ? `+${fmt(scale.hi)}` : fmt(scale.hi);
    this.mid.textContent = scale.kind === 'diverging' ? '0' : '';
    this.bar.setAttribute(
      'aria-label',
      `Colour scale of the weights: ${scale.describe}, from ${fmt(scale.lo)} to ${fmt(scale.hi)}.`,
    );
    this.note.textContent = `${scale.kind === 'diverging' ? 'Diverging (the map has negative weights): blue negative, near-white zero, red positive' : 'Sequential (viridis): dark purple = this map’s minimum, yellow = its maximum'}. Nearest-neighbour upscaling: each key token is one flat block. Ring: the query token.`;
  }
}
