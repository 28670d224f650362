/**
 * The language server: wiring only. Each LSP feature lives in features/, each
 * computation in config/ and profile/; this file connects them to the protocol.
 */
import {
  createConnection,
  ErrorCodes,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  type CancellationToken,
  TextDocuments,
  TextDocumentSyncKind,
  type Connection,
  type InitializeResult,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { BenchRequest, DevicesRequest, PinvRequest, ProfileRequest, ProgressNotification, type BenchParams, type PinvParams } from '../protocol/lsp';
import type { JobResult, WorkerJob } from './bench/jobs';
import { runIsolated, WorkerFailure } from './bench/isolate';
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

  /**
   * Heavy jobs run in a worker process: a crash, out-of-memory or cancel there becomes a
   * ResponseError here, and this server keeps serving every document.
   */
  const isolated = async <J extends WorkerJob>(uri: string | null, job: J, token: CancellationToken): Promise<JobResult<J>> => {
    const ac = new AbortController();
    const sub = token.onCancellationRequested(() => ac.abort());
    try {
      return await runIsolated(job, {
        signal: ac.signal,
        onProgress: (message, done, total) => void connection.sendNotification(ProgressNotification, { uri, job: job.kind, message, done, total }),
      });
    } catch (e) {
      if (e instanceof WorkerFailure && e.reason === 'cancelled') throw new ResponseError(LSPErrorCodes.RequestCancelled, e.message);
      throw new ResponseError(ErrorCodes.InternalError, e instanceof Error ? e.message : String(e));
    } finally {
      sub.dispose();
    }
  };

  /** The ModelSpec of an open config, or a ResponseError that says what is wrong and where. */
  const specFor = (uri: string) => {
    const a = analyzed(uri);
    if (!a) throw new ResponseError(ErrorCodes.InvalidParams, `${uri} is not an open ViT Lens config`);
    const errors = a.doc.analysis.diagnostics.filter((d) => d.severity === 'error');
    if (errors.length || !a.doc.analysis.spec) {
      const first = errors[0];
      const where = first ? `line ${a.text.positionAt(first.span.start).line + 1}: ${first.message}` : 'no model';
      throw new ResponseError(ErrorCodes.InvalidParams, `${uri} has ${errors.length} error(s); fix them first (${where})`);
    }
    return a.doc.analysis.spec;
  };

  connection.onRequest(BenchRequest, async (p: BenchParams, token) => {
    const model = specFor(p.uri);
    const { uri: _uri, attentions, ...rest } = p;
    return isolated(p.uri, { kind: 'bench' as const, model, config: p.uri, ...rest, ...(attentions ? { attentions: attentions as never } : {}), processStartedAt: Date.now() }, token);
  });
  connection.onRequest(PinvRequest, async (p: PinvParams, token) => {
    const model = specFor(p.uri);
    return isolated(p.uri, { kind: 'pinv' as const, model, resolution: p.resolution ?? model.resolutions[0] ?? 224, ...(p.arithmetic ? { dtype: p.arithmetic } : {}), ...(p.iterations !== undefined ? { iterations: p.iterations } : {}), ...(p.seed !== undefined ? { seed: p.seed } : {}) }, token);
  });
  connection.onRequest(DevicesRequest, async (_p, token) => isolated(null, { kind: 'devices' as const }, token));

  documents.listen(connection);
  connection.listen();
}

// Started as a program (stdio, node-ipc or socket, from the command line), not when imported by tests.
if (require.main === module) {
  startServer(createConnection(ProposedFeatures.all));
}
