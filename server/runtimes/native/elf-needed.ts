/**
 * The shared libraries an ELF file asks the dynamic loader for (DT_NEEDED) and where it tells the
 * loader to look (DT_RUNPATH / DT_RPATH), read from its dynamic section without loading it. Loading
 * is what fails with a bare "cannot open shared object file" naming one library; reading the list
 * first lets `vitlens devices` say which of a provider's libraries are missing, all at once.
 * Only 64-bit little-endian ELF (every Linux target onnxruntime-node ships); reads a few KiB of
 * files that can be hundreds of MiB (the CUDA EP).
 */
import fs from 'node:fs';

export interface ElfDynamic {
  needed: string[];
  /** DT_RUNPATH, else DT_RPATH, split at ':' ($ORIGIN left as written). */
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, offset);
  return buf.subarray(0, n);
}

/** The NUL-terminated string at `offset` (dynamic strings are short: names and paths). */
function cString(fd: number, offset: number): string {
  const chunk = readAt(fd, offset, 4096);
  const end = chunk.indexOf(0);
  return chunk.subarray(0, end < 0 ? chunk.length : end).toString('utf8');
}

/** The dynamic entries of a 64-bit little-endian ELF file, or null when it is not one or has none (static). */
export function readElfDynamic(file: string): ElfDynamic | null {
  const fd = fs.openSync(file, 'r');
  try {
    const h = readAt(fd, 0, 64);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return null;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = readAt(fd, phoff, phentsize * phnum);
    const loads: { vaddr: bigint; offset: bigint; filesz: bigint }[] = [];
    let dynamic: { offset: number; size: number } | null = null;
    for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
      const p = ph.subarray(i * phentsize);
      const type = p.readUInt32LE(0);
      const offset = p.readBigUInt64LE(8);
      const vaddr = p.readBigUInt64LE(16);
      const filesz = p.readBigUInt64LE(32);
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      if (type === PT_DYNAMIC) dynamic = { offset: Number(offset), size: Number(filesz) };
    }
    if (!dynamic) return null;
    const d = readAt(fd, dynamic.offset, dynamic.size);
    const entries: [bigint, bigint][] = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = d.readBigInt64LE(o);
      if (tag === DT_NULL) break;
      entries.push([tag, d.readBigUInt64LE(o + 8)]);
    }
    const strtab = entries.find(([t]) => t === DT_STRTAB)?.[1];
    if (strtab === undefined) return null;
    // DT_STRTAB is an address: find the loaded segment holding it to get its place in the file.
    const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (!seg) return null;
    const strtabOffset = Number(strtab - seg.vaddr + seg.offset);
    const str = (v: bigint) => cString(fd, strtabOffset + Number(v));
    const needed = entries.filter(([t]) => t === DT_NEEDED).map(([, v]) => str(v));
    const runpathEntry = entries.find(([t]) => t === DT_RUNPATH) ?? entries.find(([t]) => t === DT_RPATH);
    const runpath = runpathEntry ? str(runpathEntry[1]).split(':').filter(Boolean) : [];
    return { needed, runpath };
  } finally {
    fs.closeSync(fd);
  }
}
