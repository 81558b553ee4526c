// logprobs: every ISA tier vs the scalar tier (forward, backward with and without lse, fused) on odd
// and real shapes for f32 / bf16 / f16; the statuses of bad arguments; --perf timings per tier.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "harness.h"
#include "unigap/half.h"
#include "unigap/logprobs.h"

namespace {

struct Problem {
  int64_t n, v;
  unigap_dtype dtype;
  std::vector<float> f;          // the values (exactly representable in dtype)
  std::vector<uint16_t> h;       // bits for bf16 / f16
  std::vector<int32_t> labels;
  std::vector<uint8_t> mask;
  std::vector<int64_t> offsets;
  std::vector<float> gseq, gtok;
  int shift;
  float tau;
  const void *logits() const { return dtype == UNIGAP_DTYPE_F32 ? static_cast<const void *>(f.data()) : h.data(); }
  size_t esize() const { return dtype == UNIGAP_DTYPE_F32 ? 4 : 2; }
};

// Element i of the logits := x in the problem's dtype; f keeps the value the kernels will read.
void set_value(Problem &p, size_t i, float x) {
  if (p.dtype == UNIGAP_DTYPE_BF16) x = unigap_bf16_to_f32(p.h[i] = unigap_f32_to_bf16(x));
  else if (p.dtype == UNIGAP_DTYPE_F16) x = unigap_f16_to_f32(p.h[i] = unigap_f32_to_f16(x));
  p.f[i] = x;
}

Problem make(int64_t n, int64_t v, unigap_dtype dt, int shift, float tau, int64_t nseq) {
  Problem p;
  p.n = n;
  p.v = v;
  p.dtype = dt;
  p.shift = shift;
  p.tau = tau;
  p.f.resize(static_cast<size_t>(n * v));
  p.h.resize(p.f.size());
  for (size_t i = 0; i < p.f.size(); i++) set_value(p, i, harness::normal(0.f, 3.f));
  p.labels.resize(static_cast<size_t>(n));
  p.mask.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) {
    p.labels[i] = (i % 7 == 3) ? -100 : static_cast<int32_t>(harness::uniform(0.f, 1.f) * static_cast<float>(v)) % v;
    p.mask[i] = (i % 11 == 5) ? 0 : 1;
  }
  p.offsets.push_back(0);
  for (int64_t s = 1; s < nseq; s++) p.offsets.push_back(n * s / nseq);
  p.offsets.push_back(n);
  for (size_t s = 0; s + 1 < p.offsets.size(); s++) p.gseq.push_back(harness::normal());
  for (int64_t i = 0; i < n; i++) p.gtok.push_back(harness::normal(0.f, 0.3f));
  return p;
}

struct Out {
  std::vector<float> logp, ent, lse, sum, mean;
  std::vector<uint8_t> correct;
  std::vector<int32_t> count;
  std::vector<double> zsum;
  std::vector<uint8_t> grad;  // raw bytes of the dtype
};

unigap_logprobs_args args_for(const Problem &p, Out &o) {
  const size_t n = static_cast<size_t>(p.n), ns = p.offsets.size() - 1;
  const float nan = std::nanf("");
  o.logp.assign(n, nan);
  o.ent.assign(n, nan);
  o.lse.assign(n, nan);
  o.correct.assign(n, 0xaa);
  o.sum.assign(ns, nan);
  o.mean.assign(ns, nan);
  o.count.assign(ns, -7);
  o.zsum.assign(ns, nan);
  unigap_logprobs_args a{};
  a.logits = p.logits();
  a.dtype = p.dtype;
  a.n_tokens = p.n;
  a.vocab = p.v;
  a.labels = p.labels.data();
  a.mask = p.mask.data();
  a.ignore_index = -100;
  a.offsets = p.offsets.data();
  a.n_seq = static_cast<int64_t>(ns);
  a.shift = p.shift;
  a.temperature = p.tau;
  a.token_logp = o.logp.data();
  a.token_entropy = o.ent.data();
  a.token_correct = o.correct.data();
  a.token_lse = o.lse.data();
  a.seq_sum = o.sum.data();
  a.seq_count = o.count.data();
  a.seq_mean = o.mean.data();
  a.seq_logit_sum = o.zsum.data();
  return a;
}

float grad_at(const Problem &p, const Out &o, size_t i) {
  uint16_t h;
  switch (p.dtype) {
    case UNIGAP_DTYPE_F32: {
      float x;
      std::memcpy(&x, o.grad.data() + 4 * i, 4);
      return x;
    }
    case UNIGAP_DTYPE_BF16: std::memcpy(&h, o.grad.data() + 2 * i, 2); return unigap_bf16_to_f32(h);
    default: std::memcpy(&h, o.grad.data() + 2 * i, 2); return unigap_f16_to_f32(h);
  }
}

// mode 0 forward, 1 backward (lse recomputed), 2 backward (lse given), 3 fused
Out run(const Problem &p, int mode, const Out *fwd = nullptr) {
  Out o;
  unigap_logprobs_args a = args_for(p, o);
  o.grad.assign(static_cast<size_t>(p.n * p.v) * p.esize(), 0xff);  // NaN in every dtype
  unigap_logprobs_grad g{};
  g.grad_seq = p.gseq.data();
  g.grad_token = p.gtok.data();
  g.grad_out = o.grad.data();
  if (mode == 2 && fwd) g.token_lse = fwd->lse.data();
  unigap_status s = mode == 0 ? unigap_logprobs_forward(&a)
                    : mode == 3 ? unigap_logprobs_forward_backward(&a, &g)
                                : unigap_logprobs_backward(&a, &g);
  CHECK(s == UNIGAP_STATUS_OK);
  // every output written: no poison left (the data hold no NaN, so no output may be NaN either)
  int left = 0;
  for (size_t i = 0; mode != 0 && i + p.esize() <= o.grad.size(); i += p.esize()) {
    bool poison = true;
    for (size_t k = 0; k < p.esize(); k++) poison &= o.grad[i + k] == 0xff;
    left += poison;
  }
  if (mode == 0 || mode == 3) {
    for (size_t i = 0; i < o.logp.size(); i++)
      left += std::isnan(o.logp[i]) || std::isnan(o.lse[i]) || std::isnan(o.ent[i]) || o.correct[i] > 1;
    for (size_t i = 0; i < o.sum.size(); i++) left += std::isnan(o.sum[i]) || std::isnan(o.mean[i]) || o.count[i] < 0;
  }
  if (left) std::fprintf(stderr, "    mode %d dtype %d n %lld v %lld: %d outputs left unwritten\n", mode, p.dtype, (long long)p.n, (long long)p.v, left);
  CHECK(left == 0);
  return o;
}

