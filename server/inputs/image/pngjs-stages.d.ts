/**
 * Types for the pngjs 7 internals png-decode.ts composes (pngjs ships none for lib/): the
 * stages PNG.sync.read runs after its inflate (pngjs/lib/parser-sync.js), the Adam7 pass
 * geometry they walk, and its CRC-32.
 */

declare module 'pngjs/lib/interlace' {
  /** The Adam7 passes with at least one pixel, in order (index: the pass, 0–6). */
  export function getImagePasses(width: number, height: number): { width: number; height: number; index: number }[];
}

declare module 'pngjs/lib/filter-parse-sync' {
  /** The metadata pngjs' parser hands its stages ("bpp" is samples per pixel, not bits). */
  export interface PngjsBitmapInfo {
    width: number;
    height: number;
    depth: number;
    bpp: number;
    interlace: boolean;
    colorType: number;
    /** [r, g, b, a] per entry; read for colour type 3 only. */
    palette?: number[][];
    /** A grey or RGB tRNS colour: pngjs zeroes the pixels that match it. */
    transColor?: number[];
  }

  /** Undoes the per-row filters; throws on an unknown filter type or a short buffer. */
  export function process(inflated: Buffer, info: PngjsBitmapInfo): Buffer;
}

declare module 'pngjs/lib/bitmapper' {
  import type { PngjsBitmapInfo } from 'pngjs/lib/filter-parse-sync';
  /** Unfiltered rows (any bit depth, Adam7 or not) to RGBA: 8-bit in a Buffer, 16-bit in a Uint16Array. */
  export function dataToBitMap(unfiltered: Buffer, info: PngjsBitmapInfo): Buffer | Uint16Array;
}

declare module 'pngjs/lib/format-normaliser' {
  import type { PngjsBitmapInfo } from 'pngjs/lib/filter-parse-sync';
  /** Palette lookup, tRNS colour keying and (unless skipRescale) scaling to 8 bits. */
  function normalise(rgba: Buffer | Uint16Array, info: PngjsBitmapInfo, skipRescale?: boolean): Buffer | Uint16Array;
  export = normalise;
}

declare module 'pngjs/lib/crc' {
  class CrcCalculator {
    /** PNG's CRC-32, as a signed 32-bit integer. */
    static crc32(bytes: Uint8Array): number;
  }
  export = CrcCalculator;
}
