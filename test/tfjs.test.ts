/**
 * The TF.js runtime against the float64 reference interpreter, op by op and on UFO
 * attention, on the cpu, wasm and webgpu (Dawn) backends. WebGPU tests fail when Dawn
 * finds no adapter, unless VITLENS_NO_WEBGPU=1 says this machine has none.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { probeDevices } from '../server/runtimes/probe';
import { openRunner } from '../server/runtimes/open-runner';
import { ufoAttention } from '../server/core/engine/attention/ufo';
import { ReferenceRuntime, mapWeights, type WeightSource } from '../server/core/engine/lowerings/reference';
import { findOversizeTensor } from '../server/core/engine/lowerings/tfjs';
import { TfjsExecutor } from '../server/runtimes/tfjs/executor';
import { loadTfjs, probeTfjsBackends, shutdownTfjs, type TfjsBackendName } from '../server/runtimes/tfjs/load';
import { Graph } from '../server/core/engine/graph';
import { readJson } from './helpers/fixtures';
import { cases, maxAbs, type Case } from './helpers/op-cases';

const NO_WEBGPU = process.env.VITLENS_NO_WEBGPU === '1';
const BACKENDS = ['cpu', 'wasm', 'webgpu'] as const;
const skipFor = (b: TfjsBackendName) =>
  b === 'webgpu' && NO_WEBGPU ? 'VITLENS_NO_WEBGPU=1: no WebGPU adapter on this machine' : false;

// Dawn keeps node alive while its instance exists.
after(() => shutdownTfjs());

function weightSource(m: Case['weights']): WeightSource {
  return mapWeights(m);
}

/** Runs `c` on the reference (float64) and on tfjs; returns the largest |diff| / max(1, max |ref|). */
async function compare(c: Case, backend: TfjsBackendName, t: TestContext): Promise<number> {
  const ws = weightSource(c.weights);
  const ref = new ReferenceRuntime('float64').run(c.graph, c.inputs, ws, c.outputs);
  const ex = await TfjsExecutor.create(c.graph, c.outputs, ws, { backend });
  try {
    let worst = 0;
    // Twice: the second run checks that the first left the uploaded weights intact.
    for (let rep = 0; rep < 2; rep++) {
      const got = await ex.run(c.inputs);
      assert.equal(got.length, c.outputs.length);
      got.forEach((o, i) => {
        const r = ref[i]!;
        assert.deepEqual(o.shape, [...r.shape], `${c.name}: output ${i} shape`);
        assert.equal(o.data.length, r.data.length);
        const scale = Math.max(1, maxAbs(r.data));
        let d = 0;
        for (let j = 0; j < r.data.length; j++) d = Math.max(d, Math.abs(o.data[j]! - r.data[j]!));
        assert.ok(Number.isFinite(d), `${c.name}: output ${i} is not finite`);
        const rel = d / scale;
        assert.ok(rel <= (c.tol ?? 2e-6), `${c.name} on ${backend}: output ${i} max |diff| ${d} (scale ${scale})`);
        worst = Math.max(worst, rel);
      });
    }
    t.diagnostic(`max |diff| / max(1, |ref|) = ${worst.toExponential(2)}`);
    return worst;
  } finally {
    ex.dispose();
  }
}

const ufoRef = readJson('ref/ufo.json');

function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

function ufoCase(caseName: string) {
  const c = ufoRef.cases[caseName];
  const { d_model: D, h } = ufoRef.config;
  const [B, N] = ufoRef.config.input_shape as number[];
  const g = new Graph();
  const x = g.input('x', [B!, N!, D]);
  const y = ufoAttention(g, x, 'attn', { batch: B!, tokens: N!, dim: D, heads: h });
  const weights = new Map(
    Object.entries<unknown>(c.weights).map(([k, w]) => [
      `attn.${k}`,
      { shape: c.weight_shapes[k] as number[], data: flat(w) },
    ]),
  );
  return {
    g,
    y,
    weights: mapWeights(weights),
    x: Float32Array.from(flat(ufoRef.input)),
    expected: flat(c.output_float32),
    maxOut: c.max_abs_output as number,
  };
}

