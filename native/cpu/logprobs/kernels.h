// Per-ISA row kernels of the logprobs family (internal). Only native/cpu/logprobs/dispatch.cpp names
// them; it owns validation, sequences, threading and the per-row bookkeeping. The math is written
// down in native/include/unigap/logprobs.h.
#ifndef UNIGAP_CPU_LOGPROBS_KERNELS_H
#define UNIGAP_CPU_LOGPROBS_KERNELS_H
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace unigap {
namespace logprobs {

enum StatFlags { kStatEntropy = 1, kStatArgmax = 2, kStatZsum = 4 };
// Bits 8-15 of the flags: the software prefetch distance of the statistics' sweep in KiB, 0 for the
// tier's default (only the AVX-512 tier reads it; see prefetch_tuner.h). A prefetch
// never changes a result: every distance gives the same bits.
constexpr int kStatPrefetchShift = 8;

// One row's statistics from one pass over the row, in the tier's units: x = fl(z * mult) where mult
// is inv_tau (natural units, Table::base2 false) or inv_tau * log2(e) (base 2, Table::base2 true):
//   m = max_v x_v, s = sum_v E(x_v - m), t = sum_v E(x_v - m) (x_v - m)   (t only with kStatEntropy)
// with E = exp or exp2 (the AVX-512 sweep forms x_v - m as (z_v - max z) * mult, the same to rounding,
// and exactly 0 for the max element as x_v - m is). Then lse = (m + log s) [* ln 2], entropy = (log s - t / s) [* ln 2],
// argmax = first index of max_v z_v (kStatArgmax); zsum = sum_v z_v (raw logits, kStatZsum).
// A NaN logit makes s NaN; an all -inf row has m = -inf and s = 0.
struct RowStats {
  float m, s, t, zsum;
  int64_t argmax;
};

// dtype index: 0 f32, 1 bf16, 2 f16.
using RowStatsFn = void (*)(const void *row, int64_t v, float mult, int flags, RowStats *out);
// out[v] = scale * -E(fl(z_v * mult) - lse) for every v, lse in the tier's units (the label column is
// patched by the caller in fp32). `out` may alias `row` exactly (in place). `stream` (never set when
// in place) asks for non-temporal stores: a large gradient that would only evict the logits.
using RowGradFn = void (*)(const void *row, void *out, int64_t v, float mult, float lse, float scale, int stream);

struct Table {
  bool base2;
  bool tunable_prefetch;  // stats read the prefetch distance from the flags
  RowStatsFn stats[3];
  RowGradFn grad[3];
};

const Table &table_scalar();
const Table &table_avx2();
const Table &table_avx512();
const Table &table_avx512_bf16();  // AVX-512 + AVX512_BF16 (bf16 gradient rounding in one instruction)

// Block length (elements) of the online max/sum-exp: the block's max is taken first, the running
// statistics are rescaled once per block, then the block (now in L1) is exponentiated.
constexpr int64_t kBlock = 512;
// Inputs of exp below this give 0 (every tier clamps here so -inf logits weigh exactly 0).
constexpr float kExpLo = -104.0f;
// The SIMD tiers work in base 2: x = u * log2(e), exp(u) = 2^x; 2^-150 rounds to 0.
constexpr float kExp2Lo = -150.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;
// AVX2: 2^f ~ 1 + f (C1 + f (C2 + f (C3 + f (C4 + f C5)))) on [-0.5, 0.5]: a relative-error minimax fit
// (Lawson iterations on Chebyshev nodes) made for unigap; max relative error 1.9e-7 evaluated in fp32.
constexpr float kExp2C1 = 0.6931470036506653f;
constexpr float kExp2C2 = 0.24022242426872253f;
constexpr float kExp2C3 = 0.05550733581185341f;
constexpr float kExp2C4 = 0.009671512991189957f;
constexpr float kExp2C5 = 0.001326472731307149f;
// 2^r ~ 1 + r (T1 + r (T2 + r T3)) on [0, 1/16] (same kind of fit), for the AVX-512 table exp2.
constexpr float kExp2T1 = 0.693147599697113f;
constexpr float kExp2T2 = 0.2401842474937439f;
constexpr float kExp2T3 = 0.05666990205645561f;
// The AVX-512 sweep's exp2 (Exp2Sum in avx512_impl.h): 2^r ~ A ((r + a)^2 + G) on [-1/64, 1/64] with
// a = 46/32, and kExp2Tab[i] = fl(A 2^(i / 32) 2^(i < 14 ? 2 : 1)), A = 0.24109928143650056 (the
// table absorbs A and vscalefps's floor of k / 32 - a). A, G: relative minimax fit, then the fp32
// pair nearby with the smallest measured error for which r = 0 gives exactly 1 (2.7e-7 per term).
// Made and measured by scripts/fit-exp2-sweep.py.
constexpr float kExp2Shift = 1.4375f;
constexpr float kExp2G = 2.0812624f;
alignas(64) constexpr float kExp2Tab[32] = {
    0.964397132f, 0.9855147f, 1.00709462f, 1.02914715f, 1.05168247f, 1.07471132f, 1.09824443f, 1.12229288f,
    1.14686787f, 1.1719811f, 1.19764411f, 1.22386909f, 1.25066829f, 1.27805436f, 0.653020084f, 0.667319357f,
    0.681931734f, 0.696864128f, 0.712123454f, 0.727716923f, 0.743651867f, 0.759935677f, 0.776576102f, 0.793580949f,
    0.810958087f, 0.828715742f, 0.846862257f, 0.865406156f, 0.884356081f, 0.903720915f, 0.923509836f, 0.943732083f};

// Helpers each ISA unit compiles with its own target flags. Internal linkage (anonymous namespace), so the
// linker never substitutes one unit's AVX-512 copy into another unit.
namespace {
// The winner of per-lane argmax candidates: the largest non-NaN value, ties to the lower index.
inline int64_t merge_argmax(const float *lb, const int32_t *li, int lanes) {
  float bv = -INFINITY;
  int64_t bi = 0;
  bool any = false;
  for (int j = 0; j < lanes; j++) {
    if (std::isnan(lb[j])) continue;
    if (!any || lb[j] > bv || (lb[j] == bv && li[j] < bi)) {
      any = true;
      bv = lb[j];
      bi = li[j];
    }
  }
  return bi;
}

// Calls f(ent, am, zs), each a std::bool_constant, chosen by the StatFlags bits of `flags`, so a row
// kernel templated on <ENT, AM, ZS> is instantiated once per combination.
template <class F>
void with_stat_flags(int flags, F &&f) {
  using Y = std::true_type;
  using N = std::false_type;
  switch (flags & 7) {
    case 0: return f(N{}, N{}, N{});
    case 1: return f(Y{}, N{}, N{});
    case 2: return f(N{}, Y{}, N{});
    case 3: return f(Y{}, Y{}, N{});
    case 4: return f(N{}, N{}, Y{});
    case 5: return f(Y{}, N{}, Y{});
    case 6: return f(N{}, Y{}, Y{});
    default: return f(Y{}, Y{}, Y{});
  }
}
}  // namespace

}  // namespace logprobs
}  // namespace unigap
#endif
