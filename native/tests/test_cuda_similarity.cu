// CUDA similarity checks: every unigap_cuda_{paired_cosine, similarity_matrix, topk_similarity,
// retrieval_ranks} against the CPU core (unigap_similarity_*, similarity.h) on odd and real shapes with
// zero / NaN / infinite / duplicate rows, outputs poisoned, every status checked; CUDA-event timing under
// --perf. Without a device the GPU tests are only listed as SKIPPED (see cuda/host_checks); the
// cuda/emulated/similarity_* tests replay the kernels' per-score code on the host (similarity.cu) against
// the CPU core on every machine.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "cuda_test_common.cuh"
#include "unigap/similarity.h"

namespace unigap_cuda {
unigap_status similarity_emulate_paired(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n,
                                        int64_t d, float *out);
unigap_status similarity_emulate(int mode, const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db,
                                 int64_t m, int64_t d, int normalize, float scale, float bias, int64_t k, int splits,
                                 float *out, int32_t *indices, float *scores, double *ranks);
unigap_status similarity_emulate_tc(int mode, const void *a, unigap_dtype da, int64_t n, const void *b,
                                    unigap_dtype db, int64_t m, int64_t d, int normalize, float scale, float bias,
                                    int64_t k, int splits, int flags, float *out, int32_t *indices, float *scores,
                                    double *ranks);
int64_t similarity_topk_tiles_per_split(int64_t row_tiles, int64_t col_tiles, int64_t capacity);
}  // namespace unigap_cuda

using namespace cudatest;

