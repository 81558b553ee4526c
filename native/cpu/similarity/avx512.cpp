// AVX-512 tier: 14x32 FMA microkernel (28 zmm accumulators, B rows loaded, A broadcast), F16C / shift
// widening, masked tails. Built with AVX-512 F/BW/VL/DQ only.
#include <immintrin.h>

#include "driver.h"

namespace unigap {
namespace sim {
namespace {

struct Avx512 {
  static constexpr int MR = 14, NR = 32, MC = 112, NC = 256;

  static __mmask16 tail(int64_t r) { return r >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << r) - 1u); }

  static void micro(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, bool acc) {
    __m512 c[MR][2];
    if (acc) {
#pragma GCC unroll 14
      for (int r = 0; r < MR; r++) {
        c[r][0] = _mm512_loadu_ps(C + r * ldc);
        c[r][1] = _mm512_loadu_ps(C + r * ldc + 16);
      }
    } else {
#pragma GCC unroll 14
      for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
      const __m512 b0 = _mm512_loadu_ps(B), b1 = _mm512_loadu_ps(B + 16);
#pragma GCC unroll 14
      for (int r = 0; r < MR; r++) {
        const __m512 a = _mm512_set1_ps(A[r]);
        c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
      }
      A += MR;
      B += NR;
    }
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      _mm512_storeu_ps(C + r * ldc, c[r][0]);
      _mm512_storeu_ps(C + r * ldc + 16, c[r][1]);
    }
  }

  static float chain(const float *a, int64_t sa, const float *b, int64_t sb, int64_t d) {
    __m128 c = _mm_setzero_ps();
    for (int64_t k = 0; k < d; k++) c = _mm_fmadd_ss(_mm_set_ss(a[k * sa]), _mm_set_ss(b[k * sb]), c);
    return _mm_cvtss_f32(c);
  }

  // Transpose P rows (stride d) into k-major panel steps with masked gathers, 16 rows per gather.
  static void pack_panel(const float *base, int64_t d, int P, int valid, const float *inv, float *o) {
    if (static_cast<int64_t>(P) * d >= (int64_t(1) << 31) || P > 32) {
      pack_panel_portable(base, d, P, valid, inv, o);
      return;
    }
    const int chunks = (P + 15) / 16;
    __m512i idx[2];
    __m512 sc[2];
    __mmask16 load[2], store[2];
    for (int c = 0; c < chunks; c++) {
      const int lanes = std::min(16, P - 16 * c), live = std::max(0, std::min(16, valid - 16 * c));
      idx[c] = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(16 * c),
                                                   _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                                  _mm512_set1_epi32(static_cast<int>(d)));
      sc[c] = _mm512_maskz_loadu_ps(tail(lanes), inv + 16 * c);
      load[c] = tail(live);
      store[c] = tail(lanes);
    }
    for (int64_t k = 0; k < d; k++)
      for (int c = 0; c < chunks; c++) {
        const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), load[c], idx[c], base + k, 4);
        _mm512_mask_storeu_ps(o + k * P + 16 * c, store[c], _mm512_mul_ps(g, sc[c]));
      }
  }

  static void bf16_to_f32(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + i)));
      _mm512_storeu_ps(d + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    for (; i < n; i++) d[i] = unigap_bf16_to_f32(s[i]);
  }
  static void f16_to_f32(const uint16_t *s, int64_t n, float *d) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(s + i))));
    for (; i < n; i++) d[i] = unigap_f16_to_f32(s[i]);
  }


  static float sumsq(const float *x, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
      s0 = _mm512_fmadd_ps(a, a, s0);
      s1 = _mm512_fmadd_ps(b, b, s1);
    }
    for (; i < n; i += 16) {
      __m512 a = _mm512_maskz_loadu_ps(n - i >= 16 ? 0xffff : tail(n - i), x + i);
      s0 = _mm512_fmadd_ps(a, a, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }

  static void dot3(const float *a, const float *b, int64_t n, float *ab, float *aa, float *bb) {
    __m512 p0 = _mm512_setzero_ps(), p1 = p0, x0 = p0, x1 = p0, y0 = p0, y1 = p0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      __m512 u0 = _mm512_loadu_ps(a + i), u1 = _mm512_loadu_ps(a + i + 16);
      __m512 v0 = _mm512_loadu_ps(b + i), v1 = _mm512_loadu_ps(b + i + 16);
      p0 = _mm512_fmadd_ps(u0, v0, p0);
      p1 = _mm512_fmadd_ps(u1, v1, p1);
      x0 = _mm512_fmadd_ps(u0, u0, x0);
      x1 = _mm512_fmadd_ps(u1, u1, x1);
      y0 = _mm512_fmadd_ps(v0, v0, y0);
      y1 = _mm512_fmadd_ps(v1, v1, y1);
    }
    for (; i < n; i += 16) {
      __mmask16 m = n - i >= 16 ? 0xffff : tail(n - i);
      __m512 u = _mm512_maskz_loadu_ps(m, a + i), v = _mm512_maskz_loadu_ps(m, b + i);
      p0 = _mm512_fmadd_ps(u, v, p0);
      x0 = _mm512_fmadd_ps(u, u, x0);
      y0 = _mm512_fmadd_ps(v, v, y0);
    }
    *ab = _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
    *aa = _mm512_reduce_add_ps(_mm512_add_ps(x0, x1));
    *bb = _mm512_reduce_add_ps(_mm512_add_ps(y0, y1));
  }

  static void dot3_f64(const double *a, const double *b, int64_t n, double *ab, double *aa, double *bb) {
    __m512d p = _mm512_setzero_pd(), x = p, y = p;
    int64_t i = 0;
    for (; i < n; i += 8) {
      __mmask8 m = n - i >= 8 ? 0xff : static_cast<__mmask8>((1u << (n - i)) - 1u);
      __m512d u = _mm512_maskz_loadu_pd(m, a + i), v = _mm512_maskz_loadu_pd(m, b + i);
      p = _mm512_fmadd_pd(u, v, p);
      x = _mm512_fmadd_pd(u, u, x);
      y = _mm512_fmadd_pd(v, v, y);
    }
    *ab = _mm512_reduce_add_pd(p);
    *aa = _mm512_reduce_add_pd(x);
    *bb = _mm512_reduce_add_pd(y);
  }

  static void affine(const float *c, int64_t n, float scale, float bias, float *out) {
    const __m512 s = _mm512_set1_ps(scale), b = _mm512_set1_ps(bias);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_fmadd_ps(s, _mm512_loadu_ps(c + i), b));
    if (i < n) {
      __mmask16 m = tail(n - i);
      _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m, c + i), b));
    }
  }

  static int64_t find_gt(const float *c, int64_t n, float t) {
    const __m512 tv = _mm512_set1_ps(t);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(c + i), tv, _CMP_GT_OQ);
      if (m) return i + __builtin_ctz(m);
    }
    for (; i < n; i++)
      if (c[i] > t) return i;
    return n;
  }

  static int64_t count_gt(const float *c, int64_t n, float t) {
    const __m512 tv = _mm512_set1_ps(t);
    int64_t i = 0, cnt = 0;
    for (; i + 16 <= n; i += 16)
      cnt += __builtin_popcount(_mm512_cmp_ps_mask(_mm512_loadu_ps(c + i), tv, _CMP_GT_OQ));
    for (; i < n; i++) cnt += c[i] > t;
    return cnt;
  }
};

}  // namespace

const Table kAvx512 = make_table<Avx512>();

}  // namespace sim
}  // namespace unigap
