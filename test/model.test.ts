/**
 * The whole-model graph (server/core/engine/model.ts) against the official SOFT model: the tiny
 * model's logits and every official intermediate (tiny_soft.pth on the 64×64 inputs), on the
 * float64/float32 reference runtime and onnxruntime CPU and WebGPU; the pos-embed resize
 * against an independent transcription of PyTorch's bilinear kernel; checkpoint binding and
 * its error report; UFO-ViT (no official checkpoint exists) for self-consistency: ORT vs the
 * float64 reference, key list and parameter count vs the profile walk.
 *
 * Set VITLENS_NO_WEBGPU=1 to skip the WebGPU runs where there is no Vulkan adapter.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { OnnxSession } from '../server/runtimes/ort/session';
import { ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { bilinearMatrix, resizeBilinearTokens } from '../server/core/engine/interpolate';
import { MODEL_INPUT, modelGraph } from '../server/core/engine/model';
import { randomWeights, seededRandom } from '../server/core/engine/weights';
import { loadCheckpoint } from '../server/inputs/checkpoint/load';
import {
  WeightMismatchError,
  bindCheckpoint,
  expectedModelTensors,
  withCheckpointPosEmbedGrids,
  type CheckpointTensor,
} from '../server/jobs/infer/model-weights';
import type { ModelSpec } from '../server/core/models/spec';
import { profileModel } from '../server/core/profile/profile';
import { numel } from '../server/core/shape';
import { FIXTURES, readJson, specOf } from './helpers/fixtures';

const NO_WEBGPU = process.env.VITLENS_NO_WEBGPU === '1';
const WEBGPU_SKIP = NO_WEBGPU ? 'VITLENS_NO_WEBGPU=1: no Vulkan adapter for the WebGPU EP' : false;
// Dawn warns without it (docs/RUNTIMES.md §8).
process.env.XDG_RUNTIME_DIR ??= os.tmpdir();

type RuntimeName = 'reference float64' | 'reference float32' | 'ORT cpu' | 'ORT webgpu';

interface Output {
  shape: readonly number[];
  data: ArrayLike<number>;
}

async function run(
  runtime: RuntimeName,
  g: Graph,
  feeds: Record<string, Float32Array>,
  weights: WeightSource,
  outputs: Tensor[],
): Promise<Output[]> {
  if (runtime === 'reference float64' || runtime === 'reference float32') {
    return new ReferenceRuntime(runtime === 'reference float64' ? 'float64' : 'float32').run(
      g,
      feeds,
      weights,
      outputs,
    );
  }
  const session = await OnnxSession.create(g, outputs, weights, { ep: runtime === 'ORT cpu' ? 'cpu' : 'webgpu' });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function readFloats(file: string): Float32Array {
  const b = fs.readFileSync(path.join(FIXTURES, 'ref', file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Measured errors, printed at the end so a run documents the agreement actually reached. */
const measured: string[] = [];
after(() => console.log(`whole-model max |diff|:\n${measured.map((l) => `  ${l}`).join('\n')}`));

/** Distinct weight tensors of a graph, split into trainable parameters and BatchNorm statistics. */
function graphParameterCount(g: Graph): number {
  const seen = new Map<string, number>();
  for (const { key, tensor } of g.weights) seen.set(key, numel(tensor.shape));
  return [...seen].filter(([k]) => !/\.running_(mean|var)$/.test(k)).reduce((n, [, c]) => n + c, 0);
}

// ---- pos-embed resize ------------------------------------------------------------------------------

/**
 * PyTorch's CPU upsample_bilinear2d (align_corners=False, explicit size) transcribed per output
 * pixel — index + neighbour offset + λ, blending along x then y — independently of how
 * `bilinearMatrix` builds its weights.
 */
