/**
 * A pass over a pickle's opcodes before anything is built from it. pickleparser trusts
 * its input: it follows negative lengths backwards, builds BigInts of any width, maps the
 * protocol-0 DICT opcode onto Map properties, and implements INST/OBJ/EXT by calling
 * whatever the stack holds. This scan admits only the binary opcodes a `torch.save`
 * pickle (protocols 2-5) uses, checks that every argument lies inside the buffer, bounds
 * integer widths, MARK nesting and the number of values and memo entries the parser would
 * build, and reports each GLOBAL to the caller's allow-list, so a refused name is rejected
 * before a single object exists. It streams: nothing is allocated per opcode but GLOBAL's
 * two name strings.
 */
import { CheckpointError } from './errors';

/** torch.save pickles nest a handful of MARKs; hostile ones nest 100k. */
const MAX_MARK_DEPTH = 100;
/** Longest GLOBAL module or name line: dotted Python identifiers. */
const MAX_GLOBAL_LINE = 256;

/** What an opcode adds to the parser's state: a stack entry, or a memo entry. */
type Tally = 'value' | 'memo';

/**
 * Bounds on what the parser builds. Nearly every opcode byte can make an object (an empty
 * dict costs the parser ~200 bytes and ~1 µs), so the pickle size cap alone would admit
 * hundreds of millions. The real tiny_soft.pth (137 tensors) makes 3,404 values and 1,351
 * memo entries, ~25 and ~10 per tensor, so a ViT-g training checkpoint with EMA weights
 * and AdamW state (~2,000 tensors) would make ~50k values; the caps admit ~80k tensors.
 * Every value made counts, even one popped at once: the parser allocates it all the same.
 */
const LIMITS: Readonly<Record<Tally, { max: number; what: string; perTensor: number }>> = {
  value: { max: 2_000_000, what: 'values', perTensor: 25 },
  memo: { max: 1_000_000, what: 'memo entries', perTensor: 10 },
};

type Arg =
  | { kind: 'fixed'; bytes: number }
  /** A length of `bytes` bytes (little-endian), then that many bytes. */
  | { kind: 'counted'; bytes: 1 | 4 | 8 }
  | { kind: 'global' }
  | { kind: 'long1' }
  | { kind: 'proto' };

interface OpSpec {
  name: string;
  arg?: Arg;
  /** MARK opens a frame; these opcodes close the innermost one. */
  mark?: 'open' | 'close';
  /** Pushes a value (new, or a reference for DUP / *GET), or writes a memo entry. */
  tally?: Tally;
}

const fixed = (bytes: number): Arg => ({ kind: 'fixed', bytes });
const counted = (bytes: 1 | 4 | 8): Arg => ({ kind: 'counted', bytes });

