/**
 * The dashboard page. Same code in both hosts: the VS Code webview panel (data by message,
 * state by setState) and the CLI's self-contained report (data inlined in the page).
 *
 * Load order: the host's saved state (a reloaded or restored panel) → the inlined data (a
 * report) → ask the host ({type:'ready'}) and wait for {type:'data'}.
 */
import './styles.css';
import {
  INLINE_DATA_ELEMENT_ID,
  type DashboardData,
  type DashboardView,
  type HostMessage,
  type LiveJob,
  type PageMessage,
} from '../protocol/dashboard';
import { formatDate } from '../protocol/format';
import type { BenchReport } from '../protocol/results';
import {
  applyThemeDefaults,
  destroyAllCharts,
  pruneCharts,
  setPngExporter,
  setTheme,
  snapshot,
  theme,
  type ChartSnapshot,
} from './charts';
import { clear, h } from './dom';
import { exportCsv, exportJson, exportPng, csvFor } from './export';
import { getHost, type PersistedState, type Selections } from './host';
import { watchTheme } from './theme';
import { renderApprox } from './views/approx';
import { renderBench } from './views/bench';
import { badge, runtimeLine, type ViewContext, type ViewInstance } from './views/common';
import { renderGrad } from './views/grad';
import { renderInfer } from './views/infer/view';
import { renderPinv } from './views/pinv';
import { renderProfile } from './views/profile';

const VIEWS: { id: DashboardView; label: string; render: (ctx: ViewContext, root: HTMLElement) => ViewInstance }[] = [
  { id: 'profile', label: 'Profile', render: renderProfile },
  { id: 'bench', label: 'Benchmark', render: renderBench },
  { id: 'pinv', label: 'Pseudo-inverse', render: renderPinv },
  { id: 'approx', label: 'Approximation', render: renderApprox },
  { id: 'infer', label: 'Inference', render: renderInfer },
  { id: 'grad', label: 'Gradients', render: renderGrad },
];
const isView = (v: unknown): v is DashboardView => VIEWS.some((x) => x.id === v);

declare global {
  interface Window {
    vitlensDashboard?: {
      charts(): Record<string, ChartSnapshot>;
      view(): string;
      ready(): boolean;
      /** What the page posted to a standalone host (nobody listens there); [] in VS Code. */
      posted(): PageMessage[];
    };
  }
}

const host = getHost();
if (host.kind === 'standalone') document.documentElement.classList.add('vitlens-standalone');

let data: DashboardData | null = null;
let view: DashboardView = 'profile';
let selections: Selections = {};
const instances = new Map<DashboardView, ViewInstance>();
let waiting: HTMLElement | null = null;

