#ifndef UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
#define UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H
// AVX-512 kernel templates of the logprobs family, included by avx512.cpp (F/BW/VL/DQ) and
// avx512_bf16.cpp (the same plus AVX512_BF16 for the gradient's bf16 rounding). Everything here has
// internal linkage, so the two translation units, built with different target flags, never share
// (and never swap) an instantiation.
//
// 16 f32 lanes, per-lane online statistics merged at the end of the row, in base 2 (c = log2(e) / tau).
// The row statistics (stats_sweep_t, below) subtract the per-lane max in raw logit units, d = z - zmax
// (exact 0 for the max element, which therefore weighs exactly 2^0), and fold c into the exp2's
// argument reduction; bf16 is widened by in-lane unpacks, f16 by vcvtph2ps. The gradient (grad_t) and
// the statistics at extreme temperatures (stats_t) form x = fl(z * c), kept out of an FMA with the
// subtraction that follows, and use Exp2Table. Either way a row whose label is its unique maximum with
// the rest at -inf gives logp = 0 exactly: the dispatch forms x_y - m = fl(z_y c) - fl(zmax c) = 0.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels.h"

namespace unigap {
namespace logprobs {
namespace {

// The sweep's helpers must inline into its loops (GCC at -O2 otherwise calls them, spilling the
// accumulators through memory).
#define UNIGAP_AI inline __attribute__((always_inline))
#define UNIGAP_AI_LAMBDA __attribute__((always_inline))

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
  static constexpr int64_t kChunk = 16;  // elements per 64-byte chunk of the one-sweep statistics
  static constexpr int kVec = 1;         // f32 vectors per chunk
  static __m512 load(const T *p) { return _mm512_loadu_ps(p); }
  static __m512 load(const T *p, __mmask16 k) { return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, p); }
  static void store(T *p, __m512 x) { _mm512_storeu_ps(p, x); }
  static void store(T *p, __m512 x, __mmask16 k) { _mm512_mask_storeu_ps(p, k, x); }
  static void stream(T *p, __m512 x) { _mm512_stream_ps(p, x); }
};

// bf16 -> f32 in element order: vpermw doubles each word into its dword, the AND keeps the high copy
// (Zen 5: about a third of the cost of vpmovzxwd + vpslld, which share the FADD pipes).
inline __m512 widen_bf16(__m256i h) {
  const __m512i idx = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4,
                                       3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i w = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(h));
  return _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
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
  static constexpr int64_t kChunk = 32;
  static constexpr int kVec = 2;
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
  static constexpr int64_t kChunk = 16;
  static constexpr int kVec = 1;
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
    out->argmax = merge_argmax(lb, li, 16);
  }
}

// ---------------------------------------------------------------------------------------------------
// One-sweep statistics (stats_sweep_t). Work per element, in units of the two FMA pipes and the two
// FADD pipes of a 512-bit core (Zen 5 measured: vscalefps takes both FADD pipes for a cycle, as does
// vreduceps; integer max/min and in-lane shuffles run elsewhere):
//   pass 1 (the block max) by integer max/min on the float bits: no FP pipe at all;
//   pass 2 (Exp2Sum): d = z - zmax, 2^(d c) by a 32-entry table and a quadratic, scaled by
//   vscalefps and summed by the FMA that multiplies the quadratic in: 4 FMA-pipe ops, 2 adds, 1
//   scalef, 1 permute per 16 elements.
// Pass 1 of block k+1 runs in the same loop as pass 2 of block k, so the block max is ready when its
// exponentials start and the max never sits on the critical path. The chain from a load to its sum
// (~27 cycles) is longer than the scheduler covers at full rate, hence the software pipelining of
// sweep_block. Measured (Zen 5, one core, L2-resident 32000-wide rows, TSC cycles per 16 elements;
// the block-wise kernel stats_t on the same rows): f32 2.96 (4.4), bf16 2.73 (4.6), both with the
// former three-FMA polynomial.

