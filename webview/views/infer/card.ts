/**
 * One item's card: the model's input picture with the selected attention map over it, the
 * controls (stage, head, opacity), the printed scale, the map's meaning, and beside them the
 * top-5 and the map's numbers. The card holds the item's selection and persists it; the host's
 * answer to a query arrives through `sync` (new maps) or `fail`.
 */
import type { AttentionMap, InferItem, InferReport } from '../../../protocol/infer';
import { formatProbability } from '../../../protocol/format';
import { requestPng } from '../../charts';
import { clear, h, nextId } from '../../dom';
import type { ViewContext } from '../common';
import { QueryCursor } from './cursor';
import { mapLabel, overlayLabel, pictureLabel, queryText, readMap } from './describe';
import { colorScale, drawOverlay, type OverlayDrawing } from './heatmap';
import { Legend } from './legend';
import { overlayPng } from './png';
import { clamp01, DEFAULT_OPACITY, selectedMap, selectedValues, type ItemSelection } from './selection';
import { top5Table } from './top5';
import { MapValues } from './values';

/** The overlay canvas is drawn at about this many pixels on its long side (whole multiples of the input). */
const OVERLAY_TARGET_PX = 384;

const basename = (p: string): string => p.split(/[\\/]/).pop() || p;
const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'item';

export class ItemCard {
  readonly element: HTMLElement;
  private maps: AttentionMap[];
  private readonly sel: ItemSelection;
  private image: HTMLImageElement | null = null;
  private imageState: 'none' | 'loading' | 'ready' | 'failed';
  private readonly canvas: HTMLCanvasElement;
  private readonly cursor: QueryCursor;
  private readonly stageSelect: HTMLSelectElement;
  private readonly headSelect: HTMLSelectElement;
  private readonly opacityInput: HTMLInputElement;
  private readonly opacityOut: HTMLOutputElement;
  private readonly legend = new Legend();
  private readonly values: MapValues;
  private readonly meaningEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly pngButton: HTMLButtonElement;

