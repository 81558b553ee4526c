// Shared CUDA plumbing: error capture into a status, warp / block reductions, 16-byte loads of
// f32 / bf16 / f16 rows, rounding back to the storage dtype. Internal to native/cuda.
#ifndef UNIGAP_CUDA_COMMON_CUH
#define UNIGAP_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <utility>

#include "unigap/common.h"

namespace unigap_cuda {

// Records "cudaErrorX (text) in where" as the thread's last error (see unigap_cuda_last_error).
void set_error(cudaError_t err, const char *where);
void set_message(const char *msg);
void clear_error();

// Maps a CUDA error to a status and records it; cudaSuccess -> OK.
inline unigap_status check(cudaError_t err, const char *where) {
  if (err == cudaSuccess) return UNIGAP_STATUS_OK;
  set_error(err, where);
  if (err == cudaErrorMemoryAllocation) return UNIGAP_STATUS_OUT_OF_MEMORY;
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInitializationError ||
      err == cudaErrorInvalidDevice || err == cudaErrorDevicesUnavailable || err == cudaErrorCompatNotSupportedOnDevice ||
      err == cudaErrorSystemDriverMismatch || err == cudaErrorNoKernelImageForDevice)
    return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
  return UNIGAP_STATUS_DEVICE_ERROR;
}

// Checked at every kernel entry: the backend is usable (cached probe) or DEVICE_UNAVAILABLE.
unigap_status require_device();

// A kernel must never be handed unregistered host memory: it would fault, and an illegal address is
// sticky (it poisons the CUDA context of the whole process). Device, managed and pinned host memory
// (reachable through unified addressing) pass; null passes (the caller checks what is required).
// INVALID_ARGUMENT with "<name> is not device memory ..." otherwise.
unigap_status check_device_ptr(const void *ptr, const char *name);
inline unigap_status check_device_ptrs(std::initializer_list<std::pair<const void *, const char *>> ps) {
  for (const auto &q : ps) {
    unigap_status s = check_device_ptr(q.first, q.second);
    if (s != UNIGAP_STATUS_OK) return s;
  }
  return UNIGAP_STATUS_OK;
}

// Stream-ordered scratch (cudaMallocAsync into ptr), freed on the same stream on every exit path.
struct StreamScratch {
  cudaStream_t st;
  void *ptr = nullptr;
  explicit StreamScratch(cudaStream_t s) : st(s) {}
  ~StreamScratch() {
    if (ptr) cudaFreeAsync(ptr, st);
  }
  StreamScratch(const StreamScratch &) = delete;
  StreamScratch &operator=(const StreamScratch &) = delete;
};

