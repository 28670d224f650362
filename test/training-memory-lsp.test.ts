/**
 * Training memory in the editor and the CLI: `vitlens.gpuMemory` puts "trains at batch ≤ B on
 * 80 GiB at 224 (est., fp32 + AdamW)" in the `model` hover and the summary CodeLens once the fit,
 * computed off the request path, is ready; `vitlens profile --train` prints and --json carries the
 * breakdown. The editor and CLI run the bundles (`npm run build`), as a user's do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { computeFit, TrainingFits, type FitRequest, type FitResult } from '../server/lsp/training-fits';
import { largestBatch, parseMemorySize, trainingFit } from '../server/core/profile/training-memory';
import { ROOT, SOFT_CONFIGS, specOf } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

const tinyFile = path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml');
const tinyText = fs.readFileSync(tinyFile, 'utf8');
const tiny = specOf(tinyText);
const expected = largestBatch(trainingFit(tiny, { resolution: 224 }), parseMemorySize('80GiB')).batch;
const line = `trains at batch ≤ ${expected.toLocaleString('en')} on 80 GiB at 224 (est., fp32 + AdamW)`;

const hoverText = (h: Awaited<ReturnType<LspClient['hover']>>) =>
  (h?.contents as { value: string } | undefined)?.value ?? '';

describe('TrainingFits: off the request path, newest first, cached', () => {
  const req = (memoryBytes: number): FitRequest => ({ spec: tiny, resolution: 224, memoryBytes, precision: 'fp32' });

  test('pending until computed, then ready from the cache; onReady after each', async () => {
    let calls = 0;
    let ready = 0;
    const fits = new TrainingFits(
      async (r) => {
        calls++;
        return computeFit(r);
      },
      () => ready++,
    );
    assert.deepEqual(fits.get(req(80 * 2 ** 30)), { state: 'pending' });
    await fits.idle();
    const got = fits.get(req(80 * 2 ** 30));
    assert.equal(got.state, 'ready');
    assert.equal((got as { result: FitResult }).result.largest.batch, expected);
    assert.equal(calls, 1);
    assert.equal(ready, 1);
  });

  test('a failing fit is reported, not retried; superseded requests beyond four are dropped', async () => {
    const order: number[] = [];
    const fits = new TrainingFits(async (r) => {
      order.push(r.memoryBytes);
      if (r.memoryBytes === 1) throw new Error('no graph');
      return {
        largest: {
          kind: 'estimate',
          batch: 1,
          memoryBytes: r.memoryBytes,
          resolution: 224,
          precision: 'fp32',
          totalBytes: 1,
        },
        total: { fixedBytes: 0, perSampleBytes: 1, fromBatch: 2 },
      };
    });
    for (const m of [1, 2, 3, 4, 5, 6]) fits.get(req(m));
    await fits.idle();
    // 1 started at once; of 2…6 the newest four ran, newest first.
    assert.deepEqual(order, [1, 6, 5, 4, 3]);
    assert.deepEqual(fits.get(req(1)), { state: 'failed', message: 'no graph' });
  });
});

describe('vitlens.gpuMemory in the editor', () => {
  let lsp: LspClient;
  const uri = LspClient.uriOf(tinyFile);

  before(async () => {
    lsp = await LspClient.start({ settings: { gpuMemory: '80GiB' } });
    await lsp.open(uri, tinyText);
  });
  after(() => lsp.stop());

  test('the model hover says it is estimating, then the largest batch; the lens carries it', async () => {
    const modelLine = tinyText.split('\n').findIndex((l) => l.startsWith('model:'));
    let text = hoverText(await lsp.hover(uri, modelLine, 2));
    assert.match(text, /\*\*soft_tiny\*\*/);
    const t0 = Date.now();
    while (!text.includes(line) && Date.now() - t0 < 30_000) {
      assert.match(text, /estimating the largest batch at 224/);
      await new Promise((r) => setTimeout(r, 100));
      text = hoverText(await lsp.hover(uri, modelLine, 2));
    }
    assert.ok(text.includes(line), text);
    assert.match(text, /[\d.]+ MiB per image \+ [\d.]+ MiB fixed/);
    assert.match(text, /not a measurement/);
    const lenses = await lsp.codeLens(uri);
    assert.equal(lenses![0]!.command!.title, `ViT Lens: 13.07M params · 1.94 GMACs (B) @224 · ${line}`);
  });

  test('an unparseable setting is explained in the hover; no setting, no training text', async () => {
    const bad = await LspClient.start({ settings: { gpuMemory: '80 gigs' } });
    const none = await LspClient.start({ settings: {} });
    try {
      for (const c of [bad, none]) await c.open(uri, tinyText);
      const modelLine = tinyText.split('\n').findIndex((l) => l.startsWith('model:'));
      assert.match(
        hoverText(await bad.hover(uri, modelLine, 2)),
        /`vitlens\.gpuMemory` "80 gigs": unknown unit "gigs"/,
      );
      assert.doesNotMatch(hoverText(await none.hover(uri, modelLine, 2)), /Training memory/);
      assert.equal((await none.codeLens(uri))![0]!.command!.title, 'ViT Lens: 13.07M params · 1.94 GMACs (B) @224');
    } finally {
      await bad.stop();
      await none.stop();
    }
  });
});

describe('vitlens profile --train', () => {
  const vitlens = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], { encoding: 'utf8', cwd: ROOT });
  const tiny = path.join('fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml');

  test('prints the breakdown per stage and layer and the largest batch and resolution', () => {
    const r = vitlens('profile', tiny, '--train', '--batch', '64', '--gpu-memory', '80GiB');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Training memory \(estimate, one AdamW step\) at 224×224, batch 64; fp32/);
    assert.match(r.stdout, /weights +49\.9 MiB +13,069,056 parameters × 4 B/);
    assert.match(r.stdout, /AdamW state +99\.7 MiB +13,069,056 parameters × 8 B/);
    assert.match(r.stdout, /saved activations +[\d.]+ GiB/);
    assert.match(r.stdout, /^ {2}block3\.2 /m);
    assert.match(r.stdout, /^ {2}stage4 /m);
    assert.ok(
      r.stdout.includes(`Largest batch on 80 GiB at 224×224 (est., fp32 + AdamW): ${expected.toLocaleString('en')}`),
    );
    assert.match(
      r.stdout,
      /Largest resolution at batch 64 on 80 GiB \(est\., fp32 \+ AdamW\): \d+×\d+ \(searched multiples of 32/,
    );
  });

  test('--json carries it; memory sizes and precisions are checked', () => {
    const r = vitlens('profile', tiny, '--json', '--batch', '64', '--gpu-memory', '80GB', '--precision', 'mixed');
    assert.equal(r.status, 0, r.stderr);
    const t = JSON.parse(r.stdout).training;
    assert.equal(t.kind, 'estimate');
    assert.equal(t.precision, 'mixed');
    assert.equal(t.gpuMemoryBytes, 80e9);
    assert.equal(t.estimates[0].params, 13069056);
    assert.equal(t.estimates[0].weightBytes, 4 * 13069056);
    assert.equal(t.estimates[0].halfWeightBytes, 2 * 13069056);
    assert.ok(t.largestBatch[0].batch > expected, 'mixed precision fits more');
    assert.equal(t.largestResolution.stride, 32);

    const bad = vitlens('profile', tiny, '--train', '--gpu-memory', '80');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--gpu-memory: "80" has no unit/);
    const prec = vitlens('profile', tiny, '--train', '--precision', 'fp8');
    assert.equal(prec.status, 2);
    assert.match(prec.stderr, /--precision must be one of fp32, mixed/);
  });
});
