/** Backend report and ISA forcing. */
import { InvalidTypeError, InvalidValueError, UnsupportedIsaError } from './errors.js';
import { loadNative, type NativeBackendInfo } from './native.js';

export type IsaTier = 'scalar' | 'avx2' | 'avx512';

export interface BackendInfo {
  /** false when the native addon failed to load; `loadError` then says why. */
  loaded: boolean;
  loadError: string | null;
  version: string | null;
  cpu: {
    /** Tier the kernels use now. */
    isa: IsaTier | null;
    /** Best tier this CPU and OS support (CPUID + XGETBV). */
    bestIsa: IsaTier | null;
    /** Set when UNIGAP_ISA named an unknown or unsupported tier; kernels then throw UnsupportedIsaError. */
    isaError: string | null;
    features: Record<string, boolean>;
    /** Kernel thread-pool size (UNIGAP_THREADS, default the CPUs available to the process). */
    threads: number;
  };
  cuda: NativeBackendInfo['cuda'];
}

/** What unigap runs on. Never throws. */
export function backendInfo(): BackendInfo {
  try {
    const n = loadNative().backendInfo();
    return {
      loaded: true,
      loadError: null,
      version: n.version,
      cpu: { isa: n.isa, bestIsa: n.bestIsa, isaError: n.isaError, features: n.features, threads: n.threads },
      cuda: n.cuda,
    };
  } catch (e) {
    return {
      loaded: false,
      loadError: (e as Error).message,
      version: null,
      cpu: { isa: null, bestIsa: null, isaError: null, features: {}, threads: 0 },
      cuda: {
        compiled: false,
        runtimeVersion: 0,
        driverVersion: 0,
        deviceCount: 0,
        devices: [],
        reason: 'native addon not loaded',
      },
    };
  }
}

/**
 * Force the CPU kernels to a tier (process-wide, like UNIGAP_ISA). Throws UnsupportedIsaError when
 * the CPU lacks it. Returns the tier now active.
 */
export function setIsa(tier: IsaTier): IsaTier {
  if (typeof tier !== 'string') throw new InvalidTypeError(`setIsa: tier must be a string, got ${typeof tier}`);
  if (tier !== 'scalar' && tier !== 'avx2' && tier !== 'avx512')
    throw new InvalidValueError(`setIsa: unknown tier '${tier}'; use 'scalar', 'avx2' or 'avx512'`);
  const native = loadNative();
  const best = native.backendInfo().bestIsa;
  const order: IsaTier[] = ['scalar', 'avx2', 'avx512'];
  if (order.indexOf(tier) > order.indexOf(best))
    throw new UnsupportedIsaError(`setIsa: this CPU lacks '${tier}' (best available: ${best})`);
  const now = native.setIsa(tier) as IsaTier;
  isaErrorCache = null; // a successful force clears an UNIGAP_ISA error
  return now;
}

let isaErrorCache: string | null | undefined;

/** Throws UnsupportedIsaError if UNIGAP_ISA asked for a tier the CPU lacks. Kernels call this first. */
export function assertIsaUsable(): void {
  if (isaErrorCache === undefined) isaErrorCache = loadNative().backendInfo().isaError;
  if (isaErrorCache) throw new UnsupportedIsaError(isaErrorCache);
}
