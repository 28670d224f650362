/** What every view gets from the page, and small shared building blocks. */
import type { DashboardData, DashboardView } from '../../protocol/dashboard';
import type { BenchRunOptions } from '../../protocol/lsp';
import { sig } from '../../protocol/format';
import type { DeviceLimits, RuntimeDescription } from '../../protocol/results';
import { h, prose, type Child } from '../dom';
import type { Host, Selections } from '../host';
import type { SortDir } from '../table';

export interface ViewContext {
  host: Host;
  data(): DashboardData;
  selections: Selections;
  /** Persist state (selections changed). */
  persist(): void;
  /** Say something to screen readers and in the status line. */
  announce(text: string): void;
}

export interface ViewInstance {
  /** The view's data changed (live case, final report): update in place. */
  update(): void;
  /** Inference view: the host could not compute the maps an image query asked for. */
  queryFailed?(item: number, message: string): void;
}

export function tableSort(
  ctx: ViewContext,
  id: string,
): { sort: { column: string; dir: SortDir } | null; onSort(s: { column: string; dir: SortDir }): void } {
  return {
    sort: ctx.selections.sorts?.[id] ?? null,
    onSort(s) {
      ctx.selections.sorts = { ...ctx.selections.sorts, [id]: s };
      ctx.persist();
    },
  };
}

export function emptyState(
  title: string,
  text: string,
  rerun?: { ctx: ViewContext; view: DashboardView; label: string },
): HTMLElement {
  const el = h('div', { className: 'empty' }, h('h2', null, title), h('p', null, ...prose(text)));
  if (rerun && rerun.ctx.host.kind === 'vscode') {
    const b = h('button', { type: 'button', className: 'btn' }, rerun.label);
    b.addEventListener('click', () => rerun.ctx.host.post({ type: 'rerun', view: rerun.view }));
    el.appendChild(b);
  }
  return el;
}

/**
 * "Run again" (VS Code only: a static report has nobody to ask), hidden while a job runs. `bench`:
 * how the benchmark view's run is repeated (its mode and training settings), read at the click.
 */
export function rerunButton(
  ctx: ViewContext,
  view: DashboardView,
  label: string,
  bench?: () => BenchRunOptions,
): HTMLButtonElement | null {
  if (ctx.host.kind !== 'vscode' || ctx.data().live) return null;
  const b = h('button', { type: 'button', className: 'btn rerun' }, label);
  b.addEventListener('click', () => {
    ctx.host.post(bench ? { type: 'rerun', view, bench: bench() } : { type: 'rerun', view });
    ctx.announce(`${label}: asked VS Code`);
  });
  return b;
}

/** Label/value pairs as a description list. */
export function facts(items: [string, Child | Child[]][], className = 'facts'): HTMLDListElement {
  const dl = h('dl', { className });
  for (const [k, v] of items)
    dl.append(h('div', { className: 'fact' }, h('dt', null, k), h('dd', null, ...(Array.isArray(v) ? v : [v]))));
  return dl;
}

export function badge(text: string, kind: 'warn' | 'info' | 'ok' | 'error' = 'info', title?: string): HTMLSpanElement {
  return h('span', { className: `badge badge--${kind}`, title: title ?? null }, text);
}

export const SOFTWARE_BADGE = 'software adapter — timings are not GPU performance';

/**
 * One runtime: "ort-cpu  onnxruntime-node 1.30.0, CPU EP · 2 threads on AMD EPYC [badge]", and its
 * device's limits when the run measured them (the roofline every case is a fraction of).
 */
export function runtimeLine(r: RuntimeDescription, limits?: DeviceLimits): HTMLElement {
  return h(
    'li',
    { className: 'runtime' },
    h('code', null, r.id),
    ' ',
    h('span', null, r.runtime),
    h('span', { className: 'sep', 'aria-hidden': 'true' }, ' · '),
    h('span', { className: 'device' }, r.device),
    limits
      ? h(
          'span',
          { className: 'limits', title: 'Measured in this run, after the cases: the roofline of the % columns' },
          ` · measured ${sig(limits.matmul.gflopsPerSecond, 3)} GFLOP/s fp32 matmul, ${sig(limits.read.gbPerSecond, 3)} GB/s read`,
        )
      : null,
    r.software
      ? [
          ' ',
          badge(
            SOFTWARE_BADGE,
            'warn',
            'A software WebGPU adapter (a CPU emulating a GPU): these timings say nothing about GPU performance.',
          ),
        ]
      : null,
  );
}

export function section(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h('section', { className: 'block' }, h('h2', null, title), ...children);
}

/** A responsive grid of chart cards. */
export const chartGrid = (...children: Child[]): HTMLDivElement => h('div', { className: 'chart-grid' }, ...children);
