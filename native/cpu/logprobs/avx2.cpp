// AVX2 + FMA + F16C tier: 8 f32 lanes, per-lane online statistics merged at the end of the row;
// bf16 widened by a 16-bit shift, f16 by vcvtph2ps; statistics in base 2 as in the AVX-512 tier.
// Row tails (< 8 elements) go through a small stack buffer padded with -inf.
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

template <class D>
void stats(const void *row, int64_t n, float mult, int flags, RowStats *out) {
  with_stat_flags(flags, [&](auto ent, auto am, auto zs) {
    stats_t<D, decltype(ent)::value, decltype(am)::value, decltype(zs)::value>(row, n, mult, out);
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
  static const Table t = {true, {stats<F32>, stats<BF16>, stats<F16>}, {grad<F32>, grad<BF16>, grad<F16>}};
  return t;
}

}  // namespace logprobs
}  // namespace unigap
