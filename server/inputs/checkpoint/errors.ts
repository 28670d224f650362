/** The one error type of the checkpoint reader (a FileError: it names the file and the problem). */
import { FileError } from '../file-error';

export class CheckpointError extends FileError {
  override readonly name = 'CheckpointError';
}
