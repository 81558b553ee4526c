// Pair-level DPO losses and their gradients, in double. The math (and every TRL decision) is written
// down in native/include/unigap/dpo.h; this file follows it line by line. B is small (pairs, not tokens),
// so one scalar translation unit serves every ISA tier.
#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>
#include <vector>

#include "unigap/dpo.h"

namespace {

inline double softplus(double y) {
  // log(1 + e^y) without overflow: max(y, 0) + log1p(e^-|y|).
  return (y > 0 ? y : 0.0) + std::log1p(std::exp(-std::fabs(y)));
}
inline double sigmoid(double y) {
  if (y >= 0) return 1.0 / (1.0 + std::exp(-y));
  double e = std::exp(y);
  return e / (1.0 + e);
}

constexpr double kExpClamp = 80.0;  // TRL's fp32 clamp of the alpha-divergence exponent

struct Score {
  double s, ds;  // f(l), f'(l)
};

inline Score fscore(int fdiv, double alpha, double l) {
  switch (fdiv) {
    case UNIGAP_DPO_FDIV_FORWARD_KL: {
      double e = std::exp(-l);
      return {-e, e};
    }
    case UNIGAP_DPO_FDIV_JS:
      return {-softplus(-l), sigmoid(-l)};
    case UNIGAP_DPO_FDIV_ALPHA: {
      if (std::fabs(alpha - 1.0) < 1e-6) return {l, 1.0};
      double t = (alpha - 1.0) * l;
      if (t > kExpClamp) return {std::exp(kExpClamp) / (alpha - 1.0), 0.0};
      double e = std::exp(t);
      return {e / (alpha - 1.0), e};
    }
    default:
      return {l, 1.0};
  }
}

bool needs_counts(int t) { return t == UNIGAP_DPO_IPO || t == UNIGAP_DPO_SIGMOID_NORM; }

// Stable argsort (ascending); NaN sorts last so the permutation is always total.
void argsort(const std::vector<double> &v, std::vector<int64_t> &idx) {
  idx.resize(v.size());
  std::iota(idx.begin(), idx.end(), int64_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    double x = v[a], y = v[b];
    if (std::isnan(x)) return false;
    if (std::isnan(y)) return true;
    return x < y;
  });
}

unigap_status validate(const unigap_dpo_args *a, bool need_policy) {
  if (!a) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->n_pairs < 1) return UNIGAP_STATUS_SHAPE_MISMATCH;
  if (need_policy && (!a->policy_chosen || !a->policy_rejected)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((a->reference_chosen == nullptr) != (a->reference_rejected == nullptr)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->n_losses < 1 || a->n_losses > UNIGAP_DPO_MAX_LOSSES || !a->loss_types) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!(a->beta > 0) || !std::isfinite(a->beta)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!(a->label_smoothing >= 0 && a->label_smoothing < 0.5)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!(a->discopop_tau > 0) || !std::isfinite(a->discopop_tau)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->f_divergence < 0 || a->f_divergence > UNIGAP_DPO_FDIV_ALPHA) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!std::isfinite(a->alpha) || !std::isfinite(a->bco_delta)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  for (int32_t k = 0; k < a->n_losses; k++) {
    int t = a->loss_types[k];
    if (t < 0 || t >= UNIGAP_DPO_LOSS_TYPE_COUNT) return UNIGAP_STATUS_INVALID_ARGUMENT;
    if (needs_counts(t) && (!a->chosen_tokens || !a->rejected_tokens)) return UNIGAP_STATUS_INVALID_ARGUMENT;
    if (t == UNIGAP_DPO_SFT && !a->chosen_tokens) return UNIGAP_STATUS_INVALID_ARGUMENT;
    if (a->loss_weights && !std::isfinite(a->loss_weights[k])) return UNIGAP_STATUS_INVALID_ARGUMENT;
  }
  return UNIGAP_STATUS_OK;
}

