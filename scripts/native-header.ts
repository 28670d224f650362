/**
 * What a binary is built for, read from its first bytes: the object format (ELF, Mach-O, PE,
 * WebAssembly) and the CPU architectures it holds code for. scripts/package-vsix.ts checks every
 * file of a targeted VSIX with it, so a binary of another platform fails the packaging however
 * its path is named. Pure: a buffer in, a description out; truncated or garbage input gives
 * format "unknown" rather than an exception.
 *
 * Architectures use Node's `process.arch` names (x64, arm64, ia32, arm, ...) so they compare
 * directly with a VS Code target such as darwin-arm64.
 */

export type BinaryFormat = 'elf' | 'mach-o' | 'pe' | 'wasm' | 'unknown';

export interface BinaryHeader {
  format: BinaryFormat;
  /** ELF class or Mach-O/PE word size; absent for wasm and unknown. */
  bits?: 32 | 64;
  /** Every architecture with code in the file: one, several for a universal (fat) Mach-O, none for wasm. */
  machines: string[];
  /** Mach-O only: a universal (fat) file. */
  universal?: boolean;
  /** Why the format is unknown or a field could not be read. */
  reason?: string;
}

/** Enough for every header read here: a fat Mach-O's arch table and a PE header after a long DOS stub. */
export const HEADER_BYTES = 64 * 1024;

/** ELF e_machine values (System V ABI; the ones Node ships for, plus x86). */
const ELF_MACHINE: Record<number, string> = {
  3: 'ia32',
  8: 'mips',
  20: 'ppc',
  21: 'ppc64',
  22: 's390x',
  40: 'arm',
  62: 'x64',
  183: 'arm64',
  243: 'riscv64',
  258: 'loong64',
};

/** Mach-O cputype values (mach/machine.h): CPU_ARCH_ABI64 (0x01000000) marks the 64-bit ones. */
const MACHO_CPU: Record<number, string> = {
  0x00000007: 'ia32',
  0x01000007: 'x64',
  0x0000000c: 'arm',
  0x0100000c: 'arm64',
  0x0200000c: 'arm64_32',
  0x00000012: 'ppc',
  0x01000012: 'ppc64',
};

/** PE/COFF Machine values (IMAGE_FILE_MACHINE_*). */
const PE_MACHINE: Record<number, string> = {
  0x014c: 'ia32',
  0x8664: 'x64',
  0xaa64: 'arm64',
  0x01c4: 'arm',
  0xa641: 'arm64ec',
};

const hex = (n: number) => `0x${n.toString(16)}`;
const unknown = (reason: string): BinaryHeader => ({ format: 'unknown', machines: [], reason });

function elf(b: Buffer): BinaryHeader {
  if (b.length < 20) return unknown('ELF header truncated');
  const cls = b[4];
  const data = b[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2))
    return unknown(`ELF with invalid class ${cls} or data ${data}`);
  const machine = data === 1 ? b.readUInt16LE(18) : b.readUInt16BE(18);
  return { format: 'elf', bits: cls === 1 ? 32 : 64, machines: [ELF_MACHINE[machine] ?? `elf-machine-${machine}`] };
}

function machoCpu(cputype: number): string {
  return MACHO_CPU[cputype] ?? `mach-o-cpu-${hex(cputype)}`;
}

/** A thin Mach-O: magic then cputype, both in the file's byte order (told apart by the magic). */
function thinMachO(b: Buffer, littleEndian: boolean, bits: 32 | 64): BinaryHeader {
  if (b.length < 8) return unknown('Mach-O header truncated');
  const cputype = littleEndian ? b.readUInt32LE(4) : b.readUInt32BE(4);
  return { format: 'mach-o', bits, machines: [machoCpu(cputype)] };
}

/**
 * A universal Mach-O: big-endian nfat_arch, then one fat_arch (20 bytes; 32 for the 64-bit
 * variant 0xcafebabf) per architecture, each starting with its cputype. 0xcafebabe is also a Java
 * class file's magic; there the next word holds the class version (major ≥ 45), so a count above
 * a few dozen is read as "not Mach-O", as file(1) does.
 */
