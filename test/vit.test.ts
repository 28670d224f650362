/**
 * The isotropic ViT family (docs/MATHS.md §2.10): DeiT's published parameters and MACs against the
 * profile and against a count written out here independently of it; the config rules for the
 * grid-pooling attentions (refused with a cls token, run on the patch grid with average pooling);
 * the whole-model graph on the float64 reference against onnxruntime CPU with random weights, for
 * every attention kind; the fixed landmark grid of vit_paper_fig1b on a rectangular grid; timm's
 * `qkv` checkpoint keys; the benchmark harness's rectangular token grids and the profile sweep.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { analyzeConfig } from '../server/core/config/analyze';
import { Graph, type Tensor } from '../server/core/engine/graph';
import { ReferenceRuntime, type WeightSource } from '../server/core/engine/lowerings/reference';
import { MODEL_INPUT, modelGraph } from '../server/core/engine/model';
import { randomWeights, seededRandom } from '../server/core/engine/weights';
import { landmarkStrides, stageLandmarks } from '../server/core/models/build';
import { findModel } from '../server/core/models/registry';
import { ATTENTION_KINDS, type AttentionKind, type ModelSpec } from '../server/core/models/spec';
import { profileModel } from '../server/core/profile/profile';
import { profileSweep } from '../server/core/profile/sweep';
import { numel } from '../server/core/shape';
import { runBenchmark } from '../server/jobs/bench/harness';
import {
  bindCheckpoint,
  engineCheckpointKeys,
  expectedModelTensors,
  type CheckpointTensor,
} from '../server/jobs/infer/model-weights';
import { OnnxSession } from '../server/runtimes/ort/session';
import { probeDevices } from '../server/runtimes/probe';
import { specOf } from './helpers/fixtures';

/** DeiT (Touvron et al. 2021), Table 1: params, "FLOPs" (MACs) at 224, top-1. */
const DEIT = [
  { name: 'vit_tiny', dim: 192, heads: 3, params: 5.7e6, gmacs: 1.3, top1: 72.2 },
  { name: 'vit_small', dim: 384, heads: 6, params: 22e6, gmacs: 4.6, top1: 79.8 },
  { name: 'vit_base', dim: 768, heads: 12, params: 86e6, gmacs: 17.6, top1: 81.8 },
];

/**
 * timm's VisionTransformer(patch 16, depth 12, mlp_ratio 4, qkv_bias, 1000 classes) counted by
 * hand. Per block: norm1 2D, qkv 3D² + 3D, proj D² + D, norm2 2D, fc1 4D² + 4D, fc2 4D² + D.
 */
function deitParams(D: number): number {
  const patch = 3 * 16 * 16 * D + D;
  const tokens = D + 197 * D; // cls_token, pos_embed
  const block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (4 * D * D + 4 * D) + (4 * D * D + D);
  return patch + tokens + 12 * block + 2 * D + (1000 * D + 1000);
}

/** Convention A (convs + linears) and B (+ the attention matmuls QKᵀ and AV) at 224: 196 patches + cls. */
function deitMacs(D: number): { A: number; B: number } {
  const N = 197;
  const linears = 12 * (N * 3 * D * D + N * D * D + N * 4 * D * D + N * 4 * D * D);
  const A = 196 * D * 3 * 16 * 16 + linears + 1000 * D;
  return { A, B: A + 12 * 2 * N * N * D };
}

