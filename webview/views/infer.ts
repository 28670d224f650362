/**
 * Inference view: what the model predicted for each image (top-5 with probability bars and
 * the numbers) and where it looked — the attention map of the chosen stage and head, upscaled
 * onto the model's input picture as a heatmap with a printed scale, the query marked.
 *
 * In VS Code a click on the picture (or Enter on the keyboard cursor) asks the host for the
 * maps of the token under that point (`attentionQuery`); the answer (`attentionMaps`) replaces
 * that image's maps. A static report has nobody to ask: it shows the maps it was written with.
 */
import type { AttentionMap, ClassPrediction, InferItem, InferReport } from '../../protocol/infer';
import { requestPng, theme } from '../charts';
import { clear, h, nextId, prose } from '../dom';
import { attentionName, formatInt, formatMs, formatProbability, sig } from '../format';
import { argmax, colorScale, digitsFor, drawOverlay } from '../heatmap';
import { Table, type Column } from '../table';
import { badge, emptyState, facts, rerunButton, runtimeLine, section, type ViewContext, type ViewInstance } from './common';

export const STANDALONE_QUERY_NOTE = 'This report shows the maps it was written with; run it in VS Code to pick another query';
export const DEFAULT_OPACITY = 0.5;
/** The overlay canvas is drawn at about this many pixels on its long side (whole multiples of the input). */
const OVERLAY_TARGET_PX = 384;

interface ItemSelection {
  stage: number;
  /** null = mean over heads. */
  head: number | null;
  opacity: number;
}

const clamp01 = (v: number): number => (Number.isFinite(v) ? Math.max(0, Math.min(1, v)) : 0.5);
const basename = (p: string): string => p.split(/[\\/]/).pop() || p;
const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'item';

/**
 * Weights of one map, all with the same decimals (0.20000 next to 0.20062, not 0.2) and enough
 * significant digits to tell its values apart; exponent notation for maps of tiny weights.
 */
function weightFormatter(min: number, max: number): (v: number | null | undefined) => string {
  const d = digitsFor(min, max);
  const mag = Math.max(Math.abs(min), Math.abs(max));
  const tiny = mag > 0 && mag < 1e-4;
  const decimals = mag > 0 ? Math.max(0, Math.min(12, d - 1 - Math.floor(Math.log10(mag)))) : 0;
  return (v) => {
    if (v == null || !Number.isFinite(v)) return '—';
    const text = tiny ? v.toExponential(d - 1).replace('e+', 'e') : v.toFixed(decimals);
    return text.replace(/^-/, '−');
  };
}

function queryText(m: AttentionMap): string {
  return m.query === 'cls' ? 'query: cls token' : `query: row ${m.query.row}, col ${m.query.col} of the ${m.grid.h}×${m.grid.w} grid`;
}

const headText = (head: number | null): string => (head == null ? 'mean over heads' : `head ${head}`);

function mapLabel(m: AttentionMap): string {
  const keys = m.keyGrid.h !== m.grid.h || m.keyGrid.w !== m.grid.w ? ` (keys ${m.keyGrid.h}×${m.keyGrid.w})` : '';
  return `Stage ${m.stage} · ${attentionName(m.attention)} · block ${m.block} · ${m.grid.h}×${m.grid.w}${keys}`;
}

/** Word-wrap for canvas text. */
function wrap(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

function probabilityCell(p: number): HTMLElement {
  const fill = h('span', { className: 'prob-fill' });
  // CSSOM, not a style attribute: allowed under the page's CSP. The bar's full width is 100 %.
  fill.style.width = `${(clamp01(p) * 100).toFixed(2)}%`;
  return h('span', { className: 'prob' }, h('span', { className: 'prob-value' }, formatProbability(p)), h('span', { className: 'prob-bar', 'aria-hidden': 'true' }, fill));
}

type RankedPrediction = ClassPrediction & { rank: number };

function top5Table(item: InferItem, index: number): HTMLElement {
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
      { key: 'probability', label: 'Probability', numeric: true, value: (r) => r.probability, format: (r) => probabilityCell(r.probability) },
      { key: 'logit', label: 'Logit', numeric: true, value: (r) => r.logit, format: (r) => sig(r.logit, 4).replace(/^-/, '−') },
    ],
  });
  table.setRows(item.top5.map((p, i) => ({ ...p, rank: i + 1 })));
  return table.element;
}

