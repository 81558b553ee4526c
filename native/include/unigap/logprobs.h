/*
 * unigap log-prob scoring: the C ABI and its spec.
 *
 * Input: logits z, N rows of V scores (row-major, row stride V), dtype f32 | bf16 | f16; labels y
 * (N int32). Rows are grouped into sequences by offsets (n_seq + 1 increasing int64, offsets[0] = 0,
 * offsets[n_seq] = N; a sequence may be empty).
 *
 * Counting. Row t of sequence s = [a, b) is "counted" when its target label is neither ignore_index
 * nor masked out (mask[target] == 0) and, with shift, t < b - 1. The target of row t is t itself
 * without shift and t + 1 with shift (logits at t predict the label at t + 1, as TRL and Cut
 * Cross-Entropy do), so with shift the last row of each sequence is never counted and no copy is made.
 * Labels of counted rows are validated by the facade to lie in [0, V).
 *
 * Math (fp32 statistics whatever the input dtype; u = z / tau):
 *   lse_t      = log sum_v exp(u_tv)             one pass: online max m and running sum s of exp(u - m)
 *   logp_t     = u_t,y - lse_t                   (never log of a tiny probability)
 *   entropy_t  = lse_t - sum_v p_tv u_tv          p = softmax(u)
 *   correct_t  = argmax_v z_tv == y              (first maximum on ties)
 *   seq_sum_s  = sum of logp_t over counted rows of s; seq_count_s = number of counted rows;
 *   seq_mean_s = seq_sum_s / seq_count_s, and 0 (not NaN) when the count is 0
 *   seq_logit_sum_s = sum over counted rows of sum_v z_tv (raw logits, before tau); TRL's
 *                 logits/chosen metric is seq_logit_sum / (seq_count * V).
 * Rows that are not counted get logp = 0, entropy = 0, correct = 0, lse = 0.
 * A NaN logit makes that row's outputs NaN (and the sums it enters); other rows are unaffected.
 * -inf logits are allowed (probability 0); a row that is entirely -inf has NaN outputs.
 *
 * Gradient. With upstream g_t = grad_seq[s(t)] + grad_token[t] (either may be NULL):
 *   d L / d z_tv = g_t * (1[v == y_t] - p_tv) / tau     on counted rows, 0 on every other row.
 * The label column is computed in fp32 before rounding to the logits' dtype. grad_out has the logits'
 * dtype and shape and may alias logits exactly (in place, as flash-attn and Liger-Kernel do); every
 * element of grad_out is written.
 *
 * Sizes are 64-bit: N * V > 2^31 works. N = 0 is valid (nothing to do). V >= 1.
 * Threading: rows are split across the unigap thread pool. The active ISA tier (scalar | avx2 |
 * avx512, see common.h) picks the kernels; every tier agrees with the scalar one to fp32 rounding.
 *
 * Accuracy (implementation notes). The scalar tier uses libm expf in natural units. The AVX2 and
 * AVX-512 tiers work in base 2 (exp(u) = 2^(u log2(e))): AVX2 with x = fl(z * log2(e) / tau) and a
 * degree-5 polynomial for 2^f (max relative error 1.9e-7); AVX-512 forms the row statistics from
 * d = z - max z (raw units, exact 0 at the max) with 2^(d log2(e) / tau) by a 32-entry table of
 * 2^(j/32), a quadratic and vscalefps (max relative error 2.7e-7 per summed term), and the gradient
 * with the same exp2 from z - lse tau / log2(e) (raw units); at extreme temperatures (|log2 tau| >
 * ~60) both take x = fl(z * log2(e) / tau) with a 16-entry table and a degree-3 polynomial (1.1e-7)
 * instead. So their lse / logp
 * differ from the scalar tier by a few fp32 ulps of |lse|. logp is formed as (x_y - m) - log(s) with
 * m = fl(max z * log2(e) / tau), so a row whose label is its unique maximum with the rest at -inf
 * (e.g. V = 1) gives logp = 0 exactly. The label column of the gradient
 * is g / tau * -expm1(logp). Per-sequence sums (seq_sum, seq_logit_sum) are accumulated in double.
 * Range: every quantity is formed from u in fp32, so the exponent u_tv - lse_t carries an absolute
 * rounding error of about ulp(|u|). lse and logp keep a few ulps of |lse| at any magnitude; the
 * probabilities, the entropy and the gradient lose relative accuracy as |u| grows (about 1e-3 at
 * |u| ~ 2^12, none left near 2^24). Rows far from zero and low temperatures are otherwise exact in
 * every tier (tested with logits around +-3e4 at tau = 1, around 12 at tau = 0.1, 0 at tau = 0.01).
 * An out-of-place gradient of 64 MiB or more is written with non-temporal stores on AVX-512 (it
 * would only evict the logits from the caches).
 */
