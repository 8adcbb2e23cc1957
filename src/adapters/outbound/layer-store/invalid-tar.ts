import { ImageTsError } from '../../../domain/errors.js';

/** A layer tar that breaks the format: INVALID_LAYER, with one line saying how. */
export function invalidTar(message: string): ImageTsError {
  return new ImageTsError('INVALID_LAYER', `invalid layer tar: ${message}`);
}
