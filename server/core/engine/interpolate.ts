/**
 * Bilinear resizing of a positional-embedding grid as PyTorch's
 * `F.interpolate(mode='bilinear', align_corners=False)` with an explicit output size does it
 * (docs/MATHS.md §2.2), written as constant matrices on the op set, so every runtime runs it as
 * plain matmuls and no resize op is needed.
 *
 * Bilinear interpolation is separable: PyTorch blends along x first, then along y, which is
 * Ry · P · Rxᵀ per channel with two 1-D weight matrices. Two small matmuls keep the constants
 * at out×in each; the equivalent single (H·W)×(g·g) Kronecker matrix would be 3136² floats for a
 * 56² grid, far too big to embed in an ONNX model.
 */
import type { Graph, Tensor } from './graph';

/**
 * The [outSize, inSize] row-major matrix R with out = R · in along one axis, for
 * align_corners=False: scale = in/out; src = max(0, scale·(y + ½) − ½); i0 = ⌊src⌋,
 * i1 = min(i0 + 1, in − 1); weights 1 − (src − i0) and src − i0. The clamp at 0 is PyTorch's
 * edge rule (no antialiasing when downsampling, as PyTorch's default). Equal sizes give the
 * identity exactly (src = y).
 */
export function bilinearMatrix(inSize: number, outSize: number): Float64Array {
  if (!(inSize >= 1 && outSize >= 1)) throw new Error(`bilinearMatrix: sizes ${inSize} → ${outSize}`);
  const r = new Float64Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let y = 0; y < outSize; y++) {
    const src = Math.max(0, scale * (y + 0.5) - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const w1 = src - i0;
    r[y * inSize + i0]! += 1 - w1;
    r[y * inSize + i1]! += w1;
  }
  return r;
}

/**
 * `grid` [gh, gw, C] (row-major tokens y·gw + x, channels last, as a pos_embed's rows) resized to
 * [outH·outW, C]. An axis whose size is unchanged is skipped: its matrix is the identity.
 */
export function resizeBilinearTokens(g: Graph, grid: Tensor, outH: number, outW: number, label = 'pos_embed'): Tensor {
  const [gh, gw, c] = grid.shape as [number, number, number];
  if (grid.shape.length !== 3) throw new Error(`resizeBilinearTokens: expected [gh, gw, C], got [${grid.shape}]`);
  let t = grid;
  if (gw !== outW) {
    // [outW, gw] × [gh, gw, C] → [gh, outW, C]: the same x-weights for every row y.
    t = g.matmul(g.constant(bilinearMatrix(gw, outW), [outW, gw], `${label}.resize_x_${gw}to${outW}`), t);
  }
  if (gh !== outH) {
    const rows = g.reshape(t, [gh, outW * c]);
    t = g.matmul(g.constant(bilinearMatrix(gh, outH), [outH, gh], `${label}.resize_y_${gh}to${outH}`), rows);
  }
  return g.reshape(t, [outH * outW, c]);
}
