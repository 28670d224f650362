/**
 * YAML → config entries with source positions (the `yaml` library's document API),
 * so every diagnostic can point at the exact key, value or list item.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { checkDocumentLimits } from './limits';
import type { Span } from './span';

export type ConfigValue =
  | { kind: 'scalar'; value: string | number | boolean | null; span: Span; quoted: boolean }
  | { kind: 'list'; items: ConfigValue[]; span: Span }
  | { kind: 'map'; span: Span };

export interface ConfigEntry {
  key: string;
  keySpan: Span;
  value: ConfigValue;
  /** Whole `key: value` span. */
  span: Span;
}

export interface SyntaxProblem {
  span: Span;
  message: string;
  severity: 'error' | 'warning';
}

export interface ParsedConfig {
  text: string;
  entries: ConfigEntry[];
  syntax: SyntaxProblem[];
  /** The root is not a mapping (empty document, a list, a scalar …). */
  rootProblem: SyntaxProblem | null;
  /**
   * Past a size limit (config/limits.ts): not parsed. `tooLarge` says why and where; `entries`
   * then come from the lines before that point, only to tell whether the document is a config.
   */
  tooLarge: SyntaxProblem | null;
  lines: LineCounter;
}

function spanOf(node: Node | null | undefined, fallback: Span): Span {
  const r = node?.range;
  return r ? { start: r[0], end: r[1] } : fallback;
}

function toValue(node: unknown, fallback: Span): ConfigValue {
  if (isSeq(node)) {
    const span = spanOf(node, fallback);
    return { kind: 'list', items: node.items.map((item) => toValue(item, span)), span };
  }
  if (isMap(node)) return { kind: 'map', span: spanOf(node, fallback) };
  if (isScalar(node)) {
    const v = node.value;
    const value =
      typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null ? v : String(v);
    const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    return { kind: 'scalar', value, span: spanOf(node, fallback), quoted };
  }
  // A key with no value (`model:`) parses as null with no node.
  return { kind: 'scalar', value: null, span: fallback, quoted: false };
}

export function parseConfig(text: string): ParsedConfig {
  const limit = checkDocumentLimits(text);
  if (!limit) return parseYaml(text);
  // The head is a prefix of the text, so its entries' spans are valid offsets into it.
  const { entries } = parseYaml(limit.head);
  return {
    text,
    entries,
    syntax: [],
    rootProblem: null,
    tooLarge: { span: limit.span, message: limit.message, severity: 'error' },
    lines: countLines(text),
  };
}

function countLines(text: string): LineCounter {
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  return lines;
}

function parseYaml(text: string): ParsedConfig {
  const lines = new LineCounter();
  // yaml's own uniqueKeys check compares every key with every earlier one (quadratic: 20,000
  // keys took seconds); a config's keys live at the top level, checked below with a Set.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true });
  const syntax: SyntaxProblem[] = [
    ...doc.errors.map((e) => ({
      span: { start: e.pos[0], end: Math.max(e.pos[1], e.pos[0] + 1) },
      message: firstLine(e.message),
      severity: 'error' as const,
    })),
    ...doc.warnings.map((w) => ({
      span: { start: w.pos[0], end: Math.max(w.pos[1], w.pos[0] + 1) },
      message: firstLine(w.message),
      severity: 'warning' as const,
    })),
  ];
  const entries: ConfigEntry[] = [];
  let rootProblem: SyntaxProblem | null = null;
  const contents = doc.contents;
  const whole = { start: 0, end: Math.max(1, text.length) };
  if (contents === null || contents === undefined) {
    rootProblem = {
      span: { start: 0, end: Math.min(1, text.length) },
      message: 'The config is empty: expected a mapping such as `model: soft_tiny`.',
      severity: 'error',
    };
  } else if (!isMap(contents)) {
    rootProblem = {
      span: spanOf(contents as Node, whole),
      message: 'The config must be a mapping of keys to values (e.g. `model: soft_tiny`).',
      severity: 'error',
    };
  } else {
    const seen = new Set<string>();
    for (const pair of contents.items) {
      const keyNode = pair.key as Node | null;
      if (!isScalar(keyNode)) continue;
      const keySpan = spanOf(keyNode, whole);
      const name = String(keyNode.value);
      if (seen.has(name))
        syntax.push({
          span: keySpan,
          message: `Map keys must be unique: \`${name}\` is set twice (the later value would win).`,
          severity: 'error',
        });
      seen.add(name);
      const value = toValue(pair.value, { start: keySpan.end, end: keySpan.end });
      entries.push({
        key: name,
        keySpan,
        value,
        span: { start: keySpan.start, end: Math.max(value.span.end, keySpan.end) },
      });
    }
  }
  return { text, entries, syntax, rootProblem, tooLarge: null, lines };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** 0-based line and character of an offset. */
export function positionOf(parsed: ParsedConfig, offset: number): { line: number; character: number } {
  const p = parsed.lines.linePos(offset);
  return { line: p.line - 1, character: p.col - 1 };
}
