/**
 * The zip container of a PyTorch (>= 1.6) checkpoint: `<archive>/data.pkl` (the pickled
 * object), `<archive>/data/<key>` (one raw storage per key, usually stored uncompressed),
 * `<archive>/version`, and in torch 2.x `<archive>/byteorder`. The archive prefix is the
 * basename the file was saved under, so it is found from the `*\/data.pkl` entry rather
 * than from the file name (files get renamed).
 *
 * fflate's unzipSync is lenient (it clips entries that run past the end of the buffer and
 * does not check sizes), so every entry it returns is checked against the central
 * directory here; storages are only decompressed when asked for, so a timm checkpoint's
 * optimizer state is never inflated.
 */
import { unzipSync, type UnzipFileInfo } from 'fflate';
import { CheckpointError, describeError } from './errors';

/** More entries than any real checkpoint; also stops a forged zip64 entry count early. */
const MAX_ENTRIES = 200_000;
/** data.pkl holds structure only (tensor data lives in storages). */
const MAX_PICKLE_BYTES = 256 * 2 ** 20;
/** Largest single entry: a Uint8Array beyond 2 GiB is not portable across Node builds. */
const MAX_ENTRY_BYTES = 2 ** 31 - 1;
/** Decompressed bytes requested in one read, so a deflate bomb cannot exhaust memory. */
const MAX_READ_BYTES = 2 ** 32;

const ZIP_LOCAL_HEADER = [0x50, 0x4b, 0x03, 0x04];
const ZIP_EMPTY_ARCHIVE = [0x50, 0x4b, 0x05, 0x06];
/** `torch.save` before 1.6: PROTO 2, LONG1 of 10 bytes = the magic 0x1950a86a20f9469cfc6c. */
const LEGACY_TORCH_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const RESAVE_HINT = 're-save it with torch>=1.6 (`torch.save(torch.load(old), new)`), or export a .safetensors file';

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
    return new CheckpointError(file, `this is the legacy (pre-1.6) PyTorch serialization format, which ViT Lens does not read; ${RESAVE_HINT}`);
  }
  if (bytes[0] === 0x80 && (bytes[1] ?? 0xff) <= 5) {
    return new CheckpointError(file, `this is a bare Python pickle, not a PyTorch zip checkpoint; ${RESAVE_HINT}`);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new CheckpointError(file, `not a zip archive (first bytes ${head}); expected a PyTorch checkpoint saved by torch>=1.6 or a .safetensors file`);
}

/** Runs fflate, turning its terse errors ("invalid zip data", "unexpected EOF") into ours. */
function unzip(bytes: Uint8Array, file: string, filter: (info: UnzipFileInfo) => boolean): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, { filter });
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, `truncated or corrupt zip archive (${describeError(e)})`);
  }
}

/** The central directory, without decompressing anything. */
function listEntries(bytes: Uint8Array, file: string): Map<string, EntryInfo> {
  const entries = new Map<string, EntryInfo>();
  unzip(bytes, file, (info) => {
    if (entries.size >= MAX_ENTRIES) throw new CheckpointError(file, `zip archive lists more than ${MAX_ENTRIES} entries`);
    if (entries.has(info.name)) throw new CheckpointError(file, `zip archive lists entry ${JSON.stringify(info.name)} twice`);
    entries.set(info.name, { size: info.size, originalSize: info.originalSize, compression: info.compression });
    return false;
  });
  return entries;
}

/** Decompresses exactly the named entries and checks each against its directory record. */
function readEntries(bytes: Uint8Array, file: string, entries: Map<string, EntryInfo>, names: ReadonlySet<string>): Map<string, Uint8Array> {
  let total = 0;
  for (const name of names) {
    const info = entries.get(name);
    if (!info) throw new CheckpointError(file, `zip archive has no entry ${JSON.stringify(name)}`);
    if (info.compression !== 0 && info.compression !== 8) {
      throw new CheckpointError(file, `zip entry ${name} uses unsupported compression method ${info.compression}`);
    }
    if (info.originalSize > MAX_ENTRY_BYTES) throw new CheckpointError(file, `zip entry ${name} is larger than ${MAX_ENTRY_BYTES} bytes`);
    if (info.compression === 0 && info.size !== info.originalSize) {
      throw new CheckpointError(file, `corrupt zip archive: stored entry ${name} has inconsistent sizes`);
    }
    total += info.originalSize;
  }
  if (total > MAX_READ_BYTES) throw new CheckpointError(file, `the checkpoint needs more than ${MAX_READ_BYTES} bytes of tensor data`);
  const files = unzip(bytes, file, (info) => names.has(info.name));
  const out = new Map<string, Uint8Array>();
  for (const name of names) {
    const data = files[name];
    const expected = entries.get(name)?.originalSize;
    if (!data || data.length !== expected) {
      throw new CheckpointError(file, `truncated or corrupt zip archive: entry ${name} has ${data?.length ?? 0} of its ${expected} bytes`);
    }
    out.set(name, data);
  }
  return out;
}

export function openTorchZip(bytes: Uint8Array, file: string): TorchZip {
  if (!startsWith(bytes, ZIP_LOCAL_HEADER) && !startsWith(bytes, ZIP_EMPTY_ARCHIVE)) throw notAZip(bytes, file);
  const entries = listEntries(bytes, file);
  const prefixes = [...entries.keys()].flatMap((name) => /^([^/]+)\/data\.pkl$/.exec(name)?.[1] ?? []);
  if (prefixes.length !== 1) {
    const problem = prefixes.length === 0
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
  const head = readEntries(bytes, file, entries, new Set(entries.has(byteorderName) ? [pickleName, byteorderName] : [pickleName]));
  const byteorder = head.get(byteorderName);
  if (byteorder && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw new CheckpointError(file, 'the storages were saved big-endian, which ViT Lens does not read; re-save the checkpoint on a little-endian machine');
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
