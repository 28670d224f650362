/**
 * The benchmark and pinv custom requests over a real LSP connection to the bundled server:
 * results, progress notifications, cancellation, and errors that leave the server serving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import {
  ApproxRequest,
  BenchCaseNotification,
  BenchRequest,
  Commands,
  InferRequest,
  PinvRequest,
  ProfileRequest,
  TrustNotification,
  ProgressNotification,
  type BenchCaseParams,
  type ProgressParams,
} from '../protocol/lsp';
import { FIXTURES, readJson, SOFT_CONFIGS } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

let client: LspClient;
const progress: ProgressParams[] = [];
const uri = LspClient.uriOf(path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml'));
const text = fs.readFileSync(path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml'), 'utf8');

before(async () => {
  client = await LspClient.start();
  client.conn.onNotification(ProgressNotification.method, (p: ProgressParams) => {
    progress.push(p);
  });
  await client.open(uri, text);
});
after(async () => {
  await client.stop();
});

describe('vitlens/pinv and vitlens/bench', () => {
  test('vitlens/pinv answers per stage and head for an open config', async () => {
    const r = await client.conn.sendRequest(PinvRequest, { uri, resolution: 64 });
    assert.equal(r.model, 'soft_tiny');
    assert.deepEqual(
      r.stages.map((s) => [s.stage, s.landmarks, s.heads.length]),
      [
        [1, 4, 2],
        [2, 4, 4],
        [3, 4, 10],
      ],
    );
    assert.ok(progress.some((p) => p.job === 'pinv' && p.uri === uri));
  });

  test('vitlens/bench runs in the worker, streams progress and each case, and returns the report', async () => {
    const before = progress.length;
    const streamed: BenchCaseParams[] = [];
    const sub = client.conn.onNotification(BenchCaseNotification.method, (p: BenchCaseParams) => void streamed.push(p));
    const r = await client.conn.sendRequest(BenchRequest, {
      uri,
      runtimes: ['ort-cpu'],
      stages: [4],
      scaling: false,
      budgetMs: 20,
      levels: ['attention'],
      attentions: ['ufo', 'softmax'],
    });
    sub.dispose();
    assert.deepEqual(
      r.cases.map((c) => [c.attention, c.status, c.tokens]),
      [
        ['ufo', 'ok', 50],
        ['softmax', 'ok', 50],
      ],
    );
    assert.equal(r.runtimes[0]!.id, 'ort-cpu');
    assert.ok(progress.slice(before).some((p) => p.job === 'bench' && /stage 4/.test(p.message)));
    // The live dashboard sees the very cases of the final report, in order, before the response.
    assert.deepEqual(
      streamed.map((p) => p.uri),
      [uri, uri],
    );
    assert.deepEqual(
      streamed.map((p) => p.case),
      r.cases,
    );
  });

  test('vitlens/bench with train: every case a training step (the request’s AdamW and seed), streamed as it finishes', async () => {
    const streamed: BenchCaseParams[] = [];
    const sub = client.conn.onNotification(BenchCaseNotification.method, (p: BenchCaseParams) => void streamed.push(p));
    const r = await client.conn.sendRequest(BenchRequest, {
      uri,
      runtimes: ['ort-cpu'],
      stages: [4],
      scaling: false,
      budgetMs: 20,
      levels: ['attention'],
      attentions: ['ufo', 'softmax'],
      train: true,
      optimizer: 'adamw',
      seed: 7,
    });
    sub.dispose();
    assert.equal(r.mode, 'train');
    assert.equal(r.training?.cotangentSeed, 7);
    assert.equal(r.training?.optimizer, 'adamw');
    assert.match(r.training?.optimizerSettings ?? '', /^lr 0\.001, betas \(0\.9, 0\.999\)/);
    assert.ok(r.notes.some((n) => n.startsWith('Training steps: every case is one graph')));
    assert.deepEqual(
      r.cases.map((c) => [c.attention, c.status, c.tokens, c.mode]),
      [
        ['ufo', 'ok', 50, 'train'],
        ['softmax', 'ok', 50, 'train'],
      ],
    );
    for (const c of r.cases) {
      const t = c.training!;
      assert.match(c.id, /\/train$/);
      assert.equal(t.optimizer, 'adamw');
      // out, d/dx, then per parameter its gradient, the updated parameter and AdamW's two moments.
      assert.equal(t.outputs, 2 + 4 * t.parameters);
      assert.equal(t.outputErrors?.length, t.outputs);
      assert.equal(c.relErrorVsReference, Math.max(...t.outputErrors!.map((e) => e.relError)));
      assert.equal(t.forwardMacs + t.backwardMacs, c.macs);
      // Every matmul of these has both operands differentiated: exactly twice the forward.
      assert.equal(t.backwardOverForward, 2, c.attention);
      assert.ok(c.memory[0]!.bytes > t.forwardPeakBytes, 'the step holds more than its forward pass');
    }
    // The live dashboard sees the very training cases of the final report.
    assert.deepEqual(
      streamed.map((p) => p.case),
      r.cases,
    );
  });

  test('training options without train are refused before anything runs', async () => {
    for (const p of [{ optimizer: 'adamw' as const }, { newtonBackward: 'unrolled' as const }, { seed: 3 }])
      await assert.rejects(
        client.conn.sendRequest(BenchRequest, { uri, ...p }),
        (e: unknown) => e instanceof ResponseError && /options of train/.test(e.message),
      );
    await assert.rejects(
      client.conn.sendRequest(BenchRequest, { uri, train: true, optimizer: 'sgd' as never }),
      (e: unknown) => e instanceof ResponseError && /optimizer sgd: expected adamw/.test(e.message),
    );
  });

  test('cancelling a benchmark kills its worker; the server still answers', async () => {
    const cts = new CancellationTokenSource();
    const sub = client.conn.onNotification(ProgressNotification.method, (p: ProgressParams) => {
      if (p.job === 'bench') cts.cancel();
    });
    await assert.rejects(
      client.conn.sendRequest(
        BenchRequest,
        { uri, runtimes: ['ort-cpu'], stages: [1], scaling: false, budgetMs: 5000 },
        cts.token,
      ),
      (e: unknown) => e instanceof ResponseError && /cancel/i.test(e.message),
    );
    sub.dispose();
    const hover = await client.hover(uri, 0, 2);
    assert.ok(hover, 'hover still answered after the cancel');
  });

  test("vitlens/infer runs the config's checkpoint on its image in the worker: the official logits and a map per stage", async () => {
    const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
    const tinyUri = LspClient.uriOf(config);
    await client.open(tinyUri, fs.readFileSync(config, 'utf8'));
    const r = await client.conn.sendRequest(InferRequest, {
      uri: tinyUri,
      resize: 'none',
      maps: { point: { x: 0.9, y: 0.1 } },
    });
    const expected = readJson('ref/tiny_soft_logits.json').tiny_soft.png_64x64.logits_float32.flat() as number[];
    assert.ok(Math.max(...r.items[0]!.logits.map((v, i) => Math.abs(v - expected[i]!))) < 1e-5);
    assert.equal(path.basename(r.items[0]!.name), 'tiny_image_64x64.png');
    assert.match(r.items[0]!.inputImage!, /^data:image\/png;base64,/);
    // The point (0.9, 0.1) is the top-right: row 1, col 14 of stage 1's 16×16 grid; stage 4 uses the same point.
    assert.deepEqual(
      r.items[0]!.maps.map((m) => [m.stage, m.query]),
      [
        [1, { row: 1, col: 14 }],
        [2, { row: 0, col: 7 }],
        [3, { row: 0, col: 3 }],
        [4, { row: 0, col: 1 }],
      ],
    );
    // The hover on the config's image entry now shows that image with its overlay.
    const line = fs
      .readFileSync(config, 'utf8')
      .split('\n')
      .findIndex((l) => l.startsWith('images:'));
    const h = await client.hover(tinyUri, line, 14);
    const md = (h!.contents as { value: string }).value;
    assert.match(
      md,
      /!\[attention overlay on \.\.\/ref\/tiny_image_64x64\.png\]\(data:image\/png;base64,[A-Za-z0-9+/=]+\)/,
    );
    assert.match(md, new RegExp(`top-1 \\*\\*${r.items[0]!.top5[0]!.label}\\*\\*`));
    assert.match(md, /stage 1 soft attention from token \(1, 14\)/);
    // A checkpoint for another architecture: a ResponseError that names the file; the server stays up.
    await assert.rejects(
      client.conn.sendRequest(InferRequest, {
        uri,
        checkpoint: path.join(FIXTURES, 'ref', 'tiny_soft.pth'),
        images: [path.join(FIXTURES, 'images', 'chelsea.png')],
      }),
      (e: unknown) => e instanceof ResponseError && /tiny_soft\.pth does not fit the model/.test(e.message),
    );
    assert.ok(await client.hover(uri, 0, 2), 'the server still answers');
  });

  test('a config with errors gets a ResponseError naming the line; nothing runs', async () => {
    const bad = LspClient.uriOf(path.join(SOFT_CONFIGS, 'SOFT_Broken_for_test.yaml'));
    await client.open(bad, 'model: soft_tiny\nnewton_maxiter: -1\n');
    await assert.rejects(
      client.conn.sendRequest(PinvRequest, { uri: bad }),
      (e: unknown) => e instanceof ResponseError && /line 2/.test(e.message),
    );
    const r = await client.conn.sendRequest(PinvRequest, { uri, resolution: 32 });
    assert.equal(r.model, 'soft_tiny');
  });

  test('an untrusted workspace: profile and lenses to read, but no model runs and no run lenses', async () => {
    const untrusted = await LspClient.start({ initializationOptions: { trusted: false } });
    try {
      await untrusted.open(uri, text);
      assert.deepEqual(
        (await untrusted.codeLens(uri))!.map((l) => l.command!.command),
        [Commands.showProfile],
      );
      assert.ok(await untrusted.conn.sendRequest(ProfileRequest, { uri }), 'the profile is pure arithmetic: allowed');
      for (const run of [
        untrusted.conn.sendRequest(BenchRequest, { uri }),
        untrusted.conn.sendRequest(PinvRequest, { uri }),
        untrusted.conn.sendRequest(InferRequest, { uri, images: ['x.png'] }),
        untrusted.conn.sendRequest(ApproxRequest, { uri }),
      ]) {
        await assert.rejects(run, (e: unknown) => e instanceof ResponseError && /untrusted workspace/.test(e.message));
      }
      // Trust granted: the lenses come back and a run works.
      await untrusted.conn.sendNotification(TrustNotification.method, { trusted: true });
      assert.equal((await untrusted.codeLens(uri))!.length, 6);
      assert.equal((await untrusted.conn.sendRequest(PinvRequest, { uri, resolution: 64 })).model, 'soft_tiny');
    } finally {
      await untrusted.stop();
    }
  });

  test("the user's settings (workspace/configuration) choose the benchmark's runtimes, budget and training optimizer; the request's own choice wins", async () => {
    const configured = await LspClient.start({
      settings: { bench: { backends: ['reference'], budgetMs: 50, scaling: false, optimizer: 'adamw' } },
    });
    try {
      await configured.open(uri, text);
      const r = await configured.conn.sendRequest(BenchRequest, {
        uri,
        stages: [4],
        levels: ['attention'],
        attentions: ['ufo'],
      });
      assert.deepEqual(
        r.runtimes.map((x) => x.id),
        ['reference'],
      );
      assert.equal(r.scaling.length, 0, 'scaling off from the settings');
      const own = await configured.conn.sendRequest(BenchRequest, {
        uri,
        runtimes: ['ort-cpu'],
        stages: [4],
        levels: ['attention'],
        attentions: ['ufo'],
      });
      assert.deepEqual(
        own.runtimes.map((x) => x.id),
        ['ort-cpu'],
      );
      // A training step's optimizer comes from the setting unless the request names one (null: none).
      const train = {
        uri,
        runtimes: ['ort-cpu' as const],
        stages: [4],
        levels: ['attention' as const],
        attentions: ['ufo'],
        train: true,
      };
      const adamw = await configured.conn.sendRequest(BenchRequest, train);
      assert.equal(adamw.training?.optimizer, 'adamw');
      assert.equal(adamw.cases[0]!.training?.optimizer, 'adamw');
      const plain = await configured.conn.sendRequest(BenchRequest, { ...train, optimizer: null });
      assert.equal(plain.training?.optimizer, null);
      assert.equal(plain.cases[0]!.training?.outputs, 2 + plain.cases[0]!.training!.parameters);
    } finally {
      await configured.stop();
    }
  });
});
