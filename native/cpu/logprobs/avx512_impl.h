#ifndef UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
#define UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
// AVX-512 kernel templates of the logprobs family, included by avx512.cpp (F/BW/VL/DQ) and
// avx512_bf16.cpp (the same plus AVX512_BF16 for the gradient's bf16 rounding). Everything here has
// internal linkage, so the two translation units, built with different target flags, never share
// (and never swap) an instantiation.
//
// 16 f32 lanes, per-lane online statistics merged at the end of the row;
// bf16 widened by a 16-bit shift, f16 by vcvtph2ps. The statistics run in base 2 (x = z * log2(e) / tau)
// so each element costs a mul and a sub, one exp2 (vreduceps, 5 FMAs, vscalefps) and the sums. x = fl(z * c) is
// rounded before the max is subtracted (never fused) so the max element gives exactly 2^0 and the
// dispatch can form x_y - m exactly as the kernel did.
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "kernels.h"

namespace unigap {
namespace logprobs {
namespace {

// 2^x for any x (NaN passes through; -inf and x < -150 give exactly 0) in 7 instructions: f = x - floor(x) by vreduceps, a degree-5
// polynomial for 2^f on [0, 1) (kExp2F*), and vscalefps(p, x), which scales by 2^floor(x) itself,
// underflows to exactly 0 below 2^-149 and passes NaN through.
inline __m512 exp2_16(__m512 x) {
  const __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_set1_ps(kExp2F5);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2F4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2F3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2F2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2F1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, x);
}

// a * 2^x with the factor folded into the polynomial's coefficients (one multiply fewer per element).
struct ScaledExp2 {
  __m512 c0, c1, c2, c3, c4, c5;
  explicit ScaledExp2(float a)
      : c0(_mm512_set1_ps(a)),
        c1(_mm512_set1_ps(a * kExp2F1)),
        c2(_mm512_set1_ps(a * kExp2F2)),
        c3(_mm512_set1_ps(a * kExp2F3)),
        c4(_mm512_set1_ps(a * kExp2F4)),
        c5(_mm512_set1_ps(a * kExp2F5)) {}
  __m512 operator()(__m512 x) const {
    const __m512 f = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_fmadd_ps(c5, f, c4);
    p = _mm512_fmadd_ps(p, f, c3);
    p = _mm512_fmadd_ps(p, f, c2);
    p = _mm512_fmadd_ps(p, f, c1);
    p = _mm512_fmadd_ps(p, f, c0);
    return _mm512_scalef_ps(p, x);
  }
};

// Loads give -inf in masked-off lanes so they weigh nothing in max / sum / argmax.
struct F32 {
  using T = float;
  static __m512 load(const T *p) { return _mm512_loadu_ps(p); }
  static __m512 load(const T *p, __mmask16 k) { return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, p); }
  static void store(T *p, __m512 x) { _mm512_storeu_ps(p, x); }
  static void store(T *p, __m512 x, __mmask16 k) { _mm512_mask_storeu_ps(p, k, x); }
  static void stream(T *p, __m512 x) { _mm512_stream_ps(p, x); }
};

inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
inline __m256i narrow_bf16(__m512 x) {  // round to nearest even; NaN stays a quiet NaN
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}
struct BF16 {
  using T = uint16_t;
  static __m512 load(const T *p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
  static __m512 load(const T *p, __mmask16 k) {
    return _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), k, widen_bf16(_mm256_maskz_loadu_epi16(k, p)));
  }
  static void store(T *p, __m512 x) { _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), narrow_bf16(x)); }
  static void store(T *p, __m512 x, __mmask16 k) { _mm256_mask_storeu_epi16(p, k, narrow_bf16(x)); }
  static void stream(T *p, __m512 x) { _mm256_stream_si256(reinterpret_cast<__m256i *>(p), narrow_bf16(x)); }
};
struct F16 {
  using T = uint16_t;
  static __m512 load(const T *p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p))); }
  static __m512 load(const T *p, __mmask16 k) {
    return _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p)));
  }
  static __m256i narrow(__m512 x) { return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static void store(T *p, __m512 x) { _mm256_storeu_si256(reinterpret_cast<__m256i *>(p), narrow(x)); }
  static void store(T *p, __m512 x, __mmask16 k) { _mm256_mask_storeu_epi16(p, k, narrow(x)); }
  static void stream(T *p, __m512 x) { _mm256_stream_si256(reinterpret_cast<__m256i *>(p), narrow(x)); }
};

// x = fl(z * c), kept out of an FMA contraction with the subtraction that follows.
inline __m512 scaled(__m512 z, __m512 c) {
  __m512 x = _mm512_mul_ps(z, c);
  asm("" : "+v"(x));
  return x;
}

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1u); }