namespace {

struct Emb {
  unigap_dtype dt;
  int64_t rows, d;
  std::vector<uint8_t> raw;
  void set(int64_t r, int64_t k, float v) {
    const int64_t i = r * d + k;
    if (dt == UNIGAP_DTYPE_F32)
      reinterpret_cast<float *>(raw.data())[i] = v;
    else if (dt == UNIGAP_DTYPE_BF16)
      reinterpret_cast<uint16_t *>(raw.data())[i] = unigap_f32_to_bf16(v);
    else
      reinterpret_cast<uint16_t *>(raw.data())[i] = unigap_f32_to_f16(v);
  }
  void copy_row(int64_t dst, int64_t src) {
    const size_t es = dtype_size(dt);
    std::memcpy(raw.data() + dst * d * es, raw.data() + src * d * es, (size_t)d * es);
  }
};

Emb make_emb(unigap_dtype dt, int64_t rows, int64_t d) {
  Emb e{dt, rows, d, std::vector<uint8_t>((size_t)(rows * d) * dtype_size(dt))};
  for (int64_t r = 0; r < rows; r++)
    for (int64_t k = 0; k < d; k++) e.set(r, k, harness::normal(0.f, 1.f));
  return e;
}

// Zero row, NaN row, infinite element, duplicate rows: where the shape allows.
void poison(Emb &e, int64_t zero, int64_t nan_row, int64_t inf_row) {
  if (zero >= 0 && zero < e.rows)
    for (int64_t k = 0; k < e.d; k++) e.set(zero, k, 0.f);
  if (nan_row >= 0 && nan_row < e.rows) e.set(nan_row, e.d / 2, NAN);
  if (inf_row >= 0 && inf_row < e.rows) e.set(inf_row, 0, INFINITY);
}

struct Case {
  int64_t n, m, d;
};

// level 0: two odd shapes (the sanitizer runs), 1: every odd shape, 2: plus a 700 x 5000 x 512 case.
std::vector<Case> cases(int level) {
  if (level == 0) return {{37, 131, 7}, {70, 200, 33}};
  std::vector<Case> v = {{1, 1, 1}, {3, 5, 2}, {37, 131, 7}, {70, 200, 33}, {130, 1000, 256}};
  if (level >= 2) v.push_back({700, 5000, 512});
  return v;
}

struct Pair {
  unigap_dtype a, b;
};
const Pair kPairs[] = {{UNIGAP_DTYPE_F32, UNIGAP_DTYPE_F32},
                       {UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_BF16},
                       {UNIGAP_DTYPE_F16, UNIGAP_DTYPE_F16},
                       {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_BF16}};

// What the GPU (or its emulation) produced for one case.
struct Got {
  std::vector<float> paired, matrix, scores;
  std::vector<int32_t> idx;
  std::vector<double> ranks;
};

// Computes everything through `run` (device or emulation) and compares with the CPU core.
using Runner = bool (*)(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                        int flags, Got &g);

// The product path a call takes (similarity.cu tc_kind): -1 exact SIMT f32, 0 bf16 / 1 f16 tensor cores,
// 2 TF32 tensor cores. cc_major: the device's (8 for the tensor-core emulation, 0 for the SIMT one).
int path_kind(unigap_dtype a, unigap_dtype b, int flags, int cc_major) {
  if ((flags & UNIGAP_CUDA_SIM_SIMT) || cc_major < 8) return -1;
  if (a == b && a == UNIGAP_DTYPE_BF16) return 0;
  if (a == b && a == UNIGAP_DTYPE_F16) return 1;
  return (flags & UNIGAP_CUDA_SIM_ALLOW_TF32) ? 2 : -1;
}

// Tensor-core error bound per unit of S_ij = sum_k |a_ik b_jk| (<= 1 for cosines by Cauchy-Schwarz,
// <= |a_i| |b_j| for raw dot products). The inputs of the 16-bit kinds are not rounded (bf16 x bf16 and
// f16 x f16 products are exact in f32), so only f32 summation differs: the tensor cores add one k step
// (16, or 8 for TF32) per instruction with at most ~1 ulp (2^-23, truncation) of the partial sum each,
// ceil(D / step) instructions; the CPU's own f32 accumulation and its differently ordered sum of squares
// for 1 / |row| add about 4 sqrt(D) ulps (4 sigma of a random walk of D roundings); the epilogue's two
// factor multiplications and slack 8 ulps. TF32 adds the input rounding: each normalised element is
// rounded to 10 mantissa bits (relative error <= 2^-11), so |ds| <= (2^-11 + 2^-11 + 2^-22) S <= 2^-10 S.
double tc_unit(int kind, int64_t d) {
  if (kind < 0) return 0.0;
  const double steps = std::ceil((double)d / (kind == 2 ? 8.0 : 16.0));
  return std::ldexp(1.0, -23) * (steps + 4.0 * std::sqrt((double)d) + 8.0) + (kind == 2 ? std::ldexp(1.0, -10) : 0.0);
}

// Largest |got - cpu| / bound seen on the tensor-core paths since the last report (how tight the bound is).
double g_tc_worst = 0;
int64_t g_tc_scores = 0;

// |row| in double (NaN for a NaN row).
std::vector<double> row_norms(const Emb &E) {
  std::vector<double> r((size_t)E.rows);
  for (int64_t i = 0; i < E.rows; i++) {
    double s = 0;
    for (int64_t k = 0; k < E.d; k++) {
      const size_t x = (size_t)(i * E.d + k);
      const auto *h = reinterpret_cast<const uint16_t *>(E.raw.data());
      const double v = E.dt == UNIGAP_DTYPE_F32    ? reinterpret_cast<const float *>(E.raw.data())[x]
                       : E.dt == UNIGAP_DTYPE_BF16 ? unigap_bf16_to_f32(h[x])
                                                   : unigap_f16_to_f32(h[x]);
      s += v * v;
    }
    r[(size_t)i] = std::sqrt(s);
  }
  return r;
}

void compare_case(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                  const Got &g, const std::string &tag, int kind = -1) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
  const double unit = tc_unit(kind, d);
  std::vector<double> na, nb;
  double nb_max = 0;
  if (unit > 0 && !normalize) {
    na = row_norms(A);
    nb = row_norms(B);
    for (double x : nb)
      if (std::isfinite(x)) nb_max = std::max(nb_max, x);
  }
  // S_ij bound and the "near tie" tolerance of row i on the tensor-core paths (see tc_unit).
  auto S = [&](int64_t i, int64_t j) { return normalize ? 1.0 : na[(size_t)i] * nb[(size_t)j]; };
  auto tie_tc = [&](int64_t i) { return 2.0 * unit * (normalize ? 1.0 : na[(size_t)i] * nb_max) + 1e-7; };
  // paired: A with P (both n rows)
  std::vector<float> cp((size_t)n, NAN);
  CHECK(unigap_similarity_paired_cosine(A.raw.data(), A.dt, P.raw.data(), P.dt, n, d, cp.data()) == UNIGAP_STATUS_OK);
  compare((tag + " paired").c_str(), std::vector<double>(g.paired.begin(), g.paired.end()).data(),
          std::vector<double>(cp.begin(), cp.end()).data(), n, 1e-5, 2e-6, __FILE__, __LINE__);
  // matrix, and the unscaled scores the order checks use
  std::vector<float> cm((size_t)(n * m), NAN), raw((size_t)(n * m), NAN);
  CHECK(unigap_similarity_matrix(A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, scale, bias, cm.data()) ==
        UNIGAP_STATUS_OK);
  CHECK(unigap_similarity_matrix(A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, 1.f, 0.f, raw.data()) ==
        UNIGAP_STATUS_OK);
  const double mag = normalize ? 1.0 : (double)d;  // |s| bound scale
  const double at = 4e-7 * mag * std::sqrt((double)d) * std::fabs(scale) + 1e-6 * std::fabs(bias);
  if (unit == 0) {
    compare((tag + " matrix").c_str(), std::vector<double>(g.matrix.begin(), g.matrix.end()).data(),
            std::vector<double>(cm.begin(), cm.end()).data(), n * m, 1e-5, at, __FILE__, __LINE__);
  } else {  // per element: |scale| unit S_ij, plus the final fmaf's rounding
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) {
        const double gv = g.matrix[(size_t)(i * m + j)], wv = cm[(size_t)(i * m + j)];
        bool ok;
        if (std::isnan(gv) || std::isnan(wv))
          ok = std::isnan(gv) && std::isnan(wv);
        else if (gv == wv)  // incl. equal infinities (raw products of an infinite element)
          ok = true;
        else {
          const double bound = std::fabs(scale) * unit * S(i, j) + 2e-7 * (std::fabs(wv) + std::fabs(bias)) + 1e-30;
          ok = std::fabs(gv - wv) <= bound;
          g_tc_worst = std::max(g_tc_worst, std::fabs(gv - wv) / bound);
          g_tc_scores++;
        }
        if (!ok && first < 0) first = i * m + j;
        bad += !ok;
      }
    harness::g_checks++;
    if (bad) {
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s matrix: %lld of %lld beyond the tensor-core bound; first [%lld] %.9g vs cpu %.9g", tag.c_str(),
                    (long long)bad, (long long)(n * m), (long long)first, g.matrix[(size_t)first], cm[(size_t)first]);
      harness::fail(__FILE__, __LINE__, buf);
    }
  }
  // "near tie": within f32 accumulation noise (SIMT) or the tensor-core bound of two scores
  const double tie_simt = 4e-7 * mag * std::sqrt((double)d) + 1e-7;
  auto tie_of = [&](int64_t i) { return unit > 0 ? tie_tc(i) : tie_simt; };
  double tie = tie_simt;
  if (unit > 0)
    for (int64_t i = 0; i < n; i++)
      if (std::isfinite(tie_tc(i))) tie = std::max(tie, tie_tc(i));
  // top-k: scores close; every index either the CPU's or one whose CPU score ties the CPU's within noise
  std::vector<int32_t> ci((size_t)(n * k), -1);
  std::vector<float> cs((size_t)(n * k), NAN);
  CHECK(unigap_similarity_topk(A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, k, normalize, ci.data(), cs.data()) ==
        UNIGAP_STATUS_OK);
  compare((tag + " topk scores").c_str(), std::vector<double>(g.scores.begin(), g.scores.end()).data(),
          std::vector<double>(cs.begin(), cs.end()).data(), n * k, 1e-5, tie, __FILE__, __LINE__);
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < k; r++) {
      const int32_t gj = g.idx[(size_t)(i * k + r)], cj = ci[(size_t)(i * k + r)];
      if (gj == cj) continue;
      const bool in_range = gj >= 0 && gj < m;
      const float gs = in_range ? raw[(size_t)(i * m + gj)] : NAN, want = cs[(size_t)(i * k + r)];
      if (!in_range || std::isnan(gs) || std::isnan(want) || std::fabs((double)gs - want) > tie_of(i)) {
        if (first < 0) first = i * k + r;
        bad++;
      }
    }
  harness::g_checks++;
  if (bad) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s topk indices: %lld wrong, first row %lld pos %lld: got %d want %d", tag.c_str(),
                  (long long)bad, (long long)(first / k), (long long)(first % k), g.idx[(size_t)first], ci[(size_t)first]);
    harness::fail(__FILE__, __LINE__, buf);
  }
  // ranks over A and the first n rows of B (needs m >= n; callers pass square B for it)
  if (m >= n && !g.ranks.empty()) {
    std::vector<double> cr((size_t)n, -1);
    CHECK(unigap_similarity_ranks(A.raw.data(), A.dt, B.raw.data(), B.dt, n, d, normalize, cr.data()) ==
          UNIGAP_STATUS_OK);
    int64_t rbad = 0;
    for (int64_t i = 0; i < n; i++) {
      if (std::isnan(cr[(size_t)i]) || std::isnan(g.ranks[(size_t)i])) {
        rbad += std::isnan(cr[(size_t)i]) != std::isnan(g.ranks[(size_t)i]);
        continue;
      }
      int64_t near = 0;  // candidates whose order vs s_ii is within accumulation noise
      const float sii = raw[(size_t)(i * m + i)];
      for (int64_t j = 0; j < n; j++)
        if (j != i && std::fabs((double)raw[(size_t)(i * m + j)] - sii) <= tie_of(i)) near++;
      if (std::fabs(g.ranks[(size_t)i] - cr[(size_t)i]) > (double)near) rbad++;
    }
    harness::g_checks++;
    if (rbad) harness::fail(__FILE__, __LINE__, tag + " ranks: " + std::to_string(rbad) + " rows differ");
  }
}

