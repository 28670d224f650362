/**
 * Cost walks of the attention modules, one per attention kind, following the
 * official code's op sequence (docs/MATHS.md §1.2–1.5, §2.4, §5.3). These are counts,
 * not an implementation: the engine has its own single definition of each attention.
 */
import { landmarkStrides } from '../models/build';
import { linformerK, nystromSettings, performerSettings } from '../models/comparison';
import type { KernelMethod, ModelSpec, NewtonVariant, StageSpec } from '../models/spec';
import { conv2d, layerNorm, linear, matmul, pointwise } from './layers';
import type { Recorder } from './recorder';

export interface AttentionShape {
  batch: number;
  /** Token grid; `tokens` may add a cls token on top of H·W. */
  gridH: number;
  gridW: number;
  tokens: number;
}

/** Gaussian kernel exp(−dist(a,b)/2) between `rows` and `cols` points of width dh, for `mats` matrices. */
function gaussianKernel(
  r: Recorder,
  path: string,
  label: string,
  method: KernelMethod,
  mats: number,
  rows: number,
  cols: number,
  dh: number,
): void {
  const out = mats * rows * cols;
  if (method === 'torch') {
    // ‖q‖² @ ones + ones @ ‖k‖² − 2·q@k (subtraction_gaussian_kernel_torch), then exp(−x/2).
    matmul(r, `${path}.qk`, 'gaussian_kernel', `${label}: q·lᵀ`, 'matmul_gauss_qk', mats, rows, dh, cols);
    matmul(r, `${path}.sqnorm_q`, 'gaussian_kernel', `${label}: q²·1`, 'matmul_gauss_sqnorm_q', mats, rows, dh, cols);
    matmul(r, `${path}.sqnorm_k`, 'gaussian_kernel', `${label}: 1·l²`, 'matmul_gauss_sqnorm_k', mats, rows, dh, cols);
    pointwise(
      r,
      `${path}.combine`,
      'gaussian_kernel',
      `${label}: squares, sum, −2·, exp(−x/2)`,
      {
        other_pointwise_elems: mats * rows * dh + mats * dh * cols + 5 * out,
        exp_elems: out,
      },
      out,
    );
  } else {
    // The CUDA kernel accumulates Σ(q−l)² directly: one multiply–accumulate per element pair and channel.
    matmul(r, `${path}.qk`, 'gaussian_kernel', `${label}: Σ(q−l)² (direct)`, 'matmul_gauss_qk', mats, rows, dh, cols);
    pointwise(
      r,
      `${path}.combine`,
      'gaussian_kernel',
      `${label}: exp(−x/2)`,
      { other_pointwise_elems: 2 * out, exp_elems: out },
      out,
    );
  }
}

/** Newton–Raphson inverse of `mats` m×m matrices (docs/MATHS.md §1.4). Variant B's back-off halvings are data dependent: the minimum (no halving) is counted. */
function newtonInverse(
  r: Recorder,
  path: string,
  variant: NewtonVariant,
  iterations: number,
  mats: number,
  m: number,
): void {
  const sq = mats * m * m;
  if (variant === 'A') {
    pointwise(
      r,
      `${path}.init`,
      'newton',
      'alpha = 1.8/s², P = A + 0.01·I, V₀ = alpha·P',
      { other_pointwise_elems: mats + m * m + 2 * sq },
      sq,
    );
  } else {
    pointwise(
      r,
      `${path}.init`,
      'newton',
      'alpha = 2/s² (global), V₀ = alpha·P',
      { other_pointwise_elems: 1 + sq },
      sq,
    );
    matmul(r, `${path}.backoff`, 'newton', '‖I − P·V₀‖₁ check (one per alpha halving)', 'matmul_newton', mats, m, m, m);
    pointwise(r, `${path}.backoff_norm`, 'newton', 'I − P·V₀, |·|', { other_pointwise_elems: 2 * sq }, sq);
  }
  // All iterations are identical in cost: one record per step kind keeps the op list short.
  r.op({
    path: `${path}.iterations`,
    kind: 'newton',
    label: `${iterations} iterations × (V·P, (V·P)·V)`,
    category: 'matmul_newton',
    macs: iterations * 2 * mats * m * m * m,
    outputElems: sq,
  });
  pointwise(
    r,
    `${path}.updates`,
    'newton',
    `${iterations} × (2V − VPV)`,
    { other_pointwise_elems: iterations * 2 * sq },
    sq,
  );
}

