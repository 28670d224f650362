/**
 * The model's input as a picture, and that picture with an attention map over it, as PNG data
 * URLs: the normalised NCHW tensor turned back into 8-bit RGB (x·std + mean, ×255, rounded),
 * so the overlay sits on exactly the pixels the model saw (after resize and crop). The
 * dashboard draws its own interactive overlays; this one is for places that can only show an
 * image (the hover on an `images:` entry).
 */
import { PNG } from 'pngjs';
import type { AttentionMap } from '../../../protocol/infer';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../inputs/image';

/** RGBA pixels of batch item `item` of a normalised [B, 3, H, W] tensor. */
function inputPixels(tensor: Float32Array, item: number, height: number, width: number): PNG {
  const png = new PNG({ width, height });
  const plane = height * width;
  const base = item * 3 * plane;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = (tensor[base + c * plane + p]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!) * 255;
      png.data[p * 4 + c] = Math.max(0, Math.min(255, Math.round(v)));
    }
    png.data[p * 4 + 3] = 255;
  }
  return png;
}

const dataUrl = (png: PNG) => `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;

export function inputPreviewPng(tensor: Float32Array, item: number, height: number, width: number): string {
  return dataUrl(inputPixels(tensor, item, height, width));
}

/** Dark purple → red → yellow (an inferno-like ramp: ordered by lightness, readable without hue). */
const RAMP = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

function ramp(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP[i]!;
  const b = RAMP[i + 1]!;
  return [0, 1, 2].map((c) => a[c]! + f * (b[c]! - a[c]!)) as [number, number, number];
}

/**
 * The input with the head-averaged map blended over it (min → max of the map, nearest-cell
 * upsampling, 55 % opacity) and the query cell outlined in white.
 */
export function overlayPng(
  tensor: Float32Array,
  item: number,
  height: number,
  width: number,
  map: AttentionMap,
): string {
  const png = inputPixels(tensor, item, height, width);
  const { h: kh, w: kw } = map.keyGrid;
  const lo = Math.min(...map.mean);
  const hi = Math.max(...map.mean);
  const span = hi - lo || 1;
  const alpha = 0.55;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = Math.min(kh - 1, Math.floor((y * kh) / height)) * kw + Math.min(kw - 1, Math.floor((x * kw) / width));
      const [r, g, b] = ramp((map.mean[k]! - lo) / span);
      const o = (y * width + x) * 4;
      png.data[o] = Math.round((1 - alpha) * png.data[o]! + alpha * r);
      png.data[o + 1] = Math.round((1 - alpha) * png.data[o + 1]! + alpha * g);
      png.data[o + 2] = Math.round((1 - alpha) * png.data[o + 2]! + alpha * b);
    }
  }
  if (map.query !== 'cls') {
    const { row, col } = map.query;
    const [y0, y1] = [Math.floor((row * height) / map.grid.h), Math.ceil(((row + 1) * height) / map.grid.h) - 1];
    const [x0, x1] = [Math.floor((col * width) / map.grid.w), Math.ceil(((col + 1) * width) / map.grid.w) - 1];
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++) {
        if (y !== y0 && y !== y1 && x !== x0 && x !== x1) continue;
        png.data.fill(255, (y * width + x) * 4, (y * width + x) * 4 + 3);
      }
  }
  return dataUrl(png);
}