function torchBilinear(
  src: Float64Array,
  inH: number,
  inW: number,
  channels: number,
  outH: number,
  outW: number,
): Float64Array {
  const out = new Float64Array(outH * outW * channels);
  /** PyTorch's per-axis terms: source index i1, neighbour offset p (0 at the edge), λ1 and λ0. */
  const axis = (inSize: number, outSize: number, dst: number) => {
    const real = Math.max(0, (inSize / outSize) * (dst + 0.5) - 0.5);
    const i1 = Math.trunc(real);
    const l1 = real - i1;
    return { i1, p: i1 < inSize - 1 ? 1 : 0, l1, l0: 1 - l1 };
  };
  for (let oy = 0; oy < outH; oy++) {
    const h = axis(inH, outH, oy);
    for (let ox = 0; ox < outW; ox++) {
      const w = axis(inW, outW, ox);
      for (let c = 0; c < channels; c++) {
        const at = (y: number, x: number) => src[(y * inW + x) * channels + c]!;
        out[(oy * outW + ox) * channels + c] =
          h.l0 * (w.l0 * at(h.i1, w.i1) + w.l1 * at(h.i1, w.i1 + w.p)) +
          h.l1 * (w.l0 * at(h.i1 + h.p, w.i1) + w.l1 * at(h.i1 + h.p, w.i1 + w.p));
      }
    }
  }
  return out;
}

describe('positional-embedding resize = F.interpolate(bilinear, align_corners=False)', () => {
  test('1-D weights on values PyTorch documents: [0,1] → 4 and [0,1,2,3] → 2', () => {
    const up = bilinearMatrix(2, 4);
    const down = bilinearMatrix(4, 2);
    const apply = (r: Float64Array, v: number[]) =>
      Array.from({ length: r.length / v.length }, (_, i) => v.reduce((s, x, j) => s + r[i * v.length + j]! * x, 0));
    assert.deepEqual(apply(up, [0, 1]), [0, 0.25, 0.75, 1]);
    assert.deepEqual(apply(down, [0, 1, 2, 3]), [0.5, 2.5]);
  });

  test('equal sizes give exactly the identity and no resize matmul', () => {
    const r = bilinearMatrix(14, 14);
    for (let i = 0; i < 14; i++) for (let j = 0; j < 14; j++) assert.equal(r[i * 14 + j], i === j ? 1 : 0);
    const g = new Graph();
    resizeBilinearTokens(g, g.input('p', [14, 14, 3]), 14, 14);
    assert.ok(!g.nodes.some((n) => n.node.op === 'matmul' || n.node.op === 'constant'));
  });

  for (const [inH, inW, outH, outW] of [
    [56, 56, 16, 16],
    [7, 7, 2, 2],
    [14, 14, 14, 14],
    [28, 28, 37, 37],
    [7, 7, 3, 5],
    [14, 14, 20, 9],
  ] as const) {
    test(`${inH}×${inW} → ${outH}×${outW} matches the direct per-pixel formula`, () => {
      const channels = 3;
      const rand = seededRandom(inH * 1000 + outH * 10 + outW);
      const src = Float64Array.from({ length: inH * inW * channels }, () => 2 * rand() - 1);
      const g = new Graph();
      const out = resizeBilinearTokens(g, g.input('p', [inH, inW, channels]), outH, outW);
      assert.deepEqual(out.shape, [outH * outW, channels]);
      const [got] = new ReferenceRuntime('float64').run(g, { p: src }, { get: () => undefined }, [out]);
      const want = torchBilinear(src, inH, inW, channels, outH, outW);
      assert.ok(maxAbsDiff(got!.data, want) < 1e-15, `max |diff| ${maxAbsDiff(got!.data, want)}`);
    });
  }
});

// ---- the tiny official model --------------------------------------------------------------------

const cfg = readJson('ref/tiny_soft_config.json');
const tinySpec = (() => {
  const k = cfg.constructor_kwargs;
  return specOf(
    `embed_dims: [${k.embed_dims}]\nnum_heads: [${k.num_heads}]\ndepths: [${k.depths}]\nnum_classes: ${k.num_classes}\nkernel_method: torch\n`,
  );
})();
const logitsRef = readJson('ref/tiny_soft_logits.json').tiny_soft;
const INPUTS = {
  random: { feed: readFloats('tiny_input_64x64.bin'), logits: logitsRef['64x64'].logits_float32.flat() as number[] },
  png: {
    feed: readFloats('tiny_image_64x64_preprocessed.bin'),
    logits: logitsRef.png_64x64.logits_float32.flat() as number[],
  },
};
const index: Record<string, { shape: number[]; offset_floats: number; numel: number }> =
  logitsRef['64x64'].intermediates_index;
