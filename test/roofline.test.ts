/**
 * The roofline: each runtime's fp32 matmul throughput and read bandwidth, measured in the same run
 * as its cases, and every case as a fraction of them. The traffic estimate against a hand count,
 * the fractions against their definition, and a real run on ORT CPU end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { BenchReport } from '../protocol/results';
import { graphCost } from '../server/core/engine/cost';
import { Graph } from '../server/core/engine/graph';
import { rooflineOf } from '../protocol/roofline';
import { measureDeviceLimits } from '../server/jobs/bench/roofline';
import { openRunner } from '../server/runtimes/open-runner';
import { probeDevices } from '../server/runtimes/probe';
import { ROOT } from './helpers/fixtures';

describe('roofline', () => {
  test('traffic estimate: every op reads its operands and writes its result once (weights and inputs are not ops)', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const w = g.weight('w', [3, 4]);
    const y = g.reduce('sum', g.reshape(g.matmul(x, w), [2, 4]), 1);
    // matmul: 6 + 12 read, 8 written; reshape: free; reduce: 8 read, 2 written → 36 floats.
    assert.equal(graphCost(g, [y]).trafficBytes, 36 * 4);
  });

  test('fractions: achieved GFLOP/s over the matmul rate; estimated bytes per second over the read rate', () => {
    const limits = [
      {
        runtime: 'ort-cpu' as const,
        matmul: { n: 1024, medianMs: 50, gflopsPerSecond: 40 },
        read: { bytes: 64 << 20, medianMs: 8, gbPerSecond: 8 },
      },
    ];
    const c = { runtime: 'ort-cpu' as const, gflopsPerSecond: 10, timingMs: { median: 2 } as never, trafficBytes: 4e6 };
    const r = rooflineOf(c, limits)!;
    assert.equal(r.matmulFraction, 0.25);
    // 4e6 bytes in 2 ms = 2 GB/s, over 8 GB/s.
    assert.equal(r.bandwidthFraction, 0.25);
    assert.equal(rooflineOf({ ...c, gflopsPerSecond: null, timingMs: null }, limits), null, 'a case not measured');
    assert.equal(rooflineOf(c, undefined), null, 'a report without limits');
    assert.equal(rooflineOf({ ...c, runtime: 'torch-cpu' }, limits), null, 'limits of another runtime');
  });

  test('measured on ORT CPU: a 1024³ matmul and a 64 MiB read, with rates that agree with their times', async () => {
    const report = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
    const runner = await openRunner('ort-cpu', report);
    try {
      const l = (await measureDeviceLimits(runner, 200))!;
      assert.equal(l.matmul.n, 1024);
      assert.ok(
        l.matmul.gflopsPerSecond > 0.5 && l.matmul.gflopsPerSecond < 1e5,
        `${l.matmul.gflopsPerSecond} GFLOP/s`,
      );
      assert.ok(Math.abs(l.matmul.gflopsPerSecond - (2 * 1024 ** 3) / (l.matmul.medianMs * 1e6)) < 1e-9);
      assert.equal(l.read.bytes, 64 << 20);
      assert.ok(l.read.gbPerSecond > 0.1 && l.read.gbPerSecond < 1e4, `${l.read.gbPerSecond} GB/s`);
    } finally {
      await runner.close();
    }
    const reference = await openRunner('reference', report);
    assert.equal(await measureDeviceLimits(reference), null, 'the reference is no device');
  });

  test('vitlens bench: the limits are in the JSON and every measured case is a fraction of them', () => {
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'vitlens.js'),
        'bench',
        'fixtures/configs/tiny_soft.vitlens.yaml',
        '--backend',
        'ort-cpu',
        '--stage',
        '1',
        '--attention',
        'soft',
        '--no-scaling',
        '--budget-ms',
        '30',
        '--json',
        '--quiet',
      ],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VITLENS_NO_WEBGPU: '1', XDG_RUNTIME_DIR: '/tmp' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as BenchReport;
    const limits = report.limits!.find((l) => l.runtime === 'ort-cpu')!;
    assert.ok(limits.matmul.gflopsPerSecond > 0);
    const ok = report.cases.filter((c) => c.status === 'ok');
    assert.ok(ok.length >= 2);
    for (const c of ok) {
      assert.ok(c.trafficBytes! > 0);
      const roofline = rooflineOf(c, report.limits)!;
      assert.ok(Math.abs(roofline.matmulFraction - c.gflopsPerSecond! / limits.matmul.gflopsPerSecond) < 1e-12);
    }
    assert.ok(report.notes.some((n) => /^Roofline: each runtime's limits were measured in this run/.test(n)));
  });
});