  constructor(
    private readonly ctx: ViewContext,
    private readonly report: InferReport,
    private readonly index: number,
    private readonly item: InferItem,
  ) {
    this.maps = item.maps;
    const saved = ctx.selections.infer?.[String(index)];
    this.sel = {
      stage: saved?.stage ?? item.maps[0]?.stage ?? 0,
      head: saved?.head ?? null,
      opacity: saved && Number.isFinite(saved.opacity) ? clamp01(saved.opacity) : DEFAULT_OPACITY,
    };

    const titleId = nextId(`infer-item-${index}-title`);
    const hintId = nextId(`infer-hint-${index}`);
    const stageId = `infer-stage-${index}`;
    const headId = `infer-head-${index}`;
    const opacityId = `infer-opacity-${index}`;
    const scale = Math.max(1, Math.ceil(OVERLAY_TARGET_PX / Math.max(report.input.width, report.input.height, 1)));
    this.canvas = h('canvas', {
      id: `infer-overlay-${index}`,
      className: 'overlay-canvas',
      role: 'img',
      tabindex: 0,
      'aria-label': '',
      'aria-describedby': hintId,
      width: report.input.width * scale,
      height: report.input.height * scale,
      'data-state': 'loading',
    });
    this.stageSelect = h('select', { id: stageId });
    this.headSelect = h('select', { id: headId });
    this.opacityInput = h('input', {
      id: opacityId,
      type: 'range',
      min: 0,
      max: 100,
      step: 5,
      value: Math.round(this.sel.opacity * 100),
    });
    this.opacityOut = h('output', { for: opacityId, className: 'opacity-value' });
    this.meaningEl = h('p', { className: 'map-meaning' });
    this.statusEl = h('p', { className: 'query-status', role: 'status', 'aria-live': 'polite' });
    this.values = new MapValues(index);
    this.pngButton = h(
      'button',
      {
        type: 'button',
        className: 'btn btn--small',
        title: 'Save the picture with its overlay, scale and query as a PNG image',
      },
      'PNG',
    );
    this.pngButton.addEventListener('click', () => requestPng({ id: this.pngId(), toPngBase64: () => this.png() }));

    const original = item.original ? `${item.original.width}×${item.original.height} px` : null;
    const sub =
      item.kind === 'image'
        ? `${original ? `image, ${original}` : 'image'} → model input ${report.input.width}×${report.input.height}`
        : `raw tensor → model input ${report.input.width}×${report.input.height} (no picture: the map is drawn on grey)`;
    const top1 = item.top5[0];
    const hint = h(
      'p',
      { id: hintId, className: 'overlay-hint muted' },
      'Click a point of the picture — or focus it, move the cursor with the arrow keys and press Enter — to see what the token there attends to.',
    );
    this.element = h(
      'section',
      { className: 'card infer-item', id: `infer-item-${index}`, 'aria-labelledby': titleId, 'data-item': index },
      h(
        'div',
        { className: 'card-head' },
        h(
          'div',
          { className: 'infer-title' },
          h('h3', { id: titleId }, item.name),
          h('p', { className: 'infer-sub muted' }, sub),
        ),
        h('div', { className: 'card-tools' }, this.pngButton),
      ),
      h(
        'div',
        { className: 'infer-body' },
        h(
          'div',
          { className: 'infer-visual' },
          h(
            'div',
            { className: 'overlay-controls' },
            h('label', { for: stageId }, 'Stage'),
            this.stageSelect,
            h('label', { for: headId }, 'Head'),
            this.headSelect,
            h('label', { for: opacityId }, 'Opacity'),
            h('span', { className: 'opacity-field' }, this.opacityInput, this.opacityOut),
          ),
          h('div', { className: 'overlay-frame' }, this.canvas),
          this.legend.element,
          this.meaningEl,
          hint,
          this.statusEl,
        ),
        h(
          'div',
          { className: 'infer-side' },
          top1
            ? h(
                'p',
                { className: 'top1' },
                h('span', { className: 'muted' }, 'Predicted: '),
                h('strong', null, top1.label),
                ` — ${formatProbability(top1.probability)}`,
              )
            : null,
          h('h4', null, 'Top-5 predictions'),
          top5Table(item, index),
          this.values.block,
          this.values.details,
        ),
      ),
    );

    this.stageSelect.addEventListener('change', () => {
      const m = this.maps.find((x) => String(x.stage) === this.stageSelect.value);
      if (!m) return;
      this.sel.stage = m.stage;
      if (this.sel.head != null && this.sel.head >= m.heads.length) this.sel.head = null;
      this.fillHeads();
      this.redraw();
      this.save();
    });
    this.headSelect.addEventListener('change', () => {
      this.sel.head = this.headSelect.value === 'mean' ? null : Number(this.headSelect.value);
      this.redraw();
      this.save();
    });
    this.opacityInput.addEventListener('input', () => {
      this.sel.opacity = clamp01(Number(this.opacityInput.value) / 100);
      this.redraw();
    });
    this.opacityInput.addEventListener('change', () => this.save());
    this.cursor = new QueryCursor({
      ctx,
      index,
      canvas: this.canvas,
      status: this.statusEl,
      maps: () => this.maps,
      redraw: () => this.redraw(),
    });

    if (item.inputImage) {
      this.imageState = 'loading';
      const img = new Image();
      img.decoding = 'async';
      img.src = item.inputImage;
      this.image = img;
      img
        .decode()
        .then(() => {
          this.imageState = 'ready';
          this.redraw();
        })
        .catch(() => {
          this.imageState = 'failed';
          this.image = null;
          this.statusEl.textContent = 'The input picture could not be decoded: the map is drawn on grey.';
          this.redraw();
        });
    } else this.imageState = 'none';
    this.fillStages();
    this.redraw();
  }

  /** The host could not answer the query: say why and keep the maps shown. */
  fail(message: string): void {
    this.cursor.settle();
    this.statusEl.textContent = `Could not compute the maps for this query: ${message}`;
  }

  /** The host answered a query (or new data): new maps for this item. */
  sync(item: InferItem): void {
    if (item.maps === this.maps) return;
    const hadStages = this.maps.map((m) => m.stage).join(',');
    this.maps = item.maps;
    this.cursor.settle();
    this.statusEl.textContent = '';
    if (!this.maps.some((m) => m.stage === this.sel.stage)) this.sel.stage = this.maps[0]?.stage ?? 0;
    if (hadStages !== this.maps.map((m) => m.stage).join(',')) this.fillStages();
    else this.fillHeads();
    this.redraw();
    const m = selectedMap(this.maps, this.sel);
    this.ctx.announce(
      m ? `${this.item.name}: maps updated, ${queryText(m)}` : `${this.item.name}: no attention maps for that query`,
    );
  }

