// C ABI of the similarity family: re-check the cheap invariants, pick the tier, call it.
#include "kernels.h"
#include "isa_guard.h"
#include "unigap/similarity.h"

#include <cmath>

namespace {

using unigap::sim::Table;

const Table &table(unigap_isa isa) {
  switch (isa) {
    case UNIGAP_ISA_AVX512: return unigap::sim::kAvx512;
    case UNIGAP_ISA_AVX2: return unigap::sim::kAvx2;
    default: return unigap::sim::kScalar;
  }
}

bool dtype_ok(unigap_dtype dt) {
  return dt == UNIGAP_DTYPE_F32 || dt == UNIGAP_DTYPE_F64 || dt == UNIGAP_DTYPE_BF16 || dt == UNIGAP_DTYPE_F16;
}

// Common checks; *tier set on success. The largest panel padding is 32 rows.
unigap_status check(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m, int64_t d,
                    const void *out, unigap_isa *tier) {
  if (!dtype_ok(da) || !dtype_ok(db)) return UNIGAP_STATUS_UNSUPPORTED_DTYPE;
  if (n < 0 || m < 0 || d < 1 || n > (int64_t(1) << 31) - 64 || m > (int64_t(1) << 31) - 64 ||
      d > (int64_t(1) << 40) / (n + m + 64))
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((n > 0 && (!a || !out)) || (m > 0 && !b)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  return unigap::current_tier(tier);
}

}  // namespace

extern "C" {

unigap_status unigap_similarity_paired_cosine(const void *a, unigap_dtype a_dtype, const void *b, unigap_dtype b_dtype,
                                              int64_t n, int64_t d, float *out) {
  unigap_isa tier;
  unigap_status s = check(a, a_dtype, n, b, b_dtype, n, d, out, &tier);
  if (s != UNIGAP_STATUS_OK || n == 0) return s;
  return table(tier).paired(a, a_dtype, b, b_dtype, n, d, out);
}

unigap_status unigap_similarity_matrix(const void *a, unigap_dtype a_dtype, int64_t n, const void *b,
                                       unigap_dtype b_dtype, int64_t m, int64_t d, int normalize, float scale,
                                       float bias, float *out) {
  unigap_isa tier;
  // out holds n * m floats: with m == 0 it may be NULL (Node gives an empty Float32Array no data pointer).
  unigap_status s = check(a, a_dtype, n, b, b_dtype, m, d, m > 0 ? static_cast<const void *>(out) : a, &tier);
  if (s != UNIGAP_STATUS_OK) return s;
  if (!std::isfinite(scale) || !std::isfinite(bias) || (normalize != 0 && normalize != 1))
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n == 0 || m == 0) return UNIGAP_STATUS_OK;
  return table(tier).matrix(a, a_dtype, n, b, b_dtype, m, d, normalize, scale, bias, out);
}

unigap_status unigap_similarity_topk(const void *q, unigap_dtype q_dtype, int64_t n, const void *c,
                                     unigap_dtype c_dtype, int64_t m, int64_t d, int64_t k, int normalize,
                                     int32_t *indices, float *scores) {
  unigap_isa tier;
  unigap_status s = check(q, q_dtype, n, c, c_dtype, m, d, indices, &tier);
  if (s != UNIGAP_STATUS_OK) return s;
  if (k < 1 || k > m) return UNIGAP_STATUS_OUT_OF_RANGE;
  if ((normalize != 0 && normalize != 1) || (n > 0 && !scores)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n == 0) return UNIGAP_STATUS_OK;
  return table(tier).topk(q, q_dtype, n, c, c_dtype, m, d, k, normalize, indices, scores);
}

unigap_status unigap_similarity_ranks(const void *q, unigap_dtype q_dtype, const void *c, unigap_dtype c_dtype,
                                      int64_t n, int64_t d, int normalize, double *ranks) {
  unigap_isa tier;
  unigap_status s = check(q, q_dtype, n, c, c_dtype, n, d, ranks, &tier);
  if (s != UNIGAP_STATUS_OK) return s;
  if (normalize != 0 && normalize != 1) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n == 0) return UNIGAP_STATUS_OK;
  return table(tier).ranks(q, q_dtype, c, c_dtype, n, d, normalize, ranks);
}
}
