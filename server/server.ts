/**
 * The language server: wiring only. Each LSP feature lives in features/, each
 * computation in config/ and profile/; this file connects them to the protocol.
 */
import {
  createConnection,
  ProposedFeatures,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type InitializeResult,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { ProfileRequest } from '../protocol/lsp';
import { DocumentStore, type AnalyzedDocument } from './documents';
import { completion } from './features/completion';
import { toLspDiagnostics } from './features/diagnostics';
import { hover } from './features/hover';
import { codeLenses, inlayHints } from './features/summary';
import { summarize } from './profile/summary';

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const store = new DocumentStore();

  const analyzed = (uri: string): { doc: AnalyzedDocument; text: TextDocument } | null => {
    const text = documents.get(uri);
    if (!text) return null;
    const doc = store.update(uri, text.version, text.getText());
    return doc.isConfig ? { doc, text } : null;
  };

  /** Runs a handler; a bug in one feature is logged and answered with `fallback`, never fatal. */
  const guard = <T>(what: string, fallback: T, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      connection.console.error(`vitlens: ${what} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return fallback;
    }
  };

  connection.onInitialize(
    (): InitializeResult => ({
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        completionProvider: { triggerCharacters: [':', ' ', '['] },
        codeLensProvider: { resolveProvider: false },
        inlayHintProvider: true,
      },
      serverInfo: { name: 'vitlens', version: '0.1.0' },
    }),
  );

  const publish = (uri: string) =>
    guard('diagnostics', undefined, () => {
      const a = analyzed(uri);
      void connection.sendDiagnostics({ uri, diagnostics: a ? toLspDiagnostics(a.doc.analysis, a.text) : [] });
    });

  documents.onDidOpen((e) => publish(e.document.uri));
  documents.onDidChangeContent((e) => publish(e.document.uri));
  documents.onDidClose((e) => {
    store.delete(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });

  connection.onHover((p) => guard('hover', null, () => {
    const a = analyzed(p.textDocument.uri);
    return a ? hover(a.doc, a.text, p.position) : null;
  }));
  connection.onCompletion((p) => guard('completion', [], () => {
    const a = analyzed(p.textDocument.uri);
    return a ? completion(a.doc, a.text, p.position) : [];
  }));
  connection.onCodeLens((p) => guard('codeLens', [], () => {
    const a = analyzed(p.textDocument.uri);
    return a ? codeLenses(a.doc, a.text) : [];
  }));
  connection.languages.inlayHint.on((p) => guard('inlayHint', [], () => {
    const a = analyzed(p.textDocument.uri);
    return a ? inlayHints(a.doc, a.text) : [];
  }));
  connection.onRequest(ProfileRequest, (p) => guard('profile', null, () => {
    const a = analyzed(p.uri);
    const spec = a?.doc.analysis.spec;
    const prof = a?.doc.profile(p.resolution, p.batch ?? 1);
    return spec && prof ? summarize(spec, prof, { ops: p.ops ?? false }) : null;
  }));

  documents.listen(connection);
  connection.listen();
}

// Started as a program (stdio, node-ipc or socket, from the command line), not when imported by tests.
if (require.main === module) {
  startServer(createConnection(ProposedFeatures.all));
}
