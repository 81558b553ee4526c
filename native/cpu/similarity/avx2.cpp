// AVX2 tier: 6x16 FMA microkernel (12 ymm accumulators), F16C / shift widening. Built with
// -mavx2 -mfma -mf16c only.
#include <immintrin.h>

#include "driver.h"

namespace unigap {
namespace sim {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

struct Avx2 {
  static constexpr int MR = 6, NR = 16, MC = 96, NC = 256;

  static void micro(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, bool acc) {
    __m256 c[MR][2];
    if (acc) {
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        c[r][0] = _mm256_loadu_ps(C + r * ldc);
        c[r][1] = _mm256_loadu_ps(C + r * ldc + 8);
      }
    } else {
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
      const __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps(B + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        const __m256 a = _mm256_broadcast_ss(A + r);
        c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
      }
      A += MR;
      B += NR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      _mm256_storeu_ps(C + r * ldc, c[r][0]);
      _mm256_storeu_ps(C + r * ldc + 8, c[r][1]);
    }
  }

  static float chain(const float *a, int64_t sa, const float *b, int64_t sb, int64_t d) {
    __m128 c = _mm_setzero_ps();
    for (int64_t k = 0; k < d; k++) c = _mm_fmadd_ss(_mm_set_ss(a[k * sa]), _mm_set_ss(b[k * sb]), c);
    return _mm_cvtss_f32(c);
  }

  // Transpose P rows (stride d) into k-major panel steps with masked gathers, 8 rows per gather.
  static void pack_panel(const float *base, int64_t d, int P, int valid, const float *inv, float *o) {
    if (static_cast<int64_t>(P) * d >= (int64_t(1) << 31) || P > 16) {
      pack_panel_portable(base, d, P, valid, inv, o);
      return;
    }
    const int chunks = (P + 7) / 8;
    __m256i idx[2], store[2];
    __m256 load[2], sc[2];
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int c = 0; c < chunks; c++) {
      const __m256i row = _mm256_add_epi32(_mm256_set1_epi32(8 * c), lane);
      idx[c] = _mm256_mullo_epi32(row, _mm256_set1_epi32(static_cast<int>(d)));
      load[c] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid), row));
      store[c] = _mm256_cmpgt_epi32(_mm256_set1_epi32(P), row);
      sc[c] = _mm256_maskload_ps(inv + 8 * c, store[c]);
    }
    for (int64_t k = 0; k < d; k++)
      for (int c = 0; c < chunks; c++) {
        const __m256 g = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + k, idx[c], load[c], 4);
        _mm256_maskstore_ps(o + k * P + 8 * c, store[c], _mm256_mul_ps(g, sc[c]));
      }
  }

  static void bf16_to_f32(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(s + i)));
      _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) d[i] = unigap_bf16_to_f32(s[i]);
  }
  static void f16_to_f32(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(s + i))));
    for (; i < n; i++) d[i] = unigap_f16_to_f32(s[i]);
  }

  static float sumsq(const float *x, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
      s0 = _mm256_fmadd_ps(a, a, s0);
      s1 = _mm256_fmadd_ps(b, b, s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += x[i] * x[i];
    return s;
  }

  static void dot3(const float *a, const float *b, int64_t n, float *ab, float *aa, float *bb) {
    __m256 p0 = _mm256_setzero_ps(), p1 = p0, x0 = p0, x1 = p0, y0 = p0, y1 = p0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 u0 = _mm256_loadu_ps(a + i), u1 = _mm256_loadu_ps(a + i + 8);
      __m256 v0 = _mm256_loadu_ps(b + i), v1 = _mm256_loadu_ps(b + i + 8);
      p0 = _mm256_fmadd_ps(u0, v0, p0);
      p1 = _mm256_fmadd_ps(u1, v1, p1);
      x0 = _mm256_fmadd_ps(u0, u0, x0);
      x1 = _mm256_fmadd_ps(u1, u1, x1);
      y0 = _mm256_fmadd_ps(v0, v0, y0);
      y1 = _mm256_fmadd_ps(v1, v1, y1);
    }
    float p = hsum(_mm256_add_ps(p0, p1)), x = hsum(_mm256_add_ps(x0, x1)), y = hsum(_mm256_add_ps(y0, y1));
    for (; i < n; i++) {
      p += a[i] * b[i];
      x += a[i] * a[i];
      y += b[i] * b[i];
    }
    *ab = p;
    *aa = x;
    *bb = y;
  }

  static void dot3_f64(const double *a, const double *b, int64_t n, double *ab, double *aa, double *bb) {
    __m256d p = _mm256_setzero_pd(), x = p, y = p;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      __m256d u = _mm256_loadu_pd(a + i), v = _mm256_loadu_pd(b + i);
      p = _mm256_fmadd_pd(u, v, p);
      x = _mm256_fmadd_pd(u, u, x);
      y = _mm256_fmadd_pd(v, v, y);
    }
    double ps = hsum(p), xs = hsum(x), ys = hsum(y);
    for (; i < n; i++) {
      ps += a[i] * b[i];
      xs += a[i] * a[i];
      ys += b[i] * b[i];
    }
    *ab = ps;
    *aa = xs;
    *bb = ys;
  }

  static void affine(const float *c, int64_t n, float scale, float bias, float *out) {
    const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bias);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(s, _mm256_loadu_ps(c + i), b));
    for (; i < n; i++) out[i] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(scale), _mm_set_ss(c[i]), _mm_set_ss(bias)));
  }

  static int64_t find_gt(const float *c, int64_t n, float t) {
    const __m256 tv = _mm256_set1_ps(t);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(c + i), tv, _CMP_GT_OQ));
      if (m) return i + __builtin_ctz(static_cast<unsigned>(m));
    }
    for (; i < n; i++)
      if (c[i] > t) return i;
    return n;
  }

  static int64_t count_gt(const float *c, int64_t n, float t) {
    const __m256 tv = _mm256_set1_ps(t);
    int64_t i = 0, cnt = 0;
    for (; i + 8 <= n; i += 8)
      cnt += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(c + i), tv, _CMP_GT_OQ))));
    for (; i < n; i++) cnt += c[i] > t;
    return cnt;
  }
};

}  // namespace

const Table kAvx2 = make_table<Avx2>();

}  // namespace sim
}  // namespace unigap
