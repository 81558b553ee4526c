// Per-ISA row kernels of the logprobs family (internal). Only native/cpu/logprobs/dispatch.cpp names
// them; it owns validation, sequences, threading and the per-row bookkeeping. The math is written
// down in native/include/unigap/logprobs.h.
#ifndef UNIGAP_CPU_LOGPROBS_KERNELS_H
#define UNIGAP_CPU_LOGPROBS_KERNELS_H
#include <cstdint>

namespace unigap {
namespace logprobs {

enum StatFlags { kStatEntropy = 1, kStatArgmax = 2, kStatZsum = 4 };

// One row's statistics in u = z * inv_tau space, from one pass over the row:
//   m = max_v u_v, s = sum_v exp(u_v - m), t = sum_v exp(u_v - m) (u_v - m)   (t only with kStatEntropy)
//   lse = m + log s; entropy = log s - t / s; argmax = first index of max_v z_v (kStatArgmax);
//   zsum = sum_v z_v (raw logits, kStatZsum).
// A NaN logit makes s NaN; an all -inf row has m = -inf and s = 0.
struct RowStats {
  float m, s, t, zsum;
  int64_t argmax;
};

// dtype index: 0 f32, 1 bf16, 2 f16.
using RowStatsFn = void (*)(const void *row, int64_t v, float inv_tau, int flags, RowStats *out);
// out[v] = scale * -exp(u_v - lse) for every v (the label column is patched by the caller in fp32).
// `out` may alias `row` exactly (in place).
using RowGradFn = void (*)(const void *row, void *out, int64_t v, float inv_tau, float lse, float scale);

struct Table {
  RowStatsFn stats[3];
  RowGradFn grad[3];
};

const Table &table_scalar();
const Table &table_avx2();
const Table &table_avx512();

// Block length (elements) of the online max/sum-exp: the block's max is taken first, the running
// statistics are rescaled once per block, then the block (now in L1) is exponentiated.
constexpr int64_t kBlock = 512;
// Inputs of exp below this give 0 (every tier clamps here so -inf logits weigh exactly 0).
constexpr float kExpLo = -104.0f;

}  // namespace logprobs
}  // namespace unigap
#endif