describe('ViT presets against DeiT (Touvron et al. 2021), Table 1', () => {
  for (const d of DEIT) {
    test(`${d.name}: parameters exact and = the hand count; GMACs (B) round to DeiT's ${d.gmacs}`, () => {
      const spec = specOf(`model: ${d.name}\n`);
      assert.deepEqual(spec.published, {
        params: `${d.params / 1e6}M`,
        gflops: d.gmacs,
        top1: d.top1,
        source: 'DeiT (Touvron et al. 2021), Table 1',
      });
      const p = profileModel(spec, 224);
      assert.equal(p.params, deitParams(d.dim));
      // DeiT cuts to the decimals it prints (86,567,656 is "86M"), it does not round.
      const scale = 10 ** (String(d.params / 1e6).split('.')[1] ?? '').length;
      assert.equal(Math.floor((p.params / 1e6) * scale) / scale, d.params / 1e6, 'params in M, as DeiT prints them');
      const hand = deitMacs(d.dim);
      assert.equal(p.macsByConvention.A, hand.A);
      assert.equal(p.macsByConvention.B, hand.B);
      assert.equal(Math.round(p.macsByConvention.B / 1e8) / 10, d.gmacs);
      // Softmax has nothing the later conventions add.
      assert.equal(p.macsByConvention.E, p.macsByConvention.B);
      assert.equal(p.stages.find((s) => s.group === 'stage1')!.tokens, 197);
    });
  }

  test('exact counts: 5,717,416 / 22,050,664 / 86,567,656 parameters (timm sum(p.numel()) of deit_*_patch16_224)', () => {
    assert.deepEqual(
      DEIT.map((d) => profileModel(specOf(`model: ${d.name}\n`), 224).params),
      [5_717_416, 22_050_664, 86_567_656],
    );
  });

  test("state_dict keys in timm's names and order: own parameters, patch_embed, blocks, norm, head", () => {
    const keys = expectedModelTensors(specOf('model: vit_tiny\n')).map((t) => t.key);
    assert.deepEqual(keys.slice(0, 4), ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']);
    assert.deepEqual(keys.slice(4, 16), [
      'blocks.0.norm1.weight',
      'blocks.0.norm1.bias',
      'blocks.0.attn.q.weight',
      'blocks.0.attn.q.bias',
      'blocks.0.attn.kv.weight',
      'blocks.0.attn.kv.bias',
      'blocks.0.attn.proj.weight',
      'blocks.0.attn.proj.bias',
      'blocks.0.norm2.weight',
      'blocks.0.norm2.bias',
      'blocks.0.mlp.fc1.weight',
      'blocks.0.mlp.fc1.bias',
    ]);
    assert.deepEqual(keys.slice(-4), ['norm.weight', 'norm.bias', 'head.weight', 'head.bias']);
    const avg = expectedModelTensors(specOf('model: vit_tiny\nglobal_pool: avg\n')).map((t) => t.key);
    assert.ok(!avg.includes('cls_token') && !avg.includes('norm.weight'));
    assert.deepEqual(avg.slice(-4), ['fc_norm.weight', 'fc_norm.bias', 'head.weight', 'head.bias']);
  });
});

describe('config rules of the ViT family', () => {
  const GRID_KINDS: AttentionKind[] = ['soft', 'soft_norm', 'nystrom', 'softmax_sr'];
  for (const kind of GRID_KINDS) {
    test(`${kind} with a cls token is refused, naming global_pool: avg; with global_pool: avg it builds`, () => {
      const a = analyzeConfig(`model: vit_small\nattention: ${kind}\n`);
      assert.equal(a.spec, null);
      const e = a.diagnostics.find((d) => d.code === 'grid-attention-cls-token');
      assert.ok(e && e.severity === 'error', JSON.stringify(a.diagnostics));
      assert.match(e.message, /global_pool: avg/);
      const ok = analyzeConfig(`model: vit_small\nattention: ${kind}\nglobal_pool: avg\n`);
      assert.deepEqual(
        ok.diagnostics.filter((d) => d.severity === 'error'),
        [],
      );
      assert.equal(ok.spec!.stages[0]!.clsToken, false);
    });
  }

  test('softmax, performer, linformer and ufo run with the cls token', () => {
    for (const kind of ['softmax', 'performer', 'linformer', 'ufo']) {
      const a = analyzeConfig(`model: vit_tiny\nattention: ${kind}\n`);
      assert.ok(a.spec, kind);
      assert.equal(a.spec.stages[0]!.clsToken, true);
    }
  });

  test('patch_size and global_pool: applied on the ViT, pointed out elsewhere; changing them drops the published figures', () => {
    const a = analyzeConfig('model: vit_tiny\npatch_size: 8\n');
    assert.equal(a.spec!.stages[0]!.stem[0]!.kernel, 8);
    assert.equal(a.spec!.stages[0]!.posEmbedGrid, 28);
    assert.equal(a.spec!.published, null);
    const soft = analyzeConfig('model: soft_tiny\npatch_size: 8\nglobal_pool: avg\n');
    assert.deepEqual(
      soft.diagnostics.map((d) => [d.code, d.severity]),
      [
        ['setting-unused', 'information'],
        ['setting-unused', 'information'],
      ],
    );
    assert.equal(soft.spec!.stages[0]!.stem.length, 3, 'the SOFT stem is unchanged');
  });

  test('embed_dims and friends need one entry for the isotropic ViT; the message names it', () => {
    const a = analyzeConfig('model: vit_tiny\nembed_dims: [64, 128]\n');
    const e = a.diagnostics.find((d) => d.code === 'list-length')!;
    assert.match(e.message, /the isotropic ViT/);
  });

  test('vit_paper_fig1b: 12 × 384, 12 heads, no cls token, m = 49 at 224, 448 and 448 × 896; a note says what is assumed', () => {
    const a = analyzeConfig('model: vit_paper_fig1b\n');
    const s = a.spec!.stages[0]!;
    assert.deepEqual([s.dim, s.heads, s.depth, s.clsToken, s.landmarkGrid], [384, 12, 12, false, 7]);
    assert.ok(a.diagnostics.some((d) => d.code === 'paper-stack' && d.severity === 'information'));
    assert.equal(stageLandmarks(s, 14, 14), 49);
    assert.equal(stageLandmarks(s, 28, 28), 49);
    assert.deepEqual(landmarkStrides(s, 28, 56), [4, 8]);
    assert.equal(stageLandmarks(s, 28, 56), 49);
    const soft = specOf('model: vit_paper_fig1b\nattention: soft\n');
    assert.equal(profileModel(soft, 448, 1, 896).stages.find((x) => x.group === 'stage1')!.landmarks, 49);
    assert.ok(
      analyzeConfig('model: vit_paper_fig1b\nsr_ratios: [2]\n').diagnostics.some(
        (d) => d.code === 'fixed-landmark-grid',
      ),
    );
  });
});

// ---- whole-model graph: float64 reference vs onnxruntime CPU ------------------------------------------------

async function ortRun(g: Graph, feeds: Record<string, Float32Array>, weights: WeightSource, outputs: Tensor[]) {
  const session = await OnnxSession.create(g, outputs, weights, { ep: 'cpu' });
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

/** Distinct weight tensors of a graph minus BatchNorm statistics (the ViT has none). */
function graphParameterCount(g: Graph): number {
  const seen = new Map<string, number>();
  for (const { key, tensor } of g.weights) seen.set(key, numel(tensor.shape));
  return [...seen.values()].reduce((n, c) => n + c, 0);
}

const measured: string[] = [];
after(() =>
  console.log(`ViT whole-model max |diff| (ORT cpu vs float64):\n${measured.map((l) => `  ${l}`).join('\n')}`),
);

/**
 * Asserts the graph reads exactly the profile walk's keys and parameter count, and ORT CPU = the
 * float64 reference on every tap (2e-6·max(1, |ref|), as test/model.test.ts allows).
 */
async function checkAgainstReference(spec: ModelSpec, height: number, width: number, batch: number, label: string) {
  const g = new Graph();
  const m = modelGraph(g, spec, { height, width, batch });
  assert.deepEqual(
    [...new Set(g.weights.map((w) => w.key))].sort(),
    expectedModelTensors(spec)
      .map((t) => t.key)
      .sort(),
  );
  assert.equal(graphParameterCount(g), profileModel(spec, height, 1, width).params);
  const rand = seededRandom(11);
  const image = Float32Array.from({ length: numel(m.input.shape) }, () => 2 * rand() - 1);
  const weights = randomWeights(g, 5);
  const outputs = [...m.taps.values()];
  const ref = new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: image }, weights, outputs);
  const ort = await ortRun(g, { [MODEL_INPUT]: image }, weights, outputs);
  let worst = 0;
  [...m.taps.keys()].forEach((name, i) => {
    const scale = Math.max(1, maxAbs(ref[i]!.data));
    const d = maxAbsDiff(ort[i]!.data, ref[i]!.data);
    assert.ok(d <= 2e-6 * scale, `${label} ${name}: max |diff| ${d}`);
    worst = Math.max(worst, d / scale);
  });
  const logits = ref[outputs.length - 1]!;
  assert.deepEqual(logits.shape, [batch, spec.numClasses]);
  assert.ok(maxAbs(logits.data) > 1e-4, 'logits are not trivially zero');
  measured.push(`${label}: taps ≤ ${worst.toExponential(2)}·max(1,|ref|)`);
  return m;
}