template <class D, bool ENT, bool AM, bool ZS>
void stats_t(const void *rowp, int64_t n, float mult, RowStats *out) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  const __m512 ninf = _mm512_set1_ps(-INFINITY), lo = _mm512_set1_ps(kExp2Lo);
  const __m512 vt = _mm512_set1_ps(mult);
  __m512 m = ninf, s = _mm512_setzero_ps(), t = _mm512_setzero_ps(), zs = _mm512_setzero_ps(), best = ninf;
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), cur = idx;
  const __m512i step = _mm512_set1_epi32(16);
  // bf16 / f16: the block is widened once (pass 1) into an L1 buffer that pass 2 reads as f32
  constexpr bool kWide = sizeof(typename D::T) == 4;
  alignas(64) float buf[kWide ? 16 : kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = b + kBlock < n ? b + kBlock : n;
    __m512 bm0 = ninf, bm1 = ninf;
    int64_t i = b;
    for (; i + 32 <= e; i += 32) {
      const __m512 z0 = D::load(row + i), z1 = D::load(row + i + 16);
      if (!kWide) {
        _mm512_store_ps(buf + (i - b), z0);
        _mm512_store_ps(buf + (i - b) + 16, z1);
      }
      bm0 = _mm512_max_ps(bm0, z0);
      bm1 = _mm512_max_ps(bm1, z1);
      if (AM) {
        __mmask16 k = _mm512_cmp_ps_mask(z0, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, k, z0);
        idx = _mm512_mask_mov_epi32(idx, k, cur);
        cur = _mm512_add_epi32(cur, step);
        k = _mm512_cmp_ps_mask(z1, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, k, z1);
        idx = _mm512_mask_mov_epi32(idx, k, cur);
        cur = _mm512_add_epi32(cur, step);
      }
      if (ZS) zs = _mm512_add_ps(zs, _mm512_add_ps(z0, z1));
    }
    for (; i < e; i += 16) {
      const __mmask16 k0 = tail_mask(e - i);
      const __m512 z = D::load(row + i, k0);
      if (!kWide) _mm512_store_ps(buf + (i - b), z);  // -inf past the end
      bm0 = _mm512_max_ps(bm0, z);
      if (AM) {
        const __mmask16 k = _mm512_cmp_ps_mask(z, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, k, z);
        idx = _mm512_mask_mov_epi32(idx, k, cur);
        cur = _mm512_add_epi32(cur, step);
      }
      if (ZS) zs = _mm512_mask_add_ps(zs, k0, zs, z);
    }
    // per-lane rescale of the running statistics to the new maximum (once per block)
    const __m512 mn = _mm512_max_ps(m, _mm512_mul_ps(_mm512_max_ps(bm0, bm1), vt));
    const __m512 msafe = _mm512_mask_mov_ps(mn, _mm512_cmp_ps_mask(mn, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    const __m512 delta = _mm512_max_ps(lo, _mm512_sub_ps(m, msafe));
    const __m512 f = exp2_16(delta);
    if (ENT) t = _mm512_mul_ps(f, _mm512_fmadd_ps(s, delta, t));
    s = _mm512_mul_ps(f, s);
    m = mn;
    i = b;
    __m512 s1 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    // exp2_16 maps -inf and anything below -150 to exactly 0 by itself (vreduceps(-inf) = 0, then
    // vscalefps by -inf); only the entropy's e * d needs d finite (0 * -inf).
    auto clamp = [&](__m512 d) { return ENT ? _mm512_max_ps(lo, d) : d; };
    auto z2 = [&](int64_t j) { return kWide ? F32::load(reinterpret_cast<const float *>(row) + j) : _mm512_load_ps(buf + (j - b)); };
    for (; i + 32 <= e; i += 32) {
      const __m512 d0 = clamp(_mm512_sub_ps(scaled(z2(i), vt), msafe));
      const __m512 d1 = clamp(_mm512_sub_ps(scaled(z2(i + 16), vt), msafe));
      const __m512 e0 = exp2_16(d0), e1 = exp2_16(d1);
      s = _mm512_add_ps(s, e0);
      s1 = _mm512_add_ps(s1, e1);
      if (ENT) {
        t = _mm512_fmadd_ps(e0, d0, t);
        t1 = _mm512_fmadd_ps(e1, d1, t1);
      }
    }
    for (; i < e; i += 16) {
      const __m512 zt = kWide ? F32::load(reinterpret_cast<const float *>(row) + i, tail_mask(e - i))
                              : _mm512_load_ps(buf + (i - b));
      const __m512 d = clamp(_mm512_sub_ps(scaled(zt, vt), msafe));
      const __m512 x = exp2_16(d);
      s = _mm512_add_ps(s, x);
      if (ENT) t = _mm512_fmadd_ps(x, d, t);
    }
    s = _mm512_add_ps(s, s1);
    if (ENT) t = _mm512_add_ps(t, t1);
  }
  // merge the 16 lanes
  alignas(64) float lm[16], ls[16], lt[16], lb[16];
  alignas(64) int32_t li[16];
  _mm512_store_ps(lm, m);
  _mm512_store_ps(ls, s);
  _mm512_store_ps(lt, t);
  float gm = -INFINITY;
  bool nan = false;
  for (int j = 0; j < 16; j++) {
    if (lm[j] > gm) gm = lm[j];
    nan |= std::isnan(ls[j]) || std::isnan(lm[j]);
  }
  const float gsafe = gm == -INFINITY ? 0.0f : gm;
  float S = 0, Tt = 0;
  for (int j = 0; j < 16; j++) {
    if (ls[j] == 0) continue;
    const float dj = lm[j] - gsafe, fj = std::exp2(dj);
    S += fj * ls[j];
    if (ENT) Tt += fj * (lt[j] + ls[j] * dj);
  }
  if (nan) S = NAN;
  out->m = gm;  // base-2 units (Table::base2)
  out->s = S;
  out->t = Tt;
  out->zsum = ZS ? _mm512_reduce_add_ps(zs) : 0.0f;
  out->argmax = 0;
  if (AM) {
    _mm512_store_ps(lb, best);
    _mm512_store_epi32(li, idx);
    float bv = -INFINITY;
    int64_t bi = 0;
    bool any = false;
    for (int j = 0; j < 16; j++)
      if (!any || lb[j] > bv || (lb[j] == bv && li[j] < bi)) {
        if (std::isnan(lb[j])) continue;
        any = true;
        bv = lb[j];
        bi = li[j];
      }
    out->argmax = bi;
  }
}

template <class D>
void stats(const void *row, int64_t n, float mult, int flags, RowStats *out) {
  switch (flags & 7) {
    case 0: return stats_t<D, false, false, false>(row, n, mult, out);
    case 1: return stats_t<D, true, false, false>(row, n, mult, out);
    case 2: return stats_t<D, false, true, false>(row, n, mult, out);
    case 3: return stats_t<D, true, true, false>(row, n, mult, out);
    case 4: return stats_t<D, false, false, true>(row, n, mult, out);
    case 5: return stats_t<D, true, false, true>(row, n, mult, out);
    case 6: return stats_t<D, false, true, true>(row, n, mult, out);
    default: return stats_t<D, true, true, true>(row, n, mult, out);
  }
}

template <class D, bool STREAM>
void grad_t(const typename D::T *row, typename D::T *out, int64_t n, float mult, float lse, float scale) {
  const __m512 vt = _mm512_set1_ps(mult);
  const __m512 vl = _mm512_set1_ps(lse);
  const ScaledExp2 e(-scale);
  // no clamp: the exp maps -inf and anything below -150 to exactly 0 (see stats_t)
  auto full = [&](int64_t i) { return e(_mm512_sub_ps(scaled(D::load(row + i), vt), vl)); };
  auto part = [&](int64_t i, __mmask16 k) {
    return e(_mm512_sub_ps(scaled(D::load(row + i, k), vt), vl));
  };
  int64_t i = 0;
  if (STREAM) {
    // masked head up to the 64-byte boundary, then whole vectors with non-temporal stores
    const size_t es = sizeof(typename D::T), mis = reinterpret_cast<uintptr_t>(out) & 63;
    int64_t head = mis ? static_cast<int64_t>((64 - mis) / es) : 0;
    if (mis % es) head = n;  // misaligned element type (cannot happen from the facade): no streaming
    if (head > n) head = n;
    while (i < head) {
      const int64_t len = head - i < 16 ? head - i : 16;
      const __mmask16 k = tail_mask(len);
      D::store(out + i, part(i, k), k);
      i += len;
    }
    for (; i + 16 <= n; i += 16) D::stream(out + i, full(i));
  }
  for (; i + 32 <= n; i += 32) {
    D::store(out + i, full(i));
    D::store(out + i + 16, full(i + 16));
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    D::store(out + i, part(i, k), k);
  }
}

template <class D>
void grad(const void *rowp, void *outp, int64_t n, float mult, float lse, float scale, int stream) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  auto *out = static_cast<typename D::T *>(outp);
  if (stream) {
    grad_t<D, true>(row, out, n, mult, lse, scale);
    _mm_sfence();  // order the streaming stores before the caller patches the label column
  } else {
    grad_t<D, false>(row, out, n, mult, lse, scale);
  }
}

}  // namespace
}  // namespace logprobs
}  // namespace unigap

#endif
