// CUDA DPO checks: the fused DPO-from-logits path against the composed CPU path the DPO issue names
// (CPU logprobs forward -> unigap_dpo_loss -> CPU logprobs backward), dpoLoss on device arrays against
// unigap_dpo_loss, and the generic sequence-loss hook. Host-side argument checks always run.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_test_common.cuh"
#include "unigap/dpo.h"

using namespace cudatest;

namespace unigap_cuda {
unigap_status dpo_from_logits_emulate(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                      double *policy_chosen_out, double *policy_rejected_out,
                                      int32_t *chosen_tokens_out, int32_t *rejected_tokens_out,
                                      unigap_dpo_logit_metrics *metrics);
unigap_status seq_loss_emulate(const unigap_logprobs_args *a, unigap_cuda_seq_loss_fn loss_fn, void *ctx,
                               void *grad_out);
}

namespace {

struct DpoOpts {
  std::vector<int32_t> types;
  std::vector<double> weights;
  double beta = 0.1;
};

unigap_dpo_args dpo_args(int64_t B, const std::vector<double> &ref, const DpoOpts &o) {
  unigap_dpo_args d{};
  d.n_pairs = B;
  d.reference_chosen = ref.data();
  d.reference_rejected = ref.data() + B;
  d.n_losses = (int32_t)o.types.size();
  d.loss_types = o.types.data();
  d.loss_weights = o.weights.empty() ? nullptr : o.weights.data();
  d.beta = o.beta;
  d.label_smoothing = 0.0;
  d.discopop_tau = 0.05;
  d.f_divergence = UNIGAP_DPO_FDIV_REVERSE_KL;
  d.alpha = 1.0;
  return d;
}

struct DpoOut {
  double loss = NAN, acc = NAN;
  std::vector<double> losses, cr, rr, margins, gc, gr;
  explicit DpoOut(int64_t B)
      : losses(B, NAN), cr(B, NAN), rr(B, NAN), margins(B, NAN), gc(B, NAN), gr(B, NAN) {}
  void wire(unigap_dpo_args &d) {
    d.loss = &loss;
    d.reward_accuracy = &acc;
    d.losses = losses.data();
    d.chosen_rewards = cr.data();
    d.rejected_rewards = rr.data();
    d.margins = margins.data();
    d.grad_chosen = gc.data();
    d.grad_rejected = gr.data();
  }
};

void from_logits_case(unigap_dtype dt, int64_t B, int64_t T, int64_t V, const DpoOpts &o, bool in_place,
                      bool emulate = false) {
  Options po;
  po.shift = 1;
  po.ignore_frac = 0.15f;
  Problem p = make_problem(dt, 1, 2 * B * T, V, po);
  p.offsets.clear();
  for (int64_t s = 0; s <= 2 * B; s++) p.offsets.push_back(s * T);
  p.n_seq = 2 * B;
  std::vector<double> ref((size_t)(2 * B));
  for (auto &r : ref) r = harness::uniform(-400.f, -200.f);

  // Composed CPU path.
  Outputs cpu;
  unigap_logprobs_args ha = host_args(p, cpu);
  CHECK(unigap_logprobs_forward(&ha) == UNIGAP_STATUS_OK);
  std::vector<double> pol((size_t)(2 * B));
  for (int64_t i = 0; i < 2 * B; i++) pol[(size_t)i] = cpu.seq_sum[(size_t)i];
  unigap_dpo_args cd = dpo_args(B, ref, o);
  cd.policy_chosen = pol.data();
  cd.policy_rejected = pol.data() + B;
  cd.chosen_tokens = cpu.seq_count.data();
  cd.rejected_tokens = cpu.seq_count.data() + B;
  DpoOut want(B);
  want.wire(cd);
  CHECK(unigap_dpo_loss(&cd) == UNIGAP_STATUS_OK);
  std::vector<float> gseq((size_t)(2 * B));
  for (int64_t i = 0; i < B; i++) {
    gseq[(size_t)i] = (float)want.gc[(size_t)i];
    gseq[(size_t)(B + i)] = (float)want.gr[(size_t)i];
  }
  std::vector<uint8_t> cpu_grad(p.logits.size(), 0xff);
  unigap_logprobs_grad hg{gseq.data(), nullptr, cpu.token_lse.data(), cpu_grad.data()};
  CHECK(unigap_logprobs_backward(&ha, &hg) == UNIGAP_STATUS_OK);
  // TRL's metrics from the CPU outputs.
  int64_t tc = 0, tr = 0;
  double lc = 0, lr = 0, es = 0, hits = 0;
  for (int64_t s = 0; s < 2 * B; s++) {
    (s < B ? tc : tr) += cpu.seq_count[(size_t)s];
    (s < B ? lc : lr) += cpu.seq_logit_sum[(size_t)s];
    for (int64_t t = p.offsets[(size_t)s]; t < p.offsets[(size_t)s + 1]; t++) {
      es += cpu.token_entropy[(size_t)t];
      if (s < B) hits += cpu.token_correct[(size_t)t];
    }
  }

  // GPU (or its host replay).
  DeviceProblem d;
  Outputs unused;
  unigap_logprobs_args da;
  std::vector<uint8_t> host_grad;
  void *grad_out = nullptr;
  if (emulate) {
    da = host_args(p, unused);
    host_grad.assign(p.logits.size(), 0xff);
    if (in_place) host_grad = p.logits;
    grad_out = host_grad.data();
    if (in_place) da.logits = host_grad.data();
  } else {
    if (!upload_problem(p, d)) return;
    da = device_args(p, d);
    grad_out = d.grad_out;
    if (in_place) {
      CUDA_OK(unigap_cuda_memcpy_d2d(d.grad_out, d.logits, p.logits.size(), stream()));
      da.logits = d.grad_out;
    }
  }
  unigap_dpo_args gd = dpo_args(B, ref, o);
  DpoOut got(B);
  got.wire(gd);
  std::vector<double> pc((size_t)B, NAN), pr((size_t)B, NAN);
  std::vector<int32_t> nc((size_t)B, -1), nr((size_t)B, -1);
  unigap_dpo_logit_metrics m;
  std::memset(&m, 0xff, sizeof m);
  if (emulate) {
    CHECK(unigap_cuda::dpo_from_logits_emulate(&da, &gd, grad_out, pc.data(), pr.data(), nc.data(), nr.data(), &m) ==
          UNIGAP_STATUS_OK);
  } else {
    CUDA_OK(unigap_cuda_dpo_from_logits(&da, &gd, grad_out, pc.data(), pr.data(), nc.data(), nr.data(), &m, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
  }

  char tag[96];
  std::snprintf(tag, sizeof tag, "%sdpo %s B=%lld T=%lld V=%lld%s", emulate ? "emulated " : "", dtype_name(dt),
                (long long)B, (long long)T, (long long)V, in_place ? " in place" : "");
  const std::string t(tag);
  const double lt = 1e-4 * T;  // sequence sums of T fp32 log-probs
  compare((t + " policy_chosen").c_str(), pc.data(), pol.data(), B, 1e-5, lt, __FILE__, __LINE__);
  compare((t + " policy_rejected").c_str(), pr.data(), pol.data() + B, B, 1e-5, lt, __FILE__, __LINE__);
  std::vector<double> wc(cpu.seq_count.begin(), cpu.seq_count.end()), gcnt(nc.begin(), nc.end()), gcnr(nr.begin(), nr.end());
  compare((t + " chosen_tokens").c_str(), gcnt.data(), wc.data(), B, 0, 0, __FILE__, __LINE__);
  compare((t + " rejected_tokens").c_str(), gcnr.data(), wc.data() + B, B, 0, 0, __FILE__, __LINE__);
  CHECK_CLOSE(got.loss, want.loss, 1e-4, 1e-5 * T);
  CHECK_CLOSE(got.acc, want.acc, 0, 0);
  compare((t + " losses").c_str(), got.losses.data(), want.losses.data(), B, 1e-4, 1e-5 * T, __FILE__, __LINE__);
  compare((t + " margins").c_str(), got.margins.data(), want.margins.data(), B, 1e-4, 1e-5 * T, __FILE__, __LINE__);
  compare((t + " grad_chosen").c_str(), got.gc.data(), want.gc.data(), B, 1e-4, 1e-6, __FILE__, __LINE__);
  compare((t + " grad_rejected").c_str(), got.gr.data(), want.gr.data(), B, 1e-4, 1e-6, __FILE__, __LINE__);
  CHECK(m.chosen_token_total == tc && m.rejected_token_total == tr);
  // Mean logits: the CPU sums rows in fp32 (see seq_logit_sum in test_cuda_logprobs.cu).
  CHECK_CLOSE(m.logits_chosen, tc ? lc / ((double)tc * V) : 0.0, 1e-4, 2e-5);
  CHECK_CLOSE(m.logits_rejected, tr ? lr / ((double)tr * V) : 0.0, 1e-4, 2e-5);
  CHECK_CLOSE(m.entropy, (tc + tr) ? es / (double)(tc + tr) : 0.0, 1e-4, 1e-5);
  CHECK_CLOSE(m.token_accuracy, tc ? hits / (double)tc : 0.0, 0, 1e-12);
  const std::vector<double> wg = grad_values(dt, cpu_grad.data(), p.N * p.V);
  const std::vector<double> gg = emulate ? grad_values(dt, host_grad.data(), p.N * p.V) : fetch_grad(p, grad_out);
  compare((t + " grad logits").c_str(), gg.data(), wg.data(), p.N * p.V, grad_rtol(dt), 1e-7, __FILE__, __LINE__);

  // Again without metrics (pass 1 then skips entropy, argmax and logit sums): the same loss, pair
  // gradients and logits gradient. In place, the logits were overwritten: restore them first.
  if (in_place) {
    if (emulate)
      host_grad = p.logits;
    else
      CUDA_OK(unigap_cuda_memcpy_h2d(d.grad_out, p.logits.data(), p.logits.size(), stream()));
  } else if (emulate) {
    host_grad.assign(p.logits.size(), 0xff);
  } else {
    CUDA_OK(unigap_cuda_memset(d.grad_out, 0xff, p.logits.size(), stream()));
  }
  unigap_dpo_args gd2 = dpo_args(B, ref, o);
  DpoOut got2(B);
  got2.wire(gd2);
  if (emulate) {
    CHECK(unigap_cuda::dpo_from_logits_emulate(&da, &gd2, grad_out, nullptr, nullptr, nullptr, nullptr, nullptr) ==
          UNIGAP_STATUS_OK);
  } else {
    CUDA_OK(unigap_cuda_dpo_from_logits(&da, &gd2, grad_out, nullptr, nullptr, nullptr, nullptr, nullptr, stream()));
    CUDA_OK(unigap_cuda_stream_sync(stream()));
  }
  CHECK_CLOSE(got2.loss, want.loss, 1e-4, 1e-5 * T);
  CHECK_CLOSE(got2.acc, want.acc, 0, 0);
  compare((t + " no metrics: losses").c_str(), got2.losses.data(), want.losses.data(), B, 1e-4, 1e-5 * T, __FILE__,
          __LINE__);
  compare((t + " no metrics: grad_chosen").c_str(), got2.gc.data(), want.gc.data(), B, 1e-4, 1e-6, __FILE__, __LINE__);
  compare((t + " no metrics: grad_rejected").c_str(), got2.gr.data(), want.gr.data(), B, 1e-4, 1e-6, __FILE__,
          __LINE__);
  const std::vector<double> gg2 = emulate ? grad_values(dt, host_grad.data(), p.N * p.V) : fetch_grad(p, grad_out);
  compare((t + " no metrics: grad logits").c_str(), gg2.data(), wg.data(), p.N * p.V, grad_rtol(dt), 1e-7, __FILE__,
          __LINE__);
}

DpoOpts sigmoid_sft() {
  DpoOpts o;
  o.types = {UNIGAP_DPO_SIGMOID, UNIGAP_DPO_SFT};
  o.weights = {1.0, 0.5};
  return o;
}

DpoOpts ipo() {
  DpoOpts o;
  o.types = {UNIGAP_DPO_IPO};
  o.beta = 0.5;
  return o;
}

}  // namespace

UNIGAP_TEST("cuda/dpo/host_checks") {
  std::vector<double> ref(4, -1.0);
  DpoOpts o = sigmoid_sft();
  unigap_dpo_args d = dpo_args(2, ref, o);
  unigap_logprobs_args lp{};
  lp.n_seq = 4;
  lp.vocab = 3;
  lp.temperature = 1.f;
  lp.dtype = UNIGAP_DTYPE_F32;
  CHECK(unigap_cuda_dpo_from_logits(nullptr, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  lp.n_seq = 5;  // not 2B
  CHECK(unigap_cuda_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_SHAPE_MISMATCH);
  lp.n_seq = 4;
  d.beta = -1;  // options are checked on the host before any device work
  CHECK(unigap_cuda_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  d.beta = 0.1;
  std::vector<double> pol(2, -3.0);
  d.policy_chosen = pol.data();  // must come from the logits
  CHECK(unigap_cuda_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
  d.policy_chosen = nullptr;
  CHECK(unigap_cuda_dpo_loss(nullptr, nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  if (!device_ok()) {
    CHECK(unigap_cuda_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
          UNIGAP_STATUS_DEVICE_UNAVAILABLE);
    d.policy_chosen = d.policy_rejected = pol.data();
    CHECK(unigap_cuda_dpo_loss(&d, nullptr) == UNIGAP_STATUS_DEVICE_UNAVAILABLE);
  }
}

// The fused path's composition with the kernels' row code replayed on the host (runs everywhere).
UNIGAP_TEST("cuda/emulated/dpo_from_logits") {
  from_logits_case(UNIGAP_DTYPE_F32, 3, 41, 1031, sigmoid_sft(), false, true);
  from_logits_case(UNIGAP_DTYPE_BF16, 2, 60, 4099, ipo(), true, true);
  from_logits_case(UNIGAP_DTYPE_F16, 2, 33, 517, sigmoid_sft(), false, true);
}

CUDA_TEST("cuda/dpo/from_logits_f32") {
  from_logits_case(UNIGAP_DTYPE_F32, 3, 41, 1031, sigmoid_sft(), false);
  from_logits_case(UNIGAP_DTYPE_F32, 2, 100, 32000, ipo(), false);
}
CUDA_TEST("cuda/dpo/from_logits_bf16") {
  from_logits_case(UNIGAP_DTYPE_BF16, 3, 41, 1031, sigmoid_sft(), false);
  from_logits_case(UNIGAP_DTYPE_BF16, 2, 100, 32000, sigmoid_sft(), true);
}
CUDA_TEST("cuda/dpo/from_logits_f16_in_place") { from_logits_case(UNIGAP_DTYPE_F16, 2, 33, 4099, ipo(), true); }

CUDA_TEST("cuda/dpo/loss_device_arrays") {
  const int64_t B = 100003;
  std::vector<double> in((size_t)(4 * B)), w((size_t)B);
  for (auto &x : in) x = harness::uniform(-300.f, -10.f);
  for (auto &x : w) x = harness::uniform(0.5f, 1.5f);
  std::vector<int32_t> cnt((size_t)(2 * B));
  for (auto &c : cnt) c = 1 + (int32_t)(harness::rng()() % 500);
  DpoOpts o;
  o.types = {UNIGAP_DPO_SIGMOID, UNIGAP_DPO_IPO, UNIGAP_DPO_SFT};
  o.weights = {1.0, 0.3, 0.2};
  std::vector<double> ref(in.begin() + 2 * B, in.end());
  unigap_dpo_args h = dpo_args(B, ref, o);
  h.policy_chosen = in.data();
  h.policy_rejected = in.data() + B;
  h.chosen_tokens = cnt.data();
  h.rejected_tokens = cnt.data() + B;
  h.weights = w.data();
  DpoOut want(B);
  want.wire(h);
  CHECK(unigap_dpo_loss(&h) == UNIGAP_STATUS_OK);

  void *din = nullptr, *dw = nullptr, *dcnt = nullptr, *dout = nullptr;
  CUDA_OK(unigap_cuda_alloc(in.size() * 8, &din));
  CUDA_OK(unigap_cuda_alloc(w.size() * 8, &dw));
  CUDA_OK(unigap_cuda_alloc(cnt.size() * 4, &dcnt));
  CUDA_OK(unigap_cuda_alloc((size_t)(6 * B + 2) * 8, &dout));
  CUDA_OK(unigap_cuda_memcpy_h2d(din, in.data(), in.size() * 8, stream()));
  CUDA_OK(unigap_cuda_memcpy_h2d(dw, w.data(), w.size() * 8, stream()));
  CUDA_OK(unigap_cuda_memcpy_h2d(dcnt, cnt.data(), cnt.size() * 4, stream()));
  CUDA_OK(unigap_cuda_memset(dout, 0xff, (size_t)(6 * B + 2) * 8, stream()));
  double *di = static_cast<double *>(din), *dd = static_cast<double *>(dout);
  unigap_dpo_args g = dpo_args(B, ref, o);
  g.policy_chosen = di;
  g.policy_rejected = di + B;
  g.reference_chosen = di + 2 * B;
  g.reference_rejected = di + 3 * B;
  g.chosen_tokens = static_cast<int32_t *>(dcnt);
  g.rejected_tokens = static_cast<int32_t *>(dcnt) + B;
  g.weights = static_cast<double *>(dw);
  g.losses = dd;
  g.chosen_rewards = dd + B;
  g.rejected_rewards = dd + 2 * B;
  g.margins = dd + 3 * B;
  g.grad_chosen = dd + 4 * B;
  g.grad_rejected = dd + 5 * B;
  g.loss = dd + 6 * B;
  g.reward_accuracy = dd + 6 * B + 1;
  CUDA_OK(unigap_cuda_dpo_loss(&g, stream()));
  std::vector<double> out((size_t)(6 * B + 2));
  CUDA_OK(unigap_cuda_memcpy_d2h(out.data(), dout, out.size() * 8, stream()));
  compare("dpo device losses", out.data(), want.losses.data(), B, 0, 0, __FILE__, __LINE__);
  compare("dpo device grad_chosen", out.data() + 4 * B, want.gc.data(), B, 0, 0, __FILE__, __LINE__);
  compare("dpo device grad_rejected", out.data() + 5 * B, want.gr.data(), B, 0, 0, __FILE__, __LINE__);
  CHECK(out[(size_t)(6 * B)] == want.loss && out[(size_t)(6 * B + 1)] == want.acc);
  for (void *p : {din, dw, dcnt, dout}) CUDA_OK(unigap_cuda_free(p));
}

namespace {
// loss = sum_s w_s * seq_sum_s  ->  grad_seq = w
unigap_status weighted_sum(void *ctx, const float *sums, const int32_t *counts, int64_t n_seq, float *grad_seq) {
  const auto *w = static_cast<const std::vector<float> *>(ctx);
  for (int64_t s = 0; s < n_seq; s++) grad_seq[s] = (*w)[(size_t)s] * (counts[s] >= 0 && sums[s] == sums[s] ? 1.f : 0.f);
  return UNIGAP_STATUS_OK;
}
}  // namespace

UNIGAP_TEST("cuda/emulated/seq_loss_hook") {
  Options po;
  po.shift = 1;
  Problem p = make_problem(UNIGAP_DTYPE_F16, 5, 300, 2053, po);
  Outputs cpu;
  unigap_logprobs_args ha = host_args(p, cpu);
  std::vector<uint8_t> cpu_grad(p.logits.size(), 0xff);
  unigap_logprobs_grad hg{p.grad_seq.data(), nullptr, nullptr, cpu_grad.data()};
  CHECK(unigap_logprobs_forward_backward(&ha, &hg) == UNIGAP_STATUS_OK);
  Outputs emu;
  unigap_logprobs_args ea = host_args(p, emu);
  ea.token_lse = nullptr;
  std::vector<uint8_t> g(p.logits.size(), 0xff);
  CHECK(unigap_cuda::seq_loss_emulate(&ea, weighted_sum, &p.grad_seq, g.data()) == UNIGAP_STATUS_OK);
  compare("emulated seq_loss hook grad", grad_values(p.dt, g.data(), p.N * p.V).data(),
          grad_values(p.dt, cpu_grad.data(), p.N * p.V).data(), p.N * p.V, grad_rtol(p.dt), 1e-7, __FILE__, __LINE__);
}

CUDA_TEST("cuda/logprobs/seq_loss_hook") {
  Options po;
  po.shift = 1;
  Problem p = make_problem(UNIGAP_DTYPE_BF16, 5, 300, 2053, po);
  Outputs cpu;
  unigap_logprobs_args ha = host_args(p, cpu);
  std::vector<uint8_t> cpu_grad(p.logits.size(), 0xff);
  unigap_logprobs_grad hg{p.grad_seq.data(), nullptr, nullptr, cpu_grad.data()};
  CHECK(unigap_logprobs_forward_backward(&ha, &hg) == UNIGAP_STATUS_OK);
  DeviceProblem d;
  if (!upload_problem(p, d)) return;
  unigap_logprobs_args da = device_args(p, d);
  da.token_lse = nullptr;  // the hook keeps its own
  CUDA_OK(unigap_cuda_logprobs_seq_loss(&da, weighted_sum, &p.grad_seq, d.grad_out, stream()));
  CUDA_OK(unigap_cuda_stream_sync(stream()));
  const std::vector<double> wg = grad_values(p.dt, cpu_grad.data(), p.N * p.V);
  compare("seq_loss hook grad", fetch_grad(p, d.grad_out).data(), wg.data(), p.N * p.V, grad_rtol(p.dt), 1e-7,
          __FILE__, __LINE__);
}

// ---------------------------------------------------------------- perf (called from cuda/perf/logprobs)

void perf_dpo_from_logits(const unigap_logprobs_args &a, void *grad, const char *dt, const char *shape, double fwd_ms,
                          double fwdbwd_ms, double bytes) {
  const int64_t B = a.n_seq / 2;
  std::vector<double> ref((size_t)(2 * B));
  for (auto &r : ref) r = harness::uniform(-400.f, -200.f);
  DpoOpts o = sigmoid_sft();
  unigap_dpo_args d = dpo_args(B, ref, o);
  double loss = 0;
  d.loss = &loss;
  unigap_logprobs_args lp = a;
  unigap_status st = UNIGAP_STATUS_OK;
  double ms = time_ms([&] {
    st = unigap_cuda_dpo_from_logits(&lp, &d, grad, nullptr, nullptr, nullptr, nullptr, nullptr, stream());
  });
  CUDA_OK(st);
  perf_row("unigap dpo_from_logits (fwd+bwd, out of place)", dt, shape, ms, 2.0 * bytes);
  std::printf("PERF_RATIO|%s|dpo_from_logits/(logprobs fwd+bwd)|%.3f|vs forward %.3f|target <= 1.1\n", dt,
              ms / fwdbwd_ms, ms / fwd_ms);
  // The same with TRL's logit metrics (entropy, token accuracy, mean logits): what the facade asks for.
  unigap_dpo_logit_metrics m{};
  const double ms_m = time_ms([&] {
    st = unigap_cuda_dpo_from_logits(&lp, &d, grad, nullptr, nullptr, nullptr, nullptr, &m, stream());
  });
  CUDA_OK(st);
  perf_row("unigap dpo_from_logits + TRL metrics (fwd+bwd, out of place)", dt, shape, ms_m, 2.0 * bytes);
  std::fflush(stdout);
}
