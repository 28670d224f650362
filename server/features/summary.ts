/** The one-line summary on the `model:` line, as an inlay hint and as a CodeLens. */
import { InlayHintKind, type CodeLens, type InlayHint } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { Commands } from '../../protocol/lsp';
import type { AnalyzedDocument } from '../documents';
import { summaryLine } from '../profile/format';

function anchor(doc: AnalyzedDocument): { start: number; end: number } | null {
  const e = doc.analysis.entries.get('model') ?? doc.analysis.parsed.entries[0];
  return e ? e.span : null;
}

export function inlayHints(doc: AnalyzedDocument, text: TextDocument): InlayHint[] {
  const p = doc.profile();
  const at = anchor(doc);
  if (!p || !at) return [];
  const end = text.positionAt(at.end);
  const lineEnd = text.positionAt(text.offsetAt({ line: end.line + 1, character: 0 }) - 1);
  const pos = lineEnd.line === end.line ? lineEnd : end;
  return [{ position: pos, label: `  ${summaryLine(p)}`, kind: InlayHintKind.Type, paddingLeft: true, tooltip: 'Exact parameter count; multiply–accumulates by convention B (the README convention). Hover `model` for all conventions.' }];
}

export function codeLenses(doc: AnalyzedDocument, text: TextDocument): CodeLens[] {
  const p = doc.profile();
  const at = anchor(doc);
  if (!at) return [];
  const range = { start: text.positionAt(at.start), end: text.positionAt(at.start) };
  const title = p ? `ViT Lens: ${summaryLine(p)}` : 'ViT Lens: fix the errors to see the profile';
  return [{ range, command: { title, command: Commands.showProfile, arguments: [doc.uri] } }];
}
