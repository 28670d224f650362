/**
 * `vitlens/approx` over a real LSP connection to the bundled server: the worker runs the
 * analysis on the config's own checkpoint and image (resolved next to the config) and returns what
 * the analysis gives in process on the same files; progress arrives as `vitlens/progress`; a bad
 * request is an error and the server keeps serving. And the editor's path to the dashboard, as
 * client/commands/approx.ts takes it: the "Approximation quality" CodeLens names the command, the
 * command asks `vitlens/dashboard` and `vitlens/approx` and shows the data of both.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApproxReport } from '../protocol/approx';
import { ApproxRequest, Commands, DashboardRequest, ProgressNotification, type ProgressParams } from '../protocol/lsp';
import { analyzeConfig } from '../server/core/config/analyze';
import { analyseApprox } from '../server/jobs/approx/sweep';
import { FIXTURES } from './helpers/fixtures';
import { LspClient } from './helpers/lsp';

const config = path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml');
const uri = LspClient.uriOf(config);
const text = fs.readFileSync(config, 'utf8');
let client: LspClient;
const progress: ProgressParams[] = [];

before(async () => {
  client = await LspClient.start();
  client.conn.onNotification(ProgressNotification.method, (p: ProgressParams) => void progress.push(p));
  await client.open(uri, text);
});
after(async () => {
  await client.stop();
});

/** The numbers of a report, without its timings and the config's name (a URI over LSP, a path here). */
function figures(r: ApproxReport) {
  return r.stages.map((s) => ({ stage: s.stage, tokens: s.tokens, methods: s.methods, skipped: s.skipped }));
}

describe('vitlens/approx', () => {
  test("answers on the config's own checkpoint and image, as the analysis does in process", async () => {
    const params = { stages: [2, 3], methods: ['soft' as const, 'nystrom' as const, 'performer' as const] };
    const r = await client.conn.sendRequest(ApproxRequest, { uri, ...params });
    assert.equal(r.model, 'custom');
    assert.equal(r.input.checkpoint, path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
    assert.equal(r.input.image, path.join(FIXTURES, 'ref', 'tiny_image_64x64.png'));
    const spec = analyzeConfig(text).spec!;
    const local = await analyseApprox(spec, {
      ...params,
      checkpoint: r.input.checkpoint,
      image: r.input.image,
    });
    assert.deepEqual(figures(r), figures(local));
    // The model's own SOFT point is among those measured.
    const soft = r.stages[0]!.methods.find((m) => m.method === 'soft')!;
    assert.ok(soft.points.length > 0);
    assert.ok(progress.some((p) => p.job === 'approx' && p.uri === uri));
  });

  test('a stage the model has not is an error naming it, and the server answers the next request', async () => {
    await assert.rejects(client.conn.sendRequest(ApproxRequest, { uri, stages: [9] }), /stage 9/);
    const again = await client.conn.sendRequest(ApproxRequest, {
      uri,
      stages: [3],
      methods: ['linformer'],
      checkpoint: null,
      image: null,
    });
    assert.equal(again.input.checkpoint, null);
    assert.equal(again.stages.length, 1);
  });

  test("the editor's path: the CodeLens, then the dashboard data the panel shows the run in", async () => {
    const lens = (await client.codeLens(uri))!.find((l) => l.command?.command === Commands.approx);
    assert.deepEqual(lens?.command, { title: 'Approximation quality', command: Commands.approx, arguments: [uri] });
    // As the command does: the dashboard for the config, then the run (its defaults: the config's
    // checkpoint and image), shown in the approximation view.
    const data = await client.conn.sendRequest(DashboardRequest, { uri, view: 'approx', producer: 'test' });
    assert.ok(data);
    assert.equal(data.view, 'approx');
    assert.equal(data.approx, null, 'nothing run yet');
    const r = await client.conn.sendRequest(ApproxRequest, {
      uri: lens!.command!.arguments![0] as string,
      stages: [3],
      methods: ['soft', 'performer'],
    });
    assert.match(r.input.checkpoint!, /tiny_soft\.pth$/);
    // Run again from the panel: the server builds the data with the report the panel holds.
    const again = await client.conn.sendRequest(DashboardRequest, { uri, view: 'approx', producer: 'test', approx: r });
    assert.deepEqual(again!.approx, r);
    const soft = again!.approx!.stages[0]!.methods.find((m) => m.method === 'soft')!;
    assert.equal(soft.modelIterations, 20);
    assert.ok(soft.points.some((p) => p.model && p.setting.iterations === 20));
  });
});
