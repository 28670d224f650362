/** The one error type of the image pipeline (a FileError: it names the image and the problem). */
import { FileError } from '../file-error';

export class ImageError extends FileError {
  override readonly name = 'ImageError';
}
