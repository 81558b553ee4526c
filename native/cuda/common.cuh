// Shared CUDA plumbing: error capture into a status, warp / block reductions, 16-byte loads of
// f32 / bf16 / f16 rows, rounding back to the storage dtype. Internal to native/cuda.
#ifndef UNIGAP_CUDA_COMMON_CUH
#define UNIGAP_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

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

#define UNIGAP_CUDA_TRY(expr)                                             \
  do {                                                                    \
    unigap_status _s = ::unigap_cuda::check((expr), #expr);               \
    if (_s != UNIGAP_STATUS_OK) return _s;                                \
  } while (0)

// A kernel launch: configuration errors surface from cudaGetLastError right after it.
#define UNIGAP_CUDA_LAUNCHED(name) UNIGAP_CUDA_TRY(cudaGetLastError())

// ---------------------------------------------------------------- dtype loads
struct F32 {
  using store_t = float;
  static constexpr int kVec = 4;  // elements per 16-byte vector
  __device__ __forceinline__ static float load(const store_t *p) { return *p; }
  __device__ __forceinline__ static store_t from_float(float f) { return f; }
  __device__ __forceinline__ static void unpack(const uint4 &v, float (&out)[kVec]) {
    out[0] = __uint_as_float(v.x);
    out[1] = __uint_as_float(v.y);
    out[2] = __uint_as_float(v.z);
    out[3] = __uint_as_float(v.w);
  }
  __device__ __forceinline__ static uint4 pack(const float (&in)[kVec]) {
    return make_uint4(__float_as_uint(in[0]), __float_as_uint(in[1]), __float_as_uint(in[2]), __float_as_uint(in[3]));
  }
};

struct BF16 {
  using store_t = uint16_t;
  static constexpr int kVec = 8;
  __device__ __forceinline__ static float to_float(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
  __device__ __forceinline__ static float load(const store_t *p) { return to_float(*p); }
  __device__ __forceinline__ static store_t from_float(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  }
  __device__ __forceinline__ static void unpack(const uint4 &v, float (&out)[kVec]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      out[2 * i] = __uint_as_float(w[i] << 16);
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
  __device__ __forceinline__ static uint4 pack(const float (&in)[kVec]) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = uint32_t(from_float(in[2 * i])) | (uint32_t(from_float(in[2 * i + 1])) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};

struct F16 {
  using store_t = uint16_t;
  static constexpr int kVec = 8;
  __device__ __forceinline__ static float to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
  __device__ __forceinline__ static float load(const store_t *p) { return to_float(*p); }
  __device__ __forceinline__ static store_t from_float(float f) { return __half_as_ushort(__float2half_rn(f)); }
  __device__ __forceinline__ static void unpack(const uint4 &v, float (&out)[kVec]) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      out[2 * i] = to_float(uint16_t(w[i] & 0xffffu));
      out[2 * i + 1] = to_float(uint16_t(w[i] >> 16));
    }
  }
  __device__ __forceinline__ static uint4 pack(const float (&in)[kVec]) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = uint32_t(from_float(in[2 * i])) | (uint32_t(from_float(in[2 * i + 1])) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
};

// Streaming 16-byte load that does not pollute L1 (each logit is read once per pass).
__device__ __forceinline__ uint4 ldg_stream(const void *p) { return __ldcs(reinterpret_cast<const uint4 *>(p)); }
// Cached 16-byte load: the second sweep of a fused forward+backward hopes to hit L2.
__device__ __forceinline__ uint4 ldg(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }

// ---------------------------------------------------------------- reductions
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Online softmax state in the log2 domain: running max m, s = sum 2^(w - m), t = sum 2^(w - m) (w - m).
struct Online {
  float m, s, t;
};

// First maximum: larger value wins, ties go to the lower index; NaN values are skipped (a NaN row
// is already NaN through the sum).
__device__ __forceinline__ void argmax_merge(float &v, int64_t &i, float v2, int64_t i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

__device__ __forceinline__ void warp_argmax(float &v, int64_t &i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float v2 = __shfl_xor_sync(0xffffffffu, v, o);
    long long i2 = __shfl_xor_sync(0xffffffffu, (long long)i, o);
    argmax_merge(v, i, v2, i2);
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace unigap_cuda

#endif
