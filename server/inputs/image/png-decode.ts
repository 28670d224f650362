/**
 * A PNG to RGBA samples without sharp. The chunks are read here (CRCs checked), the image
 * data is inflated by png-inflate.ts with a bound, and pngjs' own stages do the rest:
 * unfilter, bitmapper (bit depths, Adam7) and format-normaliser (palette lookup, scaling of
 * 1/2/4-bit samples). That is how PNG.sync.read composes them (pngjs/lib/parser-sync.js),
 * minus its inflate, which is unbounded for interlaced images and ignores zlib errors.
 */
import { dataToBitMap } from 'pngjs/lib/bitmapper';
import CrcCalculator from 'pngjs/lib/crc';
import * as filterParse from 'pngjs/lib/filter-parse-sync';
import normaliseFormat from 'pngjs/lib/format-normaliser';
import { pngIhdr, walkPngChunks, type PngChunk } from './header';
import { PNG_CHANNELS, inflateImageData } from './png-inflate';

export interface PngSamples {
  width: number;
  height: number;
  /** RGBA: 8-bit samples, or for a 16-bit PNG read with skipRescale the 16-bit ones. */
  data: Uint8Array | Uint16Array;
}

/** The critical chunks pngjs reads; any other (uppercase first letter) carries data we cannot use. */
const KNOWN_CRITICAL = ['IHDR', 'PLTE', 'IDAT', 'IEND'];

/**
 * Decodes a PNG whose header readImageHeader accepted. skipRescale keeps 16-bit samples as
 * they are (pngjs would round them to 8 bits). Problems in the data throw an Error saying
 * what and where, for the caller to wrap into an ImageError.
 */
export function decodePng(bytes: Uint8Array, file: string, options: { skipRescale: boolean }): PngSamples {
  const { chunks, cut } = walkPngChunks(bytes, ['IEND']);
  if (cut) {
    throw new Error(
      cut.type === undefined
        ? `the file ends at byte ${cut.at}, before an IEND chunk`
        : `the file ends inside the ${JSON.stringify(cut.type)} chunk at byte ${cut.at}`,
    );
  }
  for (const chunk of chunks) checkChunk(bytes, chunk);
  const ihdr = pngIhdr(bytes, chunks[0], file);
  // No transColor although a tRNS chunk may give one: pngjs zeroes the whole pixel (colour
  // included) that matches it, while Pillow keeps the colour; alpha is dropped anyway.
  const info = {
    width: ihdr.width,
    height: ihdr.height,
    depth: ihdr.bitDepth,
    bpp: PNG_CHANNELS[ihdr.colourType],
    interlace: ihdr.interlaced,
    colorType: ihdr.colourType,
    palette: ihdr.colourType === 3 ? readPalette(bytes, chunks) : undefined,
  };
  const inflated = inflateImageData(imageData(bytes, chunks), ihdr);
  const rgba = normaliseFormat(dataToBitMap(filterParse.process(inflated, info), info), info, options.skipRescale);
  return { width: ihdr.width, height: ihdr.height, data: rgba };
}

/** Refuses a chunk whose CRC does not match (as pngjs and Pillow do) or that we cannot read. */
function checkChunk(bytes: Uint8Array, chunk: PngChunk): void {
  const where = `the ${JSON.stringify(chunk.type)} chunk at byte ${chunk.start}`;
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(chunk.end - 4);
  if (CrcCalculator.crc32(bytes.subarray(chunk.start + 4, chunk.end - 4)) >>> 0 !== stored)
    throw new Error(`CRC mismatch in ${where}`);
  const critical = (chunk.type.charCodeAt(0) & 0x20) === 0;
  if (critical && !KNOWN_CRITICAL.includes(chunk.type)) throw new Error(`unknown critical chunk: ${where}`);
}

/** The PLTE entries as pngjs keeps them, [r, g, b, 255] (tRNS alpha is not needed). */
function readPalette(bytes: Uint8Array, chunks: PngChunk[]): number[][] {
  const plte = chunks.find((c) => c.type === 'PLTE');
  if (!plte) throw new Error('a palette PNG without a PLTE chunk');
  const palette: number[][] = [];
  for (let p = plte.dataStart; p + 3 <= plte.dataStart + plte.dataLength; p += 3)
    palette.push([bytes[p]!, bytes[p + 1]!, bytes[p + 2]!, 255]);
  return palette;
}

/** The zlib stream: the IDAT chunks' data joined (a view when there is only one). */
function imageData(bytes: Uint8Array, chunks: PngChunk[]): Uint8Array {
  const parts = chunks
    .filter((c) => c.type === 'IDAT')
    .map((c) => bytes.subarray(c.dataStart, c.dataStart + c.dataLength));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
