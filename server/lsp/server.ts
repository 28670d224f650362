/**
 * The language server: wiring only. It makes the server's services once (open configs,
 * settings, trust, the job runner, image results), declares the capabilities, and hands the
 * services to the handler groups in handlers/, which adapt each request to the pure code
 * (features/ for the editor features, core/, report/, jobs/).
 */
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
import { registerInferHandlers } from './handlers/infer';
import { registerJobHandlers } from './handlers/jobs';
import { registerLanguageFeatures } from './handlers/language';
import { registerProfileHandlers } from './handlers/profile';
import { ImageResults } from './image-results';
import { JobRunner } from './job-runner';
import { OpenConfigs } from './open-configs';
import { Settings } from './settings';
import { createTextDocuments } from './text-documents';
import { Trust } from './trust';

export function startServer(connection: Connection): void {
  const documents = createTextDocuments();
  const ctx: ServerContext = {
    connection,
    documents,
    configs: new OpenConfigs(documents),
    settings: new Settings(connection),
    trust: new Trust(connection),
    guard: makeGuard(connection.console),
    jobs: new JobRunner(connection),
    imageResults: new ImageResults(),
  };

  connection.onInitialize((params): InitializeResult => {
    ctx.trust.initialize(params);
    ctx.settings.initialize(params);
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
  connection.onNotification(PythonInterpreterNotification, (p) => ctx.settings.setVscodePython(p.executable));

  registerLanguageFeatures(ctx);
  registerProfileHandlers(ctx);
  registerJobHandlers(ctx);
  registerInferHandlers(ctx);

  documents.listen(connection);
  connection.listen();
}

// Started as a program (stdio, node-ipc or socket, from the command line), not when imported by tests.
if (require.main === module) {
  startServer(createConnection(ProposedFeatures.all));
}