describe('whole-model graph (2 blocks, 64 wide, patch 8, 32 × 48 input): ORT cpu = float64 reference', () => {
  // 4 × 6 patches, so the 28×28 stored pos_embed is resized to a non-square grid; batch 2.
  const base =
    'model: vit_tiny\nembed_dims: [64]\ndepths: [2]\nnum_heads: [2]\npatch_size: 8\nnum_classes: 7\nimg_size: 32\n';
  for (const kind of ATTENTION_KINDS) {
    const grid = kind === 'soft' || kind === 'soft_norm' || kind === 'nystrom' || kind === 'softmax_sr';
    test(`${kind}${grid ? ' (global_pool: avg; refused with the cls token)' : ' with the cls token, and with global_pool: avg'}`, async () => {
      if (grid) assert.equal(analyzeConfig(`${base}attention: ${kind}\n`).spec, null);
      else {
        const m = await checkAgainstReference(specOf(`${base}attention: ${kind}\n`), 32, 48, 2, `${kind} cls`);
        assert.deepEqual(m.taps.get('norm_out')!.shape, [2, 25, 64]);
      }
      const m = await checkAgainstReference(
        specOf(`${base}attention: ${kind}\nglobal_pool: avg\n`),
        32,
        48,
        2,
        `${kind} avg`,
      );
      assert.deepEqual(m.grids, [{ h: 4, w: 6 }]);
      assert.deepEqual(m.taps.get('pool_out')!.shape, [2, 64]);
    });
  }

  test("a fixed landmark grid on a rectangular grid: SOFT's [dh, dh, 2, 4] landmark conv and Nyström's 2 × 4 pools, m = 49", async () => {
    const fig = 'model: vit_paper_fig1b\nembed_dims: [32]\ndepths: [1]\nnum_heads: [2]\nnum_classes: 5\n';
    for (const kind of ['soft', 'nystrom']) {
      const spec = specOf(`${fig}attention: ${kind}\n`);
      // 224 × 448 input, patch 16: a 14 × 28 grid, landmark strides 2 × 4.
      const m = await checkAgainstReference(spec, 224, 448, 1, `${kind} 14×28, fixed 7×7 landmarks`);
      assert.deepEqual(m.grids, [{ h: 14, w: 28 }]);
      const p = profileModel(spec, 224, 1, 448);
      if (kind === 'soft') {
        assert.deepEqual(p.tensors.find((t) => t.key.endsWith('Qlandmark_op.weight'))!.shape, [16, 16, 2, 4]);
        assert.equal(p.stages.find((s) => s.group === 'stage1')!.landmarks, 49);
      }
    }
  });
});