// Every dtype pair and shape of `level`, through `run` with `flags`; pairs whose path (path_kind with
// cc_major) is not in `kinds` are left out (e.g. the tensor-core emulation has no path for f32 without TF32).
void run_cases(Runner run, int level, const char *who, int flags = 0, int cc_major = 0,
               std::initializer_list<int> kinds = {-1, 0, 1, 2}) {
  for (const Pair &pr : kPairs)
    for (const Case &c : cases(level)) {
      if (level == 0 && pr.a == pr.b && pr.a != UNIGAP_DTYPE_BF16) continue;  // sanitizer: bf16 and mixed only
      const int kind = path_kind(pr.a, pr.b, flags, cc_major);
      if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
      Emb A = make_emb(pr.a, c.n, c.d), B = make_emb(pr.b, c.m, c.d), P = make_emb(pr.b, c.n, c.d);
      poison(A, 1, 2, c.n > 5 ? 5 : -1);
      poison(B, 3, 4, c.m > 6 ? 6 : -1);
      poison(P, 0, 2, -1);
      if (c.m > 20) {
        B.copy_row(10, 12);  // exact duplicate candidates: a tie, lower index first
        B.copy_row(15, 8);   // and a duplicate of query 8's own candidate (rank tie, optimistic)
      }
      if (c.n > 9 && c.m > 11) A.copy_row(9, 2);  // a second NaN query
      for (int normalize : {1, 0}) {
        const float scale = normalize ? 14.3f : 0.5f, bias = normalize ? -2.5f : 0.f;
        const int64_t k = std::min<int64_t>(c.m, c.m > 100 ? 10 : 3);
        for (int64_t kk : {k, c.m}) {
          if (kk > 64 && kk != k) continue;  // k = m only for small m
          Got g;
          if (!run(A, B, P, normalize, scale, bias, kk, flags, g)) return;
          char tag[200];
          std::snprintf(tag, sizeof tag, "%s %s/%s [%lld x %lld x %lld] norm %d k %lld flags %d path %d", who,
                        dtype_name(pr.a), dtype_name(pr.b), (long long)c.n, (long long)c.m, (long long)c.d, normalize,
                        (long long)kk, flags, kind);
          compare_case(A, B, P, normalize, scale, bias, kk, g, tag, kind);
        }
      }
    }
  if (g_tc_scores) {
    std::printf("  (%s flags %d: tensor-core scores within the bound: max |diff| / bound = %.3f over %lld)\n", who,
                flags, g_tc_worst, (long long)g_tc_scores);
    g_tc_worst = 0;
    g_tc_scores = 0;
  }
}

