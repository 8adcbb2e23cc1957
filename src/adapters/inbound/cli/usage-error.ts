import { InvalidArgumentError } from '../../../domain/errors.js';

/** Errors in how the command was called: exit status 2. */
export class UsageError extends InvalidArgumentError {}