/** One image: its card, its controls and its overlay. */
class ItemView {
  readonly element: HTMLElement;
  private maps: AttentionMap[];
  private sel: ItemSelection;
  private image: HTMLImageElement | null = null;
  private imageState: 'none' | 'loading' | 'ready' | 'failed';
  private focused = false;
  private cursor: { row: number; col: number };
  private readonly canvas: HTMLCanvasElement;
  private readonly stageSelect: HTMLSelectElement;
  private readonly headSelect: HTMLSelectElement;
  private readonly opacityInput: HTMLInputElement;
  private readonly opacityOut: HTMLOutputElement;
  private readonly legend: HTMLElement;
  private readonly legendBar: HTMLElement;
  private readonly legendLo: HTMLElement;
  private readonly legendMid: HTMLElement;
  private readonly legendHi: HTMLElement;
  private readonly legendNote: HTMLElement;
  private readonly meaningEl: HTMLElement;
  private readonly statsEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly pngButton: HTMLButtonElement;
  private readonly dataTable: Table<(string | number)[]>;
  private readonly clsNote: HTMLElement;
  private readonly valuesBlock: HTMLElement;
  private readonly dataDetails: HTMLDetailsElement;
  private tableKey = '';

  constructor(
    private readonly ctx: ViewContext,
    private readonly report: InferReport,
    private readonly index: number,
    private readonly item: InferItem,
  ) {
    this.maps = item.maps;
    const saved = ctx.selections.infer?.[String(index)];
    this.sel = { stage: saved?.stage ?? item.maps[0]?.stage ?? 0, head: saved?.head ?? null, opacity: saved && Number.isFinite(saved.opacity) ? clamp01(saved.opacity) : DEFAULT_OPACITY };
    this.cursor = this.initialCursor();

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
    this.opacityInput = h('input', { id: opacityId, type: 'range', min: 0, max: 100, step: 5, value: Math.round(this.sel.opacity * 100) });
    this.opacityOut = h('output', { for: opacityId, className: 'opacity-value' });
    this.legendBar = h('div', { className: 'legend-bar', role: 'img', 'aria-label': '' });
    this.legendLo = h('span', { className: 'legend-lo' });
    this.legendMid = h('span', { className: 'legend-mid' });
    this.legendHi = h('span', { className: 'legend-hi' });
    this.legendNote = h('p', { className: 'legend-note' });
    this.legend = h(
      'div',
      { className: 'heat-legend' },
      h('div', { className: 'legend-row' }, h('span', { className: 'legend-title' }, 'weight'), h('div', { className: 'legend-scale' }, this.legendBar, h('div', { className: 'legend-ticks' }, this.legendLo, this.legendMid, this.legendHi))),
      this.legendNote,
    );
    this.meaningEl = h('p', { className: 'map-meaning' });
    this.statsEl = h('div', { className: 'map-stats' });
    this.statusEl = h('p', { className: 'query-status', role: 'status', 'aria-live': 'polite' });
    this.clsNote = h('p', { className: 'muted' });
    this.dataTable = new Table<(string | number)[]>({ id: `infer-map-data-${index}`, caption: '', columns: [], sortable: false });
    this.pngButton = h('button', { type: 'button', className: 'btn btn--small', title: 'Save the picture with its overlay, scale and query as a PNG image' }, 'PNG');
    this.pngButton.addEventListener('click', () => requestPng({ id: this.pngId(), toPngBase64: () => this.compositePng() }));

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
    this.dataDetails = h('details', { className: 'data-table' }, h('summary', null, 'Data table'), this.dataTable.element, this.clsNote);
    this.valuesBlock = h('div', { className: 'map-values' }, h('h4', null, 'Map values'), this.statsEl);
    this.element = h(
      'section',
      { className: 'card infer-item', id: `infer-item-${index}`, 'aria-labelledby': titleId, 'data-item': index },
      h(
        'div',
        { className: 'card-head' },
        h('div', { className: 'infer-title' }, h('h3', { id: titleId }, item.name), h('p', { className: 'infer-sub muted' }, sub)),
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
          this.legend,
          this.meaningEl,
          hint,
          this.statusEl,
        ),
        h(
          'div',
          { className: 'infer-side' },
          top1 ? h('p', { className: 'top1' }, h('span', { className: 'muted' }, 'Predicted: '), h('strong', null, top1.label), ` — ${formatProbability(top1.probability)}`) : null,
          h('h4', null, 'Top-5 predictions'),
          top5Table(item, index),
          this.valuesBlock,
          this.dataDetails,
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
    this.canvas.addEventListener('click', (e: MouseEvent) => {
      const rect = this.canvas.getBoundingClientRect();
      if (!(rect.width > 0 && rect.height > 0)) return;
      const x = clamp01((e.clientX - rect.left) / rect.width);
      const y = clamp01((e.clientY - rect.top) / rect.height);
      const g = this.cursorGrid();
      this.cursor = { row: Math.min(g.h - 1, Math.floor(y * g.h)), col: Math.min(g.w - 1, Math.floor(x * g.w)) };
      this.query({ x, y });
    });
    this.canvas.addEventListener('keydown', (e: KeyboardEvent) => this.onKey(e));
    this.canvas.addEventListener('focus', () => {
      // The cursor is for keyboard users: a mouse click focuses the canvas too, without it.
      this.focused = this.canvas.matches(':focus-visible');
      this.redraw();
    });
    this.canvas.addEventListener('blur', () => {
      this.focused = false;
      this.redraw();
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
    this.canvas.classList.remove('is-pending');
    this.canvas.removeAttribute('aria-busy');
    this.statusEl.textContent = `Could not compute the maps for this query: ${message}`;
  }

  /** The host answered a query (or new data): new maps for this item. */
  sync(item: InferItem): void {
    if (item.maps === this.maps) return;
    const hadStages = this.maps.map((m) => m.stage).join(',');
    this.maps = item.maps;
    this.canvas.classList.remove('is-pending');
    this.canvas.removeAttribute('aria-busy');
    this.statusEl.textContent = '';
    if (!this.maps.some((m) => m.stage === this.sel.stage)) this.sel.stage = this.maps[0]?.stage ?? 0;
    if (hadStages !== this.maps.map((m) => m.stage).join(',')) this.fillStages();
    else this.fillHeads();
    this.redraw();
    const m = this.selectedMap();
    this.ctx.announce(m ? `${this.item.name}: maps updated, ${queryText(m)}` : `${this.item.name}: no attention maps for that query`);
  }

  private selectedMap(): AttentionMap | undefined {
    return this.maps.find((m) => m.stage === this.sel.stage) ?? this.maps[0];
  }

  private values(m: AttentionMap): number[] {
    return this.sel.head != null && m.heads[this.sel.head] ? m.heads[this.sel.head]! : m.mean;
  }

  /** The keyboard cursor moves over the finest query grid of the run (a stage-1 token, usually). */
  private cursorGrid(): { h: number; w: number } {
    let best: { h: number; w: number } | null = null;
    for (const m of this.maps) if (!best || m.grid.h * m.grid.w > best.h * best.w) best = m.grid;
    return best ?? { h: 8, w: 8 };
  }

  private initialCursor(): { row: number; col: number } {
    const g = this.cursorGrid();
    const m = this.maps.find((x) => x.grid.h === g.h && x.grid.w === g.w && x.query !== 'cls');
    if (m && m.query !== 'cls') return { row: Math.min(g.h - 1, m.query.row), col: Math.min(g.w - 1, m.query.col) };
    return { row: Math.floor(g.h / 2), col: Math.floor(g.w / 2) };
  }

  private onKey(e: KeyboardEvent): void {
    this.focused = true;
    const g = this.cursorGrid();
    let { row, col } = this.cursor;
    switch (e.key) {
      case 'ArrowLeft':
        col--;
        break;
      case 'ArrowRight':
        col++;
        break;
      case 'ArrowUp':
        row--;
        break;
      case 'ArrowDown':
        row++;
        break;
      case 'Home':
        col = 0;
        break;
      case 'End':
        col = g.w - 1;
        break;
      case 'PageUp':
        row = 0;
        break;
      case 'PageDown':
        row = g.h - 1;
        break;
      case 'Enter':
      case ' ':
        e.preventDefault();
        this.query({ x: (this.cursor.col + 0.5) / g.w, y: (this.cursor.row + 0.5) / g.h });
        return;
      default:
        return;
    }
    e.preventDefault();
    this.cursor = { row: Math.max(0, Math.min(g.h - 1, row)), col: Math.max(0, Math.min(g.w - 1, col)) };
    this.redraw();
    this.ctx.announce(`Cursor at row ${this.cursor.row}, col ${this.cursor.col} of the ${g.h}×${g.w} grid. Enter picks it as the query.`);
  }

  /** Ask the host for the maps of the token under `point` (fractions of the picture). */
  private query(point: { x: number; y: number }): void {
    if (this.ctx.host.kind !== 'vscode') {
      this.statusEl.textContent = `${STANDALONE_QUERY_NOTE}.`;
      this.ctx.announce(STANDALONE_QUERY_NOTE);
      return;
    }
    this.canvas.classList.add('is-pending');
    this.canvas.setAttribute('aria-busy', 'true');
    this.statusEl.textContent = `computing… (query at x ${sig(point.x, 3)}, y ${sig(point.y, 3)} of the picture)`;
    this.ctx.host.post({ type: 'attentionQuery', item: this.index, point });
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
    const m = this.selectedMap();
    if (m) {
      this.sel.stage = m.stage;
      this.stageSelect.value = String(m.stage);
    }
    this.fillHeads();
  }

  private fillHeads(): void {
    clear(this.headSelect);
    const m = this.selectedMap();
    this.headSelect.appendChild(h('option', { value: 'mean' }, m ? `Mean over heads (${m.heads.length})` : 'Mean over heads'));
    for (let i = 0; i < (m?.heads.length ?? 0); i++) this.headSelect.appendChild(h('option', { value: String(i) }, `Head ${i}`));
    if (m && this.sel.head != null && this.sel.head >= m.heads.length) this.sel.head = null;
    this.headSelect.value = this.sel.head == null ? 'mean' : String(this.sel.head);
    this.headSelect.disabled = !m;
  }

  private pngId(): string {
    const m = this.selectedMap();
    return `infer-${this.index + 1}-${slug(basename(this.item.name))}${m ? `-stage${m.stage}-${this.sel.head == null ? 'mean' : `head${this.sel.head}`}` : ''}`;
  }

  private drawInto(canvas: HTMLCanvasElement, withCursor: boolean): void {
    const m = this.selectedMap();
    const values = m ? this.values(m) : [];
    const g = this.cursorGrid();
    drawOverlay(canvas, {
      image: this.imageState === 'ready' ? this.image : null,
      values,
      keyGrid: m?.keyGrid ?? { h: 0, w: 0 },
      scale: colorScale(values),
      opacity: m ? this.sel.opacity : 0,
      query: m && m.query !== 'cls' ? { x: (m.query.col + 0.5) / m.grid.w, y: (m.query.row + 0.5) / m.grid.h, cellW: 1 / m.grid.w, cellH: 1 / m.grid.h } : null,
      cursor: withCursor ? { x0: this.cursor.col / g.w, y0: this.cursor.row / g.h, x1: (this.cursor.col + 1) / g.w, y1: (this.cursor.row + 1) / g.h } : null,
    });
  }

  private redraw(): void {
    this.opacityOut.textContent = `${Math.round(this.sel.opacity * 100)} %`;
    if (this.imageState !== 'loading') {
      this.drawInto(this.canvas, this.focused);
      this.canvas.setAttribute('data-state', 'drawn');
    }
    this.syncText();
  }

  private syncText(): void {
    const m = this.selectedMap();
    const it = this.item;
    if (!m) {
      this.canvas.setAttribute('aria-label', `${it.name}: the model input (${this.report.input.width}×${this.report.input.height}); no attention maps in this run.`);
      this.legend.hidden = true;
      this.valuesBlock.hidden = true;
      this.dataDetails.hidden = true;
      this.meaningEl.textContent = 'No attention maps in this run.';
      this.pngButton.setAttribute('aria-label', `Save the picture of ${it.name} as PNG`);
      this.dataTable.setColumns([]);
      this.dataTable.setRows([]);
      this.dataTable.setCaption('No attention maps');
      this.clsNote.textContent = '';
      return;
    }
    this.legend.hidden = false;
    this.valuesBlock.hidden = false;
    this.dataDetails.hidden = false;
    const values = this.values(m);
    const scale = colorScale(values);
    const fmt = weightFormatter(scale.min, scale.max);
    const kw = m.keyGrid.w;
    const strongest = argmax(values);
    const sRow = strongest.index >= 0 ? Math.floor(strongest.index / kw) : -1;
    const sCol = strongest.index >= 0 ? strongest.index % kw : -1;
    const strongestText = strongest.index >= 0 ? `row ${sRow}, col ${sCol} of the ${m.keyGrid.h}×${m.keyGrid.w} key grid (weight ${fmt(strongest.value)})` : 'none';
    const cls = m.clsWeight ? (this.sel.head != null ? m.clsWeight.heads[this.sel.head] : m.clsWeight.mean) : null;
    const head = headText(this.sel.head);

    this.canvas.setAttribute(
      'aria-label',
      `Attention overlay on ${it.name}: stage ${m.stage} (${attentionName(m.attention)}, block ${m.block}), ${head}, ${queryText(m)}. Strongest key: ${strongestText}. Weights from ${fmt(scale.min)} to ${fmt(scale.max)}${cls != null ? `; cls key weight ${fmt(cls)}` : ''}.`,
    );
    this.pngButton.setAttribute('aria-label', `Save the overlay of ${it.name} (stage ${m.stage}, ${head}) as PNG`);

    // Legend: the bar, its ends (and zero for a diverging scale), the word "weight".
    this.legendBar.style.backgroundImage = scale.gradient();
    this.legendBar.classList.toggle('legend-bar--diverging', scale.kind === 'diverging');
    this.legendLo.textContent = fmt(scale.lo);
    this.legendHi.textContent = scale.kind === 'diverging' ? `+${fmt(scale.hi)}` : fmt(scale.hi);
    this.legendMid.textContent = scale.kind === 'diverging' ? '0' : '';
    this.legendBar.setAttribute('aria-label', `Colour scale of the weights: ${scale.describe}, from ${fmt(scale.lo)} to ${fmt(scale.hi)}.`);
    this.legendNote.textContent = `${scale.kind === 'diverging' ? 'Diverging (the map has negative weights): blue negative, near-white zero, red positive' : 'Sequential (viridis): dark purple = this map’s minimum, yellow = its maximum'}. Nearest-neighbour upscaling: each key token is one flat block. Ring: the query token.`;
    this.meaningEl.textContent = m.meaning;

    clear(this.statsEl);
    this.statsEl.appendChild(
      facts(
        [
          ['Min', fmt(scale.min)],
          ['Max', fmt(scale.max)],
          ['Query', m.query === 'cls' ? 'cls token' : `row ${m.query.row}, col ${m.query.col} of the ${m.grid.h}×${m.grid.w} grid`],
          ['Strongest key', strongestText],
          ...(cls != null ? ([[`cls key weight (stage ${m.stage}, ${head})`, fmt(cls)]] as [string, string][]) : []),
          ['Shown', `stage ${m.stage}, ${head}, block ${m.block}`],
        ],
        'facts facts--grid facts--compact',
      ),
    );

    // Data table: the map on its key grid (exactly the drawn values).
    const key = `${m.keyGrid.h}x${m.keyGrid.w}`;
    if (key !== this.tableKey) {
      this.tableKey = key;
      const cols: Column<(string | number)[]>[] = [{ key: 'row', label: 'Key row', value: (r) => r[0] ?? null }];
      for (let c = 0; c < m.keyGrid.w; c++) cols.push({ key: `c${c}`, label: `col ${c}`, numeric: true, value: (r) => r[c + 1] ?? null });
      this.dataTable.setColumns(cols);
    }
    const rows: (string | number)[][] = [];
    for (let r = 0; r < m.keyGrid.h; r++) rows.push([`row ${r}`, ...values.slice(r * kw, (r + 1) * kw).map((v) => fmt(v))]);
    this.dataTable.setRows(rows);
    this.dataTable.setCaption(`Weights of stage ${m.stage}, ${head}, ${queryText(m)}: the ${m.keyGrid.h}×${m.keyGrid.w} key grid (rows top to bottom, columns left to right)`);
    this.clsNote.textContent = cls != null ? `cls key (not on the grid): ${fmt(cls)}` : '';
  }

  /** The overlay as shown (without the keyboard cursor), with a title, its scale and the query: a PNG. */
  private compositePng(): string {
    const t = theme();
    const m = this.selectedMap();
    const values = m ? this.values(m) : [];
    const scale = colorScale(values);
    const fmt = weightFormatter(scale.min, scale.max);
    const W = this.canvas.width;
    const H = this.canvas.height;
    const pad = 16;
    const fs = Math.max(12, Math.round(t.fontSize));
    const lh = Math.round(fs * 1.45);
    const width = Math.max(W + 2 * pad, 460);
    const out = document.createElement('canvas');
    const c = out.getContext('2d');
    if (!c) return '';
    c.font = `${fs}px ${t.fontFamily}`;
    const textW = width - 2 * pad;
    const head = headText(this.sel.head);
    const title = wrap(c, m ? `${this.item.name} — stage ${m.stage} (${attentionName(m.attention)}, block ${m.block}), ${head}` : this.item.name, textW);
    const sub = m ? wrap(c, `${queryText(m)}; min ${fmt(scale.min)}, max ${fmt(scale.max)}${m.clsWeight ? `; cls key weight ${fmt(this.sel.head != null ? m.clsWeight.heads[this.sel.head] : m.clsWeight.mean)}` : ''}`, textW) : [];
    const foot = m ? wrap(c, `${scale.kind === 'diverging' ? 'Diverging scale, centred on 0' : 'Viridis, min → max'}; nearest-neighbour upscaling; ring = query. ${m.meaning}`, textW) : [];
    const legendH = m ? 14 + 6 + lh : 0;
    const height = pad + (title.length + sub.length) * lh + 8 + H + (m ? 12 + legendH : 0) + foot.length * lh + pad;
    out.width = width;
    out.height = height;
    c.fillStyle = t.background;
    c.fillRect(0, 0, width, height);
    c.font = `600 ${fs}px ${t.fontFamily}`;
    c.fillStyle = t.foreground;
    c.textBaseline = 'top';
    let y = pad;
    for (const line of title) {
      c.fillText(line, pad, y);
      y += lh;
    }
    c.font = `${fs}px ${t.fontFamily}`;
    c.fillStyle = t.muted;
    for (const line of sub) {
      c.fillText(line, pad, y);
      y += lh;
    }
    y += 8;
    const pic = document.createElement('canvas');
    pic.width = W;
    pic.height = H;
    this.drawInto(pic, false);
    const x0 = Math.round((width - W) / 2);
    c.drawImage(pic, x0, y);
    y += H + 12;
    if (m) {
      const barW = Math.min(W, 320);
      const bx = Math.round((width - barW) / 2);
      const grad = c.createLinearGradient(bx, 0, bx + barW, 0);
      for (const [o, col] of scale.stops()) grad.addColorStop(o, col);
      c.fillStyle = grad;
      c.fillRect(bx, y, barW, 14);
      c.strokeStyle = t.foreground;
      c.lineWidth = 1;
      c.strokeRect(bx + 0.5, y + 0.5, barW - 1, 13);
      y += 20;
      c.fillStyle = t.foreground;
      c.textAlign = 'left';
      c.fillText(fmt(scale.lo), bx, y);
      c.textAlign = 'right';
      c.fillText(scale.kind === 'diverging' ? `+${fmt(scale.hi)}` : fmt(scale.hi), bx + barW, y);
      c.textAlign = 'center';
      c.fillText(scale.kind === 'diverging' ? '0  weight' : 'weight', bx + barW / 2, y);
      c.textAlign = 'left';
      y += lh;
      c.fillStyle = t.muted;
      for (const line of foot) {
        c.fillText(line, pad, y);
        y += lh;
      }
    }
    return out.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
  }
}

function timingText(r: InferReport): string {
  const t = r.timingMs;
  return `preprocess ${formatMs(t.preprocess)} · build ${formatMs(t.build)} · session ${formatMs(t.session)} · forward ${formatMs(t.forward)}`;
}

export function renderInfer(ctx: ViewContext, root: HTMLElement): ViewInstance {
  const r = ctx.data().infer;
  if (!r) {
    root.appendChild(emptyState('No inference yet', 'No inference yet — run `vitlens infer … --html` or use the Run inference CodeLens.', { ctx, view: 'infer', label: 'Run inference' }));
    return { update() {} };
  }
  const n = r.items.length;
  const count = `${n} ${r.items.every((x) => x.kind === 'image') ? (n === 1 ? 'image' : 'images') : n === 1 ? 'item' : 'items'}`;
  root.appendChild(
    h(
      'div',
      { className: 'summary' },
      h('div', { className: 'lead-row' }, h('p', { className: 'lead' }, `Inference of ${r.model}${r.config ? ` (${r.config})` : ''} on ${count}`), rerunButton(ctx, 'infer', 'Run inference again')),
      facts(
        [
          ['Model', r.model],
          ['Weights', [r.weights, r.checkpoint ? h('span', { className: 'muted' }, ` · ${formatInt(r.checkpoint.tensors)} tensors, ${formatInt(r.checkpoint.elements)} values`) : [' ', badge('random weights — predictions mean nothing', 'warn')]].flat()],
          ['Runtime and device', h('ul', { className: 'runtimes' }, runtimeLine(r.runtime))],
          ['Classes', formatInt(r.numClasses)],
          ['Input', `batch ${r.input.batch} · ${r.input.width}×${r.input.height} · ${r.input.transform}`],
          ['Timing (one run)', [timingText(r), h('span', { className: 'muted' }, ` · checkpoint read ${formatMs(r.timingMs.checkpoint)}`)]],
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
  const views = r.items.map((item, i) => new ItemView(ctx, r, i, item));
  root.appendChild(section('Predictions and attention', h('div', { className: 'infer-items' }, ...views.map((v) => v.element))));
  return {
    update() {
      const next = ctx.data().infer;
      if (!next) return;
      next.items.forEach((item, i) => views[i]?.sync(item));
    },
    queryFailed(item, message) {
      views[item]?.fail(message);
    },
  };
}