const intermediates = readFloats(logitsRef['64x64'].intermediates_file);
const intermediate = (name: string) =>
  intermediates.subarray(index[name]!.offset_floats, index[name]!.offset_floats + index[name]!.numel);
const checkpoint = loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));

/** The tiny model at 64×64 (batch 1) with every official intermediate as an output, built once. */
const tiny = (() => {
  const g = new Graph();
  const m = modelGraph(g, tinySpec, { resolution: 64 });
  const names = Object.keys(index).filter((n) => m.taps.has(n));
  return {
    g,
    m,
    names,
    outputs: names.map((n) => m.taps.get(n)!),
    weights: bindCheckpoint(g, tinySpec, checkpoint.tensors, 'tiny_soft.pth'),
  };
})();

/**
 * Tolerances. Logits on the reference runtime and ORT CPU: the official data's own bar for a
 * float32 port (README: ~1e-5 abs; measured ≤ 1.7e-7). Intermediates: 3e-6·max(1, max|ref|);
 * measured ≤ 1.9e-6·max|ref| (norm_out, ORT CPU), while every porting mistake in the official
 * sensitivity table moves the logits by ≥ 1e-4. WebGPU (lavapipe): measured logits 1.2e-7,
 * intermediates ≤ 1.4e-6·max(1, max|ref|); logits asserted at 5e-7.
 */
const LOGIT_TOL: Record<RuntimeName, number> = {
  'reference float64': 1e-5,
  'reference float32': 1e-5,
  'ORT cpu': 1e-5,
  'ORT webgpu': 5e-7,
};
const INTERMEDIATE_TOL = 3e-6;

describe('tiny SOFT model (tiny_soft.pth) vs the official PyTorch run', () => {
  test('every official intermediate is exposed under its name', () => {
    assert.deepEqual(tiny.names, Object.keys(index));
  });

  test('stage grids and logits shape at 64×64', () => {
    assert.deepEqual(tiny.m.grids, [
      { h: 16, w: 16 },
      { h: 8, w: 8 },
      { h: 4, w: 4 },
      { h: 2, w: 2 },
    ]);
    assert.deepEqual(tiny.m.logits.shape, [1, tinySpec.numClasses]);
    assert.equal(tiny.m.input.shape.join(), '1,3,64,64');
  });

  test('the graph reads exactly the state_dict keys of the profile walk and the official parameter count', () => {
    const graphKeys = new Set(tiny.g.weights.map((w) => w.key));
    const walkKeys = new Set(expectedModelTensors(tinySpec).map((t) => t.key));
    assert.deepEqual([...graphKeys].sort(), [...walkKeys].sort());
    assert.equal(graphParameterCount(tiny.g), cfg.param_count);
  });

  const runtimes: { name: RuntimeName; skip: string | false }[] = [
    { name: 'reference float64', skip: false },
    { name: 'reference float32', skip: false },
    { name: 'ORT cpu', skip: false },
    { name: 'ORT webgpu', skip: WEBGPU_SKIP },
  ];
  for (const { name: runtime, skip } of runtimes) {
    test(`${runtime}: logits of both inputs and every official intermediate`, { skip }, async () => {
      // Both inputs in one batch: the official model is batch-independent (Newton variant A is per
      // matrix), so row b must equal the batch-1 reference of input b; this also exercises the cls expand.
      const g = new Graph();
      const m = modelGraph(g, tinySpec, { resolution: 64, batch: 2 });
      const batchFeed = new Float32Array(2 * INPUTS.random.feed.length);
      batchFeed.set(INPUTS.random.feed);
      batchFeed.set(INPUTS.png.feed, INPUTS.random.feed.length);
      const weights = bindCheckpoint(g, tinySpec, checkpoint.tensors);
      const [batched] = await run(runtime, g, { [MODEL_INPUT]: batchFeed }, weights, [m.logits]);
      const classes = tinySpec.numClasses;
      const randomDiff = maxAbsDiff(Array.from(batched!.data).slice(0, classes), INPUTS.random.logits);
      const pngDiff = maxAbsDiff(Array.from(batched!.data).slice(classes), INPUTS.png.logits);

      const outs = await run(runtime, tiny.g, { [MODEL_INPUT]: INPUTS.random.feed }, tiny.weights, tiny.outputs);
      let worst = { name: '', ratio: 0 };
      tiny.names.forEach((n, i) => {
        const want = intermediate(n);
        assert.deepEqual([...outs[i]!.shape], index[n]!.shape, `${n} shape`);
        const bound = INTERMEDIATE_TOL * Math.max(1, maxAbs(want));
        const d = maxAbsDiff(outs[i]!.data, want);
        assert.ok(d <= bound, `${runtime} ${n}: max |diff| ${d} > ${bound}`);
        const ratio = d / Math.max(1, maxAbs(want));
        if (ratio > worst.ratio) worst = { name: n, ratio };
      });
      measured.push(
        `${runtime.padEnd(18)} logits random ${randomDiff.toExponential(2)}, png ${pngDiff.toExponential(2)}; intermediates ≤ ${worst.ratio.toExponential(2)}·max(1,|ref|) (${worst.name})`,
      );
      assert.ok(
        randomDiff <= LOGIT_TOL[runtime],
        `${runtime}: logits (random input) max |diff| ${randomDiff} > ${LOGIT_TOL[runtime]}`,
      );
      assert.ok(
        pngDiff <= LOGIT_TOL[runtime],
        `${runtime}: logits (png input) max |diff| ${pngDiff} > ${LOGIT_TOL[runtime]}`,
      );
    });
  }
});

