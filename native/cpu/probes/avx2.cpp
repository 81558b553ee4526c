#include <immintrin.h>

#include "kernels.h"
namespace unigap {
float probe_sum_avx2(const float *x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  float r = 0;
  for (float v : t) r += v;
  for (; i < n; i++) r += x[i];
  return r;
}
float probe_fma_avx2(int64_t iters, int *lxc) {
  constexpr int C = 12;  // enough independent chains to cover FMA latency x 2 ports
  __m256 c[C];
  for (int k = 0; k < C; k++) c[k] = _mm256_set1_ps(1.0f + k * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++)
    for (int k = 0; k < C; k++) c[k] = _mm256_fmadd_ps(c[k], m, b);
  *lxc = 8 * C;
  __m256 s = c[0];
  for (int k = 1; k < C; k++) s = _mm256_add_ps(s, c[k]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[7];
}
}  // namespace unigap