// The float max of what was added, per 32-bit lane, by integer ops: signed max of the bits is the
// float max when any lane value is >= +0; otherwise (all negative) the signed min of the bits is.
// NaN: a positive NaN wins the signed max by itself; a negative one is found by the unsigned max.
struct Max32 {
  __m512i hi, lo, un;
  UNIGAP_AI Max32() : hi(_mm512_set1_epi32(INT32_MIN)), lo(_mm512_set1_epi32(INT32_MAX)), un(_mm512_setzero_si512()) {}
  UNIGAP_AI void add(__m512i x) {
    hi = _mm512_max_epi32(hi, x);
    lo = _mm512_min_epi32(lo, x);
    un = _mm512_max_epu32(un, x);
  }
  UNIGAP_AI void add(__m512i a, __m512i b) {  // two at once: half the loop-carried chain
    asm("" : "+v"(a), "+v"(b));  // one load each, not one per use (GCC folds them into every op)
    hi = _mm512_max_epi32(hi, _mm512_max_epi32(a, b));
    lo = _mm512_min_epi32(lo, _mm512_min_epi32(a, b));
    un = _mm512_max_epu32(un, _mm512_max_epu32(a, b));
  }
  UNIGAP_AI __m512 finish() const {
    __m512i m = _mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(hi, _mm512_setzero_si512()), lo, hi);
    m = _mm512_mask_mov_epi32(m, _mm512_cmpgt_epu32_mask(un, _mm512_set1_epi32(static_cast<int>(0xff800000u))),
                              _mm512_set1_epi32(0x7fc00000));
    return _mm512_castsi512_ps(m);
  }
  // The float min of what was added, per lane: the unsigned max of the bits when any lane value has
  // its sign bit set (the most negative value, or a negative NaN), else the signed min.
  UNIGAP_AI __m512 finish_min() const {
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(un, _mm512_setzero_si512()), lo, un));
  }
};
// max_ps that keeps a NaN of either operand
UNIGAP_AI __m512 max_nan(__m512 a, __m512 b) {
  return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), _mm512_set1_ps(NAN));
}
UNIGAP_AI __m512 min_nan(__m512 a, __m512 b) {
  return _mm512_mask_mov_ps(_mm512_min_ps(a, b), _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), _mm512_set1_ps(NAN));
}
// The same on the raw bf16 words (32 per register); finish() widens to the f32 lanes of Sweep<BF16>.
struct Max16 {
  __m512i hi, lo, un;
  UNIGAP_AI Max16() : hi(_mm512_set1_epi16(INT16_MIN)), lo(_mm512_set1_epi16(INT16_MAX)), un(_mm512_setzero_si512()) {}
  UNIGAP_AI void add(__m512i x) {
    hi = _mm512_max_epi16(hi, x);
    lo = _mm512_min_epi16(lo, x);
    un = _mm512_max_epu16(un, x);
  }
  UNIGAP_AI void add(__m512i a, __m512i b) {
    asm("" : "+v"(a), "+v"(b));
    hi = _mm512_max_epi16(hi, _mm512_max_epi16(a, b));
    lo = _mm512_min_epi16(lo, _mm512_min_epi16(a, b));
    un = _mm512_max_epu16(un, _mm512_max_epu16(a, b));
  }
  UNIGAP_AI __m512 finish() const {
    __m512i m = _mm512_mask_blend_epi16(_mm512_cmpge_epi16_mask(hi, _mm512_setzero_si512()), lo, hi);
    m = _mm512_mask_mov_epi16(m, _mm512_cmpgt_epu16_mask(un, _mm512_set1_epi16(static_cast<short>(0xff80))),
                              _mm512_set1_epi16(0x7fc0));
    const __m512i z = _mm512_setzero_si512();
    return max_nan(_mm512_castsi512_ps(_mm512_unpacklo_epi16(z, m)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, m)));
  }
  UNIGAP_AI __m512 finish_min() const {  // as Max32's, widened as finish() does
    const __m512i z = _mm512_setzero_si512();
    const __m512i m = _mm512_mask_blend_epi16(_mm512_cmplt_epi16_mask(un, z), lo, un);
    return min_nan(_mm512_castsi512_ps(_mm512_unpacklo_epi16(z, m)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, m)));
  }
};

// Chunk access of the sweep per dtype: p1 feeds the integer max (and widens when asked), wide
// widens for pass 2; tails are padded with -inf. pos(w) is the in-chunk element index of each lane
// of vector w (argmax, tail masks).
template <class D>
struct Sweep;
// f32 and f16: one vector per 16-element chunk, widened by D::load.
template <class D>
struct SweepOne {
  using Max = Max32;
  using T = typename D::T;
  UNIGAP_AI static void wide(const T *p, __m512 *v) { v[0] = D::load(p); }
  UNIGAP_AI static void wide_tail(const T *p, int64_t left, __m512 *v) { v[0] = D::load(p, tail_mask(left)); }
  template <bool W>
  UNIGAP_AI static void p1(const T *p, Max &m, __m512 *v) {
    wide(p, v);
    m.add(_mm512_castps_si512(v[0]));
  }
  template <bool W>
  UNIGAP_AI static void p1_tail(const T *p, int64_t left, Max &m, __m512 *v) {
    wide_tail(p, left, v);
    m.add(_mm512_castps_si512(v[0]));
  }
  UNIGAP_AI static __m512i pos(int) { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
};
template <>
struct Sweep<F32> : SweepOne<F32> {
  UNIGAP_AI static __m512i raw(const float *p) { return _mm512_loadu_si512(p); }
};
template <>
struct Sweep<F16> : SweepOne<F16> {
  UNIGAP_AI static __m512i raw(const uint16_t *p) { return _mm512_castps_si512(F16::load(p)); }
};
// bf16: 32 words per chunk widened by vpunpck{l,h}wd against zero (in-lane shuffles, off the FP
// pipes): vector 0 holds words 0-3, 8-11, 16-19, 24-27 and vector 1 the other half. Sums and maxima
// do not care about the order; argmax maps lanes back through pos().
template <>
struct Sweep<BF16> {
  using Max = Max16;
  UNIGAP_AI static __m512i raw_tail(const uint16_t *p, int64_t left) {
    const __mmask32 k = left >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << left) - 1u);
    return _mm512_mask_loadu_epi16(_mm512_set1_epi16(static_cast<short>(0xff80)), k, p);
  }
  UNIGAP_AI static void split(__m512i r, __m512 *v) {
    const __m512i z = _mm512_setzero_si512();
    v[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, r));
    v[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, r));
  }
  UNIGAP_AI static void wide(const uint16_t *p, __m512 *v) { split(_mm512_loadu_si512(p), v); }
  UNIGAP_AI static void wide_tail(const uint16_t *p, int64_t left, __m512 *v) { split(raw_tail(p, left), v); }
  template <bool W>
  UNIGAP_AI static void p1(const uint16_t *p, Max &m, __m512 *v) {
    const __m512i r = _mm512_loadu_si512(p);
    m.add(r);
    if (W) split(r, v);
  }
  template <bool W>
  UNIGAP_AI static void p1_tail(const uint16_t *p, int64_t left, Max &m, __m512 *v) {
    const __m512i r = raw_tail(p, left);
    m.add(r);
    if (W) split(r, v);
  }
  UNIGAP_AI static __m512i raw(const uint16_t *p) { return _mm512_loadu_si512(p); }
  UNIGAP_AI static __m512i pos(int w) {
    return _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27),
                            _mm512_set1_epi32(4 * w));
  }
};