  private save(): void {
    this.ctx.selections.infer = { ...this.ctx.selections.infer, [String(this.index)]: { ...this.sel } };
    this.ctx.persist();
  }

  private fillStages(): void {
    clear(this.stageSelect);
    for (const m of this.maps) this.stageSelect.appendChild(h('option', { value: String(m.stage) }, mapLabel(m)));
    if (!this.maps.length) this.stageSelect.appendChild(h('option', { value: '' }, 'No maps'));
    this.stageSelect.disabled = this.maps.length === 0;
    this.opacityInput.disabled = this.maps.length === 0;
    const m = selectedMap(this.maps, this.sel);
    if (m) {
      this.sel.stage = m.stage;
      this.stageSelect.value = String(m.stage);
    }
    this.fillHeads();
  }

  private fillHeads(): void {
    clear(this.headSelect);
    const m = selectedMap(this.maps, this.sel);
    this.headSelect.appendChild(
      h('option', { value: 'mean' }, m ? `Mean over heads (${m.heads.length})` : 'Mean over heads'),
    );
    for (let i = 0; i < (m?.heads.length ?? 0); i++)
      this.headSelect.appendChild(h('option', { value: String(i) }, `Head ${i}`));
    if (m && this.sel.head != null && this.sel.head >= m.heads.length) this.sel.head = null;
    this.headSelect.value = this.sel.head == null ? 'mean' : String(this.sel.head);
    this.headSelect.disabled = !m;
  }

  private pngId(): string {
    const m = selectedMap(this.maps, this.sel);
    return `infer-${this.index + 1}-${slug(basename(this.item.name))}${m ? `-stage${m.stage}-${this.sel.head == null ? 'mean' : `head${this.sel.head}`}` : ''}`;
  }

  private png(): string {
    const m = selectedMap(this.maps, this.sel);
    return overlayPng({
      name: this.item.name,
      reading: m ? readMap(m, this.sel) : null,
      width: this.canvas.width,
      height: this.canvas.height,
      draw: (pic) => this.drawInto(pic, null),
    });
  }

  private drawInto(canvas: HTMLCanvasElement, cursor: OverlayDrawing['cursor']): void {
    const m = selectedMap(this.maps, this.sel);
    const values = m ? selectedValues(m, this.sel) : [];
    drawOverlay(canvas, {
      image: this.imageState === 'ready' ? this.image : null,
      values,
      keyGrid: m?.keyGrid ?? { h: 0, w: 0 },
      scale: colorScale(values),
      opacity: m ? this.sel.opacity : 0,
      query:
        m && m.query !== 'cls'
          ? {
              x: (m.query.col + 0.5) / m.grid.w,
              y: (m.query.row + 0.5) / m.grid.h,
              cellW: 1 / m.grid.w,
              cellH: 1 / m.grid.h,
            }
          : null,
      cursor,
    });
  }

  private redraw(): void {
    this.opacityOut.textContent = `${Math.round(this.sel.opacity * 100)} %`;
    if (this.imageState !== 'loading') {
      this.drawInto(this.canvas, this.cursor.rect());
      this.canvas.setAttribute('data-state', 'drawn');
    }
    this.syncText();
  }

  /** Everything the card says about the shown map: aria-labels, the scale, the meaning, the numbers. */
  private syncText(): void {
    const m = selectedMap(this.maps, this.sel);
    const name = this.item.name;
    if (!m) {
      this.canvas.setAttribute('aria-label', pictureLabel(name, this.report.input));
      this.legend.hide();
      this.values.hide();
      this.meaningEl.textContent = 'No attention maps in this run.';
      this.pngButton.setAttribute('aria-label', `Save the picture of ${name} as PNG`);
      return;
    }
    const r = readMap(m, this.sel);
    this.canvas.setAttribute('aria-label', overlayLabel(name, r));
    this.pngButton.setAttribute('aria-label', `Save the overlay of ${name} (stage ${m.stage}, ${r.head}) as PNG`);
    this.legend.show(r);
    this.meaningEl.textContent = m.meaning;
    this.values.show(r);
  }
}