describe("timm checkpoints: `qkv` rows are the engine's `q` then `kv`", () => {
  test('a timm-named state dict binds, and gives the logits of the same weights split by hand', () => {
    const spec = specOf(
      'model: vit_tiny\nembed_dims: [32]\ndepths: [2]\nnum_heads: [2]\nnum_classes: 5\nimg_size: 32\n',
    );
    const g = new Graph();
    const m = modelGraph(g, spec, { resolution: 32 });
    const random = randomWeights(g, 9);
    const engine = new Map<string, CheckpointTensor>();
    for (const { key } of g.weights) engine.set(key, random.get(key)!);
    // timm's layout: qkv = [q; kv] along the output rows.
    const timm = new Map<string, CheckpointTensor>();
    for (const [key, t] of engine) {
      const q = /^(blocks\.\d+\.attn)\.q\.(weight|bias)$/.exec(key);
      if (q) {
        const kv = engine.get(`${q[1]}.kv.${q[2]}`)!;
        const data = new Float32Array(t.data.length + kv.data.length);
        data.set(t.data as Float32Array);
        data.set(kv.data as Float32Array, t.data.length);
        timm.set(`${q[1]}.qkv.${q[2]}`, { shape: [3 * 32, ...t.shape.slice(1)], data });
      } else if (!/\.kv\./.test(key)) timm.set(key, t);
    }
    assert.ok(timm.has('blocks.1.attn.qkv.weight') && !timm.has('blocks.1.attn.q.weight'));
    const split = engineCheckpointKeys(spec, timm);
    assert.deepEqual(split.get('blocks.0.attn.kv.weight')!.shape, [64, 32]);
    const image = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i));
    const run = (w: WeightSource) =>
      new ReferenceRuntime('float64').run(g, { [MODEL_INPUT]: image }, w, [m.logits])[0]!.data;
    assert.deepEqual(run(bindCheckpoint(g, spec, timm, 'timm')), run(bindCheckpoint(g, spec, engine, 'engine')));
  });
});

