/**
 * The inference image pipeline (server/inputs/image*) against Pillow 9.4 + torch 1.13:
 * fixtures/images/refs.json and chelsea_224.bin are written by scripts/make-image-refs.py.
 * Decoding (sharp and the pngjs/jpeg-js fallback), Pillow's resampler (bit-exact), timm's
 * eval transform, the tiny model's no-resize path, ImageNet labels and top-k, hostile input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import {
  ImageError,
  applyOrientation,
  crop,
  decodeImage,
  evalTransform,
  loadImageTensor,
  planEvalTransform,
  resample,
  resizeShorterSide,
  resizedOutputSize,
  sharpStatus,
  type DecoderKind,
  type RgbImage,
} from '../server/inputs/image';
import { IMAGENET_CLASSES, classLabel, softmax, topK } from '../server/inputs/imagenet';
import { mobilenetClassList } from '../scripts/copy-imagenet-classes';
import { FIXTURES, ROOT } from './helpers/fixtures';

const IMAGES = path.join(FIXTURES, 'images');

type Samples = [number, number][];
interface DecodeRef {
  format: string;
  mode: string;
  width: number;
  height: number;
  sha256: string;
  exif_orientation?: number;
  transposed_sha256?: string;
}
interface ResizeRef {
  source: string;
  width: number;
  height: number;
  interpolation: 'bicubic' | 'bilinear';
  sha256: string;
  samples: Samples;
}
interface EvalRef {
  image: string;
  size: number;
  crop_pct: number;
  interpolation: 'bicubic' | 'bilinear';
  scale_size: number;
  resized: { width: number; height: number; sha256: string; samples: Samples };
  crop_top: number;
  crop_left: number;
  cropped_sha256: string;
  tensor_channel_sums: number[];
  tensor_samples: Samples;
  tensor_bin?: string;
}
interface OrientationImage {
  width: number;
  height: number;
  data: number[];
}
interface Refs {
  decode: Record<string, DecodeRef>;
  orientations: Record<string, OrientationImage>;
  resize: ResizeRef[];
  eval: EvalRef[];
}

const refs = JSON.parse(fs.readFileSync(path.join(IMAGES, 'refs.json'), 'utf8')) as Refs;
const JPEGS = Object.keys(refs.decode).filter((f) => refs.decode[f]!.format === 'JPEG');
const PNGS = Object.keys(refs.decode).filter((f) => refs.decode[f]!.format === 'PNG');
const WEBPS = Object.keys(refs.decode).filter((f) => refs.decode[f]!.format === 'WEBP');

const sha256 = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');
const fixture = (name: string): string => path.join(IMAGES, name);

function readFloat32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function maxSampleDiff(data: ArrayLike<number>, samples: Samples): number {
  let max = 0;
  for (const [i, v] of samples) max = Math.max(max, Math.abs(data[i]! - v));
  return max;
}

/** The synthetic picture scripts/make-image-refs.py's pattern() builds, from the same formula. */
function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const checker = ((Math.floor(x / 7) + Math.floor(y / 11)) % 2) * 90;
        data[(y * width + x) * 3 + c] = (x * 3 + y * 5 + c * 71 + ((x * y) % 251) + checker) % 256;
      }
    }
  }
  return { width, height, data };
}

const paeth = (a: number, b: number, c: number): number => {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** Adam7 passes as [x0, y0, dx, dy]; a plain image is one "pass" of every pixel. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * A PNG of any colour type and bit depth, Adam7-interlaced or not, whose rows cycle through
 * the five filter types and whose zlib stream is split over 50-byte IDAT chunks.
 */
function variantPng(width: number, height: number, colourType: number, depth: number, interlaced: boolean): Buffer {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colourType]!;
  const bytesPerPixel = Math.max(1, (channels * depth) >> 3);
  const scanlines: number[] = [];
  let rowIndex = 0;
  for (const [x0, y0, dx, dy] of interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const)) {
    if (x0 >= width) continue;
    let previous: number[] = [];
    for (let y = y0; y < height; y += dy) {
      const row: number[] = [];
      let acc = 0;
      let bits = 0;
      for (let x = x0; x < width; x += dx) {
        for (let c = 0; c < channels; c++) {
          acc = acc * 2 ** depth + ((x * 37 + y * 101 + c * 59 + x * y) % 2 ** depth);
          for (bits += depth; bits >= 8; acc %= 2 ** bits) row.push(Math.floor(acc / 2 ** (bits -= 8)));
        }
      }
      if (bits) row.push(acc << (8 - bits));
      const filter = rowIndex++ % 5;
      scanlines.push(
        filter,
        ...row.map((v, i) => {
          const [a, b, c] = [row[i - bytesPerPixel] ?? 0, previous[i] ?? 0, previous[i - bytesPerPixel] ?? 0];
          return (v - [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter]!) & 255;
        }),
      );
      previous = row;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, colourType, 0, 0, interlaced ? 1 : 0], 8);
  const palette =
    colourType === 3
      ? [
          pngChunk(
            'PLTE',
            Uint8Array.from({ length: 3 << depth }, (_, i) => (i * 53) & 255),
          ),
        ]
      : [];
  const zlibStream = zlib.deflateSync(Uint8Array.from(scanlines));
  const idats = Array.from({ length: Math.ceil(zlibStream.length / 50) }, (_, i) =>
    pngChunk('IDAT', zlibStream.subarray(i * 50, i * 50 + 50)),
  );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...palette,
    ...idats,
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** Decodes of every fixture with one decoder, shared by the tests below. */
const decoded = new Map<string, RgbImage>();
async function decodedWith(name: string, decoder: DecoderKind): Promise<RgbImage> {
  const key = `${decoder}:${name}`;
  let img = decoded.get(key);
  if (!img) {
    img = await decodeImage(fixture(name), { decoder });
    decoded.set(key, img);
  }
  return img;
}

