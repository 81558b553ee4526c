// The log-prob forward through the C API (the library's dispatch, pool and kernels) on a buffer from
// aligned_alloc, to compare with the Node library on the same shape (typed arrays start 16 bytes past a
// 64-byte line) and with bench/ab/header-ab.sh (the kernel alone). Not part of the build or the tests:
//   g++ -O2 -std=c++17 -Inative/include bench/ab/capi-logprobs.cpp build/libunigap_core.a -lpthread -o /tmp/capi
//   /tmp/capi [REPS [DTYPE]]     (DTYPE 0 = f32, 1 = bf16; [4096, 32000], logits uniform in [-6, 6))
#include <unigap/logprobs.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ab_data.h"
int main(int argc, char **argv) {
  const int64_t N = 4096, V = 32000;
  const int reps = argc > 1 ? atoi(argv[1]) : 15, dtype = argc > 2 ? atoi(argv[2]) : 1;
  const size_t es = dtype ? 2 : 4;
  char *x = static_cast<char *>(aligned_alloc(64, N * V * es));
  ab_fill_logits(x, N * V, dtype);
  std::vector<int32_t> lab(N);
  for (int64_t i = 0; i < N; i++) lab[i] = static_cast<int32_t>((i * 7919 + 13) % V);
  std::vector<float> logp(N), lse(N), ssum(1), smean(1);
  std::vector<int32_t> cnt(1);
  int64_t off[2] = {0, N};
  unigap_logprobs_args a{};
  a.logits = x; a.dtype = dtype ? UNIGAP_DTYPE_BF16 : UNIGAP_DTYPE_F32; a.n_tokens = N; a.vocab = V; a.labels = lab.data();
  a.ignore_index = -100; a.offsets = off; a.n_seq = 1; a.temperature = 1;
  a.token_logp = logp.data(); a.token_lse = lse.data(); a.seq_sum = ssum.data(); a.seq_count = cnt.data(); a.seq_mean = smean.data();
  std::vector<double> t;
  for (int k = 0; k < reps; k++) {
    auto t0 = std::chrono::steady_clock::now();
    if (unigap_logprobs_forward(&a) != UNIGAP_STATUS_OK) return 1;
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  printf("capi %s median %.2f ms min %.2f (%.1f GB/s)\n", dtype ? "bf16" : "f32", t[reps / 2], t[0], N * V * es / t[reps / 2] / 1e6);
}
