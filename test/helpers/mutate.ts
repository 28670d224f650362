/**
 * A seeded, deterministic config fuzzer for the language server, and the driver that feeds its
 * documents to ONE bundled server process over a real LSP connection (test/fuzz.test.ts runs
 * 10,000 documents; scripts/soak-fuzz.ts runs as many as asked).
 *
 * Every document derives from the official configs (fixtures/configs/soft/*.yaml, plus the
 * tiny_soft fixture for its list-valued architecture keys) through one named mutation kind:
 * byte flips and splices, structural YAML mutations, extreme and non-finite numbers, unicode,
 * deep nesting, one ~10 MB document, and bursts of rapid didChange edits on one document sent
 * without waiting. The same seed always gives the same documents in the same order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type {
  Diagnostic,
  PublishDiagnosticsParams,
  TextDocumentContentChangeEvent,
} from 'vscode-languageserver-protocol';
import { percentile as statsPercentile } from '../../server/jobs/bench/stats';
import { FIXTURES, officialConfigFiles } from './fixtures';
import { LspClient } from './lsp';

// ---------------------------------------------------------------------------------------
// Deterministic randomness

/** mulberry32: small, fast, and the same sequence on every platform for a given seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** A sub-generator, so one mutation's draws do not shift every later document. */
  fork(): Rng {
    return new Rng(this.int(2 ** 32));
  }
}

// ---------------------------------------------------------------------------------------
// Sources

export interface Source {
  name: string;
  text: string;
}

/** The 15 official SOFT configs (unchanged) and the tiny_soft fixture. */
export function loadSources(): Source[] {
  const files = [...officialConfigFiles(), path.join(FIXTURES, 'configs', 'tiny_soft.vitlens.yaml')];
  return files.map((f) => ({ name: path.basename(f), text: fs.readFileSync(f, 'utf8') }));
}

// ---------------------------------------------------------------------------------------
// Mutations

export type MutationFamily = 'bytes' | 'structure' | 'numbers' | 'unicode' | 'nesting' | 'size' | 'stacked';

/** Every mutation kind, by family. A document carries exactly one kind (stacked: several). */
export const MUTATIONS = {
  bytes: ['byte-flip', 'byte-insert', 'byte-delete', 'truncate', 'splice', 'random-bytes'],
  structure: [
    'line-swap',
    'line-duplicate',
    'line-delete',
    'indent',
    'dedent',
    'flow-mapping',
    'wrap-list',
    'wrap-map',
    'duplicate-key',
    'unknown-key',
    'drop-colon',
    'anchor-alias',
    'billion-laughs',
    'tag',
    'multi-document',
    'block-scalar',
    'merge-key',
    'directive',
    'unterminated-quote',
    'complex-key',
    'root-list',
    'root-scalar',
    'empty',
    'comment-out',
    'value-swap',
    'null-values',
  ],
  numbers: ['extreme-number', 'non-finite', 'architecture-extreme', 'number-format', 'list-length'],
  unicode: ['unicode-insert', 'unicode-replace', 'bom', 'line-endings', 'lone-surrogate', 'control-chars', 'homoglyph'],
  nesting: ['deep-flow-seq', 'deep-flow-map', 'deep-block', 'deep-unclosed', 'deep-list-value'],
  size: ['large', 'huge-10mb'],
  stacked: ['stacked'],
} as const satisfies Record<MutationFamily, readonly string[]>;

export type MutationKind = (typeof MUTATIONS)[MutationFamily][number];

const KEYS = [
  'model',
  'newton_maxiter',
  'kernel_method',
  'lr',
  'min_lr',
  'warmup_epochs',
  'batch_size',
  'epochs',
  'clip_grad',
  'embed_dims',
  'depths',
  'num_heads',
  'mlp_ratios',
  'sr_ratios',
  'img_size',
  'num_classes',
  'attention',
  'newton_variant',
  'checkpoint',
  'images',
];
const LIST_KEYS = ['embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios', 'img_size', 'attention', 'images'];
const MODELS = [
  'soft_tiny',
  'soft_small',
  'soft_medium',
  'soft_large',
  'soft_huge',
  'soft_norm_tiny',
  'soft_norm_huge',
  'ufo_vit_small',
  'soft_tinny',
  'SOFT_TINY',
  '',
];

/** Numbers at and beyond every edge the schema has (integers, floats, ranges 1…65536, 16…8192). */
const EXTREME_NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '2',
  '3',
  '7',
  '15',
  '16',
  '17',
  '255',
  '256',
  '1000',
  '1024',
  '4095',
  '8192',
  '8193',
  '65535',
  '65536',
  '65537',
  '1000000',
  '1000001',
  '2147483647',
  '2147483648',
  '-2147483649',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '1e308',
  '-1e308',
  '1.7976931348623157e308',
  '5e-324',
  '1e-320',
  '2.2250738585072014e-308',
  '0.1',
  '0.5',
  '1.5',
  '-0.0',
  '1e3',
  '1E+3',
  '123456789012345678901234567890',
  '9'.repeat(400),
  '0.' + '0'.repeat(400) + '1',
  '-' + '9'.repeat(400),
];
const NON_FINITE = [
  '.inf',
  '-.inf',
  '+.inf',
  '.Inf',
  '.INF',
  '-.Inf',
  '.nan',
  '.NaN',
  '.NAN',
  '1e999',
  '-1e999',
  'Infinity',
  '-Infinity',
  'NaN',
  'nan',
  'inf',
];
const NUMBER_FORMATS = [
  '0x10',
  '0xFFFFFFFF',
  '0o17',
  '017',
  '0b101',
  '1_000',
  '1,000',
  '+12',
  '12.',
  '.5',
  '1e',
  '1e+',
  '0x',
  '1.2.3',
  '٣',
  '１２',
  '12e-2',
  '0000224',
  '224.0',
  '2.24e2',
];
const ATTENTIONS = ['soft', 'soft_norm', 'ufo', 'softmax', 'softmax_sr', 'SOFT', 'linear', ''];