// ---------------------------------------------------------------------------------------

describe('decode', () => {
  test('sharp loads here', () => {
    const s = sharpStatus();
    assert.ok(s.available, `sharp: ${s.available ? '' : s.reason}`);
  });

  test('sharp equals Pillow convert("RGB") byte for byte on every fixture (PNG, JPEG, WebP, CMYK, 16-bit, palette, alpha)', async () => {
    for (const [name, ref] of Object.entries(refs.decode)) {
      const img = await decodeImage(fixture(name), { decoder: 'sharp' });
      assert.equal(img.decoder, 'sharp');
      assert.equal(img.format, ref.format.toLowerCase() as 'png' | 'jpeg' | 'webp', name);
      assert.deepEqual([img.width, img.height], [ref.width, ref.height], name);
      assert.equal(sha256(img.data), ref.sha256, `${name} (${ref.mode}) differs from Pillow`);
    }
  });

  test('pngjs fallback equals Pillow byte for byte on every PNG', async () => {
    for (const name of PNGS) {
      const img = await decodedWith(name, 'js');
      assert.equal(img.width, refs.decode[name]!.width);
      assert.equal(
        sha256(img.data),
        refs.decode[name]!.sha256,
        `${name} (${refs.decode[name]!.mode}) differs from Pillow`,
      );
    }
  });

  test('pngjs fallback equals sharp on every colour type and bit depth, Adam7-interlaced or not, at sizes with empty passes', async () => {
    // The fixtures are none of them interlaced, palette or greyscale below 8 bits; these are.
    const kinds: [number, number][] = [
      [0, 1],
      [0, 2],
      [0, 4],
      [0, 8],
      [0, 16],
      [2, 8],
      [2, 16],
      [3, 1],
      [3, 2],
      [3, 4],
      [3, 8],
      [4, 8],
      [4, 16],
      [6, 8],
      [6, 16],
    ];
    for (const [colourType, depth] of kinds) {
      for (const [width, height] of [
        [1, 1],
        [3, 5],
        [9, 17],
        [33, 2],
      ] as const) {
        for (const interlaced of [false, true]) {
          const name = `type ${colourType}, ${depth}-bit, ${width}×${height}${interlaced ? ', interlaced' : ''}`;
          const png = variantPng(width, height, colourType, depth, interlaced);
          const [sharp, js] = await Promise.all([
            decodeImage(png, { name, decoder: 'sharp' }),
            decodeImage(png, { name, decoder: 'js' }),
          ]);
          assert.equal(sha256(js.data), sha256(sharp.data), name);
        }
      }
    }
  });

  test('jpeg-js fallback: within the measured tolerance of Pillow/sharp (no fancy upsampling, truncating YCbCr→RGB)', async () => {
    // Measured: coffee.jpg max 32 levels (chroma edges), mean 1.12, p99 8; the 63×47 colour
    // fixtures max 9–14, mean ~1.15; greyscale and CMYK (no chroma subsampling) max 1.
    for (const name of JPEGS) {
      const reference = await decodedWith(name, 'sharp');
      const img = await decodedWith(name, 'js');
      assert.deepEqual([img.width, img.height], [reference.width, reference.height]);
      const diffs = Array.from(img.data, (v, i) => Math.abs(v - reference.data[i]!)).sort((a, b) => a - b);
      const mean = diffs.reduce((s, d) => s + d, 0) / diffs.length;
      const p99 = diffs[Math.floor(diffs.length * 0.99)]!;
      const max = diffs[diffs.length - 1]!;
      const chroma = refs.decode[name]!.mode === 'RGB';
      assert.ok(mean <= (chroma ? 1.5 : 0.1), `${name}: mean |diff| ${mean.toFixed(3)}`);
      assert.ok(p99 <= (chroma ? 10 : 1), `${name}: p99 |diff| ${p99}`);
      assert.ok(max <= (chroma ? 40 : 1), `${name}: max |diff| ${max}`);
    }
  });

  test('WebP without sharp is a clear ImageError', async () => {
    for (const name of WEBPS) {
      await assert.rejects(decodeImage(fixture(name), { decoder: 'js' }), (e: unknown) => {
        assert.ok(e instanceof ImageError);
        assert.equal(e.file, fixture(name));
        assert.match(e.message, /WebP needs sharp/);
        return true;
      });
    }
  });

  test('EXIF orientation: reported, not applied by default (as timm); autoOrient matches ImageOps.exif_transpose', async () => {
    for (const [name, ref] of Object.entries(refs.decode)) {
      const decoders: DecoderKind[] = ref.format === 'WEBP' ? ['sharp'] : ['sharp', 'js'];
      for (const decoder of decoders) {
        const plain = await decodedWith(name, decoder);
        const info = await decodeImage(fixture(name), { decoder, autoOrient: true });
        assert.equal(info.orientation, ref.exif_orientation ?? 1, `${name} orientation`);
        assert.equal(info.oriented, (ref.exif_orientation ?? 1) !== 1);
        // jpeg-js pixels differ from Pillow's anyway (see above); every other decode is exact.
        const exact = decoder === 'sharp' || ref.format === 'PNG';
        if (ref.transposed_sha256 && exact)
          assert.equal(sha256(info.data), ref.transposed_sha256, `${name} transposed (${decoder})`);
        if (ref.exif_orientation && ref.exif_orientation >= 5)
          assert.deepEqual([info.width, info.height], [plain.height, plain.width]);
      }
    }
  });

  test('applyOrientation reproduces exif_transpose for all eight orientations', () => {
    const source = refs.orientations.source!;
    const img = { width: source.width, height: source.height, data: Uint8Array.from(source.data) };
    for (let o = 1; o <= 8; o++) {
      const want = refs.orientations[String(o)]!;
      const got = applyOrientation(img, o);
      assert.deepEqual(
        [got.width, got.height, Array.from(got.data)],
        [want.width, want.height, want.data],
        `orientation ${o}`,
      );
    }
  });

  test('without a loadable sharp, auto mode falls back to pngjs/jpeg-js and WebP says why', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-nosharp-'));
    try {
      // Preloaded before tsx: every require('sharp') fails as a missing native binary would.
      fs.writeFileSync(
        path.join(dir, 'nosharp.cjs'),
        "const M = require('module'); const load = M._load;\n" +
          "M._load = function (request, ...rest) { if (request === 'sharp') throw new Error('simulated: sharp-linux-x64.node missing'); return load.call(this, request, ...rest); };\n",
      );
      const script = path.join(dir, 'probe.ts');
      fs.writeFileSync(
        script,
        `import { decodeImage, sharpStatus } from ${JSON.stringify(path.join(ROOT, 'server', 'inputs', 'image.ts'))};\n` +
          "import { createHash } from 'node:crypto';\n" +
          // No top-level await: tsx compiles a .ts file outside an ESM package as CommonJS.
          'void (async () => {\n' +
          '  const out: Record<string, unknown> = { status: sharpStatus() };\n' +
          `  const png = await decodeImage(${JSON.stringify(fixture('chelsea.png'))});\n` +
          "  out.png = { decoder: png.decoder, sha: createHash('sha256').update(png.data).digest('hex') };\n" +
          `  try { await decodeImage(${JSON.stringify(fixture('astronaut.webp'))}); } catch (e) { out.webp = (e as Error).message; }\n` +
          `  try { await decodeImage(${JSON.stringify(fixture('chelsea.png'))}, { decoder: 'sharp' }); } catch (e) { out.forced = (e as Error).message; }\n` +
          '  console.log(JSON.stringify(out));\n' +
          '})();\n',
      );
      const r = spawnSync(process.execPath, ['-r', path.join(dir, 'nosharp.cjs'), '--import', 'tsx', script], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        status: { available: boolean; reason: string };
        png: { decoder: string; sha: string };
        webp: string;
        forced: string;
      };
      assert.deepEqual(out.status, { available: false, reason: 'simulated: sharp-linux-x64.node missing' });
      assert.deepEqual(out.png, { decoder: 'js', sha: refs.decode['chelsea.png']!.sha256 });
      assert.equal(
        out.webp,
        `${fixture('astronaut.webp')}: WebP needs sharp, which did not load: simulated: sharp-linux-x64.node missing`,
      );
      assert.equal(
        out.forced,
        `${fixture('chelsea.png')}: sharp did not load: simulated: sharp-linux-x64.node missing`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("resize: Pillow's ImagingResample", () => {
  test('bit-exact on every reference case (both passes, horizontal only, vertical only, up, down, bilinear)', async () => {
    for (const ref of refs.resize) {
      const source = ref.source.startsWith('pattern:') ? pattern(1024, 768) : await decodedWith(ref.source, 'sharp');
      const out = resample(source, ref.width, ref.height, ref.interpolation);
      const label = `${ref.source} → ${ref.width}×${ref.height} ${ref.interpolation}`;
      assert.equal(maxSampleDiff(out.data, ref.samples), 0, `${label}: sampled pixels differ`);
      assert.equal(sha256(out.data), ref.sha256, `${label}: differs from Pillow`);
    }
  });

  test('1024×768 → 330×248 bicubic takes under 100 ms', () => {
    const img = pattern(1024, 768);
    resample(img, 330, 248); // warm-up (JIT)
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      resample(img, 330, 248);
      best = Math.min(best, performance.now() - t0);
    }
    assert.ok(best < 100, `took ${best.toFixed(1)} ms`);
  });

  test('same size is a copy; bad sizes throw', () => {
    const img = pattern(5, 4);
    const same = resample(img, 5, 4);
    assert.deepEqual(same.data, img.data);
    assert.notEqual(same.data, img.data);
    assert.throws(() => resample(img, 0, 4), RangeError);
    assert.throws(() => resample(img, 2.5, 4), RangeError);
  });
});

// ---------------------------------------------------------------------------------------

describe('timm eval transform', () => {
  test("output size follows torchvision's _compute_resized_output_size; crop offsets round half to even", () => {
    assert.deepEqual(resizedOutputSize(451, 300, 248), [372, 248]); // int(248 · 451 / 300) = int(372.83)
    assert.deepEqual(resizedOutputSize(300, 451, 248), [248, 372]);
    assert.deepEqual(resizedOutputSize(512, 512, 248), [248, 248]);
    assert.equal(planEvalTransform(451, 300).scaleSize, 248); // floor(224 / 0.9)
    assert.equal(planEvalTransform(451, 300, { size: 384 }).scaleSize, 426);
    // 249 − 224 = 25: Python's round(12.5) is 12, not 13.
    const plan = planEvalTransform(451, 300, { cropPct: 0.8978 });
    assert.deepEqual([plan.scaleSize, plan.resizedHeight, plan.cropTop], [249, 249, 12]);
  });

  test('resize, crop and tensor equal the Pillow + torch reference on every case', async () => {
    for (const ref of refs.eval) {
      const label = `${ref.image} r=${ref.size} crop_pct=${ref.crop_pct} ${ref.interpolation}`;
      const img = await decodedWith(ref.image, 'sharp');
      const options = { size: ref.size, cropPct: ref.crop_pct, interpolation: ref.interpolation };
      const plan = planEvalTransform(img.width, img.height, options);
      assert.deepEqual(
        [plan.scaleSize, plan.resizedWidth, plan.resizedHeight, plan.cropTop, plan.cropLeft],
        [ref.scale_size, ref.resized.width, ref.resized.height, ref.crop_top, ref.crop_left],
        label,
      );
      const resized = resizeShorterSide(img, plan.scaleSize, ref.interpolation);
      assert.equal(sha256(resized.data), ref.resized.sha256, `${label}: resized image`);
      assert.equal(
        sha256(crop(resized, plan.cropLeft, plan.cropTop, ref.size, ref.size).data),
        ref.cropped_sha256,
        `${label}: crop`,
      );

      const t = evalTransform(img, options);
      assert.deepEqual(t.shape, [1, 3, ref.size, ref.size]);
      assert.equal(maxSampleDiff(t.data, ref.tensor_samples), 0, `${label}: tensor values`);
      const plane = ref.size * ref.size;
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let i = 0; i < plane; i++) sum += t.data[c * plane + i]!;
        const want = ref.tensor_channel_sums[c]!;
        assert.ok(
          Math.abs(sum - want) <= 1e-9 * Math.max(1, Math.abs(want)),
          `${label}: channel ${c} sum ${sum} vs ${want}`,
        );
      }
      if (ref.tensor_bin)
        assert.equal(maxAbsDiff(t.data, readFloat32(fixture(ref.tensor_bin))), 0, `${label}: full tensor`);
    }
  });

  test('loadImageTensor: the whole chelsea.png tensor equals the reference, with sharp and with pngjs', async () => {
    const want = readFloat32(fixture('chelsea_224.bin'));
    for (const decoder of ['sharp', 'js'] as const) {
      const t = await loadImageTensor(fixture('chelsea.png'), { decoder });
      assert.equal(t.image.decoder, decoder);
      assert.deepEqual(t.shape, [1, 3, 224, 224]);
      assert.equal(maxAbsDiff(t.data, want), 0, decoder);
    }
  });

  test('PNG tensors are identical through the JS fallback', async () => {
    for (const name of ['rgba.png', 'palette-trns.png', 'rgb16.png', 'grey-alpha.png']) {
      const a = evalTransform(await decodedWith(name, 'sharp'));
      const b = evalTransform(await decodedWith(name, 'js'));
      assert.equal(maxAbsDiff(a.data, b.data), 0, name);
    }
  });

  test('no-resize path reproduces the tiny model fixture exactly (fixtures/ref)', async () => {
    const want = readFloat32(path.join(FIXTURES, 'ref', 'tiny_image_64x64_preprocessed.bin'));
    for (const decoder of ['sharp', 'js'] as const) {
      const t = await loadImageTensor(path.join(FIXTURES, 'ref', 'tiny_image_64x64.png'), {
        resize: 'none',
        size: 64,
        decoder,
      });
      assert.deepEqual(t.shape, [1, 3, 64, 64]);
      assert.equal(t.plan, undefined);
      assert.ok(maxAbsDiff(t.data, want) <= 1e-7, decoder);
    }
    await assert.rejects(loadImageTensor(fixture('chelsea.png'), { resize: 'none', size: 224 }), (e: unknown) => {
      assert.ok(e instanceof ImageError);
      assert.match(e.message, /451×300; without resizing the model needs exactly 224×224/);
      return true;
    });
  });
});

// ---------------------------------------------------------------------------------------

describe('ImageNet labels and top-k', () => {
  test('1000 classes in index order, equal to the mobilenet package list', () => {
    assert.equal(IMAGENET_CLASSES.length, 1000);
    assert.equal(IMAGENET_CLASSES[0], 'tench, Tinca tinca');
    assert.equal(IMAGENET_CLASSES[1], 'goldfish, Carassius auratus');
    assert.equal(IMAGENET_CLASSES[207], 'golden retriever');
    assert.equal(IMAGENET_CLASSES[281], 'tabby, tabby cat');
    assert.equal(IMAGENET_CLASSES[999], 'toilet tissue, toilet paper, bathroom tissue');
    assert.deepEqual([...IMAGENET_CLASSES], mobilenetClassList(), 'rerun scripts/copy-imagenet-classes.ts');
  });

  test('topK on hand-made logits', () => {
    const logits = new Float32Array(1000);
    logits[207] = 10;
    logits[281] = 9;
    logits[1] = 9; // ties with 281: the lower index comes first
    const top = topK(logits, 3);
    const z = Math.exp(10) + 2 * Math.exp(9) + 997;
    assert.deepEqual(
      top.map((p) => [p.index, p.label, p.logit]),
      [
        [207, 'golden retriever', 10],
        [1, 'goldfish, Carassius auratus', 9],
        [281, 'tabby, tabby cat', 9],
      ],
    );
    // 997 terms of e^−10 summed one by one: rounding errors of ~1e-13 are expected.
    assert.ok(Math.abs(top[0]!.probability - Math.exp(10) / z) < 1e-12);
    assert.ok(Math.abs(top[2]!.probability - Math.exp(9) / z) < 1e-12);
    assert.equal(topK(logits).length, 5);
  });

  test('softmax is shift-invariant and stable for huge logits; other class counts get "class <i>"', () => {
    const big = softmax([1000, 1001, 999]);
    const small = softmax([1, 2, 0]);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(big[i]! - small[i]!) < 1e-15);
    assert.ok(Math.abs(big.reduce((s, v) => s + v, 0) - 1) < 1e-15);
    assert.deepEqual(softmax([-Infinity, 0]), Float64Array.from([0, 1]));
    assert.throws(() => softmax([0, NaN]), RangeError);
    const ten = topK([0.1, 3, -2, 0, 0, 0, 0, 0, 0, 2.5], 2);
    assert.deepEqual(
      ten.map((p) => [p.index, p.label]),
      [
        [1, 'class 1'],
        [9, 'class 9'],
      ],
    );
    assert.equal(classLabel(3, 10), 'class 3');
    assert.deepEqual(
      topK([1, 2], 5, ['cat', 'dog']).map((p) => p.label),
      ['dog', 'cat'],
    );
  });
});

// ---------------------------------------------------------------------------------------

/** CRC-32 (PNG's), for forging well-formed chunks. */
function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** A well-formed PNG header claiming width × height, with a small IDAT: a decompression bomb's shape. */
function forgedPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(1 << 16))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A temporary folder made before the suite's tests and removed after them; call the result for its path. */
function scratchDirForSuite(prefix: string): () => string {
  let dir = '';
  before(() => void (dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

describe('bad input is an ImageError naming the file', () => {
  const scratch = scratchDirForSuite('vitlens-image-');

  const png = fs.readFileSync(fixture('chelsea.png'));
  const jpg = fs.readFileSync(fixture('coffee.jpg'));
  const webp = fs.readFileSync(fixture('astronaut.webp'));
  const jpegBomb = Buffer.from([
    0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xfd, 0xe8, 0xfd, 0xe8, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xda, 0, 12,
    3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0,
  ]); // SOF0 65000×65000, then a scan header
  const webpBomb = Buffer.from(
    'RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\xff\xff\x00',
    'latin1',
  ); // 65536×65536 canvas

  const cases: { name: string; bytes: Uint8Array; problem: RegExp; js?: RegExp }[] = [
    {
      name: 'truncated.png',
      bytes: png.subarray(0, png.length >> 1),
      problem: /cannot decode PNG with sharp: .*looks truncated/,
      js: /cannot decode PNG with pngjs: .*looks truncated/,
    },
    {
      name: 'truncated-header.png',
      bytes: png.subarray(0, 60),
      problem: /truncated PNG file: it ends inside the "iCCP" chunk/,
    },
    {
      name: 'truncated.jpg',
      bytes: jpg.subarray(0, jpg.length >> 1),
      problem: /cannot decode JPEG with sharp: .*looks truncated/,
      js: /cannot decode JPEG with jpeg-js: .*looks truncated/,
    },
    { name: 'truncated-header.jpg', bytes: jpg.subarray(0, 300), problem: /truncated JPEG file/ },
    { name: 'truncated.webp', bytes: webp.subarray(0, webp.length >> 1), problem: /truncated WebP file/ },
    {
      name: 'random.png',
      bytes: Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 255),
      problem: /not a PNG, JPEG or WebP image \(first bytes: 0d fc eb/,
    },
    { name: 'empty.jpg', bytes: new Uint8Array(0), problem: /empty file \(0 bytes\)/ },
    {
      name: 'animation.png',
      bytes: Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00', 'latin1'),
      problem: /GIF images are not supported/,
    },
    {
      name: 'huge.png',
      bytes: forgedPng(100_000, 100_000),
      problem: /100000×100000 = 10000\.0 megapixels, over the limit of 100\.0 megapixels/,
    },
    { name: 'huge.jpg', bytes: jpegBomb, problem: /65000×65000 .* megapixels, over the limit/ },
    { name: 'huge.webp', bytes: webpBomb, problem: /65536×65536 .* megapixels, over the limit/ },
    { name: 'zero.png', bytes: forgedPng(0, 10), problem: /invalid PNG header: 0×10 pixels/ },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const file = path.join(scratch(), c.name);
      fs.writeFileSync(file, c.bytes);
      for (const decoder of ['sharp', 'js'] as const) {
        const t0 = performance.now();
        await assert.rejects(decodeImage(file, { decoder }), (e: unknown) => {
          assert.ok(e instanceof ImageError, `${decoder}: ${String(e)}`);
          assert.equal(e.file, file);
          assert.ok(e.message.startsWith(`${file}: `), e.message);
          assert.match(e.problem, decoder === 'js' && c.js ? c.js : c.problem, `${decoder}: ${e.problem}`);
          return true;
        });
        // Refused from the header, before any decoder allocates 30 GB.
        if (c.name.startsWith('huge')) assert.ok(performance.now() - t0 < 100);
      }
      // In-memory input is named by `name`.
      await assert.rejects(
        decodeImage(c.bytes, { name: `upload:${c.name}` }),
        (e: unknown) => e instanceof ImageError && e.file === `upload:${c.name}`,
      );
    });
  }

  test('limits and unreadable paths', async () => {
    await assert.rejects(
      decodeImage(fixture('chelsea.png'), { maxPixels: 100_000 }),
      /chelsea\.png: image too large: 451×300/,
    );
    await assert.rejects(decodeImage(fixture('chelsea.png'), { maxBytes: 1000 }), /chelsea\.png: file too large/);
    await assert.rejects(
      decodeImage(path.join(scratch(), 'missing.png')),
      (e: unknown) => e instanceof ImageError && /missing\.png: cannot read the file: ENOENT/.test(e.message),
    );
    await assert.rejects(
      decodeImage(scratch()),
      (e: unknown) => e instanceof ImageError && /cannot read the file/.test(e.message),
    );
  });
});

// ---------------------------------------------------------------------------------------
// Appended for docs/RELIABILITY.md: wrong extensions, corrupt (not truncated) data, bombs the
// header does not reveal, and a time and memory bound on every hostile image of this file
// (peak RSS sampled every millisecond from a worker thread while the decode runs).

import { PeakRss } from './helpers/mutate';

const imagePeak = new PeakRss();
after(() => imagePeak.stop());
const imageWorst = { ms: 0, mib: 0, count: 0 };

/** A PNG of `width` × `height` RGB8 with the given IDAT bytes (a zlib stream), interlaced or not. */
function pngWithIdat(width: number, height: number, idat: Uint8Array, interlace = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, interlace], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/**
 * A zlib stream of `mib` MiB of zeros: one deflated 1 MiB block repeated (sync flushes keep
 * blocks byte-aligned), then the Adler-32 of that many zeros. ~1 KB per MiB.
 */
function zlibZeros(mib: number): Buffer {
  const block = Buffer.alloc(2 ** 20);
  const first = zlib.deflateRawSync(block, { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const next = zlib.deflateRawSync(block, {
    level: 9,
    dictionary: Buffer.alloc(32768),
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const n = mib * 2 ** 20;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  return Buffer.concat([
    Buffer.from([0x78, 0xda]),
    first,
    ...Array.from({ length: mib - 1 }, () => next),
    zlib.deflateRawSync(Buffer.alloc(0)),
    adler,
  ]);
}

/** Chunks of a PNG: [type, offset of the length field, data length]. */
function chunksOf(png: Uint8Array): [string, number, number][] {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const out: [string, number, number][] = [];
  for (let at = 8; at + 8 <= b.length; at += 12 + b.readUInt32BE(at))
    out.push([b.toString('latin1', at + 4, at + 8), at, b.readUInt32BE(at)]);
  return out;
}

/** Rewrites the CRC of the chunk at `at` after its data was changed. */
function fixCrc(png: Buffer, at: number): void {
  const len = png.readUInt32BE(at);
  png.writeUInt32BE(crc32(png.subarray(at + 4, at + 8 + len)), at + 8 + len);
}

/** Decodes `bytes` with `decoder` under the time and memory bound; returns the outcome. */
async function decodeWithin(bytes: Uint8Array, name: string, decoder: DecoderKind, bound = { ms: 1000, mib: 64 }) {
  const m = await imagePeak.measure(() => decodeImage(bytes, { name, decoder }));
  assert.ok(m.ms < bound.ms, `${name} (${decoder}): ${m.ms.toFixed(0)} ms`);
  assert.ok(m.riseMiB < bound.mib, `${name} (${decoder}): peak RSS rose ${m.riseMiB.toFixed(0)} MiB`);
  imageWorst.ms = Math.max(imageWorst.ms, m.ms);
  imageWorst.mib = Math.max(imageWorst.mib, m.riseMiB);
  imageWorst.count++;
  return m;
}

/** An ImageError naming `name` whose problem matches, within the bound. */
async function refusedImage(bytes: Uint8Array, name: string, decoder: DecoderKind, problem: RegExp): Promise<void> {
  const m = await decodeWithin(bytes, name, decoder);
  assert.ok(
    m.error instanceof ImageError,
    `${name} (${decoder}): expected an ImageError, got ${m.error ? String(m.error) : `a ${m.value?.width}×${m.value?.height} image`}`,
  );
  assert.equal(m.error.file, name);
  assert.match(m.error.problem, problem, `${name} (${decoder})`);
}

describe('wrong extensions: the format comes from the bytes, never the name', () => {
  const scratch = scratchDirForSuite('vitlens-ext-');

  test('a PNG named .jpg and .webp, a JPEG named .png and .webp, a WebP named .jpg: the same pixels as under their own names', async () => {
    for (const [source, names] of [
      ['chelsea.png', ['chelsea.jpg', 'chelsea.webp']],
      ['coffee.jpg', ['coffee.png', 'coffee.webp']],
      ['astronaut.webp', ['astronaut.jpg', 'astronaut.png']],
    ] as const) {
      const right = await decodeImage(fixture(source));
      for (const wrong of names) {
        const file = path.join(scratch(), wrong);
        fs.copyFileSync(fixture(source), file);
        const m = await decodeWithin(fs.readFileSync(file), wrong, 'sharp');
        const img = await decodeImage(file);
        assert.equal(m.error, undefined, `${wrong}: ${String(m.error)}`);
        assert.equal(img.format, right.format, wrong);
        assert.equal(sha256(img.data), sha256(right.data), wrong);
      }
    }
  });

  test('other files under image names are refused and named for what they are', async () => {
    const others: [string, Uint8Array, RegExp][] = [
      [
        'drawing.png',
        Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'),
        /SVG\/XML\/HTML text images are not supported; use PNG, JPEG or WebP/,
      ],
      ['bitmap.jpg', Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]), /BMP images are not supported/],
      ['scan.webp', Buffer.from('II*\0\x08\0\0\0', 'latin1'), /TIFF images are not supported/],
      ['paper.png', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), /PDF images are not supported/],
      [
        'weights.png',
        fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth')),
        /not a PNG, JPEG or WebP image \(first bytes: 50 4b 03 04/,
      ],
      [
        'config.jpg',
        fs.readFileSync(path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml')),
        /not a PNG, JPEG or WebP image/,
      ],
    ];
    for (const [name, bytes, problem] of others) {
      for (const decoder of ['sharp', 'js'] as const) await refusedImage(bytes, name, decoder, problem);
    }
  });
});

describe('corrupt data (not truncated)', () => {
  const png = fs.readFileSync(fixture('chelsea.png'));
  const idat = chunksOf(png).find(([type]) => type === 'IDAT')!;

  test('PNG: an IDAT byte flipped (bad CRC), a corrupt zlib stream with a good CRC, an IHDR taller than the data: refused by both decoders', async () => {
    const badCrc = Buffer.from(png);
    badCrc[idat[1] + 8 + 1000]! ^= 0xff;
    const badZlib = Buffer.from(badCrc);
    fixCrc(badZlib, idat[1]);
    const taller = Buffer.from(png);
    taller.writeUInt32BE(600, 8 + 8 + 4);
    fixCrc(taller, 8);
    for (const [name, bytes] of [
      ['bad-crc.png', badCrc],
      ['bad-zlib.png', badZlib],
      ['taller.png', taller],
    ] as const) {
      for (const decoder of ['sharp', 'js'] as const)
        await refusedImage(bytes, name, decoder, /cannot decode PNG with (sharp|pngjs)/);
    }
  });

  test('JPEG and WebP with garbage in the coded data: refused, or decoded at the header size (libjpeg and libwebp treat it as recoverable, as Pillow does), within the bounds', async () => {
    const jpg = Buffer.from(fs.readFileSync(fixture('coffee.jpg')));
    const sos = jpg.indexOf(Buffer.from([0xff, 0xda]));
    for (let i = sos + 200; i < jpg.length - 2; i++) jpg[i] = 0xff;
    const webp = Buffer.from(fs.readFileSync(fixture('astronaut.webp')));
    for (let i = 40; i < webp.length; i++) webp[i] = (i * 31) & 255;
    for (const [name, bytes, width, height, decoders] of [
      ['garbage.jpg', jpg, 600, 400, ['sharp', 'js']],
      ['garbage.webp', webp, 512, 512, ['sharp']],
    ] as const) {
      for (const decoder of decoders) {
        const m = await decodeWithin(bytes, name, decoder);
        if (m.error) {
          assert.ok(m.error instanceof ImageError && m.error.file === name, String(m.error));
        } else {
          assert.deepEqual([m.value!.width, m.value!.height], [width, height]);
        }
      }
    }
  });
});

describe('decompression bombs the header does not reveal', () => {
  test('a 64×64 PNG whose IDAT inflates to 1 GiB (1 MB file): decoded or refused within 1 s and 64 MiB', async () => {
    const bomb = pngWithIdat(64, 64, zlibZeros(1024));
    const sharp = await decodeWithin(bomb, 'idat-bomb.png', 'sharp');
    // libpng stops once the rows are read; the rest of the stream is never inflated.
    assert.equal(sharp.error, undefined, String(sharp.error));
    assert.deepEqual([sharp.value!.width, sharp.value!.height], [64, 64]);
    const js = await decodeWithin(bomb, 'idat-bomb.png', 'js');
    // The JS path inflates at most the image's size (png-inflate.ts), and refuses the rest.
    assert.ok(
      js.error instanceof ImageError && /cannot decode PNG with pngjs/.test(js.error.problem),
      String(js.error),
    );
  });

  test('every earlier hostile image of this file, with both decoders, within 1 s and 64 MiB of peak RSS', async () => {
    const png = fs.readFileSync(fixture('chelsea.png'));
    const jpg = fs.readFileSync(fixture('coffee.jpg'));
    const webp = fs.readFileSync(fixture('astronaut.webp'));
    const jpegBomb = Buffer.from([
      0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xfd, 0xe8, 0xfd, 0xe8, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xda, 0,
      12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0,
    ]);
    const webpBomb = Buffer.from(
      'RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\xff\xff\x00',
      'latin1',
    );
    const inputs: [string, Uint8Array][] = [
      ['truncated.png', png.subarray(0, png.length >> 1)],
      ['truncated-header.png', png.subarray(0, 60)],
      ['truncated.jpg', jpg.subarray(0, jpg.length >> 1)],
      ['truncated-header.jpg', jpg.subarray(0, 300)],
      ['truncated.webp', webp.subarray(0, webp.length >> 1)],
      ['empty.jpg', new Uint8Array(0)],
      ['huge.png', forgedPng(100_000, 100_000)],
      ['huge.jpg', jpegBomb],
      ['huge.webp', webpBomb],
      ['zero.png', forgedPng(0, 10)],
    ];
    for (const [name, bytes] of inputs) {
      for (const decoder of ['sharp', 'js'] as const) {
        const m = await decodeWithin(bytes, name, decoder);
        assert.ok(m.error instanceof ImageError, `${name} (${decoder}): ${String(m.error)}`);
      }
    }
    console.log(
      `  ${imageWorst.count} hostile image decodes bounded; slowest ${imageWorst.ms.toFixed(0)} ms, largest peak-RSS rise ${imageWorst.mib.toFixed(1)} MiB`,
    );
  });
});

describe('regressions: bugs found here in the JS fallback decoder, fixed by inflating the PNG image data ourselves with a bound (png-inflate.ts; see docs/RELIABILITY.md)', () => {
  // Bug 6 was: pngjs inflated interlaced image data with no size limit, so this 259 KB file
  // cost ~0.5 GiB and over a second before the refusal (a 1 GiB bomb: ~6 s, +1.5 GiB).
  test('BUG 6: an interlaced 64×64 PNG whose IDAT inflates to 256 MiB (259 KB file) is refused by the JS path within 1 s and 64 MiB', async () => {
    const bomb = pngWithIdat(64, 64, zlibZeros(256), 1);
    const sharp = await decodeWithin(bomb, 'interlaced-bomb.png', 'sharp');
    assert.deepEqual(
      [sharp.value?.width, sharp.value?.height],
      [64, 64],
      'sharp decodes the 64×64 picture and ignores the rest',
    );
    const m = await imagePeak.measure(() => decodeImage(bomb, { name: 'interlaced-bomb.png', decoder: 'js' }));
    console.log(
      `  interlaced IDAT bomb (${(bomb.length / 1024).toFixed(0)} KB → 256 MiB), pngjs: ${m.error ? 'refused' : 'decoded'} after ${m.ms.toFixed(0)} ms, peak RSS +${m.riseMiB.toFixed(0)} MiB`,
    );
    assert.ok(m.ms < 1000 && m.riseMiB < 64, `${m.ms.toFixed(0)} ms, +${m.riseMiB.toFixed(0)} MiB`);
    assert.ok(m.error instanceof ImageError && m.error.file === 'interlaced-bomb.png', String(m.error));
    assert.match(
      m.error.problem,
      /^cannot decode PNG with pngjs: IDAT inflates to more than the 12408 bytes a 64×64 8-bit RGB interlaced PNG needs$/,
    );
  });

  // Bug 7 was: pngjs' sync inflate ignored zlib's error and returned Buffer.allocUnsafe
  // memory, so this file decoded to whatever that memory held about half the time, and
  // failed with a random "Unrecognised filter type" otherwise.
  test('BUG 7: a PNG whose zlib stream is garbage (chunk CRCs valid) is refused by the JS path every time, naming the zlib error, as sharp refuses it', async () => {
    const garbage = pngWithIdat(
      4,
      4,
      Uint8Array.from({ length: 64 }, (_, i) => (i * 7919 + 13) & 255),
    );
    await refusedImage(garbage, 'garbage-zlib.png', 'sharp', /cannot decode PNG with sharp/);
    const pictures = new Set<string>();
    let refused = 0;
    for (let k = 0; k < 20; k++) {
      try {
        pictures.add(sha256((await decodeImage(garbage, { name: 'garbage-zlib.png', decoder: 'js' })).data));
      } catch (e) {
        assert.ok(e instanceof ImageError);
        assert.equal(e.problem, 'cannot decode PNG with pngjs: IDAT zlib stream is corrupt: incorrect header check');
        refused++;
      }
      Buffer.allocUnsafe(64).fill(k);
    }
    console.log(
      `  garbage zlib stream, pngjs, 20 decodes of the same file: ${20 - refused} pictures (${pictures.size} different), ${refused} refusals`,
    );
    assert.equal(refused, 20, 'every decode of a corrupt file is refused');
  });
});
