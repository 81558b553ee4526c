#ifndef UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
#define UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
// AVX-512 kernel templates of the logprobs family, included by avx512.cpp (F/BW/VL/DQ) and
// avx512_bf16.cpp (the same plus AVX512_BF16 for the gradient's bf16 rounding). Everything here has
// internal linkage, so the two translation units, built with different target flags, never share
// (and never swap) an instantiation.
//
// 16 f32 lanes, per-lane online statistics merged at the end of the row; bf16 widened by a 16-bit
// shift, f16 by vcvtph2ps. The statistics run in base 2 (x = z * log2(e) / tau), so each element costs
// a mul and a sub, one exp2 (Exp2Table: vreduceps, vpermps, 4 FMA-pipe ops, vscalefps) and the sums.
// x = fl(z * c) is rounded before the max is subtracted (never fused) so the max element gives
// exactly 2^0 and the dispatch can form x_y - m exactly as the kernel did.
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "kernels.h"

namespace unigap {
namespace logprobs {
namespace {

// a * 2^x for any x (NaN passes through; -inf and x < -150 give exactly 0) in 4 FMA-pipe operations:
// r = x - floor16(x) in [0, 1/16] by vreduceps (4 fraction bits), q = x - r, 2^(j/16) for the low four
// bits j of 16 q from a 16-entry register table (vpermps), 2^r by a degree-3 polynomial, and
// vscalefps by 2^floor(q) (= 2^floor(x)). Max relative error 1.1e-7 (evaluated in fp32). `a` is
// folded into the table.
struct Exp2Table {
  __m512 tab, c1, c2, c3;
  explicit Exp2Table(float a)
      : tab(_mm512_mul_ps(_mm512_set1_ps(a),
                          _mm512_setr_ps(1.0f, 1.0442737340927124f, 1.0905077457427979f, 1.1387885808944702f,
                                         1.1892070770263672f, 1.2418577671051025f, 1.2968395948410034f,
                                         1.3542555570602417f, 1.4142135381698608f, 1.4768261909484863f,
                                         1.5422108173370361f, 1.610490322113037f, 1.6817928552627563f,
                                         1.7562521696090698f, 1.8340080976486206f, 1.9152065515518188f))),
        c1(_mm512_set1_ps(kExp2T1)),
        c2(_mm512_set1_ps(kExp2T2)),
        c3(_mm512_set1_ps(kExp2T3)) {}
  __m512 operator()(__m512 x) const {
    const __m512 r = _mm512_reduce_ps(x, (4 << 4) | _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 q = _mm512_sub_ps(x, r);
    // q + 1.5 * 2^19 has 1/16 as its unit in the last place: its low four bits are 16 q mod 16
    const __m512i j = _mm512_castps_si512(_mm512_add_ps(q, _mm512_set1_ps(786432.0f)));
    const __m512 t = _mm512_permutexvar_ps(j, tab);
    const __m512 poly = _mm512_fmadd_ps(_mm512_fmadd_ps(c3, r, c2), r, c1);
    return _mm512_scalef_ps(_mm512_fmadd_ps(_mm512_mul_ps(t, r), poly, t), q);
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
  const Exp2Table ex(1.0f);
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
    const __m512 f = ex(delta);
    if (ENT) t = _mm512_mul_ps(f, _mm512_fmadd_ps(s, delta, t));
    s = _mm512_mul_ps(f, s);
    m = mn;
    i = b;
    __m512 s1 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    // Exp2Table maps -inf and anything below -150 to exactly 0 by itself (vreduceps(-inf) = 0, then
    // vscalefps by -inf); only the entropy's e * d needs d finite (0 * -inf).
    auto clamp = [&](__m512 d) { return ENT ? _mm512_max_ps(lo, d) : d; };
    auto z2 = [&](int64_t j) { return kWide ? F32::load(reinterpret_cast<const float *>(row) + j) : _mm512_load_ps(buf + (j - b)); };
    for (; i + 32 <= e; i += 32) {
      const __m512 d0 = clamp(_mm512_sub_ps(scaled(z2(i), vt), msafe));
      const __m512 d1 = clamp(_mm512_sub_ps(scaled(z2(i + 16), vt), msafe));
      const __m512 e0 = ex(d0), e1 = ex(d1);
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
      const __m512 x = ex(d);
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
  const Exp2Table e(-scale);
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
