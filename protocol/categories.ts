/**
 * The vocabulary of the profile's figures on the wire: multiply–accumulate categories,
 * element-wise counts, the coarse op kinds the charts group by, and the counting conventions.
 * Category names follow the reference instrumentation of the official code
 * (fixtures/ref/flops.json) so figures compare one to one. What each convention adds up lives
 * with the profile (server/core/profile/categories.ts).
 */

/** Multiply–accumulate categories (1 MAC = one multiply + one add). */
export const MAC_CATEGORIES = [
  'conv2d_patch_embed',
  'conv2d_landmark',
  'conv2d_local_dwconv',
  'conv2d_other',
  'linear_attn_proj',
  'linear_mlp',
  'linear_head',
  'matmul_gauss_qk',
  'matmul_gauss_sqnorm_q',
  'matmul_gauss_sqnorm_k',
  'matmul_newton',
  'matmul_soft_apply',
  'matmul_softmax_attn',
  'matmul_ufo',
  'matmul_performer_features',
  'matmul_performer_apply',
  'matmul_nystrom_attn',
  'matmul_nystrom_inverse',
  'matmul_linformer_attn',
  'linear_linformer_proj',
] as const;
export type MacCategory = (typeof MAC_CATEGORIES)[number];

/** Element-wise counts: numbers of output elements, never converted into MACs. */
export const ELEMENTWISE_KINDS = [
  'layernorm_elems',
  'batchnorm_elems',
  'gelu_erf_elems',
  'approx_gelu_tanh_elems',
  'relu_elems',
  'exp_elems',
  'softmax_elems',
  'interpolate_out_elems',
  'conv2d_bias_adds',
  'linear_bias_adds',
  'other_pointwise_elems',
] as const;
export type ElementwiseKind = (typeof ELEMENTWISE_KINDS)[number];

/** Coarse op kinds for charts and tables (what a user thinks in). */
export const OP_KINDS = [
  'stem',
  'pos_embed',
  'projection',
  'landmark_conv',
  'gaussian_kernel',
  'newton',
  'apply',
  'dwconv',
  'softmax_attention',
  'ufo_attention',
  'performer_attention',
  'nystrom_attention',
  'nystrom_inverse',
  'linformer_attention',
  'ffn',
  'norm',
  'head',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

export const CONVENTIONS = ['A', 'B', 'C', 'D', 'E'] as const;
export type Convention = (typeof CONVENTIONS)[number];
