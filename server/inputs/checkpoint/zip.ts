/**
 * The zip container of a PyTorch (>= 1.6) checkpoint: `<archive>/data.pkl` (the pickled
 * object), `<archive>/data/<key>` (one raw storage per key, usually stored uncompressed),
 * `<archive>/version`, and in torch 2.x `<archive>/byteorder`. The archive prefix is the
 * basename the file was saved under, so it is found from the `*\/data.pkl` entry rather
 * than from the file name (files get renamed).
 *
 * fflate's unzipSync is lenient: it trusts the end-of-central-directory record (so a
 * directory offset past the file or a forged entry count turns into nonsense entries),
 * clips entries that run past the end of the buffer and does not check sizes. So the end
 * record and the directory's shape are checked here before fflate reads them, and every
 * entry it returns is checked against the directory; storages are only decompressed when
 * asked for, so a timm checkpoint's optimizer state is never inflated.
 */
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { errorMessage } from '../../core/errors';
import { CheckpointError } from './errors';

/** More entries than any real checkpoint (tiny_soft.pth has 139: one per storage, and 2 more). */
const MAX_ENTRIES = 200_000;
/** data.pkl holds structure only (tensor data lives in storages). */
const MAX_PICKLE_BYTES = 256 * 2 ** 20;
/** Largest single entry: a Uint8Array beyond 2 GiB is not portable across Node builds. */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;
/** Decompressed bytes requested in one read, so a deflate bomb cannot exhaust memory. */
const MAX_READ_BYTES = 2 ** 32;

/** Record signatures and fixed sizes (APPNOTE 4.3); names and extra fields follow headers. */
const END_SIGNATURE = 0x06054b50;
const END_BYTES = 22;
/** The end record may be followed by a comment of up to this many bytes. */
const MAX_COMMENT_BYTES = 0xffff;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_END_BYTES = 56;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const CENTRAL_HEADER_BYTES = 46;

const ZIP_LOCAL_HEADER = [0x50, 0x4b, 0x03, 0x04];
const ZIP_EMPTY_ARCHIVE = [0x50, 0x4b, 0x05, 0x06];
/** `torch.save` before 1.6: PROTO 2, LONG1 of 10 bytes = the magic 0x1950a86a20f9469cfc6c. */
const LEGACY_TORCH_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const RESAVE_HINT = 're-save it with torch>=1.6 (`torch.save(torch.load(old), new)`), or export a .safetensors file';

/** The central directory as the end record places it. */
interface Directory {
  offset: number;
  size: number;
  count: number;
  /** Where the end records begin: the directory must end at or before it. */
  limit: number;
  /** Which record the numbers came from, for messages. */
  record: string;
}

interface EntryInfo {
  size: number;
  originalSize: number;
  compression: number;
}

