/**
 * EXIF orientation, applied in plain JS on decoded RGB so that both decoders (sharp and the
 * pure-JS fallback) turn a picture the same way. Off by default: timm and torchvision load
 * with `Image.open(f).convert('RGB')`, which ignores the tag, and the model was evaluated on
 * pixels as stored. The mapping is Pillow's ImageOps.exif_transpose.
 */
import type { RgbImage } from './types';

/**
 * Source pixel (x, y) of output pixel (ox, oy) for each orientation; w, h are the stored
 * (input) width and height. 5–8 swap the axes.
 */
const SOURCE: Record<number, (ox: number, oy: number, w: number, h: number) => [number, number]> = {
  2: (ox, oy, w) => [w - 1 - ox, oy], // mirror left-right
  3: (ox, oy, w, h) => [w - 1 - ox, h - 1 - oy], // rotate 180°
  4: (ox, oy, _w, h) => [ox, h - 1 - oy], // mirror top-bottom
  5: (ox, oy) => [oy, ox], // transpose
  6: (ox, oy, _w, h) => [oy, h - 1 - ox], // rotate 90° clockwise
  7: (ox, oy, w, h) => [w - 1 - oy, h - 1 - ox], // transverse
  8: (ox, oy, w) => [w - 1 - oy, ox], // rotate 90° counter-clockwise
};

/** The image as it should be displayed for an EXIF orientation (1 or unknown: unchanged). */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  const source = SOURCE[orientation];
  if (!source) return img;
  const { width: w, height: h, data } = img;
  const swap = orientation >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(ow * oh * 3);
  let o = 0;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++, o += 3) {
      const [x, y] = source(ox, oy, w, h);
      const i = (y * w + x) * 3;
      out[o] = data[i]!;
      out[o + 1] = data[i + 1]!;
      out[o + 2] = data[i + 2]!;
    }
  }
  return { width: ow, height: oh, data: out };
}
