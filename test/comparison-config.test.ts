/**
 * The comparison attentions in a config: `attention: performer | nystrom | linformer` and their
 * keys, as the analysis reads them (diagnostics with the key and place) and as the profile counts
 * them. Parameters are checked against independent arithmetic: Performer adds no weights to the
 * softmax projections, Nyströmformer adds its h·k² skip conv, Linformer its two k×n matrices.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analyzeConfig } from '../server/core/config/analyze';
import { attentionSetting, linformerK, performerSettings } from '../server/core/models/comparison';
import { stageGrids } from '../server/core/models/build';
import { profileModel } from '../server/core/profile/profile';

function analyze(text: string) {
  const a = analyzeConfig(text);
  return { ...a, codes: a.diagnostics.map((d) => `${d.severity}:${d.code}:${d.key ?? ''}`) };
}

function params(text: string): number {
  const a = analyze(text);
  assert.ok(a.spec, a.codes.join(', '));
  return profileModel(a.spec, 224).params;
}

describe('comparison attentions in a config', () => {
  test('one value swaps stages 1–3; the cls stage keeps softmax; defaults resolve per stage', () => {
    const a = analyze('model: soft_tiny\nattention: performer\n');
    assert.deepEqual(a.codes, []);
    assert.deepEqual(
      a.spec!.stages.map((s) => s.attention),
      ['performer', 'performer', 'performer', 'softmax'],
    );
    // Head sizes 32, 32, 32, 32 in soft_tiny: ⌊32·ln 32⌋ = 110 features, seeds 0, 1, 2.
    assert.deepEqual(
      a.spec!.stages.slice(0, 3).map((s) => performerSettings(s, a.spec!)),
      [
        { features: 110, seed: 0 },
        { features: 110, seed: 1 },
        { features: 110, seed: 2 },
      ],
    );
    const grids = stageGrids(a.spec!, 224);
    assert.equal(
      attentionSetting(a.spec!.stages[0]!, a.spec!, grids[0]!, grids[0]!),
      'm = 110 random features (seed 0)',
    );
  });

  test('parameters: Performer = softmax; Nyströmformer = softmax + h·k² per block; Linformer = softmax + 2·k·n per block', () => {
    const softmax = params('model: soft_tiny\nattention: softmax\n');
    assert.equal(params('model: soft_tiny\nattention: performer\n'), softmax);
    // soft_tiny stages 1–3: heads 2, 4, 10; depths 1, 2, 3; conv_size 9, 5, 3.
    const skip = 2 * 81 * 1 + 4 * 25 * 2 + 10 * 9 * 3;
    assert.equal(params('model: soft_tiny\nattention: nystrom\n'), softmax + skip);
    assert.equal(params('model: soft_tiny\nattention: nystrom\nnystrom_conv: none\n'), softmax);
    assert.equal(
      params('model: soft_tiny\nattention: nystrom\nnystrom_conv: sequence\n'),
      softmax + 35 * (2 + 4 * 2 + 10 * 3),
    );
    // At 224: grids 56, 28, 14 with r = 8, 4, 2 → k = 49 landmarks each; n = 3136, 784, 196.
    const ef = 2 * 49 * (3136 * 1 + 784 * 2 + 196 * 3);
    assert.equal(params('model: soft_tiny\nattention: linformer\n'), softmax + ef);
    assert.equal(
      params('model: soft_tiny\nattention: linformer\nlinformer_k: [16, 16, 16, 16]\n'),
      softmax + (ef / 49) * 16,
    );
  });

  test('per-stage keys: one value or one per stage, else an error on the key', () => {
    const one = analyze('model: soft_tiny\nattention: performer\nperformer_features: 64\n');
    assert.deepEqual(one.spec!.comparison.performerFeatures, [64, 64, 64, 64]);
    const bad = analyze('model: soft_tiny\nattention: performer\nperformer_features: [64, 32]\n');
    assert.deepEqual(bad.codes, ['error:list-length:performer_features']);
    assert.match(bad.diagnostics[0]!.message, /one value for every stage or one per stage \(4\), got 2/);
  });

  test('Nyströmformer refuses the cls stage and a grid without landmarks; an even sequence kernel is an error', () => {
    const cls = analyze('model: soft_tiny\nattention: [nystrom, soft, soft, nystrom]\n');
    assert.deepEqual(cls.codes, ['error:nystrom-in-cls-stage:attention']);
    assert.equal(cls.spec, null);
    const stride = analyze('model: soft_tiny\nattention: nystrom\nsr_ratios: [8, 4, 1, 1]\n');
    assert.deepEqual(stride.codes, ['error:nystrom-needs-landmarks:sr_ratios']);
    const even = analyze('model: soft_tiny\nattention: nystrom\nnystrom_conv: sequence\nnystrom_sequence_kernel: 34\n');
    assert.deepEqual(even.codes, ['error:even-kernel:nystrom_sequence_kernel']);
    const line = even.parsed.text.slice(0, even.diagnostics[0]!.span.start).split('\n').length;
    assert.equal(line, 4, 'the error sits on the kernel value');
  });

  test('a setting no stage uses is pointed out; a Linformer k above the token count warns per stage', () => {
    assert.deepEqual(analyze('model: soft_tiny\nlinformer_k: 64\n').codes, ['information:setting-unused:linformer_k']);
    const big = analyze('model: soft_tiny\nattention: linformer\nlinformer_k: 1000\n');
    // Stage 1 has 3136 tokens at 224; stages 2 and 3 have 784 and 196.
    assert.deepEqual(big.codes, [
      'warning:linformer-k-exceeds-tokens:linformer_k',
      'warning:linformer-k-exceeds-tokens:linformer_k',
    ]);
    assert.equal(linformerK(big.spec!.stages[0]!, big.spec!, 56, 56), 1000);
  });

  test('the paper\'s "Linformer" (PVT spatial reduction) is named so', () => {
    const a = analyze('model: soft_tiny\nattention: softmax_sr\n');
    assert.equal(
      attentionSetting(a.spec!.stages[0]!, a.spec!, 56, 56),
      'keys reduced 8×8 (what the SOFT paper ran as Linformer)',
    );
  });
});
