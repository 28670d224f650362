/**
 * Heavy jobs (bench, pinv, devices, infer) run in a worker process: a crash, out-of-memory or
 * cancel there becomes a ResponseError here, and this server keeps serving every document.
 * The worker's progress and finished benchmark cases go to the client as notifications.
 */
import {
  ErrorCodes,
  LSPErrorCodes,
  ResponseError,
  type CancellationToken,
  type Connection,
} from 'vscode-languageserver/node';
import { errorMessage } from '../core/errors';
import { BenchCaseNotification, ProgressNotification } from '../../protocol/lsp';
import { runIsolated, WorkerFailure } from '../jobs/isolate';
import type { JobResult, WorkerJob } from '../jobs/job';

export class JobRunner {
  constructor(private readonly connection: Connection) {}

  /** Runs `job` for the document `uri` (null: for none); cancelling `token` kills the worker. */
  async run<J extends WorkerJob>(uri: string | null, job: J, token: CancellationToken): Promise<JobResult<J>> {
    const ac = new AbortController();
    const sub = token.onCancellationRequested(() => ac.abort());
    try {
      return await runIsolated(job, {
        signal: ac.signal,
        onProgress: (message, done, total) =>
          void this.connection.sendNotification(ProgressNotification, { uri, job: job.kind, message, done, total }),
        onCase: (c) => void this.connection.sendNotification(BenchCaseNotification, { uri, case: c }),
      });
    } catch (e) {
      if (e instanceof WorkerFailure && e.reason === 'cancelled')
        throw new ResponseError(LSPErrorCodes.RequestCancelled, e.message);
      throw new ResponseError(ErrorCodes.InternalError, errorMessage(e));
    } finally {
      sub.dispose();
    }
  }
}
