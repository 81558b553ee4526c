// AVX2 + FMA + F16C tier: 8 f32 lanes, per-lane online statistics merged at the end of the row;
// statistics in base 2 as in the AVX-512 tier. Row tails (< 8 elements) go through a small stack
// buffer padded with -inf.
//
// Row statistics: the one-sweep design of the AVX-512 tier (stats_sweep_t below: pass 1 of the next
// 2048-element block interleaved with the exponentials of this one, d = z - zmax, an 8-entry table
// exp2 with a degree-3 polynomial, prefetch 12 KiB ahead), for multipliers in [2^-60, 2^60];
// outside, and for the gradient, the block-wise kernels (stats_t, grad) with the degree-5 Exp2x8.
// Exp2Sum8's max relative error against double exp2, d c in [-126, 0], 2^25 evenly spaced points for
// c = 1 and for one random c, then 4 x 2^25 random points for other c (down to 1e-10): 1.61e-7 as a
// value and as a summed term (the AVX-512 sweep's: 2.7e-7 per summed term).
// Measured 2026-11-26 on the dev VM (AMD EPYC, Zen 4/5 class, 2 cores shared with other work),
// nice -n 5: the previous stats_t and this sweep compiled side by side into one standalone driver
// (/tmp, not in the repo), 21 repetitions interleaved, medians old -> new and the paired median
// speedup, plain forward (no entropy / argmax / logit sum), tau = 1:
//   f32  [1024, 32000] 1 thread 9.18 -> 6.13 ms (1.51x), 2 threads 1.52x; [4096, 32000] 1 thread
//        36.1 -> 24.2 ms (1.49x), 2 threads 1.43x; L2-resident rows 8.76 -> 5.47 ms (1.61x)
//   bf16 [1024, 32000] 1 thread 10.64 -> 6.14 ms (1.74x); [4096, 32000] 1 thread 1.74x, 2 threads 1.65x
//   f16  [1024, 32000] 1 thread 10.05 -> 6.68 ms (1.51x)
//   with entropy, argmax and logit sum: f32 1.42x, bf16 1.46x ([1024, 32000], 1 thread)
// (the 2-thread runs were rarely faster than 1 thread: the cores were busy). Without the prefetch
// the sweep was 18-23% slower from memory ([4096, 32000]). Through the facade (scoreLogprobs, f32
// [1024, 32000] forward, UNIGAP_THREADS=1, avx2 and avx512 interleaved in one process, medians of
// 21): before avx2 9.53 ms, avx512 6.31 ms; after avx2 6.20, avx512 6.13 ms (paired avx2 / avx512
// 1.51 -> 1.01).
// The AVX-512 side then moved (e92b17e, its f32 prefetch 4 -> 6 KiB): at e92b17e, separate
// processes, 15 calls each, medians, avx2 6.7 ms vs avx512 5.6 ms.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels.h"
#include "unigap/half.h"

