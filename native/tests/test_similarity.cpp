// Similarity family: every ISA tier vs a float64 reference and vs the scalar tier, at odd and real
// shapes; top-k and ranks vs what the full matrix gives; zero / NaN rows; --perf times the kernels.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "harness.h"
#include "unigap/half.h"
#include "unigap/similarity.h"

namespace {

std::vector<float> randm(int64_t rows, int64_t d) {
  std::vector<float> v(static_cast<size_t>(rows * d));
  for (auto &x : v) x = harness::normal();
  return v;
}

double ref_cos(const float *a, const float *b, int64_t d, bool normalize) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t k = 0; k < d; k++) {
    ab += double(a[k]) * b[k];
    aa += double(a[k]) * a[k];
    bb += double(b[k]) * b[k];
  }
  if (!normalize) return ab;
  if (std::isnan(ab) || std::isnan(aa) || std::isnan(bb)) return NAN;
  if (aa == 0 || bb == 0) return 0;
  return ab / std::sqrt(aa) / std::sqrt(bb);
}

std::vector<int> tiers() {
  std::vector<int> t;
  for (int i = 0; i <= int(unigap_isa_best()); i++) t.push_back(i);
  return t;
}

struct Shape {
  int64_t n, m, d;
};
// 2100 > 1024 exercises the k-blocked path (partial sums reloaded between k blocks).
const Shape kShapes[] = {{1, 1, 1}, {3, 5, 3}, {17, 33, 7}, {29, 45, 64}, {100, 77, 768}, {15, 300, 650}, {9, 40, 2100}, {3, 1100, 40}, {230, 70, 33}};
// (n <= one row block streams B per column block; 100 and 230 rows take the pre-packed path.)

}  // namespace

UNIGAP_TEST("similarity/paired_cosine_tiers") {
  for (int t : tiers()) {
    unigap_isa_set(unigap_isa(t));
    for (const Shape &s : kShapes) {
      auto a = randm(s.n, s.d), b = randm(s.n, s.d);
      if (s.n > 2) {
        std::fill(a.begin(), a.begin() + s.d, 0.f);   // zero row -> 0
        b[s.d + s.d / 2] = NAN;                        // NaN row -> NaN
      }
      std::vector<float> out(s.n, -7.f);
      CHECK(unigap_similarity_paired_cosine(a.data(), UNIGAP_DTYPE_F32, b.data(), UNIGAP_DTYPE_F32, s.n, s.d,
                                            out.data()) == UNIGAP_STATUS_OK);
      for (int64_t i = 0; i < s.n; i++)
        CHECK_CLOSE(out[i], ref_cos(&a[i * s.d], &b[i * s.d], s.d, true), 1e-5, 2e-6);
      // bf16 widening agrees with f32 on bf16-representable values.
      std::vector<uint16_t> ah(a.size()), bh(b.size());
      std::vector<float> ar(a.size()), br(b.size());
      for (size_t i = 0; i < a.size(); i++) {
        ah[i] = unigap_f32_to_bf16(a[i]);
        ar[i] = unigap_bf16_to_f32(ah[i]);
        bh[i] = unigap_f32_to_f16(b[i]);
        br[i] = unigap_f16_to_f32(bh[i]);
      }
      CHECK(unigap_similarity_paired_cosine(ah.data(), UNIGAP_DTYPE_BF16, bh.data(), UNIGAP_DTYPE_F16, s.n, s.d,
                                            out.data()) == UNIGAP_STATUS_OK);
      for (int64_t i = 0; i < s.n; i++)
        CHECK_CLOSE(out[i], ref_cos(&ar[i * s.d], &br[i * s.d], s.d, true), 1e-5, 2e-6);
    }
  }
  unigap_isa_set(unigap_isa_best());
}

