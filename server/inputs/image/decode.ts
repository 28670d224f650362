/**
 * PNG, JPEG and WebP files to 8-bit RGB, as Pillow's `Image.open(f).convert('RGB')` gives
 * them (what timm's loader does), with sharp (libvips) when it loads and pngjs / jpeg-js
 * otherwise (for PNG, pngjs' stages behind our own bounded inflate: png-decode.ts). sharp
 * only decodes here; resizing is ours (resample.ts), so the pixels a model sees do not
 * depend on libvips' resampler.
 *
 * Conversions, all as Pillow's convert('RGB'): alpha is dropped, not composited; greyscale
 * is copied to R, G and B; palettes are looked up (tRNS ignored); 16-bit samples keep their
 * high byte (Pillow's RGB;16B unpacker; for 16-bit greyscale Pillow saturates instead,
 * which we do not copy); 1/2/4-bit greyscale is scaled to 0–255. CMYK JPEGs (sharp path)
 * use Pillow's cmyk2rgb formula rather than an ICC transform. Embedded ICC profiles are
 * ignored, as Pillow ignores them. EXIF orientation is reported and, by default, not applied
 * (see orient.ts).
 *
 * Measured against Pillow 9.4 (test/image.test.ts): sharp is bit-exact on every fixture; the
 * JS fallback is bit-exact for PNG, while jpeg-js differs (no fancy chroma upsampling,
 * truncating colour conversion: up to ±32 levels at chroma edges, mean ≈ 1 level).
 */
import fs from 'node:fs';
import jpeg from 'jpeg-js';
import type SharpNamespace from 'sharp';
import { formatBytes, type BytesFormat } from '../../../protocol/format';
import { errorMessage } from '../../core/errors';
import { ImageError } from './errors';
import { checkPixelLimit, readImageHeader, type ImageFormat, type ImageHeader } from './header';
import { applyOrientation } from './orient';
import { decodePng } from './png-decode';
import type { RgbImage } from './types';

export type DecoderKind = 'sharp' | 'js';

export interface DecodeOptions {
  /** Name used in errors when the input is a buffer (a path names itself). Default "<buffer>". */
  name?: string;
  /** 'auto' (default): sharp when it loads, else the JS decoders. */
  decoder?: 'auto' | DecoderKind;
  /** Refuse images with more pixels than this, judged from the header. Default 100 megapixels. */
  maxPixels?: number;
  /** Refuse files larger than this many bytes before reading them. Default 256 MiB. */
  maxBytes?: number;
  /** Turn the image as its EXIF Orientation tag says. Default false, as timm/torchvision. */
  autoOrient?: boolean;
}