// 2^(d c) for raw differences d = z - zmax <= 0 (d clamped first so that d c >= -160): k =
// round(32 d c) by adding 1.5 * 2^18 (unit 1/32), 2^r for r = d c - k / 32 in [-1/64, 1/64], and
// 2^(k / 32) from a 32-entry register table (vpermi2ps on k mod 32) scaled by vscalefps. 2^r is the
// quadratic A ((r + a)^2 + g) with a = 46/32, whose square needs no linear term: with A folded into
// the table, the polynomial and the sum take two FMAs (s += tq (r'^2 + g)) where 1 + r (C1 + r C2)
// took three. r' = r + a comes from the same FMA that formed r, against q' = k / 32 - a (j minus
// 1.5 * 2^18 + a, exact on the 1/32 grid); vscalefps scales by 2^floor(q'), which is 2^floor(k / 32)
// times 2^-2 for k mod 32 < 14 and 2^-1 otherwise, so entry i of the table holds A 2^(i / 32) times
// 4 or 2 (kExp2Tab). A, g: a relative minimax fit on [-1/64, 1/64] (1.26e-7 in exact arithmetic),
// rounded to fp32 and searched among the nearby fp32 pairs for the smallest measured error such that
// d = 0 (the max element; r' = a exactly) gives exactly 1 (scripts/fit-exp2-sweep.py). Max relative
// error 2.7e-7 per term in acc(), which never rounds the product (the former three-FMA form: 1.67e-7;
// 3 x 2^20 random d c in [-150, 0], [-30, 0] and [-0.1, 0] at three multipliers, the kernel's fp32
// operations simulated against double exp2); one more rounding as a value (operator()). Below
// 2^-150 the result is 0 (vscalefps), so -inf logits weigh exactly 0. (One FMA less per 16
// elements: the bf16 plain forward, L2-resident rows, 1 thread, paired median 0.91-0.94.)
struct Exp2Sum {
  __m512 c, t0, t1, magic, magic_a, g;
  __m512i lo;  // bits of the raw clamp -160 / c: vpminud keeps any d above it (and positive values)
  explicit Exp2Sum(float mult, float a = 1.0f)
      : c(_mm512_set1_ps(mult)),
        t0(_mm512_loadu_ps(kExp2Tab)),
        t1(_mm512_loadu_ps(kExp2Tab + 16)),
        magic(_mm512_set1_ps(393216.0f)),
        magic_a(_mm512_set1_ps(393216.0f + kExp2Shift)),
        g(_mm512_set1_ps(kExp2G)) {
    float l = -160.0f / mult;
    uint32_t b;
    std::memcpy(&b, &l, 4);
    lo = _mm512_set1_epi32(static_cast<int>(b));
    if (a != 1.0f) {  // a * 2^x: fold a into the table (one more rounding, as Exp2Table does)
      t0 = _mm512_mul_ps(t0, _mm512_set1_ps(a));
      t1 = _mm512_mul_ps(t1, _mm512_set1_ps(a));
    }
  }
  UNIGAP_AI __m512 clamp(__m512 d) const { return _mm512_castsi512_ps(_mm512_min_epu32(_mm512_castps_si512(d), lo)); }
  // 2^floor(k/32) * table, and the polynomial; the product is the result
  UNIGAP_AI void parts(__m512 d, __m512 &tq, __m512 &v) const {
    __m512 r;
    st2(d, st1(d), tq, r);
    v = _mm512_fmadd_ps(r, r, g);
  }
  // The same split in three stages for software pipelining (stats_sweep_t): the chain from a load
  // to its sum is ~27 cycles, longer than the scheduler can cover at full rate unless the ops it
  // receives already have their inputs.
  UNIGAP_AI __m512 st1(__m512 d) const { return _mm512_fmadd_ps(d, c, magic); }
  UNIGAP_AI void st2(__m512 d, __m512 j, __m512 &tq, __m512 &r) const {  // r is r' = r + a
    const __m512 q = _mm512_sub_ps(j, magic_a);
    r = _mm512_fmsub_ps(d, c, q);
    tq = _mm512_scalef_ps(_mm512_permutex2var_ps(t0, _mm512_castps_si512(j), t1), q);
  }
  UNIGAP_AI __m512 fin(__m512 tq, __m512 r) const {
    return _mm512_mul_ps(tq, _mm512_fmadd_ps(r, r, g));
  }
  UNIGAP_AI void st3(__m512 tq, __m512 r, __m512 &s) const {
    s = _mm512_fmadd_ps(tq, _mm512_fmadd_ps(r, r, g), s);
  }
  UNIGAP_AI void acc(__m512 d, __m512 &s) const {
    __m512 tq, v;
    parts(d, tq, v);
    s = _mm512_fmadd_ps(tq, v, s);
  }
  UNIGAP_AI __m512 operator()(__m512 d) const {
    __m512 tq, v;
    parts(d, tq, v);
    return _mm512_mul_ps(tq, v);
  }
};

