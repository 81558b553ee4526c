/**
 * The loop's error classes. Argument problems reuse lib/errors.ts (InvalidTypeError, InvalidValueError,
 * UnknownOptionError); these three cover what only a run can hit.
 */
import { UnigapError } from '../errors.js';

/** `resume` found a run directory made with another config (or other prompts / another model). */
export class ConfigMismatchError extends UnigapError {
  /** One line per differing field: `name: saved <x>, requested <y>`. */
  readonly differences: string[];
  constructor(message: string, differences: string[]) {
    super('ERR_UNIGAP_CONFIG_MISMATCH', message);
    this.differences = differences;
  }
}

/** A run-directory file is truncated, corrupt (checksum mismatch) or missing; it is never used silently. */
export class CorruptStateError extends UnigapError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_UNIGAP_CORRUPT_STATE', `${message} (${path})`, options);
    this.path = path;
  }
}

/** The UnifiedModel / ExternalJudge adapter broke the contract (wrong shape, NaN, out-of-range token...). */
export class AdapterError extends UnigapError {
  /** The adapter method at fault, e.g. 'generate', 'judge', 'forward', 'verify'. */
  readonly method: string;
  constructor(method: string, message: string, options?: { cause?: unknown }) {
    super('ERR_UNIGAP_ADAPTER', `${method}: ${message}`, options);
    this.method = method;
  }
}