UNIGAP_TEST("similarity/matrix_tiers_vs_reference_and_scalar") {
  for (const Shape &s : kShapes) {
    auto a = randm(s.n, s.d), b = randm(s.m, s.d);
    if (s.n > 3) {
      std::fill(a.begin() + s.d, a.begin() + 2 * s.d, 0.f);
      a[2 * s.d] = NAN;
    }
    std::vector<float> base(s.n * s.m);
    unigap_isa_set(UNIGAP_ISA_SCALAR);
    CHECK(unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, s.n, b.data(), UNIGAP_DTYPE_F32, s.m, s.d, 1, 2.5f,
                                   -1.f, base.data()) == UNIGAP_STATUS_OK);
    for (int t : tiers()) {
      unigap_isa_set(unigap_isa(t));
      std::vector<float> out(s.n * s.m, NAN), raw(s.n * s.m, NAN);
      CHECK(unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, s.n, b.data(), UNIGAP_DTYPE_F32, s.m, s.d, 1, 2.5f,
                                     -1.f, out.data()) == UNIGAP_STATUS_OK);
      CHECK(unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, s.n, b.data(), UNIGAP_DTYPE_F32, s.m, s.d, 0, 1.f,
                                     0.f, raw.data()) == UNIGAP_STATUS_OK);
      int bad = 0;
      for (int64_t i = 0; i < s.n; i++)
        for (int64_t j = 0; j < s.m; j++) {
          double r = 2.5 * ref_cos(&a[i * s.d], &b[j * s.d], s.d, true) - 1.0;
          double rr = ref_cos(&a[i * s.d], &b[j * s.d], s.d, false);
          bad += !harness::close(out[i * s.m + j], r, 1e-5, 1e-5);
          bad += !harness::close(out[i * s.m + j], base[i * s.m + j], 1e-5, 1e-5);
          bad += !harness::close(raw[i * s.m + j], rr, 1e-4, 1e-4 * std::sqrt(double(s.d)));
        }
      CHECK(bad == 0);
      if (bad) std::fprintf(stderr, "    tier %d shape %lld x %lld x %lld: %d bad\n", t, (long long)s.n, (long long)s.m, (long long)s.d, bad);
    }
  }
  unigap_isa_set(unigap_isa_best());
}

// Rows of any finite magnitude (scaled by 2^e, e from -149 to 126: f32 denormals to near f32's
// largest values, mixed within one matrix), every tier: the paired cosine and the cosine matrix
// (pre-packed and streamed B, f32 and bf16 sources) against the float64 reference. Their f32 sums of
// squares underflow or overflow there, which once gave 0 (as for a zero row) or NaN.
UNIGAP_TEST("similarity/rows_of_any_magnitude") {
  const int exps[] = {0, -149, -140, -120, -100, -70, 60, 70, 100, 120, 126};
  const Shape shapes[] = {{11, 13, 37}, {100, 40, 129}, {3, 300, 64}};
  for (int t : tiers()) {
    unigap_isa_set(unigap_isa(t));
    for (const Shape &s : shapes) {
      auto a = randm(s.n, s.d), b = randm(s.m, s.d);
      auto scale = [&](std::vector<float> &x, int64_t rows, int off) {
        for (int64_t r = 0; r < rows; r++) {
          const int e = exps[(r + off) % (sizeof exps / sizeof exps[0])];
          for (int64_t k = 0; k < s.d; k++) x[r * s.d + k] = std::ldexp(x[r * s.d + k] * 0.25f, e);
        }
      };
      scale(a, s.n, 0);
      scale(b, s.m, 3);
      int bad = 0;
      for (int dt = 0; dt < 2; dt++) {  // f32, then bf16 (the same values rounded to bf16)
        std::vector<uint16_t> ah(a.size()), bh(b.size());
        std::vector<float> ar = a, br = b;
        if (dt) {
          for (size_t i = 0; i < a.size(); i++) ar[i] = unigap_bf16_to_f32(ah[i] = unigap_f32_to_bf16(a[i]));
          for (size_t i = 0; i < b.size(); i++) br[i] = unigap_bf16_to_f32(bh[i] = unigap_f32_to_bf16(b[i]));
        }
        const void *pa = dt ? static_cast<const void *>(ah.data()) : ar.data(), *pb = dt ? static_cast<const void *>(bh.data()) : br.data();
        const unigap_dtype type = dt ? UNIGAP_DTYPE_BF16 : UNIGAP_DTYPE_F32;
        const int64_t np = std::min(s.n, s.m);
        std::vector<float> pc(np, NAN), mat(s.n * s.m, NAN);
        CHECK(unigap_similarity_paired_cosine(pa, type, pb, type, np, s.d, pc.data()) == UNIGAP_STATUS_OK);
        CHECK(unigap_similarity_matrix(pa, type, s.n, pb, type, s.m, s.d, 1, 1.f, 0.f, mat.data()) == UNIGAP_STATUS_OK);
        for (int64_t i = 0; i < np; i++) bad += !harness::close(pc[i], ref_cos(&ar[i * s.d], &br[i * s.d], s.d, true), 1e-5, 2e-6);
        for (int64_t i = 0; i < s.n; i++)
          for (int64_t j = 0; j < s.m; j++)
            bad += !harness::close(mat[i * s.m + j], ref_cos(&ar[i * s.d], &br[j * s.d], s.d, true), 1e-5, 1e-5);
      }
      if (bad) std::fprintf(stderr, "    tier %d shape %lld x %lld x %lld: %d off\n", t, (long long)s.n, (long long)s.m, (long long)s.d, bad);
      CHECK(bad == 0);
    }
  }
  unigap_isa_set(unigap_isa_best());
}