/** Code points from the corners of Unicode: astral, combining, bidi, zero-width, separators, specials. */
const UNICODE = [
  'é',
  'ß',
  'Ω',
  'ж',
  'm\u0301',
  '中',
  '文',
  '🙂',
  '👩‍👩‍👧',
  '🇺🇳',
  '\u{1F4A9}',
  '\u{10FFFF}',
  '\u{E0001}',
  '\u0301\u0301\u0301',
  '\u202E',
  '\u202D',
  '\u2066',
  '\u200B',
  '\u200D',
  '\u2060',
  '\uFEFF',
  '\u2028',
  '\u2029',
  '\u0085',
  '\u00A0',
  '\u3000',
  '\uFFFD',
  '\uFFFE',
  '\uFFFF',
  '\uFF1A',
  '\u02D0',
  'ℌ',
  'ﬁ',
  '\u0130',
  '\u0131',
  'ǅ',
  '\u{1D400}',
];
const CONTROL = [
  '\u0000',
  '\u0001',
  '\u0007',
  '\b',
  '\t',
  '\u000B',
  '\f',
  '\r',
  '\u001B',
  '\u007F',
  '\u0080',
  '\u009F',
];
const HOMOGLYPHS: Record<string, string> = {
  o: 'о',
  a: 'а',
  e: 'е',
  c: 'с',
  p: 'р',
  x: 'х',
  i: 'і',
  s: 'ѕ',
  _: '＿',
  ':': '：',
  '-': '‐',
  '1': 'l',
  '0': 'O',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

function lines(text: string): string[] {
  return text.split('\n');
}

function splitKeyValue(line: string): { key: string; value: string } | null {
  const m = /^(\s*)([^:#\s][^:]*?):\s*(.*)$/.exec(line);
  return m ? { key: m[2]!, value: m[3]! } : null;
}

/** Replaces a random `key: value` line's value (or appends a key) with `value`. */
function setValue(rng: Rng, text: string, value: string, key?: string): string {
  const ls = lines(text);
  const candidates = ls
    .map((l, i) => [i, splitKeyValue(l)] as const)
    .filter(([, kv]) => kv && (!key || kv.key === key));
  if (candidates.length && rng.chance(0.8)) {
    const [i, kv] = rng.pick(candidates);
    ls[i] = `${kv!.key}: ${value}`;
    return ls.join('\n');
  }
  return `${text}\n${key ?? rng.pick(KEYS)}: ${value}`;
}

function randomList(rng: Rng, n: number, item: () => string): string {
  return `[${Array.from({ length: n }, item).join(', ')}]`;
}

function insertAt(text: string, at: number, s: string): string {
  return text.slice(0, at) + s + text.slice(at);
}

/** Applies one mutation kind to a source text. Deterministic in (rng state, text, kind). */
export function mutate(rng: Rng, text: string, kind: MutationKind, sources: readonly Source[]): string {
  const ls = lines(text);
  const lineIndex = () => rng.int(ls.length);
  switch (kind) {
    // ---- bytes ------------------------------------------------------------------------------------
    case 'byte-flip': {
      const b = encoder.encode(text);
      const flips = rng.range(1, 8);
      for (let k = 0; k < flips && b.length; k++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return decoder.decode(b);
    }
    case 'byte-insert': {
      const b = Array.from(encoder.encode(text));
      const n = rng.range(1, 16);
      for (let k = 0; k < n; k++) b.splice(rng.int(b.length + 1), 0, rng.int(256));
      return decoder.decode(Uint8Array.from(b));
    }
    case 'byte-delete': {
      const b = Array.from(encoder.encode(text));
      const n = rng.range(1, 16);
      for (let k = 0; k < n && b.length; k++) b.splice(rng.int(b.length), rng.range(1, 4));
      return decoder.decode(Uint8Array.from(b));
    }
    case 'truncate': {
      const b = encoder.encode(text);
      return decoder.decode(b.subarray(0, rng.int(b.length + 1)));
    }
    case 'splice': {
      const other = rng.pick(sources).text;
      return text.slice(0, rng.int(text.length + 1)) + other.slice(rng.int(other.length + 1));
    }
    case 'random-bytes':
      return decoder.decode(Uint8Array.from({ length: rng.range(0, 512) }, () => rng.int(256)));

    // ---- structure --------------------------------------------------------------------------------
    case 'line-swap': {
      const i = lineIndex();
      const j = lineIndex();
      [ls[i], ls[j]] = [ls[j]!, ls[i]!];
      return ls.join('\n');
    }
    case 'line-duplicate': {
      const i = lineIndex();
      ls.splice(rng.int(ls.length + 1), 0, ...Array.from({ length: rng.range(1, 3) }, () => ls[i]!));
      return ls.join('\n');
    }
    case 'line-delete': {
      const n = rng.range(1, Math.max(1, ls.length - 1));
      for (let k = 0; k < n; k++) ls.splice(lineIndex(), 1);
      return ls.join('\n');
    }
    case 'indent': {
      const i = lineIndex();
      ls[i] = (rng.chance(0.3) ? '\t' : ' '.repeat(rng.range(1, 12))) + ls[i];
      return ls.join('\n');
    }
    case 'dedent':
      return ls.map((l, i) => (i === 0 ? `  ${l}` : l)).join('\n');
    case 'flow-mapping': {
      const pairs = ls.filter((l) => l.trim() && !l.trim().startsWith('#'));
      const body = pairs.join(rng.pick([', ', ',', ' , ', ',\n  ']));
      return rng.chance(0.2) ? `{${body}` : `{${body}}`;
    }
    case 'wrap-list':
      return setValue(
        rng,
        text,
        rng.pick(['[soft_tiny]', '[]', '[[]]', '[1, [2, [3]]]', '- a', '[model: soft_tiny]']),
        rng.chance(0.5) ? 'model' : undefined,
      );
    case 'wrap-map':
      return setValue(rng, text, rng.pick(['{}', '{a: 1}', '{model: soft_tiny}', '{embed_dims: [64]}', '{? a}']));
    case 'duplicate-key': {
      const kv = splitKeyValue(ls[lineIndex()]!);
      return `${text}\n${kv?.key ?? 'model'}: ${rng.pick(['soft_small', '1', '[1, 2, 3, 4]', 'torch'])}`;
    }
    case 'unknown-key': {
      const key = rng.pick([
        'newton-maxiter',
        'modle',
        'Model',
        'embed_dim',
        'img-size',
        'x',
        '',
        '"model "',
        "'lr'",
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        '<<',
      ]);
      ls.splice(rng.int(ls.length + 1), 0, `${key}: ${rng.pick(['20', 'soft_tiny', '[1,2]', ''])}`);
      return ls.join('\n');
    }
    case 'drop-colon': {
      const i = lineIndex();
      ls[i] = ls[i]!.replace(/:/, rng.pick(['', ' ', '=', '::', ': :', ' :']));
      return ls.join('\n');
    }
    case 'anchor-alias': {
      const i = lineIndex();
      const kv = splitKeyValue(ls[i]!);
      if (kv) ls[i] = `${kv.key}: &a ${kv.value}`;
      ls.push(`${rng.pick(KEYS)}: ${rng.pick(['*a', '*missing', '*a*a', '&b *a'])}`);
      return ls.join('\n');
    }
    case 'billion-laughs': {
      const out = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
      const depth = rng.range(3, 12);
      for (let d = 1; d <= depth; d++)
        out.push(`a${d}: &a${d} [${Array.from({ length: 9 }, () => `*a${d - 1}`).join(', ')}]`);
      out.push(`${rng.pick(LIST_KEYS)}: *a${depth}`);
      return `${text}\n${out.join('\n')}`;
    }
    case 'tag':
      return setValue(
        rng,
        text,
        rng.pick([
          '!!binary aGVsbG8=',
          '!!js/function "function(){}"',
          '!!python/object/apply:os.system ["touch /tmp/x"]',
          '!!str 224',
          '!!int "12"',
          '!!float .inf',
          '!<tag:yaml.org,2002:map> {}',
          '!!set {a, b}',
          '!!omap [a: 1]',
          '!custom x',
          '!!timestamp 2001-12-14',
          '!!null ~',
          '!',
        ]),
      );
    case 'multi-document':
      return rng.pick([
        `---\n${text}\n---\n${text}`,
        `${text}\n...\n`,
        `${text}\n---\n`,
        `---\n---\n${text}`,
        `...\n${text}`,
      ]);
    case 'block-scalar':
      return setValue(
        rng,
        text,
        rng.pick(['|\n  soft_tiny', '>-\n  20', '|+\n\n\n', '|2\n x', '>\n', '|\n\tsoft_tiny']),
      );
    case 'merge-key':
      return `base: &base {model: soft_tiny, newton_maxiter: 20}\n<<: *base\n${text}\n<<: ${rng.pick(['*base', '[*base, *base]', '1', '*nope'])}`;
    case 'directive':
      return `${rng.pick(['%YAML 1.1', '%YAML 1.2', '%YAML 2.0', '%TAG ! tag:x,2000:', '%FOO bar', '%YAML'])}\n${rng.pick(['---\n', ''])}${text}`;
    case 'unterminated-quote': {
      const i = lineIndex();
      const kv = splitKeyValue(ls[i]!);
      ls[i] = kv
        ? `${kv.key}: ${rng.pick(['"', "'", '"\\', '"\\u12', '"\\x'])}${kv.value.replace(/["']/g, '')}`
        : `${ls[i]}"`;
      return ls.join('\n');
    }
    case 'complex-key':
      return `${text}\n${rng.pick(['? [model]\n: soft_tiny', '? {a: 1}\n: 2', '[1, 2]: 3', '{a: b}: c', '? |\n  model\n: soft_tiny', 'null: 1', '~: 2', '1: 3', 'true: 4', '.inf: 5'])}`;
    case 'root-list':
      return ls.map((l) => `- ${l}`).join('\n');
    case 'root-scalar':
      return rng.pick([
        'soft_tiny',
        '42',
        '"model: soft_tiny"',
        'null',
        '~',
        '|\n  model: soft_tiny',
        '[]',
        '{}',
        '-',
        ':',
        '?',
        '#',
      ]);
    case 'empty':
      return rng.pick(['', ' ', '\n', '\n\n\n', '\t', '# only a comment', '---', '...', '\r\n']);
    case 'comment-out': {
      const i = lineIndex();
      ls[i] = `#${ls[i]}`;
      if (rng.chance(0.5)) ls[lineIndex()] += ` # ${rng.pick(['note', 'model: soft_huge', '#', ''])}`;
      return ls.join('\n');
    }
    case 'value-swap': {
      const kvs = ls.map(splitKeyValue);
      const i = lineIndex();
      const j = lineIndex();
      if (kvs[i] && kvs[j]) {
        ls[i] = `${kvs[i]!.key}: ${kvs[j]!.value}`;
        ls[j] = `${kvs[j]!.key}: ${kvs[i]!.value}`;
      }
      return ls.join('\n');
    }
    case 'null-values':
      return ls
        .map((l) =>
          rng.chance(0.4) ? l.replace(/:\s*.*$/, rng.pick([':', ': ~', ': null', ': ""', ': []', ': {}'])) : l,
        )
        .join('\n');

    // ---- numbers ----------------------------------------------------------------------------------
    case 'extreme-number':
      return setValue(
        rng,
        text,
        rng.chance(0.3) ? randomList(rng, rng.range(1, 6), () => rng.pick(EXTREME_NUMBERS)) : rng.pick(EXTREME_NUMBERS),
        rng.chance(0.7) ? rng.pick(KEYS) : undefined,
      );
    case 'non-finite':
      return setValue(
        rng,
        text,
        rng.chance(0.3) ? randomList(rng, rng.range(1, 5), () => rng.pick(NON_FINITE)) : rng.pick(NON_FINITE),
        rng.chance(0.7) ? rng.pick(KEYS) : undefined,
      );
    case 'number-format':
      return setValue(rng, text, rng.pick(NUMBER_FORMATS), rng.chance(0.7) ? rng.pick(KEYS) : undefined);
    case 'architecture-extreme': {
      // Valid-looking but huge or degenerate architectures: the profile and its hover must stay fast.
      const edge = () =>
        rng.pick(['1', '2', '4', '7', '8', '16', '64', '256', '1000', '1024', '4096', '8192', '65536']);
      let t = text;
      const n = rng.range(1, 5);
      for (let k = 0; k < n; k++) {
        const key = rng.pick([
          'embed_dims',
          'depths',
          'num_heads',
          'mlp_ratios',
          'sr_ratios',
          'img_size',
          'num_classes',
          'newton_maxiter',
          'attention',
        ]);
        let v: string;
        if (key === 'attention')
          v = rng.chance(0.5)
            ? rng.pick(ATTENTIONS)
            : randomList(rng, rng.pick([1, 3, 4, 5]), () => rng.pick(ATTENTIONS));
        else if (key === 'num_classes' || key === 'newton_maxiter') v = rng.pick(['1', '100', '1000000', '100000000']);
        else if (key === 'img_size' && rng.chance(0.3))
          v = randomList(rng, rng.range(1, 64), () => String(rng.pick([16, 32, 64, 224, 225, 1000, 4096, 8192])));
        else v = randomList(rng, rng.pick([1, 4, 4, 4, 5]), edge);
        t = setValue(rng, t, v, key);
      }
      if (rng.chance(0.3))
        t = setValue(rng, t, rng.pick(['soft_huge', 'soft_norm_huge', 'ufo_vit_small', 'soft_tiny']), 'model');
      return t;
    }
    case 'list-length': {
      const key = rng.pick(LIST_KEYS);
      // Long lists in bursts too: every later version keeps them, and the server must coalesce the
      // versions rather than analyse each (server bug 8, fixed).
      const n = rng.pick([0, 1, 3, 5, 8, 100, 1000, 5000]);
      return setValue(
        rng,
        text,
        randomList(rng, n, () =>
          key === 'attention'
            ? rng.pick(ATTENTIONS)
            : key === 'images'
              ? 'a.png'
              : String(rng.pick([1, 2, 4, 64, 224])),
        ),
        key,
      );
    }

    // ---- unicode ----------------------------------------------------------------------------------
    case 'unicode-insert': {
      let t = text;
      const n = rng.range(1, 10);
      for (let k = 0; k < n; k++) t = insertAt(t, rng.int(t.length + 1), rng.pick(UNICODE));
      return t;
    }
    case 'unicode-replace':
      return setValue(
        rng,
        text,
        rng.pick([
          `"${rng.pick(UNICODE)}"`,
          rng.pick(UNICODE).repeat(rng.range(1, 50)),
          `soft_${rng.pick(UNICODE)}tiny`,
          `"\\u0000"`,
          `"\\uD800"`,
          `"\\U0001F600"`,
          `'${rng.pick(UNICODE)}'`,
        ]),
      );
    case 'bom':
      return (
        rng.pick(['\uFEFF', '\uFEFF\uFEFF', '\uFFFE']) +
        (rng.chance(0.5) ? text : insertAt(text, rng.int(text.length + 1), '\uFEFF'))
      );
    case 'line-endings':
      return text.replace(/\n/g, () => rng.pick(['\r\n', '\r', '\u2028', '\u2029', '\u0085', '\n\r', '\n']));
    case 'lone-surrogate': {
      let t = text;
      for (let k = rng.range(1, 5); k > 0; k--)
        t = insertAt(t, rng.int(t.length + 1), rng.pick(['\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uDC00\uD800']));
      return t;
    }
    case 'control-chars': {
      let t = text;
      for (let k = rng.range(1, 8); k > 0; k--) t = insertAt(t, rng.int(t.length + 1), rng.pick(CONTROL));
      return t;
    }
    case 'homoglyph':
      return text.replace(/[oaecpxis_:\-10]/g, (c) => (rng.chance(0.2) ? HOMOGLYPHS[c]! : c));

    // ---- nesting ----------------------------------------------------------------------------------
    case 'deep-flow-seq': {
      const d = rng.range(50, 20_000);
      return setValue(
        rng,
        text,
        '['.repeat(d) + '1' + ']'.repeat(d),
        rng.chance(0.5) ? rng.pick(LIST_KEYS) : undefined,
      );
    }
    case 'deep-flow-map': {
      const d = rng.range(50, 10_000);
      return setValue(rng, text, '{a: '.repeat(d) + '1' + '}'.repeat(d));
    }
    case 'deep-block': {
      const d = rng.range(50, 1_000);
      return `${text}\nnest:\n${Array.from({ length: d }, (_, i) => `${' '.repeat(i + 1)}${rng.chance(0.5) ? '- ' : 'k: '}`).join('\n')}1`;
    }
    case 'deep-unclosed': {
      const d = rng.range(50, 10_000);
      return setValue(rng, text, rng.pick(['[', '{', '[{', '{a: [']).repeat(d));
    }
    case 'deep-list-value': {
      const d = rng.range(10, 2_000);
      return `${text}\n${rng.pick(LIST_KEYS)}:\n${Array.from({ length: d }, (_, i) => `${'  '.repeat(Math.min(i, 200))}- ${i}`).join('\n')}`;
    }

    // ---- size -------------------------------------------------------------------------------------
    case 'large': {
      // 100 KB – 1 MB of content the analysis must read: comments, a long string, a block scalar.
      const bytes = rng.range(100_000, 1_000_000);
      return largeDocument(rng, text, bytes);
    }
    case 'huge-10mb':
      return largeDocument(rng, text, 10 * 2 ** 20);

    case 'stacked': {
      let t = text;
      const n = rng.range(2, 5);
      for (let k = 0; k < n; k++) t = mutate(rng, t, rng.pick(STACKABLE), sources);
      return t;
    }
  }
}

const STACKABLE: readonly MutationKind[] = [
  ...MUTATIONS.bytes,
  ...MUTATIONS.structure,
  ...MUTATIONS.numbers,
  ...MUTATIONS.unicode,
];

/**
 * A config followed by `bytes` of payload: long comment lines, a block scalar, a single-quoted,
 * a plain or a double-quoted multi-word string, a flow list of numbers, or keys. Before the
 * server bounded the work per document (server bug 2, fixed), a 10 MB double-quoted string took
 * ~1–2 s and ~0.4–1 GiB, a 10 MB flow list ~15 s and 2.7 GiB, a 10 MB file of keys ~30 s.
 */
export function largeDocument(rng: Rng, config: string, bytes: number): string {
  const words = (n: number) => 'lorem ipsum '.repeat(Math.ceil(n / 12));
  const shapes: (() => string)[] = [
    () => `${config}\n${`# ${'x'.repeat(97)}\n`.repeat(Math.ceil(bytes / 100))}`,
    () => `${config}\nnotes: |\n${`  ${'y'.repeat(98)}\n`.repeat(Math.ceil(bytes / 101))}`,
    () => `${config}\nnotes: '${words(bytes)}'`,
    () => `${config}\nnotes: ${words(bytes)}`,
    () => `${config}\nnotes: "${words(bytes)}"`,
    () => `${config}\nimg_size: [${Array.from({ length: Math.ceil(bytes / 5) }, () => '224').join(', ')}]`,
    () =>
      `${config}\n${Array.from({ length: Math.ceil(bytes / 16) }, (_, i) => `key_${String(i).padStart(6, '0')}: 1\n`).join('')}`,
  ];
  return rng.pick(shapes)();
}

// ---------------------------------------------------------------------------------------
// The corpus

export interface Mutant {
  index: number;
  kind: MutationKind;
  family: MutationFamily;
  source: string;
  text: string;
}

/** Share of each family in the corpus (size and the 10 MB document are placed separately). */
const FAMILY_WEIGHTS: [MutationFamily, number][] = [
  ['bytes', 22],
  ['structure', 30],
  ['numbers', 18],
  ['unicode', 14],
  ['nesting', 3],
  ['stacked', 13],
];

/**
 * `count` mutated documents from `sources`, deterministic in `seed`. One document is the
 * ~10 MB one (at `hugeAt`, default the middle); one in 500 is a 100 KB – 1 MB one.
 */
export function* corpus(
  seed: number,
  count: number,
  sources: readonly Source[],
  hugeAt = Math.floor(count / 2),
): Generator<Mutant> {
  const rng = new Rng(seed);
  const total = FAMILY_WEIGHTS.reduce((a, [, w]) => a + w, 0);
  for (let index = 0; index < count; index++) {
    const r = rng.fork();
    const source = r.pick(sources);
    let family: MutationFamily;
    let kind: MutationKind;
    if (index === hugeAt) {
      family = 'size';
      kind = 'huge-10mb';
    } else if (index % 500 === 250) {
      family = 'size';
      kind = 'large';
    } else {
      let x = r.int(total);
      family = FAMILY_WEIGHTS.find(([, w]) => (x -= w) < 0)![0];
      kind = r.pick(MUTATIONS[family]) as MutationKind;
    }
    yield { index, kind, family, source: source.name, text: mutate(r, source.text, kind, sources) };
  }
}

/** One burst of rapid edits: change events as an editor sends them while someone types. */
export function editBurst(
  rng: Rng,
  text: string,
  length: number,
  sources: readonly Source[],
): { changes: TextDocumentContentChangeEvent[]; text: string }[] {
  const out: { changes: TextDocumentContentChangeEvent[]; text: string }[] = [];
  let cur = text;
  for (let k = 0; k < length; k++) {
    let changes: TextDocumentContentChangeEvent[];
    const r = rng.next();
    if (r < 0.1) {
      changes = [{ text: mutate(rng, cur, rng.pick(STACKABLE), sources) }];
    } else if (r < 0.15) {
      // Ranges past the end of the document (a client bug the server must survive; with a line
      // break they used to corrupt the server's line index: server bug 3, fixed).
      changes = [
        {
          range: { start: { line: 10_000, character: 5 }, end: { line: 10_001, character: 0 } },
          text: rng.pick(['x', '\n', '']),
        },
      ];
    } else {
      const n = rng.range(1, 3);
      changes = [];
      // Several changes in one notification apply in order, each to the result of the previous.
      let scratch = cur;
      for (let c = 0; c < n; c++) {
        const a = rng.int(scratch.length + 1);
        const b = Math.min(scratch.length, a + (rng.chance(0.5) ? 0 : rng.range(1, 5)));
        const insert = rng.pick(['a', '1', ' ', ':', '\n', '- ', '[', ']', '"', '0', 'soft', '#', '\t', '🙂', '']);
        const tmp = TextDocument.create('file:///s', 'yaml', 0, scratch);
        changes.push({ range: { start: tmp.positionAt(a), end: tmp.positionAt(b) }, text: insert });
        scratch = scratch.slice(0, a) + insert + scratch.slice(b);
      }
    }
    cur = applyEdits(cur, changes);
    out.push({ changes, text: cur });
  }
  return out;
}

/**
 * The text after a notification's changes, each applied to the result of the previous one. Each
 * change gets a fresh line index: TextDocument.update's incremental index goes wrong on a range
 * past the end (server bug 3), so the expected text is computed without it.
 */
function applyEdits(text: string, changes: readonly TextDocumentContentChangeEvent[]): string {
  for (const c of changes) {
    if (!('range' in c)) {
      text = c.text;
      continue;
    }
    const fresh = TextDocument.create('file:///expected', 'yaml', 0, text);
    const [a, b] = [fresh.offsetAt(c.range.start), fresh.offsetAt(c.range.end)].sort((x, y) => x - y);
    text = text.slice(0, a) + c.text + text.slice(b);
  }
  return text;
}

// ---------------------------------------------------------------------------------------
// The driver: one server, every document over the real connection

export interface FuzzOptions {
  seed: number;
  documents: number;
  /** Concurrent document lanes (each its own URI, sequential within the lane). */
  lanes?: number;
  /** One burst of rapid edits after every `burstEvery` documents, `burstLength` versions long. */
  burstEvery?: number;
  burstLength?: number;
  /** A hover and a codeLens after every `probeEvery` documents. */
  probeEvery?: number;
  /** All documents are closed, and the RSS sampled, every `closeEvery` documents. */
  closeEvery?: number;
  /** Per-version deadline for its diagnostics (ms). */
  deadlineMs?: number;
  log?: (line: string) => void;
}

export interface Failure {
  what: string;
  detail: string;
}

export interface FuzzResult {
  documents: number;
  /** Versions sent (documents + burst versions). */
  versions: number;
  burstVersions: number;
  bursts: number;
  kinds: Map<string, number>;
  families: Map<string, number>;
  diagnosticsLatencyMs: number[];
  /** The five slowest versions: what they were and their diagnostics latency. */
  slowest: { label: string; ms: number }[];
  /** Latency of the one ~10 MB document, and its size in bytes. */
  huge: { bytes: number; latencyMs: number } | null;
  probes: number;
  probeLatencyMs: number[];
  diagnosticsPublished: number;
  /** RSS of the server after each close-all round (MiB), and the peak (VmHWM). */
  rssAfterCloseMiB: number[];
  rssSamplesMiB: number[];
  peakRssMiB: number;
  failures: Failure[];
  serverErrors: string[];
  wallMs: number;
  serverAlive: boolean;
}

/** VmRSS and VmHWM (peak) of a process in MiB, from /proc (Linux). */
export function procMemory(pid: number): { rssMiB: number; peakMiB: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** The harness's type-7 percentile (server/jobs/bench/stats.ts); NaN when nothing was measured. */
export function percentile(samples: readonly number[], p: number): number {
  return samples.length ? statsPercentile(samples, p) : NaN;
}

function checkDiagnostics(ds: unknown, lineCount: number): string | null {
  if (!Array.isArray(ds)) return 'diagnostics is not an array';
  for (const d of ds as Diagnostic[]) {
    const { start, end } = d.range ?? ({} as Diagnostic['range']);
    const ok = (p: { line: number; character: number } | undefined) =>
      !!p &&
      Number.isInteger(p.line) &&
      Number.isInteger(p.character) &&
      p.line >= 0 &&
      p.character >= 0 &&
      p.line < lineCount + 1;
    if (!ok(start) || !ok(end)) return `bad range ${JSON.stringify(d.range)}`;
    if (start.line > end.line || (start.line === end.line && start.character > end.character))
      return `inverted range ${JSON.stringify(d.range)}`;
    if (typeof d.message !== 'string' || !d.message) return 'empty message';
    if (d.severity !== undefined && ![1, 2, 3, 4].includes(d.severity)) return `bad severity ${d.severity}`;
  }
  return null;
}

/**
 * Sends the corpus to one bundled server and checks, for every version of every document,
 * that its publishDiagnostics arrives within the deadline; probes hover and codeLens; samples
 * the server's memory. Never throws for a server problem: they are collected in `failures`.
 */
export async function fuzzServer(o: FuzzOptions): Promise<FuzzResult> {
  const lanes = o.lanes ?? 4;
  const burstEvery = o.burstEvery ?? 100;
  const burstLength = o.burstLength ?? 20;
  const probeEvery = o.probeEvery ?? 25;
  const closeEvery = o.closeEvery ?? 1000;
  const deadline = o.deadlineMs ?? 1000;
  const log = o.log ?? (() => {});
  const sources = loadSources();
  const client = await LspClient.start();
  const pid = client.proc.pid!;
  const t0 = performance.now();
  const r: FuzzResult = {
    documents: 0,
    versions: 0,
    burstVersions: 0,
    bursts: 0,
    kinds: new Map(),
    families: new Map(),
    diagnosticsLatencyMs: [],
    slowest: [],
    huge: null,
    probes: 0,
    probeLatencyMs: [],
    diagnosticsPublished: 0,
    rssAfterCloseMiB: [],
    rssSamplesMiB: [],
    peakRssMiB: 0,
    failures: [],
    serverErrors: [],
    wallMs: 0,
    serverAlive: false,
  };
  const fail = (what: string, detail: string) => {
    if (r.failures.length < 200) r.failures.push({ what, detail });
    if (r.failures.length <= 50) log(`  FAILURE ${what}: ${detail}`);
  };
  let exited = false;
  let stopping = false;
  client.proc.once('exit', (code, signal) => {
    exited = true;
    if (!stopping) fail('server exited', `code ${code}, signal ${signal}`);
  });
  client.conn.onNotification('window/logMessage', (p: { type: number; message: string }) => {
    if (p.type === 1 || /failed/.test(p.message)) r.serverErrors.push(p.message.slice(0, 500));
  });

  // Versions waiting for diagnostics, by uri. Diagnostics published for version V answer every
  // version ≤ V of that document (a newer text supersedes an older one, so a server that
  // coalesces rapid edits passes too). Documents that are not configs get no version in their
  // publish: it answers the latest version sent.
  interface Waiter {
    version: number;
    sentAt: number;
    lines: number;
    label: string;
    resolve: (ms: number) => void;
  }
  const waiting = new Map<string, Waiter[]>();
  const lastSent = new Map<string, number>();
  client.conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
    r.diagnosticsPublished++;
    const version = p.version ?? lastSent.get(p.uri) ?? -1;
    const ws = waiting.get(p.uri);
    if (!ws) return; // a close's empty publish
    const now = performance.now();
    const own = ws.find((w) => w.version === version);
    if (own) {
      const bad = checkDiagnostics(p.diagnostics, own.lines);
      if (bad) fail('invalid diagnostics', `${own.label}: ${bad}`);
    }
    const answered = ws.filter((w) => w.version <= version);
    waiting.set(
      p.uri,
      ws.filter((w) => w.version > version),
    );
    for (const w of answered) w.resolve(now - w.sentAt);
  });

  const versions = new Map<string, number>();
  /** Sends a version and returns a promise of its diagnostics latency (ms; Infinity if none in 30 s). */
  const send = (
    uri: string,
    changes: TextDocumentContentChangeEvent[],
    text: string,
    label: string,
  ): Promise<number> => {
    const version = (versions.get(uri) ?? 0) + 1;
    versions.set(uri, version);
    lastSent.set(uri, version);
    r.versions++;
    const lineCount = text.split(/\r\n|\r|\n/).length;
    const result = new Promise<number>((resolve) => {
      const w: Waiter = {
        version,
        sentAt: performance.now(),
        lines: lineCount,
        label,
        resolve: (ms) => (clearTimeout(timer), resolve(ms)),
      };
      const timer = setTimeout(() => {
        waiting.set(
          uri,
          (waiting.get(uri) ?? []).filter((x) => x !== w),
        );
        resolve(Infinity);
      }, 30_000);
      waiting.set(uri, [...(waiting.get(uri) ?? []), w]);
    });
    if (version === 1)
      void client.conn.sendNotification('textDocument/didOpen', {
        textDocument: { uri, languageId: 'yaml', version, text },
      });
    else
      void client.conn.sendNotification('textDocument/didChange', {
        textDocument: { uri, version },
        contentChanges: changes,
      });
    return result.then((ms) => {
      if (ms > deadline)
        fail(
          ms === Infinity ? 'no diagnostics' : 'late diagnostics',
          `${label}: ${ms === Infinity ? 'none within 30 s' : `${ms.toFixed(0)} ms`}`,
        );
      r.diagnosticsLatencyMs.push(ms);
      if (r.slowest.length < 5 || ms > r.slowest[r.slowest.length - 1]!.ms) {
        r.slowest.push({ label, ms });
        r.slowest.sort((a, b) => b.ms - a.ms);
        r.slowest.length = Math.min(r.slowest.length, 5);
      }
      return ms;
    });
  };
  const closeAll = async () => {
    for (const uri of versions.keys())
      await client.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
    versions.clear();
  };
  const sample = () => {
    const m = procMemory(pid);
    if (m) {
      r.rssSamplesMiB.push(m.rssMiB);
      r.peakRssMiB = Math.max(r.peakRssMiB, m.peakMiB);
    }
    return m;
  };
  const probe = async (uri: string, text: string, rng: Rng, label: string) => {
    const ls = text.split('\n');
    const line = rng.chance(0.9) ? rng.int(ls.length) : ls.length + rng.int(5);
    const character = rng.chance(0.9) ? rng.int((ls[line]?.length ?? 0) + 1) : 1000;
    const t = performance.now();
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 30_000).unref());
    const answers = Promise.all([
      client.conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character } }),
      client.conn.sendRequest('textDocument/codeLens', { textDocument: { uri } }),
    ]);
    try {
      const res = await Promise.race([answers, timeout]);
      const ms = performance.now() - t;
      if (res === 'timeout') return fail('no hover/codeLens answer', `${label} within 30 s`);
      r.probes++;
      r.probeLatencyMs.push(ms);
      if (ms > deadline) fail('late hover/codeLens', `${label}: ${ms.toFixed(0)} ms`);
      if (!Array.isArray(res[1])) fail('codeLens not an array', `${label}: ${JSON.stringify(res[1]).slice(0, 200)}`);
    } catch (e) {
      fail('hover/codeLens error', `${label}: ${String(e).slice(0, 300)}`);
    }
  };

  const rng = new Rng(o.seed ^ 0x9e3779b9);
  const uriOf = (lane: number, k: number) => {
    // Mostly names the server claims by pattern; some plain names claimed (or not) by content.
    const names = ['SOFT_fuzz.yaml', 'fuzz.vitlens.yaml', 'vitlens-fuzz.yml', 'experiment.yaml'];
    return `file:///tmp/vitlens-fuzz/lane${lane}/r${k}/${names[lane % names.length]}`;
  };
  let round = 0;
  const queue = corpus(o.seed, o.documents, sources, Math.floor(o.documents / 2));
  let next = queue.next();
  let sinceBurst = 0;
  let sinceProbe = 0;
  let sinceClose = 0;
  sample();
  while (!next.done && !exited) {
    // One step: up to `lanes` documents in flight on distinct URIs.
    const batch: Mutant[] = [];
    while (!next.done && batch.length < lanes) {
      batch.push(next.value);
      next = queue.next();
    }
    await Promise.all(
      batch.map(async (m, lane) => {
        const uri = uriOf(lane, round);
        const label = `#${m.index} ${m.kind} of ${m.source}`;
        r.kinds.set(m.kind, (r.kinds.get(m.kind) ?? 0) + 1);
        r.families.set(m.family, (r.families.get(m.family) ?? 0) + 1);
        r.documents++;
        const ms = await send(uri, [{ text: m.text }], m.text, label);
        if (m.kind === 'huge-10mb') {
          r.huge = { bytes: Buffer.byteLength(m.text), latencyMs: ms };
          sample();
        }
      }),
    );
    sinceBurst += batch.length;
    sinceProbe += batch.length;
    sinceClose += batch.length;
    if (sinceProbe >= probeEvery) {
      sinceProbe = 0;
      const lane = rng.int(batch.length);
      await probe(uriOf(lane, round), batch[lane]!.text, rng, `#${batch[lane]!.index} ${batch[lane]!.kind}`);
    }
    if (sinceBurst >= burstEvery) {
      // Rapid edits: `burstLength` didChange notifications on one document, none awaited.
      sinceBurst = 0;
      r.bursts++;
      const uri = uriOf(0, round);
      const base = rng.pick(sources).text;
      const opened = send(uri, [{ text: base }], base, `burst ${r.bursts} base`);
      const edits = editBurst(rng.fork(), base, burstLength, sources);
      const all = [opened, ...edits.map((e, k) => send(uri, e.changes, e.text, `burst ${r.bursts} edit ${k + 1}`))];
      r.burstVersions += edits.length;
      await Promise.all(all);
      await probe(uri, edits[edits.length - 1]!.text, rng, `burst ${r.bursts} final`);
    }
    if (sinceClose >= closeEvery) {
      sinceClose = 0;
      await closeAll();
      round++;
      // A round trip after the closes, so the server has processed them before the sample.
      await client.conn.sendRequest('textDocument/codeLens', {
        textDocument: { uri: 'file:///tmp/vitlens-fuzz/none.vitlens.yaml' },
      });
      const m = sample();
      if (m) r.rssAfterCloseMiB.push(m.rssMiB);
      log(
        `  ${r.documents} documents, ${r.versions} versions; server RSS ${m?.rssMiB.toFixed(0)} MiB (peak ${m?.peakMiB.toFixed(0)} MiB); p99 ${percentile(r.diagnosticsLatencyMs, 0.99).toFixed(1)} ms; ${r.failures.length} failures`,
      );
    }
  }
  await closeAll();
  sample();
  r.serverAlive = !exited && client.proc.exitCode === null;
  if (r.serverAlive) {
    try {
      const h = await Promise.race([
        client.conn.sendRequest('textDocument/hover', {
          textDocument: { uri: 'file:///tmp/none.yaml' },
          position: { line: 0, character: 0 },
        }),
        new Promise((_, rej) => setTimeout(() => rej(new Error('no answer in 5 s')), 5000)),
      ]);
      void h;
    } catch (e) {
      r.serverAlive = false;
      fail('server unresponsive at the end', String(e));
    }
  }
  r.wallMs = performance.now() - t0;
  stopping = true;
  await client.stop();
  return r;
}

