// dpo family: pair-level losses (closed-form values, gradients vs finite differences, extremes, bad
// arguments) and, when the logprobs family is built, the fused path vs the composed one on every tier.
#include <cmath>
#include <cstring>
#include <vector>

#include "harness.h"
#include "unigap/dpo.h"

namespace {

struct Pairs {
  std::vector<double> pc, pr, qc, qr;
  std::vector<int32_t> nc, nr;
};

Pairs make_pairs(int64_t B) {
  Pairs p;
  for (int64_t i = 0; i < B; i++) {
    double qc = harness::normal(-60, 8), qr = harness::normal(-60, 8);
    p.qc.push_back(qc);
    p.qr.push_back(qr);
    p.pc.push_back(qc + harness::normal(0, 2));
    p.pr.push_back(qr + harness::normal(0, 2));
    p.nc.push_back(1 + static_cast<int32_t>(harness::uniform(0, 30)));
    p.nr.push_back(1 + static_cast<int32_t>(harness::uniform(0, 30)));
  }
  return p;
}

unigap_dpo_args base_args(const Pairs &p, const int32_t *types, int n_types) {
  unigap_dpo_args a{};
  a.n_pairs = static_cast<int64_t>(p.pc.size());
  a.policy_chosen = p.pc.data();
  a.policy_rejected = p.pr.data();
  a.reference_chosen = p.qc.data();
  a.reference_rejected = p.qr.data();
  a.chosen_tokens = p.nc.data();
  a.rejected_tokens = p.nr.data();
  a.n_losses = n_types;
  a.loss_types = types;
  a.beta = 0.1;
  a.label_smoothing = 0.1;
  a.discopop_tau = 0.05;
  a.f_divergence = UNIGAP_DPO_FDIV_REVERSE_KL;
  a.alpha = 1.0;
  return a;
}

double loss_of(unigap_dpo_args a) {
  double l = NAN;
  a.loss = &l;
  a.losses = a.chosen_rewards = a.rejected_rewards = a.margins = a.reward_accuracy = nullptr;
  a.grad_chosen = a.grad_rejected = nullptr;
  CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
  return l;
}

}  // namespace

UNIGAP_TEST("dpo/closed_form_values") {
  // sigmoid at zero margin: log 2; hinge: 1; ipo with equal per-token scores: 1/(4 beta^2).
  std::vector<double> z(3, -5.0), q(3, -5.0);
  std::vector<int32_t> n(3, 4);
  double loss = NAN, acc = NAN;
  std::vector<double> gc(3, NAN), gr(3, NAN);
  int32_t t = UNIGAP_DPO_SIGMOID;
  unigap_dpo_args a{};
  a.n_pairs = 3;
  a.policy_chosen = z.data();
  a.policy_rejected = z.data();
  a.reference_chosen = q.data();
  a.reference_rejected = q.data();
  a.chosen_tokens = a.rejected_tokens = n.data();
  a.n_losses = 1;
  a.loss_types = &t;
  a.beta = 0.5;
  a.discopop_tau = 0.05;
  a.alpha = 1;
  a.loss = &loss;
  a.reward_accuracy = &acc;
  a.grad_chosen = gc.data();
  a.grad_rejected = gr.data();
  CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
  CHECK_CLOSE(loss, std::log(2.0), 1e-15, 0);
  CHECK_CLOSE(gc[0], -0.5 * 0.5 / 3, 1e-15, 0);  // beta * -sigma(0) / B
  CHECK_CLOSE(gr[0], 0.5 * 0.5 / 3, 1e-15, 0);
  CHECK(acc == 0);
  t = UNIGAP_DPO_HINGE;
  CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
  CHECK_CLOSE(loss, 1.0, 1e-15, 0);
  t = UNIGAP_DPO_IPO;
  CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
  CHECK_CLOSE(loss, 1.0, 1e-15, 0);  // (0 - 1/(2*0.5))^2
}

