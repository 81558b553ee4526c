// A/B of the log-prob statistics' prefetch setting through the library's C API
// (unigap_logprobs_set_prefetch_kib): the settings given on the command line (0 = tuned per thread,
// N = pinned at N KiB) timed interleaved per repetition on the same [4096, 32000] logits and the
// thread pool of the library; prints medians and paired median ratios to the first setting. Linked
// against build/libunigap_core.a by prefetch-setting.sh; not part of the package or the tests.
// Args: REPS DTYPE(0 f32, 1 bf16, 2 f16) SETTING...
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "unigap/half.h"
#include "unigap/logprobs.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s REPS DTYPE(0 f32, 1 bf16, 2 f16) SETTING...\n", argv[0]);
    return 2;
  }
  const int64_t N = 4096, V = 32000;
  const int reps = std::atoi(argv[1]), dtype = std::atoi(argv[2]);
  std::vector<int> set;
  for (int i = 3; i < argc; i++) set.push_back(std::atoi(argv[i]));
  const size_t es = dtype ? 2 : 4;
  std::vector<char> x(static_cast<size_t>(N * V) * es);
  uint32_t s = 12345;
  for (int64_t i = 0; i < N * V; i++) {
    s = s * 1664525u + 1013904223u;
    const float f = static_cast<float>(static_cast<int>(s >> 9)) * (12.0f / (1 << 23)) - 6.0f;
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if (dtype == 2) reinterpret_cast<uint16_t *>(x.data())[i] = unigap_f32_to_f16(f);
    else if (dtype) reinterpret_cast<uint16_t *>(x.data())[i] = static_cast<uint16_t>(b >> 16);
    else reinterpret_cast<float *>(x.data())[i] = f;
  }
  std::vector<int32_t> labels(N);
  for (int64_t i = 0; i < N; i++) labels[i] = static_cast<int32_t>((i * 7919) % V);
  std::vector<float> logp(N), sum(1);
  const int64_t offsets[2] = {0, N};
  unigap_logprobs_args a{};
  a.logits = x.data();
  a.dtype = dtype == 2 ? UNIGAP_DTYPE_F16 : dtype ? UNIGAP_DTYPE_BF16 : UNIGAP_DTYPE_F32;
  a.n_tokens = N;
  a.vocab = V;
  a.labels = labels.data();
  a.ignore_index = -100;
  a.offsets = offsets;
  a.n_seq = 1;
  a.temperature = 1.0f;
  a.token_logp = logp.data();
  a.seq_sum = sum.data();
  const size_t K = set.size();
  std::vector<std::vector<double>> t(K);
  std::vector<float> first(N);
  for (int k = -3; k < reps; k++)  // 3 rounds of warm-up (the tuners learn there too)
    for (size_t j = 0; j < K; j++) {
      if (unigap_logprobs_set_prefetch_kib(set[j]) != UNIGAP_STATUS_OK) {
        std::fprintf(stderr, "setting %d refused\n", set[j]);
        return 2;
      }
      const auto t0 = std::chrono::steady_clock::now();
      if (unigap_logprobs_forward(&a) != UNIGAP_STATUS_OK) return 1;
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (k >= 0) t[j].push_back(ms);
      if (j == 0) first = logp;
      else if (std::memcmp(first.data(), logp.data(), N * sizeof(float)) != 0) {
        std::fprintf(stderr, "setting %d changed the log-probs\n", set[j]);
        return 1;
      }
    }
  for (size_t j = 0; j < K; j++) {
    std::vector<double> w = t[j], r;
    std::sort(w.begin(), w.end());
    for (int k = 0; k < reps; k++) r.push_back(t[j][k] / t[0][k]);
    std::sort(r.begin(), r.end());
    std::printf("%-8s median %7.2f ms  min %7.2f  %5.1f GB/s  vs first: paired median %.3f\n",
                set[j] ? (std::to_string(set[j]) + " KiB").c_str() : "tuned", w[reps / 2], w[0],
                static_cast<double>(N * V * es) / w[reps / 2] / 1e6, r[reps / 2]);
  }
}
