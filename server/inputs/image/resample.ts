/**
 * Pillow's `Image.resize(size, BICUBIC | BILINEAR)` for 8-bit RGB, bit for bit: a port of
 * ImagingResample (src/libImaging/Resample.c, unchanged in substance since Pillow 5).
 * timm's eval transform resizes PIL images with it, so any other resampler (libvips,
 * tf.image, a textbook bicubic) shifts every pixel a little and the logits with them.
 *
 * The algorithm: separable, horizontal pass first, then vertical; each pass is skipped when
 * its dimension does not change (so the order matters: each pass rounds to 8 bits). Per
 * output sample, a filter of support `support · max(scale, 1)` (antialiasing when
 * shrinking) is evaluated in float64 at the input pixel centres, normalised to sum 1, then
 * turned into 22-bit fixed point; sums start at ½ and are shifted back and clipped to
 * 0–255 (clip8). The horizontal pass only runs over the rows the vertical pass will read.
 */
import type { RgbImage } from './types';

export type ResampleFilter = 'bicubic' | 'bilinear';

interface Filter {
  support: number;
  kernel(x: number): number;
}

/** Pillow's bicubic_filter: Keys' cubic convolution with a = −0.5, same operation order. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  bicubic: { support: 2, kernel: bicubic },
  bilinear: { support: 1, kernel: bilinear },
};

/** 8 bits of result, 2 bits of headroom for negative lobes and overshoot: 22 fraction bits. */
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Coefficients {
  /** Coefficients per output sample (the maximum; unused tails are 0). */
  ksize: number;
  /** Per output sample: first input index and number of taps. */
  bounds: Int32Array;
  /** outSize × ksize fixed-point coefficients. */
  kk: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the whole-image box [0, inSize). */
function precomputeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts to int (truncation toward zero) before clamping.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.kernel((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the fixed-point sum back to 0–255 (arithmetic shift, then clamp). */
function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/** Horizontal pass over input rows [rowFirst, rowFirst + rows) of an RGB image. */
function resampleHorizontal(
  src: Uint8Array,
  srcWidth: number,
  rowFirst: number,
  rows: number,
  outWidth: number,
  c: Coefficients,
): Uint8Array {
  const { ksize, bounds, kk } = c;
  const out = new Uint8Array(outWidth * rows * 3);
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = (y + rowFirst) * srcWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const taps = bounds[xx * 2 + 1]!;
      const k0 = xx * ksize;
      let p = row + bounds[xx * 2]! * 3;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < taps; x++, p += 3) {
        const k = kk[k0 + x]!;
        s0 += src[p]! * k;
        s1 += src[p + 1]! * k;
        s2 += src[p + 2]! * k;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}

/**
 * Vertical pass. Whole rows are accumulated at a time (cache-friendly); each sum still adds
 * the taps in Pillow's order, in int32 like the C code, so the result is identical.
 */
function resampleVertical(src: Uint8Array, width: number, outHeight: number, c: Coefficients): Uint8Array {
  const { ksize, bounds, kk } = c;
  const rowLength = width * 3;
  const out = new Uint8Array(rowLength * outHeight);
  const acc = new Int32Array(rowLength);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]!;
    const taps = bounds[yy * 2 + 1]!;
    acc.fill(HALF);
    for (let y = 0; y < taps; y++) {
      const k = kk[yy * ksize + y]!;
      if (k === 0) continue;
      const row = (ymin + y) * rowLength;
      for (let i = 0; i < rowLength; i++) acc[i] = acc[i]! + src[row + i]! * k;
    }
    const o = yy * rowLength;
    for (let i = 0; i < rowLength; i++) out[o + i] = clip8(acc[i]!);
  }
  return out;
}

/** Resizes an RGB image exactly as Pillow's Image.resize((width, height), filter) does. */
export function resample(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resample: target size must be positive integers, got ${width}×${height}`);
  }
  const f = FILTERS[filter];
  const needHorizontal = width !== img.width;
  const needVertical = height !== img.height;
  if (!needHorizontal && !needVertical) return { width, height, data: img.data.slice() };

  const vert = precomputeCoefficients(img.height, height, f);
  let data = img.data;
  if (needHorizontal) {
    // Only the rows the vertical pass reads; its bounds are then relative to the first one.
    const first = vert.bounds[0]!;
    const last = vert.bounds[(height - 1) * 2]! + vert.bounds[(height - 1) * 2 + 1]!;
    for (let i = 0; i < height; i++) vert.bounds[i * 2] = vert.bounds[i * 2]! - first;
    data = resampleHorizontal(data, img.width, first, last - first, width, precomputeCoefficients(img.width, width, f));
  }
  if (needVertical) data = resampleVertical(data, width, height, vert);
  return { width, height, data };
}
