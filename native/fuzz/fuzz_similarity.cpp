// libFuzzer target for the similarity C ABI (paired cosine, matrix, top-k, ranks). Fuzzer bytes pick
// small shapes (N, M <= 40 so the GEMM blocks and their edges are crossed; D <= 70), each input's
// dtype (including invalid ones), k (including 0 and M + 1), normalize (including 2), scale / bias
// (including NaN / inf) and the values. Buffers are exactly sized; invalid arguments must come back
// as a status, and OK results must satisfy the ordering contract.
#include <cstdio>

#include "fuzz_common.h"
#include "unigap/similarity.h"

using fuzz::Buf;
using fuzz::Reader;

namespace {

struct Mat {
  std::unique_ptr<uint8_t[]> p;
  int dt;
  bool finite = true;
};

Mat make(Reader &r, int64_t rows, int64_t d) {
  static const int kDtypes[] = {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_F64, UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F16, 9};
  Mat m;
  m.dt = kDtypes[r.u8() % 5];
  const size_t esz = fuzz::dtype_size(m.dt) ? fuzz::dtype_size(m.dt) : 4;
  const size_t count = static_cast<size_t>(rows) * static_cast<size_t>(d < 0 ? 0 : d);
  m.p.reset(new uint8_t[count * esz + 1]);
  fuzz::fill(r, m.p.get(), m.dt == 9 ? UNIGAP_DTYPE_F32 : m.dt, count);
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader r(data, size);
  fuzz::pick_isa(r);
  const int op = r.u8() % 4;
  const int64_t n = r.range(0, 40);
  const int64_t m = r.range(0, 40);
  const int64_t d = r.u8() % 8 == 0 ? r.range(-1, 0) : r.range(1, 70);
  const int normalize = r.u8() % 7 == 0 ? 2 : r.u8() % 2;
  Mat a = make(r, n, d);
  Mat b = make(r, op == 0 || op == 3 ? n : m, d);
  unigap_status s;
  switch (op) {
    case 0: {
      Buf<float> out(static_cast<size_t>(n));
      s = unigap_similarity_paired_cosine(a.p.get(), static_cast<unigap_dtype>(a.dt), b.p.get(),
                                          static_cast<unigap_dtype>(b.dt), n, d, out.get());
      break;
    }
    case 1: {
      const float scale = r.u8() % 5 == 0 ? r.value() : 1.0f + r.u8() / 4.0f;
      const float bias = r.u8() % 5 == 0 ? r.value() : 0.0f;
      Buf<float> out(static_cast<size_t>(n * m));
      s = unigap_similarity_matrix(a.p.get(), static_cast<unigap_dtype>(a.dt), n, b.p.get(),
                                   static_cast<unigap_dtype>(b.dt), m, d, normalize, scale, bias, out.get());
      break;
    }
    case 2: {
      const int64_t k = r.range(0, m + 1);
      const size_t cells = static_cast<size_t>(n) * static_cast<size_t>(k);
      Buf<int32_t> idx(cells);
      Buf<float> sc(cells);
      s = unigap_similarity_topk(a.p.get(), static_cast<unigap_dtype>(a.dt), n, b.p.get(),
                                 static_cast<unigap_dtype>(b.dt), m, d, k, normalize, idx.get(), sc.get());
      if (s == UNIGAP_STATUS_OK) {
        FUZZ_ASSERT(k >= 1 && k <= m);
        for (int64_t i = 0; i < n; i++) {
          for (int64_t j = 0; j < k; j++) {
            const int32_t c = idx.get()[i * k + j];
            FUZZ_ASSERT(c >= 0 && c < m);
            for (int64_t jj = 0; jj < j; jj++) FUZZ_ASSERT(idx.get()[i * k + jj] != c);  // distinct
            if (j > 0) {  // best first: no NaN before a number, no increase
              const float prev = sc.get()[i * k + j - 1], cur = sc.get()[i * k + j];
              FUZZ_ASSERT(!(std::isnan(prev) && !std::isnan(cur)));
              FUZZ_ASSERT(!(cur > prev));
            }
          }
        }
      }
      break;
    }
    default: {
      Buf<double> ranks(static_cast<size_t>(n));
      s = unigap_similarity_ranks(a.p.get(), static_cast<unigap_dtype>(a.dt), b.p.get(),
                                  static_cast<unigap_dtype>(b.dt), n, d, normalize, ranks.get());
      if (s == UNIGAP_STATUS_OK)
        for (int64_t i = 0; i < n; i++) {
          const double rk = ranks.get()[i];
          FUZZ_ASSERT(std::isnan(rk) || (rk >= 1 && rk <= static_cast<double>(n) && rk == std::floor(rk)));
        }
      break;
    }
  }
  FUZZ_ASSERT(s >= UNIGAP_STATUS_OK && s <= UNIGAP_STATUS_INTERNAL && s != UNIGAP_STATUS_INTERNAL);
  return 0;
}
