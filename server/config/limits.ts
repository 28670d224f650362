/**
 * How much text the server analyses per document, checked before any YAML parsing.
 *
 * Why: the analysis runs on every keystroke on the server's one thread, and the `yaml` parser's
 * cost grows with the number of nodes (measured here: a 400,000-item flow list, 1.9 MiB, took
 * 2–4 s and 600 MiB; a 10 MiB one 15 s and 2.7 GiB). A real config is tiny next to these bounds
 * (the largest official SOFT config: 3 KB, 60 lines, lists of 4), so a document past one of them
 * is refused with one diagnostic instead of being parsed; every bound keeps the worst document
 * under it at a few hundred ms.
 */
import type { Span } from './parse';

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
  const end = Math.min(text.length, characters + 1);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === LINE_FEED) {
      lineStart = i + 1;
      // A trailing line break does not start a line of its own.
      if (++line > lines && lineStart < text.length) return problem(text, lineStart, line, `has more than ${lines.toLocaleString('en')} lines`);
    } else if (c === COMMA || c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++flow > flowItems) return problem(text, lineStart, line, `has more than ${flowItems.toLocaleString('en')} flow-list items and brackets (\`,\` \`[\` \`{\`)`);
    }
  }
  if (text.length > characters) return problem(text, lineStart, line, `is ${mib(text.length)} long (over ${mib(characters)})`);
  return null;
}

function problem(text: string, lineStart: number, line: number, what: string): LimitProblem {
  return {
    span: { start: lineStart, end: Math.min(text.length, lineStart + 1) },
    message: `This document ${what}, passed at line ${line.toLocaleString('en')}: too large to be a ViT Lens config (the largest official SOFT config has 60 lines, 3 KB), so it is not analysed — no profile, hover or lenses. Limits: ${mib(DOCUMENT_LIMITS.characters)}, ${DOCUMENT_LIMITS.lines.toLocaleString('en')} lines, ${DOCUMENT_LIMITS.flowItems.toLocaleString('en')} flow items.`,
    head: text.slice(0, Math.min(lineStart, HEAD_CHARACTERS)),
  };
}

function mib(characters: number): string {
  return `${(characters / 2 ** 20).toFixed(characters < 2 ** 20 ? 2 : 1)} MiB`;
}