/** SOFT / SOFT-Norm: `SoftmaxFreeAttention` with its kernel (ratio > 1 path). */
function softAttention(r: Recorder, base: string, stage: StageSpec, model: ModelSpec, s: AttentionShape): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const [ratio, ratioW] = landmarkStrides(stage, s.gridH, s.gridW);
  const B = s.batch;
  const N = s.gridH * s.gridW;
  const BN = B * N;
  const mats = B * h;
  const lh = Math.floor(s.gridH / ratio);
  const lw = Math.floor(s.gridW / ratioW);
  const m = lh * lw;
  const attn = `${base}.attn`;

  linear(r, `${base}.W_q`, BN, D, D, 'linear_attn_proj', 'projection');
  linear(r, `${base}.W_v`, BN, D, D, 'linear_attn_proj', 'projection');
  const VHeld = r.hold(BN * D);
  pointwise(r, `${attn}.q_scale`, 'projection', 'Q / dh^¼', { other_pointwise_elems: BN * D }, BN * D);
  const QHeld = r.hold(BN * D);
  conv2d(r, {
    path: `${attn}.Qlandmark_op`,
    images: mats,
    inC: dh,
    outC: dh,
    kernel: ratio,
    kernelW: ratioW,
    groups: 1,
    outH: lh,
    outW: lw,
    bias: false,
    category: 'conv2d_landmark',
    kind: 'landmark_conv',
    label: `landmark Conv2d(${dh}, k=${ratio === ratioW ? ratio : `${ratio}×${ratioW}`}, s=${ratio === ratioW ? ratio : `${ratio}×${ratioW}`}), shared by heads`,
  });
  layerNorm(r, `${attn}.Qnorm_act.0`, mats * m, dh, 'landmark_conv');
  pointwise(r, `${attn}.Qnorm_act.1`, 'landmark_conv', 'GELU (erf)', { gelu_erf_elems: mats * m * dh }, mats * m * dh);
  gaussianKernel(r, `${attn}.kernel_1`, 'K1', model.kernelMethod, mats, N, m, dh);
  r.release(QHeld);
  const K1Held = r.hold(mats * N * m);
  gaussianKernel(r, `${attn}.kernel_2`, 'K2', model.kernelMethod, mats, m, m, dh);
  const norm = stage.attention === 'soft_norm';
  newtonInverse(r, `${attn}.newton`, model.newton.variant, model.newton.maxIter, mats, m);
  if (norm) {
    pointwise(
      r,
      `${attn}.sym_norm`,
      'newton',
      'D^-½ · K2⁺ · D^-½',
      { other_pointwise_elems: mats * m + 2 * mats * m * m },
      mats * m * m,
    );
  }
  matmul(r, `${attn}.apply_K1_inv`, 'apply', 'T1 = K1·K2⁻¹', 'matmul_soft_apply', mats, N, m, m);
  const T1Held = r.hold(mats * N * m);
  matmul(r, `${attn}.apply_K1T_V`, 'apply', 'T2 = K1ᵀ·V', 'matmul_soft_apply', mats, m, N, dh);
  r.release(K1Held);
  matmul(r, `${attn}.apply_T1_T2`, 'apply', 'X = T1·T2', 'matmul_soft_apply', mats, N, m, dh);
  r.release(T1Held);
  const XHeld = r.hold(BN * D);
  conv2d(r, {
    path: `${attn}.conv`,
    images: B * dh,
    inC: h,
    outC: h,
    kernel: stage.localConvKernel,
    groups: h,
    outH: s.gridH,
    outW: s.gridW,
    bias: false,
    category: 'conv2d_local_dwconv',
    kind: 'dwconv',
    label: `depthwise Conv2d(${h} heads, k=${stage.localConvKernel}) on V`,
  });
  pointwise(r, `${attn}.conv_residual`, 'dwconv', 'X + DWConv(V)', { other_pointwise_elems: BN * D }, BN * D);
  r.release(XHeld);
  r.release(VHeld);
  linear(r, `${base}.ff`, BN, D, D, 'linear_attn_proj', 'projection');
}

