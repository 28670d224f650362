/** Completion: keys at the start of a line, model names and enum values after a key. */
import { CompletionItemKind, type CompletionItem, type Position } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { AnalyzedDocument } from '../documents';
import { CONFIG_KEYS, keyDef } from '../../core/config/format';
import { REGISTERED_MODELS } from '../../core/models/registry';

export function completion(doc: AnalyzedDocument, text: TextDocument, position: Position): CompletionItem[] {
  const lineStart = text.offsetAt({ line: position.line, character: 0 });
  const before = text.getText().slice(lineStart, text.offsetAt(position));
  const keyed = /^([A-Za-z_][\w-]*)\s*:\s*(.*)$/.exec(before);
  if (!keyed) {
    if (/^\s+\S/.test(before) || before.trimStart().startsWith('-')) return [];
    const present = new Set(doc.analysis.parsed.entries.map((e) => e.key));
    return CONFIG_KEYS.filter((k) => !present.has(k.key)).map((k) => ({
      label: k.key,
      kind: CompletionItemKind.Property,
      detail: k.group === 'official' ? 'official SOFT key' : 'ViT Lens key',
      documentation: { kind: 'markdown', value: `${k.summary}${k.details ? `\n\n${k.details}` : ''}` },
      insertText: `${k.key}: `,
    }));
  }
  const def = keyDef(keyed[1]!);
  if (!def) return [];
  if (def.key === 'model') {
    return REGISTERED_MODELS.map((m) => ({
      label: m.name,
      kind: CompletionItemKind.EnumMember,
      detail: m.published
        ? `${m.published.params} params, ${m.published.gflops} GMACs, top-1 ${m.published.top1} %`
        : m.params.family === 'ufo'
          ? 'XCiT-sized assumption'
          : 'no published figures',
      documentation: { kind: 'markdown', value: [m.title, ...m.notes].join('\n\n') },
    }));
  }
  const t = def.type;
  if (t.kind === 'enum' || t.kind === 'enumOrList') {
    return t.values.map((v) => ({ label: v, kind: CompletionItemKind.EnumMember, detail: def.summary }));
  }
  return [];
}
