/**
 * The dashboard page in real headless Chromium, in both of its hosts:
 *  (a) webview mode — the page as the extension's webview panel serves it (assets by URI from
 *      a local server, the shipped CSP with a cspSource, a stand-in acquireVsCodeApi, data by
 *      message);
 *  (b) report mode — the CLI's self-contained file (script, style and data inlined), opened
 *      from disk.
 * Assertions read the live chart.js instances through window.vitlensDashboard, and the
 * inference view's overlay canvases pixel by pixel. Screenshots of every view, dark and light,
 * land in test-output/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { ApproxPoint, ApproxReport } from '../protocol/approx';
import type { DashboardData, HostMessage } from '../protocol/dashboard';
import type { GradReport } from '../protocol/grad';
import type { BenchCase, PinvReport } from '../protocol/results';
import { OP_KINDS } from '../protocol/categories';
import { mergeBenchReports } from '../protocol/bench-mode';
import { formatBytes, formatMacs, formatProbability, formatSci } from '../protocol/format';
import { dashboardHtml, makeNonce } from '../protocol/page';
import { analyseApprox } from '../server/jobs/approx/sweep';
import { runBenchmark } from '../server/jobs/bench/harness';
import { runGradients } from '../server/jobs/grad/run';
import { dashboardData } from '../server/report/data';
import { probeDevices } from '../server/runtimes/probe';
import { chromiumAvailable, launchBrowser, openProbedPage, type ProbedPage } from './helpers/browser';
import { FIXTURES, specOf } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const DIST_JS = path.join(ROOT, 'dist', 'webview.js');
const DIST_CSS = path.join(ROOT, 'dist', 'webview.css');
const OUT = path.join(ROOT, 'test-output');
const fixture = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'fixtures', 'results', 'soft_tiny-dashboard.json'), 'utf8'),
) as DashboardData;
/** soft_tiny with SOFT and Nyströmformer stages at 128, traced 40 steps (scripts/make-pinv-fixture.ts). */
const mixedPinv = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'fixtures', 'results', 'soft_tiny-mixed-pinv.json'), 'utf8'),
) as PinvReport;
/** The tiny official checkpoint on two photos at 64×64, maps of 4 stages (scripts/make-infer-fixture.ts). */
const inferFixture = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'fixtures', 'results', 'tiny-infer-dashboard.json'), 'utf8'),
) as DashboardData;

/** test/bench-train.test.ts's tiny config: a training step of any attention takes milliseconds. */
const TRAIN_TINY = [
  'embed_dims: [8, 12, 16, 16]',
  'num_heads: [2, 2, 2, 2]',
  'depths: [1, 1, 1, 1]',
  'mlp_ratios: [2, 2, 2, 2]',
  'sr_ratios: [2, 2, 1, 1]',
  'attention: [soft, soft, softmax, softmax]',
  'newton_maxiter: 4',
  'num_classes: 5',
  '',
].join('\n');

interface Snapshot {
  type: string;
  labels: unknown[];
  datasets: {
    label: string;
    data: unknown[];
    borderColor: unknown;
    backgroundColor: unknown;
    borderDash: unknown;
    pointStyle: unknown;
  }[];
  guides: { vertical?: { value: number; label: string }[]; horizontal?: { value: number; label: string }[] } | null;
  tickColor: unknown;
  ariaLabel: string;
}

/** VS Code's Dark Modern and Light Modern values (what the extension host writes on <html>). */
const VSCODE_DARK: Record<string, string> = {
  '--vscode-font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif',
  '--vscode-font-size': '13px',
  '--vscode-foreground': '#cccccc',
  '--vscode-descriptionForeground': '#9d9d9d',
  '--vscode-editor-background': '#1f1f1f',
  '--vscode-panel-border': '#2b2b2b',
  '--vscode-focusBorder': '#0078d4',
  '--vscode-button-secondaryBackground': '#313131',
  '--vscode-button-secondaryForeground': '#cccccc',
  '--vscode-textCodeBlock-background': '#2b2b2b',
  '--vscode-charts-red': '#f14c4c',
  '--vscode-charts-blue': '#3794ff',
  '--vscode-charts-yellow': '#cca700',
  '--vscode-charts-orange': '#d18616',
  '--vscode-charts-green': '#89d185',
  '--vscode-charts-purple': '#b180d7',
};
const VSCODE_LIGHT: Record<string, string> = {
  ...VSCODE_DARK,
  '--vscode-foreground': '#3b3b3b',
  '--vscode-descriptionForeground': '#717171',
  '--vscode-editor-background': '#ffffff',
  '--vscode-panel-border': '#e5e5e5',
  '--vscode-focusBorder': '#005fb8',
  '--vscode-button-secondaryBackground': '#e5e5e5',
  '--vscode-button-secondaryForeground': '#3b3b3b',
  '--vscode-textCodeBlock-background': '#f2f2f2',
  '--vscode-charts-red': '#e51400',
  '--vscode-charts-blue': '#1a85ff',
  '--vscode-charts-yellow': '#bf8803',
  '--vscode-charts-orange': '#d18616',
  '--vscode-charts-green': '#388a34',
  '--vscode-charts-purple': '#652d90',
};

/**
 * Stand-in for the webview's acquireVsCodeApi: records posted messages, keeps state in
 * sessionStorage (so a reload sees it, as a restored panel does), and applies a VS Code theme
 * (variables on <html>, class on <body>) before the page script runs.
 */
function vscodeStub(vars: Record<string, string>, bodyClass: string): string {
  return `(() => {
    const KEY = '__vitlens_state';
    window.__posted = [];
    window.__setStateCalls = 0;
    let state = null;
    try { state = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch {}
    let acquired = false;
    window.acquireVsCodeApi = () => {
      if (acquired) throw new Error('acquireVsCodeApi may only be called once');
      acquired = true;
      return {
        postMessage: (m) => { window.__posted.push(JSON.parse(JSON.stringify(m))); },
        getState: () => state,
        setState: (s) => { state = s; window.__setStateCalls++; sessionStorage.setItem(KEY, JSON.stringify(s)); },
      };
    };
    const vars = ${JSON.stringify(vars)};
    let varsSet = false;
    const apply = () => {
      if (!varsSet && document.documentElement) {
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
        varsSet = true;
      }
      if (document.body) { document.body.classList.add(${JSON.stringify(bodyClass)}); return true; }
      return false;
    };
    if (!apply()) new MutationObserver((_, o) => { if (apply()) o.disconnect(); }).observe(document, { childList: true, subtree: true });
  })();`;
}

let browser: Browser | undefined;
let server: http.Server | undefined;
let base = '';

const skip = !chromiumAvailable() && 'no Chromium at /usr/bin/chromium';

function startServer(): Promise<string> {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const origin = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
    if (url.pathname === '/' || url.pathname === '/index.html') {
      const html = dashboardHtml({
        nonce: makeNonce(),
        cspSource: origin,
        script: { uri: `${origin}/dist/webview.js` },
        style: { uri: `${origin}/dist/webview.css` },
        title: 'ViT Lens dashboard',
      });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    } else if (url.pathname === '/dist/webview.js' || url.pathname === '/dist/webview.css') {
      const file = url.pathname.endsWith('.js') ? DIST_JS : DIST_CSS;
      res.writeHead(200, {
        'content-type': url.pathname.endsWith('.js') ? 'text/javascript' : 'text/css',
        'cache-control': 'no-store',
      });
      res.end(fs.readFileSync(file));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) =>
    server!.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`)),
  );
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const charts = (page: Page): Promise<Record<string, Snapshot>> =>
  page.evaluate(() => window.vitlensDashboard!.charts() as unknown as Record<string, Snapshot>);
const posted = (page: Page): Promise<{ type: string; [k: string]: unknown }[]> =>
  page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted);

async function sendToPage(page: Page, message: HostMessage): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message);
}

async function showView(page: Page, view: string): Promise<void> {
  await page.click(`#tab-${view}`);
  await page.waitForFunction((v) => window.vitlensDashboard?.view() === v, view);
}

/** Opens the page as the webview panel does and answers its `ready` with `data`. */
async function openWebview(
  data: DashboardData,
  o: { vars?: Record<string, string>; bodyClass?: string } = {},
): Promise<ProbedPage> {
  const p = await openProbedPage(browser!, {
    initScripts: [vscodeStub(o.vars ?? VSCODE_DARK, o.bodyClass ?? 'vscode-dark')],
  });
  await p.page.goto(`${base}/`);
  await p.page.waitForFunction(() =>
    (window as unknown as { __posted?: { type: string }[] }).__posted?.some((m) => m.type === 'ready'),
  );
  await sendToPage(p.page, { type: 'data', data });
  await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
  return p;
}

async function openReport(name: string, data: DashboardData, colorScheme: 'light' | 'dark'): Promise<ProbedPage> {
  const html = dashboardHtml({
    nonce: makeNonce(),
    cspSource: null,
    script: { inline: fs.readFileSync(DIST_JS, 'utf8') },
    style: { inline: fs.readFileSync(DIST_CSS, 'utf8') },
    data,
    title: data.title,
  });
  const file = path.join(OUT, name);
  fs.writeFileSync(file, html);
  const p = await openProbedPage(browser!, { colorScheme, acceptDownloads: true });
  await p.page.goto(pathToFileURL(file).href);
  await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
  return p;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, name), fullPage: true });
}

async function waitOverlays(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    (count) => document.querySelectorAll('#panel-infer canvas.overlay-canvas[data-state="drawn"]').length === count,
    n,
  );
}

/** The overlay canvas's pixel at a point (fractions of the picture) and the raw input picture's pixel there. */
function overlayVsRaw(
  page: Page,
  index: number,
  fx: number,
  fy: number,
  src: string,
): Promise<{ overlay: number[]; raw: number[] }> {
  return page.evaluate(
    async ({ index, fx, fy, src }) => {
      const canvas = document.getElementById(`infer-overlay-${index}`) as HTMLCanvasElement;
      const overlay = [
        ...canvas.getContext('2d')!.getImageData(Math.floor(fx * canvas.width), Math.floor(fy * canvas.height), 1, 1)
          .data,
      ];
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const cx = c.getContext('2d')!;
      cx.drawImage(img, 0, 0);
      const raw = [...cx.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data];
      return { overlay, raw };
    },
    { index, fx, fy, src },
  );
}

