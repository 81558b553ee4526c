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
                        Got &g);

void compare_case(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                  const Got &g, const std::string &tag) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
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
  compare((tag + " matrix").c_str(), std::vector<double>(g.matrix.begin(), g.matrix.end()).data(),
          std::vector<double>(cm.begin(), cm.end()).data(), n * m, 1e-5, at, __FILE__, __LINE__);
  const double tie = 4e-7 * mag * std::sqrt((double)d) + 1e-7;  // "near tie": within f32 accumulation noise
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
      if (!in_range || std::isnan(gs) || std::isnan(want) || std::fabs((double)gs - want) > tie) {
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
        if (j != i && std::fabs((double)raw[(size_t)(i * m + j)] - sii) <= tie) near++;
      if (std::fabs(g.ranks[(size_t)i] - cr[(size_t)i]) > (double)near) rbad++;
    }
    harness::g_checks++;
    if (rbad) harness::fail(__FILE__, __LINE__, tag + " ranks: " + std::to_string(rbad) + " rows differ");
  }
}

void run_cases(Runner run, int level, const char *who) {
  for (const Pair &pr : kPairs)
    for (const Case &c : cases(level)) {
      if (level == 0 && pr.a == pr.b && pr.a != UNIGAP_DTYPE_BF16) continue;  // sanitizer: bf16 and mixed only
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
          if (!run(A, B, P, normalize, scale, bias, kk, g)) return;
          char tag[160];
          std::snprintf(tag, sizeof tag, "%s %s/%s [%lld x %lld x %lld] norm %d k %lld", who, dtype_name(pr.a),
                        dtype_name(pr.b), (long long)c.n, (long long)c.m, (long long)c.d, normalize, (long long)kk);
          compare_case(A, B, P, normalize, scale, bias, kk, g, tag);
        }
      }
    }
}