void compare(const Problem &p, const Out &got, const Out &want, bool fwd, bool bwd, double grad_rtol_extra = 0) {
  int bad = 0;
  if (fwd) {
    for (size_t i = 0; i < got.logp.size() && bad < 5; i++) {
      const double tol = 2e-5 * (1 + std::fabs(want.lse[i]));
      bad += !harness::close(got.logp[i], want.logp[i], 0, tol);
      bad += !harness::close(got.lse[i], want.lse[i], 0, tol);
      bad += !harness::close(got.ent[i], want.ent[i], 0, tol);
      bad += got.correct[i] != want.correct[i];
    }
    CHECK(bad == 0);
    for (size_t s = 0; s < got.sum.size(); s++) {
      CHECK(got.count[s] == want.count[s]);
      CHECK_CLOSE(got.sum[s], want.sum[s], 1e-5, 2e-5 * (1 + want.count[s]));
      CHECK_CLOSE(got.mean[s], want.mean[s], 1e-5, 2e-5);
      // The logit sum adds V terms per row in fp32 in a tier-specific order: its error scales with
      // sum |z| (fp32 summation bound), not with the result, which cancels to a small value.
      double zabs = 0;
      for (int64_t t = p.offsets[s]; t < p.offsets[s + 1]; t++)
        for (int64_t k = 0; k < p.v; k++) zabs += std::fabs(p.f[static_cast<size_t>(t * p.v + k)]);
      CHECK_CLOSE(got.zsum[s], want.zsum[s], 1e-5, 1e-4 + 1e-6 * zabs);
    }
  }
  if (bwd) {
    // exp(u - lse) inherits lse's absolute fp32 error as a relative one; 1 - p_y near p_y = 1 turns
    // logp's absolute error into |g|/tau * err; then rounding to bf16 / f16.
    const double rtol = (p.dtype == UNIGAP_DTYPE_F32 ? 1e-4 : (p.dtype == UNIGAP_DTYPE_BF16 ? 8e-3 : 1.5e-3)) + grad_rtol_extra;
    const double atol0 = p.dtype == UNIGAP_DTYPE_F16 ? 1e-7 : 1e-9;
    std::vector<float> gt(static_cast<size_t>(p.n), 0.f);
    for (size_t s = 0; s + 1 < p.offsets.size(); s++)
      for (int64_t t = p.offsets[s]; t < p.offsets[s + 1]; t++) gt[t] = std::fabs(p.gseq[s] + p.gtok[t]) / p.tau;
    bad = 0;
    for (size_t i = 0; i < static_cast<size_t>(p.n * p.v) && bad < 5; i++) {
      const float a = grad_at(p, got, i), b = grad_at(p, want, i);
      const double atol = atol0 + 1e-5 * gt[i / p.v];
      if (!harness::close(a, b, rtol, atol)) {
        if (bad == 0) std::fprintf(stderr, "    grad[%zu] %.9g vs %.9g (dtype %d)\n", i, a, b, p.dtype);
        bad++;
      }
    }
    CHECK(bad == 0);
  }
}

const unigap_dtype kDtypes[] = {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F16};

}  // namespace

UNIGAP_TEST("logprobs/tiers_match_scalar") {
  const unigap_isa best = unigap_isa_best();
  struct Shape {
    int64_t n, v, nseq;
    int shift;
    float tau;
  } shapes[] = {{1, 1, 1, 0, 1.f},   {9, 7, 2, 0, 0.7f},   {13, 2053, 3, 1, 1.f},
                {33, 1037, 3, 1, 1.9f}, {64, 32000, 4, 1, 1.f}, {5, 513, 1, 0, 1.f}};
  for (unigap_dtype dt : kDtypes)
    for (const Shape &sh : shapes) {
      Problem p = make(sh.n, sh.v, dt, sh.shift, sh.tau, sh.nseq);
      unigap_isa_set(UNIGAP_ISA_SCALAR);
      Out f0 = run(p, 0), b0 = run(p, 1), fb0 = run(p, 3);
      compare(p, fb0, f0, true, false);  // the fused forward is the forward
      compare(p, fb0, b0, false, true);  // and its gradient the backward's
      for (int t = UNIGAP_ISA_AVX2; t <= best; t++) {
        unigap_isa_set(static_cast<unigap_isa>(t));
        Out f = run(p, 0);
        compare(p, f, f0, true, false);
        compare(p, run(p, 1), b0, false, true);
        compare(p, run(p, 2, &f), b0, false, true);
        Out fb = run(p, 3);
        compare(p, fb, f0, true, false);
        compare(p, fb, b0, false, true);
      }
    }
  unigap_isa_set(best);
}

