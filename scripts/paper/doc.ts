/**
 * docs/PAPER.md's generated blocks: each lies between `<!-- BEGIN GENERATED name -->` and
 * `<!-- END GENERATED name -->` lines, written by a script of this folder and compared by
 * test/paper.test.ts with what the script would write now, so the document cannot go stale. A
 * `MEASURED` block is written the same way but only by a measuring run; the test leaves it alone
 * (its figures belong to the machine that measured them).
 */
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const PAPER_DOC = path.join(ROOT, 'docs', 'PAPER.md');

export type BlockKind = 'GENERATED' | 'MEASURED';

function markers(kind: BlockKind, name: string): [string, string] {
  return [`<!-- BEGIN ${kind} ${name} -->`, `<!-- END ${kind} ${name} -->`];
}

/** The text between a block's markers (without them), or null when the document has no such block. */
export function readBlock(doc: string, kind: BlockKind, name: string): string | null {
  const [begin, end] = markers(kind, name);
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return null;
  return doc
    .slice(i + begin.length, j)
    .replace(/^\n/, '')
    .replace(/\n$/, '');
}

/** The document with a block's content replaced; the markers must already be there. */
export function writeBlock(doc: string, kind: BlockKind, name: string, content: string): string {
  const [begin, end] = markers(kind, name);
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/PAPER.md has no ${begin} … ${end} block`);
  return `${doc.slice(0, i + begin.length)}\n${content}\n${doc.slice(j)}`;
}

/** Replaces a block of docs/PAPER.md on disk. */
export function updatePaperDoc(kind: BlockKind, name: string, content: string): void {
  const doc = fs.readFileSync(PAPER_DOC, 'utf8');
  fs.writeFileSync(PAPER_DOC, writeBlock(doc, kind, name, content));
}

/** A markdown table: header row, alignment row (numbers right-aligned), body. */
export function markdownTable(head: string[], rows: string[][], numeric: boolean[] = []): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const align = head.map((_, i) => (numeric[i] ? '---:' : '---'));
  return [line(head), `|${align.join('|')}|`, ...rows.map(line)].join('\n');
}
