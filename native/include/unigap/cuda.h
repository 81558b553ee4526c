/*
 * unigap CUDA backend: device memory, streams and the CUDA twins of the kernel families.
 *
 * The CUDA backend is a peer of the CPU one (design rule 3). Every function here exists in every
 * build: without the CUDA backend compiled in (UNIGAP_CUDA=off, the node-gyp fallback, no nvcc) they
 * return UNIGAP_STATUS_DEVICE_UNAVAILABLE (native/cpu/cuda_absent_kernels.cpp), and with it compiled
 * in but no usable device (no driver, no GPU) they return the same status. The reason is readable
 * through unigap_cuda_last_error().
 *
 * Pointers. Every buffer an entry point below takes is DEVICE memory (cudaMalloc, or a pointer another
 * framework allocated on the same device, e.g. torch's data_ptr()) unless it says "host". The
 * current device of the calling thread is used (unigap_cuda_set_device). The kernels assert cheap
 * host-side invariants (non-NULL, sizes, dtype, temperature, that every pointer is device-reachable:
 * device, managed or pinned host memory, never plain host memory, which would fault the context) and
 * return a status; values that live on the device (labels, offsets) are the facade's to validate:
 * a counted label outside [0, V) never reads out of bounds, it makes that row's outputs (and its
 * gradient row) NaN.
 *
 * Streams. `stream` is a cudaStream_t (NULL = the legacy default stream). Kernel entry points only
 * ENQUEUE work on the stream and return; outputs are valid after unigap_cuda_stream_sync (or any
 * later work on the same stream). Scratch memory comes from the stream-ordered allocator
 * (cudaMallocAsync), so no call synchronises the device, except unigap_cuda_dpo_from_logits, which
 * must bring the B per-sequence sums to the host for the DPO loss and therefore waits on the stream
 * once.
 *
 * Semantics. unigap_cuda_logprobs_* implement native/include/unigap/logprobs.h exactly (same args
 * struct, same outputs, fp32 statistics, NaN and -inf rules, grad_out may alias logits); only the
 * pointers are device pointers. Differences to the CPU tiers are fp32 rounding (the GPU reduces in
 * another order, uses ex2.approx for exp, and sums sequences in double).
 */
#ifndef UNIGAP_CUDA_H
#define UNIGAP_CUDA_H

#include "unigap/common.h"
#include "unigap/dpo.h"
#include "unigap/logprobs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A cudaStream_t, opaque here so the header needs no CUDA include. NULL is the default stream. */
typedef void *unigap_cuda_stream;

/* 1 when the CUDA backend is compiled in and at least one device is usable, else 0 (cached after
 * the first call; cheap). */
int unigap_cuda_available(void);

/* The last CUDA-side failure of the calling thread, as "cudaErrorX (text) in where", or "" when
 * none. Thread-local; valid until the thread's next unigap_cuda_* call. Never NULL. */
const char *unigap_cuda_last_error(void);

/* Make `device` current for the calling thread (cudaSetDevice). */
unigap_status unigap_cuda_set_device(int device);
unigap_status unigap_cuda_get_device(int *device);

/* Device memory. alloc of 0 bytes gives *ptr = NULL and OK. free(NULL) is OK. */
unigap_status unigap_cuda_alloc(size_t bytes, void **ptr);
unigap_status unigap_cuda_free(void *ptr);
/* Copies on `stream` (asynchronous with respect to the host only for pinned host memory; with
 * pageable host memory h2d returns once the source was staged and d2h once the data arrived). */
unigap_status unigap_cuda_memcpy_h2d(void *dst_device, const void *src_host, size_t bytes, unigap_cuda_stream stream);
unigap_status unigap_cuda_memcpy_d2h(void *dst_host, const void *src_device, size_t bytes, unigap_cuda_stream stream);
unigap_status unigap_cuda_memcpy_d2d(void *dst_device, const void *src_device, size_t bytes, unigap_cuda_stream stream);
unigap_status unigap_cuda_memset(void *dst_device, int byte, size_t bytes, unigap_cuda_stream stream);