UNIGAP_TEST("dpo/gradients_vs_finite_differences") {
  const int64_t B = 6;
  Pairs p = make_pairs(B);
  for (int fdiv = 0; fdiv <= UNIGAP_DPO_FDIV_ALPHA; fdiv++)
    for (int32_t t = 0; t < UNIGAP_DPO_LOSS_TYPE_COUNT; t++) {
      int32_t types[2] = {t, UNIGAP_DPO_SFT};
      double lw[2] = {1.0, 0.3};
      unigap_dpo_args a = base_args(p, types, 2);
      a.loss_weights = lw;
      a.f_divergence = fdiv;
      a.alpha = 0.6;
      std::vector<double> gc(B, NAN), gr(B, NAN), losses(B, NAN);
      double loss = NAN;
      a.loss = &loss;
      a.losses = losses.data();
      a.grad_chosen = gc.data();
      a.grad_rejected = gr.data();
      CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
      double mean = 0;
      for (double v : losses) mean += v;
      CHECK_CLOSE(loss, mean / B, 1e-13, 1e-15);
      for (int side = 0; side < 2; side++)
        for (int64_t i = 0; i < B; i++) {
          Pairs q = p;
          std::vector<double> &x = side == 0 ? q.pc : q.pr;
          double h = 1e-5 * std::fabs(x[i]);
          x[i] += h;
          unigap_dpo_args b = base_args(q, types, 2);
          b.loss_weights = lw;
          b.f_divergence = fdiv;
          b.alpha = 0.6;
          double up = loss_of(b);
          x[i] -= 2 * h;
          double dn = loss_of(b);
          double fd = (up - dn) / (2 * h);
          CHECK_CLOSE(side == 0 ? gc[i] : gr[i], fd, 1e-5, 1e-8);
        }
    }
}

UNIGAP_TEST("dpo/extreme_margins_finite") {
  std::vector<double> pc = {1e4, -1e4}, pr = {-1e4, 1e4}, z = {0, 0};
  std::vector<int32_t> n = {0, 5};
  for (int32_t t = 0; t < UNIGAP_DPO_LOSS_TYPE_COUNT; t++) {
    unigap_dpo_args a{};
    a.n_pairs = 2;
    a.policy_chosen = pc.data();
    a.policy_rejected = pr.data();
    a.reference_chosen = a.reference_rejected = z.data();
    a.chosen_tokens = a.rejected_tokens = n.data();
    a.n_losses = 1;
    a.loss_types = &t;
    a.beta = 1;
    a.label_smoothing = 0.2;
    a.discopop_tau = 0.05;
    a.alpha = 1;
    double loss = NAN;
    double gc[2] = {NAN, NAN}, gr[2] = {NAN, NAN};
    a.loss = &loss;
    a.grad_chosen = gc;
    a.grad_rejected = gr;
    CHECK(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK);
    CHECK(std::isfinite(loss) && std::isfinite(gc[0]) && std::isfinite(gc[1]) && std::isfinite(gr[0]) &&
          std::isfinite(gr[1]));
  }
}

UNIGAP_TEST("dpo/bad_arguments") {
  Pairs p = make_pairs(3);
  int32_t t = UNIGAP_DPO_SIGMOID;
  unigap_dpo_args a = base_args(p, &t, 1);
  CHECK(unigap_dpo_loss(nullptr) == UNIGAP_STATUS_INVALID_ARGUMENT);
  unigap_dpo_args b = a;
  b.n_pairs = 0;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_SHAPE_MISMATCH);
  b = a;
  b.beta = 0;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.beta = NAN;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.label_smoothing = 0.5;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  int32_t bad = 99;
  b = a;
  b.loss_types = &bad;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  int32_t ipo = UNIGAP_DPO_IPO;
  b = a;
  b.loss_types = &ipo;
  b.rejected_tokens = nullptr;
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
  b = a;
  b.reference_rejected = nullptr;  // one reference without the other
  CHECK(unigap_dpo_loss(&b) == UNIGAP_STATUS_INVALID_ARGUMENT);
}