namespace unigap {
namespace logprobs {
namespace {

// a * 2^x for x >= kExp2Lo (or NaN): n = round(x) by the 1.5 * 2^23 trick, the shared degree-5
// polynomial for 2^f with `a` folded into its coefficients, 2^n built in the exponent field; below
// 2^-126 the result is flushed to 0.
struct Exp2x8 {
  __m256 c0, c1, c2, c3, c4, c5;
  explicit Exp2x8(float a)
      : c0(_mm256_set1_ps(a)),
        c1(_mm256_set1_ps(a * kExp2C1)),
        c2(_mm256_set1_ps(a * kExp2C2)),
        c3(_mm256_set1_ps(a * kExp2C3)),
        c4(_mm256_set1_ps(a * kExp2C4)),
        c5(_mm256_set1_ps(a * kExp2C5)) {}
  __m256 operator()(__m256 x) const {
    const __m256 lo = _mm256_set1_ps(-126.0f), magic = _mm256_set1_ps(12582912.0f);
    const __m256 zero = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    const __m256 xc = _mm256_max_ps(lo, x);
    const __m256 nb = _mm256_add_ps(xc, magic);  // low mantissa bits hold n
    const __m256 n = _mm256_sub_ps(nb, magic);
    const __m256 f = _mm256_sub_ps(xc, n);
    __m256 p = _mm256_fmadd_ps(c5, f, c4);
    p = _mm256_fmadd_ps(p, f, c3);
    p = _mm256_fmadd_ps(p, f, c2);
    p = _mm256_fmadd_ps(p, f, c1);
    p = _mm256_fmadd_ps(p, f, c0);
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(nb), _mm256_set1_epi32(127 - 0x4B400000)), 23);
    return _mm256_andnot_ps(zero, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
  }
};

struct F32 {
  using T = float;
  static __m256 load(const T *p) { return _mm256_loadu_ps(p); }
  static void store(T *p, __m256 x) { _mm256_storeu_ps(p, x); }
  static float to_f32(T x) { return x; }
};
struct BF16 {
  using T = uint16_t;
  static __m256 load(const T *p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static void store(T *p, __m256 x) {  // round to nearest even; NaN stays a quiet NaN
    const __m256i u = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
    // r holds 16-bit values in 32-bit lanes: pack (unsigned saturation is exact here), fix lane order
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), _mm256_castsi256_si128(packed));
  }
  static float to_f32(T x) { return unigap_bf16_to_f32(x); }
};
struct F16 {
  using T = uint16_t;
  static __m256 load(const T *p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); }
  static void store(T *p, __m256 x) {
    _mm_storeu_si128(reinterpret_cast<__m128i *>(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static float to_f32(T x) { return unigap_f16_to_f32(x); }
};

// x = fl(z * c), kept out of an FMA contraction with the subtraction that follows (see avx512.cpp).
inline __m256 scaled(__m256 z, __m256 c) {
  __m256 x = _mm256_mul_ps(z, c);
  asm("" : "+x"(x));
  return x;
}

// Up to 8 trailing elements as f32, padded with -inf.
template <class D>
inline __m256 load_tail(const typename D::T *p, int64_t k) {
  alignas(32) float buf[8];
  for (int j = 0; j < 8; j++) buf[j] = j < k ? D::to_f32(p[j]) : -INFINITY;
  return _mm256_load_ps(buf);
}

inline float hsum(__m256 v) {
  alignas(32) float b[8];
  _mm256_store_ps(b, v);
  return ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

template <class D, bool ENT, bool AM, bool ZS>
void stats_t(const void *rowp, int64_t n, float mult, RowStats *out) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  const __m256 ninf = _mm256_set1_ps(-INFINITY), lo = _mm256_set1_ps(kExp2Lo);
  const __m256 vt = _mm256_set1_ps(mult);
  __m256 m = ninf, s = _mm256_setzero_ps(), t = _mm256_setzero_ps(), zs = _mm256_setzero_ps(), best = ninf;
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), cur = idx;
  const __m256i step = _mm256_set1_epi32(8);
  const Exp2x8 ex(1.0f);
  float ztail = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = b + kBlock < n ? b + kBlock : n;
    __m256 bm0 = ninf, bm1 = ninf;
    auto visit = [&](__m256 z, __m256 &bm, bool addz) {
      bm = _mm256_max_ps(bm, z);
      if (AM) {
        const __m256 k = _mm256_cmp_ps(z, best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, z, k);
        idx = _mm256_blendv_epi8(idx, cur, _mm256_castps_si256(k));
        cur = _mm256_add_epi32(cur, step);
      }
      if (ZS && addz) zs = _mm256_add_ps(zs, z);
    };
    int64_t i = b;
    for (; i + 16 <= e; i += 16) {
      visit(D::load(row + i), bm0, true);
      visit(D::load(row + i + 8), bm1, true);
    }
    for (; i + 8 <= e; i += 8) visit(D::load(row + i), bm0, true);
    if (i < e) {
      visit(load_tail<D>(row + i, e - i), bm1, false);  // padded with -inf: its sum is taken in scalar
      if (ZS)
        for (int64_t j = i; j < e; j++) ztail += D::to_f32(row[j]);
    }
    const __m256 mn = _mm256_max_ps(m, _mm256_mul_ps(_mm256_max_ps(bm0, bm1), vt));
    const __m256 msafe = _mm256_andnot_ps(_mm256_cmp_ps(mn, ninf, _CMP_EQ_OQ), mn);
    const __m256 delta = _mm256_max_ps(lo, _mm256_sub_ps(m, msafe));
    const __m256 f = ex(delta);
    if (ENT) t = _mm256_mul_ps(f, _mm256_fmadd_ps(s, delta, t));
    s = _mm256_mul_ps(f, s);
    m = mn;
    __m256 s1 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    auto acc = [&](__m256 z, __m256 &sa, __m256 &ta) {
      const __m256 d = _mm256_max_ps(lo, _mm256_sub_ps(scaled(z, vt), msafe));
      const __m256 x = ex(d);
      sa = _mm256_add_ps(sa, x);
      if (ENT) ta = _mm256_fmadd_ps(x, d, ta);
    };
    i = b;
    for (; i + 16 <= e; i += 16) {
      acc(D::load(row + i), s, t);
      acc(D::load(row + i + 8), s1, t1);
    }
    for (; i + 8 <= e; i += 8) acc(D::load(row + i), s, t);
    if (i < e) acc(load_tail<D>(row + i, e - i), s1, t1);
    s = _mm256_add_ps(s, s1);
    if (ENT) t = _mm256_add_ps(t, t1);
  }
  alignas(32) float lm[8], ls[8], lt[8], lb[8];
  alignas(32) int32_t li[8];
  _mm256_store_ps(lm, m);
  _mm256_store_ps(ls, s);
  _mm256_store_ps(lt, t);
  float gm = -INFINITY;
  bool nan = false;
  for (int j = 0; j < 8; j++) {
    if (lm[j] > gm) gm = lm[j];
    nan |= std::isnan(ls[j]) || std::isnan(lm[j]);
  }
  const float gsafe = gm == -INFINITY ? 0.0f : gm;
  float S = 0, Tt = 0;
  for (int j = 0; j < 8; j++) {
    if (ls[j] == 0) continue;
    const float dj = lm[j] - gsafe, fj = std::exp2(dj);
    S += fj * ls[j];
    if (ENT) Tt += fj * (lt[j] + ls[j] * dj);
  }
  if (nan) S = NAN;
  out->m = gm;  // base-2 units (Table::base2)
  out->s = S;
  out->t = Tt;
  out->zsum = 0;
  if (ZS) out->zsum = hsum(zs) + ztail;
  out->argmax = 0;
  if (AM) {
    _mm256_store_ps(lb, best);
    _mm256_store_si256(reinterpret_cast<__m256i *>(li), idx);
    out->argmax = merge_argmax(lb, li, 8);
  }
}

// ---------------------------------------------------------------------------------------------------
// One-sweep statistics (stats_sweep_t), the AVX2 port of the AVX-512 tier's stats_sweep_t (see
// avx512_impl.h): pass 1 (the block max, plus argmax / logit sum when asked) of block k + 1 runs in
// the same loop as pass 2 (the exponentials) of block k, with a software prefetch 12 KiB ahead of
// pass 1; per-lane maxima in raw logit units, d = z - zmax (exact 0 for the max element, which
// weighs exactly 2^0), c = mult folded into the exp2's argument reduction (Exp2Sum8).

#define UNIGAP_AI inline __attribute__((always_inline))
#define UNIGAP_AI_LAMBDA __attribute__((always_inline))

// 2^(d c) for raw differences d = z - zmax <= 0, clamped first so that d c >= -160 (a float max,
// which keeps a NaN): k = round(8 d c) by adding 1.5 * 2^20 + 127 (unit 1/8; the 127 puts the
// exponent bias into the low bits), 2^((k mod 8) / 8) from an 8-entry register table (vpermps),
// 2^floor(k / 8) built in the exponent field from the same bits (<< 20, the mantissa cleared; a
// negative or zero field, i.e. below 2^-126, is made 0 by a signed max with 0: exactly 0, so -inf
// logits weigh exactly 0), and 2^r for r = d c - k / 8 in [-1/16, 1/16] by 1 + r (C1 + r (C2 + r C3))
// (relative minimax fit with the constant term pinned to 1: 2.7e-8 with fp32 coefficients; table
// rounding <= 3.2e-8). r is formed by one FMA from d, so d = 0 gives exactly 1. A NaN d gives a NaN
// polynomial, which survives the product (0 * NaN is NaN). Max relative error measured 1.61e-7 (see
// the note at the top of the file).
struct Exp2Sum8 {
  __m256 c, magic, lo, tab, c1, c2, c3, one;
  __m256i emask;
  explicit Exp2Sum8(float mult)
      : c(_mm256_set1_ps(mult)),
        magic(_mm256_set1_ps(1572991.0f)),  // 1.5 * 2^20 + 127
        lo(_mm256_set1_ps(-160.0f / mult)),
        tab(_mm256_setr_ps(1.0f, 1.0905077457427979f, 1.1892070770263672f, 1.2968395948410034f, 1.4142135381698608f,
                           1.5422108173370361f, 1.6817928552627563f, 1.8340080976486206f)),
        c1(_mm256_set1_ps(0.6931472420692444f)),
        c2(_mm256_set1_ps(0.24025772511959076f)),
        c3(_mm256_set1_ps(0.05549619719386101f)),
        one(_mm256_set1_ps(1.0f)),
        emask(_mm256_set1_epi32(static_cast<int>(0xff800000u))) {}
  UNIGAP_AI __m256 clamp(__m256 d) const { return _mm256_max_ps(lo, d); }
  // 2^floor(k/8) * table and the polynomial; their product is the result
  UNIGAP_AI void parts(__m256 d, __m256 &ts, __m256 &p) const {
    const __m256 j = _mm256_fmadd_ps(d, c, magic);
    const __m256 q = _mm256_sub_ps(j, magic);
    const __m256 r = _mm256_fmsub_ps(d, c, q);
    const __m256i jb = _mm256_castps_si256(j);
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_slli_epi32(jb, 20), emask), _mm256_setzero_si256());
    ts = _mm256_mul_ps(_mm256_permutevar8x32_ps(tab, jb), _mm256_castsi256_ps(e));
    p = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(c3, r, c2), r, c1), r, one);
  }
  UNIGAP_AI void acc(__m256 d, __m256 &s) const {
    __m256 ts, p;
    parts(d, ts, p);
    s = _mm256_fmadd_ps(ts, p, s);
  }
  UNIGAP_AI __m256 operator()(__m256 d) const {
    __m256 ts, p;
    parts(d, ts, p);
    return _mm256_mul_ps(ts, p);
  }
};

