// logprobs entry points: re-check the cheap invariants, resolve which rows count and what they
// target (serial O(N)), run the per-ISA row kernels over rows on the thread pool, then reduce per
// sequence (serial O(N), in double). The only unit that names ISA-specific symbols.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "isa_guard.h"
#include "kernels.h"
#include "prefetch_tuner.h"
#include "unigap/half.h"
#include "unigap/logprobs.h"

namespace {

using unigap::logprobs::PrefetchTuner;
using unigap::logprobs::RowStats;
using unigap::logprobs::Table;

enum Mode { kForward, kBackward, kFused };

constexpr double kStreamBytes = 64.0 * 1024 * 1024;

int dtype_index(unigap_dtype d) {
  switch (d) {
    case UNIGAP_DTYPE_F32: return 0;
    case UNIGAP_DTYPE_BF16: return 1;
    case UNIGAP_DTYPE_F16: return 2;
    default: return -1;
  }
}

inline float load_one(const void *base, int di, int64_t i) {
  switch (di) {
    case 0: return static_cast<const float *>(base)[i];
    case 1: return unigap_bf16_to_f32(static_cast<const uint16_t *>(base)[i]);
    default: return unigap_f16_to_f32(static_cast<const uint16_t *>(base)[i]);
  }
}

inline void store_one(void *base, int di, int64_t i, float x) {
  switch (di) {
    case 0: static_cast<float *>(base)[i] = x; break;
    case 1: static_cast<uint16_t *>(base)[i] = unigap_f32_to_bf16(x); break;
    default: static_cast<uint16_t *>(base)[i] = unigap_f32_to_f16(x); break;
  }
}

struct Ctx {
  const unigap_logprobs_args *a;
  const unigap_logprobs_grad *g;
  Mode mode;
  const Table *tab;
  int di;
  size_t esize;
  float inv_tau;
  float mult;  // into the tier's units: inv_tau, or inv_tau * log2(e) when tab->base2
  int stream;  // non-temporal gradient stores (out of place and large)
  int pf_kib;  // the sweep's prefetch distance pinned (KiB), or 0: tuned per thread
  const int32_t *target;  // label of the row's target, -1 when the row is not counted
  const float *upstream;  // g_t per row (grad modes)
  float *logp;            // token logp (caller's or scratch)
  float *zsum;            // per-row raw logit sums (scratch) or NULL
};

// f32 rows shorter than this, and 16-bit rows, keep the tier's default (see prefetch_tuner.h).
constexpr int64_t kTuneMinVocab = 8192;

std::atomic<int> g_prefetch_kib{-1};  // -1: not yet read from UNIGAP_PREFETCH_KIB

int prefetch_kib() {
  int k = g_prefetch_kib.load(std::memory_order_relaxed);
  if (k >= 0) return k;
  static const int from_env = [] {
    const char *e = std::getenv("UNIGAP_PREFETCH_KIB");
    const int x = e && *e ? std::atoi(e) : 0;
    return x >= 0 && x <= 255 ? x : 0;
  }();
  int expected = -1;
  g_prefetch_kib.compare_exchange_strong(expected, from_env);
  return g_prefetch_kib.load(std::memory_order_relaxed);
}

void rows(void *p, int64_t begin, int64_t end) {
  const Ctx &c = *static_cast<const Ctx *>(p);
  const unigap_logprobs_args &a = *c.a;
  const int64_t v = a.vocab;
  const bool fwd = c.mode != kBackward, bwd = c.mode != kForward;
  int flags = 0;
  if (fwd && a.token_entropy) flags |= unigap::logprobs::kStatEntropy;
  if (fwd && a.token_correct) flags |= unigap::logprobs::kStatArgmax;
  if (fwd && c.zsum) flags |= unigap::logprobs::kStatZsum;
  thread_local PrefetchTuner tuners[2][2];  // [extra statistics][gradient after]
  const int pinned = c.tab->tunable_prefetch ? c.pf_kib : 0;  // tiers without a tunable sweep get 0
  const bool tune = c.tab->tunable_prefetch && pinned == 0 && c.esize == 4 && v >= kTuneMinVocab;
  for (int64_t t = begin; t < end; t++) {
    const int32_t y = c.target[t];
    const char *row = static_cast<const char *>(a.logits) + static_cast<size_t>(t) * v * c.esize;
    char *gout = bwd ? static_cast<char *>(c.g->grad_out) + static_cast<size_t>(t) * v * c.esize : nullptr;
    if (y < 0) {
      if (fwd) {
        c.logp[t] = 0;
        if (a.token_entropy) a.token_entropy[t] = 0;
        if (a.token_correct) a.token_correct[t] = 0;
        if (a.token_lse) a.token_lse[t] = 0;
        if (c.zsum) c.zsum[t] = 0;
      }
      if (bwd) std::memset(gout, 0, static_cast<size_t>(v) * c.esize);
      continue;
    }
    RowStats st{};
    const bool b2 = c.tab->base2;
    // x_y - m and log s are formed in the tier's units, exactly as the kernel formed every x - m.
    // x_y is read before an in-place gradient overwrites the row, and after the statistics' sweep,
    // which leaves the row in L2: read first, it was a miss to memory on every row.
    float lse_k, logp;
    if (c.mode == kBackward && c.g->token_lse) {
      const float xy = load_one(row, c.di, y) * c.mult;
      lse_k = b2 ? c.g->token_lse[t] * unigap::logprobs::kLog2e : c.g->token_lse[t];
      logp = (xy - lse_k) * (b2 ? unigap::logprobs::kLn2 : 1.0f);
    } else {
      // the prefetch distance: the tuner's, the pinned one, or 0 (the tier's default)
      PrefetchTuner *tu = tune ? &tuners[flags != 0][bwd] : nullptr;
      const int f = flags | ((tu ? tu->kib(tu->pick()) : pinned) << unigap::logprobs::kStatPrefetchShift);
      if (tu && tu->timing()) {
        const auto t0 = std::chrono::steady_clock::now();
        c.tab->stats[c.di](row, v, c.mult, f, &st);
        tu->done(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                 static_cast<double>(v));
      } else {
        c.tab->stats[c.di](row, v, c.mult, f, &st);
        if (tu) tu->done();
      }
      const float xy = load_one(row, c.di, y) * c.mult;
      const float ls = b2 ? std::log2(st.s) : std::log(st.s);
      lse_k = st.m + ls;
      logp = ((xy - st.m) - ls) * (b2 ? unigap::logprobs::kLn2 : 1.0f);
    }
    if (fwd) {
      const float unit = b2 ? unigap::logprobs::kLn2 : 1.0f;
      c.logp[t] = logp;
      if (a.token_lse) a.token_lse[t] = lse_k * unit;
      if (a.token_entropy) a.token_entropy[t] = ((b2 ? std::log2(st.s) : std::log(st.s)) - st.t / st.s) * unit;
      if (a.token_correct) a.token_correct[t] = (st.argmax == y && !std::isnan(lse_k)) ? 1 : 0;
      if (c.zsum) c.zsum[t] = st.zsum;
    }
    if (bwd) {
      const float scale = c.upstream[t] * c.inv_tau;
      c.tab->grad[c.di](row, gout, v, c.mult, lse_k, scale, c.stream);
      // label column in fp32: scale * (1 - p_y) = -scale * expm1(logp)
      store_one(gout, c.di, y, -scale * std::expm1(logp));
    }
  }
}

const Table *table_for(unigap_isa tier, int64_t v) {
  if (v > INT32_MAX - 64) return &unigap::logprobs::table_scalar();  // SIMD argmax keeps int32 lane indices
  switch (tier) {
    case UNIGAP_ISA_AVX512: {
      static const bool bf16 = [] {
        unigap_cpu_features f;
        unigap_cpu_features_get(&f);
        return f.avx512bf16 != 0;
      }();
      return bf16 ? &unigap::logprobs::table_avx512_bf16() : &unigap::logprobs::table_avx512();
    }
    case UNIGAP_ISA_AVX2: return &unigap::logprobs::table_avx2();
    default: return &unigap::logprobs::table_scalar();
  }
}

unigap_status run(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, Mode mode) {
  unigap_isa tier;
  if (unigap_status s = unigap::current_tier(&tier); s != UNIGAP_STATUS_OK) return s;
  if (!a || (mode != kForward && !g)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  const int di = dtype_index(a->dtype);
  if (di < 0) return UNIGAP_STATUS_UNSUPPORTED_DTYPE;
  const int64_t n = a->n_tokens, v = a->vocab, ns = a->n_seq;
  if (n < 0 || v < 1 || ns < 0 || (a->shift != 0 && a->shift != 1)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!(a->temperature > 0) || !std::isfinite(a->temperature)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n > 0 && v > std::numeric_limits<int64_t>::max() / 4 / n) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!a->offsets) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->offsets[0] != 0 || a->offsets[ns] != n) return UNIGAP_STATUS_SHAPE_MISMATCH;
  for (int64_t s = 0; s < ns; s++)
    if (a->offsets[s + 1] < a->offsets[s]) return UNIGAP_STATUS_SHAPE_MISMATCH;
  if (n > 0 && (!a->logits || !a->labels)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (mode != kForward && n > 0 && !g->grad_out) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n == 0) {
    if (mode != kBackward)
      for (int64_t s = 0; s < ns; s++) {
        if (a->seq_sum) a->seq_sum[s] = 0;
        if (a->seq_count) a->seq_count[s] = 0;
        if (a->seq_mean) a->seq_mean[s] = 0;
        if (a->seq_logit_sum) a->seq_logit_sum[s] = 0;
      }
    return UNIGAP_STATUS_OK;
  }
  try {
    std::vector<int32_t> target(static_cast<size_t>(n), -1);
    std::vector<float> upstream;
    if (mode != kForward) upstream.assign(static_cast<size_t>(n), 0.0f);
    for (int64_t s = 0; s < ns; s++) {
      const int64_t lo = a->offsets[s], hi = a->offsets[s + 1];
      const float gs = (mode != kForward && g->grad_seq) ? g->grad_seq[s] : 0.0f;
      for (int64_t t = lo; t + a->shift < hi; t++) {
        const int64_t k = t + a->shift;
        const int32_t y = a->labels[k];
        if (y == a->ignore_index || (a->mask && a->mask[k] == 0)) continue;
        if (y < 0 || y >= v) return UNIGAP_STATUS_OUT_OF_RANGE;
        target[t] = y;
        if (mode != kForward) upstream[t] = gs + (g->grad_token ? g->grad_token[t] : 0.0f);
      }
    }
    std::vector<float> logp_scratch, zsum;
    float *logp = a->token_logp;
    if (!logp && mode != kBackward) {
      logp_scratch.resize(static_cast<size_t>(n));
      logp = logp_scratch.data();
    }
    if (a->seq_logit_sum && mode != kBackward) zsum.resize(static_cast<size_t>(n));
    Ctx c{a,
          g,
          mode,
          table_for(tier, v),
          di,
          di == 0 ? sizeof(float) : sizeof(uint16_t),
          1.0f / a->temperature,
          0.0f,
          0,
          prefetch_kib(),
          target.data(),
          upstream.empty() ? nullptr : upstream.data(),
          logp,
          zsum.empty() ? nullptr : zsum.data()};
    c.mult = c.tab->base2 ? c.inv_tau * unigap::logprobs::kLog2e : c.inv_tau;
    // A gradient much larger than the caches would only evict the logits on its way to memory.
    c.stream = mode != kForward && g->grad_out != a->logits &&
               static_cast<double>(n) * static_cast<double>(v) * static_cast<double>(c.esize) >= kStreamBytes;
    const int64_t grain = v >= 4096 ? 1 : (4096 + v - 1) / v;
    unigap_parallel_for(n, grain, rows, &c);
    if (mode == kBackward) return UNIGAP_STATUS_OK;
    for (int64_t s = 0; s < ns; s++) {
      double sum = 0, zs = 0;
      int32_t cnt = 0;
      for (int64_t t = a->offsets[s]; t < a->offsets[s + 1]; t++) {
        if (target[t] < 0) continue;
        sum += logp[t];
        cnt++;
        if (c.zsum) zs += c.zsum[t];
      }
      if (a->seq_sum) a->seq_sum[s] = static_cast<float>(sum);
      if (a->seq_count) a->seq_count[s] = cnt;
      if (a->seq_mean) a->seq_mean[s] = cnt ? static_cast<float>(sum / cnt) : 0.0f;
      if (a->seq_logit_sum) a->seq_logit_sum[s] = zs;
    }
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  } catch (...) {
    return UNIGAP_STATUS_INTERNAL;
  }
  return UNIGAP_STATUS_OK;
}

}  // namespace

extern "C" {

unigap_status unigap_logprobs_forward(const unigap_logprobs_args *a) { return run(a, nullptr, kForward); }

unigap_status unigap_logprobs_set_prefetch_kib(int kib) {
  if (kib < 0 || kib > 255) return UNIGAP_STATUS_INVALID_ARGUMENT;
  prefetch_kib();  // the environment's value is read first, so it cannot overwrite this one later
  g_prefetch_kib.store(kib, std::memory_order_relaxed);
  return UNIGAP_STATUS_OK;
}

int unigap_logprobs_prefetch_kib(void) { return prefetch_kib(); }

unigap_status unigap_logprobs_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g) {
  return run(a, g, kBackward);
}

unigap_status unigap_logprobs_forward_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g) {
  return run(a, g, kFused);
}
}