/* Streams: non-blocking streams on the current device. */
unigap_status unigap_cuda_stream_create(unigap_cuda_stream *out);
unigap_status unigap_cuda_stream_destroy(unigap_cuda_stream stream);
unigap_status unigap_cuda_stream_sync(unigap_cuda_stream stream);

/* What a pointer is: *is_device = 1 for device (or managed) memory, with its device ordinal;
 * 0 for host or unknown memory (device = -1). */
unigap_status unigap_cuda_pointer_info(const void *ptr, int *is_device, int *device);

/* Log-prob scoring on device pointers (see logprobs.h for the math and the args). */
unigap_status unigap_cuda_logprobs_forward(const unigap_logprobs_args *a, unigap_cuda_stream stream);
unigap_status unigap_cuda_logprobs_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g,
                                            unigap_cuda_stream stream);
unigap_status unigap_cuda_logprobs_forward_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g,
                                                    unigap_cuda_stream stream);

/*
 * Fused "loss from logits" in two passes over the logits, the shape of DPO from logits:
 *   1. forward on the device (every output `a` asks for, plus token_lse and seq_sum/seq_count in
 *      scratch when `a` does not ask for them);
 *   2. the n_seq sequence sums and counts come to the host (one stream sync) and `loss_fn` turns
 *      them into the upstream gradient grad_seq (host, n_seq floats) — this is where the DPO family's
 *      CPU loss (unigap_dpo_*) runs, so the GPU path has exactly its semantics;
 *   3. backward on the device with grad_seq and the stored LSE, into grad_out (may alias logits).
 * loss_fn returns a status; a non-OK status stops before the backward and is returned.
 * seq_sum_host / seq_count_host point into scratch valid only during the callback.
 */
typedef unigap_status (*unigap_cuda_seq_loss_fn)(void *ctx, const float *seq_sum_host,
                                                  const int32_t *seq_count_host, int64_t n_seq,
                                                  float *grad_seq_host);
unigap_status unigap_cuda_logprobs_seq_loss(const unigap_logprobs_args *a, unigap_cuda_seq_loss_fn loss_fn,
                                            void *ctx, void *grad_out, unigap_cuda_stream stream);

/*
 * DPO from logits on the GPU: unigap_dpo_from_logits (dpo.h) with `lp` on DEVICE pointers (logits,
 * labels, mask, offsets; lp's output pointers are ignored) and grad_out a device buffer (may alias
 * lp->logits; NULL = forward only, one pass). Everything else is HOST memory: `d` (options and the
 * B reference log-probs), policy_*_out, *_tokens_out and metrics. Pass 1 and pass 2 run on the GPU;
 * the pair-level loss runs in the CPU family (unigap_dpo_loss) on the 2B sequence sums, so the loss,
 * rewards and gradients have exactly the CPU semantics. Waits on `stream` once (after pass 1) and
 * returns with pass 2 enqueued.
 */
unigap_status unigap_cuda_dpo_from_logits(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                          double *policy_chosen_out, double *policy_rejected_out,
                                          int32_t *chosen_tokens_out, int32_t *rejected_tokens_out,
                                          unigap_dpo_logit_metrics *metrics, unigap_cuda_stream stream);

/*
 * dpoLoss on device-resident pair arrays: every B-length array of `d` (inputs and outputs) and the
 * scalar outputs loss / reward_accuracy are DEVICE pointers; loss_types / loss_weights stay HOST
 * arrays (options). Today this moves the O(B) inputs to the host, runs unigap_dpo_loss and moves the
 * outputs back (synchronous on `stream`): exact CPU semantics, no GPU kernel. It exists so a caller
 * whose log-probs live on the GPU needs no copies of its own; a device kernel can replace it behind
 * the same ABI.
 */