describe('tfjs backends: probe and loading', () => {
  test('probe: tfjs-node(-gpu) unavailable with a reason; cpu and wasm available; webgpu with its adapter', async () => {
    const probes = await probeTfjsBackends();
    const by = new Map(probes.map((p) => [p.name, p]));
    assert.deepEqual([...by.keys()].sort(), ['cpu', 'tfjs-node', 'tfjs-node-gpu', 'wasm', 'webgpu']);
    for (const name of ['tfjs-node-gpu', 'tfjs-node'] as const) {
      const p = by.get(name)!;
      assert.equal(p.available, false);
      assert.match(p.reason ?? '', /not installed|native binding/);
      assert.match(p.reason ?? '', /libtensorflow/);
    }
    assert.equal(by.get('cpu')!.available, true);
    assert.equal(by.get('wasm')!.available, true, by.get('wasm')!.reason);
    const wg = by.get('webgpu')!;
    if (NO_WEBGPU) return;
    assert.equal(wg.available, true, `webgpu: ${wg.reason} (set VITLENS_NO_WEBGPU=1 on machines without an adapter)`);
    const a = wg.adapter!;
    assert.equal(typeof a.isFallbackAdapter, 'boolean');
    assert.ok(
      a.vendor.length > 0 && a.maxStorageBufferBindingSize > 0 && a.maxBufferSize >= a.maxStorageBufferBindingSize,
      JSON.stringify(a),
    );
  });

  test('loading tfjs-node-gpu rejects with an explanation', async () => {
    await assert.rejects(
      loadTfjs('tfjs-node-gpu'),
      /@tensorflow\/tfjs-node-gpu is not installed.*libtensorflow.*CUDA/s,
    );
  });

  test('findOversizeTensor names the node and counts lowering copies', () => {
    const g = new Graph();
    const x = g.input('x', [1, 3, 10, 10]);
    const w = g.weight('w', [3, 3, 3, 3]);
    const conv = g.conv2d(x, w, null, { pad: 5 });
    assert.equal(findOversizeTensor(g, [conv], 1e6), undefined);
    // The padded NHWC copy [1, 20, 20, 3] is the largest tensor: 4800 bytes.
    const big = findOversizeTensor(g, [conv], 4799);
    assert.deepEqual(big && { op: big.op, shape: big.shape, bytes: big.bytes }, {
      op: 'conv2d',
      shape: [1, 20, 20, 3],
      bytes: 4800,
    });
    const m = new Graph();
    const p = m.input('p', [4, 1, 8, 2]);
    const q = m.input('q', [1, 5, 2, 8]);
    const y = m.matmul(p, q);
    // [4,5,8,8] output = 5120 bytes; the broadcast copy of p [4,5,8,2] is 1280.
    assert.deepEqual(findOversizeTensor(m, [y], 5119)?.shape, [4, 5, 8, 8]);
    assert.deepEqual(findOversizeTensor(m, [m.reshape(p, [64])], 0)?.op, 'input "p"');
  });
});

