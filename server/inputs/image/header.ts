/**
 * What the first bytes of an image file say, read without decoding it: the format (by magic
 * bytes, never the extension), the pixel dimensions and the EXIF orientation tag.
 *
 * The dimensions are what stops decompression bombs: a 50 KB PNG can declare 100000×100000
 * pixels (30 GB as RGB), so the pixel limit is checked here, before any decoder allocates.
 * sharp gets the same limit (limitInputPixels) as a second line; pngjs and jpeg-js have
 * nothing that runs early enough, so for them this parse is the guard against huge
 * dimensions (a PNG's image data is then bounded by png-inflate.ts).
 */
import { ImageError } from './errors';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** EXIF Orientation tag (1–8); 1 when the file has none or it is unreadable. */
  orientation: number;
  /** PNG: bits per sample (1, 2, 4, 8, 16); JPEG: sample precision; WebP: 8. */
  bitDepth: number;
  /** JPEG only: components in the frame (1 grey, 3 YCbCr, 4 CMYK/YCCK). */
  jpegComponents?: number;
}

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  return sig.every((v, i) => b[at + i] === v);
}

function ascii(b: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...b.subarray(at, at + length));
}

/** The format of an image by its magic bytes; undefined for anything else. */
export function sniffFormat(b: Uint8Array): ImageFormat | undefined {
  if (startsWith(b, PNG_SIGNATURE)) return 'png';
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  return undefined;
}