// Multipliers outside [2^-60, 2^60] take stats_t (as in the AVX-512 tier): inside, -160 / mult and
// the scaled differences stay finite.
constexpr float kSweepMultLo = 8.67361738e-19f, kSweepMultHi = 1.15292150e18f;
constexpr int64_t kSweepBlock = 2048;     // elements; two blocks live in L1 at once
constexpr int64_t kSweepPrefetch = 12288;  // bytes ahead of pass 1 (prefetcht0, one per line)

// Chunk access of the sweep per dtype: wide() gives kVec f32 vectors of one chunk, wide_tail() the
// same for `left` < kChunk elements padded with -inf; pos(w) is the in-chunk element index of each
// lane of vector w (argmax, logit-sum tail mask).
struct SweepF32 {
  using T = float;
  static constexpr int64_t kChunk = 8;
  static constexpr int kVec = 1;
  UNIGAP_AI static void wide(const T *p, __m256 *v) { v[0] = _mm256_loadu_ps(p); }
  UNIGAP_AI static void wide_tail(const T *p, int64_t left, __m256 *v) { v[0] = load_tail<F32>(p, left); }
  UNIGAP_AI static __m256i pos(int) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
};
struct SweepF16 {
  using T = uint16_t;
  static constexpr int64_t kChunk = 8;
  static constexpr int kVec = 1;
  UNIGAP_AI static void wide(const T *p, __m256 *v) { v[0] = F16::load(p); }
  UNIGAP_AI static void wide_tail(const T *p, int64_t left, __m256 *v) { v[0] = load_tail<F16>(p, left); }
  UNIGAP_AI static __m256i pos(int) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
};
// bf16: 16 words per chunk widened by vpunpck{l,h}wd against zero (one in-lane shuffle per 8
// elements): vector 0 holds words 0-3 and 8-11, vector 1 words 4-7 and 12-15. Sums and maxima do
// not care about the order; argmax maps lanes back through pos().
struct SweepBF16 {
  using T = uint16_t;
  static constexpr int64_t kChunk = 16;
  static constexpr int kVec = 2;
  UNIGAP_AI static void split(__m256i r, __m256 *v) {
    const __m256i z = _mm256_setzero_si256();
    v[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, r));
    v[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, r));
  }
  UNIGAP_AI static void wide(const T *p, __m256 *v) { split(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)), v); }
  UNIGAP_AI static void wide_tail(const T *p, int64_t left, __m256 *v) {
    alignas(32) uint16_t buf[16];
    for (int j = 0; j < 16; j++) buf[j] = j < left ? p[j] : 0xff80;  // bf16 -inf
    split(_mm256_load_si256(reinterpret_cast<const __m256i *>(buf)), v);
  }
  UNIGAP_AI static __m256i pos(int w) {
    return _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11), _mm256_set1_epi32(4 * w));
  }
};
template <class D> struct SweepOf;
template <> struct SweepOf<F32> { using S = SweepF32; };
template <> struct SweepOf<BF16> { using S = SweepBF16; };
template <> struct SweepOf<F16> { using S = SweepF16; };