bool run_emulated(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                  int /*flags: the SIMT emulation has none*/, Got &g) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
  g.paired.assign((size_t)n, NAN);
  g.matrix.assign((size_t)(n * m), NAN);
  g.scores.assign((size_t)(n * k), NAN);
  g.idx.assign((size_t)(n * k), -7);
  CHECK(unigap_cuda::similarity_emulate_paired(A.raw.data(), A.dt, P.raw.data(), P.dt, n, d, g.paired.data()) ==
        UNIGAP_STATUS_OK);
  CHECK(unigap_cuda::similarity_emulate(0, A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, scale, bias, 0,
                                        1, g.matrix.data(), nullptr, nullptr, nullptr) == UNIGAP_STATUS_OK);
  // Three column splits (or fewer when m has fewer 64-column tiles): exercises the split merge.
  CHECK(unigap_cuda::similarity_emulate(1, A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, 1.f, 0.f, k, 3,
                                        nullptr, g.idx.data(), g.scores.data(), nullptr) == UNIGAP_STATUS_OK);
  if (m >= n) {
    g.ranks.assign((size_t)n, -1);
    CHECK(unigap_cuda::similarity_emulate(2, A.raw.data(), A.dt, n, B.raw.data(), B.dt, n, d, normalize, 1.f, 0.f, 0,
                                          1, nullptr, nullptr, nullptr, g.ranks.data()) == UNIGAP_STATUS_OK);
  }
  return true;
}

// The tensor-core path's emulation (similarity_emulate_tc); the paired cosine has no product and
// runs its SIMT emulation.
bool run_emulated_tc(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                     int flags, Got &g) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
  g.paired.assign((size_t)n, NAN);
  g.matrix.assign((size_t)(n * m), NAN);
  g.scores.assign((size_t)(n * k), NAN);
  g.idx.assign((size_t)(n * k), -7);
  CHECK(unigap_cuda::similarity_emulate_paired(A.raw.data(), A.dt, P.raw.data(), P.dt, n, d, g.paired.data()) ==
        UNIGAP_STATUS_OK);
  CHECK(unigap_cuda::similarity_emulate_tc(0, A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, scale, bias,
                                           0, 1, flags, g.matrix.data(), nullptr, nullptr,
                                           nullptr) == UNIGAP_STATUS_OK);
  // Two column splits of 128-column tiles where m allows: exercises the per-split lists and the merge.
  CHECK(unigap_cuda::similarity_emulate_tc(1, A.raw.data(), A.dt, n, B.raw.data(), B.dt, m, d, normalize, 1.f, 0.f, k,
                                           2, flags, nullptr, g.idx.data(), g.scores.data(), nullptr) ==
        UNIGAP_STATUS_OK);
  if (m >= n) {
    g.ranks.assign((size_t)n, -1);
    CHECK(unigap_cuda::similarity_emulate_tc(2, A.raw.data(), A.dt, n, B.raw.data(), B.dt, n, d, normalize, 1.f, 0.f,
                                             0, 1, flags, nullptr, nullptr, nullptr, g.ranks.data()) ==
          UNIGAP_STATUS_OK);
  }
  return true;
}

// ---------------------------------------------------------------- device runner

struct DevBuf {
  void *p = nullptr;
  DevBuf() = default;
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
  ~DevBuf() { unigap_cuda_free(p); }
  bool alloc(size_t bytes, int poison_byte = 0xff) {
    if (!CUDA_OK(unigap_cuda_alloc(bytes ? bytes : 16, &p))) return false;
    return CUDA_OK(unigap_cuda_memset(p, poison_byte, bytes ? bytes : 16, stream()));
  }
  bool upload(const std::vector<uint8_t> &h) {
    if (!alloc(h.size())) return false;
    return h.empty() || CUDA_OK(unigap_cuda_memcpy_h2d(p, h.data(), h.size(), stream()));
  }
  template <class T>
  void fetch(std::vector<T> &h) {
    if (!h.empty()) CUDA_OK(unigap_cuda_memcpy_d2h(h.data(), p, h.size() * sizeof(T), stream()));
  }
};