function fatMachO(b: Buffer, entrySize: 20 | 32): BinaryHeader {
  if (b.length < 8) return unknown('universal Mach-O header truncated');
  const n = b.readUInt32BE(4);
  if (n === 0 || n > 30) return unknown(`0xcafebabe with ${n} architectures: not a universal Mach-O`);
  if (b.length < 8 + n * entrySize) return unknown(`universal Mach-O architecture table truncated (${n} entries)`);
  const machines: string[] = [];
  for (let i = 0; i < n; i++) machines.push(machoCpu(b.readUInt32BE(8 + i * entrySize)));
  const bits = machines.every((m) => ['x64', 'arm64', 'ppc64'].includes(m)) ? 64 : 32;
  return { format: 'mach-o', bits, machines, universal: true };
}

/**
 * PE: the DOS header's e_lfanew (offset 0x3c) points at "PE\0\0", then the 20-byte COFF header
 * (Machine first), then the optional header, whose magic tells PE32 (0x10b) from PE32+ (0x20b).
 */
function pe(b: Buffer): BinaryHeader {
  if (b.length < 0x40) return unknown('DOS header truncated');
  const at = b.readUInt32LE(0x3c);
  if (at + 26 > b.length) return unknown(`PE header at ${hex(at)} is past the bytes read (${b.length})`);
  if (b.readUInt32BE(at) !== 0x50450000) return unknown('MZ without a PE signature (a DOS program?)');
  const machine = b.readUInt16LE(at + 4);
  const name = PE_MACHINE[machine] ?? `pe-machine-${hex(machine)}`;
  const magic = b.readUInt16LE(at + 24);
  const bits = magic === 0x20b ? 64 : magic === 0x10b ? 32 : undefined;
  return bits ? { format: 'pe', bits, machines: [name] } : { format: 'pe', machines: [name] };
}

/** Reads the format and architectures from a file's first bytes (HEADER_BYTES are enough). */
export function readBinaryHeader(bytes: Uint8Array): BinaryHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 4) return unknown(`only ${b.length} bytes`);
  const be = b.readUInt32BE(0);
  if (be === 0x7f454c46) return elf(b); // \x7fELF
  if (be === 0xfeedfacf) return thinMachO(b, false, 64);
  if (be === 0xcffaedfe) return thinMachO(b, true, 64);
  if (be === 0xfeedface) return thinMachO(b, false, 32);
  if (be === 0xcefaedfe) return thinMachO(b, true, 32);
  if (be === 0xcafebabe) return fatMachO(b, 20);
  if (be === 0xcafebabf) return fatMachO(b, 32);
  if (be === 0x0061736d) return { format: 'wasm', machines: [] }; // \0asm
  if (b[0] === 0x4d && b[1] === 0x5a) return pe(b); // MZ
  return unknown(`no known magic (${b.subarray(0, 4).toString('hex')})`);
}

/** "ELF 64-bit x64", "Mach-O universal (x64, arm64)", "PE 64-bit x64", "wasm", "unknown (why)". */
export function describeHeader(h: BinaryHeader): string {
  if (h.format === 'unknown') return `unknown (${h.reason ?? 'unrecognised'})`;
  if (h.format === 'wasm') return 'WebAssembly';
  const name = h.format === 'elf' ? 'ELF' : h.format === 'pe' ? 'PE' : 'Mach-O';
  if (h.universal) return `${name} universal (${h.machines.join(', ')})`;
  return `${name}${h.bits ? ` ${h.bits}-bit` : ''} ${h.machines.join(', ')}`;
}

/** File names that must be native code of the target: Node addons and shared libraries/executables. */
export const NATIVE_NAME = /\.(node|so(\.\d+)*|dylib|dll|exe)$/i;

/** What a target's native code is: the object format and the one architecture it must contain. */
export interface BinaryKind {
  format: 'elf' | 'mach-o' | 'pe';
  arch: string;
}

/**
 * Whether a file's header fits the target: WebAssembly is platform-neutral; ELF, PE and thin
 * Mach-O must be exactly the target's architecture; a universal Mach-O must contain it (the others
 * it holds are never loaded). Returns why not, or null when it fits. A file named like native
 * code whose header is not recognised does not fit: that is how a foreign or corrupt file would look.
 */
export function mismatch(h: BinaryHeader, want: BinaryKind, nativeName: boolean): string | null {
  if (h.format === 'wasm') return null;
  if (h.format === 'unknown') return nativeName ? `not a recognised binary: ${describeHeader(h)}` : null;
  if (h.format !== want.format) return `${describeHeader(h)}, not ${want.format}`;
  const fits = h.universal ? h.machines.includes(want.arch) : h.machines.length === 1 && h.machines[0] === want.arch;
  return fits ? null : `${describeHeader(h)}, not ${want.arch}`;
}