bool run_emulated(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k,
                  Got &g) {
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

bool run_device(const Emb &A, const Emb &B, const Emb &P, int normalize, float scale, float bias, int64_t k, Got &g) {
  const int64_t n = A.rows, m = B.rows, d = A.d;
  DevBuf a, b, pp, paired, mat, sc, ix, rk;
  if (!a.upload(A.raw) || !b.upload(B.raw) || !pp.upload(P.raw) || !paired.alloc((size_t)n * 4) ||
      !mat.alloc((size_t)(n * m) * 4) || !sc.alloc((size_t)(n * k) * 4) || !ix.alloc((size_t)(n * k) * 4) ||
      !rk.alloc((size_t)n * 8))
    return false;
  bool good = CUDA_OK(unigap_cuda_paired_cosine(a.p, A.dt, pp.p, P.dt, n, d, static_cast<float *>(paired.p), stream()));
  good &= CUDA_OK(unigap_cuda_similarity_matrix(a.p, A.dt, n, b.p, B.dt, m, d, normalize, scale, bias,
                                                static_cast<float *>(mat.p), 0, stream()));
  good &= CUDA_OK(unigap_cuda_topk_similarity(a.p, A.dt, n, b.p, B.dt, m, d, k, normalize, static_cast<int32_t *>(ix.p),
                                              static_cast<float *>(sc.p), 0, stream()));
  if (m >= n)
    good &= CUDA_OK(unigap_cuda_retrieval_ranks(a.p, A.dt, b.p, B.dt, n, d, normalize, static_cast<double *>(rk.p), 0,
                                                stream()));
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
  CHECK(unigap_cuda_similarity_matrix(a.data(), F32, 4, b.data(), F32, 4, 3, 1, 1.f, 0.f, out.data(), 1, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);  // tf32 / tensor-core flags: not implemented
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

CUDA_TEST("cuda/similarity/all_ops_vs_cpu") { run_cases(run_device, 2, "cuda"); }
// Small and quick: what bench/device/run.sh hands to compute-sanitizer (memcheck, racecheck).
CUDA_TEST("cuda/similarity/sanitize_small") { run_cases(run_device, 0, "cuda small"); }

CUDA_TEST("cuda/similarity/real_shapes") {
  // A CLIP-sized batch: 512 images (f32) x 4096 prompts (bf16), D = 768; ranks on 2048 pairs (f16).
  Emb A = make_emb(UNIGAP_DTYPE_F32, 512, 768), B = make_emb(UNIGAP_DTYPE_BF16, 4096, 768),
      P = make_emb(UNIGAP_DTYPE_BF16, 512, 768);
  Got g;
  if (!run_device(A, B, P, 1, 100.f, 0.f, 10, g)) return;
  compare_case(A, B, P, 1, 100.f, 0.f, 10, g, "cuda real f32/bf16 [512 x 4096 x 768]");
  Emb Q = make_emb(UNIGAP_DTYPE_F16, 2048, 512), C = make_emb(UNIGAP_DTYPE_F16, 2048, 512);
  Got h;
  if (!run_device(Q, C, C, 1, 1.f, 0.f, 5, h)) return;
  compare_case(Q, C, C, 1, 1.f, 0.f, 5, h, "cuda real f16 [2048 x 2048 x 512]");
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

CUDA_TEST("cuda/perf/similarity") {
  if (!harness::g_perf) {
    std::printf("  (timing not run: pass --perf)\n");
    return;
  }
  cudaStream_t st = static_cast<cudaStream_t>(stream());
  const auto BF = UNIGAP_DTYPE_BF16;
  unigap_status s = UNIGAP_STATUS_OK;
  {  // similarityMatrix 8192 x 8192 x 1024 bf16 (normalize, scale, bias), reps 5
    const int64_t N = 8192, M = 8192, D = 1024;
    void *a = nullptr, *b = nullptr, *out = nullptr;
    CUDA_OK(unigap_cuda_alloc((size_t)(N * D) * 2, &a));
    CUDA_OK(unigap_cuda_alloc((size_t)(M * D) * 2, &b));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * M) * 4, &out));
    if (!a || !b || !out) return;
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(a), N * D, 1);
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(b), M * D, 2);
    double ms = time_ms([&] {
      s = unigap_cuda_similarity_matrix(a, BF, N, b, BF, M, D, 1, 14.3f, -2.5f, static_cast<float *>(out), 0, stream());
    }, 5);
    CUDA_OK(s);
    gemm_row("unigap similarityMatrix (exact f32 FMA)", "8192x8192x1024", ms, 2.0 * N * M * D);
    for (void *p : {a, b, out}) CUDA_OK(unigap_cuda_free(p));
  }
  {  // topkSimilarity k = 10 on 8192 x 65536 x 1024 bf16, reps 3
    const int64_t N = 8192, M = 65536, D = 1024, K = 10;
    void *a = nullptr, *b = nullptr, *ix = nullptr, *sc = nullptr;
    CUDA_OK(unigap_cuda_alloc((size_t)(N * D) * 2, &a));
    CUDA_OK(unigap_cuda_alloc((size_t)(M * D) * 2, &b));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * K) * 4, &ix));
    CUDA_OK(unigap_cuda_alloc((size_t)(N * K) * 4, &sc));
    if (!a || !b || !ix || !sc) return;
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(a), N * D, 3);
    fill_normal_bf16<<<2048, 256, 0, st>>>(static_cast<uint16_t *>(b), M * D, 4);
    double ms = time_ms([&] {
      s = unigap_cuda_topk_similarity(a, BF, N, b, BF, M, D, K, 1, static_cast<int32_t *>(ix), static_cast<float *>(sc),
                                      0, stream());
    }, 3);
    CUDA_OK(s);
    gemm_row("unigap topkSimilarity k=10 (exact f32 FMA)", "8192x65536x1024", ms, 2.0 * N * M * D);
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
