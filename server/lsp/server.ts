/**
 * The language server: wiring only. It makes the server's services once (open configs,
 * settings, trust, the job runner, image results), declares the capabilities, and hands the
 * services to the handler groups in handlers/, which adapt each request to the pure code
 * (features/ for the editor features, core/, report/, jobs/).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  createConnection,
  ProposedFeatures,
  TextDocumentSyncKind,
  type Connection,
  type InitializeResult,
} from 'vscode-languageserver/node';
import { PythonInterpreterNotification, TrustNotification } from '../../protocol/lsp';
import { VERSION } from '../core/version';
import type { ServerContext } from './context';
import { makeGuard } from './guard';
import { registerGradHandlers } from './handlers/grad';
import { registerInferHandlers } from './handlers/infer';
import { registerJobHandlers } from './handlers/jobs';
import { registerLanguageFeatures } from './handlers/language';
import { registerProfileHandlers } from './handlers/profile';
import { ImageResults } from './image-results';
import { JobRunner } from './job-runner';
import { OpenConfigs } from './open-configs';
import { Settings } from './settings';
import { FIT_WORKER_TAG, runFitWorker, TrainingFits, workerCompute } from './training-fits';
import { createTextDocuments } from './text-documents';
import { Trust } from './trust';

export function startServer(connection: Connection): void {
  const documents = createTextDocuments();
  let canRefreshLenses = false;
  const ctx: ServerContext = {
    connection,
    documents,
    configs: new OpenConfigs(documents),
    settings: new Settings(connection),
    trust: new Trust(connection),
    guard: makeGuard(connection.console),
    jobs: new JobRunner(connection),
    imageResults: new ImageResults(),
    // The fits run in a worker thread on this same bundle (see the end of this file).
    trainingFits: new TrainingFits(workerCompute(__filename), () => {
      if (canRefreshLenses) void connection.sendRequest('workspace/codeLens/refresh');
    }),
  };

  connection.onInitialize((params): InitializeResult => {
    ctx.trust.initialize(params);
    ctx.settings.initialize(params);
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
  connection.onNotification(TrustNotification, (p) => ctx.trust.set(p.trusted));
  // A `vitlens.*` setting changed (vitlens.gpuMemory shows in the summary lens): the lenses are asked again.
  connection.onDidChangeConfiguration(() => {
    if (canRefreshLenses) void connection.sendRequest('workspace/codeLens/refresh');
  });
  connection.onNotification(PythonInterpreterNotification, (p) => ctx.settings.setVscodePython(p.executable));

  registerLanguageFeatures(ctx);
  registerProfileHandlers(ctx);
  registerJobHandlers(ctx);
  registerInferHandlers(ctx);
  registerGradHandlers(ctx);

  documents.listen(connection);
  connection.listen();
}

// Started as a program (stdio, node-ipc or socket, from the command line), not when imported by tests;
// or as the worker thread of one training-memory fit (training-fits.ts), which computes and ends.
if (!isMainThread && (workerData as { tag?: string } | null)?.tag === FIT_WORKER_TAG) {
  runFitWorker(workerData as Parameters<typeof runFitWorker>[0], (m) => parentPort!.postMessage(m));
} else if (require.main === module) {
  startServer(createConnection(ProposedFeatures.all));
}