#define UNIGAP_CUDA_TRY(expr)                                             \
  do {                                                                    \
    unigap_status _s = ::unigap_cuda::check((expr), #expr);               \
    if (_s != UNIGAP_STATUS_OK) return _s;                                \
  } while (0)

// A kernel launch: configuration errors surface from cudaGetLastError right after it.
#define UNIGAP_CUDA_LAUNCHED(name) UNIGAP_CUDA_TRY(cudaGetLastError())

// Host + device: the row code in logprobs.cu also runs on the host (the emulation the harness checks
// against the CPU core on machines without a GPU).
#define UNIGAP_HD __host__ __device__ __forceinline__
// a * b rounded once, never contracted into an FMA with a later add. The log-prob label terms use it:
// the row max m is the rounded product z_max * c, so x_y - m must be formed from the same rounded
// product to be exactly 0 when the label is the max (nvcc's default -fmad=true would turn z * c - m
// into fma(z, c, -m) and leave the product's rounding error, about 1 ulp of m, in log p_y; at p_y near
// 1 that error dominates 1 - p_y = -expm1(log p_y), the label column of the gradient).
UNIGAP_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
// 2^x for the log-prob rows, whose arguments are <= 0 (x - max) or about 0 (the gradient's x - lse):
// on the device ex2.approx.ftz.f32 (the same approximation, flush-to-zero; the checks hold at the CPU
// tolerances). Plain exp2f compiles to ex2.approx.f32 (seen in the PTX), the variant that keeps results
// below 2^-126 as denormals; probabilities under 1e-38 change no sum and no rounded gradient, so they
// are flushed to 0 instead. On the H200, same run, two builds: bf16 forward 1.185 -> 1.024 ms, f32
// 2.084 -> 1.826 ms (bench/results/cuda.md). -DUNIGAP_CUDA_PRECISE_EXP2 restores exp2f (run.sh
// AB_EXP2=1 times both). The host emulation uses exp2f.
UNIGAP_HD float fast_exp2(float x) {
#if defined(__CUDA_ARCH__) && !defined(UNIGAP_CUDA_PRECISE_EXP2)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return exp2f(x);
#endif
}
// "#pragma unroll" only where the device compiler reads it (host compilers warn about it).
#ifdef __CUDA_ARCH__
#define UNIGAP_UNROLL _Pragma("unroll")
#else
#define UNIGAP_UNROLL
#endif

UNIGAP_HD float bits_to_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
UNIGAP_HD uint32_t f32_to_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

// ---------------------------------------------------------------- dtype loads
struct F32 {
  using store_t = float;
  static constexpr int kVec = 4;  // elements per 16-byte vector
  UNIGAP_HD static float load(const store_t *p) { return *p; }
  UNIGAP_HD static store_t from_float(float f) { return f; }
  UNIGAP_HD static void unpack(const uint4 &v, float (&out)[kVec]) {
    out[0] = bits_to_f32(v.x);
    out[1] = bits_to_f32(v.y);
    out[2] = bits_to_f32(v.z);
    out[3] = bits_to_f32(v.w);
  }
  UNIGAP_HD static uint4 pack(const float (&in)[kVec]) {
    return make_uint4(f32_to_bits(in[0]), f32_to_bits(in[1]), f32_to_bits(in[2]), f32_to_bits(in[3]));
  }
};

struct BF16 {
  using store_t = uint16_t;
  static constexpr int kVec = 8;
  UNIGAP_HD static float to_float(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }
  UNIGAP_HD static float load(const store_t *p) { return to_float(*p); }
  UNIGAP_HD static store_t from_float(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  }
  UNIGAP_HD static void unpack(const uint4 &v, float (&out)[kVec]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
UNIGAP_UNROLL
    for (int i = 0; i < 4; i++) {
      out[2 * i] = bits_to_f32(w[i] << 16);
      out[2 * i + 1] = bits_to_f32(w[i] & 0xffff0000u);
    }
  }
  UNIGAP_HD static uint4 pack(const float (&in)[kVec]) {
    uint32_t w[4];
UNIGAP_UNROLL
    for (int i = 0; i < 4; i++) w[i] = uint32_t(from_float(in[2 * i])) | (uint32_t(from_float(in[2 * i + 1])) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};

struct F16 {
  using store_t = uint16_t;
  static constexpr int kVec = 8;
  UNIGAP_HD static float to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
  UNIGAP_HD static float load(const store_t *p) { return to_float(*p); }
  UNIGAP_HD static store_t from_float(float f) { return __half_as_ushort(__float2half_rn(f)); }
  UNIGAP_HD static void unpack(const uint4 &v, float (&out)[kVec]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
UNIGAP_UNROLL
    for (int i = 0; i < 4; i++) {
      out[2 * i] = to_float(uint16_t(w[i] & 0xffffu));
      out[2 * i + 1] = to_float(uint16_t(w[i] >> 16));
    }
  }
  UNIGAP_HD static uint4 pack(const float (&in)[kVec]) {
    uint32_t w[4];
UNIGAP_UNROLL
    for (int i = 0; i < 4; i++) w[i] = uint32_t(from_float(in[2 * i])) | (uint32_t(from_float(in[2 * i + 1])) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};

// ---------------------------------------------------------------- reductions
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
UNIGAP_UNROLL
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Online softmax state in the log2 domain: running max m, s = sum 2^(w - m), t = sum 2^(w - m) (w - m).
struct Online {
  float m, s, t;
};

// First maximum: larger value wins, ties go to the lower index; NaN values are skipped (a NaN row
// is already NaN through the sum).
UNIGAP_HD void argmax_merge(float &v, int64_t &i, float v2, int64_t i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace unigap_cuda

#endif
