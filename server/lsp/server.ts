/**
 * The language server: wiring only. Each LSP feature lives in features/, each
 * computation in config/ and profile/; this file connects them to the protocol.
 */
import path from 'node:path';
import {
  createConnection,
  ErrorCodes,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  type CancellationToken,
  TextDocumentSyncKind,
  type Connection,
  type InitializeResult,
} from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { BenchCaseNotification, BenchRequest, DevicesRequest, InferRequest, PinvRequest, ProfileRequest, ProfileSweepRequest, ProgressNotification, TrustNotification, DEFAULT_SETTINGS, type BenchParams, type InferParams, type PinvParams, type VitlensSettings } from '../../protocol/lsp';
import type { RuntimeId } from '../../protocol/results';
import type { JobResult, WorkerJob } from '../jobs/job';
import { pickBestBackend } from '../runtimes/devices';
import { runIsolated, WorkerFailure } from '../jobs/isolate';
import { DocumentStore, type AnalyzedDocument } from './documents';
import { configInputs, filePathOf, resolveNearConfig } from '../inputs/locate';
import { overlayCaption } from '../jobs/infer/captions';
import { completion } from './features/completion';
import { toLspDiagnostics } from './features/diagnostics';
import { hover, type ImageResult } from './features/hover';
import { codeLenses, inlayHints } from './features/summary';
import { summarize } from '../core/profile/summary';
import { profileSweep } from '../core/profile/sweep';
import { PublishScheduler } from './publish-scheduler';
import { createTextDocuments } from './text-documents';
import { VERSION } from '../core/version';

