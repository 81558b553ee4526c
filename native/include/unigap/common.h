/*
 * unigap common C ABI: status codes, dtypes, ISA tiers, backend report, the kernel thread pool.
 *
 * Rules every family follows (see ../../shared design):
 *  - caller-owned buffers with explicit sizes; no allocation escapes the call;
 *  - every entry point returns a unigap_status; no C++ exception crosses the ABI;
 *  - sizes and offsets are 64-bit (int64_t) so N*V > 2^31 works;
 *  - the facade validates first; the core re-asserts the cheap invariants and returns a status.
 */
#ifndef UNIGAP_COMMON_H
#define UNIGAP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum unigap_status {
  UNIGAP_STATUS_OK = 0,
  UNIGAP_STATUS_INVALID_ARGUMENT = 1,
  UNIGAP_STATUS_SHAPE_MISMATCH = 2,
  UNIGAP_STATUS_OUT_OF_RANGE = 3,
  UNIGAP_STATUS_UNSUPPORTED_DTYPE = 4,
  UNIGAP_STATUS_UNSUPPORTED_ISA = 5,
  UNIGAP_STATUS_OUT_OF_MEMORY = 6,
  UNIGAP_STATUS_DEVICE_UNAVAILABLE = 7,
  UNIGAP_STATUS_DEVICE_ERROR = 8,
  UNIGAP_STATUS_INTERNAL = 9
} unigap_status;

/* Human-readable name of a status ("UNIGAP_STATUS_SHAPE_MISMATCH"). Never NULL. */
const char *unigap_status_name(unigap_status s);

typedef enum unigap_dtype {
  UNIGAP_DTYPE_F32 = 0,
  UNIGAP_DTYPE_F64 = 1,
  UNIGAP_DTYPE_BF16 = 2,
  UNIGAP_DTYPE_F16 = 3
} unigap_dtype;

typedef enum unigap_isa {
  UNIGAP_ISA_SCALAR = 0,
  UNIGAP_ISA_AVX2 = 1,  /* AVX2 + FMA + F16C, OS-enabled YMM state */
  UNIGAP_ISA_AVX512 = 2 /* AVX-512 F/BW/VL/DQ, OS-enabled ZMM + opmask state */
} unigap_isa;

const char *unigap_isa_name(unigap_isa isa);

/* What the CPU probe saw (CPUID leaf 1/7, XGETBV XCR0). */
typedef struct unigap_cpu_features {
  int sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, avx512fp16;
  int os_ymm;  /* XCR0 bits 1,2 */
  int os_zmm;  /* XCR0 bits 5,6,7 */
} unigap_cpu_features;

/* Best tier the CPU and OS support. */
unigap_isa unigap_isa_best(void);
/* Tier currently in use by the dispatch table. */
unigap_isa unigap_isa_active(void);
/* Force a tier (tests, UNIGAP_ISA). Returns UNIGAP_STATUS_UNSUPPORTED_ISA (and changes nothing)
 * when the CPU lacks it. Thread-safe (atomic switch); kernels already running keep their tier. */
unigap_status unigap_isa_set(unigap_isa isa);
/* Parse "scalar" | "avx2" | "avx512" (case-insensitive). Returns -1 for anything else. */
int unigap_isa_parse(const char *name);
void unigap_cpu_features_get(unigap_cpu_features *out);
/* Set once at first use from UNIGAP_ISA: non-zero when the variable asked for a tier the CPU lacks
 * or an unknown name; the message explains. While set, kernels return UNIGAP_STATUS_UNSUPPORTED_ISA
 * until unigap_isa_set() succeeds. */
int unigap_isa_env_error(char *msg, size_t cap);

/* Kernel thread pool. Size from UNIGAP_THREADS, default the CPUs available to the process. */
int unigap_threads(void);

/* Run fn(ctx, begin, end) over [0, n) split into contiguous chunks across the pool; `grain` is the
 * smallest chunk worth a thread. Blocks until all chunks finish. If the pool is busy (another
 * thread is inside a parallel region) the call runs serially on the caller: never deadlocks. */
typedef void (*unigap_range_fn)(void *ctx, int64_t begin, int64_t end);
void unigap_parallel_for(int64_t n, int64_t grain, unigap_range_fn fn, void *ctx);

/* CUDA availability (compiled in or not, devices). */
typedef struct unigap_cuda_device {
  char name[256];
  int major, minor;
  int64_t total_mem;
} unigap_cuda_device;

typedef struct unigap_cuda_info {
  int compiled;       /* 1 when the CUDA backend was built into this binary */
  int runtime_version; /* cudaRuntimeGetVersion, 0 if not compiled */
  int driver_version;  /* cudaDriverGetVersion, 0 when no driver */
  int device_count;
  char reason[512]; /* why CUDA is unusable, empty when device_count > 0 */
} unigap_cuda_info;

void unigap_cuda_info_get(unigap_cuda_info *out);
/* Fill up to `cap` device records; returns how many were written. */
int unigap_cuda_devices(unigap_cuda_device *out, int cap);

/* Library version string, e.g. "0.1.0". */
const char *unigap_version(void);

#ifdef __cplusplus
}
#endif

#endif