for (const backend of BACKENDS) {
  describe(`tfjs ${backend} vs the float64 reference`, { skip: skipFor(backend) }, () => {
    if (backend === 'webgpu') {
      // Otherwise tfjs-webgpu runs ops on small not-yet-uploaded tensors on the CPU, and
      // these small cases would not exercise its shaders.
      before(async () => (await loadTfjs('webgpu')).tf.env().set('WEBGPU_CPU_FORWARD', false));
    }
    for (const c of cases()) test(c.name, (t) => compare(c, backend, t).then(() => undefined));

    test('grouped conv2d against hand-computed values (catches channel and kernel layout bugs)', async () => {
      const g = new Graph();
      const x = g.input('x', [1, 4, 1, 3]);
      // groups 2, 1×2 kernels: out0 = [1,2]∗c0 + [10,20]∗c1, out1 = [100,0]∗c2 + [0,1000]∗c3.
      const w = g.constant([1, 2, 10, 20, 100, 0, 0, 1000], [2, 2, 1, 2]);
      const y = g.conv2d(x, w, g.constant([0.5, -0.5], [2]), { groups: 2 });
      const ex = await TfjsExecutor.create(g, [y], mapWeights(new Map()), { backend });
      const [out] = await ex.run({ x: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) });
      ex.dispose();
      assert.deepEqual(out!.shape, [1, 2, 1, 2]);
      // 1·1+2·2+10·4+20·5 = 145, 1·2+2·3+10·5+20·6 = 178; 100·7+1000·11 = 11700, 100·8+1000·12 = 12800.
      assert.deepEqual(Array.from(out!.data), [145.5, 178.5, 11699.5, 12799.5]);
    });

    test('UFO attention matches the official float32 outputs (ufo.json)', async (t) => {
      for (const name of Object.keys(ufoRef.cases)) {
        const u = ufoCase(name);
        const ex = await TfjsExecutor.create(u.g, [u.y], u.weights, { backend });
        const [out] = await ex.run({ x: u.x });
        ex.dispose();
        assert.deepEqual(out!.shape, [2, 49, 32]);
        let d = 0;
        for (let i = 0; i < u.expected.length; i++) d = Math.max(d, Math.abs(out!.data[i]! - u.expected[i]!));
        // float32 with a different summation order than PyTorch's: a few ulps of max |out|.
        const tol = 4e-6 * Math.max(u.maxOut, 1e-2);
        assert.ok(d <= tol, `${name}: max |diff| ${d} > ${tol}`);
        t.diagnostic(`${name}: max |diff| ${d.toExponential(2)} (max |out| ${u.maxOut.toPrecision(3)})`);
      }
    });

    test('no tensors leak; profiled runs report peak bytes above the baseline', async () => {
      const { tf } = await loadTfjs(backend);
      const before = tf.memory().numTensors;
      const u = ufoCase('init_std_0.2');
      const ex = await TfjsExecutor.create(u.g, [u.y], u.weights, { backend });
      const held = tf.memory().numTensors;
      assert.ok(held > before && ex.persistentBytes > 0);
      const r = await ex.run({ x: u.x }, { profile: true });
      assert.equal(r.outputs[0]!.data.length, 2 * 49 * 32);
      assert.equal(r.baselineBytes, tf.memory().numBytes);
      // At least the input and the output are alive at once on top of the weights.
      assert.ok(
        r.peakBytes >= r.baselineBytes + 2 * 2 * 49 * 32 * 4,
        `peak ${r.peakBytes}, baseline ${r.baselineBytes}`,
      );
      assert.equal(r.memory.numTensors, held);
      if (backend === 'webgpu') assert.equal(typeof r.memory.numBytesInGPU, 'number');
      ex.dispose();
      assert.equal(tf.memory().numTensors, before);
    });

    test('the harness runner measures tf.profile everywhere, and on webgpu the GPU buffers tf.memory() counts', async () => {
      const report = await probeDevices({ onnxruntime: false, nvidia: false, webgpu: backend === 'webgpu' });
      const runner = await openRunner(`tfjs-${backend}`, report);
      const u = ufoCase('init_std_0.2');
      const prepared = await runner.prepare(u.g, [u.y], u.weights);
      const figures = await prepared.measureMemory({ x: u.x });
      await prepared.release();
      const byLabel = (re: RegExp) => figures.find((f) => re.test(f.label));
      assert.ok(
        (byLabel(/^tf\.profile peakBytes above weights/)?.bytes ?? 0) >= 2 * 2 * 49 * 32 * 4,
        JSON.stringify(figures),
      );
      const live = byLabel(/tf\.memory\(\)\.numBytesInGPU,/);
      const allocated = byLabel(/tf\.memory\(\)\.numBytesAllocatedInGPU/);
      if (backend !== 'webgpu') return assert.deepEqual([live, allocated], [undefined, undefined]);
      // After the run the weights are still on the GPU (4 linears 32×32 + 32, and γ [1,4,1,1]); freed buffers stay in tfjs's pool.
      const weightBytes = (4 * (32 * 32 + 32) + 4) * 4;
      assert.ok(live && live.kind === 'measured' && live.bytes >= weightBytes, JSON.stringify(live));
      assert.ok(allocated && allocated.kind === 'measured' && allocated.bytes >= live.bytes, JSON.stringify(allocated));
    });
  });
}

describe('tfjs webgpu specifics', { skip: skipFor('webgpu') }, () => {
  test('a tensor above maxStorageBufferBindingSize is refused before running', async () => {
    const { info } = await loadTfjs('webgpu');
    const limit = info.adapter!.maxStorageBufferBindingSize;
    assert.ok(info.adapter && typeof info.adapter.isFallbackAdapter === 'boolean');
    const n = Math.ceil(Math.sqrt(limit / 4)) + 1;
    const g = new Graph();
    const x = g.input('x', [n, 8]);
    const scores = g.matmul(x, g.transpose(x, [1, 0]));
    const y = g.reduce('sum', scores, -1);
    await assert.rejects(TfjsExecutor.create(g, [y], mapWeights(new Map()), { backend: 'webgpu' }), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(
          `node ${scores.id} \\(matmul\\).*\\[${n},${n}\\] = ${n * n * 4} bytes.*maxStorageBufferBindingSize of ${limit} bytes`,
        ),
      );
      return true;
    });
  });

  test('executors on webgpu and cpu take turns on the one tfjs engine', async () => {
    const u = ufoCase('init_std_0.2');
    const a = await TfjsExecutor.create(u.g, [u.y], u.weights, { backend: 'webgpu' });
    const b = await TfjsExecutor.create(u.g, [u.y], u.weights, { backend: 'cpu' });
    const [ra] = await a.run({ x: u.x });
    const [rb] = await b.run({ x: u.x });
    const [ra2] = await a.run({ x: u.x });
    a.dispose();
    b.dispose();
    for (const r of [ra!, rb!, ra2!]) assert.ok(maxAbs(r.data.map((v, i) => v - u.expected[i]!)) < 1e-4);
  });
});
