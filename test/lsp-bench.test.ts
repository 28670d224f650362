/**
 * The benchmark and pinv custom requests over a real LSP connection to the bundled server:
 * results, progress notifications, cancellation, and errors that leave the server serving.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { BenchRequest, PinvRequest, ProgressNotification, type ProgressParams } from '../protocol/lsp';
import { SOFT_CONFIGS } from './helpers/fixtures';
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
    assert.deepEqual(r.stages.map((s) => [s.stage, s.landmarks, s.heads.length]), [[1, 4, 2], [2, 4, 4], [3, 4, 10]]);
    assert.ok(progress.some((p) => p.job === 'pinv' && p.uri === uri));
  });

  test('vitlens/bench runs in the worker, streams progress and returns the report', async () => {
    const before = progress.length;
    const r = await client.conn.sendRequest(BenchRequest, { uri, runtimes: ['ort-cpu'], stages: [4], scaling: false, budgetMs: 20, levels: ['attention'], attentions: ['ufo', 'softmax'] });
    assert.deepEqual(r.cases.map((c) => [c.attention, c.status, c.tokens]), [['ufo', 'ok', 50], ['softmax', 'ok', 50]]);
    assert.equal(r.runtimes[0]!.id, 'ort-cpu');
    assert.ok(progress.slice(before).some((p) => p.job === 'bench' && /stage 4/.test(p.message)));
  });

  test('cancelling a benchmark kills its worker; the server still answers', async () => {
    const cts = new CancellationTokenSource();
    const sub = client.conn.onNotification(ProgressNotification.method, (p: ProgressParams) => {
      if (p.job === "bench") cts.cancel();
    });
    await assert.rejects(client.conn.sendRequest(BenchRequest, { uri, runtimes: ['ort-cpu'], stages: [1], scaling: false, budgetMs: 5000 }, cts.token), (e: unknown) => e instanceof ResponseError && /cancel/i.test(e.message));
    sub.dispose();
    const hover = await client.hover(uri, 0, 2);
    assert.ok(hover, 'hover still answered after the cancel');
  });

  test('a config with errors gets a ResponseError naming the line; nothing runs', async () => {
    const bad = LspClient.uriOf(path.join(SOFT_CONFIGS, 'SOFT_Broken_for_test.yaml'));
    await client.open(bad, 'model: soft_tiny\nnewton_maxiter: -1\n');
    await assert.rejects(client.conn.sendRequest(PinvRequest, { uri: bad }), (e: unknown) => e instanceof ResponseError && /line 2/.test(e.message));
    const r = await client.conn.sendRequest(PinvRequest, { uri, resolution: 32 });
    assert.equal(r.model, 'soft_tiny');
  });
});