const rgbDiff = (a: number[], b: number[]): number =>
  Math.abs(a[0]! - b[0]!) + Math.abs(a[1]! - b[1]!) + Math.abs(a[2]! - b[2]!);

function assertClean(p: ProbedPage): void {
  assert.deepEqual(p.problems(), [], 'console errors, page errors, CSP violations or remote requests');
}

/** The charts of every view match the fixture. */
async function assertAllViews(page: Page, screenshotPrefix: string | null): Promise<void> {
  const profile = fixture.profile!;
  await showView(page, 'profile');
  let c = await charts(page);
  const stacked = c['profile-macs-by-kind'];
  assert.ok(stacked, 'profile stacked chart');
  assert.equal(stacked.type, 'bar');
  const nonzeroKinds = OP_KINDS.filter((k) => profile.stages.some((s) => s.macsByKind[k] > 0));
  assert.equal(stacked.datasets.length, nonzeroKinds.length, 'one dataset per nonzero op kind');
  // Category labels are two lines (["Stage 1", "SOFT"]): join them.
  const labels = stacked.labels.map((l) => (Array.isArray(l) ? l.join(' ') : String(l)));
  const stageLabels = labels.filter((l) => /^Stage \d/.test(l)).map((l) => Number(/^Stage (\d)/.exec(l)![1]));
  assert.deepEqual(stageLabels, [1, 2, 3, 4]);
  assert.ok(labels.includes('Head'), 'the classifier head is a bar too');
  assert.equal(labels[0], 'Stage 1 SOFT');
  const stageMacs = (stacked.datasets.map((d) => d.data) as number[][]).reduce((acc, col) =>
    acc.map((v, i) => v + (col[i] ?? 0)),
  );
  assert.equal(
    stageMacs.reduce((a, b) => a + b, 0),
    profile.macsByConvention.E,
    'the stacks add up to every counted MAC',
  );
  assert.ok(c['profile-params'], 'params chart');
  assert.deepEqual(
    c['profile-params']!.datasets[0]!.data,
    profile.stages.map((s) => s.params),
  );
  const sweep = c['profile-sweep-macs']!;
  assert.equal(sweep.datasets.length, fixture.profileSweep!.attentions.length, 'one dataset per attention kind');
  assert.deepEqual(
    sweep.datasets.map((d) => d.label),
    ['SOFT', 'UFO-ViT', "softmax-SR (the SOFT paper's Linformer)", 'softmax'],
  );
  assert.equal(
    new Set(sweep.datasets.map((d) => JSON.stringify([d.borderDash, d.pointStyle]))).size,
    sweep.datasets.length,
    'attention kinds differ in dash and point style, not colour alone',
  );
  assert.ok(c['profile-sweep-memory'], 'memory sweep chart');
  for (const [id, s] of Object.entries(c)) assert.ok(s.ariaLabel.length > 40, `${id} has a summary aria-label`);
  const text = await page.locator('#panel-profile').innerText();
  assert.match(text, /FLOPs = 2 × MACs/);
  assert.match(text, /closest to convention B/);
  assert.match(text, /estimate/i);
  if (screenshotPrefix) await screenshot(page, `${screenshotPrefix}-profile.png`);

  await showView(page, 'bench');
  c = await charts(page);
  const latency = c['bench-latency']!;
  assert.ok(latency, 'latency chart');
  for (const fit of fixture.bench!.scaling) {
    const ds = latency.datasets.find(
      (d) =>
        d.label.includes(fit.runtime) &&
        d.label.startsWith(fit.attention === 'soft' ? 'SOFT ' : fit.attention === 'ufo' ? 'UFO-ViT ' : 'softmax '),
    );
    assert.ok(ds, `dataset for ${fit.runtime} ${fit.attention}`);
    const m = /N\^(-?\d+\.\d\d) \(r² (\d\.\d\d)\)/.exec(ds.label);
    assert.ok(m, `slope in "${ds.label}"`);
    assert.equal(m[1], fit.timeExponent.toFixed(2));
    assert.equal(m[2], fit.timeR2.toFixed(2));
    const okCases = fixture.bench!.cases.filter(
      (x) => x.group === 'scaling' && x.runtime === fit.runtime && x.attention === fit.attention && x.status === 'ok',
    );
    assert.equal(ds.data.length, okCases.length);
  }
  const memory = c['bench-memory']!;
  const est = memory.datasets.filter((d) => /estimated/.test(d.label));
  const meas = memory.datasets.filter((d) => /measured/.test(d.label));
  assert.ok(est.length > 0 && meas.length > 0, 'estimated and measured memory series');
  assert.notDeepEqual(est[0]!.borderDash, meas[0]!.borderDash, 'estimated vs measured: different dash');
  assert.notEqual(est[0]!.pointStyle, meas[0]!.pointStyle, 'estimated vs measured: different point style');
  const gflops = c['bench-gflops']!;
  assert.equal(gflops.type, 'bar');
  assert.ok(
    gflops.datasets.some((d) => d.label.includes('software adapter')),
    'software runtime flagged in the GFLOP/s legend',
  );
  assert.equal(await page.locator('#bench-cases tbody tr:not(.detail)').count(), fixture.bench!.cases.length);
  const benchText = await page.locator('#panel-bench').innerText();
  assert.match(benchText, /refused/);
  assert.match(benchText, /exceeds 80 % of free host memory/);
  assert.match(benchText, /Harness overhead/);
  const header = await page.locator('header').innerText();
  assert.match(header, /software adapter — timings are not GPU performance/);
  assert.match(header, /onnxruntime-node 1\.30\.0, CPU EP/);
  if (screenshotPrefix) await screenshot(page, `${screenshotPrefix}-bench.png`);

  await showView(page, 'pinv');
  c = await charts(page);
  const pinv = c['pinv-convergence']!;
  const head0 = fixture.pinv!.stages[0]!.heads[0]!;
  assert.deepEqual(
    pinv.datasets.map((d) => d.label.split(' ')[0]),
    ['residual', 'Penrose', 'exact', 'predicted'],
  );
  for (const d of pinv.datasets) assert.equal(d.data.length, head0.iterations.length);
  assert.equal(new Set(pinv.datasets.map((d) => JSON.stringify(d.borderDash))).size, 4, 'distinct dash patterns');
  assert.equal(new Set(pinv.datasets.map((d) => d.pointStyle)).size, 4, 'distinct point styles');
  assert.deepEqual(pinv.guides?.vertical, [
    { value: fixture.pinv!.iterations, label: `newton_maxiter = ${fixture.pinv!.iterations}` },
  ]);
  assert.deepEqual(
    pinv.guides?.horizontal?.map((g) => g.value),
    [1e-3, 1e-6],
  );
  const pinvText = await page.locator('#panel-pinv').innerText();
  assert.ok(pinvText.includes(fixture.pinv!.summary));
  assert.ok(pinvText.includes(head0.verdict));
  if (screenshotPrefix) await screenshot(page, `${screenshotPrefix}-pinv.png`);
}