// The forward with only some outputs requested takes other kernel variants (the AVX-512 sweep has a
// software-pipelined loop for the plain forward, and extreme temperatures take another path): each
// subset against the scalar tier, on rows long enough for several blocks and on short ones.
UNIGAP_TEST("logprobs/output_subsets_match_scalar") {
  const unigap_isa best = unigap_isa_best();
  struct Case {
    int64_t n, v;
    float tau;
  } cases[] = {{6, 32000, 1.f}, {5, 4096 + 37, 0.6f}, {4, 2048, 1.f}, {7, 3, 1.f}, {3, 1, 1.f},
               {4, 3000, 1e-20f}, {4, 3000, 1e20f}, {4, 3000, 3e37f}};
  for (unigap_dtype dt : kDtypes)
    for (const Case &c : cases)
      for (int sel = 0; sel < 4; sel++) {  // none, entropy, correct, logit sums
        Problem p = make(c.n, c.v, dt, 0, c.tau, 2);
        if (c.v >= 2048) {
          // -inf logits, huge negative ones, and a NaN of either sign in (counted) rows of their own
          const float huge = dt == UNIGAP_DTYPE_F16 ? -60000.f : -3e38f;
          auto put = [&](int64_t r, int64_t k, float x) { set_value(p, static_cast<size_t>(r * p.v + k), x); };
          for (int64_t k = 0; k < p.v; k += 89) put(1, k, -INFINITY);
          for (int64_t k = 5; k < p.v; k += 61) put(2, k, huge);
          put(0, p.v / 2 + 5, -std::nanf(""));  // a negative NaN: unseen by a signed integer max
          if (p.n > 4) put(4, p.v - 3, std::nanf(""));
        }
        auto fwd = [&](Out &o) {
          unigap_logprobs_args a = args_for(p, o);
          if (sel != 1) a.token_entropy = nullptr;
          if (sel != 2) a.token_correct = nullptr;
          if (sel != 3) a.seq_logit_sum = nullptr;
          CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
        };
        unigap_isa_set(UNIGAP_ISA_SCALAR);
        Out want;
        fwd(want);
        for (int t = UNIGAP_ISA_AVX2; t <= best; t++) {
          unigap_isa_set(static_cast<unigap_isa>(t));
          Out got;
          fwd(got);
          int bad = 0;
          for (size_t i = 0; i < got.logp.size(); i++) {
            const double tol = 2e-5 * (1 + std::fabs(want.lse[i]));
            const int b0 = bad;
            // logp of a label at a huge negative logit (the poisoned rows) carries fp32 rounding of
            // its own magnitude: the base-2 tiers round x_y = z_y log2(e) before subtracting
            bad += !harness::close(got.logp[i], want.logp[i], 0, tol + 4e-7 * std::fabs(want.logp[i]));
            bad += !harness::close(got.lse[i], want.lse[i], 0, tol);
            if (sel == 1) bad += !harness::close(got.ent[i], want.ent[i], 0, tol);
            if (bad != b0)
              std::fprintf(stderr, "    row %zu: logp %.9g vs %.9g, lse %.9g vs %.9g, entropy %.9g vs %.9g\n", i, got.logp[i],
                           want.logp[i], got.lse[i], want.lse[i], got.ent[i], want.ent[i]);
            if (sel == 2 && got.correct[i] != want.correct[i]) {
              bad++;
              std::fprintf(stderr, "    row %zu correct %d vs %d lse %g vs %g label %d\n", i, got.correct[i], want.correct[i], got.lse[i], want.lse[i], p.labels[i]);
            }
          }
          for (size_t s = 0; s < got.sum.size(); s++) {
            CHECK(got.count[s] == want.count[s]);
            double tol = 2e-5;  // the per-row tolerances of the rows summed (NaN rows make the sum NaN)
            for (int64_t r = p.offsets[s]; r < p.offsets[s + 1]; r++)
              if (std::isfinite(want.lse[r])) tol += 2e-5 * (1 + std::fabs(want.lse[r]));
            CHECK_CLOSE(got.sum[s], want.sum[s], 1e-5, tol);
          }
          if (sel == 3)
            for (size_t s = 0; s < got.zsum.size(); s++) {
              double zabs = 0;
              for (int64_t r = p.offsets[s]; r < p.offsets[s + 1]; r++)
                for (int64_t k = 0; k < p.v; k++) {
                  const float x = p.f[static_cast<size_t>(r * p.v + k)];
                  if (!std::isnan(x)) zabs += std::fabs(x);
                }
              CHECK_CLOSE(got.zsum[s], want.zsum[s], 1e-5, 1e-4 + 1e-6 * zabs);
            }
          if (bad)
            std::fprintf(stderr, "    tier %d dtype %d n %lld v %lld tau %g outputs %d: %d mismatches\n", t, dt,
                         (long long)c.n, (long long)c.v, c.tau, sel, bad);
          CHECK(bad == 0);
        }
      }
  unigap_isa_set(best);
}

UNIGAP_TEST("logprobs/statuses") {
  Problem p = make(6, 10, UNIGAP_DTYPE_F32, 0, 1.f, 2);
  Out o;
  unigap_logprobs_args a = args_for(p, o);
  CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
  unigap_logprobs_args b = a;
  std::vector<int32_t> lab = p.labels;
  lab[1] = 10;
  p.mask[1] = 1;
  b.labels = lab.data();
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_OUT_OF_RANGE);
  b = a;
  b.temperature = 0;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b.temperature = INFINITY;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.dtype = UNIGAP_DTYPE_F64;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_UNSUPPORTED_DTYPE);
  b = a;
  const int64_t bad_off[] = {0, 4, 5};
  b.offsets = bad_off;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_SHAPE_MISMATCH);
  const int64_t dec_off[] = {0, 4, 3, 6};
  b.offsets = dec_off;
  b.n_seq = 3;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_SHAPE_MISMATCH);
  b = a;
  b.vocab = 0;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_logprobs_backward(&a, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  // N = 0: nothing to read, the sequences are empty
  b = a;
  b.n_tokens = 0;
  const int64_t zero_off[] = {0, 0, 0};
  b.offsets = zero_off;
  CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_OK);
  CHECK(o.count[0] == 0 && o.sum[1] == 0 && o.mean[1] == 0);
}

