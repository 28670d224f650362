/**
 * The open documents' text as the client edits it: vscode-languageserver's TextDocuments with
 * every incremental change clamped to the document it applies to first.
 *
 * Why: vscode-languageserver-textdocument (1.0.16) applies a range that lies past the end of the
 * document as given — the text lands at the end, but the line index is updated at the range's own
 * line, so a range at line 10,000 of a 3-line document writes a line offset into a sparse array
 * and every later position of that document comes out as `character: null`. Only a misbehaving
 * client sends such ranges; clamping them here keeps what we publish valid LSP.
 */
import { TextDocuments } from 'vscode-languageserver/node';
import { TextDocument, type Position, type TextDocumentContentChangeEvent } from 'vscode-languageserver-textdocument';

/** A position as the document can hold it: integer, not before the start, not past the end. */
export function clampPosition(doc: TextDocument, p: Position): Position {
  const whole = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) ? Math.max(0, Math.trunc(n)) : 0);
  return doc.positionAt(doc.offsetAt({ line: whole(p?.line), character: whole(p?.character) }));
}

/** Applies the changes one by one, each clamped against the text the previous ones left. */
export function applyChanges(
  doc: TextDocument,
  changes: readonly TextDocumentContentChangeEvent[],
  version: number,
): TextDocument {
  // The version moves even when no change is usable.
  doc = TextDocument.update(doc, [], version);
  for (const change of changes) {
    // A change without text is malformed; skipping it keeps the rest of the notification.
    if (typeof change?.text !== 'string') continue;
    const clamped: TextDocumentContentChangeEvent =
      'range' in change && change.range
        ? {
            range: { start: clampPosition(doc, change.range.start), end: clampPosition(doc, change.range.end) },
            text: change.text,
          }
        : { text: change.text };
    doc = TextDocument.update(doc, [clamped], version);
  }
  return doc;
}

export function createTextDocuments(): TextDocuments<TextDocument> {
  return new TextDocuments({ create: TextDocument.create, update: applyChanges });
}