describe('dashboard page in Chromium', { skip }, () => {
  before(async () => {
    if (!fs.existsSync(DIST_JS) || !fs.existsSync(DIST_CSS))
      execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
    fs.mkdirSync(OUT, { recursive: true });
    [browser, base] = await Promise.all([launchBrowser(), startServer()]);
  });
  after(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  it('webview mode: asks for data, renders every view under the shipped CSP (dark theme)', async () => {
    const p = await openWebview(clone(fixture));
    try {
      await assertAllViews(p.page, 'webview-dark');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('webview mode: light theme screenshots', async () => {
    const p = await openWebview(clone(fixture), { vars: VSCODE_LIGHT, bodyClass: 'vscode-light' });
    try {
      for (const v of ['profile', 'bench', 'pinv']) {
        await showView(p.page, v);
        await screenshot(p.page, `webview-light-${v}.png`);
      }
      // Charts follow the panel's size (responsive, no fixed aspect ratio).
      await showView(p.page, 'profile');
      const width = (): Promise<number> =>
        p.page.evaluate(
          () => document.querySelector('[data-chart-id="profile-sweep-macs"] canvas')!.getBoundingClientRect().width,
        );
      const wide = await width();
      await p.page.setViewportSize({ width: 560, height: 900 });
      await p.page.waitForFunction(
        (w) =>
          Math.abs(
            document.querySelector('[data-chart-id="profile-sweep-macs"] canvas')!.getBoundingClientRect().width - w,
          ) > 20,
        wide,
      );
      const narrow = await width();
      assert.ok(narrow < 540, `chart shrank with the panel (${wide} → ${narrow})`);
      await screenshot(p.page, 'webview-light-profile-narrow.png');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('report mode: the self-contained file renders the same charts from inlined data (light and dark)', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const p = await openReport(`report-${scheme}.html`, { ...clone(fixture), view: 'profile' }, scheme);
      try {
        await assertAllViews(p.page, `report-${scheme}`);
        // The standalone host downloads exports.
        const [download] = await Promise.all([p.page.waitForEvent('download'), p.page.click('#export-json')]);
        assert.equal(download.suggestedFilename(), 'soft_tiny-dashboard.json');
        const saved = JSON.parse(fs.readFileSync(await download.path(), 'utf8')) as DashboardData;
        assert.deepEqual(saved.bench?.cases.length, fixture.bench!.cases.length);
        assertClean(p);
      } finally {
        await p.close();
      }
    }
  });

  it('theme change: switching VS Code to a light theme re-colours every chart', async () => {
    const p = await openWebview({ ...clone(fixture), view: 'profile' });
    try {
      let c = await charts(p.page);
      assert.equal(c['profile-sweep-macs']!.datasets[0]!.borderColor, VSCODE_DARK['--vscode-charts-blue']);
      assert.equal(c['profile-sweep-macs']!.tickColor, VSCODE_DARK['--vscode-foreground']);
      const next = { ...VSCODE_LIGHT, '--vscode-charts-blue': '#123abc', '--vscode-foreground': '#202122' };
      await p.page.evaluate((vars) => {
        document.body.classList.replace('vscode-dark', 'vscode-light');
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
      }, next);
      await p.page.waitForFunction(
        () => (window.vitlensDashboard!.charts()['profile-sweep-macs'] as unknown as Snapshot).tickColor === '#202122',
      );
      c = await charts(p.page);
      assert.equal(
        c['profile-sweep-macs']!.datasets[0]!.borderColor,
        '#123abc',
        'SOFT series takes the new charts.blue',
      );
      assert.equal(c['profile-params']!.tickColor, '#202122');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('live benchmark: cases stream into the table and charts in place; Cancel posts {type:"cancel"}; jobDone replaces the report', async () => {
    const live = clone(fixture);
    live.bench = { ...live.bench!, cases: [], scaling: [] };
    live.live = { job: 'bench', message: 'Starting', done: 0, total: 2, cancellable: true };
    live.view = 'bench';
    const p = await openWebview(live);
    const { page } = p;
    try {
      assert.equal(await page.locator('#bench-cases tbody tr:not(.detail)').count(), 0);
      const bar = page.locator('[role="progressbar"]');
      assert.equal(await bar.getAttribute('aria-valuenow'), '0');
      await page.locator('button.cancel').focus();
      const scaling = fixture.bench!.cases.filter(
        (c) => c.group === 'scaling' && c.attention === 'soft',
      ) as BenchCase[];
      await sendToPage(page, { type: 'benchCase', case: scaling[0]! });
      await sendToPage(page, {
        type: 'progress',
        live: { job: 'bench', message: 'soft N=1225', done: 1, total: 2, cancellable: true },
      });
      await page.waitForFunction(() => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === 1);
      assert.equal((await charts(page))['bench-latency']!.datasets[0]!.data.length, 1);
      assert.equal(await bar.getAttribute('aria-valuenow'), '1');
      await sendToPage(page, { type: 'benchCase', case: scaling[1]! });
      await page.waitForFunction(() => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === 2);
      const c = await charts(page);
      assert.equal(c['bench-latency']!.datasets[0]!.data.length, 2, 'the dataset grew');
      assert.ok(
        await page.evaluate(() => document.activeElement?.classList.contains('cancel')),
        'focus stayed on Cancel while cases arrived',
      );
      await page.click('button.cancel');
      assert.ok((await posted(page)).some((m) => m.type === 'cancel'));
      await sendToPage(page, { type: 'jobDone', bench: clone(fixture.bench!) });
      await page.waitForFunction(
        (n) => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === n,
        fixture.bench!.cases.length,
      );
      assert.equal(await page.locator('[role="progressbar"]').count(), 0, 'progress bar gone');
      assert.equal((await charts(page))['bench-latency']!.datasets.length, fixture.bench!.scaling.length);
      await sendToPage(page, { type: 'jobDone', error: 'worker crashed (exit 3)' });
      await page.waitForFunction(() =>
        document.querySelector('[role="alert"]')?.textContent?.includes('worker crashed'),
      );
      assert.match(await page.locator('[role="alert"] .badge').innerText(), /^error$/);
      // A cancel is the user's own doing: said plainly, without an error badge.
      await sendToPage(page, {
        type: 'jobDone',
        error: 'Benchmark cancelled; the cases that finished are kept.',
        cancelled: true,
      });
      await page.waitForFunction(() =>
        document.querySelector('[role="alert"]')?.textContent?.includes('Benchmark cancelled'),
      );
      assert.match(await page.locator('[role="alert"] .badge').innerText(), /^cancelled$/);
      await page.waitForFunction(() => document.querySelector('[role="status"]')?.textContent === 'Job cancelled');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('benchmark view: an inference and a training run merged — a switch between them, each mode its own table, charts and badge; Run again in the mode shown; CSV of both; a live training run beside the inference cases', async () => {
    // Two real runs of a tiny config on ORT CPU: forward passes, then training steps (gradients only).
    const devices = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
    const run = (train?: { optimizer: null }) =>
      runBenchmark(
        {
          model: specOf(TRAIN_TINY),
          config: 'tiny.vitlens.yaml',
          runtimes: ['ort-cpu'],
          stages: [1],
          resolutions: [32],
          levels: ['attention'],
          attentions: ['soft', 'ufo'],
          scalingTokens: [196, 784],
          budgetMs: 10,
          limits: false,
          ...(train ? { train } : {}),
        },
        devices,
      );
    const inference = await run();
    const training = await run({ optimizer: null });
    for (const c of [...inference.cases, ...training.cases]) assert.equal(c.status, 'ok', `${c.id}: ${c.message}`);
    const merged = mergeBenchReports(inference, training);
    assert.equal(merged.mode, 'train');
    assert.deepEqual(merged.cases, [...inference.cases, ...training.cases]);
    assert.deepEqual(
      merged.scaling.map((f) => [f.mode, f.attention, f.timeExponent]),
      [
        ...inference.scaling.map((f) => ['inference', f.attention, f.timeExponent]),
        ...training.scaling.map((f) => ['train', f.attention, f.timeExponent]),
      ],
    );
    assert.deepEqual(merged.training, training.training);
    // A new run replaces its own mode's results and keeps the other's; another config's report is not merged.
    assert.deepEqual(mergeBenchReports(merged, inference).cases, [...training.cases, ...inference.cases]);
    assert.equal(mergeBenchReports({ ...inference, config: 'other.yaml' }, training), training);

    const rows = (page: Page) => page.locator('#bench-cases tbody tr:not(.detail)');
    const columns = (page: Page) =>
      page.$$eval('#bench-cases thead th button', (bs) => bs.map((b) => b.getAttribute('data-column')));
    const p = await openWebview({ ...clone(fixture), bench: clone(merged), view: 'bench' });
    const { page } = p;
    try {
      // Opens on the latest run's mode: training steps.
      assert.equal(await page.locator('#bench-mode input[type="radio"]').count(), 2);
      assert.equal(await page.isChecked('#bench-mode-train'), true);
      assert.match(await page.locator('#bench-mode').innerText(), /Inference \(forward pass\) \(6 cases\)/);
      const setup = await page.locator('#bench-training').innerText();
      assert.match(setup, /Training step: forward \+ backward\n/);
      assert.match(setup, /seed 2; gradients for the input and every parameter/);
      assert.match(setup, /none: gradients only/);
      assert.equal(await rows(page).count(), training.cases.length);
      assert.ok((await columns(page)).includes('fwdmacs'));
      // (No named functions inside the page callback: tsx would wrap them in a helper the page lacks.)
      const cells = await page.$$eval('#bench-cases tbody tr:not(.detail)', (trs) =>
        trs.map((tr) => {
          const keys = [...tr.closest('table')!.querySelectorAll('thead th')].map(
            (th) => th.querySelector('button')?.getAttribute('data-column') ?? '',
          );
          const td = [...tr.querySelectorAll('td')];
          return ['fwdmacs', 'bwdmacs', 'bwdfwd', 'fwdpeak'].map((k) => td[keys.indexOf(k)]?.textContent ?? '');
        }),
      );
      assert.deepEqual(
        cells,
        training.cases.map((c) => [
          formatMacs(c.training!.forwardMacs),
          formatMacs(c.training!.backwardMacs),
          `${c.training!.backwardOverForward.toFixed(2)}×`,
          formatBytes(c.training!.forwardPeakBytes),
        ]),
      );
      let c = await charts(page);
      for (const f of training.scaling) {
        const label = `${f.attention === 'soft' ? 'SOFT' : 'UFO-ViT'} attention training step · ort-cpu: time ∝ N^${f.timeExponent.toFixed(2)} (r² ${f.timeR2.toFixed(2)})`;
        assert.ok(
          c['bench-latency']!.datasets.some((d) => d.label === label),
          `${label} in ${c['bench-latency']!.datasets.map((d) => d.label).join('; ')}`,
        );
      }
      assert.equal(c['bench-latency']!.datasets.length, training.scaling.length);
      assert.match(c['bench-latency']!.ariaLabel, /median training-step latency/);
      await screenshot(page, 'webview-dark-bench-train.png');
      // Run again repeats the training run: its optimizer (none) and cotangent seed.
      await page.click('button.rerun');
      assert.deepEqual((await posted(page)).at(-1), {
        type: 'rerun',
        view: 'bench',
        bench: { train: true, optimizer: null, seed: 2 },
      });

      // Inference: its own cases, fits and columns, no badge; the choice persists.
      await page.check('#bench-mode-inference');
      await page.waitForFunction(
        (n) => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === n,
        inference.cases.length,
      );
      assert.equal(await page.locator('#bench-training').count(), 0);
      assert.ok(!(await columns(page)).some((k) => ['fwdmacs', 'bwdmacs', 'bwdfwd', 'fwdpeak', 'worst'].includes(k!)));
      c = await charts(page);
      assert.deepEqual(
        c['bench-latency']!.datasets.map((d) => d.label),
        inference.scaling.map(
          (f) =>
            `${f.attention === 'soft' ? 'SOFT' : 'UFO-ViT'} attention · ort-cpu: time ∝ N^${f.timeExponent.toFixed(2)} (r² ${f.timeR2.toFixed(2)})`,
        ),
      );
      assert.ok(!c['bench-memory']!.datasets.some((d) => /forward pass only/.test(d.label)));
      const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__vitlens_state') ?? 'null'));
      assert.equal(state.selections.benchMode, 'inference', 'the choice persists');
      await page.click('button.rerun');
      assert.deepEqual((await posted(page)).at(-1), { type: 'rerun', view: 'bench' });
      await screenshot(page, 'webview-dark-bench-inference-merged.png');

      // CSV: every case of both runs, its mode, and the training columns where it has them.
      await page.click('#export-csv');
      const csv = (await posted(page)).find((m) => m.type === 'save' && m.mime === 'text/csv') as unknown as {
        content: string;
      };
      const lines = csv.content.trim().split(/\r\n/);
      const fields = (l: string) => [...l.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]!);
      const header = fields(lines[0]!);
      const col = (name: string) => header.indexOf(name);
      assert.equal(lines.length, 1 + merged.cases.length);
      assert.deepEqual(
        lines.slice(1).map((l) => {
          const f = fields(l);
          return [f[col('id')], f[col('mode')], f[col('forward_macs')], f[col('backward_over_forward')]];
        }),
        merged.cases.map((x) => [
          x.id,
          x.mode,
          x.training ? String(x.training.forwardMacs) : '',
          x.training ? String(x.training.backwardOverForward) : '',
        ]),
      );

      // A live training run beside the inference cases (what "Benchmark training step" sends): the view
      // follows the run, its cases arrive in place, and the final report keeps both.
      const live = mergeBenchReports(inference, {
        ...inference,
        startedAt: new Date().toISOString(),
        runtimes: [],
        cases: [],
        scaling: [],
        mode: 'train',
        notes: [],
      });
      await sendToPage(page, {
        type: 'data',
        data: {
          ...clone(fixture),
          generatedAt: new Date().toISOString(),
          bench: live,
          view: 'bench',
          live: { job: 'bench', message: 'starting', done: 0, total: 6, cancellable: true },
        },
      });
      await page.waitForFunction(
        () => (document.querySelector('#bench-mode-train') as HTMLInputElement | null)?.checked,
      );
      assert.equal(await rows(page).count(), 0);
      assert.match(await page.locator('#bench-training').innerText(), /Training step: forward \+ backward/);
      await sendToPage(page, { type: 'benchCase', case: training.cases[0]! });
      await page.waitForFunction(() => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === 1);
      assert.match(await page.locator('#bench-mode-train-count').innerText(), /^\(1 case\)$/);
      await sendToPage(page, { type: 'jobDone', bench: clone(merged) });
      await page.waitForFunction(
        (n) => document.querySelectorAll('#bench-cases tbody tr:not(.detail)').length === n,
        training.cases.length,
      );
      assert.equal(await page.isChecked('#bench-mode-train'), true);
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('exports: PNG per chart, JSON of everything and CSV of the view go to the host as save messages', async () => {
    const data = { ...clone(fixture), view: 'profile' as const };
    const p = await openWebview(data);
    const { page } = p;
    try {
      await page.click('section[data-chart-id="profile-macs-by-kind"] button:has-text("PNG")');
      await page.click('#export-json');
      await showView(page, 'bench');
      await page.click('#export-csv');
      const saves = (await posted(page)).filter((m) => m.type === 'save') as unknown as {
        filename: string;
        mime: string;
        encoding: string;
        content: string;
      }[];
      const png = saves.find((m) => m.mime === 'image/png');
      assert.ok(png, 'PNG save message');
      assert.equal(png.encoding, 'base64');
      assert.equal(png.filename, 'soft_tiny-profile-macs-by-kind.png');
      assert.deepEqual(
        [...Buffer.from(png.content, 'base64').subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      );
      const json = saves.find((m) => m.mime === 'application/json');
      assert.ok(json);
      assert.deepEqual(JSON.parse(json.content), data);
      const csv = saves.find((m) => m.mime === 'text/csv');
      assert.ok(csv);
      assert.equal(csv.filename, 'soft_tiny-bench-cases.csv');
      const lines = csv.content.trim().split(/\r\n/);
      assert.equal(lines.length, fixture.bench!.cases.length + 1);
      assert.ok(lines[0]!.startsWith('id,runtime,group,stage,attention,level'));
      await page.click('button.rerun');
      assert.deepEqual((await posted(page)).at(-1), { type: 'rerun', view: 'bench' });
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('views without data say so and how to get it', async () => {
    const p = await openWebview({ ...clone(fixture), bench: null, pinv: null, profileSweep: null, view: 'bench' });
    try {
      assert.match(await p.page.locator('#panel-bench').innerText(), /No benchmark yet — run vitlens bench/);
      await showView(p.page, 'pinv');
      assert.match(await p.page.locator('#panel-pinv').innerText(), /No pseudo-inverse report yet/);
      await showView(p.page, 'approx');
      assert.match(
        await p.page.locator('#panel-approx').innerText(),
        /No approximation report yet — run vitlens approx <config> --html report\.html or use the Approximation quality CodeLens/,
      );
      await p.page.click('#panel-approx button:has-text("Run approximation analysis")');
      assert.deepEqual((await posted(p.page)).at(-1), { type: 'rerun', view: 'approx' });
      await showView(p.page, 'infer');
      assert.match(
        await p.page.locator('#panel-infer').innerText(),
        /No inference yet — run vitlens infer … --html or use the Run inference CodeLens/,
      );
      assert.equal(
        await p.page.locator('#panel-infer button:has-text("Run inference")').count(),
        1,
        'VS Code can run it from here',
      );
      await p.page.click('#panel-infer button:has-text("Run inference")');
      assert.deepEqual((await posted(p.page)).at(-1), { type: 'rerun', view: 'infer' });
      await showView(p.page, 'grad');
      assert.match(
        await p.page.locator('#panel-grad').innerText(),
        /No gradient report yet — run vitlens grad <config> --label N --html report\.html or use the Gradients CodeLens/,
      );
      await p.page.click('#panel-grad button:has-text("Compute gradients")');
      assert.deepEqual((await posted(p.page)).at(-1), { type: 'rerun', view: 'grad' });
      await showView(p.page, 'profile');
      const ids = Object.keys(await charts(p.page)).sort();
      assert.deepEqual(ids, ['profile-macs-by-kind', 'profile-params']);
      assert.doesNotMatch(await p.page.locator('header').innerText(), /Benchmark devices/);
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('keyboard and state: Tab reaches the tablist, ArrowRight switches view, a reload restores view and selections', async () => {
    const p = await openWebview(clone(fixture));
    const { page } = p;
    try {
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      let role: string | null = null;
      for (let i = 0; i < 12 && role !== 'tab'; i++) {
        await page.keyboard.press('Tab');
        role = await page.evaluate(() => document.activeElement?.getAttribute('role') ?? null);
      }
      assert.equal(role, 'tab', 'Tab reaches the tablist');
      // The fixture opens on the benchmark view: its tab is the tablist's one tab stop.
      assert.equal(
        await page.evaluate(() => document.activeElement?.id),
        'tab-bench',
        'the selected tab is the tab stop',
      );
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'pinv');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-pinv');
      assert.equal(await page.getAttribute('#tab-pinv', 'aria-selected'), 'true');
      assert.equal(await page.getAttribute('#tab-bench', 'aria-selected'), 'false');
      assert.equal(await page.isVisible('#panel-bench'), false);
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'approx');
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'infer');
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'grad');
      await page.keyboard.press('ArrowRight');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'profile'); // the tablist wraps around
      await page.keyboard.press('End');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'grad');
      await page.keyboard.press('ArrowLeft');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'infer');
      await page.keyboard.press('ArrowLeft');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'approx');
      await page.keyboard.press('ArrowLeft');
      await page.waitForFunction(() => window.vitlensDashboard!.view() === 'pinv');
      // Pick stage 2, head 3 in the pseudo-inverse view.
      await page.selectOption('#panel-pinv select >> nth=0', '2');
      await page.selectOption('#panel-pinv select >> nth=1', '3');
      await page.waitForFunction(() =>
        /stage 2, head 3/.test(document.querySelector('[data-chart-id="pinv-convergence"] h3')?.textContent ?? ''),
      );
      // Sort the heads table by condition number, descending.
      await page.click('#pinv-heads th button[data-column="cond"]');
      await page.click('#pinv-heads th button[data-column="cond"]');
      assert.equal(
        await page.getAttribute('#pinv-heads th:has(button[data-column="cond"])', 'aria-sort'),
        'descending',
      );
      const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__vitlens_state') ?? 'null'));
      assert.ok(
        (await page.evaluate(() => (window as unknown as { __setStateCalls: number }).__setStateCalls)) > 0,
        'setState was called',
      );
      assert.equal(state.view, 'pinv');
      assert.deepEqual({ s: state.selections.pinvStage, h: state.selections.pinvHead }, { s: 2, h: 3 });
      assert.equal(state.data.title, fixture.title);

      await page.reload();
      await page.waitForFunction(() => window.vitlensDashboard?.ready());
      assert.equal(
        await page.evaluate(() => window.vitlensDashboard!.view()),
        'pinv',
        'the reloaded panel shows the same view',
      );
      // Restored from state at once, then it asks the host for anything newer (cases that came
      // while the panel was hidden); the same data again must not move the user's view.
      assert.ok(
        (await posted(page)).some((m) => m.type === 'ready'),
        'the restored page asks the host for newer data',
      );
      await sendToPage(page, { type: 'data', data: { ...fixture, view: 'bench' } });
      assert.equal(
        await page.evaluate(() => window.vitlensDashboard!.view()),
        'pinv',
        'the same data again keeps the view',
      );
      const c = await charts(page);
      const head = fixture.pinv!.stages[1]!.heads[3]!;
      assert.equal(
        (c['pinv-convergence']!.datasets[0]!.data[0] as { y: number }).y,
        head.iterations[0]!.residual,
        'stage 2, head 3 restored',
      );
      assert.equal(
        await page.getAttribute('#pinv-heads th:has(button[data-column="cond"])', 'aria-sort'),
        'descending',
        'table sort restored',
      );
      assertClean(p);
    } finally {
      await p.close();
    }
  });
  it('pseudo-inverse view with Nyström stages: both iterations side by side, each with its own marker, labels and CSV column', async () => {
    const p = await openWebview({ ...clone(fixture), pinv: clone(mixedPinv), view: 'pinv' });
    const { page } = p;
    try {
      let c = await charts(page);
      // Beside the selected head's chart: every stage's worst head, the iteration named in each legend entry.
      const methods = c['pinv-methods']!;
      const live = mixedPinv.stages.filter((s) => s.heads.length > 0);
      assert.deepEqual(
        methods.datasets.map((d) => d.label.split(' · ').slice(0, 2)),
        live.map((s) => [`Stage ${s.stage}`, s.method!.label]),
      );
      assert.deepEqual(
        live.map((s) => s.method!.label),
        [
          'Newton–Raphson (SOFT, variant A, 20 iterations)',
          'Nyströmformer third-order (6 iterations)',
          'Newton–Raphson (SOFT, variant A, 20 iterations)',
        ],
      );
      live.forEach((s, i) => {
        const d = methods.datasets[i]!;
        const worst = s.heads.reduce((w, x) => (x.iterations.at(-1)!.residual > w.iterations.at(-1)!.residual ? x : w));
        assert.ok(d.label.endsWith(`head ${worst.head}`), d.label);
        assert.deepEqual(
          (d.data as { y: number }[]).map((pt) => pt.y),
          worst.iterations.map((it) => it.residual),
        );
        // The iteration is in the dash and the point shape, not only the colour.
        const nystrom = s.method!.kind === 'nystrom';
        assert.deepEqual(d.borderDash, nystrom ? [8, 4] : []);
        assert.equal(d.pointStyle, nystrom ? 'rectRot' : 'circle');
      });
      // Each iteration's configured count is marked, though 40 steps were traced.
      assert.deepEqual(methods.guides?.vertical, [
        { value: 20, label: 'newton_maxiter = 20' },
        { value: 6, label: 'nystrom_iterations = 6' },
      ]);
      assert.deepEqual(c['pinv-convergence']!.guides?.vertical, [{ value: 20, label: 'newton_maxiter = 20' }]);
      assert.equal(
        await page.evaluate(() =>
          getComputedStyle(document.querySelector('[data-chart-id="pinv-methods"]')!.parentElement!).getPropertyValue(
            'display',
          ),
        ),
        'grid',
      );

      // A Nyström stage's own chart speaks of A·Z_k and marks nystrom_iterations.
      await page.selectOption('#panel-pinv select >> nth=0', '2');
      await page.waitForFunction(() =>
        /stage 2, head 0/.test(document.querySelector('[data-chart-id="pinv-convergence"] h3')?.textContent ?? ''),
      );
      c = await charts(page);
      const conv = c['pinv-convergence']!;
      const head = mixedPinv.stages[1]!.heads[0]!;
      assert.deepEqual(
        conv.datasets.map((d) => d.label),
        [
          'residual ‖I − A·Z_k‖_F',
          'Penrose ‖A·Z_k·A − A‖_F / ‖A‖_F',
          'exact error ‖Z_k − A⁻¹‖_F / ‖A⁻¹‖_F',
          'predicted ‖I − A·Z_k‖₂ (from σ_min of A)',
        ],
      );
      assert.deepEqual(
        (conv.datasets[0]!.data as { y: number }[]).map((pt) => pt.y),
        head.iterations.map((it) => it.residual),
      );
      assert.deepEqual(conv.guides?.vertical, [{ value: 6, label: 'nystrom_iterations = 6' }]);
      assert.match(conv.ariaLabel, /Nyströmformer's iteration errors .* Vertical marker at nystrom_iterations = 6/);
      const text = await page.locator('#panel-pinv').innerText();
      assert.ok(text.includes(mixedPinv.summary));
      assert.ok(text.includes(`Stage 2, head 0 (Nyströmformer third-order (6 iterations)): ${head.verdict}.`));
      assert.match(text, /nystrom_iterations\s+6/);
      assert.match(text, /newton_maxiter\s+20/);
      // The heads table names each row's iteration and reads σ for Nyström, λ for Newton.
      assert.equal(await page.locator('#pinv-heads th button[data-column="iteration"]').count(), 1);
      const rows = await page.locator('#pinv-heads tbody tr').allInnerTexts();
      assert.equal(
        rows.length,
        live.reduce((n, s) => n + s.heads.length, 0),
      );
      assert.equal(rows.filter((r) => r.includes('Nyströmformer') && /σ \[/.test(r)).length, 4);
      assert.equal(rows.filter((r) => r.includes('Newton–Raphson') && /λ \[/.test(r)).length, 12);
      await screenshot(page, 'webview-dark-pinv-nystrom.png');

      await page.click('#export-csv');
      const csv = (await posted(page)).find((m) => m.type === 'save' && m.mime === 'text/csv') as unknown as {
        filename: string;
        content: string;
      };
      assert.equal(csv.filename, 'soft_tiny-pinv-iterations.csv');
      const lines = csv.content.trim().split(/\r\n/);
      assert.ok(lines[0]!.startsWith('stage,attention,iteration,head,m,alpha,'));
      assert.equal(lines.filter((l) => l.startsWith('2,nystrom,nystrom,')).length, 4 * 41);
      assert.equal(lines.filter((l) => l.startsWith('1,soft,newton,')).length, 2 * 41);
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  // ── approximation view ──────────────────────────────────────────────────────────────────

  it('approximation view: a real `approx` run of the tiny checkpoint charted per stage — error against MACs, every method, heads as bars; e_mat toggle, tables, CSV and PNG', async () => {
    // The real job on the tiny official checkpoint and image, with short sweeps (as test/approx.test.ts keeps it fast).
    const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const spec = specOf(fs.readFileSync(config, 'utf8'));
    const r: ApproxReport = await analyseApprox(spec, {
      config,
      checkpoint: path.join(FIXTURES, 'ref', 'tiny_soft.pth'),
      image: path.join(FIXTURES, 'ref', 'tiny_image_64x64.png'),
      newtonIterations: [5, 20],
      nystromIterations: [2, 6],
      performerFeatures: [16, 64],
      linformerK: [8, 16],
    });
    const data = dashboardData({ spec, source: config, producer: 'test', approx: r, view: 'approx' });
    const p = await openWebview(clone(data));
    const { page } = p;
    // What the chart must show for a point: the mean over heads, and the heads' own min and max.
    type Field = 'outRun' | 'outExact' | 'matRun' | 'matExact';
    const expected = (pts: ApproxPoint[], f: Field) =>
      pts.map((pt) => {
        const heads = pt.heads.map((x) => x[f]!);
        return { x: pt.macsPerHead, y: pt.mean[f], yMin: Math.min(...heads), yMax: Math.max(...heads) };
      });
    try {
      assert.equal(await page.evaluate(() => window.vitlensDashboard!.view()), 'approx', 'the data names the view');
      let c = await charts(page);
      assert.deepEqual(
        Object.keys(c)
          .filter((id) => id.startsWith('approx'))
          .sort(),
        ['approx-stage-1', 'approx-stage-2', 'approx-stage-3', 'approx-stage-4'],
      );
      const s2 = r.stages[1]!;
      const method = (m: string) => s2.methods.find((x) => x.method === m)!;
      const soft = method('soft');
      const nystrom = method('nystrom');
      assert.equal(soft.modelIterations, 20);
      assert.equal(nystrom.modelIterations, 6);
      const stage2 = c['approx-stage-2']!;
      assert.deepEqual(
        stage2.datasets.map((d) => d.label),
        [
          'SOFT as run (20 iterations)',
          'SOFT exact pinv',
          'SOFT as run, iterations swept (m = 4)',
          'Nyströmformer as run (6 iterations)',
          'Nyströmformer exact pinv',
          'Nyströmformer as run, iterations swept (m = 4)',
          'Performer',
          'Linformer',
          "softmax-SR (the SOFT paper's Linformer)",
        ],
      );
      const ds = (label: string) => stage2.datasets.find((d) => d.label === label)!.data;
      // SOFT at the model's setting (a checkpoint: its trained stride only), as run and with the exact pseudo-inverse.
      const own = soft.points.filter((pt) => pt.model);
      assert.equal(own.length, 1);
      assert.deepEqual(ds('SOFT as run (20 iterations)'), expected(own, 'outRun'));
      assert.deepEqual(ds('SOFT exact pinv'), expected(own, 'outExact'));
      assert.deepEqual(
        ds('SOFT as run, iterations swept (m = 4)'),
        expected(
          soft.points.filter((pt) => pt.setting.landmarks === 4),
          'outRun',
        ),
      );
      // Nyström across its landmark grids at 6 iterations, in MACs order.
      const ny6 = nystrom.points
        .filter((pt) => pt.setting.iterations === 6)
        .sort((a, b) => a.macsPerHead - b.macsPerHead);
      assert.ok(ny6.length >= 2, 'the landmark count is swept');
      assert.deepEqual(ds('Nyströmformer as run (6 iterations)'), expected(ny6, 'outRun'));
      assert.deepEqual(ds('Nyströmformer exact pinv'), expected(ny6, 'outExact'));
      assert.deepEqual(ds('Performer'), expected(method('performer').points, 'outRun'));
      assert.deepEqual(ds('Linformer'), expected(method('linformer').points, 'outRun'));
      // Two heads: the bars are their spread.
      const perf = ds('Performer') as { yMin: number; yMax: number; y: number }[];
      assert.ok(perf.every((pt) => pt.yMin < pt.yMax && pt.yMin <= pt.y && pt.y <= pt.yMax));
      // Run and exact differ in dash and marker fill; every series differs from every other in more than colour.
      assert.equal(
        new Set(stage2.datasets.map((d) => JSON.stringify([d.borderColor, d.borderDash, d.pointStyle]))).size,
        stage2.datasets.length,
      );
      assert.notDeepEqual(stage2.datasets[0]!.borderDash, stage2.datasets[1]!.borderDash);
      assert.deepEqual(stage2.guides?.vertical, [
        { value: s2.exactMacsPerHead, label: `exact attention ${formatMacs(s2.exactMacsPerHead)}` },
      ]);
      assert.match(
        stage2.ariaLabel,
        /^Log–log line chart of e_out, the relative Frobenius error .* stage 2 \(SOFT, 8×8 grid, 64 tokens, 2 heads\)/,
      );
      assert.match(stage2.ariaLabel, /Performer: 2 points, lowest/);
      // Stage 4 (softmax with a cls token): Performer only; the chart says why the others are missing.
      assert.deepEqual(
        c['approx-stage-4']!.datasets.map((d) => d.label),
        ['Performer'],
      );
      const note4 = await page.locator('[data-chart-id="approx-stage-4"] .chart-note').innerText();
      assert.match(note4, /Nyströmformer — its landmarks pool the token grid/);
      assert.match(note4, /Linformer — no setting fits 5 tokens/);

      // The run's inputs, arithmetic and error definition, in words.
      const text = await page.locator('#panel-approx').innerText();
      assert.ok(text.includes(r.input.description), 'checkpoint and image');
      assert.match(text, /float64: the activations on the float64 reference runtime/);
      assert.match(text, /relative Frobenius norms: e_mat = ‖S − Ŝ‖_F \/ ‖S‖_F; e_out = ‖S·V − Ŝ·V‖_F \/ ‖S·V‖_F/);
      assert.match(text, /variant A, 20 iterations in the model/);
      for (const n of r.notes) assert.ok(text.includes(n.replace(/`/g, '')), n);
      // Every point in the table, with the numbers of the report.
      const total = r.stages.reduce((n, s) => n + s.methods.reduce((k, m) => k + m.points.length, 0), 0);
      assert.equal(await page.locator('#approx-points tbody tr').count(), total);
      const ownRow = (
        await page.locator('#approx-points tbody tr', { hasText: 'r = 4 (m = 4), 20 iterations *' }).innerText()
      )
        .split('\t')
        .map((x) => x.trim());
      assert.deepEqual(ownRow.slice(0, 3), ['2', 'SOFT', 'r = 4 (m = 4), 20 iterations *']);
      assert.equal(ownRow[6], formatSci(own[0]!.mean.outRun, 3));
      assert.equal(await page.locator('#approx-stages tbody tr').count(), r.stages.length);
      await screenshot(page, 'webview-dark-approx.png');

      // e_mat: every chart re-plots the matrices' errors; spatial reduction (no N×N matrix) leaves.
      await page.selectOption('#panel-approx select', 'mat');
      await page.waitForFunction(() =>
        /Log–log line chart of e_mat/.test(
          document.querySelector('[data-chart-id="approx-stage-2"] canvas')?.getAttribute('aria-label') ?? '',
        ),
      );
      c = await charts(page);
      const mat = c['approx-stage-2']!;
      assert.ok(!mat.datasets.some((d) => d.label.startsWith('softmax-SR')));
      assert.deepEqual(mat.datasets.find((d) => d.label === 'SOFT exact pinv')!.data, expected(own, 'matExact'));
      assert.deepEqual(
        mat.datasets.find((d) => d.label === 'Performer')!.data,
        expected(method('performer').points, 'matRun'),
      );
      assert.match(
        await page.locator('[data-chart-id="approx-stage-2"] .chart-note').innerText(),
        /softmax-SR \(the SOFT paper's Linformer\) has no N×N matrix: it is in the e_out chart only/,
      );
      const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__vitlens_state') ?? 'null'));
      assert.equal(state.selections.approxMetric, 'mat', 'the choice persists');
      await screenshot(page, 'webview-dark-approx-mat.png');

      // Exports: a chart as PNG, every head of every point as CSV (raw numbers).
      await page.click('section[data-chart-id="approx-stage-1"] button:has-text("PNG")');
      await page.click('#export-csv');
      const saves = (await posted(page)).filter((m) => m.type === 'save') as unknown as {
        filename: string;
        mime: string;
        content: string;
      }[];
      const png = saves.find((m) => m.mime === 'image/png')!;
      assert.equal(png.filename, 'custom-approx-stage-1.png');
      assert.deepEqual(
        [...Buffer.from(png.content, 'base64').subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      );
      const csv = saves.find((m) => m.mime === 'text/csv')!;
      assert.equal(csv.filename, 'custom-approx-points.csv');
      const lines = csv.content.trim().split(/\r\n/);
      const header = lines[0]!.split(',');
      assert.deepEqual(header.slice(0, 7), ['stage', 'attention', 'grid_h', 'grid_w', 'tokens', 'head_dim', 'method']);
      const perHead = r.stages.reduce(
        (n, s) => n + s.methods.reduce((k, m) => k + m.points.reduce((j, pt) => j + pt.heads.length, 0), 0),
        0,
      );
      assert.equal(lines.length, 1 + perHead);
      const col = (name: string) => header.indexOf(name);
      // Fields with a comma (the settings' labels) are quoted.
      const fields = (l: string) =>
        [...l.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]!).slice(0, header.length);
      assert.ok(lines.every((l) => fields(l).length === header.length));
      const head1 = lines
        .map(fields)
        .find(
          (f) =>
            f[0] === '2' && f[col('method')] === 'soft' && f[col('model_setting')] === 'true' && f[col('head')] === '1',
        )!;
      assert.equal(Number(head1[col('out_run')]), own[0]!.heads[1]!.outRun);
      assert.equal(Number(head1[col('mat_exact')]), own[0]!.heads[1]!.matExact);
      assert.equal(Number(head1[col('macs_per_head')]), own[0]!.macsPerHead);
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  // ── gradients view ──────────────────────────────────────────────────────────────────────

  it('gradients view: a real `grad` run of the tiny checkpoint (train mode, newton_maxiter: 1) — a bar per parameter at its norm, the flagged ones apart, the rule as guides; ratio toggle, Newton stages, tables, CSV and PNG', async () => {
    // The real job on the tiny official checkpoint and image, float64 reference. Train mode flags the
    // six conv biases BatchNorm cancels (vanishing); one Newton iteration leaves stage 1 over 1 %.
    const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const text = `${fs.readFileSync(config, 'utf8')}newton_maxiter: 1\n`;
    const spec = specOf(text);
    const r: GradReport = await runGradients(
      {
        model: spec,
        config,
        checkpoint: path.join(FIXTURES, 'ref', 'tiny_soft.pth'),
        images: [path.join(FIXTURES, 'ref', 'tiny_image_64x64.png')],
        labels: [3],
        mode: 'train',
      },
      () => Promise.reject(new Error('the float64 reference needs no device')),
    );
    const FLAGGED = [
      'patch_embed1.proj.0.bias',
      'patch_embed1.proj.3.bias',
      'patch_embed1.proj.6.bias',
      'patch_embed2.proj.0.bias',
      'patch_embed3.proj.0.bias',
      'patch_embed4.proj.0.bias',
    ];
    assert.deepEqual(
      r.parameters.filter((x) => x.flag).map((x) => [x.key, x.flag]),
      FLAGGED.map((k) => [k, 'vanishing']),
    );
    assert.deepEqual(
      r.newton.map((n) => n.relativeDifference > 1e-2),
      [true, false, false],
      'stage 1 over the rule, stages 2 and 3 under it',
    );
    const data = dashboardData({ spec, source: config, producer: 'test', grad: r, view: 'grad' });
    const p = await openWebview(clone(data));
    const { page } = p;
    const keys = r.parameters.map((x) => x.key);
    /** The bar drawn at each category: at most one dataset has a value there (none: nothing plotted). */
    const bars = (c: Snapshot) =>
      keys.map((_, i) => {
        const at = c.datasets.filter((d) => d.data[i] != null);
        assert.ok(at.length <= 1, `at most one bar at #${i + 1} ${keys[i]}`);
        return { series: at[0]?.label ?? null, value: (at[0]?.data[i] as number | undefined) ?? null };
      });
    try {
      assert.equal(await page.evaluate(() => window.vitlensDashboard!.view()), 'grad', 'the data names the view');
      let c = await charts(page);
      assert.deepEqual(
        Object.keys(c)
          .filter((id) => id.startsWith('grad'))
          .sort(),
        ['grad-input-channels', 'grad-newton', 'grad-norms'],
      );
      const norms = c['grad-norms']!;
      assert.equal(norms.type, 'bar');
      assert.deepEqual(norms.labels, keys, 'one bar per parameter tensor, in state-dict order');
      assert.deepEqual(
        norms.datasets.map((d) => d.label),
        [
          'Stage 1 embedding',
          'Stage 1 blocks',
          'Stage 2 embedding',
          'Stage 2 blocks',
          'Stage 3 embedding',
          'Stage 3 blocks',
          'Stage 4 embedding',
          'Stage 4 blocks',
          'Final norm',
          'Head',
          'Flagged (vanishing)',
        ],
      );
      const drawn = bars(norms);
      assert.deepEqual(
        drawn.map((b) => b.value),
        r.parameters.map((x) => x.gradNorm),
        "every bar is the report's gradient norm",
      );
      const seriesOf = (key: string) => drawn[keys.indexOf(key)]!.series;
      assert.equal(seriesOf('pos_embed1'), 'Stage 1 embedding');
      assert.equal(seriesOf('patch_embed2.proj.0.weight'), 'Stage 2 embedding');
      assert.equal(seriesOf('block2.0.att.mha.W_q.weight'), 'Stage 2 blocks');
      assert.equal(seriesOf('cls_token'), 'Stage 4 embedding');
      assert.equal(seriesOf('block4.0.mlp.fc1.weight'), 'Stage 4 blocks');
      assert.equal(seriesOf('norm.weight'), 'Final norm');
      assert.equal(seriesOf('head.bias'), 'Head');
      assert.deepEqual(
        keys.filter((k) => seriesOf(k) === 'Flagged (vanishing)'),
        FLAGGED,
        'the flagged parameters are highlighted, in a series of their own',
      );
      const flaggedSeries = norms.datasets.at(-1)!;
      assert.equal(flaggedSeries.backgroundColor, VSCODE_DARK['--vscode-charts-red'], 'in the theme’s red');
      assert.equal(flaggedSeries.pointStyle, 'triangle', 'and a legend marker of their own, not colour alone');
      assert.equal(
        new Set(norms.datasets.map((d) => d.backgroundColor)).size,
        norms.datasets.length,
        'a colour per group',
      );
      const med = r.totals.medianGradNorm;
      assert.deepEqual(
        norms.guides?.horizontal?.map((g) => g.value),
        [med * 1e3, med, med * 1e-6],
        "the rule's thresholds and the median",
      );
      assert.match(norms.guides!.horizontal![0]!.label, /^exploding above 1e3 × median = /);
      assert.match(norms.guides!.horizontal![2]!.label, /^vanishing below 1e-6 × median = /);
      assert.match(
        norms.ariaLabel,
        /^Bar chart, log scale, of ‖grad‖ for each of the 119 parameter tensors in model order, by group \(Stage 1 embedding 13, Stage 1 blocks 18,/,
      );
      assert.match(norms.ariaLabel, /6 flagged: patch_embed1\.proj\.0\.bias \(vanishing\), /);
      assert.match(
        await page.locator('[data-chart-id="grad-norms"] .chart-note').innerText(),
        /^Flagged \(red bars, ▲ in the legend\): #7 patch_embed1\.proj\.0\.bias — vanishing: /,
      );

      const input = c['grad-input-channels']!;
      assert.deepEqual(input.labels, ['channel 0 (R)', 'channel 1 (G)', 'channel 2 (B)']);
      assert.deepEqual(input.datasets[0]!.data, r.inputGradient.channelNorms);
      const newton = c['grad-newton']!;
      assert.deepEqual(
        newton.datasets[0]!.data,
        r.newton.map((n) => n.relativeDifference),
      );
      assert.deepEqual(newton.guides?.horizontal, [{ value: 1e-2, label: '1 % — the rule' }]);
      assert.equal(await page.locator('#grad-newton-stages tbody tr').count(), 3);
      assert.match(await page.locator('#grad-newton-stages tbody tr >> nth=0').innerText(), /over 1 %: not converged/);
      assert.equal(await page.locator('#grad-newton-stages tbody tr.row--failed').count(), 1);
      assert.match(await page.locator('#grad-newton-stages tbody tr >> nth=1').innerText(), /converged/);

      // The loss and what it is, label and prediction, runtime and dtype, mode, Newton backward, the rule.
      const panel = await page.locator('#panel-grad').innerText();
      const it0 = r.items[0]!;
      assert.ok(panel.includes(`${r.loss.toPrecision(6)} — ${r.lossDefinition}`), 'the loss and its definition');
      assert.ok(
        panel.includes(
          `label 3 (class 3); predicted ${it0.predicted.index} (${it0.predicted.label}, ${formatProbability(it0.predicted.probability)})`,
        ),
      );
      assert.ok(panel.includes(`${r.runtime.runtime} on ${r.runtime.device}`));
      assert.match(panel, /Arithmetic\s+float64/);
      assert.match(panel, /train — BatchNorm with the batch’s statistics/);
      assert.match(panel, /Newton backward\s+analytic/);
      assert.ok(panel.includes(`Rule: ${r.rule}.`));
      assert.match(panel, /6 parameters, 1 stage flagged/);
      assert.equal(await page.locator('#panel-grad .grad-warnings li').count(), r.warnings.length);
      assert.ok(panel.includes(r.warnings.find((w) => w.kind === 'newton')!.message));
      for (const n of r.notes) assert.ok(panel.includes(n), n);

      // Every parameter in the table, the flagged ones tinted; sorting by ‖grad‖ puts the smallest first.
      assert.equal(await page.locator('#grad-parameters tbody tr').count(), 119);
      assert.equal(await page.locator('#grad-parameters tbody tr.row--failed').count(), 6);
      const cells = async (n: number) =>
        (await page.locator(`#grad-parameters tbody tr >> nth=${n}`).innerText()).split('\t').map((x) => x.trim());
      const head = r.parameters.find((x) => x.key === 'head.weight')!;
      const last = await cells(118);
      assert.deepEqual(last.slice(0, 6), [
        '119',
        'head.bias',
        'Head',
        '10',
        '10',
        formatSci(r.parameters[118]!.gradNorm, 3),
      ]);
      await page.click('#grad-parameters th button[data-column="grad"]');
      const smallest = [...r.parameters].sort((a, b) => a.gradNorm - b.gradNorm)[0]!;
      assert.equal((await cells(0))[1], smallest.key);
      assert.ok(FLAGGED.includes(smallest.key));
      await page.click('#grad-parameters th button[data-column="grad"]');
      const top = await cells(0);
      assert.deepEqual(top.slice(1, 3), ['head.weight', 'Head']);
      assert.equal(top[5], formatSci(head.gradNorm, 3));
      assert.equal(top[8], formatSci(head.ratio, 3));
      assert.equal(await page.locator('#grad-items tbody tr').count(), 1);
      await screenshot(page, 'webview-dark-grad.png');

      // ‖grad‖ / ‖param‖: the same bars at the ratio, no thresholds (the rule is on ‖grad‖).
      await page.selectOption('#panel-grad select', 'ratio');
      await page.waitForFunction(() =>
        /of ‖grad‖ \/ ‖param‖ for each/.test(
          document.querySelector('[data-chart-id="grad-norms"] canvas')?.getAttribute('aria-label') ?? '',
        ),
      );
      c = await charts(page);
      assert.deepEqual(
        bars(c['grad-norms']!).map((b) => b.value),
        r.parameters.map((x) => x.ratio),
        'every bar is the report’s ratio; none where θ = 0',
      );
      assert.deepEqual(c['grad-norms']!.guides?.horizontal, []);
      const zero = r.parameters.filter((x) => x.ratio == null);
      assert.ok(zero.length > 0 && zero.every((x) => x.paramNorm === 0), 'biases initialised to zero');
      assert.match(
        await page.locator('[data-chart-id="grad-norms"] .chart-note').innerText(),
        new RegExp(
          `Not plotted \\(no place on a log axis\\): #${keys.indexOf(zero[0]!.key) + 1} ${zero[0]!.key.replace(/\./g, '\\.')} \\(θ = 0\\)`,
        ),
      );
      const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__vitlens_state') ?? 'null'));
      assert.equal(state.selections.gradMetric, 'ratio', 'the choice persists');
      assert.deepEqual(state.selections.sorts['grad-parameters'], { column: 'grad', dir: 'descending' });
      await screenshot(page, 'webview-dark-grad-ratio.png');

      // Exports: the chart as PNG, every parameter as CSV (raw numbers).
      await page.click('section[data-chart-id="grad-norms"] button:has-text("PNG")');
      await page.click('#export-csv');
      const saves = (await posted(page)).filter((m) => m.type === 'save') as unknown as {
        filename: string;
        mime: string;
        content: string;
      }[];
      const png = saves.find((m) => m.mime === 'image/png')!;
      assert.equal(png.filename, 'custom-grad-norms.png');
      assert.deepEqual(
        [...Buffer.from(png.content, 'base64').subarray(0, 8)],
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      );
      const csv = saves.find((m) => m.mime === 'text/csv')!;
      assert.equal(csv.filename, 'custom-grad-parameters.csv');
      const lines = csv.content.trim().split(/\r\n/);
      assert.deepEqual(lines[0]!.split(','), [
        'position',
        'key',
        'group',
        'stage',
        'shape',
        'elements',
        'grad_norm',
        'grad_max_abs',
        'param_norm',
        'grad_to_param',
        'grad_to_median',
        'flag',
      ]);
      assert.equal(lines.length, 1 + 119);
      lines.slice(1).forEach((l, i) => {
        const f = l.split(',');
        const x = r.parameters[i]!;
        assert.deepEqual(
          [
            Number(f[0]),
            f[1],
            f[3],
            f[4],
            Number(f[5]),
            Number(f[6]),
            Number(f[8]),
            f[9] === '' ? null : Number(f[9]),
            f[11],
          ],
          [
            i + 1,
            x.key,
            x.stage == null ? '' : String(x.stage),
            x.shape.join('x'),
            x.elements,
            x.gradNorm,
            x.paramNorm,
            x.ratio,
            x.flag ?? '',
          ],
          x.key,
        );
      });
      assert.equal(lines[keys.indexOf('block3.1.att.ff1.weight') + 1]!.split(',')[2], 'Stage 3 blocks');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  // ── inference view ──────────────────────────────────────────────────────────────────────

  it('inference view (webview): a card per image with its top-5 and the overlay drawn on the picture; stage/head/opacity; click and Enter post attentionQuery; attentionMaps redraws', async () => {
    const r = inferFixture.infer!;
    const p = await openWebview(clone(inferFixture));
    const { page } = p;
    try {
      assert.equal(
        await page.evaluate(() => window.vitlensDashboard!.view()),
        'infer',
        'the data names the inference view',
      );
      await waitOverlays(page, r.items.length);
      assert.equal(await page.locator('#panel-infer .infer-item').count(), r.items.length, 'one card per item');
      const summary = await page.locator('#panel-infer .summary').innerText();
      assert.ok(summary.includes(r.weights), 'weights');
      assert.ok(summary.includes(r.input.transform), 'transform');
      assert.match(summary, /batch 2 · 64×64/);
      assert.match(summary, /onnxruntime-node 1\.30\.0, CPU EP · 2 threads on AMD EPYC/);
      assert.match(
        summary,
        /Timing \(one run\)\s+preprocess 104 ms · build 8\.56 ms · session 159 ms · forward 7\.29 ms/,
      );

      for (const [i, item] of r.items.entries()) {
        const card = page.locator(`#infer-item-${i}`);
        assert.equal(await card.locator('h3').innerText(), item.name);
        assert.ok(
          (await card.locator('.infer-sub').innerText()).includes(
            `${item.original!.width}×${item.original!.height} px`,
          ),
          'original size',
        );
        const rows = await page.$$eval(`#infer-top5-${i} tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())),
        );
        assert.deepEqual(
          rows.map((c) => c.slice(0, 4)),
          item.top5.map((t, k) => [String(k + 1), t.label, String(t.index), `${(t.probability * 100).toFixed(2)} %`]),
          `top-5 of ${item.name}`,
        );
        const widths = await page.$$eval(`#infer-top5-${i} .prob-fill`, (els) =>
          els.map((e) => (e as HTMLElement).style.width),
        );
        assert.deepEqual(
          widths,
          item.top5.map((t) => `${(t.probability * 100).toFixed(2)}%`),
          'probability bars sized through CSSOM',
        );
        assert.equal(await card.locator('.map-meaning').innerText(), item.maps[0]!.meaning, 'meaning shown verbatim');
        // The overlay is drawn: at the query's cell centre the canvas is not the raw picture.
        const m = item.maps[0]!;
        const q = m.query as { row: number; col: number };
        const px = await overlayVsRaw(page, i, (q.col + 0.5) / m.grid.w, (q.row + 0.5) / m.grid.h, item.inputImage!);
        assert.ok(rgbDiff(px.overlay, px.raw) > 30, `overlay differs from the raw pixel (${px.overlay} vs ${px.raw})`);
        assert.match(
          (await card.locator('canvas').getAttribute('aria-label'))!,
          /stage 1 \(SOFT, block 0\), mean over heads, query: row 8, col 8 of the 16×16 grid\. Strongest key: row \d+, col \d+ of the 16×16 key grid/,
        );
      }
      await screenshot(page, 'webview-dark-infer.png');

      const label = async (): Promise<string> => (await page.getAttribute('#infer-overlay-0', 'aria-label')) ?? '';
      // Stage select: re-labels the canvas; the stage-4 cls weight is printed beside the map.
      await page.selectOption('#infer-stage-0', '4');
      assert.match(
        await label(),
        /stage 4 \(softmax, block 0\), mean over heads, query: cls token\. .*cls key weight 0\.20/,
      );
      assert.match(
        await page.locator('#infer-item-0 .map-values').innerText(),
        /cls key weight \(stage 4, mean over heads\)\s+0\.20197/,
      );
      assert.equal(await page.locator('#infer-map-data-0 tbody tr').count(), 2, 'data table: the 2×2 key grid');
      await page.selectOption('#infer-head-0', '2');
      assert.match(await label(), /stage 4 .*, head 2, query: cls token/);
      await page.selectOption('#infer-stage-0', '1');
      assert.equal(await page.inputValue('#infer-head-0'), 'mean', 'stage 1 has one head: back to the mean');
      assert.equal(await page.locator('#infer-map-data-0 tbody tr').count(), 16);
      // Opacity 0: the picture alone, pixel for pixel.
      await page.locator('#infer-opacity-0').fill('0');
      const m0 = r.items[0]!.maps[0]!;
      const bare = await overlayVsRaw(page, 0, 8.5 / 16, 8.5 / 16, r.items[0]!.inputImage!);
      assert.ok(
        rgbDiff(bare.overlay, bare.raw) <= 3,
        `opacity 0 shows the raw picture (${bare.overlay} vs ${bare.raw})`,
      );
      await page.locator('#infer-opacity-0').fill('60');
      assert.equal(m0.stage, 1);

      // A click posts the point as fractions of the picture and shows "computing…".
      const box = (await page.locator('#infer-overlay-0').boundingBox())!;
      await page.click('#infer-overlay-0', { position: { x: box.width * 0.25, y: box.height * 0.78 } });
      const queries = async (): Promise<{ item: number; point: { x: number; y: number } }[]> =>
        (await posted(page)).filter((m) => m.type === 'attentionQuery') as unknown as {
          item: number;
          point: { x: number; y: number };
        }[];
      let q = (await queries()).at(-1)!;
      assert.equal(q.item, 0);
      assert.ok(
        Math.abs(q.point.x - 0.25) < 0.01 && Math.abs(q.point.y - 0.78) < 0.01,
        `click fractions ${JSON.stringify(q.point)}`,
      );
      assert.match(await page.locator('#infer-item-0 .query-status').innerText(), /computing…/);
      // Keyboard: the cursor sits on the clicked stage-1 token (row 12, col 4); → then Enter.
      await page.focus('#infer-overlay-0');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('Enter');
      q = (await queries()).at(-1)!;
      assert.deepEqual(q, { type: 'attentionQuery', item: 0, point: { x: 5.5 / 16, y: 12.5 / 16 } });

      // The host answers: that item's maps are replaced and redrawn. SOFT's map is not
      // normalised; make it cross zero to get the diverging scale.
      const maps = clone(r.items[0]!.maps).map((m) =>
        m.query === 'cls' ? m : { ...m, query: { row: Math.floor(0.78 * m.grid.h), col: Math.floor(0.25 * m.grid.w) } },
      );
      maps[0]!.mean = maps[0]!.mean.map((v) => v - 0.374);
      maps[0]!.heads = maps[0]!.heads.map((hd) => hd.map((v) => v - 0.374));
      await sendToPage(page, { type: 'attentionMaps', item: 0, maps });
      await page.waitForFunction(() =>
        /query: row 12, col 4 of the 16×16 grid/.test(
          document.getElementById('infer-overlay-0')!.getAttribute('aria-label') ?? '',
        ),
      );
      assert.doesNotMatch(await page.locator('#infer-item-0 .query-status').innerText(), /computing/);
      assert.equal(
        await page.locator('#infer-item-0 .legend-mid').innerText(),
        '0',
        'diverging scale: zero in the middle',
      );
      assert.match(await page.locator('#infer-item-0 .legend-note').innerText(), /^Diverging/);
      assert.match(await page.locator('#infer-item-0 .map-values').innerText(), /Min\s+−0\.000/);
      assert.match(
        (await page.getAttribute('#infer-overlay-1', 'aria-label'))!,
        /query: row 8, col 8/,
        'the other item is untouched',
      );
      // A query the host cannot answer: the reason is shown, the maps stay.
      await page.click('#infer-overlay-1', { position: { x: 10, y: 10 } });
      await sendToPage(page, { type: 'attentionMaps', item: 1, maps: [], error: 'the worker was killed by SIGKILL' });
      await page.waitForFunction(() =>
        /Could not compute the maps for this query: the worker was killed by SIGKILL/.test(
          document.querySelector('#infer-item-1 .query-status')?.textContent ?? '',
        ),
      );
      assert.match(
        (await page.getAttribute('#infer-overlay-1', 'aria-label'))!,
        /query: row 8, col 8/,
        'the previous maps stay',
      );
      await page.locator('#infer-item-0').screenshot({ path: path.join(OUT, 'webview-dark-infer-diverging.png') });

      // Exports: the composited overlay as PNG, the top-5 of every item as CSV (long format).
      await page.click('#infer-item-0 .card-tools button');
      await page.click('#export-csv');
      const saves = (await posted(page)).filter((m) => m.type === 'save') as unknown as {
        filename: string;
        mime: string;
        encoding: string;
        content: string;
      }[];
      const png = saves.find((m) => m.mime === 'image/png')!;
      assert.equal(png.filename, 'custom-infer-1-chelsea.png-stage1-mean.png');
      const pngBytes = Buffer.from(png.content, 'base64');
      fs.writeFileSync(path.join(OUT, 'webview-dark-infer-export.png'), pngBytes);
      assert.deepEqual([...pngBytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      assert.ok(pngBytes.readUInt32BE(16) >= 384 && pngBytes.readUInt32BE(20) > 384, 'overlay plus title and legend');
      const csv = saves.find((m) => m.mime === 'text/csv')!;
      assert.equal(csv.filename, 'custom-infer-top5.csv');
      const lines = csv.content.trim().split(/\r\n/);
      assert.equal(lines[0], 'item,name,kind,rank,class_index,label,probability,logit');
      assert.equal(lines.length, 1 + r.items.reduce((n, it) => n + it.top5.length, 0));
      const t0 = r.items[0]!.top5[0]!;
      assert.equal(lines[1], `0,${r.items[0]!.name},image,1,${t0.index},${t0.label},${t0.probability},${t0.logit}`);

      const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__vitlens_state') ?? 'null'));
      assert.deepEqual(
        state.selections.infer['0'],
        { stage: 1, head: null, opacity: 0.6 },
        'stage, head and opacity persisted',
      );
      assert.deepEqual(
        state.data.infer.items[0].maps[0].query,
        { row: 12, col: 4 },
        'the new maps are kept with the state',
      );
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('inference view (webview, light theme): selections survive a reload', async () => {
    const p = await openWebview(clone(inferFixture), { vars: VSCODE_LIGHT, bodyClass: 'vscode-light' });
    const { page } = p;
    try {
      await waitOverlays(page, 2);
      await screenshot(page, 'webview-light-infer.png');
      await page.selectOption('#infer-stage-1', '2');
      await page.selectOption('#infer-head-1', '1');
      await page.locator('#infer-opacity-1').fill('35');
      await page.reload();
      await page.waitForFunction(() => window.vitlensDashboard?.ready());
      await waitOverlays(page, 2);
      assert.equal(await page.inputValue('#infer-stage-1'), '2');
      assert.equal(await page.inputValue('#infer-head-1'), '1');
      assert.equal(await page.inputValue('#infer-opacity-1'), '35');
      assert.match(
        (await page.getAttribute('#infer-overlay-1', 'aria-label'))!,
        /stage 2 \(SOFT, block 0\), head 1, query: row 4, col 4 of the 8×8 grid/,
      );
      // Stage 4 (softmax, cls query) with its data table open; then a narrow panel.
      await page.selectOption('#infer-stage-0', '4');
      await page.click('#infer-item-0 details.data-table summary');
      await page.locator('#infer-item-0').screenshot({ path: path.join(OUT, 'webview-light-infer-stage4.png') });
      await page.setViewportSize({ width: 560, height: 900 });
      await screenshot(page, 'webview-light-infer-narrow.png');
      assertClean(p);
    } finally {
      await p.close();
    }
  });

  it('inference view (report): renders from inlined data; a click explains the report shows its own maps and posts nothing (light and dark)', async () => {
    const r = inferFixture.infer!;
    for (const scheme of ['light', 'dark'] as const) {
      const p = await openReport(`report-infer-${scheme}.html`, clone(inferFixture), scheme);
      const { page } = p;
      try {
        assert.equal(await page.evaluate(() => window.vitlensDashboard!.view()), 'infer');
        await waitOverlays(page, r.items.length);
        const rows = await page.$$eval('#infer-top5-1 tbody tr td:nth-child(2)', (tds) =>
          tds.map((td) => td.textContent),
        );
        assert.deepEqual(
          rows,
          r.items[1]!.top5.map((t) => t.label),
        );
        const px = await overlayVsRaw(page, 1, 8.5 / 16, 8.5 / 16, r.items[1]!.inputImage!);
        assert.ok(rgbDiff(px.overlay, px.raw) > 30, 'overlay drawn in the report too');
        await screenshot(page, `report-${scheme}-infer.png`);
        await page.click('#infer-overlay-0', { position: { x: 20, y: 20 } });
        await page.focus('#infer-overlay-1');
        await page.keyboard.press('Enter');
        for (const i of [0, 1])
          assert.equal(
            await page.locator(`#infer-item-${i} .query-status`).innerText(),
            'This report shows the maps it was written with; run it in VS Code to pick another query.',
          );
        assert.deepEqual(await page.evaluate(() => window.vitlensDashboard!.posted()), [], 'nothing posted');
        assert.match(
          (await page.getAttribute('#infer-overlay-0', 'aria-label'))!,
          /query: row 8, col 8/,
          'the maps are unchanged',
        );
        assertClean(p);
      } finally {
        await p.close();
      }
    }
  });
});
