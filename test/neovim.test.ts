/**
 * A second, independent editor: Debian's Neovim (0.7+, headless, built-in `vim.lsp`)
 * runs the bundled server over stdio, opens configs and receives diagnostics, hover
 * and CodeLens. test/neovim/lsp-check.lua drives Neovim and writes what it received
 * as JSON; this file runs it and checks that JSON exactly.
 *
 * Needs `nvim` on PATH (CI: `apt-get install -y -qq neovim`); skipped only when it is missing.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Commands } from '../protocol/lsp';
import { FIXTURES, ROOT, SOFT_CONFIGS } from './helpers/fixtures';

const SCRIPT = path.join(ROOT, 'test', 'neovim', 'lsp-check.lua');
const SERVER = path.join(ROOT, 'dist', 'server.js');
const TINY = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');
/** Names its checkpoint and an image: the Gradients lens as well. */
const RUNNABLE = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
const BROKEN_TEXT = 'model: soft_tiny\nnewton_maxiter: -1\n';
/** Neovim is killed (with the server it started) if it runs longer than this. */
const NVIM_TIMEOUT_MS = 15_000;

const nvimVersion = spawnSync('nvim', ['--version'], { encoding: 'utf8', timeout: 5000 });
const missing = (nvimVersion.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
const skip = missing ? 'nvim is not installed (Debian: apt-get install -y neovim)' : false;

interface Position {
  line: number;
  character: number;
}
interface Range {
  start: Position;
  end: Position;
}
interface VimDiagnostic {
  lnum: number;
  col: number;
  end_lnum: number;
  end_col: number;
  severity: number;
  message: string;
  source: string;
  code: string;
}
interface Lens {
  range: Range;
  command: { title: string; command: string; arguments: string[] };
}
/** What lsp-check.lua writes. Lua encodes an empty list as `{}`: read lists through `list()`. */
interface NeovimReport {
  ok: boolean;
  error?: string;
  last_step?: string;
  steps: string[];
  seconds: number;
  nvim: { major: number; minor: number; patch: number };
  server_info?: { name: string; version: string };
  server_capabilities?: Record<string, unknown>;
  offset_encoding?: string;
  published: {
    uri: string;
    count: number;
    diagnostics:
      { range: Range; severity: number; code: string; source: string; message: string }[] | Record<string, never>;
  }[];
  log_messages: unknown[] | Record<string, never>;
  show_messages: unknown[] | Record<string, never>;
  tiny: { uri: string; filetype: string; diagnostics: VimDiagnostic[] | Record<string, never> };
  broken: {
    uri: string;
    filetype: string;
    diagnostics: VimDiagnostic[] | Record<string, never>;
    codelens_commands: string[];
  };
  hover: {
    params: { textDocument: { uri: string }; position: Position };
    error?: unknown;
    result: { contents: { kind: string; value: string }; range: Range } | null;
    float_lines?: string[];
  };
  codelens: {
    error?: unknown;
    result: Lens[];
    stored: { line: number; title: string; command: string }[];
    virtual_text?: { row: number; text: string }[];
  };
  runnable: { uri: string; codelens: { title: string; command: string }[] };
  server_exit?: { code: number; signal: number };
}

/** A JSON list written by Lua: `{}` stands for an empty one. */
function list<T>(x: T[] | Record<string, never> | undefined): T[] {
  if (Array.isArray(x)) return x;
  assert.ok(x && typeof x === 'object' && Object.keys(x).length === 0, `expected a list, got ${JSON.stringify(x)}`);
  return [];
}

describe('Neovim (headless, built-in LSP client) over stdio', { timeout: 20_000 }, () => {
  let tmp = '';
  let report: NeovimReport;
  let exit: { code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string; killed: boolean };
  let brokenUri = '';
  const tinyUri = pathToFileURL(TINY).href;

  /** What to show when something is off: Neovim's stderr, its steps and its LSP log. */
  const context = () => {
    let lspLog = '';
    try {
      lspLog = fs.readFileSync(path.join(tmp, 'cache', 'nvim', 'lsp.log'), 'utf8').slice(-4000);
    } catch {
      // No log written: nothing to add.
    }
    return `\nnvim exit ${exit?.code} ${exit?.signal ?? ''}${exit?.killed ? ' (killed after timeout)' : ''} in ${exit?.ms} ms\nstderr: ${exit?.stderr}\nsteps:\n${report?.steps?.join('\n') ?? '(none)'}\nerror: ${report?.error ?? ''}\nlsp.log:\n${lspLog}`;
  };

  before(async () => {
    if (skip) return;
    assert.ok(fs.existsSync(SERVER), `${SERVER} is missing: run \`npm run build\` first`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-nvim-'));
    const broken = path.join(tmp, 'broken.vitlens.yaml');
    fs.writeFileSync(broken, BROKEN_TEXT);
    brokenUri = pathToFileURL(broken).href;
    const out = path.join(tmp, 'report.json');

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Nothing from the user's Neovim: config, data, state and the LSP log stay in tmp.
      XDG_CONFIG_HOME: path.join(tmp, 'config'),
      XDG_DATA_HOME: path.join(tmp, 'data'),
      XDG_STATE_HOME: path.join(tmp, 'state'),
      XDG_CACHE_HOME: path.join(tmp, 'cache'),
      VITLENS_NVIM_SCRIPT: SCRIPT,
      VITLENS_NODE: process.execPath,
      VITLENS_SERVER: SERVER,
      VITLENS_TINY: TINY,
      VITLENS_BROKEN: broken,
      VITLENS_RUNNABLE: RUNNABLE,
      VITLENS_OUT: out,
      VITLENS_WAIT_MS: '5000',
    };
    for (const k of ['NVIM', 'NVIM_LISTEN_ADDRESS', 'VIMINIT', 'MYVIMRC', 'VIMRUNTIME', 'VIM']) delete env[k];

    // 0.7 has no `-l`: run the script with `-c`; a load error still ends Neovim (cquit 2).
    const boot =
      'lua local ok, e = pcall(dofile, os.getenv("VITLENS_NVIM_SCRIPT")); if not ok then io.stderr:write(tostring(e), "\\n"); vim.cmd("cquit 2") end';
    const t0 = Date.now();
    const proc = spawn('nvim', ['--headless', '--clean', '-n', '-i', 'NONE', '-u', 'NONE', '-c', boot], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a hung Neovim is killed together with the server it started.
      detached: true,
    });
    let stderr = '';
    proc.stdout.on('data', (d) => (stderr += String(d)));
    proc.stderr.on('data', (d) => (stderr += String(d)));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        proc.kill('SIGKILL');
      }
    }, NVIM_TIMEOUT_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      proc.on('error', reject);
      proc.on('close', (c, s) => resolve([c, s]));
    }).finally(() => clearTimeout(timer));
    exit = { code, signal, ms: Date.now() - t0, stderr: stderr.trim(), killed };

    assert.ok(fs.existsSync(out), `Neovim wrote no report${context()}`);
    report = JSON.parse(fs.readFileSync(out, 'utf8')) as NeovimReport;
    assert.equal(report.ok, true, `the Lua script failed at "${report.last_step}"${context()}`);
    assert.equal(exit.code, 0, `nvim did not exit cleanly${context()}`);
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('Neovim ≥ 0.7 starts the server with the test’s node and completes the handshake', { skip }, () => {
    assert.ok(
      report.nvim.major > 0 || report.nvim.minor >= 7,
      `Neovim ${report.nvim.major}.${report.nvim.minor} is older than 0.7`,
    );
    assert.deepEqual(report.server_info, { name: 'vitlens', version: report.server_info?.version });
    assert.equal(report.offset_encoding, 'utf-16');
    assert.equal(report.server_capabilities?.hoverProvider, true);
    assert.deepEqual(report.server_capabilities?.codeLensProvider, { resolveProvider: false });
    assert.deepEqual(list(report.show_messages), [], 'the server showed no message to the user');
    assert.ok(exit.ms < NVIM_TIMEOUT_MS, `took ${exit.ms} ms`);
  });

  test('SOFT_Tiny.yaml: filetype yaml, diagnostics published, none of them', { skip }, () => {
    assert.equal(report.tiny.uri, tinyUri);
    assert.equal(report.tiny.filetype, 'yaml');
    const published = report.published.filter((p) => p.uri === tinyUri);
    assert.ok(published.length >= 1, 'publishDiagnostics reached Neovim');
    assert.deepEqual(
      published.map((p) => p.count),
      published.map(() => 0),
    );
    assert.deepEqual(list(report.tiny.diagnostics), []);
  });

  test('a broken config: the out-of-range error on line 2, in vim.diagnostic and as published', { skip }, () => {
    assert.equal(report.broken.uri, brokenUri);
    assert.equal(report.broken.filetype, 'yaml');
    const message = '`newton_maxiter` must be at least 1 and at most 100, got -1.';
    // vim.diagnostic: 0-based line and byte columns of `-1` in `newton_maxiter: -1`.
    assert.deepEqual(list(report.broken.diagnostics), [
      { lnum: 1, col: 16, end_lnum: 1, end_col: 18, severity: 1, message, source: 'vitlens', code: 'out-of-range' },
    ]);
    const last = report.published.filter((p) => p.uri === brokenUri).at(-1);
    assert.ok(last, 'publishDiagnostics for the broken config reached Neovim');
    assert.deepEqual(list(last.diagnostics), [
      {
        range: { start: { line: 1, character: 16 }, end: { line: 1, character: 18 } },
        severity: 1,
        code: 'out-of-range',
        source: 'vitlens',
        message,
      },
    ]);
  });

  test('hover on `model:` (cursor at 1,2): exact parameters in markdown, rendered by Neovim’s float', { skip }, () => {
    assert.deepEqual(report.hover.params, { textDocument: { uri: tinyUri }, position: { line: 0, character: 2 } });
    assert.equal(report.hover.error, undefined);
    const h = report.hover.result;
    assert.ok(h, 'hover returned a result');
    assert.equal(h.contents.kind, 'markdown');
    assert.match(h.contents.value, /^\*\*soft_tiny\*\* — SOFT-Tiny/);
    assert.match(h.contents.value, /\*\*13,069,056 parameters\*\* \(13\.07M\) · \*\*1\.94 GMACs\*\* \(convention B\)/);
    assert.match(h.contents.value, /\| 1 \| soft \| 56×56 \| 3136 \| 49 \| 64 \| 2 \| 1 \|/);
    assert.deepEqual(h.range, { start: { line: 0, character: 0 }, end: { line: 0, character: 18 } });
    const float = report.hover.float_lines ?? [];
    assert.ok(
      float.includes(
        '**13,069,056 parameters** (13.07M) · **1.94 GMACs** (convention B) = 3.87 GFLOPs · input 224×224, batch 1',
      ),
      `float:\n${float.join('\n')}`,
    );
    assert.ok(float.some((l) => l.startsWith('| B ← README |') && l.endsWith('| 1.937 | 3.874 |')));
  });

  test('CodeLens: the summary and five actions, stored and shown as virtual text by vim.lsp.codelens', { skip }, () => {
    assert.equal(report.codelens.error, undefined);
    const expected: [string, string][] = [
      ['ViT Lens: 13.07M params · 1.94 GMACs (B) @224', Commands.showProfile],
      ['Benchmark attention', Commands.benchmark],
      ['Benchmark training step', Commands.benchmarkTraining],
      ['Pseudo-inverse convergence', Commands.pinv],
      ['Approximation quality', Commands.approx],
      ['Run SOFT inference on image…', Commands.infer],
    ];
    const zero = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    assert.deepEqual(
      report.codelens.result,
      expected.map(([title, command]) => ({ range: zero, command: { title, command, arguments: [tinyUri] } })),
    );
    assert.deepEqual(
      report.codelens.stored,
      expected.map(([title, command]) => ({ line: 0, title, command })),
    );
    assert.deepEqual(report.codelens.virtual_text, [{ row: 0, text: expected.map(([t]) => t).join(' | ') }]);
    assert.deepEqual(report.broken.codelens_commands, [Commands.showProfile], 'no run lenses on a config with errors');
  });

  test('CodeLens on a config naming its checkpoint and an image: the run lenses and Gradients', { skip }, () => {
    assert.equal(report.runnable.uri, pathToFileURL(RUNNABLE).href);
    assert.deepEqual(report.runnable.codelens, [
      { title: 'ViT Lens: 0.27M params · 0.01 GMACs (B) @64', command: Commands.showProfile },
      { title: 'Benchmark attention', command: Commands.benchmark },
      { title: 'Benchmark training step', command: Commands.benchmarkTraining },
      { title: 'Pseudo-inverse convergence', command: Commands.pinv },
      { title: 'Approximation quality', command: Commands.approx },
      { title: 'Run SOFT inference on image…', command: Commands.infer },
      { title: 'Gradients', command: Commands.grad },
    ]);
  });

  test('shutdown: the server exits with code 0 and Neovim with 0', { skip }, () => {
    assert.deepEqual(report.server_exit, { code: 0, signal: 0 });
    assert.equal(exit.code, 0);
    assert.equal(exit.killed, false);
  });
});
