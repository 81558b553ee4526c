#include "kernels.h"
namespace unigap {
float probe_sum_scalar(const float *x, int64_t n) {
  float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += x[i];
    a1 += x[i + 1];
    a2 += x[i + 2];
    a3 += x[i + 3];
  }
  for (; i < n; i++) a0 += x[i];
  return a0 + a1 + a2 + a3;
}
float probe_fma_scalar(int64_t iters, int *lxc) {
  float c[8];
  for (int k = 0; k < 8; k++) c[k] = 1.0f + k * 1e-3f;
  const float m = 0.999999f, b = 1e-7f;
  for (int64_t i = 0; i < iters; i++)
    for (int k = 0; k < 8; k++) c[k] = c[k] * m + b;
  *lxc = 8;
  float s = 0;
  for (int k = 0; k < 8; k++) s += c[k];
  return s;
}
}  // namespace unigap
