/**
 * The standard LSP features of a config: diagnostics (published as it changes), hover,
 * completion, code lenses and inlay hints. Each is computed in features/.
 */
import type { ServerContext } from '../context';
import { completion } from '../features/completion';
import { toLspDiagnostics } from '../features/diagnostics';
import { hover } from '../features/hover';
import { codeLenses, inlayHints } from '../features/summary';
import { trainingFact, trainingLensText, trainingMarkdown } from '../features/training';
import type { AnalyzedDocument } from '../documents';
import { PublishScheduler } from '../publish-scheduler';

export function registerLanguageFeatures({
  connection,
  documents,
  configs,
  trust,
  guard,
  imageResults,
  settings,
  trainingFits,
}: ServerContext): void {
  /** The training-memory fact of a config when `vitlens.gpuMemory` is set (settings are read per request). */
  const training = async (uri: string, doc: AnalyzedDocument) => {
    if (!doc.analysis.spec) return null;
    const gpuMemory = (await settings.get(uri).catch(() => null))?.gpuMemory ?? null;
    return guard('training memory', null, () => trainingFact(doc, gpuMemory, (r) => trainingFits.get(r)));
  };

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

  connection.onHover(async (p) => {
    const a = configs.analyzed(p.textDocument.uri);
    if (!a) return null;
    // Only the `model` hover shows training memory; other keys do not wait for the settings.
    const onModel = a.doc.analysis.entries.get('model');
    const offset = a.text.offsetAt(p.position);
    const fact =
      onModel && offset >= onModel.span.start && offset <= onModel.span.end
        ? await training(p.textDocument.uri, a.doc)
        : null;
    return guard('hover', null, () =>
      hover(a.doc, a.text, p.position, imageResults.near(p.textDocument.uri), trainingMarkdown(fact)),
    );
  });
  connection.onCompletion((p) =>
    guard('completion', [], () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? completion(a.doc, a.text, p.position) : [];
    }),
  );
  connection.onCodeLens(async (p) => {
    const a = configs.analyzed(p.textDocument.uri);
    if (!a) return [];
    const trainsAt = trainingLensText(await training(p.textDocument.uri, a.doc));
    return guard('codeLens', [], () => codeLenses(a.doc, a.text, { canRun: trust.trusted, trainsAt }));
  });
  connection.languages.inlayHint.on((p) =>
    guard('inlayHint', [], () => {
      const a = configs.analyzed(p.textDocument.uri);
      return a ? inlayHints(a.doc, a.text) : [];
    }),
  );
}
