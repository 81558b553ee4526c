// dpo family: pair-level losses (closed-form values, gradients vs finite differences, extremes, bad
// arguments) and, when the logprobs family is built, the fused path vs the composed one on every tier.
#include <cmath>
#include <cstring>
#include <vector>

#include "harness.h"
#include "unigap/dpo.h"
#include "unigap/half.h"
#include "unigap/logprobs.h"

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

// Fused (unigap_dpo_from_logits) vs composed (forward -> unigap_dpo_loss -> backward) on every tier
// the CPU has and every logits dtype, with in-place and an odd vocabulary.
UNIGAP_TEST("dpo/fused_equals_composed_every_tier") {
  const int64_t B = 3, T = 7, V = 53, S = 2 * B, N = S * T;
  std::vector<float> vals(static_cast<size_t>(N * V));
  for (float &v : vals) v = harness::normal(0, 3);
  std::vector<int32_t> labels(N);
  for (int64_t s = 0; s < S; s++)
    for (int64_t t = 0; t < T; t++)
      labels[s * T + t] = t < 1 + s % 3 ? -100 : static_cast<int32_t>(harness::uniform(0, V - 1));
  std::vector<int64_t> offsets(S + 1);
  for (int64_t s = 0; s <= S; s++) offsets[s] = s * T;
  std::vector<double> qc(B), qr(B);
  for (int64_t i = 0; i < B; i++) {
    qc[i] = harness::normal(-20, 3);
    qr[i] = harness::normal(-20, 3);
  }
  int32_t types[2] = {UNIGAP_DPO_SIGMOID, UNIGAP_DPO_SFT};
  double lw[2] = {1.0, 0.5};
  const unigap_isa best = unigap_isa_best();
  for (int tier = 0; tier <= best; tier++) {
    CHECK(unigap_isa_set(static_cast<unigap_isa>(tier)) == UNIGAP_STATUS_OK);
    for (int dt : {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F16}) {
      const size_t esz = dt == UNIGAP_DTYPE_F32 ? 4 : 2;
      std::vector<uint8_t> logits(vals.size() * esz);
      for (size_t i = 0; i < vals.size(); i++) {
        if (dt == UNIGAP_DTYPE_F32)
          std::memcpy(&logits[i * 4], &vals[i], 4);
        else {
          uint16_t h = dt == UNIGAP_DTYPE_BF16 ? unigap_f32_to_bf16(vals[i]) : unigap_f32_to_f16(vals[i]);
          std::memcpy(&logits[i * 2], &h, 2);
        }
      }
      unigap_logprobs_args lp{};
      lp.logits = logits.data();
      lp.dtype = static_cast<unigap_dtype>(dt);
      lp.n_tokens = N;
      lp.vocab = V;
      lp.labels = labels.data();
      lp.ignore_index = -100;
      lp.offsets = offsets.data();
      lp.n_seq = S;
      lp.shift = 1;
      lp.temperature = 1.0f;
      // composed
      std::vector<float> lse(N), sum(S);
      std::vector<int32_t> cnt(S);
      unigap_logprobs_args f = lp;
      f.token_lse = lse.data();
      f.seq_sum = sum.data();
      f.seq_count = cnt.data();
      CHECK(unigap_logprobs_forward(&f) == UNIGAP_STATUS_OK);
      std::vector<double> pc(B), pr(B), gc(B, NAN), gr(B, NAN);
      std::vector<int32_t> nc(cnt.begin(), cnt.begin() + B), nr(cnt.begin() + B, cnt.end());
      for (int64_t i = 0; i < B; i++) {
        pc[i] = sum[i];
        pr[i] = sum[B + i];
      }
      unigap_dpo_args d{};
      d.n_pairs = B;
      d.policy_chosen = pc.data();
      d.policy_rejected = pr.data();
      d.reference_chosen = qc.data();
      d.reference_rejected = qr.data();
      d.chosen_tokens = nc.data();
      d.rejected_tokens = nr.data();
      d.n_losses = 2;
      d.loss_types = types;
      d.loss_weights = lw;
      d.beta = 0.2;
      d.discopop_tau = 0.05;
      d.alpha = 1;
      double loss_c = NAN;
      d.loss = &loss_c;
      d.grad_chosen = gc.data();
      d.grad_rejected = gr.data();
      CHECK(unigap_dpo_loss(&d) == UNIGAP_STATUS_OK);
      std::vector<float> gseq(S);
      for (int64_t i = 0; i < B; i++) {
        gseq[i] = static_cast<float>(gc[i]);
        gseq[B + i] = static_cast<float>(gr[i]);
      }
      std::vector<uint8_t> grad_c(logits.size(), 0xFF);
      unigap_logprobs_grad g{};
      g.grad_seq = gseq.data();
      g.token_lse = lse.data();
      g.grad_out = grad_c.data();
      CHECK(unigap_logprobs_backward(&f, &g) == UNIGAP_STATUS_OK);
      // fused, in place on a copy of the logits
      std::vector<uint8_t> inplace = logits;
      unigap_logprobs_args lf = lp;
      lf.logits = inplace.data();
      unigap_dpo_args e = d;
      e.policy_chosen = e.policy_rejected = nullptr;
      e.chosen_tokens = e.rejected_tokens = nullptr;
      double loss_f = NAN;
      std::vector<double> fc(B, NAN), fr(B, NAN);
      e.loss = &loss_f;
      e.grad_chosen = fc.data();
      e.grad_rejected = fr.data();
      unigap_dpo_logit_metrics m{};
      CHECK(unigap_dpo_from_logits(&lf, &e, inplace.data(), nullptr, nullptr, nullptr, nullptr, &m) ==
            UNIGAP_STATUS_OK);
      CHECK_CLOSE(loss_f, loss_c, 1e-12, 1e-14);
      for (int64_t i = 0; i < B; i++) {
        CHECK_CLOSE(fc[i], gc[i], 1e-12, 1e-15);
        CHECK_CLOSE(fr[i], gr[i], 1e-12, 1e-15);
      }
      bool same = true;
      for (int64_t i = 0; i < N * V; i++) {
        float a, b;
        if (dt == UNIGAP_DTYPE_F32) {
          std::memcpy(&a, &inplace[i * 4], 4);
          std::memcpy(&b, &grad_c[i * 4], 4);
        } else {
          uint16_t ha, hb;
          std::memcpy(&ha, &inplace[i * 2], 2);
          std::memcpy(&hb, &grad_c[i * 2], 2);
          a = dt == UNIGAP_DTYPE_BF16 ? unigap_bf16_to_f32(ha) : unigap_f16_to_f32(ha);
          b = dt == UNIGAP_DTYPE_BF16 ? unigap_bf16_to_f32(hb) : unigap_f16_to_f32(hb);
        }
        same &= harness::close(a, b, dt == UNIGAP_DTYPE_F32 ? 1e-6 : 1e-2, 1e-9);
      }
      CHECK(same);
      CHECK(m.chosen_token_total > 0 && m.rejected_token_total > 0);
      CHECK(m.token_accuracy >= 0 && m.token_accuracy <= 1 && m.entropy > 0);
    }
  }
  unigap_isa_set(best);
  // Shape and option errors come back as statuses.
  unigap_logprobs_args lp{};
  lp.n_seq = 3;
  lp.offsets = offsets.data();
  unigap_dpo_args d{};
  d.n_pairs = 1;
  d.n_losses = 1;
  d.loss_types = types;
  d.beta = 0.1;
  d.discopop_tau = 0.05;
  CHECK(unigap_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_SHAPE_MISMATCH);
  lp.n_seq = 2;
  d.beta = -1;
  CHECK(unigap_dpo_from_logits(&lp, &d, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        UNIGAP_STATUS_INVALID_ARGUMENT);
}
