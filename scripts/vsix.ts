/**
 * Reading a VSIX (a zip file) without a dependency: the central directory for the listing,
 * zlib's raw inflate for the contents. Used by scripts/package-vsix.ts (listing, checks, the
 * smoke run of the packed CLI) and by the end-to-end test.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { HEADER_BYTES, NATIVE_NAME, readBinaryHeader, type BinaryHeader } from './native-header';

export interface ZipEntry {
  name: string;
  compressedSize: number;
  size: number;
  method: number;
  localHeaderOffset: number;
}

export function listZip(file: string): ZipEntry[] {
  const buf = fs.readFileSync(file);
  // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
    const method = buf.readUInt16LE(p + 10);
    const compressedSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const localHeaderOffset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    entries.push({ name, compressedSize, size, method, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The compressed bytes of an entry, from its local header. */
function entryData(buf: Buffer, file: string, e: ZipEntry): Buffer {
  const h = e.localHeaderOffset;
  if (buf.readUInt32LE(h) !== 0x04034b50) throw new Error(`${file}: bad local header for ${e.name}`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  return buf.subarray(start, start + e.compressedSize);
}

/** Extracts every file of the zip under `dir` (which is created). */
export function extractZip(file: string, dir: string): void {
  const buf = fs.readFileSync(file);
  for (const e of listZip(file)) {
    if (e.name.endsWith('/')) continue;
    const target = path.resolve(dir, e.name);
    if (!target.startsWith(path.resolve(dir) + path.sep))
      throw new Error(`${file}: entry escapes the folder: ${e.name}`);
    const raw = entryData(buf, file, e);
    const data = e.method === 0 ? raw : e.method === 8 ? zlib.inflateRawSync(raw) : null;
    if (!data) throw new Error(`${file}: ${e.name} uses compression method ${e.method}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, data);
  }
}

/** Native code and WebAssembly by name: what the listing shows as binaries. */
export const NATIVE = /\.(node|so(\.\d+)*|dll|dylib|wasm|exe)$/;

export interface ZipBinary extends ZipEntry {
  header: BinaryHeader;
  /** Named like native code (.node, .so, .dylib, .dll, .exe), whatever its header says. */
  nativeName: boolean;
}

/**
 * Every file of the zip that is a binary by its header (ELF, Mach-O, PE, WebAssembly) or by its
 * name, with the header read from its first HEADER_BYTES (only that much is inflated: a prefix of
 * twice as many compressed bytes always inflates to enough, deflate spending at most 16 bits on
 * an output byte, and sync-flush lets zlib stop there).
 */
export function zipBinaries(file: string): ZipBinary[] {
  const buf = fs.readFileSync(file);
  const out: ZipBinary[] = [];
  for (const e of listZip(file)) {
    if (e.name.endsWith('/')) continue;
    const raw = entryData(buf, file, e);
    let head: Buffer;
    if (e.method === 0) head = raw.subarray(0, HEADER_BYTES);
    else if (e.method === 8)
      head = zlib
        .inflateRawSync(raw.subarray(0, 2 * HEADER_BYTES + 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
        .subarray(0, HEADER_BYTES);
    else throw new Error(`${file}: ${e.name} uses compression method ${e.method}`);
    const header = readBinaryHeader(head);
    const nativeName = NATIVE_NAME.test(e.name);
    if (header.format !== 'unknown' || nativeName) out.push({ ...e, header, nativeName });
  }
  return out;
}
