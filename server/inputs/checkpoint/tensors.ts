/**
 * Turns raw storage bytes plus a view (storage_offset, size, stride) into dense row-major
 * tensors. Views are real in checkpoints: transposed (non-contiguous) weights, several
 * tensors sharing one storage at different offsets, stride-0 expansions. Every view is
 * bounds-checked against its storage before any element is read, so a hostile offset or
 * stride is an error and never an out-of-range read.
 *
 * Floating dtypes come out as Float32Array (the engine computes in float32; half and
 * bfloat16 are widened here by hand since JS has no such arrays), int64 as BigInt64Array
 * (num_batches_tracked, index buffers), narrower integers as Int32Array, bool as Uint8Array.
 */
import { CheckpointError } from './errors';

export type DType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface Tensor {
  shape: number[];
  dtype: DType;
  /** Dense, row-major, `numel(shape)` elements. */
  data: TensorData;
}

/** Where a tensor's elements sit in its storage (PyTorch's strided layout, in elements). */
export interface TensorView {
  offset: number;
  shape: readonly number[];
  stride: readonly number[];
}

/** A storage decoded once to the element type of the tensors cut from it. */
export interface DecodedStorage {
  dtype: DType;
  values: TensorData;
}

/** Bytes per element of each dtype as stored on disk. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Largest tensor materialised (1 GiB of float32); bigger means a hostile or foreign file. */
const MAX_TENSOR_ELEMENTS = 2 ** 28;
/** PyTorch's own dimension limit. */
const MAX_DIMS = 64;

/** Typed-array views below assume the host's byte order is the file's (little-endian). */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** All 65536 half-precision values, built on first use. */
let halfTable: Float32Array | undefined;

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function halfValues(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/**
 * Decodes the first `numel` elements of a storage. The bytes are copied first: zip entries
 * sit at arbitrary offsets, and typed arrays need their element alignment.
 */
export function decodeStorage(
  bytes: Uint8Array,
  dtype: DType,
  numel: number,
  file: string,
  what: string,
): DecodedStorage {
  const size = DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(numel) || numel < 0 || numel * size > bytes.length) {
    throw new CheckpointError(
      file,
      `${what} claims ${numel} ${dtype} elements (${numel * size} bytes) but holds only ${bytes.length} bytes`,
    );
  }
  if (!LITTLE_ENDIAN_HOST) throw new CheckpointError(file, 'reading checkpoints needs a little-endian host');
  // A real copy: Buffer#slice would return a view into Node's shared pool.
  const buffer = new ArrayBuffer(numel * size);
  new Uint8Array(buffer).set(bytes.subarray(0, numel * size));
  switch (dtype) {
    case 'float32':
      return { dtype, values: new Float32Array(buffer) };
    case 'float64':
      return { dtype, values: Float32Array.from(new Float64Array(buffer)) };
    case 'float16': {
      const table = halfValues();
      const halves = new Uint16Array(buffer);
      const values = new Float32Array(numel);
      for (let i = 0; i < numel; i++) values[i] = table[halves[i]!]!;
      return { dtype, values };
    }
    case 'bfloat16': {
      // bfloat16 is the top half of a float32: shift into place and reinterpret.
      const halves = new Uint16Array(buffer);
      const bits = new Uint32Array(numel);
      for (let i = 0; i < numel; i++) bits[i] = halves[i]! << 16;
      return { dtype, values: new Float32Array(bits.buffer) };
    }
    case 'int64':
      return { dtype, values: new BigInt64Array(buffer) };
    case 'int32':
      return { dtype, values: new Int32Array(buffer) };
    case 'int16':
      return { dtype, values: Int32Array.from(new Int16Array(buffer)) };
    case 'int8':
      return { dtype, values: Int32Array.from(new Int8Array(buffer)) };
    case 'uint8':
      return { dtype, values: Int32Array.from(new Uint8Array(buffer)) };
    case 'bool':
      return { dtype, values: new Uint8Array(buffer).map((b) => (b ? 1 : 0)) };
  }
}

/**
 * Element count of a view, checked against the size limit and, when `storageNumel` is
 * given, against the storage: the furthest element offset + Σ(size−1)·stride must exist.
 */
export function viewNumel(view: TensorView, storageNumel: number, file: string, what: string): number {
  const { offset, shape, stride } = view;
  const bad = (problem: string) => new CheckpointError(file, `${what}: ${problem}`);
  if (shape.length > MAX_DIMS || shape.length !== stride.length) {
    throw bad(`shape [${shape.join(', ')}] and stride [${stride.join(', ')}] do not describe a tensor`);
  }
  const isIndex = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!shape.every(isIndex)) throw bad(`shape [${shape.join(', ')}] is not a list of sizes`);
  if (shape.includes(0)) return 0;
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > MAX_TENSOR_ELEMENTS)
    throw bad(`shape [${shape.join(', ')}] has more than ${MAX_TENSOR_ELEMENTS} elements`);
  if (!isIndex(offset) || !stride.every(isIndex)) {
    throw bad(`offset ${offset} and stride [${stride.join(', ')}] must be non-negative integers`);
  }
  let last = offset;
  // Doubles stay ordered past 2^53, so an overflowing extent still compares as too big.
  for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * stride[d]!;
  if (last >= storageNumel) {
    throw bad(
      `view (offset ${offset}, shape [${shape.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} of a storage with ${storageNumel}`,
    );
  }
  return numel;
}

/** True when the view is the row-major block [offset, offset + numel). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    // Dimensions of size 1 are never stepped along, whatever their stride says.
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** Copies a strided view into `out` in row-major order (an odometer over the indices). */
function gather(
  src: ArrayLike<number | bigint>,
  out: { [i: number]: number | bigint },
  numel: number,
  view: TensorView,
): void {
  const { shape, stride } = view;
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let at = view.offset;
  for (let i = 0; i < numel; i++) {
    out[i] = src[at]!;
    for (let d = rank - 1; d >= 0; d--) {
      at += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      at -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
}

function emptyLike(values: TensorData, numel: number): TensorData {
  if (values instanceof Float32Array) return new Float32Array(numel);
  if (values instanceof BigInt64Array) return new BigInt64Array(numel);
  if (values instanceof Int32Array) return new Int32Array(numel);
  return new Uint8Array(numel);
}

/** The dense tensor a view selects from a decoded storage (bounds-checked first). */
export function materialise(storage: DecodedStorage, view: TensorView, file: string, what: string): Tensor {
  const numel = viewNumel(view, storage.values.length, file, what);
  const shape = [...view.shape];
  if (isContiguous(view.shape, view.stride)) {
    return { shape, dtype: storage.dtype, data: storage.values.slice(view.offset, view.offset + numel) };
  }
  const data = emptyLike(storage.values, numel);
  gather(storage.values, data, numel, view);
  return { shape, dtype: storage.dtype, data };
}
