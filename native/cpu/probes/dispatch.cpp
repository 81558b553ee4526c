#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "unigap/probes.h"

namespace {
using Clock = std::chrono::steady_clock;

struct SumCtx {
  const float *x;
  int64_t n;
  int64_t parts;
  float (*fn)(const float *, int64_t);
  std::atomic<float> sink{0};
};

void sum_range(void *p, int64_t b, int64_t e) {
  auto *c = static_cast<SumCtx *>(p);
  for (int64_t part = b; part < e; part++) {
    int64_t lo = c->n * part / c->parts, hi = c->n * (part + 1) / c->parts;
    float v = c->fn(c->x + lo, hi - lo);
    c->sink.store(c->sink.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
}

struct FmaCtx {
  int64_t iters;
  float (*fn)(int64_t, int *);
  std::atomic<int64_t> lanes{0};
  std::atomic<float> sink{0};
};

void fma_range(void *p, int64_t b, int64_t e) {
  auto *c = static_cast<FmaCtx *>(p);
  for (int64_t i = b; i < e; i++) {
    int lxc = 0;
    float v = c->fn(c->iters, &lxc);
    c->lanes.fetch_add(lxc);
    c->sink.store(c->sink.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
}
}  // namespace

extern "C" {

double unigap_probe_read_bandwidth(int64_t bytes, int reps) {
  if (bytes < 4096 || reps < 1) return -1;
  int64_t n = bytes / 4;
  float *x = static_cast<float *>(std::aligned_alloc(64, static_cast<size_t>(n * 4 + 63) / 64 * 64));
  if (!x) return -1;
  for (int64_t i = 0; i < n; i++) x[i] = static_cast<float>(i & 1023) * 1e-3f;  // touch every page
  SumCtx c;
  c.x = x;
  c.n = n;
  c.parts = static_cast<int64_t>(unigap_threads()) * 8;
  switch (unigap_isa_active()) {
    case UNIGAP_ISA_AVX512: c.fn = unigap::probe_sum_avx512; break;
    case UNIGAP_ISA_AVX2: c.fn = unigap::probe_sum_avx2; break;
    default: c.fn = unigap::probe_sum_scalar;
  }
  double best = 0;
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    unigap_parallel_for(c.parts, 1, sum_range, &c);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n) * 4 / s / 1e9);
  }
  std::free(x);
  return best;
}

double unigap_probe_fma_peak(int64_t iters, int reps) {
  if (iters < 1 || reps < 1) return -1;
  FmaCtx c;
  c.iters = iters;
  switch (unigap_isa_active()) {
    case UNIGAP_ISA_AVX512: c.fn = unigap::probe_fma_avx512; break;
    case UNIGAP_ISA_AVX2: c.fn = unigap::probe_fma_avx2; break;
    default: c.fn = unigap::probe_fma_scalar;
  }
  const int64_t tasks = unigap_threads();
  double best = 0;
  for (int r = 0; r < reps; r++) {
    c.lanes.store(0);
    auto t0 = Clock::now();
    unigap_parallel_for(tasks, 1, fma_range, &c);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(c.lanes.load()) * static_cast<double>(iters) * 2 / s / 1e9);
  }
  return best;
}
}
