// CUDA backend checks: device memory and streams, and every CUDA log-prob kernel against the CPU core
// (unigap_logprobs_*) on odd and real shapes, fresh random data, outputs poisoned before each call,
// every CUDA status checked; CUDA-event timing under --perf. Without a usable device the kernel tests
// are not registered: the host test below prints one "SKIPPED: no CUDA device (reason)" line per test
// instead, so a machine without a GPU never counts them as passed.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test_common.cuh"

namespace cudatest {

std::vector<std::string> &skipped() {
  static std::vector<std::string> v;
  return v;
}

bool device_ok() {
  static const bool ok = unigap_cuda_available() != 0;
  return ok;
}

std::string no_device_reason() {
  unigap_cuda_info ci;
  unigap_cuda_info_get(&ci);
  return ci.compiled ? std::string(ci.reason) : "CUDA backend not compiled in";
}

Registrar::Registrar(const char *name, std::function<void()> fn) {
  if (device_ok())
    harness::registry().push_back({name, std::move(fn)});
  else
    skipped().push_back(name);
}

bool ok(unigap_status s, const char *what, const char *file, int line) {
  harness::g_checks++;
  if (s == UNIGAP_STATUS_OK) return true;
  char buf[768];
  std::snprintf(buf, sizeof buf, "%s -> %s (%s)", what, unigap_status_name(s), unigap_cuda_last_error());
  harness::fail(file, line, buf);
  return false;
}

unigap_cuda_stream g_stream = nullptr;

unigap_cuda_stream stream() {
  if (!g_stream) unigap_cuda_stream_create(&g_stream);
  return g_stream;
}

float bits_to_float(unigap_dtype dt, const void *base, int64_t i) {
  switch (dt) {
    case UNIGAP_DTYPE_F32: return static_cast<const float *>(base)[i];
    case UNIGAP_DTYPE_BF16: return unigap_bf16_to_f32(static_cast<const uint16_t *>(base)[i]);
    default: return unigap_f16_to_f32(static_cast<const uint16_t *>(base)[i]);
  }
}

size_t dtype_size(unigap_dtype dt) { return dt == UNIGAP_DTYPE_F32 ? 4 : 2; }

const char *dtype_name(unigap_dtype dt) {
  return dt == UNIGAP_DTYPE_F32 ? "f32" : dt == UNIGAP_DTYPE_BF16 ? "bf16" : "f16";
}

// One mismatch report per array (the first few elements), one check each.
bool compare(const char *what, const double *got, const double *want, int64_t n, double rtol, double atol,
             const char *file, int line) {
  harness::g_checks++;
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    if (!harness::close(got[i], want[i], rtol, atol)) {
      if (first < 0) first = i;
      bad++;
    }
  if (!bad) return true;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: %lld of %lld differ; first [%lld] cuda %.9g vs cpu %.9g", what, (long long)bad,
                (long long)n, (long long)first, got[first], want[first]);
  harness::fail(file, line, buf);
  return false;
}

// ---------------------------------------------------------------- random problems

Problem make_problem(unigap_dtype dt, int64_t n_seq_hint, int64_t N, int64_t V, const Options &o) {
  Problem p;
  p.dt = dt;
  p.N = N;
  p.V = V;
  p.shift = o.shift;
  p.temperature = o.temperature;
  p.scale = o.scale;
  p.offset = o.offset;
  p.ignore_index = -100;
  const size_t es = dtype_size(dt);
  p.logits.resize((size_t)(N * V) * es);
  for (int64_t i = 0; i < N * V; i++) {
    float z = o.offset + harness::normal(0.f, o.scale);
    if (dt == UNIGAP_DTYPE_F32)
      reinterpret_cast<float *>(p.logits.data())[i] = z;
    else if (dt == UNIGAP_DTYPE_BF16)
      reinterpret_cast<uint16_t *>(p.logits.data())[i] = unigap_f32_to_bf16(z);
    else
      reinterpret_cast<uint16_t *>(p.logits.data())[i] = unigap_f32_to_f16(z);
  }
  p.labels.resize((size_t)N);
  for (int64_t i = 0; i < N; i++) {
    p.labels[i] = (int32_t)(harness::rng()() % (uint64_t)V);
    if (o.ignore_frac > 0 && harness::uniform(0, 1) < o.ignore_frac) p.labels[i] = p.ignore_index;
  }
  if (o.mask) {
    p.mask.resize((size_t)N);
    for (int64_t i = 0; i < N; i++) p.mask[i] = harness::uniform(0, 1) < 0.8f ? 1 : 0;
  }
  // Sequence boundaries: random cuts, plus an empty sequence when asked.
  int64_t ns = std::max<int64_t>(1, n_seq_hint);
  std::vector<int64_t> cuts;
  for (int64_t s = 1; s < ns; s++) cuts.push_back((int64_t)(harness::rng()() % (uint64_t)(N + 1)));
  std::sort(cuts.begin(), cuts.end());
  p.offsets.push_back(0);
  for (int64_t c : cuts) p.offsets.push_back(c);
  if (o.empty_seq) p.offsets.push_back(p.offsets.back());  // an empty sequence in the middle
  p.offsets.push_back(N);
  p.n_seq = (int64_t)p.offsets.size() - 1;
  p.grad_seq.resize((size_t)p.n_seq);
  for (auto &g : p.grad_seq) g = harness::uniform(-2.f, 2.f);
  p.grad_token.resize((size_t)N);
  for (auto &g : p.grad_token) g = harness::uniform(-1.f, 1.f);
  return p;
}

unigap_logprobs_args host_args(const Problem &p, Outputs &o) {
  unigap_logprobs_args a{};
  a.logits = p.logits.data();
  a.dtype = p.dt;
  a.n_tokens = p.N;
  a.vocab = p.V;
  a.labels = p.labels.data();
  a.mask = p.mask.empty() ? nullptr : p.mask.data();
  a.ignore_index = p.ignore_index;
  a.offsets = p.offsets.data();
  a.n_seq = p.n_seq;
  a.shift = p.shift;
  a.temperature = p.temperature;
  o.token_logp.assign((size_t)p.N, NAN);
  o.token_entropy.assign((size_t)p.N, NAN);
  o.token_lse.assign((size_t)p.N, NAN);
  o.token_correct.assign((size_t)p.N, 0xff);
  o.seq_sum.assign((size_t)p.n_seq, NAN);
  o.seq_count.assign((size_t)p.n_seq, -1);
  o.seq_mean.assign((size_t)p.n_seq, NAN);
  o.seq_logit_sum.assign((size_t)p.n_seq, NAN);
  a.token_logp = o.token_logp.data();
  a.token_entropy = o.token_entropy.data();
  a.token_lse = o.token_lse.data();
  a.token_correct = o.token_correct.data();
  a.seq_sum = o.seq_sum.data();
  a.seq_count = o.seq_count.data();
  a.seq_mean = o.seq_mean.data();
  a.seq_logit_sum = o.seq_logit_sum.data();
  return a;
}