bool run_device(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k, int flags,
                Got &g) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
  DevBuf a, b, pp, paired, mat, sc, ix, rk;
  if (!a.upload(A.raw) || !b.upload(B.raw) || !pp.upload(P.raw) || !paired.alloc((size_t)n * 4) ||
      !mat.alloc((size_t)(n * m) * 4) || !sc.alloc((size_t)(n * k) * 4) || !ix.alloc((size_t)(n * k) * 4) ||
      !rk.alloc((size_t)n * 8))
    return false;
  bool good = CUDA_OK(unigap_cuda_paired_cosine(a.p, A.dt, pp.p, P.dt, n, d, static_cast<float *>(paired.p), stream()));
  good &= CUDA_OK(unigap_cuda_similarity_matrix(a.p, A.dt, n, b.p, B.dt, m, d, normalize, scale, bias,
                                                static_cast<float *>(mat.p), flags, stream()));
  good &= CUDA_OK(unigap_cuda_topk_similarity(a.p, A.dt, n, b.p, B.dt, m, d, k, normalize, static_cast<int32_t *>(ix.p),
                                              static_cast<float *>(sc.p), flags, stream()));
  if (m >= n)
    good &= CUDA_OK(unigap_cuda_retrieval_ranks(a.p, A.dt, b.p, B.dt, n, d, normalize, static_cast<double *>(rk.p),
                                                flags, stream()));
  good &= CUDA_OK(unigap_cuda_stream_sync(stream()));
  if (!good) return false;
  g.paired.assign((size_t)n, 0);
  g.matrix.assign((size_t)(n * m), 0);
  g.scores.assign((size_t)(n * k), 0);
  g.idx.assign((size_t)(n * k), 0);
  paired.fetch(g.paired);
  mat.fetch(g.matrix);
  sc.fetch(g.scores);
  ix.fetch(g.idx);
  if (m >= n) {
    g.ranks.assign((size_t)n, 0);
    rk.fetch(g.ranks);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- always run (host)

UNIGAP_TEST("cuda/emulated/similarity") { run_cases(run_emulated, 1, "emulated"); }

// The tensor-core path (similarity_mma.cuh) replayed on the host as an sm_80+ device would run it:
// bf16/bf16 and f16/f16 without flags, f32/f32 and f32/bf16 with TF32 allowed; against the CPU core with
// the bound of tc_unit. Covers the stage chunks, the shared layout, the fragment loaders and C mapping
// (decoded by an mma written from the PTX ISA's documented layouts), padding, the factor epilogue, the
// split top-k with staged halves and the diagonal ranks pass.
UNIGAP_TEST("cuda/emulated/similarity_tc") {
  run_cases(run_emulated_tc, 1, "emulated tc", 0, 8, {0, 1});
  run_cases(run_emulated_tc, 1, "emulated tf32", UNIGAP_CUDA_SIM_ALLOW_TF32, 8, {2});
  // Exactness of the 16-bit path where the bound is 0: small integers (exact products and sums in f32).
  Emb A{UNIGAP_DTYPE_BF16, 37, 40, std::vector<uint8_t>(37 * 40 * 2)}, B{UNIGAP_DTYPE_BF16, 150, 40,
                                                                         std::vector<uint8_t>(150 * 40 * 2)};
  for (int64_t r = 0; r < 37; r++)
    for (int64_t k = 0; k < 40; k++) A.set(r, k, (float)((r * 7 + k * 3) % 9) - 4.f);
  for (int64_t r = 0; r < 150; r++)
    for (int64_t k = 0; k < 40; k++) B.set(r, k, (float)((r * 5 + k * 11) % 7) - 3.f);
  std::vector<float> got(37 * 150, NAN), want(37 * 150, NAN);
  CHECK(unigap_cuda::similarity_emulate_tc(0, A.raw.data(), A.dt, 37, B.raw.data(), B.dt, 150, 40, 0, 1.f, 0.f, 0, 1,
                                           0, got.data(), nullptr, nullptr, nullptr) == UNIGAP_STATUS_OK);
  CHECK(unigap_similarity_matrix(A.raw.data(), A.dt, 37, B.raw.data(), B.dt, 150, 40, 0, 1.f, 0.f, want.data()) ==
        UNIGAP_STATUS_OK);
  CHECK(std::memcmp(got.data(), want.data(), got.size() * 4) == 0);
  // No tensor-core path for f32 without TF32 (nor for mixed 16-bit pairs): INVALID_ARGUMENT, no write.
  Emb F = make_emb(UNIGAP_DTYPE_F32, 3, 5), H = make_emb(UNIGAP_DTYPE_F16, 4, 5);
  std::vector<float> o(12, 7.f);
  CHECK(unigap_cuda::similarity_emulate_tc(0, F.raw.data(), F.dt, 3, F.raw.data(), F.dt, 3, 5, 1, 1.f, 0.f, 0, 1, 0,
                                           o.data(), nullptr, nullptr, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda::similarity_emulate_tc(0, A.raw.data(), A.dt, 3, H.raw.data(), H.dt, 4, 5, 1, 1.f, 0.f, 0, 1, 0,
                                           o.data(), nullptr, nullptr, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(o[0] == 7.f);
}

UNIGAP_TEST("cuda/emulated/similarity_edges") {
  // NaN query row: candidates 0..k-1 with NaN scores; NaN candidates last; zero rows score 0; k = m.
  Emb A = make_emb(UNIGAP_DTYPE_F32, 3, 5), B = make_emb(UNIGAP_DTYPE_F32, 6, 5);
  A.set(0, 2, NAN);
  for (int64_t k = 0; k < 5; k++) A.set(1, k, 0.f);
  B.set(4, 1, NAN);
  std::vector<int32_t> idx(18, -1);
  std::vector<float> sc(18, 7.f);
  CHECK(unigap_cuda::similarity_emulate(1, A.raw.data(), A.dt, 3, B.raw.data(), B.dt, 6, 5, 1, 1.f, 0.f, 6, 2, nullptr,
                                        idx.data(), sc.data(), nullptr) == UNIGAP_STATUS_OK);
  for (int r = 0; r < 6; r++) CHECK(idx[(size_t)r] == r && std::isnan(sc[(size_t)r]));
  // zero query: every finite candidate scores 0 (ties -> increasing index), the NaN candidate last
  const int32_t want1[6] = {0, 1, 2, 3, 5, 4};
  for (int r = 0; r < 6; r++) CHECK(idx[(size_t)(6 + r)] == want1[r]);
  CHECK(sc[6] == 0.f && std::isnan(sc[11]));
  CHECK(idx[12 + 5] == 4 && std::isnan(sc[12 + 5]));
  // argument checks of the emulation mirror the device entries
  CHECK(unigap_cuda::similarity_emulate(1, A.raw.data(), A.dt, 3, B.raw.data(), B.dt, 6, 5, 1, 1.f, 0.f, 7, 1, nullptr,
                                        idx.data(), sc.data(), nullptr) == UNIGAP_STATUS_OUT_OF_RANGE);
  CHECK(unigap_cuda::similarity_emulate(0, A.raw.data(), UNIGAP_DTYPE_F64, 3, B.raw.data(), B.dt, 6, 5, 1, 1.f, 0.f, 0,
                                        1, sc.data(), nullptr, nullptr, nullptr) == UNIGAP_STATUS_UNSUPPORTED_DTYPE);
}

UNIGAP_TEST("cuda/similarity/topk_split_choice") {
  // The top-k grid (row tiles x splits) against the blocks a GPU runs at once: the last wave must not
  // be mostly empty (8192 queries on an H100: 64 row tiles of 128, 2 blocks per SM x 132 SMs).
  struct C {
    int64_t rows, cols, cap;
  };
  for (C c : {C{64, 512, 264}, C{64, 512, 132}, C{128, 1024, 264}, C{64, 64, 264}, C{16, 512, 228}, C{1, 8, 264},
              C{2, 1, 264}, C{300, 40, 264}, C{7, 3000, 80}}) {
    const int64_t tps = unigap_cuda::similarity_topk_tiles_per_split(c.rows, c.cols, c.cap);
    const int64_t splits = (c.cols + tps - 1) / tps, blocks = c.rows * splits;
    const int64_t waves = (blocks + c.cap - 1) / c.cap;
    const double eff = (double)(c.rows * c.cols) / (double)(waves * c.cap * tps);
    CHECK(tps >= 1 && tps <= c.cols && splits <= 64);
    if (c.rows * std::min<int64_t>(64, c.cols) >= c.cap) {
      CHECK(blocks >= c.cap);  // at least a full wave when one is possible
      CHECK(eff >= 0.85);
    } else {
      CHECK(splits == std::min<int64_t>(64, c.cols));  // small problems: as many blocks as allowed
    }
  }
}

UNIGAP_TEST("cuda/similarity/host_checks") {
  // Argument checks need no device and come first; valid arguments on host memory give
  // DEVICE_UNAVAILABLE without a device and INVALID_ARGUMENT ("not device memory") with one.
  std::vector<float> a(12, 1.f), b(12, 1.f), out(16, NAN);
  std::vector<int32_t> ix(8, -1);
  std::vector<double> rk(4, -1);
  const unigap_status dev = device_ok() ? UNIGAP_STATUS_INVALID_ARGUMENT : UNIGAP_STATUS_DEVICE_UNAVAILABLE;
  const auto F32 = UNIGAP_DTYPE_F32;
  CHECK(unigap_cuda_paired_cosine(a.data(), UNIGAP_DTYPE_F64, b.data(), F32, 4, 3, out.data(), nullptr) ==
        UNIGAP_STATUS_UNSUPPORTED_DTYPE);
  CHECK(unigap_cuda_paired_cosine(a.data(), F32, b.data(), F32, 4, 0, out.data(), nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_paired_cosine(a.data(), F32, b.data(), F32, 4, 3, out.data(), nullptr) == dev);
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 1, NAN, 0.f, out.data(), 0, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 2, 1.f, 0.f, out.data(), 0, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 1, 1.f, 0.f, out.data(), 4, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);  // unknown flag bit
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 1, 1.f, 0.f, out.data(),
                                      UNIGAP_CUDA_SIM_ALLOW_TF32 | UNIGAP_CUDA_SIM_SIMT, nullptr) == dev);
  CHECK(unigap_cuda_topk_similarity(a.data(), F32, 4, b.data(), F32, 4, 3, 2, 1, ix.data(), out.data(), 8, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_retrieval_ranks(a.data(), F32, b.data(), F32, 4, 3, 1, rk.data(), -1, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 1, 1.f, 0.f, out.data(), 0, nullptr) ==
        dev);
  CHECK(unigap_cuda_topk_similarity(a.data(), F32, 4, b.data(), F32, 4, 3, 5, 1, ix.data(), out.data(), 0, nullptr) ==
        UNIGAP_STATUS_OUT_OF_RANGE);
  CHECK(unigap_cuda_topk_similarity(a.data(), F32, 4, b.data(), F32, 4, 3, 0, 1, ix.data(), out.data(), 0, nullptr) ==
        UNIGAP_STATUS_OUT_OF_RANGE);
  CHECK(unigap_cuda_topk_similarity(a.data(), F32, 4, b.data(), F32, 4, 3, 2, 1, ix.data(), nullptr, 0, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_topk_similarity(a.data(), F32, 4, b.data(), F32, 4, 3, 2, 1, ix.data(), out.data(), 0, nullptr) ==
        dev);
  CHECK(unigap_cuda_retrieval_ranks(a.data(), F32, b.data(), F32, 4, 3, 1, nullptr, 0, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_retrieval_ranks(a.data(), F32, b.data(), F32, 4, 3, 1, rk.data(), 0, nullptr) == dev);
  CHECK(std::strlen(unigap_cuda_last_error()) > 0);
  // Host outputs were never written through.
  CHECK(std::isnan(out[0]) && ix[0] == -1 && rk[0] == -1);
}

// ---------------------------------------------------------------- GPU only

namespace {
int cc_major() {
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  return major;
}
}  // namespace

// flags 0: tensor cores for bf16/bf16 and f16/f16 on sm_80+ (exact SIMT elsewhere); SIMT forced; TF32.
CUDA_TEST("cuda/similarity/all_ops_vs_cpu") {
  const int cc = cc_major();
  std::printf("  (compute capability major %d: %s)\n", cc, cc >= 8 ? "tensor-core paths checked" : "SIMT only");
  run_cases(run_device, 2, "cuda", 0, cc);
  run_cases(run_device, 1, "cuda simt", UNIGAP_CUDA_SIM_SIMT, cc);
  run_cases(run_device, 1, "cuda tf32", UNIGAP_CUDA_SIM_ALLOW_TF32, cc, {2});
}
// Small and quick: what bench/device/run.sh hands to compute-sanitizer (memcheck, racecheck): bf16 on
// the tensor cores (sm_80+), mixed on SIMT, and TF32.
CUDA_TEST("cuda/similarity/sanitize_small") {
  run_cases(run_device, 0, "cuda small", 0, cc_major());
  run_cases(run_device, 0, "cuda small tf32", UNIGAP_CUDA_SIM_ALLOW_TF32, cc_major(), {2});
}

CUDA_TEST("cuda/similarity/real_shapes") {
  const int cc = cc_major();
  // A CLIP-sized batch: 512 images (f32) x 4096 prompts (bf16), D = 768; ranks on 2048 pairs (f16).
  Emb A = make_emb(UNIGAP_DTYPE_F32, 512, 768), B = make_emb(UNIGAP_DTYPE_BF16, 4096, 768),
      P = make_emb(UNIGAP_DTYPE_BF16, 512, 768);
  Got g;
  if (!run_device(A, B, P, 1, 100.f, 0.f, 10, 0, g)) return;
  compare_case(A, B, P, 1, 100.f, 0.f, 10, g, "cuda real f32/bf16 [512 x 4096 x 768]");
  Emb Q = make_emb(UNIGAP_DTYPE_F16, 2048, 512), C = make_emb(UNIGAP_DTYPE_F16, 2048, 512);
  Got h;
  if (!run_device(Q, C, C, 1, 1.f, 0.f, 5, 0, h)) return;
  compare_case(Q, C, C, 1, 1.f, 0.f, 5, h, "cuda real f16 [2048 x 2048 x 512]", path_kind(Q.dt, C.dt, 0, cc));
  // The benchmark's geometry at a CPU-checkable size: bf16 [1000 x 8192 x 1024] (tensor cores on sm_80+),
  // and TF32 on f32 [1000 x 4096 x 1024].
  Emb X = make_emb(UNIGAP_DTYPE_BF16, 1000, 1024), Y = make_emb(UNIGAP_DTYPE_BF16, 8192, 1024);
  Got x;
  if (!run_device(X, Y, Y, 1, 100.f, 0.f, 10, 0, x)) return;
  compare_case(X, Y, Y, 1, 100.f, 0.f, 10, x, "cuda real bf16 [1000 x 8192 x 1024]", path_kind(X.dt, Y.dt, 0, cc));
  Emb U = make_emb(UNIGAP_DTYPE_F32, 1000, 1024), W = make_emb(UNIGAP_DTYPE_F32, 4096, 1024);
  Got u;
  if (!run_device(U, W, W, 1, 1.f, 0.f, 10, UNIGAP_CUDA_SIM_ALLOW_TF32, u)) return;
  compare_case(U, W, W, 1, 1.f, 0.f, 10, u, "cuda real tf32 f32 [1000 x 4096 x 1024]",
               path_kind(U.dt, W.dt, UNIGAP_CUDA_SIM_ALLOW_TF32, cc));
}

// ---------------------------------------------------------------- perf (--perf)

namespace {
__global__ void fill_normal_bf16(uint16_t *x, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull + seed;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    x[i] = __bfloat16_as_ushort(__float2bfloat16_rn((u - 0.5f) * 3.4f));
  }
}

void gemm_row(const char *name, const char *shape, double ms, double flops) {
  std::printf("PERF_SIM|%s|bf16|%s|%.4f|%.2f\n", name, shape, ms, flops / (ms * 1e-3) / 1e12);
  std::fflush(stdout);
}
}  // namespace

// The stream-ordered pool's high-water mark of used bytes since the last reset (the kernels' scratch).
static size_t pool_used_high(bool reset) {
  int dev = 0;
  cudaGetDevice(&dev);
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess) return 0;
  unsigned long long v = 0;  // cuuint64_t
  if (reset) {
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v);
    return 0;
  }
  cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v);
  return (size_t)v;
}

CUDA_TEST("cuda/perf/similarity") {
  if (!harness::g_perf) {
    std::printf("  (timing not run: pass --perf)\n");
    return;
  }
  cudaStream_t st = static_cast<cudaStream_t>(stream());
  const auto BF = UNIGAP_DTYPE_BF16;
  const bool tc = cc_major() >= 8;
  unigap_status s = UNIGAP_STATUS_OK;
  {  // similarityMatrix 8192 x 8192 x 1024 bf16 (normalize, scale, bias): tensor cores and SIMT; f32 + TF32
    const int64_t N = 8192, M = 8192, D = 1024;
    void *a = nullptr, *b = nullptr, *out = nullptr, *af = nullptr, *bf = nullptr;
    CUDA_OK(unigap_cuda_alloc((size_t)(N * D) * 2, &a));
    CUDA_OK(unigap_cuda_alloc((size_t)(M * D) * 2, &b));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * M) * 4, &out));
    if (!a || !b || !out) return;
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(a), N * D, 1);
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(b), M * D, 2);
    for (int flags : {0, UNIGAP_CUDA_SIM_SIMT}) {
      double ms = time_ms([&] {
        s = unigap_cuda_similarity_matrix(a, BF, N, b, BF, M, D, 1, 14.3f, -2.5f, static_cast<float *>(out), flags,
                                          stream());
      }, 5);
      CUDA_OK(s);
      const char *name = flags != 0 ? "unigap similarityMatrix SIMT (exact f32 FMA, f32 out)"
                         : tc       ? "unigap similarityMatrix (tensor cores, f32 out)"
                                    : "unigap similarityMatrix (SIMT: no tensor cores below sm_80)";
      gemm_row(name,
               "8192x8192x1024", ms, 2.0 * N * M * D);
    }
    // f32 inputs (the bf16 values widened): exact SIMT vs TF32 tensor cores
    CUDA_OK(unigap_cuda_alloc((size_t)(N * D) * 4, &af));
    CUDA_OK(unigap_cuda_alloc((size_t)(M * D) * 4, &bf));
    if (af && bf) {
      fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(af), N * D * 2, 7);  // finite f32 bit patterns
      fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(bf), M * D * 2, 8);
      double ms = time_ms([&] {
        s = unigap_cuda_similarity_matrix(af, UNIGAP_DTYPE_F32, N, bf, UNIGAP_DTYPE_F32, M, D, 1, 14.3f, -2.5f,
                                          static_cast<float *>(out), UNIGAP_CUDA_SIM_ALLOW_TF32, stream());
      }, 5);
      CUDA_OK(s);
      std::printf("PERF_SIM|unigap similarityMatrix TF32 (f32 in, precision tf32)|f32|8192x8192x1024|%.4f|%.2f\n", ms,
                  2.0 * N * M * D / (ms * 1e-3) / 1e12);
    }
    for (void *p : {a, b, out, af, bf}) CUDA_OK(unigap_cuda_free(p));
  }
  {  // topkSimilarity k = 10 on 8192 x 65536 x 1024 bf16: tensor cores (reps 3, with peak memory) and SIMT (reps 1)
    const int64_t N = 8192, M = 65536, D = 1024, K = 10;
    void *a = nullptr, *b = nullptr, *ix = nullptr, *sc = nullptr;
    CUDA_OK(unigap_cuda_alloc((size_t)(N * D) * 2, &a));
    CUDA_OK(unigap_cuda_alloc((size_t)(M * D) * 2, &b));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * K) * 4, &ix));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * K) * 4, &sc));
    if (!a || !b || !ix || !sc) return;
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(a), N * D, 3);
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(b), M * D, 4);
    for (int flags : {0, UNIGAP_CUDA_SIM_SIMT}) {
      CUDA_OK(unigap_cuda_stream_sync(stream()));
      pool_used_high(true);
      double ms = time_ms([&] {
        s = unigap_cuda_topk_similarity(a, BF, N, b, BF, M, D, K, 1, static_cast<int32_t *>(ix),
                                        static_cast<float *>(sc), flags, stream());
      }, flags == 0 ? 3 : 1);
      CUDA_OK(s);
      const double io_mib = (double)((N + M) * D * 2 + N * K * 8) / (1 << 20);
      const double scratch_mib = (double)pool_used_high(false) / (1 << 20);
      const char *name = flags != 0 ? "unigap topkSimilarity k=10 SIMT (exact f32 FMA)"
                         : tc       ? "unigap topkSimilarity k=10 (tensor cores)"
                                    : "unigap topkSimilarity k=10 (SIMT: below sm_80)";
      gemm_row(name, "8192x65536x1024", ms, 2.0 * N * M * D);
      // inputs + outputs, and the kernel's peak scratch from the stream-ordered pool: O((N + M) D + N k)
      std::printf("PERF_MEM|%s|8192x65536x1024|%.1f|%.1f|%.1f\n", name, io_mib, scratch_mib, io_mib + scratch_mib);
      std::fflush(stdout);
    }
    for (void *p : {a, b, ix, sc}) CUDA_OK(unigap_cuda_free(p));
  }
  {  // pairedCosine [65536, 1024] bf16 and f32: bandwidth vs a D2D copy
    const int64_t N = 65536, D = 1024;
    if (g_copy_gbps == 0) {
      const size_t bytes = size_t(1) << 30;
      void *x = nullptr, *y = nullptr;
      CUDA_OK(unigap_cuda_alloc(bytes, &x));
      CUDA_OK(unigap_cuda_alloc(bytes, &y));
      double cms = time_ms([&] { unigap_cuda_memcpy_d2d(y, x, bytes, stream()); }, 9);
      g_copy_gbps = 2.0 * bytes / (cms * 1e-3) / 1e9;
      std::printf("PERF|copy_d2d (read+write)|bytes|%zu MiB|%.4f|%.1f|100.0\n", bytes >> 20, cms, g_copy_gbps);
      CUDA_OK(unigap_cuda_free(x));
      CUDA_OK(unigap_cuda_free(y));
    }
    for (unigap_dtype dt : {UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F32}) {
      const size_t es = dtype_size(dt), bytes = (size_t)(N * D) * es;
      void *a = nullptr, *b = nullptr, *out = nullptr;
      CUDA_OK(unigap_cuda_alloc(bytes, &a));
      CUDA_OK(unigap_cuda_alloc(bytes, &b));
      CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &out));
      if (!a || !b || !out) return;
      const int64_t halves = (int64_t)(bytes / 2);
      fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(a), halves, 5);
      fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(b), halves, 6);
      double ms = time_ms([&] {
        s = unigap_cuda_paired_cosine(a, dt, b, dt, N, D, static_cast<float *>(out), stream());
      });
      CUDA_OK(s);
      perf_row("unigap pairedCosine", dtype_name(dt), "65536x1024", ms, 2.0 * bytes + N * 4.0);
      for (void *p : {a, b, out}) CUDA_OK(unigap_cuda_free(p));
    }
  }
}