export interface DecodedImage extends RgbImage {
  file: string;
  format: ImageFormat;
  decoder: DecoderKind;
  /** EXIF Orientation tag in the file (1–8; 1 when there is none). */
  orientation: number;
  /** True when that orientation was applied (width and height are then the displayed ones). */
  oriented: boolean;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** File sizes in the too-large message: MiB with one decimal, however small or large. */
const IN_MIB: BytesFormat = { decimals: 1, smallest: 'MiB', largest: 'MiB' };

// ---------------------------------------------------------------------------------------
// sharp, loaded lazily: a missing or broken native binary must not break the module.

type Sharp = typeof SharpNamespace;
type SharpState = { ok: true; sharp: Sharp; version: string; libvips: string } | { ok: false; reason: string };
let sharpState: SharpState | undefined;

function loadSharp(): SharpState {
  if (!sharpState) {
    try {
      // A plain require: sharp is external in every bundle (esbuild.mjs), so it resolves
      // from node_modules at run time, and its failure is caught here.
      const sharp = require('sharp') as Sharp;
      sharpState = { ok: true, sharp, version: sharp.versions.sharp ?? '?', libvips: sharp.versions.vips };
    } catch (e) {
      // sharp's load error is a page of install advice; its first line says what failed.
      sharpState = { ok: false, reason: errorMessage(e).split('\n')[0] ?? 'unknown error' };
    }
  }
  return sharpState;
}

/** Whether sharp loads here, and why not. */
export function sharpStatus():
  { available: true; version: string; libvips: string } | { available: false; reason: string } {
  const s = loadSharp();
  return s.ok ? { available: true, version: s.version, libvips: s.libvips } : { available: false, reason: s.reason };
}

// ---------------------------------------------------------------------------------------

/** Decodes a file (by path) or an in-memory image to RGB. Bad input throws ImageError. */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  const file = typeof input === 'string' ? input : (options.name ?? '<buffer>');
  const bytes = typeof input === 'string' ? await readFileLimited(input, options.maxBytes ?? DEFAULT_MAX_BYTES) : input;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(Number.isInteger(maxPixels) && maxPixels > 0))
    throw new RangeError(`decodeImage: maxPixels must be a positive integer, got ${maxPixels}`);
  const header = readImageHeader(bytes, file);
  checkPixelLimit(header, maxPixels, file);

  const wanted = options.decoder ?? 'auto';
  const sharp = wanted === 'js' ? undefined : loadSharp();
  if (wanted === 'sharp' && sharp && !sharp.ok) throw new ImageError(file, `sharp did not load: ${sharp.reason}`);

  let rgb: RgbImage;
  let decoder: DecoderKind;
  if (sharp?.ok) {
    rgb = await decodeWithSharp(sharp.sharp, bytes, header, maxPixels, file);
    decoder = 'sharp';
  } else {
    if (header.format === 'webp') {
      throw new ImageError(
        file,
        sharp
          ? `WebP needs sharp, which did not load: ${sharp.reason}`
          : "WebP needs sharp, which was not used (decoder 'js' was requested)",
      );
    }
    rgb = decodeWithJs(bytes, header, file);
    decoder = 'js';
  }
  if (rgb.width !== header.width || rgb.height !== header.height) {
    throw new ImageError(
      file,
      `decoder gave ${rgb.width}×${rgb.height}, the header says ${header.width}×${header.height}`,
    );
  }
  const oriented = options.autoOrient === true && header.orientation !== 1;
  if (oriented) rgb = applyOrientation(rgb, header.orientation);
  return { ...rgb, file, format: header.format, decoder, orientation: header.orientation, oriented };
}

async function readFileLimited(path: string, maxBytes: number): Promise<Uint8Array> {
  try {
    const { size } = await fs.promises.stat(path);
    if (size > maxBytes) {
      throw new ImageError(
        path,
        `file too large: ${formatBytes(size, IN_MIB)}, over the limit of ${formatBytes(maxBytes, IN_MIB)}`,
      );
    }
    return await fs.promises.readFile(path);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(path, `cannot read the file: ${errorMessage(e)}`);
  }
}

// ---------------------------------------------------------------------------------------
// sharp

async function decodeWithSharp(
  sharp: Sharp,
  bytes: Uint8Array,
  header: ImageHeader,
  maxPixels: number,
  file: string,
): Promise<RgbImage> {
  const cmyk = header.jpegComponents === 4;
  try {
    // failOn 'error': truncated or corrupt data fails, libjpeg warnings (which Pillow also
    // ignores) do not. ignoreIcc: Pillow applies no colour management.
    let pipeline = sharp(bytes, {
      limitInputPixels: maxPixels,
      failOn: 'error',
      ignoreIcc: true,
      sequentialRead: true,
    });
    // CMYK: the raw inked values (pipeline and output both CMYK, so no ICC round trip),
    // converted below with Pillow's formula.
    if (cmyk) pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk');
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    // OutputInfo's typings lack depth, which sharp does set for raw output.
    const samples =
      (info as { depth?: string }).depth === 'ushort'
        ? highBytes(new Uint16Array(data.buffer, data.byteOffset, data.length / 2))
        : data;
    if (cmyk && info.channels === 4) return { width: info.width, height: info.height, data: cmykToRgb(samples) };
    return { width: info.width, height: info.height, data: toRgb(samples, info.channels, file) };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(
      file,
      `cannot decode ${header.format.toUpperCase()} with sharp: ${errorMessage(e)}${truncationHint(bytes, header)}`,
    );
  }
}