DeviceProblem::~DeviceProblem() {
  for (void *p : {logits, labels, mask, offsets, token_logp, token_entropy, token_lse, token_correct, seq_sum,
                  seq_count, seq_mean, seq_logit_sum, grad_seq, grad_token, grad_out})
    unigap_cuda_free(p);
}

template <class T>
static bool upload(void **dst, const std::vector<T> &v, const char *file, int line) {
  if (v.empty()) return true;
  if (!ok(unigap_cuda_alloc(v.size() * sizeof(T), dst), "alloc", file, line)) return false;
  return ok(unigap_cuda_memcpy_h2d(*dst, v.data(), v.size() * sizeof(T), stream()), "h2d", file, line);
}

static bool poisoned(void **dst, size_t bytes, const char *file, int line) {
  if (!bytes) return true;
  if (!ok(unigap_cuda_alloc(bytes, dst), "alloc", file, line)) return false;
  return ok(unigap_cuda_memset(*dst, 0xff, bytes, stream()), "poison", file, line);  // NaN / 0xff / -1
}

bool upload_problem(const Problem &p, DeviceProblem &d) {
  const size_t N = (size_t)p.N, S = (size_t)p.n_seq;
  bool good = upload(&d.logits, p.logits, __FILE__, __LINE__) && upload(&d.labels, p.labels, __FILE__, __LINE__) &&
              upload(&d.mask, p.mask, __FILE__, __LINE__) && upload(&d.offsets, p.offsets, __FILE__, __LINE__) &&
              upload(&d.grad_seq, p.grad_seq, __FILE__, __LINE__) &&
              upload(&d.grad_token, p.grad_token, __FILE__, __LINE__) &&
              poisoned(&d.token_logp, N * 4, __FILE__, __LINE__) &&
              poisoned(&d.token_entropy, N * 4, __FILE__, __LINE__) &&
              poisoned(&d.token_lse, N * 4, __FILE__, __LINE__) &&
              poisoned(&d.token_correct, N, __FILE__, __LINE__) && poisoned(&d.seq_sum, S * 4, __FILE__, __LINE__) &&
              poisoned(&d.seq_count, S * 4, __FILE__, __LINE__) &&
              poisoned(&d.seq_mean, S * 4, __FILE__, __LINE__) &&
              poisoned(&d.seq_logit_sum, S * 8, __FILE__, __LINE__) &&
              poisoned(&d.grad_out, N * (size_t)p.V * dtype_size(p.dt), __FILE__, __LINE__);
  return good;
}

unigap_logprobs_args device_args(const Problem &p, const DeviceProblem &d) {
  unigap_logprobs_args a{};
  a.logits = d.logits;
  a.dtype = p.dt;
  a.n_tokens = p.N;
  a.vocab = p.V;
  a.labels = static_cast<const int32_t *>(d.labels);
  a.mask = static_cast<const uint8_t *>(d.mask);
  a.ignore_index = p.ignore_index;
  a.offsets = static_cast<const int64_t *>(d.offsets);
  a.n_seq = p.n_seq;
  a.shift = p.shift;
  a.temperature = p.temperature;
  a.token_logp = static_cast<float *>(d.token_logp);
  a.token_entropy = static_cast<float *>(d.token_entropy);
  a.token_lse = static_cast<float *>(d.token_lse);
  a.token_correct = static_cast<uint8_t *>(d.token_correct);
  a.seq_sum = static_cast<float *>(d.seq_sum);
  a.seq_count = static_cast<int32_t *>(d.seq_count);
  a.seq_mean = static_cast<float *>(d.seq_mean);
  a.seq_logit_sum = static_cast<double *>(d.seq_logit_sum);
  return a;
}

template <class T>
static std::vector<double> fetch(const void *dev, size_t n) {
  std::vector<T> h(n);
  if (n) ok(unigap_cuda_memcpy_d2h(h.data(), dev, n * sizeof(T), stream()), "d2h", __FILE__, __LINE__);
  return std::vector<double>(h.begin(), h.end());
}
template <class T>
static std::vector<double> widen(const std::vector<T> &v) {
  return std::vector<double>(v.begin(), v.end());
}

std::vector<double> grad_values(unigap_dtype dt, const void *host, int64_t n) {
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = bits_to_float(dt, host, i);
  return v;
}

std::vector<double> fetch_grad(const Problem &p, const void *dev) {
  std::vector<uint8_t> h((size_t)(p.N * p.V) * dtype_size(p.dt));
  if (!h.empty()) ok(unigap_cuda_memcpy_d2h(h.data(), dev, h.size(), stream()), "d2h grad", __FILE__, __LINE__);
  return grad_values(p.dt, h.data(), p.N * p.V);
}

double grad_rtol(unigap_dtype dt) { return dt == UNIGAP_DTYPE_F32 ? 2e-4 : dt == UNIGAP_DTYPE_F16 ? 2e-3 : 1.6e-2; }

