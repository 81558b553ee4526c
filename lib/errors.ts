/**
 * Error classes. Every error unigap throws on purpose carries a stable `code` ('ERR_UNIGAP_<CAUSE>').
 * Argument problems are TypeError / RangeError subclasses so generic handlers still recognise them.
 */

export type UnigapErrorCode =
  | 'ERR_UNIGAP_NATIVE_LOAD'
  | 'ERR_UNIGAP_INVALID_TYPE'
  | 'ERR_UNIGAP_INVALID_VALUE'
  | 'ERR_UNIGAP_INVALID_DTYPE'
  | 'ERR_UNIGAP_SHAPE_MISMATCH'
  | 'ERR_UNIGAP_OUT_OF_RANGE'
  | 'ERR_UNIGAP_UNKNOWN_OPTION'
  | 'ERR_UNIGAP_DETACHED_BUFFER'
  | 'ERR_UNIGAP_UNSUPPORTED_ISA'
  | 'ERR_UNIGAP_DEVICE_UNAVAILABLE'
  | 'ERR_UNIGAP_DEVICE'
  | 'ERR_UNIGAP_NATIVE'
  | 'ERR_UNIGAP_CONFIG_MISMATCH'
  | 'ERR_UNIGAP_CORRUPT_STATE'
  | 'ERR_UNIGAP_ADAPTER'
  | 'ERR_UNIGAP_TFJS_UNAVAILABLE';

/** Base class for unigap's own (non argument) errors. */
export class UnigapError extends Error {
  readonly code: UnigapErrorCode;
  constructor(code: UnigapErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The native addon could not be loaded; `causes` lists each attempt and why it failed. */
export class NativeLoadError extends UnigapError {
  readonly causes: string[];
  constructor(message: string, causes: string[]) {
    super('ERR_UNIGAP_NATIVE_LOAD', message);
    this.causes = causes;
  }
}

/** An argument has the wrong JS type (e.g. Float64Array where Float32Array is required). */
export class InvalidTypeError extends TypeError {
  readonly code: 'ERR_UNIGAP_INVALID_TYPE' | 'ERR_UNIGAP_INVALID_DTYPE' | 'ERR_UNIGAP_DETACHED_BUFFER';
  constructor(message: string, code: InvalidTypeError['code'] = 'ERR_UNIGAP_INVALID_TYPE') {
    super(message);
    this.name = 'InvalidTypeError';
    this.code = code;
  }
}

/** An argument is of the right type but an invalid value (NaN, <= 0, not an integer...). */
export class InvalidValueError extends RangeError {
  readonly code: 'ERR_UNIGAP_INVALID_VALUE' | 'ERR_UNIGAP_OUT_OF_RANGE';
  constructor(message: string, code: InvalidValueError['code'] = 'ERR_UNIGAP_INVALID_VALUE') {
    super(message);
    this.name = 'InvalidValueError';
    this.code = code;
  }
}

/** Lengths or shapes disagree. */
export class ShapeMismatchError extends RangeError {
  readonly code = 'ERR_UNIGAP_SHAPE_MISMATCH' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ShapeMismatchError';
  }
}

/** An options object has a key unigap does not know (usually a misspelling). */
export class UnknownOptionError extends TypeError {
  readonly code = 'ERR_UNIGAP_UNKNOWN_OPTION' as const;
  constructor(message: string) {
    super(message);
    this.name = 'UnknownOptionError';
  }
}

/** A forced ISA tier (UNIGAP_ISA or setIsa) that this CPU lacks. */
export class UnsupportedIsaError extends UnigapError {
  constructor(message: string) {
    super('ERR_UNIGAP_UNSUPPORTED_ISA', message);
  }
}

/** `device: 'cuda'` was asked for but no usable CUDA device exists. */
export class DeviceUnavailableError extends UnigapError {
  constructor(message: string) {
    super('ERR_UNIGAP_DEVICE_UNAVAILABLE', message);
  }
}

/** The native core returned an unexpected status (a bug: please report). */
export class NativeError extends UnigapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_UNIGAP_NATIVE', message, options);
  }
}
