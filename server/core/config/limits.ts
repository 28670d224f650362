/**
 * How much text the server analyses per document, checked before any YAML parsing.
 *
 * Why: the analysis runs on every keystroke on the server's one thread, and the `yaml` parser's
 * cost grows with the number of nodes (measured here: a 400,000-item flow list, 1.9 MiB, took
 * 2–4 s and 600 MiB; a 10 MiB one 15 s and 2.7 GiB). A real config is tiny next to these bounds
 * (the official SOFT configs: 8 lines and at most 150 bytes each; ViT Lens keys add lists of a
 * few entries), so a document past one of them is refused with one diagnostic instead of being
 * parsed; every bound keeps the worst document under it at a few hundred ms.
 */
import type { Span } from './span';

export const DOCUMENT_LIMITS = {
  /** UTF-16 code units (what the editor counts as characters). */
  characters: 1024 * 1024,
  lines: 5_000,
  /** Flow-collection separators and openers (`,` `[` `{`): list items and nesting in one line. */
  flowItems: 20_000,
} as const;

export interface LimitProblem {
  /** Where the document first passes the limit (the start of that line). */
  span: Span;
  message: string;
  /** The text before that line: small enough to parse, for telling whether the document is a config. */
  head: string;
}

/** Enough to see a config's first keys (detect.ts), small enough to parse in a few ms whatever it holds. */
const HEAD_CHARACTERS = 16 * 1024;

const LINE_FEED = 10;
const COMMA = 44;
const OPEN_BRACKET = 91;
const OPEN_BRACE = 123;

/** Null when the text is within every limit; else what it passes first, and where. One linear scan. */
export function checkDocumentLimits(text: string): LimitProblem | null {
  const { characters, lines, flowItems } = DOCUMENT_LIMITS;
  let line = 1;
  let lineStart = 0;
  let flow = 0;
  // Characters past the limit are not scanned: the problem is then the character limit, at the line holding the first of them.
  const end = Math.min(text.length, characters);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === LINE_FEED) {
      lineStart = i + 1;
      // A trailing line break does not start a line of its own.
      if (++line > lines && lineStart < text.length)
        return problem(text, lineStart, line, `has more than ${count(lines)} lines`);
    } else if (c === COMMA || c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++flow > flowItems)
        return problem(
          text,
          lineStart,
          line,
          `has more than ${count(flowItems)} flow-list items and brackets (\`,\` \`[\` \`{\`)`,
        );
    }
  }
  if (text.length > characters) return problem(text, lineStart, line, `has ${count(text.length)} characters`);
  return null;
}

function problem(text: string, lineStart: number, line: number, what: string): LimitProblem {
  return {
    span: { start: lineStart, end: Math.min(text.length, lineStart + 1) },
    message: `This document ${what}, passed at line ${count(line)}: too large to be a ViT Lens config (an official SOFT config has 8 lines, 150 bytes), so it is not analysed — no profile, hover or lenses. Limits: ${count(DOCUMENT_LIMITS.characters)} characters (UTF-16 code units, as the editor counts them), ${count(DOCUMENT_LIMITS.lines)} lines, ${count(DOCUMENT_LIMITS.flowItems)} flow items.`,
    head: text.slice(0, Math.min(lineStart, HEAD_CHARACTERS)),
  };
}

function count(n: number): string {
  return n.toLocaleString('en');
}
