// Shared pieces of the CUDA harness tests (test_cuda_*.cu): device-gated registration, status checks
// that print the CUDA error text, random log-prob problems and their host / device buffers.
#ifndef UNIGAP_TESTS_CUDA_TEST_COMMON_CUH
#define UNIGAP_TESTS_CUDA_TEST_COMMON_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "harness.h"
#include "unigap/common.h"
#include "unigap/cuda.h"
#include "unigap/half.h"
#include "unigap/logprobs.h"

namespace cudatest {

bool device_ok();
std::string no_device_reason();
std::vector<std::string> &skipped();

// Registers the test only when a CUDA device is usable; otherwise records it as skipped (reported by
// "cuda/host_checks", never counted as passed).
struct Registrar {
  Registrar(const char *name, std::function<void()> fn);
};

bool ok(unigap_status s, const char *what, const char *file, int line);
unigap_cuda_stream stream();  // one non-blocking stream shared by the tests

bool compare(const char *what, const double *got, const double *want, int64_t n, double rtol, double atol,
             const char *file, int line);

struct Options {
  int shift = 0;
  float temperature = 1.f;
  float ignore_frac = 0.f;
  bool mask = false;
  bool empty_seq = false;
  float scale = 3.f;   // logits ~ N(offset, scale)
  float offset = 0.f;
};

struct Problem {
  unigap_dtype dt;
  int64_t N = 0, V = 1, n_seq = 1;
  int shift = 0;
  float temperature = 1.f;
  float scale = 3.f, offset = 0.f;
  int32_t ignore_index = -100;
  std::vector<uint8_t> logits;  // raw bytes of dtype
  std::vector<int32_t> labels;
  std::vector<uint8_t> mask;
  std::vector<int64_t> offsets;
  std::vector<float> grad_seq, grad_token;
};

struct Outputs {
  std::vector<float> token_logp, token_entropy, token_lse, seq_sum, seq_mean;
  std::vector<uint8_t> token_correct;
  std::vector<int32_t> seq_count;
  std::vector<double> seq_logit_sum;
};

struct DeviceProblem {
  void *logits = nullptr, *labels = nullptr, *mask = nullptr, *offsets = nullptr;
  void *token_logp = nullptr, *token_entropy = nullptr, *token_lse = nullptr, *token_correct = nullptr;
  void *seq_sum = nullptr, *seq_count = nullptr, *seq_mean = nullptr, *seq_logit_sum = nullptr;
  void *grad_seq = nullptr, *grad_token = nullptr, *grad_out = nullptr;
  DeviceProblem() = default;
  DeviceProblem(const DeviceProblem &) = delete;
  DeviceProblem &operator=(const DeviceProblem &) = delete;
  ~DeviceProblem();
};

Problem make_problem(unigap_dtype dt, int64_t n_seq_hint, int64_t N, int64_t V, const Options &o);
unigap_logprobs_args host_args(const Problem &p, Outputs &o);  // all outputs, poisoned
bool upload_problem(const Problem &p, DeviceProblem &d);       // outputs poisoned on the device
unigap_logprobs_args device_args(const Problem &p, const DeviceProblem &d);
std::vector<double> grad_values(unigap_dtype dt, const void *host, int64_t n);
std::vector<double> fetch_grad(const Problem &p, const void *dev);
double grad_rtol(unigap_dtype dt);
size_t dtype_size(unigap_dtype dt);
const char *dtype_name(unigap_dtype dt);

// Median of `reps` runs of fn (after one warm-up), in ms, timed with CUDA events on the test stream.
template <class F>
double time_ms(F &&fn, int reps = 7) {
  cudaStream_t st = static_cast<cudaStream_t>(stream());
  fn();
  cudaStreamSynchronize(st);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<double> t;
  for (int r = 0; r < reps; r++) {
    cudaEventRecord(a, st);
    fn();
    cudaEventRecord(b, st);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace cudatest

// Defined in test_cuda_logprobs.cu / test_cuda_dpo.cu (perf mode).
extern double g_copy_gbps;
void perf_row(const char *name, const char *dt, const char *shape, double ms, double bytes);
void perf_dpo_from_logits(const unigap_logprobs_args &a, void *grad, const char *dt, const char *shape,
                          double fwd_ms, double fwdbwd_ms, double bytes);

#define CUDA_TEST(name)                                                                                  \
  static void UNIGAP_CAT(cuda_test_fn_, __LINE__)();                                                     \
  static cudatest::Registrar UNIGAP_CAT(cuda_test_reg_, __LINE__)(name, UNIGAP_CAT(cuda_test_fn_, __LINE__)); \
  static void UNIGAP_CAT(cuda_test_fn_, __LINE__)()

#define CUDA_OK(expr) cudatest::ok((expr), #expr, __FILE__, __LINE__)

#endif