/** Softmax attention (PVT `Attention`; `softmax_sr` reduces K/V spatially by sr_ratio). */
function softmaxAttention(
  r: Recorder,
  base: string,
  stage: StageSpec,
  s: AttentionShape,
  spatialReduction: boolean,
): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const N = s.tokens;
  const sr = spatialReduction ? stage.srRatio : 1;
  let kvTokens = N;
  linear(r, `${base}.q`, B * N, D, D, 'linear_attn_proj', 'projection');
  const qHeld = r.hold(B * N * D);
  if (sr > 1) {
    const rh = Math.floor(s.gridH / sr);
    const rw = Math.floor(s.gridW / sr);
    kvTokens = rh * rw;
    conv2d(r, {
      path: `${base}.sr`,
      images: B,
      inC: D,
      outC: D,
      kernel: sr,
      groups: 1,
      outH: rh,
      outW: rw,
      bias: true,
      category: 'conv2d_other',
      kind: 'projection',
      label: `spatial-reduction Conv2d(${D}, k=${sr}, s=${sr})`,
    });
    layerNorm(r, `${base}.norm`, B * kvTokens, D, 'projection');
  }
  linear(r, `${base}.kv`, B * kvTokens, D, 2 * D, 'linear_attn_proj', 'projection');
  const scores = B * h * N * kvTokens;
  const kvHeld = r.hold(B * kvTokens * 2 * D);
  matmul(r, `${base}.qk`, 'softmax_attention', 'Q·Kᵀ', 'matmul_softmax_attn', B * h, N, dh, kvTokens);
  const scoresHeld = r.hold(scores);
  pointwise(r, `${base}.scale`, 'softmax_attention', '× dh^-½', { other_pointwise_elems: scores }, scores);
  pointwise(r, `${base}.softmax`, 'softmax_attention', 'softmax', { softmax_elems: scores }, scores);
  r.release(qHeld);
  matmul(r, `${base}.av`, 'softmax_attention', 'A·V', 'matmul_softmax_attn', B * h, N, kvTokens, dh);
  r.release(scoresHeld);
  r.release(kvHeld);
  linear(r, `${base}.proj`, B * N, D, D, 'linear_attn_proj', 'projection');
}

/** UFO attention as the seed implementation (docs/MATHS.md §5.3): XNorm(Q)·XNorm(KᵀV). */
function ufoAttention(r: Recorder, base: string, stage: StageSpec, s: AttentionShape, queries: number): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const N = s.tokens;
  linear(r, `${base}.fc_q`, B * queries, D, D, 'linear_attn_proj', 'projection');
  linear(r, `${base}.fc_k`, B * N, D, D, 'linear_attn_proj', 'projection');
  linear(r, `${base}.fc_v`, B * N, D, D, 'linear_attn_proj', 'projection');
  const gamma = r.tensor(`${base}.gamma`, [1, h, 1, 1]);
  matmul(r, `${base}.kv`, 'ufo_attention', 'KᵀV', 'matmul_ufo', B * h, dh, N, dh);
  pointwise(
    r,
    `${base}.xnorm_kv`,
    'ufo_attention',
    'XNorm(KᵀV)',
    { other_pointwise_elems: 3 * B * h * dh * dh + B * h * dh },
    B * h * dh * dh,
  );
  pointwise(
    r,
    `${base}.xnorm_q`,
    'ufo_attention',
    'XNorm(Q)',
    { other_pointwise_elems: 3 * B * queries * D + B * h * queries },
    B * queries * D,
  );
  r.op({ path: `${base}.gamma`, kind: 'ufo_attention', label: 'γ per head', params: gamma, outputElems: 0 });
  matmul(r, `${base}.apply`, 'ufo_attention', 'XNorm(Q)·XNorm(KᵀV)', 'matmul_ufo', B * h, queries, dh, dh);
  linear(r, `${base}.fc_o`, B * queries, D, D, 'linear_attn_proj', 'projection');
}

/** Dispatch on the stage's attention kind. `base` is the attention module's state_dict path. */
export function attentionWalk(r: Recorder, base: string, stage: StageSpec, model: ModelSpec, s: AttentionShape): void {
  switch (stage.attention) {
    case 'soft':
    case 'soft_norm':
      softAttention(r, base, stage, model, s);
      return;
    case 'softmax':
      softmaxAttention(r, base, stage, s, false);
      return;
    case 'softmax_sr':
      softmaxAttention(r, base, stage, s, true);
      return;
    case 'ufo':
      ufoAttention(r, base, stage, s, s.tokens);
      return;
    case 'performer':
      performerAttentionWalk(r, base, stage, model, s, performerSettings(stage, model));
      return;
    case 'nystrom': {
      const [ratio, ratioW] = landmarkStrides(stage, s.gridH, s.gridW);
      nystromAttentionWalk(r, base, stage, model, s, { ratio, ratioW, ...nystromSettings(stage, model) });
      return;
    }
    case 'linformer':
      linformerAttentionWalk(r, base, stage, model, s, { k: linformerK(stage, model, s.gridH, s.gridW) });
      return;
  }
}