template <class D, bool ENT, bool AM, bool ZS>
void stats_sweep_t(const void *rowp, int64_t n, float mult, RowStats *out) {
  using S = typename SweepOf<D>::S;
  using T = typename D::T;
  constexpr int64_t C = S::kChunk, B = kSweepBlock, L = 64 / sizeof(T);  // L: elements per line
  constexpr int W = S::kVec;
  const T *row = static_cast<const T *>(rowp);
  const __m256 ninf = _mm256_set1_ps(-INFINITY), vt = _mm256_set1_ps(mult);
  const __m256 lo2 = _mm256_set1_ps(kExp2Lo), lo_raw = _mm256_set1_ps(-160.0f / mult);
  const Exp2Sum8 ex(mult);
  const Exp2x8 ex1(1.0f);  // the once-per-block rescale: propagates NaN, maps -inf to 0
  // per-lane state: zm is the running max in raw logit units; s = sum 2^((z - zm) c), t = sum
  // 2^((z - zm) c) (z - zm) (raw units, times c at the end); two partial sums each
  __m256 zm = ninf, zs = _mm256_setzero_ps(), best = ninf;
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, t0 = s0, t1 = s0;
  __m256i idx = S::pos(0), cur0 = S::pos(0), cur1 = S::pos(W - 1);
  const __m256i step = _mm256_set1_epi32(static_cast<int>(C));

  // pass 1 of one chunk (`left` valid elements): block max by a float max (it may drop a NaN; pass 2
  // then meets the NaN itself), argmax and logit sum
  auto visit1v = [&](__m256 v, __m256 &bm, __m256i &cur, __m256i pos, int64_t left) UNIGAP_AI_LAMBDA {
    bm = _mm256_max_ps(bm, v);
    if (AM) {
      const __m256 k = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
      best = _mm256_blendv_ps(best, v, k);
      idx = _mm256_blendv_epi8(idx, cur, _mm256_castps_si256(k));
      cur = _mm256_add_epi32(cur, step);
    }
    if (ZS) {
      if (left >= C) zs = _mm256_add_ps(zs, v);
      else zs = _mm256_add_ps(zs, _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), pos))));
    }
  };
  auto p1_vecs = [&](const __m256 *v, __m256 &bm0, __m256 &bm1, int64_t left) UNIGAP_AI_LAMBDA {
    visit1v(v[0], bm0, cur0, S::pos(0), left);
    if constexpr (W > 1) visit1v(v[W - 1], bm1, cur1, S::pos(W - 1), left);
  };
  auto p1_range = [&](int64_t b, int64_t e, __m256 &bm0, __m256 &bm1) UNIGAP_AI_LAMBDA {
    int64_t i = b;
    __m256 v[W];
    for (; i + C <= e; i += C) {
      S::wide(row + i, v);
      p1_vecs(v, bm0, bm1, C);
    }
    if (i < e) {
      S::wide_tail(row + i, e - i, v);
      p1_vecs(v, bm0, bm1, e - i);
    }
  };
  auto p2_vec = [&](__m256 z, __m256 msafe, __m256 &sa, __m256 &ta) UNIGAP_AI_LAMBDA {
    const __m256 d = ex.clamp(_mm256_sub_ps(z, msafe));
    if (ENT) {
      const __m256 e = ex(d);
      sa = _mm256_add_ps(sa, e);
      ta = _mm256_fmadd_ps(e, d, ta);
    } else {
      ex.acc(d, sa);
    }
  };
  auto p2_range = [&](int64_t b, int64_t e, __m256 msafe) UNIGAP_AI_LAMBDA {
    int64_t i = b;
    __m256 v[W];
    for (; i + C <= e; i += C) {
      S::wide(row + i, v);
      p2_vec(v[0], msafe, s0, t0);
      if constexpr (W > 1) p2_vec(v[W - 1], msafe, s1, t1);
    }
    if (i < e) {
      S::wide_tail(row + i, e - i, v);
      p2_vec(v[0], msafe, s1, t1);
      if constexpr (W > 1) p2_vec(v[W - 1], msafe, s0, t0);
    }
  };

  // the reference of a lane's sums: its max, or 0 for a lane of only -inf
  auto safe = [&](__m256 m) UNIGAP_AI_LAMBDA { return _mm256_andnot_ps(_mm256_cmp_ps(m, ninf, _CMP_EQ_OQ), m); };
  // A row that does not start on a 64-byte line (typed arrays from V8 start 16 bytes past one): its
  // head, up to the first line boundary, is swept as a block of its own, so that the blocks after it
  // load whole lines (as in the AVX-512 tier; not for argmax or logit sums, whose lane positions count
  // whole chunks from the row's start).
  if constexpr (!AM && !ZS) {
    const auto at = reinterpret_cast<uintptr_t>(row);
    const int64_t head = at % sizeof(T) ? 0 : static_cast<int64_t>((64 - at % 64) % 64 / sizeof(T));
    if (head > 0 && n >= 2 * B + head) {
      __m256 h0 = ninf, h1 = ninf;
      p1_range(0, head, h0, h1);
      zm = _mm256_max_ps(h0, h1);
      p2_range(0, head, safe(zm));
      row += head;
      n -= head;
    }
  }
  __m256 bm0 = ninf, bm1 = ninf;
  if (n >= 2 * B) {
    // the first block: its pass 1 prefetches ahead as the interleaved loop does, so that the next
    // block's first kSweepPrefetch bytes are in flight too (not only what the hardware fetches)
    for (int64_t i = 0; i < B; i += L) {
      _mm_prefetch(reinterpret_cast<const char *>(row + i) + kSweepPrefetch, _MM_HINT_T0);
      p1_range(i, i + L, bm0, bm1);
    }
  } else {
    p1_range(0, n < B ? n : B, bm0, bm1);
  }
  __m256 bm = _mm256_max_ps(bm0, bm1);
  for (int64_t b = 0; b < n; b += B) {
    const int64_t e = b + B < n ? b + B : n, ne = e + B < n ? e + B : n;
    // rescale the running statistics to the new per-lane max (once per block); the sums are NaN
    // already wherever a NaN was met, and stay NaN
    const __m256 mn = _mm256_max_ps(zm, bm);
    const __m256 msafe = safe(mn);
    const __m256 dl = _mm256_sub_ps(zm, msafe);
    const __m256 f = ex1(_mm256_max_ps(lo2, _mm256_mul_ps(dl, vt)));
    const __m256 s = _mm256_add_ps(s0, s1);
    if (ENT) {
      t0 = _mm256_mul_ps(f, _mm256_fmadd_ps(s, _mm256_max_ps(lo_raw, dl), _mm256_add_ps(t0, t1)));
      t1 = _mm256_setzero_ps();
    }
    s0 = _mm256_mul_ps(f, s);
    s1 = _mm256_setzero_ps();
    zm = mn;
    __m256 nb0 = ninf, nb1 = ninf;
    // bf16 plain forward: pass 1 of the interleaved loop takes the max on the raw words, by integer
    // max / min (the signed max of the bits is the float max when any word is >= +0, otherwise the
    // signed min is), without widening; a NaN may be dropped there and is met by pass 2 itself
    // (f32: two integer ops per vector instead of one vmaxps measured 4% slower)
    __m256i hi16 = _mm256_set1_epi16(INT16_MIN), lo16 = _mm256_set1_epi16(INT16_MAX);
    if (e - b == B && ne - e == B) {
      // pass 2 of this block interleaved with pass 1 of the next, one 64-byte line of each per step
      for (int64_t i = 0; i < B; i += L) {
        __m256 v[W];
        for (int64_t k = 0; k < L; k += C) {  // one vector into each partial sum in turn
          S::wide(row + b + i + k, v);
          if constexpr (W > 1) {
            p2_vec(v[0], msafe, s0, t0);
            p2_vec(v[1], msafe, s1, t1);
          } else if ((k / C) % 2 == 0) {
            p2_vec(v[0], msafe, s0, t0);
          } else {
            p2_vec(v[0], msafe, s1, t1);
          }
        }
        if constexpr (W == 2 && !AM && !ZS) {
          for (int64_t k = 0; k < L; k += C) {
            const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(row + e + i + k));
            hi16 = _mm256_max_epi16(hi16, r);
            lo16 = _mm256_min_epi16(lo16, r);
          }
        } else {
          for (int64_t k = 0; k < L; k += C) {
            S::wide(row + e + i + k, v);
            p1_vecs(v, nb0, nb1, C);
          }
        }
        _mm_prefetch(reinterpret_cast<const char *>(row + e + i) + kSweepPrefetch, _MM_HINT_T0);
      }
      if constexpr (W == 2 && !AM && !ZS) {  // the f32 lanes of the raw max (as SweepBF16::split lays them)
        const __m256i m = _mm256_blendv_epi8(lo16, hi16, _mm256_cmpgt_epi16(hi16, _mm256_set1_epi16(-1)));
        const __m256i z = _mm256_setzero_si256();
        nb0 = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, m));
        nb1 = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, m));
      }
    } else {
      if (n >= 2 * B && ne == e) {
        // the last block: start the stream of the row after this one (mostly the caller's next row;
        // a prefetch past the buffer's end never faults)
        const char *pf = reinterpret_cast<const char *>(row + n);
        for (int64_t o = 0; o < kSweepPrefetch; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
      }
      p2_range(b, e, msafe);
      if (e < ne) p1_range(e, ne, nb0, nb1);
    }
    if (e < ne) bm = _mm256_max_ps(nb0, nb1);
  }
  // merge the 8 lanes
  alignas(32) float lm[8], ls[8], lt[8], lb[8];
  alignas(32) int32_t li[8];
  _mm256_store_ps(lm, zm);
  _mm256_store_ps(ls, _mm256_add_ps(s0, s1));
  _mm256_store_ps(lt, _mm256_add_ps(t0, t1));
  float gm = -INFINITY;
  bool nan = false;
  for (int j = 0; j < 8; j++) {
    if (lm[j] > gm) gm = lm[j];
    nan |= std::isnan(ls[j]) || std::isnan(lm[j]);
  }
  const float gsafe = gm == -INFINITY ? 0.0f : gm;
  float Sum = 0, Tt = 0;
  for (int j = 0; j < 8; j++) {
    if (ls[j] == 0) continue;
    const float dj = lm[j] - gsafe, fj = std::exp2(std::fmax(kExp2Lo, dj * mult));
    if (fj == 0) continue;
    Sum += fj * ls[j];
    if (ENT) Tt += fj * (lt[j] + ls[j] * dj);
  }
  out->m = gm * mult;  // base-2 units (Table::base2): the max of fl(z * mult), as the dispatch forms x_y
  out->s = nan ? NAN : Sum;
  out->t = Tt * mult;
  out->zsum = ZS ? hsum(zs) : 0.0f;
  out->argmax = 0;
  if (AM) {
    _mm256_store_ps(lb, best);
    _mm256_store_si256(reinterpret_cast<__m256i *>(li), idx);
    out->argmax = merge_argmax(lb, li, 8);
  }
}

