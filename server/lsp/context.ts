/**
 * What the request handlers (handlers/) share: the connection and the server's services, made
 * once by startServer. Handlers adapt LSP requests to these services and to the pure code
 * (features/, core/, report/); they keep no state of their own.
 */
import type { Connection, TextDocuments } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { Guard } from './guard';
import type { ImageResults } from './image-results';
import type { JobRunner } from './job-runner';
import type { OpenConfigs } from './open-configs';
import type { Settings } from './settings';
import type { TrainingFits } from './training-fits';
import type { Trust } from './trust';

export interface ServerContext {
  connection: Connection;
  /** The open documents' text, as the client edits it. */
  documents: TextDocuments<TextDocument>;
  configs: OpenConfigs;
  settings: Settings;
  trust: Trust;
  guard: Guard;
  jobs: JobRunner;
  imageResults: ImageResults;
  /** Largest-batch estimates for `vitlens.gpuMemory`, computed off the request path. */
  trainingFits: TrainingFits;
}
