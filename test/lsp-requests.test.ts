/**
 * The requests the VS Code client asks instead of computing or parsing anything itself, over a
 * real LSP connection to the bundled server: `vitlens/dashboard` (the same DashboardData as the
 * CLI's report builder, report/data.ts) and `vitlens/configInputs` (the checkpoint and images a
 * config names, resolved as the CLI resolves them, search paths included).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DashboardData } from '../protocol/dashboard';
import { ConfigInputsRequest, DashboardRequest } from '../protocol/lsp';
import { analyseApprox } from '../server/jobs/approx/sweep';
import { dashboardData } from '../server/report/data';
import { FIXTURES, readJson, SOFT_CONFIGS, specOf } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

const softTinyFile = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');
const softTiny = { uri: LspClient.uriOf(softTinyFile), text: fs.readFileSync(softTinyFile, 'utf8') };
const tinyFile = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
const tiny = { uri: LspClient.uriOf(tinyFile), text: fs.readFileSync(tinyFile, 'utf8') };
const checkpoint = path.join(FIXTURES, 'ref', 'tiny_soft.pth');
const image = path.join(FIXTURES, 'ref', 'tiny_image_64x64.png');

/** The data without its production time (the only field two builds of it may differ in). */
const timeless = (d: DashboardData | null) => (d ? { ...d, generatedAt: '' } : d);

describe('vitlens/dashboard: the DashboardData of report/data.ts', () => {
  let lsp: LspClient;
  before(async () => {
    lsp = await LspClient.start();
    await lsp.open(softTiny.uri, softTiny.text);
  });
  after(async () => {
    await lsp.stop();
  });

  test('SOFT_Tiny.yaml, profile view: the same data as dashboardData() called directly', async () => {
    const producer = 'ViT Lens 0.1.0 VS Code extension';
    const got = await lsp.conn.sendRequest(DashboardRequest, { uri: softTiny.uri, view: 'profile', producer });
    const want = dashboardData({ spec: specOf(softTiny.text), source: softTiny.uri, producer, view: 'profile' });
    assert.ok(got);
    assert.ok(!Number.isNaN(Date.parse(got.generatedAt)), got.generatedAt);
    assert.deepEqual(timeless(got), timeless(want));
    assert.equal(got.title, `soft_tiny — ${softTiny.uri}`);
    assert.equal(got.source, softTiny.uri);
    assert.equal(got.live, null);
  });

  test('the results the client passes, its label, resolution and sweep: as dashboardData() with the same inputs', async () => {
    const shown = readJson<DashboardData>('results/soft_tiny-dashboard.json');
    const inputs = {
      producer: 'test',
      view: 'bench' as const,
      label: 'configs/soft/SOFT_Tiny.yaml',
      resolution: 256,
      sweepResolutions: [224, 384],
      bench: shown.bench,
      pinv: shown.pinv,
      infer: readJson<DashboardData>('results/tiny-infer-dashboard.json').infer ?? null,
      // A real approximation run (the tiny model, random weights, one stage, short sweeps).
      approx: await analyseApprox(specOf(tiny.text), { stages: [3], performerFeatures: [16], linformerK: [8] }),
    };
    const got = await lsp.conn.sendRequest(DashboardRequest, { uri: softTiny.uri, ...inputs });
    const want = dashboardData({ spec: specOf(softTiny.text), source: softTiny.uri, ...inputs });
    assert.deepEqual(timeless(got), timeless(want));
    assert.equal(got!.title, 'soft_tiny — configs/soft/SOFT_Tiny.yaml');
    assert.equal(got!.source, softTiny.uri, "the source stays the URI (the page's Run again button sends it back)");
    assert.deepEqual(got!.profileSweep!.resolutions, [224, 384]);
    assert.equal(got!.profile!.resolution, 256);
    assert.deepEqual(got!.bench, shown.bench);
    assert.deepEqual(got!.approx, inputs.approx, 'the approximation report the panel shows is passed through');
  });

  test('a config with errors: null; a document that is not open: null', async () => {
    const bad = 'file:///tmp/vitlens-test/dashboard-broken.vitlens.yaml';
    await lsp.open(bad, 'model: soft_tiny\nembed_dims: [64, 128, 325, 512]\n');
    assert.equal(await lsp.conn.sendRequest(DashboardRequest, { uri: bad, view: 'profile', producer: 'test' }), null);
    assert.equal(
      await lsp.conn.sendRequest(DashboardRequest, {
        uri: 'file:///tmp/vitlens-test/never-opened.vitlens.yaml',
        view: 'profile',
        producer: 'test',
      }),
      null,
    );
  });

  test('sweep resolutions out of range: InvalidParams, as vitlens/profileSweep', async () => {
    await assert.rejects(
      lsp.conn.sendRequest(DashboardRequest, {
        uri: softTiny.uri,
        view: 'profile',
        producer: 'test',
        sweepResolutions: [224, 10],
      }),
      /resolutions must be/,
    );
  });
});