#ifndef UNIGAP_LOGPROBS_H
#define UNIGAP_LOGPROBS_H

#include "unigap/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct unigap_logprobs_args {
  /* inputs */
  const void *logits;     /* N * V elements of dtype */
  unigap_dtype dtype;     /* UNIGAP_DTYPE_F32 | UNIGAP_DTYPE_BF16 | UNIGAP_DTYPE_F16 */
  int64_t n_tokens;       /* N */
  int64_t vocab;          /* V >= 1 */
  const int32_t *labels;  /* N */
  const uint8_t *mask;    /* N or NULL; mask[i] == 0 excludes target i */
  int32_t ignore_index;   /* TRL / PyTorch default -100 */
  const int64_t *offsets; /* n_seq + 1 */
  int64_t n_seq;
  int shift;         /* 0 | 1 */
  float temperature; /* > 0, finite */
  /* outputs: any may be NULL (not computed); token outputs have N entries, seq outputs n_seq */
  float *token_logp;
  float *token_entropy;
  uint8_t *token_correct;
  float *token_lse; /* keep it to make the backward a single pass */
  float *seq_sum;
  int32_t *seq_count;
  float *seq_mean;
  double *seq_logit_sum;
} unigap_logprobs_args;

typedef struct unigap_logprobs_grad {
  const float *grad_seq;   /* n_seq upstream gradients of seq_sum, or NULL */
  const float *grad_token; /* N upstream gradients of token_logp, or NULL */
  const float *token_lse;  /* from a forward call on the same args, or NULL (then recomputed) */
  void *grad_out;          /* N * V elements of the logits' dtype; may alias logits */
} unigap_logprobs_grad;

/* Forward: fills the requested outputs. */
unigap_status unigap_logprobs_forward(const unigap_logprobs_args *a);

/* Backward only: writes grad_out. Needs token_lse from a forward (else recomputes it). */
unigap_status unigap_logprobs_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g);

/* Forward + backward fused per row (the row stays in cache between its two sweeps): fills the
 * forward outputs of `a` and writes g->grad_out. The upstream gradient must be known up front. */
unigap_status unigap_logprobs_forward_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g);

/* The software prefetch distance of the statistics' sweep (AVX-512 tier). 0, the default: each pool
 * thread tunes it for f32 rows of 8192 or more logits while it works, timing a few rows and keeping
 * the fastest of four distances (the best one moves with the memory system's load); other rows take
 * the tier's default. 1-255: pinned at that many KiB ahead, for every dtype. The environment variable UNIGAP_PREFETCH_KIB sets the value at the first
 * call. A prefetch never changes a result: every setting gives the same bits. Returns
 * UNIGAP_STATUS_INVALID_ARGUMENT outside 0-255. Meant for benchmarks and A/B runs. */
unigap_status unigap_logprobs_set_prefetch_kib(int kib);
int unigap_logprobs_prefetch_kib(void);

#ifdef __cplusplus
}
#endif

#endif