/**
 * Decoder messages for cut-off files are cryptic ("libpng read error", "marker was not
 * found"); when a decode fails and the file lacks its end marker, say so.
 */
function truncationHint(bytes: Uint8Array, header: ImageHeader): string {
  const n = bytes.length;
  if (header.format === 'png') {
    const iend = [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
    return iend.every((v, i) => bytes[n - 8 + i] === v)
      ? ''
      : ' (the file looks truncated: it does not end with an IEND chunk)';
  }
  if (header.format === 'jpeg') {
    // Some writers append bytes after the end-of-image marker, so look near the end.
    const tail = bytes.subarray(Math.max(0, n - 1024));
    for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return '';
    return ' (the file looks truncated: no end-of-image marker)';
  }
  return '';
}

/** 16-bit samples to 8 by keeping the high byte, as Pillow's 16-bit unpackers do. */
function highBytes(samples: Uint16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! >> 8;
  return out;
}

/** Pillow's cmyk2rgb (Convert.c): R = 255 − K − C·(255 − K)/255 with its MULDIV255 rounding. */
function cmykToRgb(cmyk: Uint8Array): Uint8Array {
  const n = cmyk.length / 4;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c]! * nk + 128;
      out[i * 3 + c] = Math.max(0, nk - (((t >> 8) + t) >> 8));
    }
  }
  return out;
}

/** Interleaved 1–4 channel samples (grey, grey+alpha, RGB, RGBA) to RGB; alpha dropped. */
function toRgb(samples: Uint8Array, channels: number, file: string): Uint8Array {
  if (channels === 3) return samples;
  if (channels < 1 || channels > 4) throw new ImageError(file, `unexpected ${channels}-channel image`);
  const n = samples.length / channels;
  const out = new Uint8Array(n * 3);
  const grey = channels <= 2;
  for (let i = 0, s = 0, o = 0; i < n; i++, s += channels, o += 3) {
    out[o] = samples[s]!;
    out[o + 1] = samples[grey ? s : s + 1]!;
    out[o + 2] = samples[grey ? s : s + 2]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// pngjs / jpeg-js

function decodeWithJs(bytes: Uint8Array, header: ImageHeader, file: string): RgbImage {
  try {
    if (header.format === 'png') {
      // 16-bit: take the raw samples (skipRescale) and keep the high byte ourselves;
      // pngjs' own rescale rounds v·255/65535, which is not what Pillow does.
      const png = decodePng(bytes, file, { skipRescale: header.bitDepth === 16 });
      const rgba = png.data instanceof Uint16Array ? highBytes(png.data) : png.data;
      return { width: png.width, height: png.height, data: toRgb(rgba, 4, file) };
    }
    const decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // Refuse truncated or corrupt data as Pillow and sharp do, instead of returning a
      // partly grey picture.
      tolerantDecoding: false,
      maxResolutionInMP: Math.ceil((header.width * header.height) / 1e6) + 1,
      // jpeg-js keeps every DCT block (4 bytes per coefficient and component): ~20 B/pixel.
      maxMemoryUsageInMB: Math.max(512, Math.ceil((header.width * header.height * 20) / 2 ** 20)),
    });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    const library = header.format === 'png' ? 'pngjs' : 'jpeg-js';
    throw new ImageError(
      file,
      `cannot decode ${header.format.toUpperCase()} with ${library}: ${errorMessage(e)}${truncationHint(bytes, header)}`,
    );
  }
}