UNIGAP_TEST("similarity/topk_and_ranks_match_full_matrix") {
  for (int t : tiers()) {
    unigap_isa_set(unigap_isa(t));
    for (const Shape &s0 : kShapes) {
      Shape s = s0;
      s.m = std::max(s.m, s.n);
      // Small-integer embeddings with normalize = 0: every dot product is exact in f32, so the
      // kernel's scores equal the reference's and the tie rule (lower index wins) is tested exactly.
      std::vector<float> a(s.n * s.d), b(s.m * s.d);
      for (auto &x : a) x = float(int(harness::uniform(-3, 3)));
      for (auto &x : b) x = float(int(harness::uniform(-3, 3)));
      if (s.n > 2) b[1 * s.d] = NAN;  // candidate 1 is NaN: never selected before numbers
      std::vector<float> full(s.n * s.m);
      CHECK(unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, s.n, b.data(), UNIGAP_DTYPE_F32, s.m, s.d, 0, 1.f,
                                     0.f, full.data()) == UNIGAP_STATUS_OK);
      for (int64_t k : {int64_t(1), std::min<int64_t>(5, s.m), s.m}) {
        std::vector<int32_t> idx(s.n * k, -1);
        std::vector<float> sc(s.n * k, NAN);
        CHECK(unigap_similarity_topk(a.data(), UNIGAP_DTYPE_F32, s.n, b.data(), UNIGAP_DTYPE_F32, s.m, s.d, k, 0,
                                     idx.data(), sc.data()) == UNIGAP_STATUS_OK);
        int bad = 0;
        for (int64_t i = 0; i < s.n; i++) {
          std::vector<int32_t> order(s.m);
          std::iota(order.begin(), order.end(), 0);
          const float *row = &full[i * s.m];
          std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
            bool xn = std::isnan(row[x]), yn = std::isnan(row[y]);
            if (xn != yn) return yn;
            return !xn && row[x] > row[y];
          });
          for (int64_t r = 0; r < k; r++) bad += idx[i * k + r] != order[r];
        }
        CHECK(bad == 0);
      }
      // Ranks on N x N.
      std::vector<double> rk(s.n, -1);
      std::vector<float> sq(s.n * s.n);
      CHECK(unigap_similarity_ranks(a.data(), UNIGAP_DTYPE_F32, b.data(), UNIGAP_DTYPE_F32, s.n, s.d, 0, rk.data()) ==
            UNIGAP_STATUS_OK);
      for (int64_t i = 0; i < s.n; i++) {
        double own = ref_cos(&a[i * s.d], &b[i * s.d], s.d, false);
        int64_t g = 0;
        for (int64_t j = 0; j < s.n; j++) g += ref_cos(&a[i * s.d], &b[j * s.d], s.d, false) > own;
        if (std::isnan(own))
          CHECK(std::isnan(rk[i]));
        else
          CHECK(rk[i] == double(g + 1));
      }
    }
  }
  unigap_isa_set(unigap_isa_best());
}

