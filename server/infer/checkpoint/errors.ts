/**
 * The one error type of the checkpoint reader. Every refusal names the file it came from,
 * so a user who opened several checkpoints can tell which one was rejected and why.
 */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';

  constructor(
    /** The file (or the name given for an in-memory buffer) being read. */
    readonly file: string,
    /** What was wrong, without the file name. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** Message of a caught library error, for wrapping into a CheckpointError. */
export function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
