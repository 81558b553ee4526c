#include <immintrin.h>

#include "kernels.h"
namespace unigap {
float probe_sum_avx512(const float *x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
  }
  float r = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; i++) r += x[i];
  return r;
}
float probe_fma_avx512(int64_t iters, int *lxc) {
  constexpr int C = 16;
  __m512 c[C];
  for (int k = 0; k < C; k++) c[k] = _mm512_set1_ps(1.0f + k * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; i++)
    for (int k = 0; k < C; k++) c[k] = _mm512_fmadd_ps(c[k], m, b);
  *lxc = 16 * C;
  __m512 s = c[0];
  for (int k = 1; k < C; k++) s = _mm512_add_ps(s, c[k]);
  return _mm512_reduce_add_ps(s);
}
}  // namespace unigap
