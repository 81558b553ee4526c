// Driver body of bench/ab/header-ab.sh (included after the generated variant namespaces, which
// define names[], f32[], b16[], g32[], g16[] and NK). Times each variant of the AVX-512 row statistics
// (and, with FUSED = 1, the row gradient after it) and a plain read probe, interleaved per repetition
// on the same buffer, and prints medians and the paired median ratio of each variant to the first.
// Args: REPS THREADS DTYPE(0 f32, 1 bf16) FUSED(0/1). Rows: [4096, 32000], logits uniform in [-6, 6).
// Environment: AB_V=n sets the row length (default 32000); AB_L2ROWS=k makes each thread cycle over
// k rows of its own part instead of streaming them (k rows that fit L2: the kernels' compute alone).
using ::unigap::logprobs::RowStats;

static float probe_sum(const float *x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#include "ab_data.h"

int main(int argc, char **argv) {
  const int64_t N = 4096, V = getenv("AB_V") ? atoll(getenv("AB_V")) : 32000;
  const int64_t l2rows = getenv("AB_L2ROWS") ? atoll(getenv("AB_L2ROWS")) : 0;
  const int reps = argc > 1 ? atoi(argv[1]) : 21, T = argc > 2 ? atoi(argv[2]) : 2;
  const int dtype = argc > 3 ? atoi(argv[3]) : 0, fused = argc > 4 ? atoi(argv[4]) : 0;
  const size_t es = dtype ? 2 : 4;
  char *x = static_cast<char *>(aligned_alloc(64, N * V * es));
  ab_fill_logits(x, N * V, dtype);
  std::vector<RowStats> out(N);
  char *gout = fused ? static_cast<char *>(aligned_alloc(64, N * V * es)) : nullptr;
  if (gout) memset(gout, 0, N * V * es);
  const int NV = NK + 1;  // the variants, then the probe
  std::vector<std::vector<double>> t(NV);
  float ps[64] = {0};
  for (int k = 0; k < reps; k++)
    for (int v = 0; v < NV; v++) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> th;
      for (int q = 0; q < T; q++)
        th.emplace_back([&, q] {
          if (v == NK) {
            const int64_t n = N * V * static_cast<int64_t>(es) / 4;
            ps[q % 64] = probe_sum(reinterpret_cast<float *>(x) + n * q / T, n / T);
            return;
          }
          const int64_t r0 = N * q / T;
          for (int64_t rr = r0; rr < N * (q + 1) / T; rr++) {
            const int64_t r = l2rows ? r0 + (rr - r0) % l2rows : rr;
            (dtype ? b16[v] : f32[v])(x + r * V * es, V, 1.4426950408889634f, 0, &out[r]);
            if (fused)
              (dtype ? g16[v] : g32[v])(x + r * V * es, gout + r * V * es, V, 1.4426950408889634f,
                                        out[r].m + std::log2(out[r].s), 0.001f, 1);
          }
        });
      for (auto &h : th) h.join();
      t[v].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  const double bytes = static_cast<double>(N * V * es);
  for (int v = 0; v < NV; v++) {
    auto w = t[v];
    std::sort(w.begin(), w.end());
    printf("%-12s median %7.2f ms  p20 %7.2f  min %7.2f  %5.1f GB/s  %.4f ns/elem/thread\n", v == NK ? "read probe" : names[v],
           w[reps / 2], w[reps / 5], w[0], bytes / w[reps / 2] / 1e6, w[reps / 2] * 1e6 * T / static_cast<double>(N * V));
  }
  for (int v = 1; v < NV; v++) {
    std::vector<double> r;
    for (int k = 0; k < reps; k++) r.push_back(t[v][k] / t[0][k]);
    std::sort(r.begin(), r.end());
    printf("%s / %s: paired median %.3f\n", v == NK ? "read probe" : names[v], names[0], r[reps / 2]);
  }
  printf("(check %g %g)\n", static_cast<double>(out[7].s), static_cast<double>(ps[0]));
}
