// AVX-512 tier (F/BW/VL/DQ): the kernels are in avx512_impl.h.
#include "avx512_impl.h"

namespace unigap {
namespace logprobs {

const Table &table_avx512() {
  static const Table t = {true, true, {stats<F32>, stats<BF16>, stats<F16>}, {grad<F32>, grad<BF16>, grad<F16>}};
  return t;
}

}  // namespace logprobs
}  // namespace unigap