export function startServer(connection: Connection): void {
  const documents = createTextDocuments();
  const store = new DocumentStore();

  const analyzed = (uri: string): { doc: AnalyzedDocument; text: TextDocument } | null => {
    const text = documents.get(uri);
    if (!text) return null;
    const doc = store.update(uri, text.version, text.getText());
    return doc.isConfig ? { doc, text } : null;
  };

  /** Inference results by absolute image path, for the hover on `images:` entries. */
  const latestImageResults = new Map<string, ImageResult>();

  /**
   * Workspace trust: an untrusted workspace gets profiles and diagnostics but runs no model
   * (its configs and checkpoints are not the user's yet). Editors other than VS Code do not
   * send it and are trusted, as is the CLI.
   */
  let trusted = true;
  let canReadSettings = false;
  let canRefreshLenses = false;
  /** The user's `vitlens.*` settings (workspace/configuration), or the defaults. */
  const settings = async (uri: string | null): Promise<VitlensSettings> => {
    if (!canReadSettings) return DEFAULT_SETTINGS;
    const got = (await connection.workspace.getConfiguration({ section: 'vitlens', ...(uri ? { scopeUri: uri } : {}) })) as Partial<VitlensSettings> | null;
    return { bench: { ...DEFAULT_SETTINGS.bench, ...got?.bench }, infer: { ...DEFAULT_SETTINGS.infer, ...got?.infer } };
  };
  const refuseUntrusted = (what: string) => {
    if (!trusted) throw new ResponseError(ErrorCodes.InvalidRequest, `${what} runs a model, which ViT Lens does not do in an untrusted workspace; trust the workspace to run it (profiles and diagnostics work without trust).`);
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

  connection.onInitialize((params): InitializeResult => {
    trusted = (params.initializationOptions as { trusted?: boolean } | undefined)?.trusted !== false;
    canReadSettings = params.capabilities.workspace?.configuration === true;
    canRefreshLenses = params.capabilities.workspace?.codeLens?.refreshSupport === true;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        completionProvider: { triggerCharacters: [':', ' ', '['] },
        codeLensProvider: { resolveProvider: false },
        inlayHintProvider: true,
      },
      serverInfo: { name: 'vitlens', version: VERSION },
    };
  });
  connection.onNotification(TrustNotification, (p) => {
    trusted = p.trusted;
    // The run lenses appear or disappear with trust.
    if (canRefreshLenses) void connection.sendRequest('workspace/codeLens/refresh');
  });

  const publish = (uri: string) =>
    guard('diagnostics', undefined, () => {
      const a = analyzed(uri);
      void connection.sendDiagnostics({ uri, ...(a ? { version: a.text.version } : {}), diagnostics: a ? toLspDiagnostics(a.doc.analysis, a.text) : [] });
    });

  // TextDocuments fires onDidChangeContent for an open as well. Rapid edits are coalesced: the
  // newest version is analysed and published, superseded ones may be skipped.
  const publishing = new PublishScheduler(publish);
  documents.onDidChangeContent((e) => publishing.changed(e.document.uri));
  documents.onDidClose((e) => {
    publishing.forget(e.document.uri);
    store.delete(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });

  connection.onHover((p) => guard('hover', null, () => {
    const a = analyzed(p.textDocument.uri);
    return a ? hover(a.doc, a.text, p.position, (file) => latestImageResults.get(resolveNearConfig(filePathOf(p.textDocument.uri), file))) : null;
  }));
  connection.onCompletion((p) => guard('completion', [], () => {
    const a = analyzed(p.textDocument.uri);
    return a ? completion(a.doc, a.text, p.position) : [];
  }));
  connection.onCodeLens((p) => guard('codeLens', [], () => {
    const a = analyzed(p.textDocument.uri);
    return a ? codeLenses(a.doc, a.text, { canRun: trusted }) : [];
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
  connection.onRequest(ProfileSweepRequest, (p) => {
    const bad = p.resolutions?.find((r) => !Number.isInteger(r) || r < 16 || r > 8192);
    if (bad !== undefined || (p.resolutions?.length ?? 0) > 64) throw new ResponseError(ErrorCodes.InvalidParams, `resolutions must be at most 64 integers in [16, 8192]${bad !== undefined ? `, got ${bad}` : ''}`);
    return guard('profileSweep', null, () => {
      const spec = analyzed(p.uri)?.doc.analysis.spec;
      return spec ? profileSweep(spec, p.resolutions) : null;
    });
  });

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
        onCase: (c) => void connection.sendNotification(BenchCaseNotification, { uri, case: c }),
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
    refuseUntrusted('A benchmark');
    const model = specFor(p.uri);
    const s = (await settings(p.uri)).bench;
    const { uri: _uri, attentions, ...rest } = p;
    // The request's own choices win; the user's settings fill the rest.
    const fromSettings = { ...(s.backends.length ? { runtimes: s.backends } : {}), ...(s.budgetMs ? { budgetMs: s.budgetMs } : {}), scaling: s.scaling };
    return isolated(p.uri, { kind: 'bench' as const, model, config: p.uri, ...fromSettings, ...rest, ...(attentions ? { attentions: attentions as never } : {}), processStartedAt: Date.now() }, token);
  });
  connection.onRequest(PinvRequest, async (p: PinvParams, token) => {
    refuseUntrusted('The pseudo-inverse analysis');
    const model = specFor(p.uri);
    return isolated(p.uri, { kind: 'pinv' as const, model, resolution: p.resolution ?? model.resolutions[0] ?? 224, ...(p.arithmetic ? { dtype: p.arithmetic } : {}), ...(p.iterations !== undefined ? { iterations: p.iterations } : {}), ...(p.seed !== undefined ? { seed: p.seed } : {}) }, token);
  });
  connection.onRequest(DevicesRequest, async (_p, token) => {
    const report = await isolated(null, { kind: 'devices' as const }, token);
    return { ...report, backends: pickBestBackend(report) };
  });
  connection.onRequest(InferRequest, async (p: InferParams, token) => {
    refuseUntrusted('Inference');
    const model = specFor(p.uri);
    const s = (await settings(p.uri)).infer;
    // The config's own paths are relative to it (the one resolution the CLI uses too); paths in
    // the request are absolute (from the editor).
    const fromConfig = configInputs(filePathOf(p.uri), analyzed(p.uri)!.doc.analysis.values, s.checkpointSearchPaths);
    const checkpoint = p.checkpoint !== undefined ? p.checkpoint : fromConfig.checkpoint;
    const images = p.images ?? fromConfig.images;
    if (!images.length) throw new ResponseError(ErrorCodes.InvalidParams, `${p.uri}: no images given and the config lists none under images:`);
    const report = await isolated(p.uri, {
      kind: 'infer' as const, model, config: p.uri, checkpoint, images,
      ...(p.resolution ? { resolution: p.resolution } : {}), ...(p.resize ? { resize: p.resize } : {}), ...(p.runtime || s.backend ? { runtime: (p.runtime || s.backend) as RuntimeId } : {}), ...(p.maps ? { maps: p.maps } : {}),
    }, token);
    // Remembered for the hover on `images:` entries (latest run of each image wins).
    for (const item of report.items) {
      const caption = overlayCaption(report, item);
      if (caption && item.overlayImage) latestImageResults.set(path.resolve(item.name), { overlayImage: item.overlayImage, caption });
    }
    return report;
  });

  documents.listen(connection);
  connection.listen();
}

// Started as a program (stdio, node-ipc or socket, from the command line), not when imported by tests.
if (require.main === module) {
  startServer(createConnection(ProposedFeatures.all));
}