void compare_outputs(const Problem &p, const Outputs &got, const Outputs &cpu, const char *tag) {
  const double vt = std::max(1.0, std::log((double)p.V));  // LSE-sized absolute slack
  std::string t(tag);
  compare((t + " token_logp").c_str(), widen(got.token_logp).data(), widen(cpu.token_logp).data(), p.N, 2e-5,
          2e-5 * vt * std::max(1.f, 1.f / p.temperature), __FILE__, __LINE__);
  compare((t + " token_lse").c_str(), widen(got.token_lse).data(), widen(cpu.token_lse).data(), p.N, 2e-5, 2e-5 * vt,
          __FILE__, __LINE__);
  compare((t + " token_entropy").c_str(), widen(got.token_entropy).data(), widen(cpu.token_entropy).data(), p.N, 1e-4,
          1e-4 * vt, __FILE__, __LINE__);
  compare((t + " token_correct").c_str(), widen(got.token_correct).data(), widen(cpu.token_correct).data(), p.N, 0, 0,
          __FILE__, __LINE__);
  compare((t + " seq_count").c_str(), widen(got.seq_count).data(), widen(cpu.seq_count).data(), p.n_seq, 0, 0,
          __FILE__, __LINE__);
  compare((t + " seq_sum").c_str(), widen(got.seq_sum).data(), widen(cpu.seq_sum).data(), p.n_seq, 1e-5, 1e-4 * vt,
          __FILE__, __LINE__);
  compare((t + " seq_mean").c_str(), widen(got.seq_mean).data(), widen(cpu.seq_mean).data(), p.n_seq, 1e-5, 1e-4 * vt,
          __FILE__, __LINE__);
  // The CPU tiers sum each row in fp32 (their own tiers differ by ~1e-4 relative), the GPU in fp32
  // partials widened to double: allow fp32 accumulation error of the |z| mass, far below what a
  // missing or extra row would change (~ sqrt(V) * scale).
  compare((t + " seq_logit_sum").c_str(), got.seq_logit_sum.data(), cpu.seq_logit_sum.data(), p.n_seq, 1e-5,
          4e-6 * (double)p.V * (double)std::max<int64_t>(p.N, 1) * (p.scale + std::fabs(p.offset)), __FILE__, __LINE__);
}

template <class T>
static void fetch_into(std::vector<T> &dst, const void *dev) {
  if (!dst.empty()) ok(unigap_cuda_memcpy_d2h(dst.data(), dev, dst.size() * sizeof(T), stream()), "d2h", __FILE__, __LINE__);
}

void compare_forward(const Problem &p, const Outputs &cpu, const DeviceProblem &d, const char *tag) {
  Outputs got = cpu;
  fetch_into(got.token_logp, d.token_logp);
  fetch_into(got.token_entropy, d.token_entropy);
  fetch_into(got.token_lse, d.token_lse);
  fetch_into(got.token_correct, d.token_correct);
  fetch_into(got.seq_sum, d.seq_sum);
  fetch_into(got.seq_count, d.seq_count);
  fetch_into(got.seq_mean, d.seq_mean);
  fetch_into(got.seq_logit_sum, d.seq_logit_sum);
  compare_outputs(p, got, cpu, tag);
}

}  // namespace cudatest

using namespace cudatest;

// ---------------------------------------------------------------- host-side checks (always run)