/** The admitted opcodes, by byte (pickletools names). */
const ALLOWED: ReadonlyMap<number, OpSpec> = new Map<number, OpSpec>([
  [0x80, { name: 'PROTO', arg: { kind: 'proto' } }],
  [0x95, { name: 'FRAME', arg: fixed(8) }],
  [0x2e, { name: 'STOP' }],
  [0x28, { name: 'MARK', mark: 'open' }],
  [0x31, { name: 'POP_MARK', mark: 'close' }],
  [0x30, { name: 'POP' }],
  [0x32, { name: 'DUP', tally: 'value' }],
  [0x71, { name: 'BINPUT', arg: fixed(1), tally: 'memo' }],
  [0x72, { name: 'LONG_BINPUT', arg: fixed(4), tally: 'memo' }],
  [0x94, { name: 'MEMOIZE', tally: 'memo' }],
  [0x68, { name: 'BINGET', arg: fixed(1), tally: 'value' }],
  [0x6a, { name: 'LONG_BINGET', arg: fixed(4), tally: 'value' }],
  [0x4e, { name: 'NONE', tally: 'value' }],
  [0x88, { name: 'NEWTRUE', tally: 'value' }],
  [0x89, { name: 'NEWFALSE', tally: 'value' }],
  [0x4a, { name: 'BININT', arg: fixed(4), tally: 'value' }],
  [0x4b, { name: 'BININT1', arg: fixed(1), tally: 'value' }],
  [0x4d, { name: 'BININT2', arg: fixed(2), tally: 'value' }],
  [0x8a, { name: 'LONG1', arg: { kind: 'long1' }, tally: 'value' }],
  [0x47, { name: 'BINFLOAT', arg: fixed(8), tally: 'value' }],
  [0x43, { name: 'SHORT_BINBYTES', arg: counted(1), tally: 'value' }],
  [0x42, { name: 'BINBYTES', arg: counted(4), tally: 'value' }],
  [0x8e, { name: 'BINBYTES8', arg: counted(8), tally: 'value' }],
  [0x96, { name: 'BYTEARRAY8', arg: counted(8), tally: 'value' }],
  [0x55, { name: 'SHORT_BINSTRING', arg: counted(1), tally: 'value' }],
  [0x54, { name: 'BINSTRING', arg: counted(4), tally: 'value' }],
  [0x8c, { name: 'SHORT_BINUNICODE', arg: counted(1), tally: 'value' }],
  [0x58, { name: 'BINUNICODE', arg: counted(4), tally: 'value' }],
  [0x8d, { name: 'BINUNICODE8', arg: counted(8), tally: 'value' }],
  [0x29, { name: 'EMPTY_TUPLE', tally: 'value' }],
  [0x85, { name: 'TUPLE1', tally: 'value' }],
  [0x86, { name: 'TUPLE2', tally: 'value' }],
  [0x87, { name: 'TUPLE3', tally: 'value' }],
  [0x74, { name: 'TUPLE', mark: 'close', tally: 'value' }],
  [0x5d, { name: 'EMPTY_LIST', tally: 'value' }],
  [0x6c, { name: 'LIST', mark: 'close', tally: 'value' }],
  [0x61, { name: 'APPEND' }],
  [0x65, { name: 'APPENDS', mark: 'close' }],
  [0x7d, { name: 'EMPTY_DICT', tally: 'value' }],
  [0x73, { name: 'SETITEM' }],
  [0x75, { name: 'SETITEMS', mark: 'close' }],
  [0x8f, { name: 'EMPTY_SET', tally: 'value' }],
  [0x90, { name: 'ADDITEMS', mark: 'close' }],
  [0x91, { name: 'FROZENSET', mark: 'close', tally: 'value' }],
  // Names are checked here (GLOBAL) or by the parser's resolver (STACK_GLOBAL, whose
  // operands are computed on the stack); calls only ever reach allow-listed functions.
  [0x63, { name: 'GLOBAL', arg: { kind: 'global' }, tally: 'value' }],
  [0x93, { name: 'STACK_GLOBAL', tally: 'value' }],
  [0x52, { name: 'REDUCE', tally: 'value' }],
  [0x81, { name: 'NEWOBJ', tally: 'value' }],
  [0x62, { name: 'BUILD' }],
  [0x51, { name: 'BINPERSID', tally: 'value' }],
]);

/** ALLOWED indexed by byte: the scan's inner loop looks up every opcode. */
const BY_BYTE: readonly (OpSpec | undefined)[] = Array.from({ length: 256 }, (_, code) => ALLOWED.get(code));

const NEVER_EXECUTES = 'ViT Lens never executes code from a checkpoint';

/** Opcodes refused outright, with the reason a user can act on. */
const REFUSED: ReadonlyMap<number, string> = new Map([
  [0x69, `INST (constructs an object by name); ${NEVER_EXECUTES}`],
  [0x6f, `OBJ (constructs an object from the stack); ${NEVER_EXECUTES}`],
  [0x92, `NEWOBJ_EX (constructs an object with keyword arguments); ${NEVER_EXECUTES}`],
  [0x82, `EXT1 (extension registry); ${NEVER_EXECUTES}`],
  [0x83, `EXT2 (extension registry); ${NEVER_EXECUTES}`],
  [0x84, `EXT4 (extension registry); ${NEVER_EXECUTES}`],
  [0x50, 'PERSID (text persistent id; torch uses BINPERSID)'],
  [0x97, 'NEXT_BUFFER (out-of-band data)'],
  [0x98, 'READONLY_BUFFER (out-of-band data)'],
  [0x8b, 'LONG4 (an integer wider than 255 bytes)'],
  [0x64, 'DICT (protocol 0/1 dict)'],
]);

/** Byte offset and error context of one scan. */
class Cursor {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {}

  fail(at: number, problem: string): CheckpointError {
    return new CheckpointError(this.file, `malformed pickle at byte ${at}: ${problem}`);
  }