template <class D>
void stats(const void *row, int64_t n, float mult, int flags, RowStats *out) {
  if (!(mult >= kSweepMultLo && mult <= kSweepMultHi)) {
    return with_stat_flags(flags, [&](auto ent, auto am, auto zs) {
      stats_t<D, decltype(ent)::value, decltype(am)::value, decltype(zs)::value>(row, n, mult, out);
    });
  }
  with_stat_flags(flags, [&](auto ent, auto am, auto zs) {
    stats_sweep_t<D, decltype(ent)::value, decltype(am)::value, decltype(zs)::value>(row, n, mult, out);
  });
}

template <class D>
void grad(const void *rowp, void *outp, int64_t n, float mult, float lse, float scale, int /*stream*/) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  auto *out = static_cast<typename D::T *>(outp);
  const __m256 lo = _mm256_set1_ps(kExp2Lo), vt = _mm256_set1_ps(mult);
  const __m256 vl = _mm256_set1_ps(lse);
  const Exp2x8 e(-scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    D::store(out + i, e(_mm256_max_ps(lo, _mm256_sub_ps(scaled(D::load(row + i), vt), vl))));
    D::store(out + i + 8, e(_mm256_max_ps(lo, _mm256_sub_ps(scaled(D::load(row + i + 8), vt), vl))));
  }
  for (; i + 8 <= n; i += 8) D::store(out + i, e(_mm256_max_ps(lo, _mm256_sub_ps(scaled(D::load(row + i), vt), vl))));
  if (i < n) {
    alignas(32) typename D::T buf[16];
    D::store(buf, e(_mm256_max_ps(lo, _mm256_sub_ps(scaled(load_tail<D>(row + i, n - i), vt), vl))));
    std::memcpy(out + i, buf, static_cast<size_t>(n - i) * sizeof(typename D::T));
  }
}

}  // namespace

const Table &table_avx2() {
  static const Table t = {true, false, {stats<F32>, stats<BF16>, stats<F16>}, {grad<F32>, grad<BF16>, grad<F16>}};
  return t;
}

}  // namespace logprobs
}  // namespace unigap
