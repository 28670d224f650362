/**
 * The image pipeline for inference: a PNG, JPEG or WebP file in, the float32 NCHW tensor a
 * timm-trained model expects out, reproducing Pillow + torchvision (timm's eval transform)
 * so that logits match the Python reference. One job per file under ./image/:
 *
 *   header.ts     format by magic bytes, dimensions and EXIF orientation, pixel limit
 *   decode.ts     sharp (libvips) or pngjs/jpeg-js → RGB uint8, as Pillow's convert('RGB')
 *   orient.ts     optional EXIF orientation
 *   resample.ts   Pillow's bicubic/bilinear resize, bit-exact
 *   transform.ts  Resize → CenterCrop → ToTensor → Normalize
 */
import { ImageError } from './image/errors';
import { decodeImage, type DecodeOptions, type DecodedImage } from './image/decode';
import {
  evalTransform,
  toNormalizedTensor,
  type EvalTransformOptions,
  type ImageTensor,
  type TransformPlan,
} from './image/transform';

export { ImageError } from './image/errors';
export {
  sniffFormat,
  readImageHeader,
  checkPixelLimit,
  exifOrientation,
  type ImageFormat,
  type ImageHeader,
} from './image/header';
export {
  decodeImage,
  sharpStatus,
  DEFAULT_MAX_PIXELS,
  DEFAULT_MAX_BYTES,
  type DecodeOptions,
  type DecodedImage,
  type DecoderKind,
} from './image/decode';
export { applyOrientation } from './image/orient';
export { resample, type ResampleFilter } from './image/resample';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  DEFAULT_CROP_PCT,
  resizedOutputSize,
  planEvalTransform,
  resizeShorterSide,
  crop,
  toNormalizedTensor,
  evalTransform,
  type EvalTransformOptions,
  type NormalizeOptions,
  type TransformPlan,
  type ImageTensor,
} from './image/transform';
export type { RgbImage } from './image/types';

export interface ImageTensorOptions extends DecodeOptions, EvalTransformOptions {
  /**
   * 'eval' (default): timm's resize to floor(size / cropPct) and centre crop to size.
   * 'none': the decoded pixels as they are, only scaled and normalised (inputs already at the
   * model's resolution, such as the tiny reference model's 64×64 PNG); when `size` is given
   * the image must be size × size.
   */
  resize?: 'eval' | 'none';
}

export interface LoadedImageTensor extends ImageTensor {
  /** The decoded picture's facts (its pixels are left out to let them be collected). */
  image: Omit<DecodedImage, 'data'>;
  /** The resize and crop geometry; absent for resize 'none'. */
  plan?: TransformPlan;
}

/** Decodes an image file or buffer and turns it into a model input tensor. */
export async function loadImageTensor(
  input: string | Uint8Array,
  options: ImageTensorOptions = {},
): Promise<LoadedImageTensor> {
  const decoded = await decodeImage(input, options);
  const { data: _pixels, ...image } = decoded;
  if (options.resize === 'none') {
    if (options.size !== undefined && (decoded.width !== options.size || decoded.height !== options.size)) {
      throw new ImageError(
        decoded.file,
        `image is ${decoded.width}×${decoded.height}; without resizing the model needs exactly ${options.size}×${options.size}`,
      );
    }
    return { ...toNormalizedTensor(decoded, options), image };
  }
  const { plan, ...tensor } = evalTransform(decoded, options);
  return { ...tensor, image, plan };
}
