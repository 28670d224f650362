/**
 * The CLI's self-contained HTML report (`--html` on bench, profile, pinv, approx and grad), produced by the
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
import type { ApproxReport } from '../protocol/approx';
import type { GradReport } from '../protocol/grad';
import { INLINE_DATA_ELEMENT_ID, type DashboardData } from '../protocol/dashboard';
import { formatBytes, formatInt, formatMacs, formatSci } from '../protocol/format';
import type { BenchReport } from '../protocol/results';
import { chromiumAvailable, launchBrowser, openProbedPage } from './helpers/browser';
import { FIXTURES, SOFT_CONFIGS } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'test-output');
const CONFIG = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');
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

type Snapshot = Record<
  string,
  { type: string; datasets: { label: string; data: unknown[] }[]; guides: { vertical?: { value: number }[] } | null }
>;
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
      // A rectangular token grid for the sweep: the table must say 8×16, not assume a square.
      '--grid',
      '8x16',
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
      const rect = data.bench!.cases.filter((c) => c.group === 'sweep');
      assert.ok(rect.length > 0 && rect.every((c) => c.grid === 8 && c.gridW === 16 && c.tokens === 128));
      const gridCells = await p.page.$$eval('#bench-cases tbody tr', (trs) =>
        trs.map((tr) => {
          const i = [...tr.closest('table')!.querySelectorAll('thead th')].findIndex((th) =>
            /^Grid/.test(th.textContent ?? ''),
          );
          return tr.querySelectorAll('td')[i]?.textContent ?? '';
        }),
      );
      assert.equal(gridCells.filter((g) => g === '8×16').length, rect.length, 'the sweep cases on their 8×16 grid');
      assert.ok(gridCells.includes('14×14'), "the config's stage-3 cases on their square grid");
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

  test('bench --train --html: the training view, with the very figures of its --out JSON', async () => {
    // A tiny config (test/bench-train.test.ts's): every step takes milliseconds.
    const config = path.join(OUT, 'SOFT_train_tiny_report.yaml');
    fs.writeFileSync(config, TRAIN_TINY);
    const file = path.join(OUT, 'cli-bench-train-report.html');
    const json = path.join(OUT, 'cli-bench-train-report.json');
    const r = vitlens([
      'bench',
      config,
      '--train',
      '--optimizer',
      'adamw',
      '--seed',
      '5',
      '--backend',
      'ort-cpu',
      '--stage',
      '1',
      '--resolution',
      '32',
      '--level',
      'attention',
      '--attention',
      'soft,ufo',
      '--scaling-tokens',
      '196,784',
      '--budget-ms',
      '10',
      '--no-limits',
      '--quiet',
      '--out',
      json,
      '--html',
      file,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as BenchReport;
    assert.equal(report.mode, 'train');
    assert.deepEqual(inlined(fs.readFileSync(file, 'utf8')).bench!.cases, report.cases, 'the report carries the run');
    const ok = report.cases.filter((c) => c.status === 'ok');
    assert.equal(ok.length, report.cases.length, JSON.stringify(report.cases.map((c) => c.message)));
    assert.equal(ok.length, 6, 'SOFT and UFO: the config case and two scaling points each');

    const p = await openProbedPage(browser!, { colorScheme: 'light', acceptDownloads: true });
    try {
      await p.page.goto(pathToFileURL(file).href);
      await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
      assert.equal(await p.page.evaluate(() => window.vitlensDashboard!.view()), 'bench');
      // One mode: a badge, no switch; the step's setup in words.
      assert.equal(await p.page.locator('#bench-mode').count(), 0, 'no mode switch for a training-only report');
      const setup = (await p.page.textContent('#bench-training')) ?? '';
      assert.match(setup, /Training step: forward \+ backward \+ AdamW/);
      assert.match(setup, /cotangent at the layer’s output, seed 5/);
      assert.match(setup, /analytic \(−Vᵀ·G·Vᵀ/);
      assert.ok(setup.includes(`AdamW (${report.training!.optimizerSettings})`), setup);
      assert.match((await p.page.textContent('#panel-bench .lead')) ?? '', /^Training-step benchmark of /);

      const c = await charts(p.page);
      const latency = c['bench-latency']!.datasets.map((d) => d.label);
      assert.deepEqual(
        latency.map((l) => l.replace(/: time ∝ .*/, '')),
        ['SOFT attention training step · ort-cpu', 'UFO-ViT attention training step · ort-cpu'],
      );
      // The forward pass's own peak beside the step's: one dotted series per attention, the report's bytes.
      for (const [a, name] of [
        ['soft', 'SOFT'],
        ['ufo', 'UFO-ViT'],
      ] as const) {
        const fwd = c['bench-memory']!.datasets.find(
          (d) => d.label === `${name} attention training step · ort-cpu — estimated, forward pass only`,
        );
        assert.ok(fwd, `${a}: forward-only memory series`);
        const scaling = report.cases.filter((x) => x.group === 'scaling' && x.attention === a);
        assert.deepEqual(
          fwd.data,
          scaling.map((x) => ({ x: x.tokens, y: x.training!.forwardPeakBytes })),
        );
      }

      // The table: every case's MACs apart, their ratio, both peaks and what was measured, as in the JSON.
      const rows = await p.page.$$eval('#bench-cases', ([table]) => {
        const keys = [...table!.querySelectorAll('thead th')].map(
          (th) => th.querySelector('button')?.getAttribute('data-column') ?? '',
        );
        return [...table!.querySelectorAll('tbody tr:not(.detail)')].map((tr) =>
          Object.fromEntries(
            [...tr.querySelectorAll('td')].map((td, i) => [
              keys[i]!,
              { text: td.textContent ?? '', title: td.querySelector('[title]')?.getAttribute('title') ?? null },
            ]),
          ),
        );
      });
      assert.equal(rows.length, report.cases.length);
      const memoryLabels = [...new Set(report.cases.flatMap((x) => x.memory.map((m) => m.label)))];
      assert.deepEqual(
        memoryLabels.map((l) => report.cases[0]!.memory.find((m) => m.label === l)!.kind),
        ['estimated', 'measured'],
      );
      report.cases.forEach((x, i) => {
        const t = x.training!;
        const row = rows[i]!;
        const what = `${x.attention} ${x.group} N=${x.tokens}`;
        assert.equal(row['macs']!.text, formatMacs(x.macs), what);
        assert.equal(row['fwdmacs']!.text, formatMacs(t.forwardMacs), what);
        assert.equal(row['fwdmacs']!.title, `${formatInt(t.forwardMacs)} MACs`, what);
        assert.equal(row['bwdmacs']!.text, formatMacs(t.backwardMacs), what);
        assert.equal(row['bwdmacs']!.title, `${formatInt(t.backwardMacs)} MACs`, what);
        assert.equal(row['bwdfwd']!.text, `${t.backwardOverForward.toFixed(2)}×`, what);
        assert.ok(row['bwdfwd']!.title!.startsWith(`${t.backwardOverForward} — `), what);
        assert.equal(row['mem0']!.text, formatBytes(x.memory[0]!.bytes), `${what}: the step's analytic peak`);
        assert.equal(row['fwdpeak']!.text, formatBytes(t.forwardPeakBytes), `${what}: the forward pass's peak`);
        assert.equal(row['fwdpeak']!.title, `${formatInt(t.forwardPeakBytes)} B`, what);
        assert.equal(row['mem1']!.text, formatBytes(x.memory[1]!.bytes), `${what}: measured`);
        assert.equal(row['relerr']!.text, formatSci(x.relErrorVsReference), what);
        assert.equal(row['worst']!.text, t.worstOutput, what);
        for (const e of t.outputErrors!) assert.ok(row['worst']!.title!.includes(`${e.name} ${formatSci(e.relError)}`));
      });
      // The forward-only peak sits between the step's estimate and the measured figure.
      assert.deepEqual(
        Object.keys(rows[0]!).filter((k) => /^(mem\d|fwdpeak)$/.test(k)),
        ['mem0', 'fwdpeak', 'mem1'],
      );
      await p.page.screenshot({ path: path.join(OUT, 'cli-bench-train-report.png'), fullPage: true });

      // CSV: the training columns, raw, one row per case.
      const [download] = await Promise.all([p.page.waitForEvent('download'), p.page.click('#export-csv')]);
      const lines = fs
        .readFileSync(await download.path(), 'utf8')
        .trim()
        .split(/\r\n/);
      const fields = (l: string) => [...l.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]!);
      const header = fields(lines[0]!).slice(0, -1);
      assert.deepEqual(header.slice(-12), [
        'mode',
        'forward_macs',
        'backward_macs',
        'backward_over_forward',
        'forward_peak_bytes',
        'parameters',
        'parameter_values',
        'newton_backward',
        'optimizer',
        'outputs',
        'worst_output',
        'output_errors',
      ]);
      assert.equal(lines.length, 1 + report.cases.length);
      const col = (name: string) => header.indexOf(name);
      report.cases.forEach((x, i) => {
        const f = fields(lines[i + 1]!);
        const t = x.training!;
        assert.equal(f[col('id')], x.id);
        assert.equal(f[col('mode')], 'train');
        assert.equal(Number(f[col('macs')]), x.macs);
        assert.equal(Number(f[col('forward_macs')]), t.forwardMacs);
        assert.equal(Number(f[col('backward_macs')]), t.backwardMacs);
        assert.equal(Number(f[col('backward_over_forward')]), t.backwardOverForward);
        assert.equal(Number(f[col('forward_peak_bytes')]), t.forwardPeakBytes);
        assert.equal(Number(f[col('parameters')]), t.parameters);
        assert.equal(Number(f[col('parameter_values')]), t.parameterValues);
        assert.equal(f[col('newton_backward')], t.newtonBackward ?? '');
        assert.equal(f[col('optimizer')], 'adamw');
        assert.equal(Number(f[col('outputs')]), t.outputs);
        assert.equal(f[col('worst_output')], t.worstOutput);
        assert.equal(f[col('output_errors')], t.outputErrors!.map((e) => `${e.name}=${e.relError}`).join('; '));
      });
      assert.deepEqual(p.problems(), [], 'console errors, CSP violations or remote requests');
    } finally {
      await p.close();
    }
  });

  test('approx --html: the approximation view of the run, with the very numbers of its --out JSON', async () => {
    const file = path.join(OUT, 'cli-approx-report.html');
    const json = path.join(OUT, 'cli-approx-report.json');
    const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const r = vitlens([
      'approx',
      config,
      '--stage',
      '2',
      '--stage',
      '3',
      '--iterations',
      '5,20',
      '--nystrom-iterations',
      '6',
      '--features',
      '16,64',
      '--linformer-k',
      '8',
      '--out',
      json,
      '--html',
      file,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const html = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/, 'no external script or stylesheet');
    const data = inlined(html);
    const report = JSON.parse(fs.readFileSync(json, 'utf8')) as ApproxReport;
    assert.deepEqual(data.approx, report, 'the report carries the run as --out wrote it');
    assert.equal(data.view, 'approx');
    assert.equal(data.bench, null);
    assert.match(report.input.checkpoint!, /tiny_soft\.pth$/);

    const p = await openProbedPage(browser!, { colorScheme: 'light' });
    try {
      await p.page.goto(pathToFileURL(file).href);
      await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
      assert.equal(await p.page.evaluate(() => window.vitlensDashboard!.view()), 'approx', 'opens on its view');
      const c = await charts(p.page);
      assert.deepEqual(Object.keys(c).sort(), ['approx-stage-2', 'approx-stage-3']);
      for (const s of report.stages) {
        const chart = c[`approx-stage-${s.stage}`]!;
        assert.deepEqual(
          chart.guides?.vertical?.map((g) => g.value),
          [s.exactMacsPerHead],
        );
        const performer = s.methods.find((m) => m.method === 'performer')!;
        assert.deepEqual(
          chart.datasets
            .find((d) => d.label === 'Performer')!
            .data.map((pt) => [(pt as { x: number }).x, (pt as { y: number }).y]),
          performer.points.map((pt) => [pt.macsPerHead, pt.mean.outRun]),
        );
      }
      const text = (await p.page.textContent('#panel-approx')) ?? '';
      assert.ok(text.includes(report.input.description), 'the inputs are named');
      assert.match(text, /relative Frobenius norms/);
      await p.page.screenshot({ path: path.join(OUT, 'cli-approx-report.png'), fullPage: true });
      assert.deepEqual(p.problems(), [], 'console errors, CSP violations or remote requests');
    } finally {
      await p.close();
    }
  });

  test('grad --html: the Gradients view of the run, with the numbers of its --json; nothing flagged; an unwritable file exits 2', async () => {
    const file = path.join(OUT, 'cli-grad-report.html');
    const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const r = vitlens(['grad', config, '--label', '3', '--json', '--html', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const report = JSON.parse(r.stdout) as GradReport;
    const html = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/, 'no external script or stylesheet');
    const data = inlined(html);
    assert.deepEqual(data.grad, report, 'the report carries the run as --json printed it');
    assert.equal(data.view, 'grad');
    assert.equal(data.approx, null);
    assert.equal(data.profile?.resolution, 64, 'the profile at the input size');
    // Eval mode, 20 Newton iterations: nothing flagged.
    assert.deepEqual(report.warnings, []);

    const p = await openProbedPage(browser!, { colorScheme: 'light' });
    try {
      await p.page.goto(pathToFileURL(file).href);
      await p.page.waitForFunction(() => window.vitlensDashboard?.ready());
      assert.equal(await p.page.evaluate(() => window.vitlensDashboard!.view()), 'grad', 'opens on its view');
      const c = await charts(p.page);
      assert.deepEqual(Object.keys(c).sort(), ['grad-input-channels', 'grad-newton', 'grad-norms']);
      const norms = c['grad-norms']!;
      // Every tensor's bar, in model order, at its gradient norm; no flagged series.
      const drawn = report.parameters.map((_, i) => norms.datasets.find((d) => d.data[i] != null)?.data[i]);
      assert.deepEqual(
        drawn,
        report.parameters.map((x) => x.gradNorm),
      );
      assert.ok(!norms.datasets.some((d) => d.label.startsWith('Flagged')));
      assert.deepEqual(
        c['grad-newton']!.datasets[0]!.data,
        report.newton.map((n) => n.relativeDifference),
      );
      const text = (await p.page.textContent('#panel-grad')) ?? '';
      assert.match(text, /none flagged/);
      assert.match(text, /None: no parameter and no stage is flagged under the rule\./);
      assert.match(text, /eval — BatchNorm with its running statistics/);
      assert.ok(text.includes(report.lossDefinition));
      assert.equal(await p.page.locator('#grad-parameters tbody tr').count(), report.parameters.length);
      assert.equal(await p.page.locator('#grad-parameters tbody tr.row--failed').count(), 0);
      assert.equal(await p.page.locator('#grad-newton-stages tbody tr.row--failed').count(), 0);
      await p.page.screenshot({ path: path.join(OUT, 'cli-grad-report.png'), fullPage: true });
      assert.deepEqual(p.problems(), [], 'console errors, CSP violations or remote requests');
    } finally {
      await p.close();
    }

    // A report under a regular file cannot be written: exit 2, naming the file.
    const blocked = path.join(OUT, 'cli-grad-report.html', 'report.html');
    const bad = vitlens(['grad', config, '--label', '3', '--html', blocked]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /vitlens grad: cannot write .*cli-grad-report\.html\/report\.html: (ENOTDIR|EEXIST)/);
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
