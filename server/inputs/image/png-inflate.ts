/**
 * A PNG's image data (the zlib stream its IDAT chunks carry) inflated with node's zlib,
 * bounded to exactly the bytes the header says the filtered scanlines take.
 *
 * This replaces pngjs' own inflate, which had two bugs: for interlaced images it sets no
 * output limit (a 259 KB file inflating to 256 MiB cost ~0.5 GiB of memory and a second
 * before pngjs refused it), and its sync inflate for the others ignores zlib errors and hands
 * back Buffer.allocUnsafe memory as scanlines (a garbage stream "decoded" half the time).
 */
import { constants as bufferConstants } from 'node:buffer';
import zlib from 'node:zlib';
import { getImagePasses } from 'pngjs/lib/interlace';
import { errorMessage } from '../../core/errors';
import type { PngColourType, PngIhdr } from './header';

/** Samples per pixel of each PNG colour type. */
export const PNG_CHANNELS: Readonly<Record<PngColourType, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const COLOUR_NAMES: Readonly<Record<PngColourType, string>> = {
  0: 'greyscale',
  2: 'RGB',
  3: 'palette',
  4: 'greyscale+alpha',
  6: 'RGBA',
};

/** "64×64 8-bit RGB interlaced PNG", for messages. */
export function describePng(ihdr: PngIhdr): string {
  return `${ihdr.width}×${ihdr.height} ${ihdr.bitDepth}-bit ${COLOUR_NAMES[ihdr.colourType]}${ihdr.interlaced ? ' interlaced' : ''} PNG`;
}

/**
 * Bytes the image data inflates to: per row a filter-type byte and the row's packed samples.
 * Adam7 stores seven reduced images (passes) one after another; pngjs' getImagePasses leaves
 * out the empty ones, as the format does, and is what its unfilter walks, so both agree.
 */
export function filteredSize(ihdr: PngIhdr): number {
  const bitsPerPixel = PNG_CHANNELS[ihdr.colourType] * ihdr.bitDepth;
  const passes = ihdr.interlaced
    ? getImagePasses(ihdr.width, ihdr.height)
    : [{ width: ihdr.width, height: ihdr.height }];
  return passes.reduce((sum, pass) => sum + pass.height * (1 + Math.ceil((pass.width * bitsPerPixel) / 8)), 0);
}

/**
 * The inflated image data, exactly filteredSize(ihdr) bytes. Throws an Error saying what is
 * wrong when the stream is corrupt or cut short (zlib's message), would inflate to more (the
 * decompression bomb case: zlib stops as soon as the limit is passed, so memory and time stay
 * bounded by the image's size), or inflates to less.
 */
export function inflateImageData(data: Uint8Array, ihdr: PngIhdr): Buffer {
  const expected = filteredSize(ihdr);
  if (expected > bufferConstants.MAX_LENGTH)
    throw new Error(`a ${describePng(ihdr)} needs ${expected} bytes of image data, more than a Buffer holds`);
  let inflated: Buffer;
  try {
    inflated = zlib.inflateSync(data, { maxOutputLength: expected });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(`IDAT inflates to more than the ${expected} bytes a ${describePng(ihdr)} needs`);
    }
    throw new Error(`IDAT zlib stream is corrupt: ${errorMessage(e)}`);
  }
  if (inflated.length !== expected) {
    throw new Error(
      `IDAT inflates to ${inflated.length} bytes, fewer than the ${expected} a ${describePng(ihdr)} needs`,
    );
  }
  return inflated;
}