describe('benchmark harness and profile sweep on the ViT', () => {
  test('rectangular token grids (`grids`, --grid HxW): n = h·w exactly, m fixed by the landmark grid', async () => {
    const spec = specOf('model: vit_paper_fig1b\nembed_dims: [32]\ndepths: [1]\nnum_heads: [2]\n');
    const report = await probeDevices({ webgpu: false, nvidia: false });
    const r = await runBenchmark(
      {
        model: spec,
        config: null,
        runtimes: ['reference'],
        attentions: ['soft', 'nystrom', 'softmax'],
        levels: ['attention'],
        resolutions: [],
        grids: [{ h: 14, w: 28 }],
        scaling: false,
        limits: false,
        budgetMs: 1,
      },
      report,
    );
    assert.equal(r.cases.length, 3);
    for (const c of r.cases) {
      assert.equal(c.status, 'ok', c.message ?? '');
      assert.deepEqual([c.grid, c.gridW, c.tokens], [14, 28, 392]);
      assert.match(c.id, /\/N392\/14x28$/);
      if (c.attention !== 'softmax') assert.equal(c.landmarks, 49);
    }
    assert.match(r.cases.find((c) => c.attention === 'soft')!.setting!, /m = 49 landmarks \(fixed 7×7 grid\)/);
  });

  test('the profile sweep swaps the ViT stage, cls token or not; the grid kinds are left out with a cls token', () => {
    const cls = profileSweep(specOf('model: vit_tiny\n'), [224]);
    assert.deepEqual([...cls.attentions].sort(), ['linformer', 'performer', 'softmax', 'ufo']);
    const avg = profileSweep(specOf('model: vit_tiny\nglobal_pool: avg\n'), [224]);
    assert.deepEqual([...avg.attentions].sort(), ['linformer', 'nystrom', 'performer', 'softmax', 'softmax_sr', 'ufo']);
    assert.ok(findModel('vit_paper_fig1b'));
  });
});