UNIGAP_TEST("logprobs/perf") {
  if (!harness::g_perf) return;
  const unigap_isa best = unigap_isa_best();
  for (unigap_dtype dt : {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_BF16}) {
    Problem p = make(4096, 32000, dt, 0, 1.f, 8);
    for (int t = 0; t <= best; t++) {
      unigap_isa_set(static_cast<unigap_isa>(t));
      for (int mode : {0, 3}) {
        Out o;
        unigap_logprobs_args a = args_for(p, o);
        a.token_entropy = nullptr;
        a.token_correct = nullptr;
        a.seq_logit_sum = nullptr;
        std::vector<uint8_t> g(static_cast<size_t>(p.n * p.v) * p.esize());
        unigap_logprobs_grad gr{p.gseq.data(), nullptr, nullptr, g.data()};
        double bestms = 1e30;
        for (int r = 0; r < 5; r++) {
          auto t0 = std::chrono::steady_clock::now();
          if (mode == 0)
            unigap_logprobs_forward(&a);
          else
            unigap_logprobs_forward_backward(&a, &gr);
          bestms = std::min(bestms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        const double gb = static_cast<double>(p.n * p.v) * p.esize() / 1e9;
        std::printf("  perf %-6s %-4s %-8s [4096, 32000]: %8.2f ms  %6.1f GB/s read\n", unigap_isa_name(static_cast<unigap_isa>(t)),
                    dt == UNIGAP_DTYPE_F32 ? "f32" : "bf16", mode == 0 ? "forward" : "fwd+bwd", bestms, gb / bestms * 1e3);
      }
    }
  }
  unigap_isa_set(best);
}

// The AVX512_BF16 table differs from the plain AVX-512 one only in how a bf16 gradient is rounded
// (one vcvtneps2bf16 instead of integer round-to-nearest-even): bit-identical on normal values.
#include "logprobs/kernels.h"

UNIGAP_TEST("logprobs/avx512_bf16_table_matches_avx512") {
  unigap_cpu_features f;
  unigap_cpu_features_get(&f);
  if (unigap_isa_best() < UNIGAP_ISA_AVX512 || !f.avx512bf16) return;
  namespace lp = unigap::logprobs;
  const lp::Table &a = lp::table_avx512(), &b = lp::table_avx512_bf16();
  for (int64_t v : {1, 7, 33, 1037, 32000}) {
    std::vector<uint16_t> row(static_cast<size_t>(v)), ga(row.size()), gb(row.size());
    for (auto &h : row) h = unigap_f32_to_bf16(harness::normal(0.f, 3.f));
    lp::RowStats sa{}, sb{};
    a.stats[1](row.data(), v, 1.3f, 7, &sa);
    b.stats[1](row.data(), v, 1.3f, 7, &sb);
    CHECK(sa.m == sb.m && sa.s == sb.s && sa.t == sb.t && sa.argmax == sb.argmax);
    const float lse = sa.m + std::log2(sa.s);
    for (int stream : {0, 1}) {
      a.grad[1](row.data(), ga.data(), v, 1.3f, lse, 0.75f, stream);
      b.grad[1](row.data(), gb.data(), v, 1.3f, lse, 0.75f, stream);
      int diff = 0;
      for (size_t i = 0; i < row.size(); i++) {
        const float x = unigap_bf16_to_f32(ga[i]);
        if (ga[i] != gb[i] && std::fabs(x) > 1.2e-38f) diff++;  // vcvtneps2bf16 flushes denormals
      }
      CHECK(diff == 0);
    }
  }
}

// Exact cases in every tier, on short rows and on rows long enough for the one-sweep kernels'
// interleaved blocks (2 x 2048 and more), for every dtype and at ordinary and extreme temperatures:
// a row whose label is its unique finite logit (the rest -inf) has logp = 0 and entropy = 0 exactly
// (the max element weighs exactly 2^0, -inf exactly 0) and a gradient of exactly 0, wherever the
// label sits (first block, a middle block, the tail); V = 1 likewise. A NaN anywhere in a row (either
// sign; first block, a block boundary, a middle block, the tail) makes that row's logp and entropy
// NaN and leaves the other rows alone.
UNIGAP_TEST("logprobs/one_hot_and_nan_rows_exact") {
  const unigap_isa best = unigap_isa_best();
  const float vals[] = {1.5f, -3.f, 0.f, 7.25f, -0.5f, 2.f};
  for (unigap_dtype dt : kDtypes)
    for (int64_t v : {1, 7, 2053, 4096 + 37, 32000})
      for (float tau : {1.f, 0.6f, 1e-20f, 1e20f}) {
        const int64_t n = 6;
        Problem p = make(n, v, dt, 0, tau, 1);
        auto put = [&](int64_t r, int64_t k, float x) { set_value(p, static_cast<size_t>(r * p.v + k), x); };
        const int64_t at[] = {0, v / 2, v - 1, std::min<int64_t>(2 * 2048 + 5, v - 1), 3 % v, std::max<int64_t>(v - 9, 0)};
        for (int64_t r = 0; r < n; r++) {
          for (int64_t k = 0; k < v; k++) put(r, k, -INFINITY);
          put(r, at[r], vals[r]);
          p.labels[r] = static_cast<int32_t>(at[r]);
          p.mask[r] = 1;
        }
        for (int t = UNIGAP_ISA_SCALAR; t <= best; t++) {
          unigap_isa_set(static_cast<unigap_isa>(t));
          Out o = run(p, 3);  // fused: forward outputs and the gradient
          int bad = 0;
          Out q;  // and the plain forward (no entropy, argmax or logit sum: its own sweep)
          unigap_logprobs_args a = args_for(p, q);
          a.token_entropy = nullptr, a.token_correct = nullptr, a.seq_logit_sum = nullptr;
          CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
          for (int64_t r = 0; r < n; r++) {
            bad += !(o.logp[r] == 0 && o.ent[r] == 0 && o.correct[r] == 1 && q.logp[r] == 0);
            for (int64_t k = 0; k < v; k++) bad += grad_at(p, o, static_cast<size_t>(r * v + k)) != 0;
          }
          if (bad)
            std::fprintf(stderr, "    one-hot: tier %d dtype %d v %lld tau %g: %d inexact (logp[0] %.9g entropy[0] %.9g)\n", t, dt,
                         (long long)v, tau, bad, o.logp[0], o.ent[0]);
          CHECK(bad == 0);
        }
      }
  for (unigap_dtype dt : kDtypes)
    for (int64_t v : {2053, 4096 + 37, 32000}) {
      const int64_t nanat[] = {0, 1000, 2047, 2048, 3001, v / 2, v - 1, v - 5};
      const int64_t n = 2 * static_cast<int64_t>(sizeof nanat / sizeof nanat[0]) + 1;
      Problem p = make(n, v, dt, 0, 1.f, 1);
      for (int64_t r = 0; r + 1 < n; r++) {
        set_value(p, static_cast<size_t>(r * v + std::min(nanat[r / 2], v - 1)), r % 2 ? -std::nanf("") : std::nanf(""));
        p.mask[r] = 1;
        if (p.labels[r] < 0) p.labels[r] = 1;
      }
      for (int t = UNIGAP_ISA_SCALAR; t <= best; t++) {
        unigap_isa_set(static_cast<unigap_isa>(t));
        for (int ent = -1; ent < 2; ent++) {  // -1: the plain forward (no entropy, argmax, logit sum)
          Out o;
          unigap_logprobs_args a = args_for(p, o);
          if (ent != 1) a.token_entropy = nullptr;
          if (ent == -1) a.token_correct = nullptr, a.seq_logit_sum = nullptr;
          CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
          int bad = 0;
          for (int64_t r = 0; r + 1 < n; r++) bad += !(std::isnan(o.logp[r]) && std::isnan(o.lse[r]) && (ent != 1 || std::isnan(o.ent[r])));
          bad += !std::isfinite(o.logp[n - 1]) || !std::isfinite(o.lse[n - 1]) || (ent == 1 && !std::isfinite(o.ent[n - 1]));
          if (bad) std::fprintf(stderr, "    NaN rows: tier %d dtype %d v %lld entropy %d: %d wrong\n", t, dt, (long long)v, ent, bad);
          CHECK(bad == 0);
        }
      }
    }
  unigap_isa_set(best);
}

// The statistics' prefetch distance (unigap_logprobs_set_prefetch_kib: 0 tuned per thread, 1-255
// pinned) never changes a result: every setting, every tier, every dtype, rows long enough to be
// tuned, the plain forward and the one with every statistic, and the fused gradient give the same
// bits as the pinned default. The tuned runs repeat, so that the tuners' tournaments put different
// distances on the same rows.
UNIGAP_TEST("logprobs/prefetch_setting_never_changes_results") {
  const unigap_isa best = unigap_isa_best();
  const int before = unigap_logprobs_prefetch_kib();
  CHECK(unigap_logprobs_set_prefetch_kib(-1) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_logprobs_set_prefetch_kib(256) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_logprobs_set_prefetch_kib(6) == UNIGAP_STATUS_OK && unigap_logprobs_prefetch_kib() == 6);
  auto same = [](const void *x, const void *y, size_t bytes) { return std::memcmp(x, y, bytes) == 0; };
  for (unigap_dtype dt : kDtypes)
    for (int64_t v : {8192, 8192 + 37, 32000}) {
      Problem p = make(70, v, dt, 1, 0.8f, 3);
      for (int t = UNIGAP_ISA_SCALAR; t <= best; t++) {
        unigap_isa_set(static_cast<unigap_isa>(t));
        CHECK(unigap_logprobs_set_prefetch_kib(6) == UNIGAP_STATUS_OK);
        const Out ref = run(p, 3);
        Out plain_ref;
        unigap_logprobs_args pa = args_for(p, plain_ref);
        pa.token_entropy = nullptr, pa.token_correct = nullptr, pa.seq_logit_sum = nullptr;
        CHECK(unigap_logprobs_forward(&pa) == UNIGAP_STATUS_OK);
        for (int kib : {0, 0, 0, 1, 4, 12, 255, 0}) {
          CHECK(unigap_logprobs_set_prefetch_kib(kib) == UNIGAP_STATUS_OK);
          const Out o = run(p, 3);
          Out plain;
          unigap_logprobs_args qa = args_for(p, plain);
          qa.token_entropy = nullptr, qa.token_correct = nullptr, qa.seq_logit_sum = nullptr;
          CHECK(unigap_logprobs_forward(&qa) == UNIGAP_STATUS_OK);
          const bool ok = same(o.logp.data(), ref.logp.data(), o.logp.size() * 4) &&
                          same(o.lse.data(), ref.lse.data(), o.lse.size() * 4) &&
                          same(o.ent.data(), ref.ent.data(), o.ent.size() * 4) &&
                          same(o.correct.data(), ref.correct.data(), o.correct.size()) &&
                          same(o.sum.data(), ref.sum.data(), o.sum.size() * 4) &&
                          same(o.zsum.data(), ref.zsum.data(), o.zsum.size() * 8) && o.grad == ref.grad &&
                          same(plain.logp.data(), plain_ref.logp.data(), plain.logp.size() * 4) &&
                          same(plain.sum.data(), plain_ref.sum.data(), plain.sum.size() * 4);
          if (!ok) std::fprintf(stderr, "    prefetch %d KiB: tier %d dtype %d v %lld: results differ\n", kib, t, dt, (long long)v);
          CHECK(ok);
        }
      }
    }
  unigap_isa_set(best);
  CHECK(unigap_logprobs_set_prefetch_kib(before) == UNIGAP_STATUS_OK);
}

// The tuner on made-up row times: it runs every distance in its tournament (runs of kRun rows, the
// order rotating per period), times only those rows, settles on the fastest, follows (within a few
// periods) when another one becomes the fastest, and one stalled row does not move it.
#include "logprobs/prefetch_tuner.h"

UNIGAP_TEST("logprobs/prefetch_tuner_follows_the_fastest") {
  using Tuner = unigap::logprobs::PrefetchTuner;
  constexpr int A = Tuner::kArms, R = static_cast<int>(Tuner::kRun), P = static_cast<int>(Tuner::kPeriod);
  Tuner tu;
  double cost[A] = {1.10, 1.00, 0.93, 0.95};  // ns per element, per arm
  int seen[A * R], timed = 0;
  auto period = [&](int stall_at) {  // one period; returns the arm that ran the most rows
    int count[A] = {};
    for (int i = 0; i < P; i++) {
      const int arm = tu.pick();
      if (i < A * R) seen[i] = arm;
      count[arm]++;
      if (tu.timing()) {
        timed++;
        tu.done(i == stall_at ? 50 * cost[arm] : cost[arm]);
      } else {
        tu.done();
      }
    }
    int most = 0;
    for (int a = 1; a < A; a++)
      if (count[a] > count[most]) most = a;
    return most;
  };
  CHECK(period(-1) == 2);
  for (int i = 0; i < A * R; i++) CHECK(seen[i] == i / R);  // every arm, R rows each
  CHECK(timed == A * (R - 1));                               // only tournament rows after a run's first
  CHECK(period(-1) == 2);
  for (int i = 0; i < A * R; i++) CHECK(seen[i] == (i / R + 1) % A);  // the order rotated
  // the machine changed: arm 0 is now the fastest; the estimates move a quarter of the way per
  // tournament, so the tuner follows after a few periods, not at once
  cost[0] = 0.80;
  int k = 1;
  while (period(-1) != 0 && k < 6) k++;
  CHECK(k >= 2 && k <= 4);
  cost[0] = 1.10;
  k = 1;
  while (period(-1) != 2 && k < 6) k++;
  CHECK(k <= 4);
  // a row stalled 50x in the first run of each period (every arm's run in turn, the order rotating)
  for (int r = 0; r < 2 * A; r++) CHECK(period(3) == 2);
  // distances: KiB ahead per arm, ascending
  for (int a = 1; a < A; a++) CHECK(tu.kib(a) > tu.kib(a - 1));
}

// Sizes are 64-bit: N * V > 2^31 elements, so the last rows start more than 4 GiB (bf16, f16) or
// 8 GiB (f32) into the logits. The logits live in a sparse anonymous mapping that only the checked
// rows touch: the row that straddles element 2^31, the one after it, the last two and the first;
// every other row is ignored, which the forward skips. Every tier and dtype gives the same bits on
// those rows as on a compact copy of them (per-token statistics and per-sequence sums over sequences
// that span the 2^31 boundary). The fused in-place gradient (bf16, best tier) writes every row (zeros
// where ignored): 4.3 GB touched once, then unmapped.
#include <sys/mman.h>

UNIGAP_TEST("logprobs/offsets_beyond_2pow31") {
  const unigap_isa best = unigap_isa_best();
  const int64_t V = 32003, N = (int64_t(1) << 31) / V + 40, rs = (int64_t(1) << 31) / V;
  CHECK(N * V > (int64_t(1) << 31) && rs * V < (int64_t(1) << 31) && (rs + 1) * V > (int64_t(1) << 31));
  const int64_t rows[] = {0, rs, rs + 1, N - 2, N - 1};
  const int64_t K = 5;
  for (unigap_dtype dt : kDtypes) {
    const size_t es = dt == UNIGAP_DTYPE_F32 ? 4 : 2, bytes = static_cast<size_t>(N * V) * es;
    void *map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED) return;
    char *big = static_cast<char *>(map);
    Problem p = make(K, V, dt, 0, 0.8f, 1);  // the compact copy: fresh values, labels, upstream gradients
    std::vector<int32_t> labels(static_cast<size_t>(N), -100);
    for (int64_t k = 0; k < K; k++) {
      std::memcpy(big + static_cast<size_t>(rows[k] * V) * es, static_cast<const char *>(p.logits()) + static_cast<size_t>(k * V) * es,
                  static_cast<size_t>(V) * es);
      p.labels[k] = static_cast<int32_t>((k * 7919 + 11) % V);
      labels[static_cast<size_t>(rows[k])] = p.labels[k];
    }
    p.mask.assign(static_cast<size_t>(K), 1);
    p.offsets = {0, 2, K};  // {rows 0, rs} and {rs + 1, N - 2, N - 1}, as in the big buffer
    p.gseq = {0.7f, -1.3f};
    const std::vector<int64_t> offsets = {0, rs + 1, N};
    for (int t = UNIGAP_ISA_SCALAR; t <= best; t++) {
      unigap_isa_set(static_cast<unigap_isa>(t));
      Out want;
      unigap_logprobs_args w = args_for(p, want);
      w.mask = nullptr;
      CHECK(unigap_logprobs_forward(&w) == UNIGAP_STATUS_OK);
      Out got;
      got.logp.assign(static_cast<size_t>(N), std::nanf(""));
      got.lse = got.ent = got.logp;
      got.correct.assign(static_cast<size_t>(N), 0xaa);
      got.sum.assign(2, std::nanf(""));
      got.mean = got.sum;
      got.count.assign(2, -7);
      got.zsum.assign(2, std::nan(""));
      unigap_logprobs_args a = w;
      a.logits = big;
      a.n_tokens = N;
      a.labels = labels.data();
      a.offsets = offsets.data();
      a.token_logp = got.logp.data();
      a.token_entropy = got.ent.data();
      a.token_correct = got.correct.data();
      a.token_lse = got.lse.data();
      a.seq_sum = got.sum.data();
      a.seq_count = got.count.data();
      a.seq_mean = got.mean.data();
      a.seq_logit_sum = got.zsum.data();
      CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
      int bad = 0;
      for (int64_t k = 0; k < K; k++) {
        const size_t r = static_cast<size_t>(rows[k]);
        bad += got.logp[r] != want.logp[k] || got.lse[r] != want.lse[k] || got.ent[r] != want.ent[k] ||
               got.correct[r] != want.correct[k] || !std::isfinite(got.logp[r]);
      }
      for (size_t s = 0; s < 2; s++)
        bad += got.sum[s] != want.sum[s] || got.count[s] != want.count[s] || got.mean[s] != want.mean[s] ||
               got.zsum[s] != want.zsum[s] || got.count[s] != (s ? 3 : 2);
      bad += got.logp[1] != 0 || got.logp[static_cast<size_t>(N - 3)] != 0;  // ignored rows: 0
      if (bad) std::fprintf(stderr, "    2^31: tier %d dtype %d: %d differences\n", t, dt, bad);
      CHECK(bad == 0);
    }
    if (dt == UNIGAP_DTYPE_BF16) {  // the fused gradient in place: every row written
      unigap_isa_set(best);
      Out want;
      unigap_logprobs_args w = args_for(p, want);
      w.mask = nullptr;
      std::vector<uint16_t> compact = p.h;
      w.logits = compact.data();
      unigap_logprobs_grad gw{p.gseq.data(), nullptr, nullptr, compact.data()};
      CHECK(unigap_logprobs_forward_backward(&w, &gw) == UNIGAP_STATUS_OK);
      Out got;
      unigap_logprobs_args a = args_for(p, got);
      a.mask = nullptr;
      got.logp.assign(static_cast<size_t>(N), std::nanf(""));
      a.token_logp = got.logp.data();
      a.token_entropy = nullptr;
      a.token_correct = nullptr;
      a.token_lse = nullptr;
      a.logits = big;
      a.n_tokens = N;
      a.labels = labels.data();
      a.offsets = offsets.data();
      unigap_logprobs_grad ga{p.gseq.data(), nullptr, nullptr, big};
      // an ignored row past 2^31 holds a marker the gradient must overwrite with zeros
      std::memset(big + static_cast<size_t>((N - 3) * V) * es, 0xff, static_cast<size_t>(V) * es);
      CHECK(unigap_logprobs_forward_backward(&a, &ga) == UNIGAP_STATUS_OK);
      int bad = 0;
      for (int64_t k = 0; k < K; k++)
        bad += std::memcmp(big + static_cast<size_t>(rows[k] * V) * es, compact.data() + k * V, static_cast<size_t>(V) * es) != 0;
      const auto *zero = reinterpret_cast<const uint16_t *>(big + static_cast<size_t>((N - 3) * V) * es);
      for (int64_t i = 0; i < V; i++) bad += zero[i] != 0;
      if (bad) std::fprintf(stderr, "    2^31 gradient: %d rows differ\n", bad);
      CHECK(bad == 0);
    }
    munmap(map, bytes);
  }
  unigap_isa_set(best);
}

// Rows far from zero and cold temperatures, every tier against the scalar one: the plain forward (the
// AVX-512 software-pipelined sweep, whose bf16 clamp works on the raw words), the forward with every
// statistic, and the fused gradient. Before the raw clamp was bounded (bf16_raw_clamp_ok), a bf16
// row whose block max exceeded 111 tau (logits around 150 at tau = 1, around 12 at tau = 0.1, any
// positive ones at tau = 0.01) had its logp off by up to 2.3 in the plain forward.
// Rows that start anywhere within a 64-byte line (typed arrays from V8 start 16 bytes past one): the
// sweep takes a row's head, up to the first line boundary, as a block of its own. Every start offset,
// rows of one offset (V a multiple of 64 bytes) and of all offsets (V odd), the maximum or -inf in
// the head; the plain forward and the one with entropy against scalar on the same bytes.
UNIGAP_TEST("logprobs/row_alignment_matches_scalar") {
  const unigap_isa best = unigap_isa_best();
  for (unigap_dtype dt : kDtypes)
    for (int64_t v : {int64_t{8192}, int64_t{8229}}) {
      Problem p = make(5, v, dt, 0, 0.8f, 2);
      for (int64_t k = 0; k < 7; k++) set_value(p, static_cast<size_t>(1 * v + k), -INFINITY);
      set_value(p, static_cast<size_t>(2 * v + 3), 40.f);
      set_value(p, static_cast<size_t>(3 * v + 20), 25.f);
      p.labels[1] = 100, p.labels[2] = 3;
      const size_t es = p.esize(), bytes = static_cast<size_t>(p.n * p.v) * es;
      char *buf = static_cast<char *>(std::aligned_alloc(64, (bytes + 128 + 63) / 64 * 64));  // a multiple of 64
      for (size_t off = 0; off < 64; off += es) {
        std::memcpy(buf + off, p.logits(), bytes);
        for (int ent = 0; ent < 2; ent++) {
          Out want, got;
          unigap_isa_set(UNIGAP_ISA_SCALAR);
          unigap_logprobs_args a = args_for(p, want);
          a.logits = buf + off;
          a.token_correct = nullptr, a.seq_logit_sum = nullptr;
          if (!ent) a.token_entropy = nullptr;
          CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
          for (int t = UNIGAP_ISA_AVX2; t <= best; t++) {
            unigap_isa_set(static_cast<unigap_isa>(t));
            unigap_logprobs_args b = args_for(p, got);
            b.logits = buf + off;
            b.token_correct = nullptr, b.seq_logit_sum = nullptr;
            if (!ent) b.token_entropy = nullptr;
            CHECK(unigap_logprobs_forward(&b) == UNIGAP_STATUS_OK);
            int bad = 0;
            for (int64_t i = 0; i < p.n; i++) {
              const double tol = 2e-5 * (1 + std::fabs(want.lse[i]));
              bad += !harness::close(got.logp[i], want.logp[i], 0, tol) || !harness::close(got.lse[i], want.lse[i], 0, tol);
              if (ent) bad += !harness::close(got.ent[i], want.ent[i], 0, tol);
            }
            if (bad)
              std::fprintf(stderr, "    alignment: tier %d dtype %d v %lld offset %zu entropy %d: %d off\n", t, dt, (long long)v, off, ent,
                           bad);
            CHECK(bad == 0);
          }
        }
      }
      std::free(buf);
    }
  unigap_isa_set(best);
}

UNIGAP_TEST("logprobs/far_and_cold_rows_match_scalar") {
  const unigap_isa best = unigap_isa_best();
  struct Case {
    float mean, spread, tau;
    bool f16;    // representable in f16
    int holes;   // every holes-th logit of the first half of each row is -inf (0: none)
  } cases[] = {{150.f, 3.f, 1.f, true, 0},    {12.f, 3.f, 0.1f, true, 0},      {0.f, 3.f, 0.01f, true, 0},
               {3.f, 1.f, 0.005f, true, 0},   {-30000.f, 500.f, 1.f, true, 0}, {40000.f, 500.f, 1.f, true, 0},
               {-3e6f, 3e4f, 1.f, false, 0},  {1e5f, 1e3f, 1.f, false, 0},     {-1e30f, 1e28f, 0.001f, false, 0},
               {-200.f, 3.f, 1e-4f, true, 0}, {0.f, 3.f, 1.f, true, 0},
               // blocks whose spread passes 150 / mult but stays within (or, some blocks, beyond) the
               // 2^16 / mult that the unclamped sweep takes; -inf in some blocks only
               {0.f, 3000.f, 1.f, true, 0},   {0.f, 9000.f, 1.f, true, 0},     {0.f, 3.f, 1.f, true, 997},
               {0.f, 300.f, 0.05f, true, 0}};
  for (unigap_dtype dt : kDtypes)
    for (int64_t v : {int64_t{8229}, int64_t{32000}})
      for (const Case &cs : cases) {
        if (dt == UNIGAP_DTYPE_F16 && !cs.f16) continue;
        Problem p = make(6, v, dt, 0, cs.tau, 2);
        for (size_t i = 0; i < p.f.size(); i++) set_value(p, i, cs.mean + cs.spread * harness::normal());
        if (cs.holes)
          for (int64_t r = 0; r < p.n; r++)
            for (int64_t k = 0; k < v / 2; k += cs.holes)
              if (k != p.labels[r]) set_value(p, static_cast<size_t>(r * v + k), -INFINITY);
        unigap_isa_set(UNIGAP_ISA_SCALAR);
        const Out f0 = run(p, 0), fb0 = run(p, 3);
        for (int t = UNIGAP_ISA_AVX2; t <= best; t++) {
          unigap_isa_set(static_cast<unigap_isa>(t));
          compare(p, run(p, 0), f0, true, false);
          // The gradient 2^(x - lse) / tau, x = z mult, carries the fp32 rounding of x - lse, an absolute
          // error of a few ulp(|x|) in the exponent that each tier forms its own way: the tolerance
          // grows by 4 ulp(max |x|), and beyond |x| ~ 2^14 (ulp 2e-3) the comparison says nothing.
          const double xmax = (std::fabs(cs.mean) + 5 * cs.spread) / cs.tau * 1.4427;
          if (xmax < 16384) {
            const int before = harness::g_failures;
            compare(p, run(p, 3), fb0, false, true, 4 * xmax * std::ldexp(1.0, -23));
            if (harness::g_failures != before)
              std::fprintf(stderr, "    far/cold gradient: tier %d dtype %d v %lld mean %g tau %g\n", t, dt, (long long)v, cs.mean, cs.tau);
          }
          Out o;  // the plain forward: no entropy, argmax or logit sum
          unigap_logprobs_args a = args_for(p, o);
          a.token_entropy = nullptr;
          a.token_correct = nullptr;
          a.seq_logit_sum = nullptr;
          CHECK(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK);
          int bad = 0;
          for (size_t i = 0; i < o.logp.size(); i++) {
            const double tol = 2e-5 * (1 + std::fabs(f0.lse[i]));
            bad += !harness::close(o.logp[i], f0.logp[i], 0, tol) || !harness::close(o.lse[i], f0.lse[i], 0, tol);
          }
          if (bad)
            std::fprintf(stderr, "    far/cold: tier %d dtype %d v %lld mean %g tau %g: %d rows off (logp[0] %.7g vs %.7g)\n", t, dt,
                         (long long)v, cs.mean, cs.tau, bad, o.logp[0], f0.logp[0]);
          CHECK(bad == 0);
        }
      }
  unigap_isa_set(best);
}