export interface TorchZip {
  readonly prefix: string;
  /** The bytes of `<prefix>/data.pkl`. */
  readonly pickle: Uint8Array;
  /**
   * Raw bytes of the named storages (`<prefix>/data/<key>`), each a fresh copy. Keys that
   * the archive lacks are an error: the pickle refers to them.
   */
  readStorages(keys: Iterable<string>): Map<string, Uint8Array>;
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** Why bytes that are not a zip cannot be read, in the user's terms. */
function notAZip(bytes: Uint8Array, file: string): CheckpointError {
  if (bytes.length === 0) return new CheckpointError(file, 'the file is empty');
  if (startsWith(bytes, LEGACY_TORCH_MAGIC)) {
    return new CheckpointError(
      file,
      `this is the legacy (pre-1.6) PyTorch serialization format, which ViT Lens does not read; ${RESAVE_HINT}`,
    );
  }
  if (bytes[0] === 0x80 && (bytes[1] ?? 0xff) <= 5) {
    return new CheckpointError(file, `this is a bare Python pickle, not a PyTorch zip checkpoint; ${RESAVE_HINT}`);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new CheckpointError(
    file,
    `not a zip archive (first bytes ${head}); expected a PyTorch checkpoint saved by torch>=1.6 or a .safetensors file`,
  );
}

function corrupt(file: string, problem: string): CheckpointError {
  return new CheckpointError(file, `truncated or corrupt zip archive: ${problem}`);
}

/**
 * Little-endian 64-bit field, exact below 2^53 (anything larger lies past any file anyway).
 * fflate reads only the low 32 bits; in a buffer under 4 GiB the values that pass the
 * checks below have no others.
 */
function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

/** The last end record signature in the file's tail, where fflate looks for it too; -1 if none. */
function findEndRecord(view: DataView): number {
  const stop = Math.max(0, view.byteLength - END_BYTES - MAX_COMMENT_BYTES);
  for (let at = view.byteLength - END_BYTES; at >= stop; at--) {
    if (view.getUint32(at, true) === END_SIGNATURE) return at;
  }
  return -1;
}

/**
 * Reads the directory's place from the end record, or from the ZIP64 end record when a
 * locator precedes it (PyTorch writes one); fflate makes the same choice and reads the
 * same fields (entries on this disk, offset; ZIP64: total entries, offset).
 */
function readDirectory(view: DataView, file: string): Directory {
  const end = findEndRecord(view);
  if (end < 0)
    throw corrupt(file, `no end-of-central-directory record in the last ${END_BYTES + MAX_COMMENT_BYTES} bytes`);
  const locator = end - ZIP64_LOCATOR_BYTES;
  if (locator < 0 || view.getUint32(locator, true) !== ZIP64_LOCATOR_SIGNATURE) {
    const [count, size, offset] = [
      view.getUint16(end + 8, true),
      view.getUint32(end + 12, true),
      view.getUint32(end + 16, true),
    ];
    return { count, size, offset, limit: end, record: 'end record' };
  }
  const at = u64(view, locator + 8);
  if (at > locator - ZIP64_END_BYTES || view.getUint32(at, true) !== ZIP64_END_SIGNATURE) {
    throw corrupt(file, `the ZIP64 locator points at byte ${at}, where there is no ZIP64 end record`);
  }
  return {
    count: u64(view, at + 32),
    size: u64(view, at + 40),
    offset: u64(view, at + 48),
    limit: at,
    record: 'ZIP64 end record',
  };
}

/**
 * Checks that the directory lies inside the file before its end record and holds exactly
 * the entries the end record counts, so fflate walks real headers (a forged count or
 * offset would otherwise read as missing or duplicated entries).
 */
function checkDirectory(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dir = readDirectory(view, file);
  const { offset, size, count, limit, record } = dir;
  if (offset > bytes.length)
    throw corrupt(file, `central directory offset ${offset} lies past the end of the ${bytes.length}-byte file`);
  if (offset + size > limit) {
    throw corrupt(
      file,
      `the central directory (${size} bytes at offset ${offset}) runs past the ${record} at byte ${limit}`,
    );
  }
  if (count * CENTRAL_HEADER_BYTES > size) {
    throw corrupt(
      file,
      `the ${record} counts ${count} entries, more than a ${size}-byte central directory holds (${CENTRAL_HEADER_BYTES} bytes each at least)`,
    );
  }
  if (count > MAX_ENTRIES) throw new CheckpointError(file, `zip archive lists more than ${MAX_ENTRIES} entries`);
  checkHeaders(view, file, dir);
}

/** Steps over the `count` central headers, which must fill the directory exactly. */
function checkHeaders(view: DataView, file: string, { offset, size, count, record }: Directory): void {
  const end = offset + size;
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_HEADER_BYTES > end)
      throw corrupt(file, `central directory entry ${i} at byte ${at} runs past the directory's end at byte ${end}`);
    if (view.getUint32(at, true) !== CENTRAL_HEADER_SIGNATURE)
      throw corrupt(file, `central directory entry ${i} at byte ${at} is not a central header`);
    // The fixed part, then the name, extra field and comment whose lengths it gives.
    at +=
      CENTRAL_HEADER_BYTES +
      view.getUint16(at + 28, true) +
      view.getUint16(at + 30, true) +
      view.getUint16(at + 32, true);
  }
  if (at !== end)
    throw corrupt(
      file,
      `the central directory's ${count} entries take ${at - offset} bytes, but the ${record} says ${size}`,
    );
}

/** Runs fflate, turning its terse errors ("invalid zip data", "unexpected EOF") into ours. */
function unzip(bytes: Uint8Array, file: string, filter: (info: UnzipFileInfo) => boolean): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, { filter });
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, `truncated or corrupt zip archive (${errorMessage(e)})`);
  }
}

