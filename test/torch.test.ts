/**
 * The user's PyTorch as a runtime, for real: Debian's python3-torch (CPU) runs the lowered
 * programs through vitlens_torch.py. Checked op by op against the float64 reference, every block
 * of the tiny official SOFT model against the official intermediates, the whole model against the
 * official logits, the benchmark harness end to end, the probe (versions, devices, and why a
 * Python without torch is not used) and the child's faults (exit, out of memory: a clear error,
 * and the next run works). Without a Python that has torch these tests are skipped with the
 * reason, unless VITLENS_TORCH_REQUIRED=1 (CI) makes that a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DeviceReport } from '../protocol/devices';
import { block, layerContext } from '../server/core/engine/blocks';
import { Graph } from '../server/core/engine/graph';
import { lowerToTorch, TORCH_PROGRAM_VERSION } from '../server/core/engine/lowerings/torch';
import { mapWeights, ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import { openRunner } from '../server/runtimes/open-runner';
import { probeDevices } from '../server/runtimes/probe';
import type { Runner } from '../server/runtimes/runner';
import { encodeFrame, FrameReader } from '../server/runtimes/child/frames';
import { probePyTorch } from '../server/runtimes/torch/python';
import { FIXTURES, readJson, ROOT, specOf } from './helpers/fixtures';
import { cases, maxAbs } from './helpers/op-cases';

const REQUIRED = process.env.VITLENS_TORCH_REQUIRED === '1';

function vitlens(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', VITLENS_NO_WEBGPU: '1', ...env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the PyTorch lowering and its frames (no Python needed)', () => {
  test('a program holds only the live nodes, operands by id, weights and constants as float32 buffers', () => {
    const g = new Graph();
    const x = g.input('x', [2, 3]);
    const w = g.weight('w', [3, 4]);
    const unused = g.unary('exp', x);
    const y = g.addT(g.matmul(x, w), g.scalar(0.5));
    const { program, buffers } = lowerToTorch(
      g,
      [y],
      mapWeights(new Map([['w', { shape: [3, 4], data: new Array(12).fill(0.25) }]])),
    );
    assert.equal(program.version, TORCH_PROGRAM_VERSION);
    assert.deepEqual(
      program.nodes.map((n) => n.op),
      ['input', 'weight', 'matmul', 'constant', 'binary'],
    );
    assert.ok(!program.nodes.some((n) => n.id === unused.id), 'the unused exp is not lowered');
    assert.deepEqual(program.nodes[2], { id: 3, op: 'matmul', shape: [2, 4], a: x.id, b: w.id });
    assert.deepEqual(program.inputs, [{ name: 'x', id: x.id, shape: [2, 3] }]);
    assert.deepEqual(program.outputs, [y.id]);
    assert.deepEqual(
      program.buffers.map((b) => [b.what, b.shape]),
      [
        ['w', [3, 4]],
        ['scalar', [1]],
      ],
    );
    assert.deepEqual(Array.from(buffers[1]!), [0.5]);
    assert.throws(() => lowerToTorch(g, [y], mapWeights(new Map())), /weight "w" is missing/);
  });

  test('frames survive any chunking: header, then each blob at its length', () => {
    const a = Float32Array.from([1.5, -2, 3.25]);
    const b = new Uint8Array([]);
    const bytes = Buffer.concat([
      encodeFrame({ id: 1, cmd: 'run' }, [a, b]),
      encodeFrame({ id: 2, ok: true, note: 'é ✓' }, []),
    ]);
    for (const chunk of [1, 3, 7, bytes.length]) {
      const reader = new FrameReader();
      const frames = [];
      for (let i = 0; i < bytes.length; i += chunk) frames.push(...reader.push(bytes.subarray(i, i + chunk)));
      assert.equal(frames.length, 2, `chunks of ${chunk}`);
      assert.deepEqual(frames[0]!.header, { id: 1, cmd: 'run', blobs: [12, 0] });
      const blob = frames[0]!.blobs[0]!;
      assert.deepEqual(Array.from(new Float32Array(blob.buffer, blob.byteOffset, 3)), [1.5, -2, 3.25]);
      assert.equal(frames[0]!.blobs[1]!.length, 0);
      assert.equal(frames[1]!.header.note, 'é ✓');
    }
  });
});

describe('the PyTorch runtime with this machine’s Python', async () => {
  const info = await probePyTorch();
  const skip = info.available ? false : REQUIRED ? false : `no Python with torch here: ${info.reason}`;
  let report: DeviceReport;
  let runner: Runner;

  before(async () => {
    if (skip) return;
    report = await probeDevices({ webgpu: false, nvidia: false });
    runner = await openRunner('torch-cpu', report);
  });
  after(async () => {
    await runner?.close();
  });

  test('the probe names the interpreter, the torch build and the CPU device', { skip }, () => {
    assert.ok(info.available, info.reason);
    assert.match(info.torch!.version, /^\d+\.\d+/);
    assert.match(info.python!.version, /^3\.\d+/);
    assert.ok(info.devices.some((d) => d.kind === 'cpu'));
    assert.equal(info.tried.at(-1)!.reason, null, 'the interpreter used is the last one tried');
    assert.equal(report.pytorch.torch!.version, info.torch!.version);
    assert.match(runner.description.runtime, new RegExp(`^PyTorch ${info.torch!.version.replace(/\./g, '\\.')} eager`));
  });

  test(
    'torch-cpu-compiled: runs through torch.compile where this torch has it, else says why not',
    { skip },
    async () => {
      const support = report.pytorch.torch!.compile;
      if (!support.available || !support.cpu.available) {
        const why = support.reason ?? support.cpu.reason!;
        if (/^torch 1\./.test(report.pytorch.torch!.version))
          assert.match(why, /has no torch\.compile \(it came in torch 2\.0\)/);
        await assert.rejects(
          openRunner('torch-cpu-compiled', report),
          (e: Error) =>
            e.message.includes(`torch.compile is not available on cpu with PyTorch ${report.pytorch.torch!.version}`) &&
            e.message.endsWith(why),
        );
        return;
      }
      const compiled = await openRunner('torch-cpu-compiled', report);
      try {
        assert.match(compiled.description.runtime, /torch\.compile \(inductor/);
        const c = cases().find((x) => x.name.startsWith('softmax'))!;
        const ws = mapWeights(c.weights);
        const ref = new ReferenceRuntime('float64').run(c.graph, c.inputs, ws, c.outputs);
        const prepared = await compiled.prepare(c.graph, c.outputs, ws);
        const got = await prepared.run(c.inputs);
        let d = 0;
        for (let j = 0; j < ref[0]!.data.length; j++) d = Math.max(d, Math.abs(got[0]!.data[j]! - ref[0]!.data[j]!));
        assert.ok(d <= 1e-5 * Math.max(1, maxAbs(ref[0]!.data)), `compiled ${c.name}: max |diff| ${d}`);
        await prepared.release();
      } finally {
        await compiled.close();
      }
    },
  );

  for (const c of cases())
    test(`op case vs the float64 reference: ${c.name}`, { skip }, async () => {
      const ws = mapWeights(c.weights);
      const ref = new ReferenceRuntime('float64').run(c.graph, c.inputs, ws, c.outputs);
      const prepared = await runner.prepare(c.graph, c.outputs, ws);
      try {
        // Twice: the second run checks the resident weights were left intact.
        for (let rep = 0; rep < 2; rep++) {
          const got = await prepared.run(c.inputs);
          assert.equal(got.length, c.outputs.length);
          got.forEach((o, i) => {
            const r = ref[i]!;
            assert.deepEqual(o.shape, [...r.shape], `${c.name}: output ${i} shape`);
            let d = 0;
            for (let j = 0; j < r.data.length; j++) d = Math.max(d, Math.abs(o.data[j]! - r.data[j]!));
            assert.ok(d <= (c.tol ?? 2e-6) * Math.max(1, maxAbs(r.data)), `${c.name}: output ${i} max |diff| ${d}`);
          });
        }
      } finally {
        await prepared.release();
      }
    });

  test('every block of the tiny official SOFT model matches the official intermediates', { skip }, async () => {
    const cfg = readJson('ref/tiny_soft_config.json').constructor_kwargs;
    const logits = readJson('ref/tiny_soft_logits.json').tiny_soft['64x64'];
    const index: Record<string, { offset_floats: number; numel: number }> = logits.intermediates_index;
    const bin = fs.readFileSync(path.join(FIXTURES, 'ref', logits.intermediates_file));
    const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
    const tensor = (name: string) =>
      all.subarray(index[name]!.offset_floats, index[name]!.offset_floats + index[name]!.numel);
    const spec = specOf(
      `embed_dims: [${cfg.embed_dims}]\nnum_heads: [${cfg.num_heads}]\ndepths: [${cfg.depths}]\nnum_classes: ${cfg.num_classes}\nkernel_method: torch\n`,
    );
    const ck = loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
    const weights: WeightSource = { get: (key) => ck.tensors.get(key) as never };
    const grids = [16, 8, 4, 2];
    let blocks = 0;
    for (const stage of spec.stages) {
      for (let i = 0; i < stage.depth; i++) {
        const name = `block${stage.index}.${i}`;
        const input = i === 0 ? tensor(`block${stage.index}.0_in`) : tensor(`block${stage.index}.${i - 1}_out`);
        const expected = tensor(`${name}_out`);
        const c = layerContext(stage, grids[stage.index - 1]!, 1);
        const g = new Graph();
        const x = g.input('x', [1, c.tokens, stage.dim]);
        const y = block(g, x, stage, i, spec, c);
        const prepared = await runner.prepare(g, [y], weights);
        const [out] = await prepared.run({ x: Float32Array.from(input) });
        await prepared.release();
        let diff = 0;
        for (let j = 0; j < expected.length; j++) diff = Math.max(diff, Math.abs(out!.data[j]! - expected[j]!));
        // The official code in float32 with torch's own kernels: the same tolerance as the reference's float32 run.
        assert.ok(diff <= 2e-6 * Math.max(1, maxAbs(expected)), `${name}: max |diff| ${diff}`);
        blocks++;
      }
    }
    assert.equal(blocks, 5);
  });

  test('vitlens infer on torch-cpu prints the official logits of the tiny checkpoint', { skip }, () => {
    const r = vitlens([
      'infer',
      'fixtures/configs/tiny_soft.vitlens.yaml',
      '--input-tensor',
      'fixtures/ref/tiny_input_64x64.bin',
      '--shape',
      '1,3,64,64',
      '--backend',
      'torch-cpu',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.runtime.runtime.startsWith('PyTorch'), true);
    const expected = readJson('ref/tiny_soft_logits.json').tiny_soft['64x64'].logits_float32.flat() as number[];
    const d = Math.max(...expected.map((v, i) => Math.abs(v - out.items[0].logits[i])));
    assert.ok(d < 1e-5, `logits differ by ${d}`);
  });

  test(
    'vitlens bench --backend torch-cpu: every attention and block of a stage, checked against the reference',
    { skip },
    () => {
      const r = vitlens([
        'bench',
        'fixtures/configs/tiny_soft.vitlens.yaml',
        '--backend',
        'torch-cpu',
        '--stage',
        '2',
        '--no-scaling',
        '--budget-ms',
        '50',
        '--json',
        '--quiet',
      ]);
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.match(report.runtimes[0].runtime, /^PyTorch .* eager/);
      const cases = report.cases as {
        attention: string;
        level: string;
        status: string;
        relErrorVsReference: number | null;
      }[];
      assert.deepEqual(cases.map((c) => `${c.attention} ${c.level} ${c.status}`).sort(), [
        'soft attention ok',
        'soft block ok',
        'softmax attention ok',
        'softmax block ok',
        'ufo attention ok',
        'ufo block ok',
      ]);
      for (const c of cases)
        assert.ok(c.relErrorVsReference! < 1e-5, `${c.attention} ${c.level}: ${c.relErrorVsReference}`);
    },
  );
});

describe('PyTorch faults: a clear error naming the runtime, and nothing else breaks', async () => {
  const info = await probePyTorch();
  const skip = info.available ? false : REQUIRED ? false : `no Python with torch here: ${info.reason}`;

  test('a named Python that does not exist: devices says so, bench on torch-cpu refuses with the reason', () => {
    const missing = path.join(os.tmpdir(), 'no-such-python-for-vitlens');
    const d = vitlens(['devices', '--json'], { VITLENS_PYTHON: missing });
    assert.equal(d.status, 0, d.stderr);
    const pytorch = JSON.parse(d.stdout).pytorch;
    assert.equal(pytorch.available, false);
    assert.deepEqual(
      pytorch.tried.map((t: { executable: string; source: string }) => [t.executable, t.source]),
      [[missing, 'env']],
    );
    assert.match(pytorch.reason, new RegExp(`${missing.replace(/[/.]/g, '\\$&')} \\(env\\): could not run it`));
    const b = vitlens(
      [
        'bench',
        'fixtures/configs/tiny_soft.vitlens.yaml',
        '--backend',
        'torch-cpu',
        '--stage',
        '4',
        '--no-scaling',
        '--json',
        '--quiet',
      ],
      { VITLENS_PYTHON: missing },
    );
    assert.equal(b.status, 0, b.stderr);
    const bench = JSON.parse(b.stdout);
    assert.deepEqual(bench.cases, []);
    assert.equal(bench.unavailable[0].id, 'torch-cpu');
    assert.match(bench.unavailable[0].reason, /PyTorch is not available: no Python with a working torch/);
  });

  for (const [fault, expected] of [
    ['exit:run', /PyTorch .* exited with code 3/],
    ['oom:time', /PyTorch .*: RuntimeError: CUDA out of memory/],
    // Python imports torch before it reads its first request: 10 s leaves room for that on a busy machine.
    ['hang:time', /PyTorch .* did not answer "time" within 10 s/],
  ] as const)
    test(
      `fault ${fault}: the case fails with a message naming PyTorch; the other runtime's cases run`,
      { skip },
      () => {
        const r = vitlens(
          [
            'bench',
            'fixtures/configs/tiny_soft.vitlens.yaml',
            '--backend',
            'torch-cpu',
            '--backend',
            'ort-cpu',
            '--stage',
            '4',
            '--attention',
            'ufo',
            '--level',
            'attention',
            '--no-scaling',
            '--budget-ms',
            '30',
            '--json',
            '--quiet',
          ],
          { VITLENS_TORCH_FAULT: fault, VITLENS_TORCH_TIMEOUT_MS: '10000' },
        );
        assert.equal(r.status, 0, r.stderr);
        const cases = JSON.parse(r.stdout).cases as { runtime: string; status: string; message: string | null }[];
        const torch = cases.find((c) => c.runtime === 'torch-cpu')!;
        assert.equal(torch.status, 'failed');
        assert.match(torch.message ?? '', expected);
        assert.equal(cases.find((c) => c.runtime === 'ort-cpu')!.status, 'ok');
      },
    );
});
