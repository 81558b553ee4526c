/*
 * unigap DPO loss family: the C ABI and its spec. Semantics follow TRL's DPOTrainer (v1 `_compute_loss`,
 * plus the May 2026 `sigmoid_norm`); every formula and its gradient is written down here.
 *
 * ---------------------------------------------------------------------------------------------- inputs
 * B pairs (B >= 1). Per pair i, sequence log-probs (sums over the completion tokens, as TRL's
 * `logps`): policy pc_i, pr_i and reference qc_i, qr_i (reference NULL = reference-free: q = 0).
 * Optional completion-token counts nc_i, nr_i (int32 >= 0; required by ipo, sigmoid_norm, sft).
 * Everything is computed in double.
 *
 * Raw log-ratios      lc = pc - qc,   lr = pr - qr.
 * Rewards (always on the raw log-ratios, whatever the f-divergence or loss):
 *                     rc = beta * lc, rr = beta * lr, margin = rc - rr, accuracy = mean_i 1[rc > rr].
 *
 * ------------------------------------------------------------------------------------ f-divergence
 * Scores s = f(l) applied to each raw log-ratio (TRL `f_divergence_type`), and f' for the chain rule:
 *   reverse_kl (default)  s = l                                   f' = 1
 *   forward_kl            s = -exp(-l)                            f' = exp(-l)
 *                         (no clamp, as TRL: l < -709 overflows double, TRL's fp32 at l < -88)
 *   js                    s = log sigma(l) = -softplus(-l)        f' = sigma(-l)
 *   alpha (a = alpha)     |a - 1| < 1e-6: reverse_kl. Else t = (a - 1) l, s = exp(min(t, 80)) / (a - 1),
 *                         f' = exp(t) when t <= 80 and 0 when clamped (TRL's fp32 clamp max 80 and
 *                         torch.clamp's gradient). TRL's default a = 1.0 (= reverse_kl).
 * sc = f(lc), sr = f(lr), D = sc - sr, x = beta * D.
 *
 * ------------------------------------------------------------------------------ per-pair losses
 * softplus(y) = log(1 + e^y) evaluated stably; log sigma(y) = -softplus(-y); eps = label_smoothing.
 * Each loss gives l_i and its partials; gc_i = dl/dsc * f'(lc) + dl/dlc(raw), same for gr_i.
 *   sigmoid       l = (1-eps) softplus(-x) + eps softplus(x)        (cDPO; eps = 0 is TRL v1's sigmoid)
 *                 dl/dx = -(1-eps) sigma(-x) + eps sigma(x);   dl/dsc = beta dl/dx, dl/dsr = -beta dl/dx
 *   hinge         l = max(0, 1 - x);  dl/dx = -1[1 - x > 0]   (0 at the kink, as torch.relu)
 *   ipo           y = sc / max(nc,1) - sr / max(nr,1) - 1/(2 beta);  l = y^2
 *                 dl/dsc = 2y / max(nc,1), dl/dsr = -2y / max(nr,1)  (TRL's per-token average)
 *   exo_pair      qw = sigma(x), ql = sigma(-x); l = qw (log qw - log(1-e)) + ql (log ql - log e)
 *                 dl/dx = qw ql (x - log((1-e)/e)).   e = eps, and e = 1e-3 when eps = 0 (TRL's EXO default)
 *   nca_pair      a = beta sc, b = beta sr; l = softplus(-a) + softplus(a)/2 + softplus(b)/2
 *                 dl/da = -sigma(-a) + sigma(a)/2, dl/db = sigma(b)/2
 *   robust        l = ((1-eps) softplus(-x) - eps softplus(x)) / (1 - 2 eps)      (eps < 0.5)
 *                 dl/dx = (-(1-eps) sigma(-x) - eps sigma(x)) / (1 - 2 eps)
 *   bco_pair      a = beta sc - delta, b = beta sr - delta; l = softplus(-a) + softplus(b)
 *                 delta = bco_delta, a constant (TRL v1 has none: 0; TRL 0.x used a running mean of the
 *                 rewards, detached: pass it here to reproduce that; the kernel keeps no state).
 *   sppo_hard     l = (sc - 1/(2 beta))^2 + (sr + 1/(2 beta))^2
 *   aot           L = pc - pr, R = qc - qr; Ls = sort(L), Rs = sort(R) (ascending, independently);
 *                 d_k = Ls_k - Rs_k; l_k = (1-eps) softplus(-beta d_k) + eps softplus(beta d_k).
 *                 Entry k belongs to sorted position k, not to pair k (as TRL); its gradient goes to the
 *                 pair that sorted into position k (ties: the stable sort's order). Raw log-probs, no f.
 *   aot_unpaired  d_k = sort(lc)_k - sort(lr)_k, same l_k; raw log-ratios, no f.
 *   apo_zero      l = 1 - sigma(beta lc) + sigma(beta lr)              (raw log-ratios, no f)
 *   apo_down      l = sigma(beta lc) + 1 - sigma(x)                    (first term raw, second on D)
 *   discopop      m = sigma(x / tau); l = softplus(-x) (1 - m) + E,  E = exp(-x) m evaluated as
 *                 exp(min(-x + log sigma(x/tau), 80)) (TRL's exp(-x) * m gives inf * 0 = NaN for x << 0;
 *                 this equals it wherever TRL is finite; the cap is never reached for tau < 1).
 *                 dl/dx = -sigma(-x)(1-m) - softplus(-x) m (1-m)/tau + E (-1 + (1-m)/tau)  (E term 0 if capped)
 *   sigmoid_norm  y = beta (sc / max(nc,1) - sr / max(nr,1)); l = softplus(-y)   (no label smoothing)
 *   sft           S = -(sum_i pc_i) / max(sum_i nc_i, 1): TRL's cross-entropy over every chosen
 *                 completion token of the batch (a token mean, not a mean of sequence means), the same
 *                 scalar for every i (TRL expands it). dS/dpc_j = -1 / max(sum nc, 1). Needs counts.
 * Label smoothing is used by sigmoid, robust, exo_pair, aot, aot_unpaired and ignored by the others
 * (TRL warns and ignores it). Valid range: [0, 0.5) (the facade checks it).
 *
 * ------------------------------------------------------------------------------- combining, mean
 * K >= 1 loss types t with weights w_t (TRL's loss_weights, default 1) and optional per-pair weights
 * v_i (default 1; multiplied into entry i of every per-pair loss vector, as TRL's use_weighting):
 *   losses_i = sum_t w_t v_i l_{t,i};     loss = (1/B) sum_i losses_i.
 * grad_chosen[i] = d loss / d pc_i, grad_rejected[i] = d loss / d pr_i: gradients of the MEAN loss
 * (the 1/B, w_t and v are included): ready to feed a backward pass.
 *
 * Stability: every log sigma goes through softplus; |margins| up to 1e4 give finite losses and
 * gradients for every loss type under reverse_kl, js and alpha (forward_kl overflows as noted).
 */
