/**
 * What each counting convention adds up, and how the conventions are labelled. The category
 * names themselves are wire vocabulary (protocol/categories.ts).
 */

import type { Convention, MacCategory } from '../../../protocol/categories';

const CONV_LINEAR: MacCategory[] = [
  'conv2d_patch_embed',
  'conv2d_landmark',
  'conv2d_local_dwconv',
  'conv2d_other',
  'linear_attn_proj',
  'linear_mlp',
  'linear_head',
  // Linformer's E and F: learned linear maps along the tokens (fairseq's compress_k/compress_v are nn.Linear).
  'linear_linformer_proj',
];
const APPLY: MacCategory[] = [
  'matmul_soft_apply',
  'matmul_softmax_attn',
  'matmul_ufo',
  'matmul_performer_apply',
  'matmul_nystrom_attn',
  'matmul_linformer_attn',
];
// Performer's random-feature products ω·x̂ play the part of SOFT's distance matmuls (C); Nyströmformer's
// iterative inverse that of the Newton iterations (E).
const KERNEL: MacCategory[] = ['matmul_gauss_qk', 'matmul_performer_features'];

/** Categories each convention adds up, cumulatively. */
export const CONVENTION_CATEGORIES: Record<Convention, readonly MacCategory[]> = {
  A: CONV_LINEAR,
  B: [...CONV_LINEAR, ...APPLY],
  C: [...CONV_LINEAR, ...APPLY, ...KERNEL],
  D: [...CONV_LINEAR, ...APPLY, ...KERNEL, 'matmul_gauss_sqnorm_q', 'matmul_gauss_sqnorm_k'],
  E: [
    ...CONV_LINEAR,
    ...APPLY,
    ...KERNEL,
    'matmul_gauss_sqnorm_q',
    'matmul_gauss_sqnorm_k',
    'matmul_newton',
    'matmul_nystrom_inverse',
  ],
};

export const CONVENTION_LABELS: Record<Convention, string> = {
  A: 'conv + linear',
  B: '+ attention apply matmuls (SOFT K1·K2⁻¹·K1ᵀV, softmax QKᵀ/AV, UFO KᵀV, Performer, Nyström, Linformer)',
  C: '+ Gaussian-kernel q·k (distance) matmuls and Performer random features',
  D: '+ squared-norm matmuls of the torch distance path',
  E: '+ Newton–Raphson and Nyström inverse iterations (everything)',
};

/** The convention the official README's "FLOPs" are closest to (flops.json: −1.6 % … +2.8 %). */
export const README_CONVENTION: Convention = 'B';
export const README_CONVENTION_NOTE =
  'The SOFT README\'s "GFLOPs" are multiply–accumulates (GMACs) and closest to convention B (conv + linear + attention apply matmuls, no Gaussian-kernel distances, no Newton). FLOPs = 2 × MACs.';
