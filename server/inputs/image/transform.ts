/**
 * timm's evaluation transform (transforms_imagenet_eval, crop_mode 'center') as torchvision
 * runs it on a PIL image, step by step:
 *
 *   Resize(floor(size / crop_pct), BICUBIC)   shorter side; longer = int(s · long / short)
 *   CenterCrop(size)                           offsets int(round((H − size) / 2.0)), Python's
 *                                              round (half to even); zero padding if larger
 *   ToTensor()                                 uint8 → float32 / 255, HWC → CHW
 *   Normalize(mean, std)                       (x − mean) / std in float32
 *
 * Each float step is one IEEE float32 operation in torch; here it is computed in float64
 * and rounded once with Math.fround, which gives the same float32 (a double carries more
 * than 2·24 + 2 bits, so rounding twice cannot differ for +, −, ×, ÷).
 */
import { resample, type ResampleFilter } from './resample';
import type { RgbImage } from './types';

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];
/** timm's default crop_pct (DEFAULT_CROP_PCT). */
export const DEFAULT_CROP_PCT = 0.9;

export interface NormalizeOptions {
  /** Per-channel mean, in 0–1 units. Default ImageNet's. */
  mean?: readonly number[];
  /** Per-channel standard deviation. Default ImageNet's. */
  std?: readonly number[];
}

export interface EvalTransformOptions extends NormalizeOptions {
  /** Model input resolution r (square crop). Default 224. */
  size?: number;
  /** Fraction of the resized shorter side the crop keeps: resize to floor(r / cropPct). Default 0.9. */
  cropPct?: number;
  /** Default 'bicubic' (timm's default for ViTs). */
  interpolation?: ResampleFilter;
}

/** The geometry of one eval transform, enough to map model-input pixels back to the photo. */
export interface TransformPlan {
  size: number;
  /** floor(size / cropPct): the shorter side after resizing. */
  scaleSize: number;
  resizedWidth: number;
  resizedHeight: number;
  /** Crop origin in the resized image (negative when the crop is padded). */
  cropTop: number;
  cropLeft: number;
}

export interface ImageTensor {
  /** float32 NCHW, batch 1. */
  data: Float32Array;
  shape: [1, 3, number, number];
}

/** torchvision's _compute_resized_output_size for an int size (the shorter side): [w, h]. */
export function resizedOutputSize(width: number, height: number, size: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  // Python: int(size * long / short), an integer product then a float division, truncated.
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [size, newLong] : [newLong, size];
}

/** Python 3's round() for the halves that crop offsets produce: ties go to the even integer. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision F.center_crop's origin: int(round((H − size) / 2.0)), after its padding. */
function cropOrigin(length: number, size: number): number {
  if (size > length) return -Math.trunc((size - length) / 2); // padded by (size − length) // 2 before
  return roundHalfEven((length - size) / 2);
}

export function planEvalTransform(width: number, height: number, options: EvalTransformOptions = {}): TransformPlan {
  const size = options.size ?? 224;
  const cropPct = options.cropPct ?? DEFAULT_CROP_PCT;
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`eval transform: size must be a positive integer, got ${size}`);
  if (!(cropPct > 0)) throw new RangeError(`eval transform: cropPct must be > 0, got ${cropPct}`);
  const scaleSize = Math.floor(size / cropPct);
  if (scaleSize < 1) throw new RangeError(`eval transform: floor(${size} / ${cropPct}) is 0`);
  const [resizedWidth, resizedHeight] = resizedOutputSize(width, height, scaleSize);
  return {
    size,
    scaleSize,
    resizedWidth,
    resizedHeight,
    cropTop: cropOrigin(resizedHeight, size),
    cropLeft: cropOrigin(resizedWidth, size),
  };
}

/** torchvision Resize(size) on a PIL image: shorter side to `size`, Pillow's resampler. */
export function resizeShorterSide(img: RgbImage, size: number, interpolation: ResampleFilter = 'bicubic'): RgbImage {
  const [w, h] = resizedOutputSize(img.width, img.height, size);
  return w === img.width && h === img.height ? img : resample(img, w, h, interpolation);
}

/**
 * A width × height window of an RGB image at (left, top); pixels outside the image are 0,
 * which is torchvision's zero padding when the crop is larger than the image.
 */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, img.width - left);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height || x1 <= x0) continue;
    const from = (sy * img.width + left + x0) * 3;
    out.set(img.data.subarray(from, from + (x1 - x0) * 3), (y * width + x0) * 3);
  }
  return { width, height, data: out };
}

/** ToTensor + Normalize: RGB uint8 HWC → float32 NCHW (batch 1), torch's float32 arithmetic. */
export function toNormalizedTensor(img: RgbImage, options: NormalizeOptions = {}): ImageTensor {
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  if (mean.length !== 3 || std.length !== 3) throw new RangeError('normalize: mean and std need 3 values (R, G, B)');
  const plane = img.width * img.height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // torch.as_tensor(mean, dtype=float32): the constants are float32 too.
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    if (s === 0) throw new RangeError('normalize: std is 0');
    // Only 256 distinct inputs per channel: a lookup table keeps the exact arithmetic cheap.
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    const base = c * plane;
    for (let i = 0; i < plane; i++) data[base + i] = table[img.data[i * 3 + c]!]!;
  }
  return { data, shape: [1, 3, img.height, img.width] };
}

/** The whole timm eval transform on a decoded image. */
export function evalTransform(
  img: RgbImage,
  options: EvalTransformOptions = {},
): ImageTensor & { plan: TransformPlan } {
  const plan = planEvalTransform(img.width, img.height, options);
  const resized = resizeShorterSide(img, plan.scaleSize, options.interpolation ?? 'bicubic');
  const cropped = crop(resized, plan.cropLeft, plan.cropTop, plan.size, plan.size);
  return { ...toNormalizedTensor(cropped, options), plan };
}
