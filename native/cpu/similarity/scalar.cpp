// Scalar tier: the honest baseline (built with auto-vectorisation off). 4x4 register tile, separate
// multiply and add (no FMA on baseline x86-64), and the same blocked driver as the SIMD tiers.
#include "driver.h"

namespace unigap {
namespace sim {
namespace {

struct Scalar {
  static constexpr int MR = 4, NR = 4, MC = 64, NC = 256;

  static void micro(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, bool acc) {
    float c[MR][NR];
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++) c[r][j] = acc ? C[r * ldc + j] : 0.f;
    for (int64_t k = 0; k < kc; k++) {
      for (int r = 0; r < MR; r++) {
        const float a = A[r];
        for (int j = 0; j < NR; j++) c[r][j] = c[r][j] + a * B[j];
      }
      A += MR;
      B += NR;
    }
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < NR; j++) C[r * ldc + j] = c[r][j];
  }

  static float chain(const float *a, int64_t sa, const float *b, int64_t sb, int64_t d) {
    float c = 0.f;
    for (int64_t k = 0; k < d; k++) c = c + a[k * sa] * b[k * sb];
    return c;
  }

  static void pack_panel(const float *base, int64_t d, int P, int valid, const float *inv, float *o) {
    pack_panel_portable(base, d, P, valid, inv, o);
  }

  static void bf16_to_f32(const uint16_t *s, int64_t n, float *d) {
    for (int64_t i = 0; i < n; i++) d[i] = unigap_bf16_to_f32(s[i]);
  }
  static void f16_to_f32(const uint16_t *s, int64_t n, float *d) {
    for (int64_t i = 0; i < n; i++) d[i] = unigap_f16_to_f32(s[i]);
  }

  static float sumsq(const float *x, int64_t n) {
    float s = 0.f;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
  }

  static void dot3(const float *a, const float *b, int64_t n, float *ab, float *aa, float *bb) {
    float p = 0.f, x = 0.f, y = 0.f;
    for (int64_t i = 0; i < n; i++) {
      p += a[i] * b[i];
      x += a[i] * a[i];
      y += b[i] * b[i];
    }
    *ab = p;
    *aa = x;
    *bb = y;
  }

  static void dot3_f64(const double *a, const double *b, int64_t n, double *ab, double *aa, double *bb) {
    double p = 0, x = 0, y = 0;
    for (int64_t i = 0; i < n; i++) {
      p += a[i] * b[i];
      x += a[i] * a[i];
      y += b[i] * b[i];
    }
    *ab = p;
    *aa = x;
    *bb = y;
  }

  static void affine(const float *c, int64_t n, float scale, float bias, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = scale * c[i] + bias;
  }

  static int64_t find_gt(const float *c, int64_t n, float t) {
    for (int64_t i = 0; i < n; i++)
      if (c[i] > t) return i;
    return n;
  }

  static int64_t count_gt(const float *c, int64_t n, float t) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += c[i] > t;
    return cnt;
  }
};

}  // namespace

const Table kScalar = make_table<Scalar>();

}  // namespace sim
}  // namespace unigap