unigap_status unigap_cuda_dpo_loss(const unigap_dpo_args *d, unigap_cuda_stream stream);

/*
 * Similarity on device pointers (spec: unigap/similarity.h, mirrored: normalisation with an f32 sum of
 * squares and 1 / sqrt in f64, zero rows -> 0, NaN / infinite rows poison exactly their outputs, the
 * top-k order "any number beats NaN, larger beats smaller, ties -> lower index", ranks = 1 + #strictly
 * greater with s_ii from the same accumulation (the same instruction sequence) as s_ij). Inputs are
 * f32 / bf16 / f16 (f64: UNSUPPORTED_DTYPE), each matrix its own dtype; every sum is f32.
 *
 * Products. Two paths (native/cuda/similarity.cu, similarity_mma.cuh):
 *   - tensor cores (mma.sync, f32 accumulation) on devices of compute capability >= 8.0 when both
 *     inputs are bf16 or both are f16: the raw rows are multiplied (bf16 x bf16 and f16 x f16 products
 *     are exact in f32) and the 1 / |row| factors applied in the epilogue, s = (acc * fa_i) * fb_j; the
 *     result differs from the CPU only by f32 summation order (and the tensor cores' internal rounding
 *     of each k step), as the CPU tiers differ from each other. No flag needed: no input is rounded.
 *   - exact f32 FMA (a shared-memory tiled SIMT kernel, one fmaf chain per score) for everything else
 *     (f32, mixed dtypes, sm_75).
 * `flags` (bits; others are INVALID_ARGUMENT):
 *   UNIGAP_CUDA_SIM_ALLOW_TF32  f32 (and mixed) inputs may use TF32 tensor cores on sm_80+: the
 *                               normalised rows are rounded to TF32 (10-bit mantissa, to nearest, ties
 *                               away), a relative error up to 2^-11 per element, |ds| <= 2^-10 for
 *                               cosines. Ignored where no TF32 path exists (sm_75) or a better one does
 *                               (bf16 / f16 pairs).
 *   UNIGAP_CUDA_SIM_SIMT        force the exact SIMT path (comparisons and timing).
 * Scratch: the rows are packed once (O((N + M) D), stream-ordered allocator): normalised f32 panels
 * (SIMT, TF32) or raw 16-bit panels plus one f32 factor per row (tensor cores); top-k keeps per-split
 * lists of k (O(N k)) and never writes N x M (tuned for small k: insertion into sorted lists); ranks
 * keep one count per row. clipScore = 100 * max(paired cosine, 0) on the host.
 * Outputs (all DEVICE memory): out n floats | out n * m floats | indices, scores n * k | ranks n doubles.
 */
#define UNIGAP_CUDA_SIM_ALLOW_TF32 1
#define UNIGAP_CUDA_SIM_SIMT 2

unigap_status unigap_cuda_paired_cosine(const void *a, unigap_dtype a_dtype, const void *b, unigap_dtype b_dtype,
                                        int64_t n, int64_t d, float *out, unigap_cuda_stream stream);
unigap_status unigap_cuda_similarity_matrix(const void *a, unigap_dtype a_dtype, int64_t n, const void *b,
                                            unigap_dtype b_dtype, int64_t m, int64_t d, int normalize, float scale,
                                            float bias, float *out, int flags, unigap_cuda_stream stream);
unigap_status unigap_cuda_topk_similarity(const void *q, unigap_dtype q_dtype, int64_t n, const void *c,
                                          unigap_dtype c_dtype, int64_t m, int64_t d, int64_t k, int normalize,
                                          int32_t *indices, float *scores, int flags, unigap_cuda_stream stream);
unigap_status unigap_cuda_retrieval_ranks(const void *q, unigap_dtype q_dtype, const void *c, unigap_dtype c_dtype,
                                          int64_t n, int64_t d, int normalize, double *ranks, int flags,
                                          unigap_cuda_stream stream);

#ifdef __cplusplus
}
#endif

#endif