const app = document.getElementById('app') ?? document.body.appendChild(h('div', { id: 'app', role: 'main' }));
const statusLine = h('div', { className: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
const headerEl = h('header', { className: 'page-head' });
const liveEl = h('div', { className: 'live-region' });
const errorEl = h('div', { className: 'job-error', role: 'alert' });
const tablist = h('div', { role: 'tablist', 'aria-label': 'Dashboard views', className: 'tabs' });
const tabs = new Map<DashboardView, HTMLButtonElement>();
const panels = new Map<DashboardView, HTMLElement>();

for (const v of VIEWS) {
  const tab = h(
    'button',
    {
      type: 'button',
      role: 'tab',
      id: `tab-${v.id}`,
      'aria-controls': `panel-${v.id}`,
      'aria-selected': 'false',
      tabindex: -1,
      className: 'tab',
    },
    v.label,
  );
  tab.addEventListener('click', () => showView(v.id));
  tabs.set(v.id, tab);
  tablist.appendChild(tab);
  panels.set(
    v.id,
    h('div', {
      role: 'tabpanel',
      id: `panel-${v.id}`,
      'aria-labelledby': `tab-${v.id}`,
      tabindex: 0,
      className: 'panel',
      hidden: true,
    }),
  );
}
tablist.addEventListener('keydown', (e: KeyboardEvent) => {
  const order = VIEWS.map((v) => v.id);
  const current = order.indexOf(
    (document.activeElement as HTMLElement | null)?.id.replace(/^tab-/, '') as DashboardView,
  );
  const i = current < 0 ? order.indexOf(view) : current;
  let next: number | null = null;
  if (e.key === 'ArrowRight' || e.key === 'ArrowDown') next = (i + 1) % order.length;
  else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') next = (i - 1 + order.length) % order.length;
  else if (e.key === 'Home') next = 0;
  else if (e.key === 'End') next = order.length - 1;
  else if (e.key === 'Enter' || e.key === ' ') {
    if (current >= 0) {
      e.preventDefault();
      showView(order[current]!);
    }
    return;
  }
  if (next == null) return;
  e.preventDefault();
  const id = order[next]!;
  tabs.get(id)?.focus();
  // Automatic activation: views render fast enough that following focus is expected.
  showView(id);
});

app.append(headerEl, liveEl, errorEl, tablist, ...panels.values(), statusLine);
errorEl.hidden = true;

function announce(text: string): void {
  statusLine.textContent = '';
  // A fresh text node so screen readers announce repeats too.
  setTimeout(() => (statusLine.textContent = text), 30);
}

function persist(): void {
  if (!data) return;
  const state: PersistedState = { data, view, selections };
  host.setState(state);
}

const ctx: ViewContext = {
  host,
  data: () => data!,
  get selections() {
    return selections;
  },
  persist,
  announce,
};

// ── header ────────────────────────────────────────────────────────────────────────────────

function renderHeader(): void {
  clear(headerEl);
  if (!data) {
    headerEl.appendChild(h('h1', null, 'ViT Lens'));
    return;
  }
  const d = data;
  const csvButton = h('button', { type: 'button', className: 'btn', id: 'export-csv' }, 'Export CSV');
  const jsonButton = h(
    'button',
    {
      type: 'button',
      className: 'btn',
      id: 'export-json',
      title: 'Everything on this page as JSON (the DashboardData)',
    },
    'Export JSON',
  );
  csvButton.addEventListener('click', () => {
    const name = exportCsv(host, view, d);
    announce(
      name ? (host.kind === 'vscode' ? `Saving ${name}…` : `Downloaded ${name}`) : 'Nothing to export in this view',
    );
  });
  jsonButton.addEventListener('click', () => {
    const name = exportJson(host, d);
    announce(host.kind === 'vscode' ? `Saving ${name}…` : `Downloaded ${name}`);
  });
  const meta = h(
    'p',
    { className: 'meta' },
    d.source
      ? [
          h('span', null, 'Source '),
          h('code', null, d.source),
          h('span', { className: 'sep', 'aria-hidden': 'true' }, ' · '),
        ]
      : null,
    h('span', null, d.producer),
    h('span', { className: 'sep', 'aria-hidden': 'true' }, ' · '),
    h('time', { datetime: d.generatedAt }, formatDate(d.generatedAt)),
  );
  const devices = d.bench?.runtimes.length
    ? h(
        'div',
        { className: 'devices' },
        h('span', { className: 'devices-title' }, 'Benchmark devices'),
        h(
          'ul',
          { className: 'runtimes runtimes--inline' },
          ...d.bench.runtimes.map((r) =>
            runtimeLine(
              r,
              d.bench!.limits?.find((l) => l.runtime === r.id),
            ),
          ),
        ),
      )
    : null;
  headerEl.append(
    h(
      'div',
      { className: 'head-row' },
      h('h1', null, d.title),
      h('div', { className: 'page-actions' }, csvButton, jsonButton),
    ),
    meta,
    ...(devices ? [devices] : []),
  );
  updateCsvButton();
}

function updateCsvButton(): void {
  const b = document.getElementById('export-csv') as HTMLButtonElement | null;
  if (!b || !data) return;
  const csv = csvFor(view, data);
  b.disabled = !csv;
  const what = csv ? `Export CSV of the ${csv.what} (${csv.filename})` : 'This view has no table to export';
  b.setAttribute('aria-label', what);
  b.title = what;
}

// ── live job ──────────────────────────────────────────────────────────────────────────────

function renderLive(): void {
  const live: LiveJob | null = data?.live ?? null;
  if (!live) {
    clear(liveEl);
    liveEl.hidden = true;
    return;
  }
  liveEl.hidden = false;
  const what = live.job === 'bench' ? 'Benchmark' : 'Pseudo-inverse check';
  const pct = live.total > 0 ? Math.min(100, (100 * live.done) / live.total) : 0;
  let bar = liveEl.querySelector<HTMLElement>('[role="progressbar"]');
  if (!bar) {
    clear(liveEl);
    const fill = h('div', { className: 'progress-fill' });
    bar = h(
      'div',
      { role: 'progressbar', className: 'progress', 'aria-valuemin': 0, 'aria-label': `${what} progress` },
      fill,
    );
    const text = h('p', { className: 'live-text' });
    const row = h('div', { className: 'live-row' }, bar);
    liveEl.append(text, row);
  }
  const text = liveEl.querySelector<HTMLElement>('.live-text')!;
  text.textContent = `${what} running — ${live.message} (${live.done} / ${live.total})`;
  bar.setAttribute('aria-valuemax', String(live.total));
  bar.setAttribute('aria-valuenow', String(live.done));
  bar.setAttribute('aria-valuetext', `${live.done} of ${live.total}: ${live.message}`);
  // CSSOM, not a style attribute: allowed under the page's CSP.
  bar.querySelector<HTMLElement>('.progress-fill')!.style.width = `${pct}%`;
  const row = liveEl.querySelector<HTMLElement>('.live-row')!;
  let cancel = liveEl.querySelector<HTMLButtonElement>('button.cancel');
  if (live.cancellable && !cancel) {
    cancel = h('button', { type: 'button', className: 'btn cancel' }, 'Cancel');
    cancel.addEventListener('click', () => {
      host.post({ type: 'cancel' });
      cancel!.disabled = true;
      cancel!.textContent = 'Cancelling…';
      announce('Cancelling…');
    });
    row.appendChild(cancel);
  } else if (!live.cancellable && cancel) cancel.remove();
}

function showError(text: string | null, kind: 'error' | 'cancelled' = 'error'): void {
  clear(errorEl);
  errorEl.hidden = !text;
  if (text) errorEl.append(kind === 'error' ? badge('error', 'error') : badge('cancelled', 'info'), ' ', text);
}

// ── views ─────────────────────────────────────────────────────────────────────────────────

function showView(id: DashboardView, opts: { persist?: boolean } = {}): void {
  view = id;
  for (const v of VIEWS) {
    const selected = v.id === id;
    const tab = tabs.get(v.id)!;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    panels.get(v.id)!.hidden = !selected;
  }
  if (data && !instances.has(id)) {
    const spec = VIEWS.find((v) => v.id === id)!;
    instances.set(id, spec.render(ctx, panels.get(id)!));
  }
  updateCsvButton();
  if (opts.persist !== false) persist();
}

function resetViews(): void {
  destroyAllCharts();
  instances.clear();
  for (const p of panels.values()) clear(p);
}

function setData(next: DashboardData, nextView: DashboardView, nextSelections: Selections = selections): void {
  data = next;
  selections = nextSelections;
  waiting?.remove();
  waiting = null;
  tablist.hidden = false;
  if (data.live?.job === 'bench' && !data.bench) data.bench = emptyBench(data);
  resetViews();
  renderHeader();
  renderLive();
  showError(null);
  showView(nextView);
}

function emptyBench(d: DashboardData): BenchReport {
  return {
    schemaVersion: 1,
    model: d.profile?.model ?? d.profileSweep?.model ?? 'model',
    config: d.source,
    startedAt: new Date().toISOString(),
    runtimes: [],
    unavailable: [],
    cases: [],
    scaling: [],
    overhead: { processStartMs: 0, probeMs: 0, buildMs: 0, sessionMs: 0, totalMs: 0, fraction: 0 },
    notes: [],
  };
}

/** Re-render one view in place, keeping the scroll position. */
function rerenderView(id: DashboardView): void {
  const y = window.scrollY;
  const inst = instances.get(id);
  if (inst && id === 'bench') inst.update();
  else {
    instances.delete(id);
    clear(panels.get(id)!);
    pruneCharts();
    if (view === id) instances.set(id, VIEWS.find((v) => v.id === id)!.render(ctx, panels.get(id)!));
  }
  window.scrollTo(0, y);
}

function onMessage(m: HostMessage): void {
  switch (m.type) {
    case 'data':
      // New data (a new job, a refresh): keep what the user chose (sorts, stage/head); views
      // ignore choices that no longer exist.
      // The same data sent again (the panel was hidden and shown, or reloaded): stay on the
      // user's view; new data opens the view it names.
      setData(
        m.data,
        data && view && data.source === m.data.source && data.generatedAt === m.data.generatedAt
          ? view
          : isView(m.data.view)
            ? m.data.view
            : 'profile',
        selections,
      );
      break;
    case 'benchCase': {
      if (!data) return;
      if (!data.bench) {
        data.bench = emptyBench(data);
        rerenderView('bench');
      }
      data.bench.cases.push(m.case);
      instances.get('bench')?.update();
      persist();
      break;
    }
    case 'progress':
      if (!data) return;
      data.live = m.live;
      renderLive();
      persist();
      break;
    case 'jobDone':
      if (!data) return;
      data.live = null;
      if (m.bench) data.bench = m.bench;
      if (m.pinv) data.pinv = m.pinv;
      renderLive();
      renderHeader();
      if (m.bench) rerenderView('bench');
      if (m.pinv) rerenderView('pinv');
      // A cancel is the user's choice, not a failure: a notice, not an error badge.
      showError(m.error ?? null, m.cancelled ? 'cancelled' : 'error');
      // A cancel arrives with its notice in `error`: announce it as a cancel, not stay silent.
      if (m.cancelled) announce('Job cancelled');
      else if (!m.error) announce('Job finished');
      persist();
      break;
    case 'saved':
      announce(m.path ? `Saved ${m.path}` : 'Save cancelled');
      break;
    case 'attentionMaps': {
      // The answer to an `attentionQuery`: that item's maps for the token the user picked.
      const item = data?.infer?.items[m.item];
      if (m.error) {
        instances.get('infer')?.queryFailed?.(m.item, m.error);
        return;
      }
      if (!item || !Array.isArray(m.maps)) return;
      item.maps = m.maps;
      instances.get('infer')?.update();
      persist();
      break;
    }
  }
}

// ── boot ──────────────────────────────────────────────────────────────────────────────────

applyThemeDefaults(theme());
watchTheme((t) => setTheme(t));
setPngExporter((card) => {
  if (!data) return;
  const name = exportPng(host, data, card);
  announce(host.kind === 'vscode' ? `Saving ${name}…` : `Downloaded ${name}`);
});
host.onMessage(onMessage);

window.vitlensDashboard = {
  charts: snapshot,
  view: () => view,
  ready: () => data !== null,
  posted: () => (host.kind === 'standalone' ? [...((host as unknown as { posted?: PageMessage[] }).posted ?? [])] : []),
};

function inlineData(): DashboardData | null {
  const el = document.getElementById(INLINE_DATA_ELEMENT_ID);
  if (!el?.textContent) return null;
  try {
    return JSON.parse(el.textContent) as DashboardData;
  } catch (e) {
    showError(`The report's data could not be read: ${(e as Error).message}`);
    return null;
  }
}

function boot(): void {
  const saved = host.getState();
  const fromPage = inlineData();
  const d = saved?.data ?? fromPage;
  renderHeader();
  if (d) {
    const v = isView(saved?.view) ? saved.view : isView(d.view) ? d.view : 'profile';
    setData(d, v, saved?.selections ?? {});
    // In VS Code the host may hold newer data than the saved state (cases that arrived while
    // the panel was hidden): ask for it. A static report has nobody to ask.
    if (host.kind === 'vscode') host.post({ type: 'ready' });
    return;
  }
  tablist.hidden = true;
  waiting = h('p', { className: 'muted waiting' }, 'Waiting for data…');
  app.insertBefore(waiting, tablist);
  host.post({ type: 'ready' });
}

boot();
