/**
 * The shown map in numbers, beside the picture: min, max, query, strongest key and cls key weight
 * ("Map values"), and a "Data table" of the map on its key grid — exactly the drawn values.
 */
import { clear, h } from '../../dom';
import { Table, type Column } from '../../table';
import { facts } from '../common';
import { queryPlace, queryText, type MapReading } from './describe';

export class MapValues {
  /** "Map values": the facts of the map. */
  readonly block: HTMLElement;
  /** "Data table": the weights on the key grid, and the cls key's weight below it. */
  readonly details: HTMLDetailsElement;
  private readonly stats = h('div', { className: 'map-stats' });
  private readonly table: Table<(string | number)[]>;
  private readonly clsNote = h('p', { className: 'muted' });
  /** The key grid the table's columns were made for. */
  private tableKey = '';

  constructor(index: number) {
    this.table = new Table<(string | number)[]>({
      id: `infer-map-data-${index}`,
      caption: '',
      columns: [],
      sortable: false,
    });
    this.details = h(
      'details',
      { className: 'data-table' },
      h('summary', null, 'Data table'),
      this.table.element,
      this.clsNote,
    );
    this.block = h('div', { className: 'map-values' }, h('h4', null, 'Map values'), this.stats);
  }

  hide(): void {
    this.block.hidden = true;
    this.details.hidden = true;
    this.table.setColumns([]);
    this.table.setRows([]);
    this.table.setCaption('No attention maps');
    this.clsNote.textContent = '';
  }

  show(r: MapReading): void {
    const { map: m, values, scale, fmt, head, cls } = r;
    this.block.hidden = false;
    this.details.hidden = false;
    clear(this.stats);
    this.stats.appendChild(
      facts(
        [
          ['Min', fmt(scale.min)],
          ['Max', fmt(scale.max)],
          ['Query', queryPlace(m)],
          ['Strongest key', r.strongest],
          ...(cls != null ? ([[`cls key weight (stage ${m.stage}, ${head})`, fmt(cls)]] as [string, string][]) : []),
          ['Shown', `stage ${m.stage}, ${head}, block ${m.block}`],
        ],
        'facts facts--grid facts--compact',
      ),
    );

    const kw = m.keyGrid.w;
    const key = `${m.keyGrid.h}x${kw}`;
    if (key !== this.tableKey) {
      this.tableKey = key;
      const cols: Column<(string | number)[]>[] = [{ key: 'row', label: 'Key row', value: (row) => row[0] ?? null }];
      for (let c = 0; c < kw; c++)
        cols.push({ key: `c${c}`, label: `col ${c}`, numeric: true, value: (row) => row[c + 1] ?? null });
      this.table.setColumns(cols);
    }
    const rows: (string | number)[][] = [];
    for (let row = 0; row < m.keyGrid.h; row++)
      rows.push([`row ${row}`, ...values.slice(row * kw, (row + 1) * kw).map((v) => fmt(v))]);
    this.table.setRows(rows);
    this.table.setCaption(
      `Weights of stage ${m.stage}, ${head}, ${queryText(m)}: the ${m.keyGrid.h}×${m.keyGrid.w} key grid (rows top to bottom, columns left to right)`,
    );
    this.clsNote.textContent = cls != null ? `cls key (not on the grid): ${fmt(cls)}` : '';
  }
}
