// AVX-512 tier on CPUs with AVX512_BF16 (Zen 4, Cooper Lake, Sapphire Rapids and later): the same
// kernels as avx512.cpp, but a bf16 gradient is rounded by one vcvtneps2bf16 (round to nearest even)
// instead of an eight-instruction integer sequence. That instruction flushes f32 denormals (below
// 1.2e-38) to zero. dispatch.cpp picks this table only when the CPU reports AVX512_BF16.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512bf16"))), apply_to = function)
#else
#pragma GCC target("avx512bf16")
#endif
#include "avx512_impl.h"

namespace unigap {
namespace logprobs {
namespace {

struct BF16NE : BF16 {
  static __m256i narrow(__m512 x) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)); }
  static void store(T *p, __m512 x) { _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), narrow(x)); }
  static void store(T *p, __m512 x, __mmask16 k) { _mm256_mask_storeu_epi16(p, k, narrow(x)); }
  static void stream(T *p, __m512 x) { _mm256_stream_si256(reinterpret_cast<__m256i *>(p), narrow(x)); }
  using BF16::load;
};

}  // namespace

const Table &table_avx512_bf16() {
  static const Table t = {true, true, {stats<F32>, stats<BF16>, stats<F16>}, {grad<F32>, grad<BF16NE>, grad<F16>}};
  return t;
}

}  // namespace logprobs
}  // namespace unigap

#if defined(__clang__)
#pragma clang attribute pop
#endif