#ifndef UNIGAP_DPO_H
#define UNIGAP_DPO_H

#include "unigap/common.h"
#include "unigap/logprobs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum unigap_dpo_loss_type {
  UNIGAP_DPO_SIGMOID = 0,
  UNIGAP_DPO_HINGE = 1,
  UNIGAP_DPO_IPO = 2,
  UNIGAP_DPO_EXO_PAIR = 3,
  UNIGAP_DPO_NCA_PAIR = 4,
  UNIGAP_DPO_ROBUST = 5,
  UNIGAP_DPO_BCO_PAIR = 6,
  UNIGAP_DPO_SPPO_HARD = 7,
  UNIGAP_DPO_AOT = 8,
  UNIGAP_DPO_AOT_UNPAIRED = 9,
  UNIGAP_DPO_APO_ZERO = 10,
  UNIGAP_DPO_APO_DOWN = 11,
  UNIGAP_DPO_DISCOPOP = 12,
  UNIGAP_DPO_SIGMOID_NORM = 13,
  UNIGAP_DPO_SFT = 14,
  UNIGAP_DPO_LOSS_TYPE_COUNT = 15
} unigap_dpo_loss_type;

typedef enum unigap_dpo_fdiv {
  UNIGAP_DPO_FDIV_REVERSE_KL = 0,
  UNIGAP_DPO_FDIV_FORWARD_KL = 1,
  UNIGAP_DPO_FDIV_JS = 2,
  UNIGAP_DPO_FDIV_ALPHA = 3
} unigap_dpo_fdiv;