/** Names other common formats, so the refusal says what the file is rather than "unknown". */
function otherFormatName(b: Uint8Array): string | undefined {
  const head = ascii(b, 0, Math.min(b.length, 16));
  if (head.startsWith('GIF87a') || head.startsWith('GIF89a')) return 'GIF';
  if (head.startsWith('BM')) return 'BMP';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*')) return 'TIFF';
  if (head.startsWith('8BPS')) return 'Photoshop (PSD)';
  if (head.startsWith('%PDF')) return 'PDF';
  if (startsWith(b, [0xff, 0x0a]) || head.startsWith('\0\0\0\x0cJXL ')) return 'JPEG XL';
  if (head.startsWith('\0\0\0\x0cjP  ')) return 'JPEG 2000';
  if (startsWith(b, [0, 0, 1, 0])) return 'ICO';
  if (head.slice(4, 8) === 'ftyp') {
    const brand = head.slice(8, 12);
    if (brand === 'avif' || brand === 'avis') return 'AVIF';
    if (['heic', 'heix', 'hevc', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'HEIF/HEIC';
  }
  if (/^(\uFEFF|\xEF\xBB\xBF)?\s*</.test(head)) return 'SVG/XML/HTML text';
  return undefined;
}

function hexHead(b: Uint8Array): string {
  return Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Format, dimensions and orientation of an image in memory. Throws ImageError for empty
 * input, another or unknown format, a header cut short, or impossible dimensions.
 */
export function readImageHeader(b: Uint8Array, file: string): ImageHeader {
  if (b.length === 0) throw new ImageError(file, 'empty file (0 bytes)');
  const format = sniffFormat(b);
  if (!format) {
    const other = otherFormatName(b);
    throw new ImageError(
      file,
      other
        ? `${other} images are not supported; use PNG, JPEG or WebP`
        : `not a PNG, JPEG or WebP image (first bytes: ${hexHead(b)})`,
    );
  }
  const header = format === 'png' ? pngHeader(b, file) : format === 'jpeg' ? jpegHeader(b, file) : webpHeader(b, file);
  if (!(header.width > 0 && header.height > 0)) {
    throw new ImageError(file, `invalid ${format.toUpperCase()} header: ${header.width}×${header.height} pixels`);
  }
  return header;
}

/** Refuses an image whose declared size exceeds maxPixels (before anything is decoded). */
export function checkPixelLimit(header: ImageHeader, maxPixels: number, file: string): void {
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new ImageError(
      file,
      `image too large: ${header.width}×${header.height} = ${(pixels / 1e6).toFixed(1)} megapixels, ` +
        `over the limit of ${(maxPixels / 1e6).toFixed(1)} megapixels (possible decompression bomb)`,
    );
  }
}

function truncated(file: string, format: string, what: string): ImageError {
  return new ImageError(file, `truncated ${format} file: it ends inside ${what}`);
}

// ---------------------------------------------------------------------------------------
// PNG

export interface PngChunk {
  type: string;
  /** Offset of the chunk's length field. */
  start: number;
  /** Offset just past its CRC. */
  end: number;
  dataStart: number;
  dataLength: number;
}

/** The chunks of a PNG in file order, and where the walk ran out of bytes if it did. */
export interface PngChunkWalk {
  chunks: PngChunk[];
  /** Set when the file ends inside a chunk, or before one of the `last` types was reached. */
  cut?: { at: number; type?: string };
}

/**
 * Walks a PNG's chunks from the signature on, stopping after the first chunk whose type is in
 * `last` or where the bytes run out. Only lengths are read: no CRC or content is checked.
 */
export function walkPngChunks(b: Uint8Array, last: readonly string[]): PngChunkWalk {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const chunks: PngChunk[] = [];
  let p: number = PNG_SIGNATURE.length;
  for (;;) {
    if (p + 8 > b.length) return { chunks, cut: { at: p } };
    const dataLength = dv.getUint32(p);
    const type = ascii(b, p + 4, 4);
    const end = p + 12 + dataLength;
    if (end > b.length) return { chunks, cut: { at: p, type } };
    chunks.push({ type, start: p, end, dataStart: p + 8, dataLength });
    if (last.includes(type)) return { chunks };
    p = end;
  }
}

/**
 * The chunks of a PNG up to and including the first IDAT (the metadata chunks that matter
 * here, IHDR, tRNS and eXIf, all precede it). Throws when a chunk runs past the end.
 */
export function pngChunksBeforeData(b: Uint8Array, file: string): PngChunk[] {
  const { chunks, cut } = walkPngChunks(b, ['IDAT', 'IEND']);
  if (cut?.type !== undefined) throw truncated(file, 'PNG', `the ${JSON.stringify(cut.type)} chunk at byte ${cut.at}`);
  if (cut) throw truncated(file, 'PNG', chunks.length ? 'the chunk list before the image data' : 'the IHDR chunk');
  return chunks;
}

export type PngColourType = 0 | 2 | 3 | 4 | 6;

/** The IHDR fields, checked against what the PNG specification allows. */
export interface PngIhdr {
  width: number;
  height: number;
  bitDepth: number;
  colourType: PngColourType;
  interlaced: boolean;
}

const PNG_BIT_DEPTHS: Record<PngColourType, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** Reads and checks the IHDR chunk, which must be the PNG's first (`chunk`). */
export function pngIhdr(b: Uint8Array, chunk: PngChunk | undefined, file: string): PngIhdr {
  if (!chunk || chunk.type !== 'IHDR' || chunk.dataLength !== 13) {
    throw new ImageError(file, 'corrupt PNG: the first chunk is not a 13-byte IHDR');
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const at = chunk.dataStart;
  const bitDepth = b[at + 8] ?? 0;
  const colourType = b[at + 9] ?? 0;
  if (!(colourType in PNG_BIT_DEPTHS) || !PNG_BIT_DEPTHS[colourType as PngColourType].includes(bitDepth)) {
    throw new ImageError(file, `corrupt PNG: colour type ${colourType} with bit depth ${bitDepth} does not exist`);
  }
  // Only method 0 exists for compression and filtering, and 0 or 1 (Adam7) for interlacing;
  // the JS decoder's size arithmetic (png-inflate.ts) assumes them.
  const [compression, filter, interlace] = [b[at + 10] ?? 0, b[at + 11] ?? 0, b[at + 12] ?? 0];
  if (compression !== 0) throw new ImageError(file, `corrupt PNG: unknown compression method ${compression}`);
  if (filter !== 0) throw new ImageError(file, `corrupt PNG: unknown filter method ${filter}`);
  if (interlace > 1) throw new ImageError(file, `corrupt PNG: unknown interlace method ${interlace}`);
  return {
    width: dv.getUint32(at),
    height: dv.getUint32(at + 4),
    bitDepth,
    colourType: colourType as PngColourType,
    interlaced: interlace === 1,
  };
}

function pngHeader(b: Uint8Array, file: string): ImageHeader {
  const chunks = pngChunksBeforeData(b, file);
  const ihdr = pngIhdr(b, chunks[0], file);
  if (chunks[chunks.length - 1]?.type !== 'IDAT') throw new ImageError(file, 'corrupt PNG: no image data (IDAT) chunk');
  const exif = chunks.find((c) => c.type === 'eXIf');
  return {
    format: 'png',
    width: ihdr.width,
    height: ihdr.height,
    bitDepth: ihdr.bitDepth,
    orientation: exif ? exifOrientation(b.subarray(exif.dataStart, exif.dataStart + exif.dataLength)) : 1,
  };
}

// ---------------------------------------------------------------------------------------
// JPEG

/** Start-of-frame markers: C0–CF except DHT (C4), JPG (C8) and DAC (CC). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Walks the marker segments up to the first scan; the frame header gives the size. */
function jpegHeader(b: Uint8Array, file: string): ImageHeader {
  let p = 2;
  let frame: { width: number; height: number; precision: number; components: number } | undefined;
  let orientation = 1;
  let exifSeen = false;
  for (;;) {
    if (p + 2 > b.length)
      throw truncated(
        file,
        'JPEG',
        frame ? 'the headers before the first scan' : 'the headers before the frame header',
      );
    if (b[p] !== 0xff)
      throw new ImageError(file, `corrupt JPEG: expected a marker at byte ${p}, found 0x${(b[p] ?? 0).toString(16)}`);
    const marker = b[p + 1] ?? 0;
    // 0xFF fill bytes may precede a marker; RSTn, TEM and SOI stand alone (no length).
    if (marker === 0xff) {
      p += 1;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    if (marker === 0xd9) throw new ImageError(file, 'corrupt JPEG: end-of-image marker before any image data');
    if (p + 4 > b.length) throw truncated(file, 'JPEG', `the segment at byte ${p}`);
    const length = ((b[p + 2] ?? 0) << 8) | (b[p + 3] ?? 0);
    if (length < 2) throw new ImageError(file, `corrupt JPEG: segment length ${length} at byte ${p}`);
    const end = p + 2 + length;
    if (end > b.length)
      throw truncated(file, 'JPEG', `the 0xFF${marker.toString(16).toUpperCase()} segment at byte ${p}`);
    if (marker === 0xda) {
      if (!frame) throw new ImageError(file, 'corrupt JPEG: scan data before the frame header');
      return {
        format: 'jpeg',
        width: frame.width,
        height: frame.height,
        bitDepth: frame.precision,
        jpegComponents: frame.components,
        orientation,
      };
    }
    if (isStartOfFrame(marker) && !frame) {
      if (length < 8) throw new ImageError(file, 'corrupt JPEG: frame header too short');
      frame = {
        precision: b[p + 4] ?? 0,
        height: ((b[p + 5] ?? 0) << 8) | (b[p + 6] ?? 0),
        width: ((b[p + 7] ?? 0) << 8) | (b[p + 8] ?? 0),
        components: b[p + 9] ?? 0,
      };
      if (frame.height === 0)
        throw new ImageError(file, 'JPEG whose height is only given after the scan (DNL marker) is not supported');
      if (frame.precision !== 8)
        throw new ImageError(file, `${frame.precision}-bit JPEG is not supported (8-bit only)`);
    }
    // The first APP1 segment that starts with "Exif\0\0" carries the TIFF block.
    if (marker === 0xe1 && !exifSeen && length >= 8 && ascii(b, p + 4, 6) === 'Exif\0\0') {
      exifSeen = true;
      orientation = exifOrientation(b.subarray(p + 10, end));
    }
    p = end;
  }
}

// ---------------------------------------------------------------------------------------
// WebP

/** RIFF container: the first chunk (VP8, VP8L or VP8X) gives the size; VP8X may add EXIF. */
function webpHeader(b: Uint8Array, file: string): ImageHeader {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const riffEnd = 8 + dv.getUint32(4, true);
  if (riffEnd > b.length)
    throw truncated(file, 'WebP', `the RIFF container (it declares ${riffEnd} bytes, the file has ${b.length})`);
  if (b.length < 30) throw truncated(file, 'WebP', 'the first chunk');
  const first = ascii(b, 12, 4);
  const base = { format: 'webp' as const, bitDepth: 8 };
  if (first === 'VP8 ') {
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (!startsWith(b, [0x9d, 0x01, 0x2a], 23)) throw new ImageError(file, 'corrupt WebP: bad VP8 start code');
    return { ...base, width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff, orientation: 1 };
  }
  if (first === 'VP8L') {
    if (b[20] !== 0x2f) throw new ImageError(file, 'corrupt WebP: bad VP8L signature');
    const bits = dv.getUint32(21, true);
    return { ...base, width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, orientation: 1 };
  }
  if (first === 'VP8X') {
    const width = 1 + (dv.getUint16(24, true) | ((b[26] ?? 0) << 16));
    const height = 1 + (dv.getUint16(27, true) | ((b[29] ?? 0) << 16));
    let orientation = 1;
    // Chunks are padded to an even length.
    for (let p = 12; p + 8 <= riffEnd;) {
      const size = dv.getUint32(p + 4, true);
      if (ascii(b, p, 4) === 'EXIF' && p + 8 + size <= riffEnd) {
        orientation = exifOrientation(b.subarray(p + 8, p + 8 + size));
        break;
      }
      p += 8 + size + (size & 1);
    }
    return { ...base, width, height, orientation };
  }
  throw new ImageError(file, `corrupt WebP: unknown first chunk ${JSON.stringify(first)}`);
}

// ---------------------------------------------------------------------------------------
// EXIF

/**
 * The Orientation tag (0x0112) of IFD0 in an EXIF TIFF block; 1 when absent or malformed
 * (a bad EXIF block must not stop a picture from loading). Accepts the block with or
 * without the "Exif\0\0" prefix, which some PNG and WebP writers keep.
 */
export function exifOrientation(block: Uint8Array): number {
  const b = block.length >= 6 && ascii(block, 0, 6) === 'Exif\0\0' ? block.subarray(6) : block;
  if (b.length < 8) return 1;
  const little = b[0] === 0x49 && b[1] === 0x49;
  if (!little && !(b[0] === 0x4d && b[1] === 0x4d)) return 1;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint16(2, little) !== 42) return 1;
  const ifd = dv.getUint32(4, little);
  if (ifd + 2 > b.length) return 1;
  const count = dv.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > b.length) return 1;
    if (dv.getUint16(e, little) !== 0x0112) continue;
    const type = dv.getUint16(e + 2, little);
    const value = type === 3 ? dv.getUint16(e + 8, little) : type === 4 ? dv.getUint32(e + 8, little) : 0;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}