// Multipliers outside [2^-60, 2^60] (|log2 tau| beyond ~60) take stats_t, whose clamp lives in the
// scaled domain; inside, -160 / mult and the scaled differences stay finite.
constexpr float kSweepMultLo = 8.67361738e-19f, kSweepMultHi = 1.15292150e18f;
// Block length of the sweep (elements; a multiple of every kChunk): two blocks live in L1 at once.
// (2048 against 1024 / 4096, L2-resident A/B on Zen 5: f32 equal, bf16 7% faster.)
constexpr int64_t kSweepBlock = 2048;
// Software prefetch distance, bytes ahead of pass 1 (prefetcht0, one per line): pass 1's loads are
// spread thin among the exponentials, so without it the core keeps too few misses in flight to
// stream from memory (2 threads, [4096, 32000], best of 12 runs: f32 12.8 ms without, 11.0 ms at
// 8 KiB; bf16 10.9 -> 5.4 ms). The best distance depends on the state of this VM, so it was chosen
// from variants compiled side by side in one process and timed interleaved (bench/ab/header-ab.sh;
// paired median ratios, [4096, 32000], 2026-11-26, Zen 4/5 VM):
// - f32, vs 4 KiB: quiet machine at ~41 GB/s read: 6 KiB 1.00-1.03, 8 / 12 KiB 1.04-1.05 (4 KiB
//   matches the read probe there); the other core busy: 6 KiB 0.91, 8 / 12 KiB 0.84-0.86; one quiet
//   window at ~74 GB/s read: 8 / 12 KiB 0.87-0.90 (6 KiB not measured there). 6 KiB takes part of
//   the gain where 4 KiB falls short and costs 0-3% where 4 KiB is at the read probe.
// - bf16 / f16, vs the former 8 KiB: quiet 12 KiB 0.98-0.99 (4 KiB 1.08), busy 0.97-0.98.
// In time, 6 KiB of f32 is about 12 KiB of bf16 (half the bytes per element). prefetchnta was no
// better and slows the fused backward, which re-reads the row from L2 (1.01 vs 0.98 for t0); a second,
// far prefetcht2 on top of 4 KiB cost 4-5% on the quiet machine.
// Since then (the stream runs across rows, see stats_sweep_t):
// - f32 rows of 8192 logits or more take a distance tuned at run time per pool thread
//   (prefetch_tuner.h; stats() reads it from the flags); 6 KiB stays the default for shorter rows
//   and for callers that pass none (the A/B drivers in bench/ab).
// - 16-bit rows: 8 KiB, not tuned (the distances lie within 1-3% of each other, less than the
//   tuner's own cost). Through the library, paired medians vs 12 KiB (bench/ab/prefetch-setting.sh):
//   bf16 in the slow memory state 0.968 / 0.973, in the fast one (probe 61-77 GB/s) 0.984-0.995;
//   f16 (slow state) 0.979 / 0.994;
//   6 and 16 KiB no better.
template <class T>
constexpr int64_t kSweepPrefetch = sizeof(T) == 4 ? 6144 : 8192;