// ---- checkpoint binding ---------------------------------------------------------------------------

describe('checkpoint → graph weights', () => {
  const tensors = checkpoint.tensors as ReadonlyMap<string, CheckpointTensor>;
  const edited = (edit: (m: Map<string, CheckpointTensor>) => void) => {
    const m = new Map(tensors);
    edit(m);
    return m;
  };

  test('num_batches_tracked is neither required nor unexpected', () => {
    const without = edited((m) => {
      for (const k of [...m.keys()]) if (k.endsWith('num_batches_tracked')) m.delete(k);
    });
    assert.ok(tensors.has('patch_embed1.proj.1.num_batches_tracked'));
    bindCheckpoint(tiny.g, tinySpec, tensors);
    bindCheckpoint(tiny.g, tinySpec, without);
  });

  test('missing, unexpected and mis-shaped keys give one readable report', () => {
    const bad = edited((m) => {
      m.delete('block2.0.att.norm1.weight');
      m.delete('patch_embed3.proj.1.running_var');
      m.set('head.weight', { shape: [10, 63], dtype: 'float32', data: new Float32Array(630) });
      m.set('fc.weight', { shape: [3], dtype: 'float32', data: new Float32Array(3) });
    });
    assert.throws(
      () => bindCheckpoint(tiny.g, tinySpec, bad, 'broken.pth'),
      (e: unknown) => {
        assert.ok(e instanceof WeightMismatchError);
        assert.deepEqual(e.check.missing, ['patch_embed3.proj.1.running_var', 'block2.0.att.norm1.weight']);
        assert.equal(
          e.message,
          [
            'broken.pth does not fit the model:',
            'Missing from the checkpoint (2):',
            '  patch_embed3.proj.1.running_var',
            '  block2.0.att.norm1.weight',
            'Not used by the model (1):',
            '  fc.weight',
            'Shape mismatch (1):',
            '  head.weight: checkpoint [10, 63], model expects [10, 64]',
          ].join('\n'),
        );
        return true;
      },
    );
  });

  test('an integer tensor where a parameter belongs is refused', () => {
    const bad = edited((m) => m.set('norm.bias', { shape: [64], dtype: 'int64', data: new BigInt64Array(64) }));
    assert.throws(
      () => bindCheckpoint(tiny.g, tinySpec, bad, 'ints.pth'),
      /ints\.pth does not fit the model:\nNot a floating-point tensor \(1\):\n {2}norm\.bias$/,
    );
  });

  test('pos_embed grids are read from the checkpoint (official g = int(√rows)), so it is resized from its own grid', () => {
    const shapes = new Map<string, { shape: readonly number[] }>([
      ['pos_embed1', { shape: [1, 64 * 64, 16] }],
      ['pos_embed2', { shape: [1, 784, 32] }],
      ['pos_embed3', { shape: [1, 197, 40] }], // not a square grid: keep the spec's, the check reports it
      ['pos_embed4', { shape: [1, 1 + 8 * 8, 64] }],
    ]);
    assert.deepEqual(
      withCheckpointPosEmbedGrids(tinySpec, shapes).stages.map((s) => s.posEmbedGrid),
      [64, 28, 14, 8],
    );
    assert.deepEqual(
      tinySpec.stages.map((s) => s.posEmbedGrid),
      [56, 28, 14, 7],
      'the input spec is not modified',
    );
  });

  test('a checkpoint with pos_embeds stored at the 64×64 grids binds without resizing and gives the official logits', () => {
    // The official run's pos-embed rows at 64×64 are block{k}.0_in − (cls;) patch_embed{k}_out.
    const tensors = new Map<string, CheckpointTensor>(checkpoint.tensors);
    for (const stage of tinySpec.stages) {
      const withPos = intermediate(`block${stage.index}.0_in`);
      const cls = stage.clsToken ? (checkpoint.tensors.get('cls_token')!.data as Float32Array) : new Float32Array(0);
      const before = Float32Array.from([...cls, ...intermediate(`patch_embed${stage.index}_out`)]);
      tensors.set(`pos_embed${stage.index}`, {
        shape: [1, withPos.length / stage.dim, stage.dim],
        dtype: 'float32',
        data: withPos.map((v, i) => v - before[i]!),
      });
    }
    const spec = withCheckpointPosEmbedGrids(tinySpec, tensors);
    assert.deepEqual(
      spec.stages.map((s) => s.posEmbedGrid),
      [16, 8, 4, 2],
    );
    const g = new Graph();
    const m = modelGraph(g, spec, { resolution: 64 });
    assert.ok(
      !g.nodes.some((n) => n.node.op === 'constant' && n.node.label.startsWith('pos_embed')),
      'no resize when the grids agree',
    );
    const [logits] = new ReferenceRuntime('float64').run(
      g,
      { [MODEL_INPUT]: INPUTS.random.feed },
      bindCheckpoint(g, spec, tensors),
      [m.logits],
    );
    const d = maxAbsDiff(logits!.data, INPUTS.random.logits);
    assert.ok(d <= 1e-5, `logits max |diff| ${d}`);
  });
});