/** CaiT/XCiT class attention: only the cls token queries. UFO when the stage is UFO, softmax otherwise. */
export function classAttentionWalk(r: Recorder, base: string, stage: StageSpec, s: AttentionShape): void {
  if (stage.attention === 'ufo') {
    ufoAttention(r, base, stage, s, 1);
    return;
  }
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const T = s.tokens;
  linear(r, `${base}.q`, B, D, D, 'linear_attn_proj', 'projection');
  linear(r, `${base}.k`, B * T, D, D, 'linear_attn_proj', 'projection');
  linear(r, `${base}.v`, B * T, D, D, 'linear_attn_proj', 'projection');
  matmul(r, `${base}.qk`, 'softmax_attention', 'q_cls·Kᵀ', 'matmul_softmax_attn', B * h, 1, dh, T);
  pointwise(
    r,
    `${base}.softmax`,
    'softmax_attention',
    'softmax',
    { softmax_elems: B * h * T, other_pointwise_elems: B * h * T },
    B * h * T,
  );
  matmul(r, `${base}.av`, 'softmax_attention', 'A·V', 'matmul_softmax_attn', B * h, 1, T, dh);
  linear(r, `${base}.proj`, B, D, D, 'linear_attn_proj', 'projection');
}

/**
 * Performer FAVOR+ (server/core/engine/attention/performer.ts; docs/MATHS.md §6A), op for op as
 * the engine runs it. Per head, in MACs: 2·N·m·d for the features ω·x̂ of Q and K, N·m·d for
 * φ(K)ᵀV, N·m·d for φ(Q)·(φ(K)ᵀV) and N·m for D = φ(Q)·Σⱼφ(kⱼ): 4Nmd + Nm, plus the N·m adds of
 * Σⱼφ(kⱼ) and 2·N·m exps among the element-wise counts. ω is a constant, not a state_dict entry.
 */
export function performerAttentionWalk(
  r: Recorder,
  base: string,
  stage: StageSpec,
  _model: ModelSpec,
  s: AttentionShape,
  hyper: { features: number },
): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const N = s.tokens;
  const m = hyper.features;
  const mats = B * h;
  const feats = mats * N * m;
  linear(r, `${base}.q`, B * N, D, D, 'linear_attn_proj', 'projection');
  const qHeld = r.hold(B * N * D);
  linear(r, `${base}.kv`, B * N, D, 2 * D, 'linear_attn_proj', 'projection');
  const kvHeld = r.hold(2 * B * N * D);
  const held: ReturnType<Recorder['hold']>[] = [];
  for (const [name, isQuery] of [
    ['q', true],
    ['k', false],
  ] as const) {
    const path = `${base}.features_${name}`;
    pointwise(
      r,
      `${path}.normalise`,
      'performer_attention',
      `${name}̂ = ${name}·d^-¼, ‖${name}̂‖²/2`,
      { other_pointwise_elems: 2 * B * N * D + mats * N },
      B * N * D,
    );
    matmul(r, `${path}.project`, 'performer_attention', `ω·${name}̂`, 'matmul_performer_features', mats, N, dh, m);
    // Row max (and for keys the max over the rows), two subtractions, + ε, × m^-½.
    pointwise(
      r,
      `${path}.exp`,
      'performer_attention',
      `φ(${name}) = m^-½·(exp(ω·${name}̂ − ‖${name}̂‖²/2 − max) + ε)`,
      { exp_elems: feats, other_pointwise_elems: 5 * feats + (isQuery ? 0 : mats * N) },
      feats,
    );
    held.push(r.hold(feats));
  }
  r.release(qHeld);
  pointwise(r, `${base}.key_sum`, 'performer_attention', 'Σⱼ φ(kⱼ)', { other_pointwise_elems: feats }, mats * m);
  matmul(r, `${base}.denominator`, 'performer_attention', 'D = φ(Q)·Σⱼφ(kⱼ)', 'matmul_performer_apply', mats, N, m, 1);
  matmul(r, `${base}.context`, 'performer_attention', 'φ(K)ᵀ·V', 'matmul_performer_apply', mats, m, N, dh);
  r.release(held[1]!);
  r.release(kvHeld);
  matmul(r, `${base}.apply`, 'performer_attention', 'φ(Q)·(φ(K)ᵀV)', 'matmul_performer_apply', mats, N, m, dh);
  r.release(held[0]!);
  pointwise(
    r,
    `${base}.normalise_out`,
    'performer_attention',
    '× D⁻¹',
    { other_pointwise_elems: mats * N + B * N * D },
    B * N * D,
  );
  linear(r, `${base}.proj`, B * N, D, D, 'linear_attn_proj', 'projection');
}

