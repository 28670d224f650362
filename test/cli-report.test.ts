/**
 * The CLI's self-contained HTML report (`--html` on bench, profile and pinv), produced by the
 * bundled CLI as a user runs it and opened offline in real Chromium: every view draws its
 * charts from the inlined data, under the page's CSP, with nothing fetched.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { INLINE_DATA_ELEMENT_ID, type DashboardData } from '../protocol/dashboard';
import { chromiumAvailable, launchBrowser, openProbedPage } from './helpers/browser';
import { SOFT_CONFIGS } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'test-output');
const CONFIG = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');

function vitlens(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The data a report carries, read back out of the HTML as the page itself reads it. */
function inlined(html: string): DashboardData {
  const m = new RegExp(`<script type="application/json" id="${INLINE_DATA_ELEMENT_ID}">(.*?)</script>`, 's').exec(html);
  assert.ok(m, 'the report inlines its data');
  return JSON.parse(m[1]!) as DashboardData;
}

type Snapshot = Record<string, { type: string; datasets: { label: string; data: unknown[] }[] }>;
const charts = (page: Page): Promise<Snapshot> =>
  page.evaluate(() => window.vitlensDashboard!.charts() as unknown as Snapshot);

async function show(page: Page, view: string): Promise<Snapshot> {
  await page.click(`#tab-${view}`);
  await page.waitForFunction((v) => window.vitlensDashboard?.view() === v, view);
  return charts(page);
}

let browser: Browser | undefined;
const skip = !chromiumAvailable() && 'no Chromium at /usr/bin/chromium';

before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  if (!skip) browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

describe('vitlens … --html', { skip }, () => {
  test('bench --html: one offline file with the profile, benchmark and pseudo-inverse views', async () => {
    const file = path.join(OUT, 'cli-bench-report.html');
    const json = path.join(OUT, 'cli-bench-report.json');
    const r = vitlens([
      'bench',
      CONFIG,
      '--backend',
      'ort-cpu',
      '--stage',
      '3',
      '--level',
      'attention',
      '--no-scaling',
      '--budget-ms',
      '30',
      '--quiet',
      '--out',
      json,
      '--html',
      file,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const html = fs.readFileSync(file, 'utf8');
    // Script and style are inlined; the browser probe below also fails on any remote request.
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/, 'no external script or stylesheet');
    const data = inlined(html);
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    // The report shows the very cases the JSON has.
    assert.deepEqual(
      data.bench!.cases.map((c) => [c.attention, c.status, c.timingMs?.median]),
      report.cases.map((c: { attention: string; status: string; timingMs: { median: number } | null }) => [
        c.attention,
        c.status,
        c.timingMs?.median,
      ]),
    );
    assert.equal(data.view, 'bench');
    assert.ok(data.pinv && data.profile && data.profileSweep, 'all three views have data');

    const p = await openProbedPage(browser!, { colorScheme: 'light' });
    try {
      await p.page.goto(pathToFileURL(file).href);
      await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
      assert.equal(await p.page.evaluate(() => window.vitlensDashboard!.view()), 'bench', 'opens on the benchmark');
      const bench = await charts(p.page);
      const gflops = bench['bench-gflops'];
      assert.ok(gflops, 'GFLOP/s chart');
      // One ort-cpu attention series with a bar per stage-3 attention (SOFT, UFO, softmax).
      const bars = gflops.datasets.flatMap((d) => d.data).filter((v) => typeof v === 'number' && v > 0);
      assert.equal(bars.length, 3);
      const rows = await p.page.locator('#bench-cases tbody tr:not(.message-row)').count();
      assert.equal(rows, data.bench!.cases.length, 'a table row per case');
      assert.match((await p.page.textContent('body')) ?? '', /onnxruntime-node [\d.]+, CPU EP/, 'the runtime is named');
      await p.page.screenshot({ path: path.join(OUT, 'cli-bench-report-bench.png'), fullPage: true });

      const profile = await show(p.page, 'profile');
      assert.deepEqual(
        profile['profile-params']!.datasets[0]!.data,
        data.profile!.stages.map((s) => s.params),
      );
      assert.deepEqual(
        profile['profile-sweep-macs']!.datasets.map((d) => d.label).length,
        data.profileSweep!.attentions.length,
      );

      const pinv = await show(p.page, 'pinv');
      const conv = pinv['pinv-convergence'];
      assert.ok(conv, 'convergence chart');
      const labels = conv.datasets.map((d) => d.label).join(' | ');
      assert.match(labels, /I − P·V/);
      assert.match(labels, /predicted/i);
      await p.page.screenshot({ path: path.join(OUT, 'cli-bench-report-pinv.png'), fullPage: true });
      assert.deepEqual(p.problems(), [], 'console errors, CSP violations or remote requests');
    } finally {
      await p.close();
    }
  });

  test('profile --html and pinv --html open on their own view', async () => {
    for (const [command, view, chart] of [
      ['profile', 'profile', 'profile-macs-by-kind'],
      ['pinv', 'pinv', 'pinv-convergence'],
    ] as const) {
      const file = path.join(OUT, `cli-${command}-report.html`);
      const r = vitlens([command, CONFIG, '--html', file]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      const data = inlined(fs.readFileSync(file, 'utf8'));
      assert.equal(data.view, view);
      assert.equal(data.bench, null, 'no benchmark was run');
      const p = await openProbedPage(browser!, { colorScheme: 'dark' });
      try {
        await p.page.goto(pathToFileURL(file).href);
        await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
        assert.equal(await p.page.evaluate(() => window.vitlensDashboard!.view()), view);
        assert.ok((await charts(p.page))[chart], `${chart} drawn`);
        await show(p.page, 'bench');
        assert.match((await p.page.textContent('#panel-bench')) ?? '', /No benchmark/i, 'the empty view says so');
        assert.deepEqual(p.problems(), []);
      } finally {
        await p.close();
      }
    }
  });
});
