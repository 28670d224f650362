/**
 * Accessible sortable tables: a real <table> with a <caption>, <th scope="col"> headers whose
 * sort control is a <button> (keyboard reachable), and aria-sort on the sorted column.
 * Rows can be replaced at any time (live benchmark cases) without losing the sort or focus.
 * The table sits in a focusable, labelled scroll region so wide tables scroll by keyboard.
 */
import { h, clear, nextId } from './dom';

export type CellValue = string | number | null;
export type SortDir = 'ascending' | 'descending';

export interface Column<R> {
  key: string;
  label: string;
  /** Rich header content (defaults to the label). */
  header?: Node;
  /** Long description (header tooltip). */
  title?: string;
  /** Value used for sorting and, unless `format` is given, shown as text. */
  value(row: R): CellValue;
  format?(row: R): string | Node;
  numeric?: boolean;
  /** False for columns with nothing to sort by (e.g. action buttons). */
  sortable?: boolean;
}

export interface TableOptions<R> {
  id: string;
  caption: string;
  columns: Column<R>[];
  sortable?: boolean;
  sort?: { column: string; dir: SortDir } | null;
  onSort?(sort: { column: string; dir: SortDir }): void;
  rowClass?(row: R): string | null;
  /** A full-width line under a row (e.g. why a case was skipped); kept with its row when sorting. */
  rowDetail?(row: R): string | Node | null;
  /** Caption visually hidden (the card title says it). */
  hideCaption?: boolean;
}

function compare(a: CellValue, b: CellValue): number {
  // Empty cells sort last whatever the direction is handled by the caller.
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'en', { numeric: true });
}

export class Table<R> {
  readonly element: HTMLDivElement;
  private readonly table: HTMLTableElement;
  private readonly captionEl: HTMLTableCaptionElement;
  private readonly thead: HTMLTableSectionElement;
  private readonly tbody: HTMLTableSectionElement;
  private columns: Column<R>[];
  private rows: R[] = [];
  private sort: { column: string; dir: SortDir } | null;

  constructor(private readonly o: TableOptions<R>) {
    this.columns = o.columns;
    this.sort = o.sort ?? null;
    const captionId = nextId(`${o.id}-caption`);
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.captionEl = h('caption', { id: captionId, className: o.hideCaption ? 'visually-hidden' : null }, o.caption);
    this.table = h('table', { id: o.id, className: 'data' }, this.captionEl, this.thead, this.tbody);
    this.element = h(
      'div',
      { className: 'table-scroll', role: 'region', 'aria-labelledby': captionId, tabindex: 0 },
      this.table,
    );
    this.renderHead();
  }

  get rowCount(): number {
    return this.rows.length;
  }

  setCaption(text: string): void {
    this.captionEl.textContent = text;
  }

  setColumns(columns: Column<R>[]): void {
    this.columns = columns;
    this.renderHead();
    this.renderBody();
  }

  setRows(rows: R[]): void {
    this.rows = rows;
    this.renderBody();
  }

  private renderHead(): void {
    clear(this.thead);
    const tr = h('tr');
    for (const c of this.columns) {
      const th = h('th', { scope: 'col', className: c.numeric ? 'num' : null, title: c.title ?? null });
      if (this.o.sortable === false || c.sortable === false) th.append(c.header?.cloneNode(true) ?? c.label);
      else {
        const sorted = this.sort?.column === c.key ? this.sort.dir : null;
        if (sorted) th.setAttribute('aria-sort', sorted);
        const button = h(
          'button',
          { type: 'button', className: 'sort', 'data-column': c.key },
          c.header?.cloneNode(true) ?? c.label,
          h(
            'span',
            { className: 'sort-icon', 'aria-hidden': 'true' },
            sorted === 'ascending' ? '▲' : sorted === 'descending' ? '▼' : '↕',
          ),
        );
        button.addEventListener('click', () => this.toggleSort(c.key));
        th.appendChild(button);
      }
      tr.appendChild(th);
    }
    this.thead.appendChild(tr);
  }

  private toggleSort(key: string): void {
    const dir: SortDir = this.sort?.column === key && this.sort.dir === 'ascending' ? 'descending' : 'ascending';
    this.sort = { column: key, dir };
    // Keep keyboard focus on the header just activated (the head is re-rendered).
    this.renderHead();
    this.renderBody();
    (this.thead.querySelector(`button[data-column="${CSS.escape(key)}"]`) as HTMLButtonElement | null)?.focus();
    this.o.onSort?.(this.sort);
  }

  private sortedRows(): R[] {
    const s = this.sort;
    if (!s) return this.rows;
    const col = this.columns.find((c) => c.key === s.column);
    if (!col) return this.rows;
    const sign = s.dir === 'ascending' ? 1 : -1;
    return this.rows
      .map((r, i) => ({ r, i, v: col.value(r) }))
      .sort((a, b) => {
        const ea = a.v == null || a.v === '';
        const eb = b.v == null || b.v === '';
        if (ea || eb) return ea === eb ? a.i - b.i : ea ? 1 : -1;
        return sign * compare(a.v, b.v) || a.i - b.i;
      })
      .map((x) => x.r);
  }

  private renderBody(): void {
    const frag = document.createDocumentFragment();
    for (const r of this.sortedRows()) {
      const tr = h('tr', { className: this.o.rowClass?.(r) ?? null });
      for (const c of this.columns) {
        const td = h('td', { className: c.numeric ? 'num' : null });
        const content = c.format ? c.format(r) : c.value(r);
        if (content instanceof Node) td.appendChild(content);
        else td.textContent = content == null ? '—' : String(content);
        tr.appendChild(td);
      }
      frag.appendChild(tr);
      const detail = this.o.rowDetail?.(r);
      if (detail != null) {
        tr.classList.add('has-detail');
        const td = h('td', { colspan: this.columns.length });
        td.append(detail);
        frag.appendChild(h('tr', { className: `detail ${this.o.rowClass?.(r) ?? ''}`.trim() }, td));
      }
    }
    clear(this.tbody);
    this.tbody.appendChild(frag);
  }
}