/**
 * Nyströmformer on the token grid (server/core/engine/attention/nystrom.ts; docs/MATHS.md §6.1,
 * §6A). Per head, in MACs, m = ⌊H/r⌋·⌊W/r⌋ landmarks: N·m·d (Q·K̃ᵀ) + m²·d (Q̃·K̃ᵀ) + m·N·d (Q̃·Kᵀ)
 * for the kernels; N·m² (F·Z) + m·N·d (B·V) + N·m·d ((FZ)·(BV)) to apply them: 4Nmd + Nm² + m²d;
 * 4m³ per inverse iteration (A·Z and three products), 24m³ for 6; and the conv skip, k²·N·d
 * (grid) or c·N·d (sequence). The average pooling is element-wise work (sums), not MACs.
 */
export function nystromAttentionWalk(
  r: Recorder,
  base: string,
  stage: StageSpec,
  _model: ModelSpec,
  s: AttentionShape,
  hyper: {
    ratio: number;
    /** Pooling stride along the columns when not `ratio` (a fixed landmark grid on a rectangular grid). */
    ratioW?: number;
    iterations: number;
    conv: { kind: 'grid' | 'sequence'; kernel: number } | { kind: 'none' };
  },
): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const N = s.gridH * s.gridW;
  const BN = B * N;
  const mats = B * h;
  const { ratio, iterations } = hyper;
  const ratioW = hyper.ratioW ?? ratio;
  const lh = Math.floor(s.gridH / ratio);
  const lw = Math.floor(s.gridW / ratioW);
  const m = lh * lw;
  const pooled = mats * lh * ratio * lw * ratioW * dh;
  linear(r, `${base}.q`, BN, D, D, 'linear_attn_proj', 'projection');
  const qHeld = r.hold(BN * D);
  linear(r, `${base}.kv`, BN, D, 2 * D, 'linear_attn_proj', 'projection');
  const kvHeld = r.hold(2 * BN * D);
  pointwise(r, `${base}.qk_scale`, 'projection', 'Q, K / d^¼', { other_pointwise_elems: 2 * BN * D }, 2 * BN * D);
  pointwise(
    r,
    `${base}.landmarks`,
    'nystrom_attention',
    `Q̃, K̃ = ${ratio}×${ratioW} average pooling`,
    { other_pointwise_elems: 2 * (pooled + mats * m * dh) },
    2 * mats * m * dh,
  );
  const kernel = (name: string, label: string, rows: number, cols: number) => {
    matmul(r, `${base}.${name}`, 'nystrom_attention', label, 'matmul_nystrom_attn', mats, rows, dh, cols);
    pointwise(
      r,
      `${base}.${name}_softmax`,
      'nystrom_attention',
      'softmax',
      { softmax_elems: mats * rows * cols },
      mats * rows * cols,
    );
  };
  kernel('kernel_1', 'F = softmax(Q·K̃ᵀ)', N, m);
  const fHeld = r.hold(mats * N * m);
  kernel('kernel_2', 'A = softmax(Q̃·K̃ᵀ)', m, m);
  kernel('kernel_3', 'B = softmax(Q̃·Kᵀ)', m, N);
  r.release(qHeld);
  const bHeld = r.hold(mats * m * N);
  const sq = mats * m * m;
  pointwise(
    r,
    `${base}.inverse.init`,
    'nystrom_inverse',
    'Z₀ = Aᵀ / (max column sum · max row sum), over the batch',
    { other_pointwise_elems: 5 * sq + 2 },
    sq,
  );
  r.op({
    path: `${base}.inverse.iterations`,
    kind: 'nystrom_inverse',
    label: `${iterations} iterations × (A·Z and three products)`,
    category: 'matmul_nystrom_inverse',
    macs: iterations * 4 * mats * m * m * m,
    outputElems: sq,
  });
  pointwise(
    r,
    `${base}.inverse.updates`,
    'nystrom_inverse',
    `${iterations} × (7I −, 15I −, 13I −, ¼·Z)`,
    { other_pointwise_elems: iterations * 4 * sq },
    sq,
  );
  matmul(r, `${base}.apply_F_Z`, 'nystrom_attention', 'F·Z', 'matmul_nystrom_attn', mats, N, m, m);
  r.release(fHeld);
  const fzHeld = r.hold(mats * N * m);
  matmul(r, `${base}.apply_B_V`, 'nystrom_attention', 'B·V', 'matmul_nystrom_attn', mats, m, N, dh);
  r.release(bHeld);
  matmul(r, `${base}.apply`, 'nystrom_attention', '(F·Z)·(B·V)', 'matmul_nystrom_attn', mats, N, m, dh);
  r.release(fzHeld);
  const conv = hyper.conv;
  if (conv.kind === 'grid') {
    conv2d(r, {
      path: `${base}.conv`,
      images: B * dh,
      inC: h,
      outC: h,
      kernel: conv.kernel,
      groups: h,
      outH: s.gridH,
      outW: s.gridW,
      bias: false,
      category: 'conv2d_local_dwconv',
      kind: 'dwconv',
      label: `depthwise Conv2d(${h} heads, k=${conv.kernel}) on V`,
    });
  } else if (conv.kind === 'sequence') {
    const c = conv.kernel;
    const params = r.tensor(`${base}.conv.weight`, [h, 1, c, 1]);
    r.op({
      path: `${base}.conv`,
      kind: 'dwconv',
      label: `depthwise Conv2d(${h} heads, (${c}, 1)) on V along the tokens`,
      category: 'conv2d_local_dwconv',
      macs: BN * D * c,
      params,
      outputElems: BN * D,
      inputElems: BN * D,
    });
  }
  if (conv.kind !== 'none')
    pointwise(r, `${base}.conv_residual`, 'dwconv', 'X + conv(V)', { other_pointwise_elems: BN * D }, BN * D);
  r.release(kvHeld);
  linear(r, `${base}.proj`, BN, D, D, 'linear_attn_proj', 'projection');
}