UNIGAP_TEST("similarity/bad_arguments") {
  float x[4] = {1, 2, 3, 4}, o[4];
  int32_t ix[4];
  CHECK(unigap_similarity_matrix(x, UNIGAP_DTYPE_F32, 1, x, UNIGAP_DTYPE_F32, 1, 0, 1, 1, 0, o) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_similarity_matrix(x, UNIGAP_DTYPE_F32, 1, x, UNIGAP_DTYPE_F32, 1, 4, 1, NAN, 0, o) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_similarity_matrix(x, unigap_dtype(9), 1, x, UNIGAP_DTYPE_F32, 1, 4, 1, 1, 0, o) ==
        UNIGAP_STATUS_UNSUPPORTED_DTYPE);
  CHECK(unigap_similarity_topk(x, UNIGAP_DTYPE_F32, 1, x, UNIGAP_DTYPE_F32, 1, 4, 2, 1, ix, o) ==
        UNIGAP_STATUS_OUT_OF_RANGE);
  CHECK(unigap_similarity_topk(x, UNIGAP_DTYPE_F32, 1, x, UNIGAP_DTYPE_F32, 1, 4, 0, 1, ix, o) ==
        UNIGAP_STATUS_OUT_OF_RANGE);
  CHECK(unigap_similarity_paired_cosine(nullptr, UNIGAP_DTYPE_F32, x, UNIGAP_DTYPE_F32, 1, 4, o) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
}

UNIGAP_TEST("similarity/perf") {
  if (!harness::g_perf) return;
  const int64_t n = 2048, m = 2048, d = 768;
  auto a = randm(n, d), b = randm(m, d);
  std::vector<float> out(n * m);
  std::vector<int32_t> idx(n * 10);
  std::vector<float> sc(n * 10);
  for (int t : tiers()) {
    if (std::getenv("SIMTIER") && std::atoi(std::getenv("SIMTIER")) != t) continue;
    unigap_isa_set(unigap_isa(t));
    for (int op = 0; op < 2; op++) {
      double best = 1e9, bestcpu = 1e9;
      for (int r = 0; r < (t == 0 ? 1 : 5); r++) {
        auto t0 = std::chrono::steady_clock::now();
        std::clock_t c0 = std::clock();
        if (op == 0)
          unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, n, b.data(), UNIGAP_DTYPE_F32, m, d, 1, 1, 0, out.data());
        else
          unigap_similarity_topk(a.data(), UNIGAP_DTYPE_F32, n, b.data(), UNIGAP_DTYPE_F32, m, d, 10, 1, idx.data(), sc.data());
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        bestcpu = std::min(bestcpu, double(std::clock() - c0) / CLOCKS_PER_SEC);
      }
      std::printf("  perf %s %s %lldx%lldx%lld: %.2f ms, %.1f GFLOP/s wall, %.1f GFLOP per cpu-s\n",
                  unigap_isa_name(unigap_isa(t)), op ? "topk10" : "matrix", (long long)n, (long long)m, (long long)d,
                  best * 1e3, 2.0 * n * m * d / best / 1e9, 2.0 * n * m * d / bestcpu / 1e9);
    }
  }
  unigap_isa_set(unigap_isa_best());
}