// The end of a sweep: the 16 lanes' (max, sum, entropy term) merged into the row's, in registers
// (a scalar loop with libm exp2 costs ~0.2 cycle per element of a 32000-wide row). Out of line so
// that its constants do not compete for registers with the sweep's loop.
template <bool ENT>
__attribute__((noinline)) void merge_lanes(__m512 zm, __m512 ls, __m512 lt, float mult, float *gm_out, float *s_out,
                                           float *t_out) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  const bool nan = (_mm512_cmp_ps_mask(ls, ls, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(zm, zm, _CMP_UNORD_Q)) != 0;
  const float gm = _mm512_reduce_max_ps(_mm512_mask_mov_ps(zm, _mm512_cmp_ps_mask(zm, zm, _CMP_UNORD_Q), ninf));
  const float gsafe = gm == -INFINITY ? 0.0f : gm;
  const __mmask16 live = _mm512_cmp_ps_mask(ls, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  const __m512 dj = _mm512_maskz_sub_ps(live, zm, _mm512_set1_ps(gsafe));
  const Exp2Table ex(1.0f);
  const __m512 fj = ex(_mm512_max_ps(_mm512_set1_ps(kExp2Lo), _mm512_mul_ps(dj, _mm512_set1_ps(mult))));
  float S = _mm512_reduce_add_ps(_mm512_maskz_mul_ps(live, fj, ls)), T = 0;
  if (ENT) T = _mm512_reduce_add_ps(_mm512_maskz_mul_ps(live, fj, _mm512_fmadd_ps(ls, dj, lt)));
  *gm_out = gm;
  *s_out = nan ? NAN : S;
  *t_out = T;
}

// Whether sweep_block's raw-word clamp of bf16 is exact for these per-lane maxima (see there): every
// lane has -2^22 <= msafe mult < 2^16 (false for a NaN lane; the generic loop then runs, which clamps
// d = z - msafe in f32 and is exact for any msafe). Far from zero or at low temperature, e.g. logits
// above 111 tau, a clamp at msafe - 160 / mult on the raw words would hold a positive T, where the
// bits' order is not the floats' (it clamped every logit above T down to T).
inline bool bf16_raw_clamp_ok(__m512 msafe, float mult) {
  const __m512 x = _mm512_mul_ps(msafe, _mm512_set1_ps(mult));
  return (_mm512_cmp_ps_mask(x, _mm512_set1_ps(-4194304.0f), _CMP_GE_OQ) &
          _mm512_cmp_ps_mask(x, _mm512_set1_ps(65536.0f), _CMP_LT_OQ)) == 0xffff;
}

// Pass 2 of the ng whole groups of one block (`cur`) interleaved with pass 1 of the nng <= ng whole
// groups of the next (`next`; nng = 0 for a row's last block) for the plain forward (no entropy,
// argmax or logit sum), software-pipelined in four stages over groups of two vectors: in one
// iteration, the loads (and d) of group g, Exp2Sum::st1 of g - 1, st2 of g - 2 and st3 of g - 3, so
// the ops the core receives mostly have their inputs already. The caller sweeps the elements past the
// whole groups. Out of line, so that its register allocation sees only this loop: two vectors per
// group, two partial sums and the constants fit the 32 registers, where the whole sweep spilled.
// (The last two blocks of a row once took the generic loop: bf16 0.0704 vs 0.0683 ns per element at
// V = 32768, all whole blocks, L2-resident. Runtime group counts cost nothing against compile-time
// ones for whole blocks: 1 thread, L2, paired 0.970-0.986, as noisy as the same header twice.)
template <class D, bool CLAMP>
__attribute__((noinline)) void sweep_block(const typename D::T *cur, const typename D::T *next, __m512 msafe,
                                           const Exp2Sum &exr, __m512 &s0r, __m512 &s1r, typename Sweep<D>::Max &mxr,
                                           int64_t pfd, int64_t ng, int64_t nng) {
  using S = Sweep<D>;
  using T = typename D::T;
  [[maybe_unused]] constexpr int64_t C = D::kChunk;  // used only in some if-constexpr branches
  constexpr int W = D::kVec;
  constexpr int64_t GE = 32;  // elements per group (2 f32 chunks or 1 bf16 chunk)
  const Exp2Sum ex = exr;
  typename S::Max mx = mxr;
  __m512 s0 = s0r, s1 = s1r;
  __m512 d0, d1, j0, j1, a0, a1, r0, r1;
  // bf16: the clamp on the raw words, once per 32: z >= T' with T' the bf16 truncation of
  // T = msafe - 2^16 / mult, laid out as vpunpck{l,h}wd will read it back (vpackusdw of a lane vector
  // with itself). vpminuw clamps by the bits, which is the float order only where T' < 0; the caller
  // takes this loop only where -2^22 <= msafe mult < 2^16 in every lane (bf16_raw_clamp_ok), so that
  // T' < 0 and, T' lying in [T, msafe - 32256 / mult] (truncation moves T by at most |T| / 128), a
  // clamped element weighs exactly 0 (as every z with (z - msafe) mult < -150 does) and every kept
  // one has (z - msafe) mult >= -2^16, inside the range of Exp2Sum's magic-number rounding.
  __m512i lo16 = _mm512_setzero_si512();
  if constexpr (W == 2 && CLAMP) {
    const __m512i lb = _mm512_srli_epi32(_mm512_castps_si512(_mm512_sub_ps(msafe, _mm512_set1_ps(65536.0f / ex.c[0]))), 16);
    lo16 = _mm512_packus_epi32(lb, lb);
  }
  auto load2 = [&](const T *p, __m512 &z0, __m512 &z1) UNIGAP_AI_LAMBDA {
    __m512 v[2];
    if constexpr (W == 1) {
      S::wide(p, v);
      S::wide(p + C, v + 1);
      z0 = _mm512_sub_ps(v[0], msafe);
      z1 = _mm512_sub_ps(v[1], msafe);
      if constexpr (CLAMP) z0 = ex.clamp(z0), z1 = ex.clamp(z1);
    } else {
      __m512i r = S::raw(p);
      if constexpr (CLAMP) r = _mm512_min_epu16(r, lo16);
      else asm("" : "+v"(r));  // one load, not one per unpack (GCC folds it into both)
      S::split(r, v);
      z0 = _mm512_sub_ps(v[0], msafe);
      z1 = _mm512_sub_ps(v[1], msafe);
    }
  };
  auto next1 = [&](int64_t g) UNIGAP_AI_LAMBDA {  // pass 1 of group g of the next block
    if (g >= nng) return;
    const T *p = next + g * GE;
    if constexpr (W == 1) mx.add(S::raw(p), S::raw(p + C));
    else mx.add(S::raw(p));
    _mm_prefetch(reinterpret_cast<const char *>(p) + pfd, _MM_HINT_T0);
    if (W == 1) _mm_prefetch(reinterpret_cast<const char *>(p) + pfd + 64, _MM_HINT_T0);
  };
  __m512 e0, e1;  // stage 0 (load, subtract, clamp) one group further ahead
  load2(cur, d0, d1);
  j0 = ex.st1(d0), j1 = ex.st1(d1);
  next1(0);
  ex.st2(d0, j0, a0, r0), ex.st2(d1, j1, a1, r1);
  load2(cur + GE, d0, d1);
  j0 = ex.st1(d0), j1 = ex.st1(d1);
  next1(1);
  load2(cur + 2 * GE, e0, e1);
  for (int64_t g = 3; g < ng; g++) {
    __m512 z0, z1;
    load2(cur + g * GE, z0, z1);
    ex.st3(a0, r0, s0), ex.st2(d0, j0, a0, r0), d0 = e0, j0 = ex.st1(e0), e0 = z0;
    ex.st3(a1, r1, s1), ex.st2(d1, j1, a1, r1), d1 = e1, j1 = ex.st1(e1), e1 = z1;
    next1(g - 1);
  }
  ex.st3(a0, r0, s0), ex.st2(d0, j0, a0, r0), d0 = e0, j0 = ex.st1(e0);
  ex.st3(a1, r1, s1), ex.st2(d1, j1, a1, r1), d1 = e1, j1 = ex.st1(e1);
  next1(ng - 1);
  ex.st3(a0, r0, s0), ex.st3(a1, r1, s1);
  ex.st2(d0, j0, a0, r0), ex.st2(d1, j1, a1, r1);
  ex.st3(a0, r0, s0), ex.st3(a1, r1, s1);
  s0r = s0, s1r = s1, mxr = mx;
}

template <class D, bool ENT, bool AM, bool ZS>
void stats_sweep_t(const void *rowp, int64_t n, float mult, RowStats *out, int64_t pfd) {
  using S = Sweep<D>;
  using T = typename D::T;
  [[maybe_unused]] constexpr int64_t C = D::kChunk;  // used only in some if-constexpr branches
  constexpr int64_t B = kSweepBlock;
  constexpr int W = D::kVec;
  constexpr bool kWide1 = AM || ZS;  // pass 1 needs the f32 values
  const T *row = static_cast<const T *>(rowp);
  const __m512 ninf = _mm512_set1_ps(-INFINITY), vt = _mm512_set1_ps(mult);
  const __m512 lo2 = _mm512_set1_ps(kExp2Lo), lo_raw = _mm512_set1_ps(-160.0f / mult);
  const Exp2Sum ex(mult);
  const Exp2Table ex1(1.0f);  // the once-per-block rescale: propagates NaN, maps -inf to 0
  // per-lane state: zm is the running max in raw logit units; s = sum 2^((z - zm) c);
  // t = sum 2^((z - zm) c) (z - zm) (raw units, times c at the end); four partial sums each
  // (named, not an array: they must stay in registers)
  __m512 zm = ninf, zs = _mm512_setzero_ps(), best = ninf;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  __m512i idx = S::pos(0), cur0 = S::pos(0), cur1 = S::pos(W - 1);
  const __m512i step = _mm512_set1_epi32(static_cast<int>(C));

  auto visit1v = [&](__m512 v, __m512i &cur, __m512i pos, int64_t left) UNIGAP_AI_LAMBDA {
    if (AM) {
      const __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, k, v);
      idx = _mm512_mask_mov_epi32(idx, k, cur);
      cur = _mm512_add_epi32(cur, step);
    }
    if (ZS) {
      if (left >= C) zs = _mm512_add_ps(zs, v);
      else zs = _mm512_mask_add_ps(zs, _mm512_cmplt_epi32_mask(pos, _mm512_set1_epi32(static_cast<int>(left))), zs, v);
    }
  };
  auto visit1 = [&](const __m512 *v, int64_t left) UNIGAP_AI_LAMBDA {  // argmax / logit sum of one chunk in pass 1
    visit1v(v[0], cur0, S::pos(0), left);
    if constexpr (W > 1) visit1v(v[W - 1], cur1, S::pos(W - 1), left);
  };
  auto p1_chunk = [&](const T *p, typename S::Max &mx) UNIGAP_AI_LAMBDA {
    __m512 v[W];
    S::template p1<kWide1>(p, mx, v);
    if (kWide1) visit1(v, C);
  };
  auto p1_pair = [&](const T *p, typename S::Max &mx) UNIGAP_AI_LAMBDA {
    if (kWide1) {
      p1_chunk(p, mx);
      p1_chunk(p + C, mx);
    } else {
      mx.add(S::raw(p), S::raw(p + C));
    }
  };
  auto p1_range = [&](int64_t b, int64_t e, typename S::Max &mx) UNIGAP_AI_LAMBDA {
    int64_t i = b;
    for (; i + C <= e; i += C) p1_chunk(row + i, mx);
    if (i < e) {
      __m512 v[W];
      S::template p1_tail<kWide1>(row + i, e - i, mx, v);
      if (kWide1) visit1(v, e - i);
    }
  };
  auto p2_vec = [&](__m512 z, __m512 msafe, __m512 &sa, __m512 &ta) UNIGAP_AI_LAMBDA {
    const __m512 d = ex.clamp(_mm512_sub_ps(z, msafe));
    if (ENT) {
      const __m512 e = ex(d);
      sa = _mm512_add_ps(sa, e);
      ta = _mm512_fmadd_ps(e, d, ta);
    } else {
      ex.acc(d, sa);
    }
  };
  // one chunk: its first vector into (sa, ta), a second one (bf16) into (sb, tb)
  auto p2_chunk = [&](const T *p, __m512 msafe, __m512 &sa, __m512 &ta, __m512 &sb, __m512 &tb) UNIGAP_AI_LAMBDA {
    __m512 v[W];
    S::wide(p, v);
    p2_vec(v[0], msafe, sa, ta);
    if constexpr (W > 1) p2_vec(v[W - 1], msafe, sb, tb);
  };
  auto p2_range = [&](int64_t b, int64_t e, __m512 msafe) UNIGAP_AI_LAMBDA {
    int64_t i = b;
    for (; i + 2 * C <= e; i += 2 * C) {
      p2_chunk(row + i, msafe, s0, t0, s1, t1);
      p2_chunk(row + i + C, msafe, s2, t2, s3, t3);
    }
    for (; i + C <= e; i += C) p2_chunk(row + i, msafe, s0, t0, s1, t1);
    if (i < e) {
      __m512 v[W];
      S::wide_tail(row + i, e - i, v);
      p2_vec(v[0], msafe, s2, t2);
      if constexpr (W > 1) p2_vec(v[W - 1], msafe, s3, t3);
    }
  };

  // the reference of a lane's sums: its max, or 0 for a lane of only -inf
  auto safe = [&](__m512 m) UNIGAP_AI_LAMBDA {
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
  };
  // A row that does not start on a 64-byte line (typed arrays from V8 start 16 bytes past one) has
  // every vector load of the sweep split across two lines. Its head, up to the first line boundary,
  // is swept here as a block of its own; the blocks after it then start on lines. Not for argmax or
  // logit sums, whose lane positions count whole chunks from the row's start. (Through the library,
  // [4096, 32000] at 16 bytes past a line against on one, fast memory state: f32 8.9 vs 8.0 ms, bf16
  // 5.8 vs 4.5 ms; the standalone driver at 16 bytes against 0, medians of separate runs: bf16
  // 1.14-1.22, f32 1.05-1.12.)
  if constexpr (!kWide1) {
    const auto at = reinterpret_cast<uintptr_t>(row);
    const int64_t head = at % sizeof(T) ? 0 : static_cast<int64_t>((64 - at % 64) % 64 / sizeof(T));
    if (head > 0 && n >= 2 * B + head) {
      typename S::Max mh;
      p1_range(0, head, mh);
      zm = mh.finish();
      p2_range(0, head, safe(zm));  // adds to the zero sums; zm is their reference, as the loop's rescale expects
      row += head;
      n -= head;
    }
  }
  typename S::Max mx;
  if (n >= 2 * B) {
    // The first block: its pass 1 prefetches ahead as sweep_block does, so the next block's first
    // kSweepPrefetch bytes are in flight as well; with the row-end prefetch below, the stream runs on
    // across rows. Before, 14 KiB of every 125 KiB f32 row (block 0 and the head of block 1) came in
    // on the hardware prefetcher alone: f32 [4096, 32000], 2 threads, paired medians vs without,
    // 0.936-0.952 (bf16 0.941, 1 thread 0.926; fused with the gradient 0.989-0.991).
    for (int64_t i = 0; i < B; i += C) {
      _mm_prefetch(reinterpret_cast<const char *>(row + i) + pfd, _MM_HINT_T0);
      p1_chunk(row + i, mx);
    }
  } else {
    p1_range(0, n < B ? n : B, mx);
  }
  __m512 bm = mx.finish(), bmin = mx.finish_min();
  for (int64_t b = 0; b < n; b += B) {
    const int64_t e = b + B < n ? b + B : n, ne = e + B < n ? e + B : n;
    // rescale the running statistics to the new per-lane max (once per block)
    const __m512 mn = _mm512_max_ps(zm, bm);  // a NaN block max wins
    const __m512 msafe = safe(mn);
    const __m512 dl = _mm512_sub_ps(zm, msafe);
    const __m512 f = ex1(_mm512_max_ps(lo2, _mm512_mul_ps(dl, vt)));
    const __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    if (ENT) {
      const __m512 t = _mm512_add_ps(_mm512_add_ps(t0, t1), _mm512_add_ps(t2, t3));
      t0 = _mm512_mul_ps(f, _mm512_fmadd_ps(s, _mm512_max_ps(lo_raw, dl), t));
      t1 = t2 = t3 = _mm512_setzero_ps();
    }
    s0 = _mm512_mul_ps(f, s);
    s1 = s2 = s3 = _mm512_setzero_ps();
    zm = mn;
    typename S::Max mx2;
    if (n >= 2 * B && ne == e) {
      // the last block: start the stream of the row after this one (mostly the caller's next row;
      // a prefetch past the buffer's end never faults)
      const char *pf = reinterpret_cast<const char *>(row + n);
      for (int64_t o = 0; o < pfd; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
    }
    constexpr int64_t GE = 32;  // sweep_block's group
    // A block whose every element lies within 2^16 / mult of its lane's max needs no clamp in
    // sweep_block: the magic-number rounding holds down to (z - msafe) mult = -2^17, and anything
    // below -150 comes out of vscalefps as exactly 0. False for a NaN or -inf anywhere in the block
    // (-inf would make r NaN). (L2-resident, 1 thread, paired vs always clamping: f32 0.89, bf16 0.95;
    // streamed from memory, 2 threads, bf16 1.00, once the raw words are loaded once, not per unpack.)
    const bool spread_ok =
        _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_sub_ps(bmin, msafe), vt), _mm512_set1_ps(-65536.0f), _CMP_GE_OQ) == 0xffff;
    const bool plain = !ENT && !kWide1 && (W == 1 || spread_ok || bf16_raw_clamp_ok(msafe, mult));
    if (plain && e - b >= 32 * GE) {
      // whole groups in sweep_block, the rest here. Not below 1024 elements, where its prologue costs
      // more than it gains (1 thread, L2, bf16, paired vs the generic loop: V 600 1.06-1.07, 1000
      // 1.01, 2100 0.96-0.97)
      const int64_t ng = (e - b) / GE, nng = (ne - e) / GE;
      if (spread_ok) sweep_block<D, false>(row + b, row + e, msafe, ex, s0, s1, mx2, pfd, ng, nng);
      else sweep_block<D, true>(row + b, row + e, msafe, ex, s0, s1, mx2, pfd, ng, nng);
      if (b + ng * GE < e) p2_range(b + ng * GE, e, msafe);
      if (e + nng * GE < ne) p1_range(e + nng * GE, ne, mx2);
    } else if (e - b == B && ne - e == B) {
      // pass 2 of this block interleaved with pass 1 of the next
      for (int64_t i = 0; i < B; i += 4 * C) {
        if constexpr (W == 1) {
          p2_chunk(row + b + i, msafe, s0, t0, s0, t0);
          p2_chunk(row + b + i + C, msafe, s1, t1, s1, t1);
          p1_pair(row + e + i, mx2);
          p2_chunk(row + b + i + 2 * C, msafe, s2, t2, s2, t2);
          p2_chunk(row + b + i + 3 * C, msafe, s3, t3, s3, t3);
        } else {
          p2_chunk(row + b + i, msafe, s0, t0, s1, t1);
          p2_chunk(row + b + i + C, msafe, s2, t2, s3, t3);
          p1_pair(row + e + i, mx2);
          p2_chunk(row + b + i + 2 * C, msafe, s0, t0, s1, t1);
          p2_chunk(row + b + i + 3 * C, msafe, s2, t2, s3, t3);
        }
        p1_pair(row + e + i + 2 * C, mx2);
        {
          const char *pf = reinterpret_cast<const char *>(row + e + i) + pfd;
          _mm_prefetch(pf, _MM_HINT_T0);
          _mm_prefetch(pf + 64, _MM_HINT_T0);
          _mm_prefetch(pf + 128, _MM_HINT_T0);
          _mm_prefetch(pf + 192, _MM_HINT_T0);
        }
      }
    } else {
      p2_range(b, e, msafe);
      if (e < ne) p1_range(e, ne, mx2);
    }
    if (e < ne) bm = mx2.finish(), bmin = mx2.finish_min();
  }
  // merge the 16 lanes
  alignas(64) float lb[16];
  alignas(64) int32_t li[16];
  float gm, Sum, Tt;
  merge_lanes<ENT>(zm, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                   _mm512_add_ps(_mm512_add_ps(t0, t1), _mm512_add_ps(t2, t3)), mult, &gm, &Sum, &Tt);
  out->m = gm * mult;  // base-2 units (Table::base2): the max of fl(z * mult), as the dispatch forms x_y
  out->s = Sum;
  out->t = Tt * mult;
  out->zsum = ZS ? _mm512_reduce_add_ps(zs) : 0.0f;
  out->argmax = 0;
  if (AM) {
    _mm512_store_ps(lb, best);
    _mm512_store_epi32(li, idx);
    out->argmax = merge_argmax(lb, li, 16);
  }
}