/** The figures of a run, one per line, for the test log, the soak script and docs/RELIABILITY.md. */
export function formatFuzzResult(r: FuzzResult): string[] {
  const lat = r.diagnosticsLatencyMs.filter(Number.isFinite);
  const f = (n: number) => `${n.toFixed(1)} ms`;
  // Not Math.max(...xs): a soak has hundreds of thousands of samples.
  const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
  const kinds = [...r.kinds].sort((a, b) => b[1] - a[1]);
  return [
    `documents: ${r.documents} (${r.versions} versions incl. ${r.burstVersions} rapid-edit versions in ${r.bursts} bursts), ${r.kinds.size} mutation kinds in ${r.families.size} families`,
    `families: ${[...r.families].map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `kinds: ${kinds.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `diagnostics latency: p50 ${f(percentile(lat, 0.5))}, p99 ${f(percentile(lat, 0.99))}, max ${f(max(lat))} (${r.diagnosticsLatencyMs.length - lat.length} missing)`,
    `slowest: ${r.slowest.map((x) => `${x.label} ${f(x.ms)}`).join('; ')}`,
    `~10 MB document: ${r.huge ? `${(r.huge.bytes / 2 ** 20).toFixed(1)} MiB, diagnostics in ${f(r.huge.latencyMs)}` : 'not sent'}`,
    `hover+codeLens probes: ${r.probes}, p99 ${f(percentile(r.probeLatencyMs, 0.99))}, max ${f(max(r.probeLatencyMs))}`,
    `server RSS: peak ${r.peakRssMiB.toFixed(0)} MiB (VmHWM); after each close-all round ${r.rssAfterCloseMiB.map((x) => x.toFixed(0)).join(', ')} MiB`,
    `failures: ${r.failures.length}; server errors logged: ${r.serverErrors.length}; server alive at the end: ${r.serverAlive}; wall ${(r.wallMs / 1000).toFixed(1)} s`,
  ];
}

// ---------------------------------------------------------------------------------------
// Peak memory of this process around one call (used by the hostile-input tests too)

export interface Measured<T> {
  ms: number;
  /** Peak RSS during the call above the RSS just before it (MiB). */
  riseMiB: number;
  value?: T;
  error?: unknown;
}

/**
 * Samples this process's RSS every millisecond from a worker thread, so the peak of a
 * synchronous call (which blocks the main thread) is seen too.
 */
export class PeakRss {
  private readonly peakKiB = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker;

  constructor() {
    this.worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const peak = new Int32Array(workerData);
       setInterval(() => {
         const kib = Math.round(process.memoryUsage.rss() / 1024);
         if (kib > Atomics.load(peak, 0)) Atomics.store(peak, 0, kib);
       }, 1);`,
      { eval: true, workerData: this.peakKiB.buffer, execArgv: [] },
    );
    this.worker.unref();
  }

  async measure<T>(f: () => T | Promise<T>): Promise<Measured<T>> {
    const before = process.memoryUsage.rss() / 1024;
    Atomics.store(this.peakKiB, 0, Math.round(before));
    // Let the sampler see the baseline before the call blocks this thread.
    await new Promise((r) => setTimeout(r, 3));
    const t = performance.now();
    const out: Measured<T> = { ms: 0, riseMiB: 0 };
    try {
      out.value = await f();
    } catch (e) {
      out.error = e;
    }
    out.ms = performance.now() - t;
    await new Promise((r) => setTimeout(r, 3));
    const after = process.memoryUsage.rss() / 1024;
    out.riseMiB = (Math.max(Atomics.load(this.peakKiB, 0), after) - before) / 1024;
    return out;
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}
