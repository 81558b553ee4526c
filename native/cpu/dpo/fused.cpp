// DPO from logits in at most two passes over the logits (spec: unigap/dpo.h):
//   pass 1  unigap_logprobs_forward  -> per-sequence log-prob sums and counts, token LSE (kept), and
//           for TRL's metrics the token entropies, argmax hits and raw-logit sums;
//   pairs   unigap_dpo_loss          -> loss, rewards, d loss / d (each sequence sum);
//   pass 2  unigap_logprobs_backward -> d loss / d logits from grad_seq and the kept LSE (one sweep).
// Scratch is O(N + B); the logits are never copied.
#include <cmath>
#include <new>
#include <vector>

#include "unigap/dpo.h"
#include "unigap/logprobs.h"

namespace unigap {
namespace dpo {
unigap_status validate_options(const unigap_dpo_args *a);
}
}  // namespace unigap

namespace {

unigap_status run(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out, double *pc_out,
                  double *pr_out, int32_t *ct_out, int32_t *rt_out, unigap_dpo_logit_metrics *metrics) {
  const int64_t B = d->n_pairs, N = lp->n_tokens, S = 2 * B;
  std::vector<float> lse(static_cast<size_t>(N)), seq_sum(S);
  std::vector<int32_t> seq_count(S);
  std::vector<float> entropy;
  std::vector<uint8_t> correct;
  std::vector<double> logit_sum;
  unigap_logprobs_args f = *lp;
  f.token_logp = nullptr;
  f.seq_mean = nullptr;
  f.token_lse = lse.data();
  f.seq_sum = seq_sum.data();
  f.seq_count = seq_count.data();
  f.token_entropy = nullptr;
  f.token_correct = nullptr;
  f.seq_logit_sum = nullptr;
  if (metrics) {
    entropy.resize(static_cast<size_t>(N));
    correct.resize(static_cast<size_t>(N));
    logit_sum.resize(S);
    f.token_entropy = entropy.data();
    f.token_correct = correct.data();
    f.seq_logit_sum = logit_sum.data();
  }
  unigap_status s = unigap_logprobs_forward(&f);  // pass 1
  if (s != UNIGAP_STATUS_OK) return s;

  std::vector<double> pc(B), pr(B), gc(B), gr(B);
  std::vector<int32_t> nc(seq_count.begin(), seq_count.begin() + B), nr(seq_count.begin() + B, seq_count.end());
  for (int64_t i = 0; i < B; i++) {
    pc[i] = seq_sum[i];
    pr[i] = seq_sum[B + i];
  }
  unigap_dpo_args dd = *d;
  dd.policy_chosen = pc.data();
  dd.policy_rejected = pr.data();
  dd.chosen_tokens = nc.data();
  dd.rejected_tokens = nr.data();
  if (!dd.grad_chosen) dd.grad_chosen = gc.data();
  if (!dd.grad_rejected) dd.grad_rejected = gr.data();
  if ((s = unigap_dpo_loss(&dd)) != UNIGAP_STATUS_OK) return s;

  for (int64_t i = 0; i < B; i++) {
    if (pc_out) pc_out[i] = pc[i];
    if (pr_out) pr_out[i] = pr[i];
    if (ct_out) ct_out[i] = nc[i];
    if (rt_out) rt_out[i] = nr[i];
  }
  if (metrics) {
    // Rows that are not counted hold 0 entropy and 0 hits (logprobs.h), so plain sums over each
    // sequence's rows are sums over its completion tokens.
    double ent = 0, hits = 0, lc = 0, lr = 0;
    int64_t tc = 0, tr = 0;
    for (int64_t q = 0; q < S; q++) {
      for (int64_t t = lp->offsets[q]; t < lp->offsets[q + 1]; t++) {
        ent += entropy[t];
        if (q < B) hits += correct[t];
      }
      if (q < B) {
        tc += seq_count[q];
        lc += logit_sum[q];
      } else {
        tr += seq_count[q];
        lr += logit_sum[q];
      }
    }
    const double V = static_cast<double>(lp->vocab);
    metrics->chosen_token_total = tc;
    metrics->rejected_token_total = tr;
    metrics->logits_chosen = tc ? lc / (static_cast<double>(tc) * V) : 0.0;
    metrics->logits_rejected = tr ? lr / (static_cast<double>(tr) * V) : 0.0;
    metrics->entropy = (tc + tr) ? ent / static_cast<double>(tc + tr) : 0.0;
    metrics->token_accuracy = tc ? hits / static_cast<double>(tc) : 0.0;
  }
  if (!grad_out) return UNIGAP_STATUS_OK;

  std::vector<float> grad_seq(S);
  for (int64_t i = 0; i < B; i++) {
    grad_seq[i] = static_cast<float>(dd.grad_chosen[i]);
    grad_seq[B + i] = static_cast<float>(dd.grad_rejected[i]);
  }
  unigap_logprobs_grad g{};
  g.grad_seq = grad_seq.data();
  g.grad_token = nullptr;
  g.token_lse = lse.data();
  g.grad_out = grad_out;
  return unigap_logprobs_backward(&f, &g);  // pass 2
}

}  // namespace

extern "C" unigap_status unigap_dpo_from_logits(const unigap_logprobs_args *lp, const unigap_dpo_args *d,
                                                void *grad_out, double *policy_chosen_out,
                                                double *policy_rejected_out, int32_t *chosen_tokens_out,
                                                int32_t *rejected_tokens_out, unigap_dpo_logit_metrics *metrics) {
  if (!lp || !d) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (d->policy_chosen || d->policy_rejected || d->chosen_tokens || d->rejected_tokens)
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (d->n_pairs < 1 || lp->n_seq != 2 * d->n_pairs || !lp->offsets || lp->n_tokens < 0)
    return UNIGAP_STATUS_SHAPE_MISMATCH;
  // Options are checked before pass 1 (counts are known to come, so only the scalars matter here).
  unigap_dpo_args probe = *d;
  static const int32_t kZero = 0;
  probe.chosen_tokens = probe.rejected_tokens = &kZero;
  unigap_status s = unigap::dpo::validate_options(&probe);
  if (s != UNIGAP_STATUS_OK) return s;
  try {
    return run(lp, d, grad_out, policy_chosen_out, policy_rejected_out, chosen_tokens_out, rejected_tokens_out,
               metrics);
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  } catch (...) {
    return UNIGAP_STATUS_INTERNAL;
  }
}