template <class D>
void stats(const void *row, int64_t n, float mult, int flags, RowStats *out) {
  if (!(mult >= kSweepMultLo && mult <= kSweepMultHi)) {
    return with_stat_flags(flags, [&](auto ent, auto am, auto zs) {
      stats_t<D, decltype(ent)::value, decltype(am)::value, decltype(zs)::value>(row, n, mult, out);
    });
  }
  const int kib = (flags >> kStatPrefetchShift) & 0xff;  // the caller's distance, or the default
  const int64_t pfd = kib ? int64_t{kib} * 1024 : kSweepPrefetch<typename D::T>;
  with_stat_flags(flags, [&](auto ent, auto am, auto zs) {
    stats_sweep_t<D, decltype(ent)::value, decltype(am)::value, decltype(zs)::value>(row, n, mult, out, pfd);
  });
}

// Before streaming stores: masked stores of val(i, mask) for the elements ahead of out's next 64-byte
// boundary; returns how many (n when the element type is misaligned, which the facade never passes:
// then no streaming at all).
template <class D, class F>
int64_t store_head(typename D::T *out, int64_t n, F &&val) {
  const size_t es = sizeof(typename D::T), mis = reinterpret_cast<uintptr_t>(out) & 63;
  int64_t head = mis ? static_cast<int64_t>((64 - mis) / es) : 0;
  if (mis % es) head = n;
  if (head > n) head = n;
  for (int64_t i = 0; i < head; i += 16) {
    const __mmask16 k = tail_mask(head - i);
    D::store(out + i, val(i, k), k);
  }
  return head;
}

