/**
 * The standard LSP features of a config: diagnostics (published as it changes), hover,
 * completion, code lenses and inlay hints. Each is computed in features/.
 */
import type { ServerContext } from '../context';
import { completion } from '../features/completion';
import { toLspDiagnostics } from '../features/diagnostics';
import { hover } from '../features/hover';
import { codeLenses, inlayHints } from '../features/summary';
import { PublishScheduler } from '../publish-scheduler';

export function registerLanguageFeatures({
  connection,
  documents,
  configs,
  trust,
  guard,
  imageResults,
}: ServerContext): void {
  const publish = (uri: string) =>
    guard('diagnostics', undefined, () => {
      const a = configs.analyzed(uri);
      void connection.sendDiagnostics({
        uri,
        ...(a ? { version: a.text.version } : {}),
        diagnostics: a ? toLspDiagnostics(a.doc.analysis, a.text) : [],
      });
    });

  // TextDocuments fires onDidChangeContent for an open as well. Rapid edits are coalesced: the
  // newest version is analysed and published, superseded ones may be skipped.
  const publishing = new PublishScheduler(publish);
  documents.onDidChangeContent((e) => publishing.changed(e.document.uri));
  documents.onDidClose((e) => {
    publishing.forget(e.document.uri);
    configs.forget(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });

  connection.onHover((p) =>
    guard('hover', null, () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? hover(a.doc, a.text, p.position, imageResults.near(p.textDocument.uri)) : null;
    }),
  );
  connection.onCompletion((p) =>
    guard('completion', [], () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? completion(a.doc, a.text, p.position) : [];
    }),
  );
  connection.onCodeLens((p) =>
    guard('codeLens', [], () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? codeLenses(a.doc, a.text, { canRun: trust.trusted }) : [];
    }),
  );
  connection.languages.inlayHint.on((p) =>
    guard('inlayHint', [], () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? inlayHints(a.doc, a.text) : [];
    }),
  );
}