#define UNIGAP_DPO_MAX_LOSSES 16

typedef struct unigap_dpo_args {
  int64_t n_pairs; /* B >= 1 */
  /* inputs (B each). policy_* may be NULL only in unigap_dpo_from_logits (filled from the logits). */
  const double *policy_chosen;
  const double *policy_rejected;
  const double *reference_chosen;   /* NULL together with reference_rejected = reference-free */
  const double *reference_rejected;
  const int32_t *chosen_tokens;   /* B or NULL; required by ipo, sigmoid_norm, sft */
  const int32_t *rejected_tokens; /* B or NULL; required by ipo, sigmoid_norm */
  const double *weights;          /* B per-pair weights or NULL (all 1) */
  /* loss */
  int32_t n_losses;                              /* 1..UNIGAP_DPO_MAX_LOSSES */
  const int32_t *loss_types;                     /* n_losses unigap_dpo_loss_type values */
  const double *loss_weights;                    /* n_losses, or NULL (all 1) */
  double beta;                                   /* > 0, finite */
  double label_smoothing;                        /* [0, 0.5) */
  double discopop_tau;                           /* > 0 (TRL default 0.05) */
  int32_t f_divergence;                          /* unigap_dpo_fdiv */
  double alpha;                                  /* alpha-divergence coefficient (TRL default 1.0) */
  double bco_delta;                              /* bco_pair's reward shift (default 0) */
  /* outputs: any may be NULL */
  double *loss;             /* 1: the mean */
  double *losses;           /* B: per-pair (per sorted position for aot terms) */
  double *chosen_rewards;   /* B */
  double *rejected_rewards; /* B */
  double *margins;          /* B */
  double *reward_accuracy;  /* 1 */
  double *grad_chosen;      /* B: d loss / d policy_chosen */
  double *grad_rejected;    /* B: d loss / d policy_rejected */
} unigap_dpo_args;

/* Pair-level losses and gradients. Status: INVALID_ARGUMENT for bad scalars / loss types / missing
 * counts, SHAPE_MISMATCH for B < 1, OUT_OF_MEMORY. NaN inputs propagate (never crash). */
unigap_status unigap_dpo_loss(const unigap_dpo_args *a);

/* TRL's logged metrics that need the logits (fused path only). */
typedef struct unigap_dpo_logit_metrics {
  double logits_chosen;   /* sum of raw logits over chosen completion tokens / (tokens * V); 0 if none */
  double logits_rejected; /* same over rejected */
  double entropy;         /* mean token entropy over all 2B sequences' completion tokens; 0 if none */
  double token_accuracy;  /* share of chosen completion tokens whose argmax is the label; 0 if none */
  int64_t chosen_token_total;
  int64_t rejected_token_total;
} unigap_dpo_logit_metrics;

/*
 * Fused path. `lp` describes the logits of the concatenated batch [chosen; rejected]: n_seq = 2B
 * sequences (sequence i < B is pair i's chosen, B + i its rejected), exactly as logprobs.h defines
 * them (shift, mask, ignore_index, temperature). Its output pointers are ignored (scratch is used).
 * `d` gives the options and the reference log-probs; d->policy_* must be NULL, and d->chosen_tokens /
 * rejected_tokens must be NULL: they come from the logits (policy = seq_sum, counts = seq_count).
 * policy_chosen_out / policy_rejected_out (B each, may be NULL) receive the policy log-probs; counts
 * likewise (may be NULL).
 *   pass 1: unigap_logprobs_forward (keeping token_lse, entropy, argmax hits, logit sums);
 *   then the pair-level losses above (grad of the mean loss w.r.t. each sequence sum);
 *   pass 2: unigap_logprobs_backward with grad_seq = [grad_chosen; grad_rejected]: grad_out gets
 *   d loss / d logits (logits' dtype, may alias lp->logits for in place).
 * grad_out may be NULL (forward only: one pass).
 */
unigap_status unigap_dpo_from_logits(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                     double *policy_chosen_out, double *policy_rejected_out,
                                     int32_t *chosen_tokens_out, int32_t *rejected_tokens_out,
                                     unigap_dpo_logit_metrics *metrics);

#ifdef __cplusplus
}
#endif

#endif