template <class D, bool STREAM>
void grad_t(const typename D::T *row, typename D::T *out, int64_t n, float mult, float lse, float scale) {
  const __m512 vt = _mm512_set1_ps(mult);
  const __m512 vl = _mm512_set1_ps(lse);
  const Exp2Table e(-scale);
  // no clamp: the exp maps -inf and anything below -150 to exactly 0 (see stats_t)
  auto full = [&](int64_t i) UNIGAP_AI_LAMBDA { return e(_mm512_sub_ps(scaled(D::load(row + i), vt), vl)); };
  auto part = [&](int64_t i, __mmask16 k) UNIGAP_AI_LAMBDA {
    return e(_mm512_sub_ps(scaled(D::load(row + i, k), vt), vl));
  };
  int64_t i = 0;
  if (STREAM) {
    // masked head up to the 64-byte boundary, then whole vectors with non-temporal stores
    i = store_head<D>(out, n, part);
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

// The gradient with the sweep's exp2: out = -scale 2^((z - w) mult), w = lse / mult (raw units; the
// same to rounding as fl(z mult) - lse, which grad_t forms). d is clamped by a float max, which keeps
// a NaN (there is no pass 1 here to catch one); -inf gives exactly 0. Software-pipelined like the
// sweep, in groups of two vectors; `out` may alias `row` (every store lands behind the loads).
template <class D, bool STREAM>
void grad_sweep_t(const typename D::T *row, typename D::T *out, int64_t n, float mult, float w, float scale) {
  const Exp2Sum ex(mult, -scale);
  const __m512 vw = _mm512_set1_ps(w), lo = _mm512_set1_ps(-160.0f / mult);
  auto dz = [&](__m512 z) UNIGAP_AI_LAMBDA { return _mm512_max_ps(lo, _mm512_sub_ps(z, vw)); };
  auto put = [&](int64_t at, __m512 x) UNIGAP_AI_LAMBDA {
    if (STREAM) D::stream(out + at, x);
    else D::store(out + at, x);
  };
  int64_t i = 0;
  if (STREAM) {
    // masked head up to the 64-byte boundary, then whole vectors with non-temporal stores
    i = store_head<D>(out, n, [&](int64_t j, __mmask16 k) UNIGAP_AI_LAMBDA { return ex(dz(D::load(row + j, k))); });
  }
  if (n - i >= 128) {
    __m512 d0 = dz(D::load(row + i)), d1 = dz(D::load(row + i + 16)), j0 = ex.st1(d0), j1 = ex.st1(d1);
    __m512 a0, a1, r0, r1;
    ex.st2(d0, j0, a0, r0), ex.st2(d1, j1, a1, r1);
    d0 = dz(D::load(row + i + 32)), d1 = dz(D::load(row + i + 48)), j0 = ex.st1(d0), j1 = ex.st1(d1);
    int64_t k = i + 64;
    for (; k + 32 <= n; k += 32) {
      const __m512 z0 = dz(D::load(row + k)), z1 = dz(D::load(row + k + 16));
      put(k - 64, ex.fin(a0, r0)), ex.st2(d0, j0, a0, r0), d0 = z0, j0 = ex.st1(z0);
      put(k - 48, ex.fin(a1, r1)), ex.st2(d1, j1, a1, r1), d1 = z1, j1 = ex.st1(z1);
    }
    put(k - 64, ex.fin(a0, r0)), put(k - 48, ex.fin(a1, r1));
    ex.st2(d0, j0, a0, r0), ex.st2(d1, j1, a1, r1);
    put(k - 32, ex.fin(a0, r0)), put(k - 16, ex.fin(a1, r1));
    i = k;
  }
  for (; i + 16 <= n; i += 16) put(i, ex(dz(D::load(row + i))));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    D::store(out + i, ex(dz(D::load(row + i, k))), k);
  }
}

template <class D>
void grad(const void *rowp, void *outp, int64_t n, float mult, float lse, float scale, int stream) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  auto *out = static_cast<typename D::T *>(outp);
  const float w = lse / mult;
  const bool sweep = mult >= kSweepMultLo && mult <= kSweepMultHi && std::isfinite(w);
  if (stream) {
    if (sweep) grad_sweep_t<D, true>(row, out, n, mult, w, scale);
    else grad_t<D, true>(row, out, n, mult, lse, scale);
    _mm_sfence();  // order the streaming stores before the caller patches the label column
  } else if (sweep) {
    grad_sweep_t<D, false>(row, out, n, mult, w, scale);
  } else {
    grad_t<D, false>(row, out, n, mult, lse, scale);
  }
}

}  // namespace
}  // namespace logprobs
}  // namespace unigap

#endif