// ---- registered sizes and UFO-ViT -------------------------------------------------------------------

describe('soft_tiny at 224', () => {
  test('grids 56/28/14/7, 13,069,056 parameters, every resize is the identity (no constants)', () => {
    const spec = specOf('model: soft_tiny\n');
    const g = new Graph();
    const m = modelGraph(g, spec, { resolution: 224 });
    assert.deepEqual(
      m.grids.map((x) => x.h),
      [56, 28, 14, 7],
    );
    assert.deepEqual(m.logits.shape, [1, 1000]);
    assert.equal(graphParameterCount(g), 13_069_056);
    assert.ok(!g.nodes.some((n) => n.node.op === 'constant' && n.node.label.startsWith('pos_embed')));
  });
});

describe('UFO-ViT (XCiT layout) self-consistency: no official checkpoint, so ORT vs the float64 reference', () => {
  // A small UFO-ViT (patch 16, 14² pos grid) at 64×96: 4×6 tokens, so the pos_embed resize is
  // non-square; batch 2. The UFO definition itself is checked against ufo.json in onnx.test.ts.
  // Measured ORT CPU vs float64: logits ≤ 1.3e-7, taps ≤ 5.3e-7·max(1, max|ref|) (ufo; softmax and
  // soft class attention less); asserted at 2e-6·max(1, max|ref|) to allow another thread count's summation order.
  const TOL = 2e-6;
  for (const attention of ['ufo', 'softmax', 'soft']) {
    test(`${attention} attention: keys and parameter count = profile walk; ORT cpu = reference on logits and taps`, async () => {
      const spec: ModelSpec = specOf(
        `model: ufo_vit_tiny\nembed_dims: [32]\ndepths: [2]\nnum_heads: [2]\nnum_classes: 7\nattention: [${attention}]\n`,
      );
      const g = new Graph();
      const m = modelGraph(g, spec, { height: 64, width: 96, batch: 2 });
      assert.deepEqual(m.grids, [{ h: 4, w: 6 }]);
      assert.deepEqual(m.logits.shape, [2, 7]);
      assert.deepEqual(m.taps.get('norm_out')!.shape, [2, 25, 32]);
      assert.deepEqual(
        [...new Set(g.weights.map((w) => w.key))].sort(),
        expectedModelTensors(spec)
          .map((t) => t.key)
          .sort(),
      );
      assert.equal(graphParameterCount(g), profileModel(spec, 64).params);

      const rand = seededRandom(7);
      const image = Float32Array.from({ length: numel(m.input.shape) }, () => 2 * rand() - 1);
      const weights = randomWeights(g, 3);
      const outputs = [...m.taps.values()];
      const ref = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: image }, weights, outputs);
      const ort = await run('ORT cpu', g, { [MODEL_INPUT]: image }, weights, outputs);
      let worst = 0;
      [...m.taps.keys()].forEach((name, i) => {
        const scale = Math.max(1, maxAbs(ref[i]!.data));
        const d = maxAbsDiff(ort[i]!.data, ref[i]!.data);
        assert.ok(d <= TOL * scale, `${attention} ${name}: max |diff| ${d} > ${TOL * scale}`);
        worst = Math.max(worst, d / scale);
      });
      const logitDiff = maxAbsDiff(ort[outputs.length - 1]!.data, ref[outputs.length - 1]!.data);
      assert.ok(maxAbs(ref[outputs.length - 1]!.data) > 1e-3, 'logits are not trivially zero');
      measured.push(
        `UFO-ViT (${attention}) ORT cpu vs float64: logits ${logitDiff.toExponential(2)}, taps ≤ ${worst.toExponential(2)}·max(1,|ref|)`,
      );
    });
  }

  test('ufo attention in token tiles, as inference builds it for ORT CPU: the same weights, logits and taps as untiled', async () => {
    const spec: ModelSpec = specOf(
      'model: ufo_vit_tiny\nembed_dims: [32]\ndepths: [2]\nnum_heads: [2]\nnum_classes: 7\nattention: [ufo]\n',
    );
    const build = (tokenTileBytes?: number) => {
      const g = new Graph();
      return {
        g,
        m: modelGraph(g, spec, { height: 64, width: 96, batch: 2, ...(tokenTileBytes ? { tokenTileBytes } : {}) }),
      };
    };
    const whole = build();
    // 4·B·D·8 bytes: tiles of at least 8 tokens, so each block's 24 tokens run as three tiles.
    const tiled = build(4 * 2 * 32 * 8);
    const slices = (g: Graph) => g.nodes.filter((n) => n.node.op === 'slice').length;
    assert.equal(slices(tiled.g) - slices(whole.g), 2 * 3, 'two blocks, three tiles each: one slice of x per tile');
    assert.deepEqual(
      tiled.g.weights.map((w) => w.key),
      whole.g.weights.map((w) => w.key),
      'tiles share one set of weight nodes',
    );

    const rand = seededRandom(7);
    const image = Float32Array.from({ length: numel(whole.m.input.shape) }, () => 2 * rand() - 1);
    const ref = new ReferenceRuntime('float64').run(whole.g, { [MODEL_INPUT]: image }, randomWeights(whole.g, 3), [
      ...whole.m.taps.values(),
    ]);
    const ort = await run('ORT cpu', tiled.g, { [MODEL_INPUT]: image }, randomWeights(tiled.g, 3), [
      ...tiled.m.taps.values(),
    ]);
    assert.deepEqual([...tiled.m.taps.keys()], [...whole.m.taps.keys()]);
    [...whole.m.taps.keys()].forEach((name, i) => {
      const scale = Math.max(1, maxAbs(ref[i]!.data));
      const d = maxAbsDiff(ort[i]!.data, ref[i]!.data);
      assert.ok(d <= TOL * scale, `tiled ${name}: max |diff| ${d} > ${TOL * scale}`);
    });
  });
});