unigap_status compute(const unigap_dpo_args *a) {
  const int64_t B = a->n_pairs;
  const double beta = a->beta, eps = a->label_smoothing, tau = a->discopop_tau;
  const int fdiv = a->f_divergence;
  const double invB = 1.0 / static_cast<double>(B);

  std::vector<double> lc(B), lr(B), sc(B), sr(B), dsc(B), dsr(B), pl(B), gc(B, 0.0), gr(B, 0.0), tot(B, 0.0);
  for (int64_t i = 0; i < B; i++) {
    double qc = a->reference_chosen ? a->reference_chosen[i] : 0.0;
    double qr = a->reference_rejected ? a->reference_rejected[i] : 0.0;
    lc[i] = a->policy_chosen[i] - qc;
    lr[i] = a->policy_rejected[i] - qr;
    Score c = fscore(fdiv, a->alpha, lc[i]), r = fscore(fdiv, a->alpha, lr[i]);
    sc[i] = c.s;
    dsc[i] = c.ds;
    sr[i] = r.s;
    dsr[i] = r.ds;
  }
  auto vw = [&](int64_t i) { return a->weights ? a->weights[i] : 1.0; };
  auto cnt = [](const int32_t *n, int64_t i) { return std::max(1.0, static_cast<double>(n[i])); };

  std::vector<int64_t> p1, p2;
  std::vector<double> tmp1, tmp2;
  for (int32_t k = 0; k < a->n_losses; k++) {
    const int t = a->loss_types[k];
    const double w = a->loss_weights ? a->loss_weights[k] : 1.0;
    // pl[i]: the per-pair loss of this type; dl_dsc / dl_dsr (through f) and raw partials per pair.
    // Accumulated gradient scale: d loss / d l_{t,i} = w * v_i / B.
    if (t == UNIGAP_DPO_AOT || t == UNIGAP_DPO_AOT_UNPAIRED) {
      tmp1.resize(B);
      tmp2.resize(B);
      for (int64_t i = 0; i < B; i++) {
        if (t == UNIGAP_DPO_AOT) {
          double qc = a->reference_chosen ? a->reference_chosen[i] : 0.0;
          double qr = a->reference_rejected ? a->reference_rejected[i] : 0.0;
          tmp1[i] = a->policy_chosen[i] - a->policy_rejected[i];
          tmp2[i] = qc - qr;
        } else {
          tmp1[i] = lc[i];
          tmp2[i] = lr[i];
        }
      }
      argsort(tmp1, p1);
      argsort(tmp2, p2);
      for (int64_t j = 0; j < B; j++) {
        double d = tmp1[p1[j]] - tmp2[p2[j]];
        double x = beta * d;
        pl[j] = (1 - eps) * softplus(-x) + eps * softplus(x);
        double g = beta * (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x)) * w * vw(j) * invB;
        if (t == UNIGAP_DPO_AOT) {
          // d d_j / d pc_{p1[j]} = 1, d / d pr_{p1[j]} = -1 (the reference part is constant).
          gc[p1[j]] += g;
          gr[p1[j]] -= g;
        } else {
          gc[p1[j]] += g;  // d_j = lc_{p1[j]} - lr_{p2[j]}
          gr[p2[j]] -= g;
        }
      }
    } else if (t == UNIGAP_DPO_SFT) {
      double sum = 0, n = 0;
      for (int64_t i = 0; i < B; i++) {
        sum += a->policy_chosen[i];
        n += static_cast<double>(a->chosen_tokens[i]);
      }
      n = std::max(n, 1.0);
      double S = -sum / n, vsum = 0;
      for (int64_t i = 0; i < B; i++) {
        pl[i] = S;
        vsum += vw(i);
      }
      for (int64_t i = 0; i < B; i++) gc[i] += -w * vsum * invB / n;
    } else {
      for (int64_t i = 0; i < B; i++) {
        const double D = sc[i] - sr[i], x = beta * D;
        double l = 0, dsc_ = 0, dsr_ = 0, dlc = 0, dlr = 0;  // partials of l
        switch (t) {
          case UNIGAP_DPO_SIGMOID: {
            l = (1 - eps) * softplus(-x) + eps * softplus(x);
            double dx = -(1 - eps) * sigmoid(-x) + eps * sigmoid(x);
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_HINGE: {
            double h = 1 - x;
            l = h > 0 ? h : 0.0;
            double dx = h > 0 ? -1.0 : 0.0;
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_IPO: {
            double nc = cnt(a->chosen_tokens, i), nr = cnt(a->rejected_tokens, i);
            double y = sc[i] / nc - sr[i] / nr - 1.0 / (2 * beta);
            l = y * y;
            dsc_ = 2 * y / nc;
            dsr_ = -2 * y / nr;
            break;
          }
          case UNIGAP_DPO_EXO_PAIR: {
            double e = eps > 0 ? eps : 1e-3;
            double qw = sigmoid(x), ql = sigmoid(-x);
            double lqw = -softplus(-x), lql = -softplus(x);
            l = qw * (lqw - std::log1p(-e)) + ql * (lql - std::log(e));
            double dx = qw * ql * (x - (std::log1p(-e) - std::log(e)));
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_NCA_PAIR: {
            double ca = beta * sc[i], cb = beta * sr[i];
            l = softplus(-ca) + 0.5 * softplus(ca) + 0.5 * softplus(cb);
            dsc_ = beta * (-sigmoid(-ca) + 0.5 * sigmoid(ca));
            dsr_ = beta * 0.5 * sigmoid(cb);
            break;
          }
          case UNIGAP_DPO_ROBUST: {
            double den = 1 - 2 * eps;
            l = ((1 - eps) * softplus(-x) - eps * softplus(x)) / den;
            double dx = (-(1 - eps) * sigmoid(-x) - eps * sigmoid(x)) / den;
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_BCO_PAIR: {
            double ca = beta * sc[i] - a->bco_delta, cb = beta * sr[i] - a->bco_delta;
            l = softplus(-ca) + softplus(cb);
            dsc_ = -beta * sigmoid(-ca);
            dsr_ = beta * sigmoid(cb);
            break;
          }
          case UNIGAP_DPO_SPPO_HARD: {
            double u = sc[i] - 0.5 / beta, v = sr[i] + 0.5 / beta;
            l = u * u + v * v;
            dsc_ = 2 * u;
            dsr_ = 2 * v;
            break;
          }
          case UNIGAP_DPO_APO_ZERO: {
            double yc = beta * lc[i], yr = beta * lr[i];
            double sc_ = sigmoid(yc), sr_ = sigmoid(yr);
            l = (1 - sc_) + sr_;
            dlc = -beta * sc_ * sigmoid(-yc);
            dlr = beta * sr_ * sigmoid(-yr);
            break;
          }
          case UNIGAP_DPO_APO_DOWN: {
            double yc = beta * lc[i];
            double s1 = sigmoid(yc), s2 = sigmoid(x);
            l = s1 + (1 - s2);
            dlc = beta * s1 * sigmoid(-yc);
            double dx = -s2 * sigmoid(-x);
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_DISCOPOP: {
            double m = sigmoid(x / tau), om = sigmoid(-x / tau);  // 1 - m without cancellation
            double sp = softplus(-x);
            double ex = -x - softplus(-x / tau);  // log(exp(-x) * m)
            bool capped = ex > kExpClamp;
            double E = std::exp(capped ? kExpClamp : ex);
            l = sp * om + E;
            double dx = -sigmoid(-x) * om - sp * m * om / tau;
            if (!capped) dx += E * (-1.0 + om / tau);
            dsc_ = beta * dx;
            dsr_ = -beta * dx;
            break;
          }
          case UNIGAP_DPO_SIGMOID_NORM: {
            double nc = cnt(a->chosen_tokens, i), nr = cnt(a->rejected_tokens, i);
            double y = beta * (sc[i] / nc - sr[i] / nr);
            l = softplus(-y);
            double dy = -sigmoid(-y);
            dsc_ = beta * dy / nc;
            dsr_ = -beta * dy / nr;
            break;
          }
          default:
            return UNIGAP_STATUS_INVALID_ARGUMENT;
        }
        pl[i] = l;
        double s = w * vw(i) * invB;
        // 0 * f' must stay 0 even when f' overflowed (forward_kl), so skip zero partials.
        double g1 = (dsc_ != 0 ? dsc_ * dsc[i] : 0.0) + dlc;
        double g2 = (dsr_ != 0 ? dsr_ * dsr[i] : 0.0) + dlr;
        gc[i] += s * g1;
        gr[i] += s * g2;
      }
    }
    for (int64_t i = 0; i < B; i++) tot[i] += w * vw(i) * pl[i];
  }

  double mean = 0;
  for (int64_t i = 0; i < B; i++) mean += tot[i];
  mean *= invB;
  if (a->loss) *a->loss = mean;
  double acc = 0;
  for (int64_t i = 0; i < B; i++) {
    double rc = beta * lc[i], rr = beta * lr[i];
    if (a->losses) a->losses[i] = tot[i];
    if (a->chosen_rewards) a->chosen_rewards[i] = rc;
    if (a->rejected_rewards) a->rejected_rewards[i] = rr;
    if (a->margins) a->margins[i] = rc - rr;
    if (a->grad_chosen) a->grad_chosen[i] = gc[i];
    if (a->grad_rejected) a->grad_rejected[i] = gr[i];
    acc += rc > rr ? 1.0 : 0.0;
  }
  if (a->reward_accuracy) *a->reward_accuracy = acc / static_cast<double>(B);
  return UNIGAP_STATUS_OK;
}

}  // namespace

extern "C" unigap_status unigap_dpo_loss(const unigap_dpo_args *a) {
  unigap_status s = validate(a, true);
  if (s != UNIGAP_STATUS_OK) return s;
  try {
    return compute(a);
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  } catch (...) {
    return UNIGAP_STATUS_INTERNAL;
  }
}

namespace unigap {
namespace dpo {
// For the fused path (fused.cpp): the same validation minus the policy inputs.
unigap_status validate_options(const unigap_dpo_args *a) { return validate(a, false); }
}  // namespace dpo
}  // namespace unigap