UNIGAP_TEST("cuda/host_checks") {
  if (!device_ok()) {
    const std::string why = no_device_reason();
    for (const auto &name : skipped()) std::printf("SKIPPED: no CUDA device (%s): %s\n", why.c_str(), name.c_str());
    // The "no device" paths answer DEVICE_UNAVAILABLE with a reason, never crash.
    void *p = reinterpret_cast<void *>(0x1);
    CHECK(unigap_cuda_alloc(64, &p) == UNIGAP_STATUS_DEVICE_UNAVAILABLE);
    CHECK(p == nullptr);
    CHECK(std::strlen(unigap_cuda_last_error()) > 0);
    unigap_cuda_stream st = reinterpret_cast<unigap_cuda_stream>(0x1);
    CHECK(unigap_cuda_stream_create(&st) == UNIGAP_STATUS_DEVICE_UNAVAILABLE);
    CHECK(st == nullptr);
    CHECK(unigap_cuda_free(nullptr) == UNIGAP_STATUS_OK);
    CHECK(unigap_cuda_available() == 0);
    int is_dev = 7, dev = 7;
    CHECK(unigap_cuda_pointer_info(&dev, &is_dev, &dev) == UNIGAP_STATUS_DEVICE_UNAVAILABLE);
    CHECK(is_dev == 0);
  }
  // Argument checks come first and need no device (and behave the same with one).
  Options o;
  Problem pr = make_problem(UNIGAP_DTYPE_F32, 2, 5, 11, o);
  Outputs out;
  unigap_logprobs_args a = host_args(pr, out);
  const unigap_status dev_status = device_ok() ? UNIGAP_STATUS_INVALID_ARGUMENT : UNIGAP_STATUS_DEVICE_UNAVAILABLE;
  CHECK(unigap_cuda_logprobs_forward(nullptr, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  unigap_logprobs_args b = a;
  b.dtype = UNIGAP_DTYPE_F64;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_UNSUPPORTED_DTYPE);
  b = a;
  b.temperature = 0.f;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b.temperature = INFINITY;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.vocab = 0;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.shift = 2;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.n_tokens = INT64_MAX / 2;
  b.vocab = 1 << 20;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.offsets = nullptr;
  CHECK(unigap_cuda_logprobs_forward(&b, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  CHECK(unigap_cuda_logprobs_backward(&a, nullptr, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  unigap_logprobs_grad g{nullptr, nullptr, nullptr, nullptr};
  CHECK(unigap_cuda_logprobs_forward_backward(&a, &g, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  // Valid arguments on HOST memory: no device -> DEVICE_UNAVAILABLE; a device -> "not device memory".
  CHECK(unigap_cuda_logprobs_forward(&a, nullptr) == dev_status);
  CHECK(std::strlen(unigap_cuda_last_error()) > 0);
  std::vector<float> grad(55);
  g.grad_out = grad.data();
  CHECK(unigap_cuda_logprobs_forward_backward(&a, &g, nullptr) == dev_status);
  // The host was never written through (outputs still poisoned).
  CHECK(std::isnan(out.token_logp[0]) && out.seq_count[0] == -1);
}

// ---------------------------------------------------------------- device memory and streams

CUDA_TEST("cuda/device/alloc_copy_stream") {
  void *z = reinterpret_cast<void *>(0x1);
  CUDA_OK(unigap_cuda_alloc(0, &z));
  CHECK(z == nullptr);
  unigap_cuda_stream st = nullptr;
  CUDA_OK(unigap_cuda_stream_create(&st));
  const size_t n = (1u << 20) + 3;  // odd byte count
  std::vector<uint8_t> h(n), back(n, 0);
  for (size_t i = 0; i < n; i++) h[i] = (uint8_t)(harness::rng()() & 0xff);
  void *a = nullptr, *b = nullptr;
  CUDA_OK(unigap_cuda_alloc(n, &a));
  CUDA_OK(unigap_cuda_alloc(n, &b));
  CUDA_OK(unigap_cuda_memcpy_h2d(a, h.data(), n, st));
  CUDA_OK(unigap_cuda_memcpy_d2d(b, a, n, st));
  CUDA_OK(unigap_cuda_memcpy_d2h(back.data(), b, n, st));
  CUDA_OK(unigap_cuda_stream_sync(st));
  CHECK(back == h);
  CUDA_OK(unigap_cuda_memset(b, 0x5a, n, st));
  CUDA_OK(unigap_cuda_memcpy_d2h(back.data(), b, n, st));
  CHECK(std::all_of(back.begin(), back.end(), [](uint8_t x) { return x == 0x5a; }));
  int is_dev = -1, dev = -2, cur = -3;
  CUDA_OK(unigap_cuda_pointer_info(a, &is_dev, &dev));
  CUDA_OK(unigap_cuda_get_device(&cur));
  CHECK(is_dev == 1 && dev == cur);
  CUDA_OK(unigap_cuda_pointer_info(h.data(), &is_dev, &dev));
  CHECK(is_dev == 0 && dev == -1);
  CUDA_OK(unigap_cuda_free(a));
  CUDA_OK(unigap_cuda_free(b));
  CUDA_OK(unigap_cuda_stream_destroy(st));
  CHECK(unigap_cuda_available() == 1);
}

// ---------------------------------------------------------------- forward vs the CPU core

namespace {

struct Shape {
  int64_t n_seq, N, V;
  Options o;
};

std::vector<Shape> shapes() {
  std::vector<Shape> v;
  Options plain;
  Options shift;
  shift.shift = 1;
  shift.ignore_frac = 0.1f;
  Options masked;
  masked.mask = true;
  masked.temperature = 0.7f;
  masked.empty_seq = true;
  Options hot;  // large logits, temperature > 1, shift and an empty sequence
  hot.scale = 12.f;
  hot.temperature = 1.9f;
  hot.shift = 1;
  hot.empty_seq = true;
  v.push_back({1, 1, 1, plain});         // V = 1
  v.push_back({3, 37, 7, shift});        // odd N, odd V: unaligned rows, warp per row
  v.push_back({4, 61, 1031, masked});    // odd V, mask, temperature, empty sequence
  v.push_back({2, 45, 4099, hot});       // block per row with misaligned rows
  v.push_back({3, 600, 32000, shift});   // a real [3, 200, 32000] batch
  Options far;  // far from zero, and cold: where the CPU's AVX-512 bf16 plain forward once went wrong
  far.offset = 150.f;
  Options cold;
  cold.offset = 12.f;
  cold.temperature = 0.1f;
  v.push_back({2, 9, 4099, far});
  v.push_back({2, 9, 4099, cold});
  return v;
}

void forward_case(unigap_dtype dt) {
  for (const Shape &sh : shapes()) {
    Problem p = make_problem(dt, sh.n_seq, sh.N, sh.V, sh.o);
    Outputs cpu;
    unigap_logprobs_args ha = host_args(p, cpu);
    CHECK(unigap_logprobs_forward(&ha) == UNIGAP_STATUS_OK);
    DeviceProblem d;
    if (!upload_problem(p, d)) return;
    unigap_logprobs_args da = device_args(p, d);
    CUDA_OK(unigap_cuda_logprobs_forward(&da, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
    char tag[96];
    std::snprintf(tag, sizeof tag, "%s [%lld x %lld] seqs %lld", dtype_name(dt), (long long)p.N, (long long)p.V,
                  (long long)p.n_seq);
    compare_forward(p, cpu, d, tag);
  }
}

// Gradients: backward with the forward's LSE, backward recomputing it, fused forward+backward,
// and in place over a copy of the logits must all equal the CPU's fused gradient.
void backward_case(unigap_dtype dt) {
  for (const Shape &sh : shapes()) {
    Problem p = make_problem(dt, sh.n_seq, sh.N, sh.V, sh.o);
    Outputs cpu;
    unigap_logprobs_args ha = host_args(p, cpu);
    std::vector<uint8_t> cpu_grad(p.logits.size(), 0xff);
    unigap_logprobs_grad hg{p.grad_seq.data(), p.grad_token.data(), nullptr, cpu_grad.data()};
    CHECK(unigap_logprobs_forward_backward(&ha, &hg) == UNIGAP_STATUS_OK);
    const std::vector<double> want = grad_values(dt, cpu_grad.data(), p.N * p.V);
    DeviceProblem d;
    if (!upload_problem(p, d)) return;
    unigap_logprobs_args da = device_args(p, d);
    char tag[96];
    std::snprintf(tag, sizeof tag, "%s [%lld x %lld]", dtype_name(dt), (long long)p.N, (long long)p.V);
    const double rt = grad_rtol(dt), at = 1e-7;
    const size_t gbytes = p.logits.size();

    // 1. fused, out of place
    unigap_logprobs_grad g{static_cast<const float *>(d.grad_seq), static_cast<const float *>(d.grad_token), nullptr,
                           d.grad_out};
    CUDA_OK(unigap_cuda_logprobs_forward_backward(&da, &g, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
    compare((std::string(tag) + " fused grad").c_str(), fetch_grad(p, d.grad_out).data(), want.data(), p.N * p.V, rt,
            at, __FILE__, __LINE__);
    compare_forward(p, cpu, d, (std::string(tag) + " fused fwd").c_str());

    // 2. backward with the LSE of the forward. The stored LSE is in natural units and goes back to
    // log2 units (x log2 e) before use, as on the CPU's base-2 tiers: that round trip leaves about an
    // ulp of |lse| in log p_y, which the label column 1 - p_y = -expm1(log p_y) turns into an absolute
    // error of |g| / tau times it near p_y = 1. Same model as the CPU tiers' test: 1e-5 |g| / tau.
    CUDA_OK(unigap_cuda_memset(d.grad_out, 0xff, gbytes, stream()));
    g.token_lse = static_cast<const float *>(d.token_lse);
    CUDA_OK(unigap_cuda_logprobs_backward(&da, &g, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
    double gmax = 0;
    for (int64_t s = 0; s < p.n_seq; s++)
      for (int64_t t = p.offsets[(size_t)s]; t < p.offsets[(size_t)s + 1]; t++)
        gmax = std::max(gmax, std::fabs((double)p.grad_seq[(size_t)s] + (double)p.grad_token[(size_t)t]) / p.temperature);
    compare((std::string(tag) + " backward(lse)").c_str(), fetch_grad(p, d.grad_out).data(), want.data(), p.N * p.V,
            rt, at + 1e-5 * gmax, __FILE__, __LINE__);

    // 3. backward recomputing the LSE
    CUDA_OK(unigap_cuda_memset(d.grad_out, 0xff, gbytes, stream()));
    g.token_lse = nullptr;
    CUDA_OK(unigap_cuda_logprobs_backward(&da, &g, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
    compare((std::string(tag) + " backward(recompute)").c_str(), fetch_grad(p, d.grad_out).data(), want.data(),
            p.N * p.V, rt, at, __FILE__, __LINE__);

    // 4. in place: grad_out aliases (a copy of) the logits
    CUDA_OK(unigap_cuda_memcpy_d2d(d.grad_out, d.logits, gbytes, stream()));
    unigap_logprobs_args ip = da;
    ip.logits = d.grad_out;
    CUDA_OK(unigap_cuda_logprobs_forward_backward(&ip, &g, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
    compare((std::string(tag) + " in-place grad").c_str(), fetch_grad(p, d.grad_out).data(), want.data(), p.N * p.V,
            rt, at, __FILE__, __LINE__);
  }
}

}  // namespace

// ---------------------------------------------------------------- the kernels' row code on the host
// logprobs_emulate replays the CUDA row code (same phases, same lane split, same reduction order)
// on the host; comparing it with the CPU core tests the kernels' math and index logic on every
// machine, GPU or not. It cannot test what only a GPU does (shuffles, barriers, the launch).
namespace unigap_cuda {
unigap_status logprobs_emulate(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode);
}

namespace {
void emulated_case(unigap_dtype dt) {
  for (const Shape &sh : shapes()) {
    Problem p = make_problem(dt, sh.n_seq, sh.N, sh.V, sh.o);
    Outputs cpu;
    unigap_logprobs_args ha = host_args(p, cpu);
    std::vector<uint8_t> cpu_grad(p.logits.size(), 0xff);
    unigap_logprobs_grad hg{p.grad_seq.data(), p.grad_token.data(), nullptr, cpu_grad.data()};
    CHECK(unigap_logprobs_forward_backward(&ha, &hg) == UNIGAP_STATUS_OK);
    const std::vector<double> want = grad_values(dt, cpu_grad.data(), p.N * p.V);
    char tag[96];
    std::snprintf(tag, sizeof tag, "emulated %s [%lld x %lld] seqs %lld", dtype_name(dt), (long long)p.N,
                  (long long)p.V, (long long)p.n_seq);
    const std::string t(tag);
    const double rt = grad_rtol(dt), at = 1e-7;

    Outputs fo;  // forward only
    unigap_logprobs_args fa = host_args(p, fo);
    CHECK(unigap_cuda::logprobs_emulate(&fa, nullptr, 0) == UNIGAP_STATUS_OK);
    compare_outputs(p, fo, cpu, (t + " forward").c_str());

    Outputs eo;  // fused, out of place
    unigap_logprobs_args ea = host_args(p, eo);
    std::vector<uint8_t> g1(p.logits.size(), 0xff);
    unigap_logprobs_grad eg{p.grad_seq.data(), p.grad_token.data(), nullptr, g1.data()};
    CHECK(unigap_cuda::logprobs_emulate(&ea, &eg, 2) == UNIGAP_STATUS_OK);
    compare_outputs(p, eo, cpu, (t + " fused").c_str());
    compare((t + " fused grad").c_str(), grad_values(dt, g1.data(), p.N * p.V).data(), want.data(), p.N * p.V, rt, at,
            __FILE__, __LINE__);

    std::fill(g1.begin(), g1.end(), 0xff);  // backward with the forward's LSE
    eg.token_lse = eo.token_lse.data();
    CHECK(unigap_cuda::logprobs_emulate(&ea, &eg, 1) == UNIGAP_STATUS_OK);
    compare((t + " backward(lse)").c_str(), grad_values(dt, g1.data(), p.N * p.V).data(), want.data(), p.N * p.V, rt,
            at, __FILE__, __LINE__);

    std::fill(g1.begin(), g1.end(), 0xff);  // backward recomputing it
    eg.token_lse = nullptr;
    CHECK(unigap_cuda::logprobs_emulate(&ea, &eg, 1) == UNIGAP_STATUS_OK);
    compare((t + " backward(recompute)").c_str(), grad_values(dt, g1.data(), p.N * p.V).data(), want.data(),
            p.N * p.V, rt, at, __FILE__, __LINE__);

    std::vector<uint8_t> inplace = p.logits;  // in place over a copy of the logits
    unigap_logprobs_args ia = ea;
    ia.logits = inplace.data();
    unigap_logprobs_grad ig{p.grad_seq.data(), p.grad_token.data(), nullptr, inplace.data()};
    CHECK(unigap_cuda::logprobs_emulate(&ia, &ig, 2) == UNIGAP_STATUS_OK);
    compare((t + " in-place grad").c_str(), grad_values(dt, inplace.data(), p.N * p.V).data(), want.data(), p.N * p.V,
            rt, at, __FILE__, __LINE__);
  }
}
}  // namespace

UNIGAP_TEST("cuda/emulated/logprobs_f32") { emulated_case(UNIGAP_DTYPE_F32); }
UNIGAP_TEST("cuda/emulated/logprobs_bf16") { emulated_case(UNIGAP_DTYPE_BF16); }
UNIGAP_TEST("cuda/emulated/logprobs_f16") { emulated_case(UNIGAP_DTYPE_F16); }

UNIGAP_TEST("cuda/emulated/nan_inf_and_edge_rows") {
  Options o;
  Problem p = make_problem(UNIGAP_DTYPE_F32, 1, 6, 300, o);
  float *z = reinterpret_cast<float *>(p.logits.data());
  z[0 * 300 + 17] = NAN;
  for (int v = 0; v < 300; v += 3) z[1 * 300 + v] = -INFINITY;
  p.labels[1] = 1;
  for (int v = 0; v < 300; v++) z[2 * 300 + v] = -INFINITY;
  Outputs cpu, emu;
  unigap_logprobs_args ha = host_args(p, cpu), ea = host_args(p, emu);
  CHECK(unigap_logprobs_forward(&ha) == UNIGAP_STATUS_OK);
  CHECK(unigap_cuda::logprobs_emulate(&ea, nullptr, 0) == UNIGAP_STATUS_OK);
  CHECK(std::isnan(emu.token_logp[0]) && std::isfinite(emu.token_logp[1]) && std::isnan(emu.token_logp[2]));
  compare_outputs(p, emu, cpu, "emulated nan/inf rows");
  // A label outside [0, V): NaN row, no out-of-bounds read (ASan builds would catch one).
  Problem q = make_problem(UNIGAP_DTYPE_BF16, 1, 4, 64, o);
  q.labels = {3, 64 + 1000000, 5, -7};
  Outputs qo;
  unigap_logprobs_args qa = host_args(q, qo);
  std::vector<uint8_t> qg(q.logits.size());
  unigap_logprobs_grad qgr{nullptr, q.grad_token.data(), nullptr, qg.data()};
  CHECK(unigap_cuda::logprobs_emulate(&qa, &qgr, 2) == UNIGAP_STATUS_OK);
  CHECK(std::isfinite(qo.token_logp[0]) && std::isnan(qo.token_logp[1]) && std::isfinite(qo.token_logp[2]) &&
        std::isnan(qo.token_logp[3]));
  // N = 0 with two empty sequences: zeros.
  Problem e = make_problem(UNIGAP_DTYPE_F32, 1, 0, 5, o);
  e.offsets = {0, 0, 0};
  e.n_seq = 2;
  Outputs eo;
  unigap_logprobs_args zea = host_args(e, eo);
  CHECK(unigap_cuda::logprobs_emulate(&zea, nullptr, 0) == UNIGAP_STATUS_OK);
  CHECK(eo.seq_sum[0] == 0 && eo.seq_count[1] == 0 && eo.seq_mean[1] == 0 && eo.seq_logit_sum[0] == 0);
}

CUDA_TEST("cuda/logprobs/forward_f32") { forward_case(UNIGAP_DTYPE_F32); }
CUDA_TEST("cuda/logprobs/forward_bf16") { forward_case(UNIGAP_DTYPE_BF16); }
CUDA_TEST("cuda/logprobs/forward_f16") { forward_case(UNIGAP_DTYPE_F16); }
CUDA_TEST("cuda/logprobs/backward_f32") { backward_case(UNIGAP_DTYPE_F32); }
CUDA_TEST("cuda/logprobs/backward_bf16") { backward_case(UNIGAP_DTYPE_BF16); }
CUDA_TEST("cuda/logprobs/backward_f16") { backward_case(UNIGAP_DTYPE_F16); }

CUDA_TEST("cuda/logprobs/nan_and_inf_rows") {
  Options o;
  Problem p = make_problem(UNIGAP_DTYPE_F32, 1, 6, 300, o);
  float *z = reinterpret_cast<float *>(p.logits.data());
  z[0 * 300 + 17] = NAN;                                 // row 0: NaN -> NaN outputs
  for (int v = 0; v < 300; v += 3) z[1 * 300 + v] = -INFINITY;  // row 1: some -inf -> finite
  p.labels[1] = 1;
  for (int v = 0; v < 300; v++) z[2 * 300 + v] = -INFINITY;  // row 2: all -inf -> NaN
  for (auto &l : p.labels) l = l == p.ignore_index ? 0 : l;
  Outputs cpu;
  unigap_logprobs_args ha = host_args(p, cpu);
  CHECK(unigap_logprobs_forward(&ha) == UNIGAP_STATUS_OK);
  DeviceProblem d;
  if (!upload_problem(p, d)) return;
  unigap_logprobs_args da = device_args(p, d);
  CUDA_OK(unigap_cuda_logprobs_forward(&da, stream()));
  CUDA_OK(unigap_cuda_stream_sync(stream()));
  std::vector<double> lp = fetch<float>(d.token_logp, 6);
  CHECK(std::isnan(lp[0]));
  CHECK(std::isfinite(lp[1]));
  CHECK(std::isnan(lp[2]));
  CHECK(std::isfinite(lp[3]) && std::isfinite(lp[5]));
  compare_forward(p, cpu, d, "nan/inf rows");
}

CUDA_TEST("cuda/logprobs/empty_batch_and_bad_label") {
  // N = 0 with two (empty) sequences: zeros, not NaN.
  Options o;
  Problem p = make_problem(UNIGAP_DTYPE_F32, 1, 0, 5, o);
  p.offsets = {0, 0, 0};
  p.n_seq = 2;
  DeviceProblem d;
  if (!upload_problem(p, d)) return;
  unigap_logprobs_args da = device_args(p, d);
  CUDA_OK(unigap_cuda_logprobs_forward(&da, stream()));
  CUDA_OK(unigap_cuda_stream_sync(stream()));
  std::vector<double> s = fetch<float>(d.seq_sum, 2), c = fetch<int32_t>(d.seq_count, 2), m = fetch<float>(d.seq_mean, 2);
  CHECK(s[0] == 0 && s[1] == 0 && c[0] == 0 && c[1] == 0 && m[0] == 0 && m[1] == 0);

  // A label outside [0, V) that reached the device (the facade's bug): NaN row, no out-of-bounds read.
  Problem q = make_problem(UNIGAP_DTYPE_BF16, 1, 4, 64, o);
  q.labels = {3, 64 + 1000000, 5, -7};
  DeviceProblem e;
  if (!upload_problem(q, e)) return;
  unigap_logprobs_args ea = device_args(q, e);
  unigap_logprobs_grad g{nullptr, static_cast<const float *>(e.grad_token), nullptr, e.grad_out};
  CUDA_OK(unigap_cuda_logprobs_forward_backward(&ea, &g, stream()));
  CUDA_OK(unigap_cuda_stream_sync(stream()));
  std::vector<double> lp = fetch<float>(e.token_logp, 4);
  CHECK(std::isfinite(lp[0]) && std::isnan(lp[1]) && std::isfinite(lp[2]) && std::isnan(lp[3]));
}

// ---------------------------------------------------------------- 64-bit offsets

// Random bf16 logits in [-4, 4) from a hash of the index (fast fills of multi-GB buffers).
static __global__ void fill_bf16(uint16_t *x, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull + seed;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const float u = (float)(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    const float z = (u - 0.5f) * 8.f;
    x[i] = __bfloat16_as_ushort(__float2bfloat16_rn(z));
  }
}

CUDA_TEST("cuda/logprobs/offsets_beyond_2pow31") {
  // N * V > 2^31 elements: the last rows start past 2^31 (bf16: 4.3 GB). The last rows are checked
  // against the CPU core run on just those rows.
  const int64_t V = 128256, N = 16800, K = 4;
  const int64_t total = N * V;
  CHECK(total > (int64_t(1) << 31));
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  if (free_b < (size_t)total * 2 + (size_t(1) << 30)) {
    std::printf("  (skipped inside: %zu MB free is too little for %lld MB)\n", free_b >> 20, (long long)(total * 2 >> 20));
    return;
  }
  void *logits = nullptr, *labels = nullptr, *offsets = nullptr, *logp = nullptr, *lse = nullptr;
  CUDA_OK(unigap_cuda_alloc((size_t)total * 2, &logits));
  CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &labels));
  CUDA_OK(unigap_cuda_alloc(16, &offsets));
  CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &logp));
  CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &lse));
  fill_bf16<<<4096, 256, 0, static_cast<cudaStream_t>(stream())>>>(static_cast<uint16_t *>(logits), total, 42);
  CUDA_OK(cudaGetLastError() == cudaSuccess ? UNIGAP_STATUS_OK : UNIGAP_STATUS_DEVICE_ERROR);
  std::vector<int32_t> lab((size_t)N);
  for (auto &l : lab) l = (int32_t)(harness::rng()() % (uint64_t)V);
  const int64_t off[2] = {0, N};
  CUDA_OK(unigap_cuda_memcpy_h2d(labels, lab.data(), lab.size() * 4, stream()));
  CUDA_OK(unigap_cuda_memcpy_h2d(offsets, off, sizeof off, stream()));
  CUDA_OK(unigap_cuda_memset(logp, 0xff, (size_t)N * 4, stream()));
  unigap_logprobs_args a{};
  a.logits = logits;
  a.dtype = UNIGAP_DTYPE_BF16;
  a.n_tokens = N;
  a.vocab = V;
  a.labels = static_cast<int32_t *>(labels);
  a.ignore_index = -100;
  a.offsets = static_cast<int64_t *>(offsets);
  a.n_seq = 1;
  a.temperature = 1.f;
  a.token_logp = static_cast<float *>(logp);
  a.token_lse = static_cast<float *>(lse);
  CUDA_OK(unigap_cuda_logprobs_forward(&a, stream()));
  // In-place gradient of the last K rows only matters here; run the full fused pass over the buffer.
  unigap_logprobs_grad g{nullptr, nullptr, nullptr, logits};
  std::vector<uint16_t> rows((size_t)(K * V));
  CUDA_OK(unigap_cuda_memcpy_d2h(rows.data(), static_cast<uint16_t *>(logits) + (N - K) * V, rows.size() * 2, stream()));
  std::vector<float> got = [&] {
    std::vector<float> h((size_t)N);
    unigap_cuda_memcpy_d2h(h.data(), logp, h.size() * 4, stream());
    return h;
  }();
  std::vector<float> grad_seq_one = {1.f};
  void *gs = nullptr;
  CUDA_OK(unigap_cuda_alloc(4, &gs));
  CUDA_OK(unigap_cuda_memcpy_h2d(gs, grad_seq_one.data(), 4, stream()));
  g.grad_seq = static_cast<const float *>(gs);
  a.token_logp = nullptr;
  a.token_lse = nullptr;
  CUDA_OK(unigap_cuda_logprobs_forward_backward(&a, &g, stream()));
  std::vector<uint16_t> grows((size_t)(K * V));
  CUDA_OK(unigap_cuda_memcpy_d2h(grows.data(), static_cast<uint16_t *>(logits) + (N - K) * V, grows.size() * 2, stream()));
  CUDA_OK(unigap_cuda_stream_sync(stream()));

  // CPU core on the last K rows.
  unigap_logprobs_args h{};
  std::vector<float> want(K), wlse(K);
  std::vector<int64_t> hoff = {0, K};
  std::vector<uint16_t> hgrad((size_t)(K * V));
  h.logits = rows.data();
  h.dtype = UNIGAP_DTYPE_BF16;
  h.n_tokens = K;
  h.vocab = V;
  h.labels = lab.data() + (N - K);
  h.ignore_index = -100;
  h.offsets = hoff.data();
  h.n_seq = 1;
  h.temperature = 1.f;
  h.token_logp = want.data();
  unigap_logprobs_grad hg{grad_seq_one.data(), nullptr, nullptr, hgrad.data()};
  CHECK(unigap_logprobs_forward_backward(&h, &hg) == UNIGAP_STATUS_OK);
  for (int64_t k = 0; k < K; k++) CHECK_CLOSE(got[(size_t)(N - K + k)], want[(size_t)k], 2e-5, 3e-4);
  compare("2^31 grad rows", grad_values(UNIGAP_DTYPE_BF16, grows.data(), K * V).data(),
          grad_values(UNIGAP_DTYPE_BF16, hgrad.data(), K * V).data(), K * V, 1.6e-2, 1e-7, __FILE__, __LINE__);
  for (void *p : {logits, labels, offsets, logp, lse, gs}) CUDA_OK(unigap_cuda_free(p));
}

// ---------------------------------------------------------------- perf (--perf)

double g_copy_gbps = 0;  // read+write bytes / s of a D2D copy (the bandwidth the targets refer to)

void perf_row(const char *name, const char *dt, const char *shape, double ms, double bytes) {
  const double gbps = bytes / (ms * 1e-3) / 1e9;
  std::printf("PERF|%s|%s|%s|%.4f|%.1f|%.1f\n", name, dt, shape, ms, gbps, g_copy_gbps > 0 ? 100.0 * gbps / g_copy_gbps : 0.0);
  std::fflush(stdout);
}

CUDA_TEST("cuda/perf/copy_bandwidth") {
  if (!harness::g_perf) {
    std::printf("  (timing not run: pass --perf)\n");
    return;
  }
  const size_t bytes = size_t(2) << 30;
  void *a = nullptr, *b = nullptr;
  CUDA_OK(unigap_cuda_alloc(bytes, &a));
  CUDA_OK(unigap_cuda_alloc(bytes, &b));
  CUDA_OK(unigap_cuda_memset(a, 1, bytes, stream()));
  double ms = time_ms([&] { unigap_cuda_memcpy_d2d(b, a, bytes, stream()); }, 9);
  g_copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
  std::printf("PERF|copy_d2d (read+write)|bytes|%zu MiB|%.4f|%.1f|100.0\n", bytes >> 20, ms, g_copy_gbps);
  CUDA_OK(unigap_cuda_free(a));
  CUDA_OK(unigap_cuda_free(b));
}

CUDA_TEST("cuda/perf/logprobs") {
  if (!harness::g_perf) {
    std::printf("  (timing not run: pass --perf)\n");
    return;
  }
  const int64_t N = 16384, V = 128256, S = 16;  // 16 sequences of 1024 tokens
  for (unigap_dtype dt : {UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F32}) {
    const size_t es = dtype_size(dt), bytes = (size_t)(N * V) * es;
    void *logits = nullptr, *grad = nullptr, *labels = nullptr, *offsets = nullptr, *logp = nullptr, *lse = nullptr,
         *ssum = nullptr, *scnt = nullptr, *gs = nullptr;
    CUDA_OK(unigap_cuda_alloc(bytes, &logits));
    CUDA_OK(unigap_cuda_alloc(bytes, &grad));
    CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &labels));
    CUDA_OK(unigap_cuda_alloc((size_t)(S + 1) * 8, &offsets));
    CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &logp));
    CUDA_OK(unigap_cuda_alloc((size_t)N * 4, &lse));
    CUDA_OK(unigap_cuda_alloc((size_t)S * 4, &ssum));
    CUDA_OK(unigap_cuda_alloc((size_t)S * 4, &scnt));
    CUDA_OK(unigap_cuda_alloc((size_t)S * 4, &gs));
    if (!logits || !grad) return;
    // Random logits in [-4, 4): bf16 directly; for f32 the same fill over twice as many halves makes
    // floats whose high half is such a bf16 value (the low half only perturbs the mantissa).
    fill_bf16<<<4096, 256, 0, static_cast<cudaStream_t>(stream())>>>(static_cast<uint16_t *>(grad), N * V, 7);
    if (dt == UNIGAP_DTYPE_BF16) {
      CUDA_OK(unigap_cuda_memcpy_d2d(logits, grad, bytes, stream()));
    } else {
      fill_bf16<<<4096, 256, 0, static_cast<cudaStream_t>(stream())>>>(static_cast<uint16_t *>(logits), N * V * 2, 7);
    }
    std::vector<int32_t> lab((size_t)N);
    for (auto &l : lab) l = (int32_t)(harness::rng()() % (uint64_t)V);
    std::vector<int64_t> off((size_t)S + 1);
    for (int64_t s = 0; s <= S; s++) off[(size_t)s] = s * (N / S);
    std::vector<float> g1((size_t)S, 0.5f);
    CUDA_OK(unigap_cuda_memcpy_h2d(labels, lab.data(), lab.size() * 4, stream()));
    CUDA_OK(unigap_cuda_memcpy_h2d(offsets, off.data(), off.size() * 8, stream()));
    CUDA_OK(unigap_cuda_memcpy_h2d(gs, g1.data(), g1.size() * 4, stream()));
    unigap_logprobs_args a{};
    a.logits = logits;
    a.dtype = dt;
    a.n_tokens = N;
    a.vocab = V;
    a.labels = static_cast<int32_t *>(labels);
    a.ignore_index = -100;
    a.offsets = static_cast<int64_t *>(offsets);
    a.n_seq = S;
    a.temperature = 1.f;
    a.token_logp = static_cast<float *>(logp);
    a.token_lse = static_cast<float *>(lse);
    a.seq_sum = static_cast<float *>(ssum);
    a.seq_count = static_cast<int32_t *>(scnt);
    const char *dn = dtype_name(dt);
    const char *shape = "16384x128256";
    unigap_status st = UNIGAP_STATUS_OK;
    double f = time_ms([&] { st = unigap_cuda_logprobs_forward(&a, stream()); });
    CUDA_OK(st);
    perf_row("unigap forward", dn, shape, f, (double)bytes);
    unigap_logprobs_grad g{static_cast<const float *>(gs), nullptr, nullptr, grad};
    double fb = time_ms([&] { st = unigap_cuda_logprobs_forward_backward(&a, &g, stream()); });
    CUDA_OK(st);
    perf_row("unigap fwd+bwd fused (out of place)", dn, shape, fb, 2.0 * bytes);
    g.token_lse = static_cast<const float *>(lse);
    double b = time_ms([&] { st = unigap_cuda_logprobs_backward(&a, &g, stream()); });
    CUDA_OK(st);
    perf_row("unigap backward (stored lse)", dn, shape, b, 2.0 * bytes);
    g.token_lse = nullptr;
    // In place: every run overwrites the logits with gradients (values change, the work does not).
    unigap_logprobs_grad gi{static_cast<const float *>(gs), nullptr, nullptr, logits};
    double fbi = time_ms([&] { st = unigap_cuda_logprobs_forward_backward(&a, &gi, stream()); });
    CUDA_OK(st);
    perf_row("unigap fwd+bwd fused (in place)", dn, shape, fbi, 2.0 * bytes);
    std::printf("PERF_RATIO|%s|fwd+bwd/forward|%.3f|in-place %.3f|target <= 2.2\n", dn, fb / f, fbi / f);
    perf_dpo_from_logits(a, grad, dn, shape, f, fb, (double)bytes);
    for (void *p : {logits, grad, labels, offsets, logp, lse, ssum, scnt, gs}) CUDA_OK(unigap_cuda_free(p));
  }
}