/**
 * Linformer (server/core/engine/attention/linformer.ts; docs/MATHS.md §6A). Per head, in MACs:
 * k·N·d each for E·K and F·V (E, F: [k, N] learned, shared by the heads, recorded as
 * `linear_linformer_proj` with their parameters), N·k·d each for Q·(EK)ᵀ and softmax·(FV): 4Nkd.
 */
export function linformerAttentionWalk(
  r: Recorder,
  base: string,
  stage: StageSpec,
  _model: ModelSpec,
  s: AttentionShape,
  hyper: { k: number },
): void {
  const { dim: D, heads: h, headDim: dh } = stage;
  const B = s.batch;
  const N = s.tokens;
  const { k } = hyper;
  const mats = B * h;
  linear(r, `${base}.q`, B * N, D, D, 'linear_attn_proj', 'projection');
  const qHeld = r.hold(B * N * D);
  linear(r, `${base}.kv`, B * N, D, 2 * D, 'linear_attn_proj', 'projection');
  const kvHeld = r.hold(2 * B * N * D);
  const compressed: ReturnType<Recorder['hold']>[] = [];
  for (const [name, what] of [
    ['E', 'K'],
    ['F', 'V'],
  ] as const) {
    const params = r.tensor(`${base}.${name}`, [k, N]);
    r.op({
      path: `${base}.${name}`,
      kind: 'linformer_attention',
      label: `${name}·${what} (${N} tokens → ${k})`,
      category: 'linear_linformer_proj',
      macs: B * k * N * D,
      params,
      outputElems: B * k * D,
    });
    compressed.push(r.hold(B * k * D));
  }
  r.release(kvHeld);
  const scores = mats * N * k;
  matmul(r, `${base}.qk`, 'linformer_attention', 'Q·(EK)ᵀ', 'matmul_linformer_attn', mats, N, dh, k);
  const scoresHeld = r.hold(scores);
  pointwise(r, `${base}.scale`, 'linformer_attention', '× d^-½', { other_pointwise_elems: scores }, scores);
  pointwise(r, `${base}.softmax`, 'linformer_attention', 'softmax', { softmax_elems: scores }, scores);
  r.release(qHeld);
  matmul(r, `${base}.av`, 'linformer_attention', 'P·(FV)', 'matmul_linformer_attn', mats, N, k, dh);
  r.release(scoresHeld);
  for (const c of compressed) r.release(c);
  linear(r, `${base}.proj`, B * N, D, D, 'linear_attn_proj', 'projection');
}
