// Per-ISA similarity entry points (internal). Only native/cpu/similarity/dispatch.cpp names them.
// Arguments are already validated by dispatch.cpp (sizes > 0, dtypes known, k in [1, m]).
#ifndef UNIGAP_CPU_SIMILARITY_KERNELS_H
#define UNIGAP_CPU_SIMILARITY_KERNELS_H
#include <cstdint>

#include "unigap/common.h"

namespace unigap {
namespace sim {

struct Table {
  unigap_status (*paired)(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n, int64_t d,
                          float *out);
  unigap_status (*matrix)(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m,
                          int64_t d, int normalize, float scale, float bias, float *out);
  unigap_status (*topk)(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m,
                        int64_t d, int64_t k, int normalize, int32_t *idx, float *scores);
  unigap_status (*ranks)(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n, int64_t d,
                         int normalize, double *ranks);
};

extern const Table kScalar;
extern const Table kAvx2;
extern const Table kAvx512;

}  // namespace sim
}  // namespace unigap
#endif
