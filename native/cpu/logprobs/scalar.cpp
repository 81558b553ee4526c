// Scalar tier: the honest baseline (built with auto-vectorisation off). Same block-online algorithm
// as the SIMD tiers, one lane, libm expf.
#include <cmath>
#include <limits>

#include "kernels.h"
#include "unigap/half.h"

namespace unigap {
namespace logprobs {
namespace {

struct F32 {
  using T = float;
  static float load(const T *p) { return *p; }
  static void store(T *p, float x) { *p = x; }
};
struct BF16 {
  using T = uint16_t;
  static float load(const T *p) { return unigap_bf16_to_f32(*p); }
  static void store(T *p, float x) { *p = unigap_f32_to_bf16(x); }
};
struct F16 {
  using T = uint16_t;
  static float load(const T *p) { return unigap_f16_to_f32(*p); }
  static void store(T *p, float x) { *p = unigap_f32_to_f16(x); }
};

// exp(d) for d <= 0 with the shared lower clamp (NaN passes through).
inline float exp_clamped(float d) { return d <= kExpLo ? 0.0f : std::exp(d); }

template <class D>
void stats(const void *rowp, int64_t n, float mult, int flags, RowStats *out) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  const float ninf = -std::numeric_limits<float>::infinity();
  float m = ninf, s = 0, t = 0, zsum = 0, best = ninf;
  int64_t arg = 0;
  const bool ent = flags & kStatEntropy, am = flags & kStatArgmax, zs = flags & kStatZsum;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = b + kBlock < n ? b + kBlock : n;
    float bm = ninf;
    for (int64_t i = b; i < e; i++) {
      const float z = D::load(row + i);
      const float u = z * mult;
      if (u > bm) bm = u;
      if (am && z > best) {
        best = z;
        arg = i;
      }
      if (zs) zsum += z;
    }
    const float mn = bm > m ? bm : m;
    const float msafe = mn == ninf ? 0.0f : mn;
    if (mn != m) {
      float delta = m - msafe;
      if (delta < kExpLo) delta = kExpLo;
      const float f = exp_clamped(delta);
      t = f * (t + s * delta);
      s = f * s;
      m = mn;
    }
    for (int64_t i = b; i < e; i++) {
      float d = D::load(row + i) * mult - msafe;
      if (d < kExpLo) d = kExpLo;
      const float x = exp_clamped(d);
      s += x;
      if (ent) t += x * d;
    }
  }
  out->m = m;
  out->s = s;
  out->t = t;
  out->zsum = zsum;
  out->argmax = arg;
}

template <class D>
void grad(const void *rowp, void *outp, int64_t n, float mult, float lse, float scale, int /*stream*/) {
  const auto *row = static_cast<const typename D::T *>(rowp);
  auto *out = static_cast<typename D::T *>(outp);
  for (int64_t i = 0; i < n; i++) D::store(out + i, -scale * exp_clamped(D::load(row + i) * mult - lse));
}

}  // namespace

const Table &table_scalar() {
  static const Table t = {false, false, {stats<F32>, stats<BF16>, stats<F16>}, {grad<F32>, grad<BF16>, grad<F16>}};
  return t;
}

}  // namespace logprobs
}  // namespace unigap