  /** Claims `n` argument bytes, returning their start. */
  take(n: number, what: string): number {
    if (n > this.bytes.length - this.pos) throw this.fail(this.pos, `${what} runs past the end of the pickle`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Little-endian unsigned integer of 1, 2, 4 or 8 bytes; widths beyond 2^53 are refused. */
  uint(bytes: number, what: string): number {
    const at = this.take(bytes, what);
    let value = 0;
    for (let i = bytes - 1; i >= 0; i--) value = value * 256 + this.bytes[at + i]!;
    if (!Number.isSafeInteger(value)) throw this.fail(at, `${what} is too large`);
    return value;
  }

  /** A newline-terminated dotted identifier (GLOBAL's operands). */
  identifierLine(what: string): string {
    const start = this.pos;
    const end = this.bytes.subarray(start, start + MAX_GLOBAL_LINE + 1).indexOf(0x0a);
    if (end < 0) throw this.fail(start, `${what} is not a newline-terminated name`);
    const text = String.fromCharCode(...this.bytes.subarray(start, start + end));
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(text))
      throw this.fail(start, `${what} ${JSON.stringify(text)} is not a Python name`);
    this.pos = start + end + 1;
    return text;
  }
}

function scanArg(c: Cursor, op: OpSpec, arg: Arg, onGlobal: (module: string, name: string) => void): void {
  switch (arg.kind) {
    case 'fixed':
      c.take(arg.bytes, `${op.name} operand`);
      return;
    case 'counted':
      c.take(c.uint(arg.bytes, `${op.name} length`), `${op.name} data`);
      return;
    case 'proto': {
      const at = c.pos;
      if (c.uint(1, 'PROTO version') > 5) throw c.fail(at, 'unknown pickle protocol');
      return;
    }
    case 'long1': {
      // pickleparser reads LONG1 as unsigned and through a 53-bit double, so only values it
      // reproduces exactly are admitted (torch writes sizes/strides/offsets, all >= 0).
      const at = c.pos;
      const n = c.uint(1, 'LONG1 length');
      const start = c.take(n, 'LONG1 data');
      const digits = c.bytes.subarray(start, start + n);
      if (n > 0 && digits[n - 1]! >= 0x80) throw c.fail(at, 'negative LONG1 integers are not supported');
      let value = 0;
      for (let i = n - 1; i >= 0; i--) value = value * 256 + digits[i]!;
      if (!Number.isSafeInteger(value)) throw c.fail(at, 'LONG1 integer beyond 2^53 is not supported');
      return;
    }
    case 'global':
      onGlobal(c.identifierLine('GLOBAL module'), c.identifierLine('GLOBAL name'));
      return;
  }
}

function tooMany(file: string, at: number, op: OpSpec, limit: (typeof LIMITS)[Tally]): CheckpointError {
  return new CheckpointError(
    file,
    `refused pickle at byte ${at}: ${op.name} makes more than ${limit.max} ${limit.what}, ` +
      `far beyond a real checkpoint (about ${limit.perTensor} per tensor)`,
  );
}

/**
 * Validates `bytes` as a pickle this reader will parse, calling `onGlobal` (which throws
 * to refuse) for every GLOBAL. Linear in the pickle size; throws CheckpointError.
 */
export function scanPickle(bytes: Uint8Array, file: string, onGlobal: (module: string, name: string) => void): void {
  const c = new Cursor(bytes, file);
  let depth = 0;
  const made: Record<Tally, number> = { value: 0, memo: 0 };
  while (c.pos < bytes.length) {
    const at = c.pos;
    const code = bytes[c.pos++]!;
    const op = BY_BYTE[code];
    if (!op) {
      const refused = REFUSED.get(code);
      throw refused
        ? new CheckpointError(file, `refused pickle opcode at byte ${at}: ${refused}`)
        : c.fail(at, `opcode 0x${code.toString(16).padStart(2, '0')} is not part of a torch.save pickle`);
    }
    if (op.name === 'STOP') return;
    if (op.arg) scanArg(c, op, op.arg, onGlobal);
    if (op.mark === 'open' && ++depth > MAX_MARK_DEPTH)
      throw c.fail(at, `nesting deeper than ${MAX_MARK_DEPTH} levels`);
    if (op.mark === 'close' && --depth < 0) throw c.fail(at, `${op.name} without a MARK`);
    if (op.tally && ++made[op.tally] > LIMITS[op.tally].max) throw tooMany(file, at, op, LIMITS[op.tally]);
  }
  throw c.fail(bytes.length, 'no STOP opcode (truncated pickle)');
}