/** The central directory, without decompressing anything. */
function listEntries(bytes: Uint8Array, file: string): Map<string, EntryInfo> {
  const entries = new Map<string, EntryInfo>();
  unzip(bytes, file, (info) => {
    if (entries.has(info.name))
      throw new CheckpointError(file, `zip archive lists entry ${JSON.stringify(info.name)} twice`);
    entries.set(info.name, { size: info.size, originalSize: info.originalSize, compression: info.compression });
    return false;
  });
  return entries;
}

/** Decompresses exactly the named entries and checks each against its directory record. */
function readEntries(
  bytes: Uint8Array,
  file: string,
  entries: Map<string, EntryInfo>,
  names: ReadonlySet<string>,
): Map<string, Uint8Array> {
  let total = 0;
  for (const name of names) {
    const info = entries.get(name);
    if (!info) throw new CheckpointError(file, `zip archive has no entry ${JSON.stringify(name)}`);
    if (info.compression !== 0 && info.compression !== 8) {
      throw new CheckpointError(file, `zip entry ${name} uses unsupported compression method ${info.compression}`);
    }
    if (info.originalSize > MAX_ENTRY_BYTES)
      throw new CheckpointError(file, `zip entry ${name} is larger than ${MAX_ENTRY_BYTES} bytes`);
    if (info.compression === 0 && info.size !== info.originalSize) {
      throw new CheckpointError(file, `corrupt zip archive: stored entry ${name} has inconsistent sizes`);
    }
    total += info.originalSize;
  }
  if (total > MAX_READ_BYTES)
    throw new CheckpointError(file, `the checkpoint needs more than ${MAX_READ_BYTES} bytes of tensor data`);
  const files = unzip(bytes, file, (info) => names.has(info.name));
  const out = new Map<string, Uint8Array>();
  for (const name of names) {
    const data = files[name];
    const expected = entries.get(name)?.originalSize;
    if (!data || data.length !== expected) {
      throw corrupt(file, `entry ${name} has ${data?.length ?? 0} of its ${expected} bytes`);
    }
    out.set(name, data);
  }
  return out;
}

export function openTorchZip(bytes: Uint8Array, file: string): TorchZip {
  if (!startsWith(bytes, ZIP_LOCAL_HEADER) && !startsWith(bytes, ZIP_EMPTY_ARCHIVE)) throw notAZip(bytes, file);
  checkDirectory(bytes, file);
  const entries = listEntries(bytes, file);
  const prefixes = [...entries.keys()].flatMap((name) => /^([^/]+)\/data\.pkl$/.exec(name)?.[1] ?? []);
  if (prefixes.length !== 1) {
    const problem =
      prefixes.length === 0
        ? 'zip archive has no <archive>/data.pkl entry, so it is not a PyTorch checkpoint'
        : `zip archive holds several checkpoints (${prefixes.join(', ')})`;
    throw new CheckpointError(file, problem);
  }
  const prefix = prefixes[0]!;
  const pickleName = `${prefix}/data.pkl`;
  if ((entries.get(pickleName)?.originalSize ?? 0) > MAX_PICKLE_BYTES) {
    throw new CheckpointError(file, `${pickleName} is larger than ${MAX_PICKLE_BYTES} bytes`);
  }
  // torch 2.x records the byte order of the storages; older files are always little-endian.
  const byteorderName = `${prefix}/byteorder`;
  const head = readEntries(
    bytes,
    file,
    entries,
    new Set(entries.has(byteorderName) ? [pickleName, byteorderName] : [pickleName]),
  );
  const byteorder = head.get(byteorderName);
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw new CheckpointError(
      file,
      'the storages were saved big-endian, which ViT Lens does not read; re-save the checkpoint on a little-endian machine',
    );
  }
  return {
    prefix,
    pickle: head.get(pickleName)!,
    readStorages(keys) {
      const names = new Set([...keys].map((k) => `${prefix}/data/${k}`));
      const read = readEntries(bytes, file, entries, names);
      return new Map([...read].map(([name, data]) => [name.slice(prefix.length + '/data/'.length), data]));
    },
  };
}
