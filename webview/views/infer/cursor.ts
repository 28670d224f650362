/**
 * Picking the query token on the overlay. A click on the picture, or Enter (or Space) on the
 * keyboard cursor, asks the host for the maps of the token under that point (`attentionQuery`,
 * fractions of the picture); the card shows "computing…" until the answer comes. Arrow keys move
 * the cursor one cell, Home/End to the row's ends, PageUp/PageDown to the column's. A static
 * report has nobody to ask: it says so instead.
 */
import type { AttentionMap } from '../../../protocol/infer';
import { sig } from '../../../protocol/format';
import type { ViewContext } from '../common';
import { clamp01 } from './selection';

export const STANDALONE_QUERY_NOTE =
  'This report shows the maps it was written with; run it in VS Code to pick another query';

type Cell = { row: number; col: number };
type Grid = { h: number; w: number };

/** The keyboard cursor moves over the finest query grid of the run (a stage-1 token, usually). */
function cursorGrid(maps: readonly AttentionMap[]): Grid {
  let best: Grid | null = null;
  for (const m of maps) if (!best || m.grid.h * m.grid.w > best.h * best.w) best = m.grid;
  return best ?? { h: 8, w: 8 };
}

/** The cursor starts on the query the maps were computed for, or in the middle. */
function initialCell(maps: readonly AttentionMap[]): Cell {
  const g = cursorGrid(maps);
  const m = maps.find((x) => x.grid.h === g.h && x.grid.w === g.w && x.query !== 'cls');
  if (m && m.query !== 'cls') return { row: Math.min(g.h - 1, m.query.row), col: Math.min(g.w - 1, m.query.col) };
  return { row: Math.floor(g.h / 2), col: Math.floor(g.w / 2) };
}

/** Where a key moves the cursor (unclamped), or null for a key that does not move it. */
function moved(key: string, { row, col }: Cell, g: Grid): Cell | null {
  switch (key) {
    case 'ArrowLeft':
      return { row, col: col - 1 };
    case 'ArrowRight':
      return { row, col: col + 1 };
    case 'ArrowUp':
      return { row: row - 1, col };
    case 'ArrowDown':
      return { row: row + 1, col };
    case 'Home':
      return { row, col: 0 };
    case 'End':
      return { row, col: g.w - 1 };
    case 'PageUp':
      return { row: 0, col };
    case 'PageDown':
      return { row: g.h - 1, col };
    default:
      return null;
  }
}

export interface QueryCursorOptions {
  ctx: ViewContext;
  /** The item's index: what the query names. */
  index: number;
  canvas: HTMLCanvasElement;
  /** The live line under the picture ("computing…", failures). */
  status: HTMLElement;
  /** The item's current maps. */
  maps(): readonly AttentionMap[];
  /** The cursor moved or appeared: draw again. */
  redraw(): void;
}

export class QueryCursor {
  private cell: Cell;
  /** Drawn only for keyboard users: a mouse click focuses the canvas too, without it. */
  private focused = false;

  constructor(private readonly o: QueryCursorOptions) {
    this.cell = initialCell(o.maps());
    const { canvas } = o;
    canvas.addEventListener('click', (e: MouseEvent) => {
      const rect = canvas.getBoundingClientRect();
      if (!(rect.width > 0 && rect.height > 0)) return;
      const x = clamp01((e.clientX - rect.left) / rect.width);
      const y = clamp01((e.clientY - rect.top) / rect.height);
      const g = cursorGrid(o.maps());
      this.cell = { row: Math.min(g.h - 1, Math.floor(y * g.h)), col: Math.min(g.w - 1, Math.floor(x * g.w)) };
      this.query({ x, y });
    });
    canvas.addEventListener('keydown', (e: KeyboardEvent) => this.onKey(e));
    canvas.addEventListener('focus', () => {
      this.focused = canvas.matches(':focus-visible');
      o.redraw();
    });
    canvas.addEventListener('blur', () => {
      this.focused = false;
      o.redraw();
    });
  }

  /** The cursor's cell as fractions of the picture, or null while it is not shown. */
  rect(): { x0: number; y0: number; x1: number; y1: number } | null {
    if (!this.focused) return null;
    const g = cursorGrid(this.o.maps());
    return {
      x0: this.cell.col / g.w,
      y0: this.cell.row / g.h,
      x1: (this.cell.col + 1) / g.w,
      y1: (this.cell.row + 1) / g.h,
    };
  }

  /** The host answered (maps or a failure): the query is no longer pending. */
  settle(): void {
    this.o.canvas.classList.remove('is-pending');
    this.o.canvas.removeAttribute('aria-busy');
  }

  private onKey(e: KeyboardEvent): void {
    this.focused = true;
    const g = cursorGrid(this.o.maps());
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.query({ x: (this.cell.col + 0.5) / g.w, y: (this.cell.row + 0.5) / g.h });
      return;
    }
    const next = moved(e.key, this.cell, g);
    if (!next) return;
    e.preventDefault();
    this.cell = { row: Math.max(0, Math.min(g.h - 1, next.row)), col: Math.max(0, Math.min(g.w - 1, next.col)) };
    this.o.redraw();
    this.o.ctx.announce(
      `Cursor at row ${this.cell.row}, col ${this.cell.col} of the ${g.h}×${g.w} grid. Enter picks it as the query.`,
    );
  }

  /** Ask the host for the maps of the token under `point` (fractions of the picture). */
  private query(point: { x: number; y: number }): void {
    const { ctx, canvas, status } = this.o;
    if (ctx.host.kind !== 'vscode') {
      status.textContent = `${STANDALONE_QUERY_NOTE}.`;
      ctx.announce(STANDALONE_QUERY_NOTE);
      return;
    }
    canvas.classList.add('is-pending');
    canvas.setAttribute('aria-busy', 'true');
    status.textContent = `computing… (query at x ${sig(point.x, 3)}, y ${sig(point.y, 3)} of the picture)`;
    ctx.host.post({ type: 'attentionQuery', item: this.o.index, point });
  }
}
