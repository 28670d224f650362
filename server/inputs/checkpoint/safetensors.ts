/**
 * The safetensors format: a u64 little-endian header length N, N bytes of JSON
 * (`name → {dtype, shape, data_offsets: [begin, end]}` plus an optional string map
 * `__metadata__`), then the tensor bytes, offsets relative to the end of the header.
 * Tensors are dense and row-major, so reading one is a bounds check and a decode.
 */
import { errorMessage } from '../../core/errors';
import { CheckpointError } from './errors';
import { DTYPE_BYTES, decodeStorage, viewNumel, type DType, type Tensor } from './tensors';

/** The format's own cap on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;

const DTYPES: ReadonlyMap<string, DType> = new Map<string, DType>([
  ['F32', 'float32'],
  ['F16', 'float16'],
  ['BF16', 'bfloat16'],
  ['F64', 'float64'],
  ['I64', 'int64'],
  ['I32', 'int32'],
  ['I16', 'int16'],
  ['I8', 'int8'],
  ['U8', 'uint8'],
  ['BOOL', 'bool'],
]);

export interface Safetensors {
  /** In data-offset order (JSON object order puts integer-like names first). */
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

function headerLength(bytes: Uint8Array): number {
  return bytes.length < 8 ? -1 : Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

/** Content sniffing for files without the extension: a plausible length, then '{'. */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  const n = headerLength(bytes);
  return n >= 2 && n <= Math.min(MAX_HEADER_BYTES, bytes.length - 8) && bytes[8] === 0x7b;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads every tensor of a safetensors file; throws CheckpointError naming `file`. */
export function readSafetensors(bytes: Uint8Array, file: string): Safetensors {
  const n = headerLength(bytes);
  if (n < 2 || n > MAX_HEADER_BYTES || n > bytes.length - 8) {
    throw new CheckpointError(
      file,
      `not a safetensors file: header length ${n} does not fit the ${bytes.length}-byte file`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CheckpointError(file, `safetensors header is not valid JSON (${errorMessage(e)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError(file, 'safetensors header is not a JSON object');
  }
  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const entries: { name: string; begin: number; tensor: Tensor }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry === 'object' && entry !== null) {
        for (const [k, v] of Object.entries(entry)) if (typeof v === 'string') metadata[k] = v;
      }
      continue;
    }
    const bad = (problem: string) =>
      new CheckpointError(file, `safetensors tensor ${JSON.stringify(name)}: ${problem}`);
    const { dtype: code, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    const dtype = typeof code === 'string' ? DTYPES.get(code) : undefined;
    if (!dtype) throw bad(`unsupported dtype ${JSON.stringify(code)}`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad('shape is not a list of sizes');
    const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets : [];
    if (!isIndex(begin) || !isIndex(end) || begin > end || end > data.length) {
      throw bad(`data_offsets ${JSON.stringify(offsets)} lie outside the ${data.length} data bytes`);
    }
    const size = DTYPE_BYTES[dtype];
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const numel = viewNumel(
      { offset: 0, shape, stride },
      Number.MAX_SAFE_INTEGER,
      file,
      `safetensors tensor ${JSON.stringify(name)}`,
    );
    if (end - begin !== numel * size) throw bad(`${end - begin} bytes do not hold ${numel} ${dtype} elements`);
    const { values } = decodeStorage(
      data.subarray(begin, end),
      dtype,
      numel,
      file,
      `safetensors tensor ${JSON.stringify(name)}`,
    );
    entries.push({ name, begin, tensor: { shape: [...shape], dtype, data: values } });
  }
  entries.sort((a, b) => a.begin - b.begin);
  return { tensors: new Map(entries.map((e) => [e.name, e.tensor])), metadata };
}
