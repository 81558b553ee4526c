/**
 * The private binding: loads build/Release/unigap.node (or build/Debug when UNIGAP_BUILD_TYPE=debug)
 * through `bindings` with an explicit module root, so a stale Debug build never shadows Release.
 * Loaded lazily on first use; a failure becomes one NativeLoadError listing every cause and fix.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NativeLoadError } from './errors.js';

/** The native module's surface, typed once. Families add their functions here. */
export interface NativeBinding {
  backendInfo(): NativeBackendInfo;
  setIsa(tier: string): string;
  // Families extend this interface through declaration merging in lib/kernels/<family>.ts.
  [fn: string]: unknown;
}

export interface NativeBackendInfo {
  version: string;
  features: Record<string, boolean>;
  isa: 'scalar' | 'avx2' | 'avx512';
  bestIsa: 'scalar' | 'avx2' | 'avx512';
  isaError: string | null;
  threads: number;
  cuda: {
    compiled: boolean;
    runtimeVersion: number;
    driverVersion: number;
    deviceCount: number;
    devices: { index: number; name: string; computeCapability: string; totalMemory: number }[];
    reason: string | null;
  };
}

/** Package root: lib/native.ts and dist/native.js both sit one level below it. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const require = createRequire(import.meta.url);
let cached: NativeBinding | undefined;
let cachedError: NativeLoadError | undefined;

function buildType(): 'Release' | 'Debug' {
  return (process.env.UNIGAP_BUILD_TYPE ?? '').toLowerCase() === 'debug' ? 'Debug' : 'Release';
}

/** Load (once) and return the binding; throws NativeLoadError. */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  if (cachedError) throw cachedError;
  const causes: string[] = [];
  const explicit = process.env.UNIGAP_NATIVE_PATH;
  const type = buildType();
  const candidates = explicit ? [explicit] : [join(packageRoot, 'build', type, 'unigap.node')];
  for (const path of candidates) {
    if (!existsSync(path)) {
      causes.push(`${path}: not found (the addon was not built)`);
      continue;
    }
    try {
      const bindings = require('bindings') as (opts: Record<string, unknown>) => NativeBinding;
      cached = explicit
        ? (require(path) as NativeBinding)
        : bindings({
            bindings: 'unigap.node',
            module_root: packageRoot,
            try: [['module_root', 'build', type, 'bindings']],
          });
      return cached;
    } catch (e) {
      causes.push(`${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const fix =
    type === 'Debug'
      ? 'run `npm run build:debug` (or unset UNIGAP_BUILD_TYPE to use the Release build)'
      : 'run `npm rebuild unigap` in your project (or `npm run build` in a clone of unigap); it needs cmake and a C++17 compiler, e.g. `apt-get install cmake g++`';
  cachedError = new NativeLoadError(
    `unigap: could not load the native addon.\n${causes.map((c) => `  - ${c}`).join('\n')}\nFix: ${fix}.`,
    causes,
  );
  throw cachedError;
}

/** For tests: forget a cached load result. */
export function _resetNativeForTesting(): void {
  cached = undefined;
  cachedError = undefined;
}
