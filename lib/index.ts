/**
 * unigap: the public entry. Everything a user imports is exported here, explicitly.
 */
export { backendInfo, setIsa } from './backend.js';
export type { BackendInfo, IsaTier } from './backend.js';
export {
  UnigapError,
  NativeLoadError,
  InvalidTypeError,
  InvalidValueError,
  ShapeMismatchError,
  UnknownOptionError,
  UnsupportedIsaError,
  DeviceUnavailableError,
  NativeError,
} from './errors.js';
export type { UnigapErrorCode } from './errors.js';
export type { Dtype, FloatArray, TensorLike } from './validate.js';
