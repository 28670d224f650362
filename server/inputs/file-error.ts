/**
 * A refusal to read a user's file: every one names the file and says what was wrong, so a user
 * who picked several checkpoints or images can tell which one failed and why. The checkpoint
 * reader and the image pipeline each have their own subclass.
 */
export class FileError extends Error {
  constructor(
    /** The file (or the name given for an in-memory buffer) being read. */
    readonly file: string,
    /** What was wrong, without the file name. */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}