describe('vitlens/configInputs: the checkpoint and images a config names, resolved', () => {
  let tmp: string;
  let copied: { uri: string; folder: string };
  before(() => {
    // The config alone in another folder: its checkpoint is not next to it.
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-config-inputs-'));
    const folder = path.join(tmp, 'configs');
    fs.mkdirSync(folder);
    fs.copyFileSync(tinyFile, path.join(folder, 'tiny_soft.vitlens.yaml'));
    copied = { uri: LspClient.uriOf(path.join(folder, 'tiny_soft.vitlens.yaml')), folder };
  });
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('tiny_soft.vitlens.yaml: ../ref/tiny_soft.pth and [../ref/tiny_image_64x64.png], relative to the config', async () => {
    const lsp = await LspClient.start();
    try {
      await lsp.open(tiny.uri, tiny.text);
      assert.deepEqual(await lsp.conn.sendRequest(ConfigInputsRequest, { uri: tiny.uri }), {
        checkpoint,
        images: [image],
      });
    } finally {
      await lsp.stop();
    }
  });

  test('a checkpoint not next to the config is found under vitlens.infer.checkpointSearchPaths', async () => {
    const lsp = await LspClient.start({ settings: { infer: { checkpointSearchPaths: [path.join(FIXTURES, 'ref')] } } });
    try {
      await lsp.open(copied.uri, tiny.text);
      assert.deepEqual(await lsp.conn.sendRequest(ConfigInputsRequest, { uri: copied.uri }), {
        checkpoint,
        images: [path.resolve(copied.folder, '../ref/tiny_image_64x64.png')],
      });
    } finally {
      await lsp.stop();
    }
  });

  test('without a search path: the path next to the config (where the error will say it was expected)', async () => {
    const lsp = await LspClient.start({ settings: {} });
    try {
      await lsp.open(copied.uri, tiny.text);
      const got = await lsp.conn.sendRequest(ConfigInputsRequest, { uri: copied.uri });
      assert.equal(got?.checkpoint, path.resolve(copied.folder, '../ref/tiny_soft.pth'));
    } finally {
      await lsp.stop();
    }
  });

  test('a config that names neither: null checkpoint, no images; a document that is not a config: null', async () => {
    const lsp = await LspClient.start();
    try {
      await lsp.open(softTiny.uri, softTiny.text);
      assert.deepEqual(await lsp.conn.sendRequest(ConfigInputsRequest, { uri: softTiny.uri }), {
        checkpoint: null,
        images: [],
      });
      const other = 'file:///tmp/vitlens-test/docker-compose.yaml';
      await lsp.open(other, 'services:\n  web:\n    image: nginx\n');
      assert.equal(await lsp.conn.sendRequest(ConfigInputsRequest, { uri: other }), null);
    } finally {
      await lsp.stop();
    }
  });
});
