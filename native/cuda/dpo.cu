// DPO on the GPU: the fused DPO-from-logits path (two passes over device logits around the CPU's
// exact pair-level loss) and dpoLoss on device-resident pair arrays. Spec: unigap/dpo.h, unigap/cuda.h.
//
// The pair-level math stays in one place, native/cpu/dpo (unigap_dpo_loss, double precision, every
// TRL loss type): the GPU computes what costs bandwidth (the passes over B x T x V logits) and brings
// only O(B) numbers to the host and back, so both backends agree by construction on the DPO part.
#include <cuda_runtime.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "common.cuh"
#include "unigap/cuda.h"
#include "unigap/dpo.h"

namespace unigap_cuda {
unigap_status logprobs_run(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode, cudaStream_t st);

namespace {

// Per sequence: sum of token entropies and of argmax hits (uncounted rows hold 0 in both).
__global__ void __launch_bounds__(256) seq_extra_kernel(const int64_t *offsets, int64_t n, const float *entropy,
                                                        const uint8_t *correct, double *ent_sum, double *hits) {
  const int64_t s = blockIdx.x;
  const int64_t a = min(max(offsets[s], (int64_t)0), n), b = min(max(offsets[s + 1], a), n);
  double e = 0.0, h = 0.0;
  for (int64_t t = a + threadIdx.x; t < b; t += blockDim.x) {
    e += entropy[t];
    h += correct[t];
  }
  e = warp_sum(e);
  h = warp_sum(h);
  __shared__ double se[8], sh[8];
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  if (l == 0) {
    se[w] = e;
    sh[w] = h;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < (int)(blockDim.x / 32); k++) {
      e += se[k];
      h += sh[k];
    }
    ent_sum[s] = e;
    hits[s] = h;
  }
}


// Carves aligned sub-buffers out of one stream-ordered allocation.
struct Carver {
  size_t off = 0;
  template <class T>
  size_t take(int64_t n) {
    off = (off + 255) & ~size_t(255);
    size_t at = off;
    off += (size_t)n * sizeof(T);
    return at;
  }
};

template <class T>
unigap_status d2h(std::vector<T> &dst, const T *src, int64_t n, cudaStream_t st) {
  dst.resize((size_t)n);
  if (n == 0) return UNIGAP_STATUS_OK;
  return check(cudaMemcpyAsync(dst.data(), src, (size_t)n * sizeof(T), cudaMemcpyDeviceToHost, st), "cudaMemcpyAsync D2H");
}

}  // namespace
}  // namespace unigap_cuda

using namespace unigap_cuda;

namespace unigap_cuda {
unigap_status logprobs_emulate(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode);

namespace {

// The GPU side of the fused path: stream-ordered scratch, kernels and copies on one stream.
struct DeviceOps {
  cudaStream_t st;
  StreamScratch scratch;
  explicit DeviceOps(cudaStream_t s) : st(s), scratch(s) {}
  unigap_status ready() { return require_device(); }
  unigap_status alloc(size_t bytes, char **out) {
    UNIGAP_CUDA_TRY(cudaMallocAsync(&scratch.ptr, bytes, st));
    *out = static_cast<char *>(scratch.ptr);
    return UNIGAP_STATUS_OK;
  }
  unigap_status run(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode) {
    return logprobs_run(a, g, mode, st);
  }
  unigap_status seq_extra(const int64_t *offsets, int64_t n, int64_t ns, const float *ent, const uint8_t *cor,
                          double *esum, double *hits) {
    if (n > 0) {
      seq_extra_kernel<<<(unsigned)ns, 256, 0, st>>>(offsets, n, ent, cor, esum, hits);
      return check(cudaGetLastError(), "seq_extra_kernel");
    }
    UNIGAP_CUDA_TRY(cudaMemsetAsync(esum, 0, (size_t)ns * sizeof(double), st));
    return check(cudaMemsetAsync(hits, 0, (size_t)ns * sizeof(double), st), "cudaMemsetAsync");
  }
  template <class T>
  unigap_status d2h(std::vector<T> &dst, const T *src, int64_t n) {
    return unigap_cuda::d2h(dst, src, n, st);
  }
  unigap_status h2d(void *dst, const void *src, size_t bytes) {
    return bytes ? check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st), "cudaMemcpyAsync H2D")
                 : UNIGAP_STATUS_OK;
  }
  unigap_status sync() { return check(cudaStreamSynchronize(st), "cudaStreamSynchronize"); }
};

// The same composition on the host, the kernels' row code replayed by logprobs_emulate: lets the
// harness check the fused path's plumbing (scratch layout, metrics, the CPU loss, pass 2) without a GPU.
struct HostOps {
  std::vector<uint8_t> mem;
  unigap_status ready() { return UNIGAP_STATUS_OK; }
  unigap_status alloc(size_t bytes, char **out) {
    mem.assign(bytes + 256, 0xff);  // poisoned, like fresh device memory may be
    const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data());
    *out = reinterpret_cast<char *>((p + 255) & ~uintptr_t(255));
    return UNIGAP_STATUS_OK;
  }
  unigap_status run(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode) {
    return logprobs_emulate(a, g, mode);
  }
  unigap_status seq_extra(const int64_t *offsets, int64_t n, int64_t ns, const float *ent, const uint8_t *cor,
                          double *esum, double *hits) {
    for (int64_t q = 0; q < ns; q++) {
      const int64_t lo = std::min(std::max(offsets[q], (int64_t)0), n);
      const int64_t hi = std::min(std::max(offsets[q + 1], lo), n);
      double e = 0.0, h = 0.0;
      for (int64_t t = lo; t < hi; t++) {
        e += ent[t];
        h += cor[t];
      }
      esum[q] = e;
      hits[q] = h;
    }
    return UNIGAP_STATUS_OK;
  }
  template <class T>
  unigap_status d2h(std::vector<T> &dst, const T *src, int64_t n) {
    dst.assign(src, src + n);
    return UNIGAP_STATUS_OK;
  }
  unigap_status h2d(void *dst, const void *src, size_t bytes) {
    if (bytes) std::memcpy(dst, src, bytes);
    return UNIGAP_STATUS_OK;
  }
  unigap_status sync() { return UNIGAP_STATUS_OK; }
};

template <class Ops>
unigap_status dpo_from_logits_impl(Ops &ops, const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                   double *policy_chosen_out, double *policy_rejected_out, int32_t *chosen_tokens_out,
                                   int32_t *rejected_tokens_out, unigap_dpo_logit_metrics *metrics) {
  if (!lp || !d) return UNIGAP_STATUS_INVALID_ARGUMENT;
  const int64_t B = d->n_pairs;
  if (B < 1 || lp->n_seq != 2 * B) return UNIGAP_STATUS_SHAPE_MISMATCH;
  if (d->policy_chosen || d->policy_rejected || d->chosen_tokens || d->rejected_tokens)
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  const int64_t n = lp->n_tokens, ns = 2 * B;
  try {
    // Options first (O(B) on the host), so bad options never cost a pass over the logits.
    {
      std::vector<double> zeros((size_t)B, 0.0);
      std::vector<int32_t> ones((size_t)B, 1);
      unigap_dpo_args probe = *d;
      probe.policy_chosen = probe.policy_rejected = zeros.data();
      probe.chosen_tokens = probe.rejected_tokens = ones.data();
      probe.loss = probe.losses = probe.chosen_rewards = probe.rejected_rewards = probe.margins = nullptr;
      probe.reward_accuracy = probe.grad_chosen = probe.grad_rejected = nullptr;
      unigap_status s = unigap_dpo_loss(&probe);
      if (s != UNIGAP_STATUS_OK) return s;
    }
    unigap_status s = ops.ready();
    if (s != UNIGAP_STATUS_OK) return s;

    Carver cv;
    const size_t o_lse = cv.take<float>(n), o_ent = cv.take<float>(n), o_cor = cv.take<uint8_t>(n);
    const size_t o_sum = cv.take<float>(ns), o_cnt = cv.take<int32_t>(ns), o_lsum = cv.take<double>(ns);
    const size_t o_esum = cv.take<double>(ns), o_hits = cv.take<double>(ns), o_g = cv.take<float>(ns);
    char *base = nullptr;
    if ((s = ops.alloc(cv.off + 16, &base)) != UNIGAP_STATUS_OK) return s;

    // Pass 1: forward with what the loss needs (sums, counts, the LSE for pass 2) and, only when
    // TRL's metrics are asked for, entropy, argmax hits and logit sums (they make the row sweep
    // heavier: without them the pass runs at the plain forward's speed). lp's own outputs are ignored.
    unigap_logprobs_args f = *lp;
    f.token_logp = nullptr;
    f.token_lse = reinterpret_cast<float *>(base + o_lse);
    f.token_entropy = metrics ? reinterpret_cast<float *>(base + o_ent) : nullptr;
    f.token_correct = metrics ? reinterpret_cast<uint8_t *>(base + o_cor) : nullptr;
    f.seq_sum = reinterpret_cast<float *>(base + o_sum);
    f.seq_count = reinterpret_cast<int32_t *>(base + o_cnt);
    f.seq_mean = nullptr;
    f.seq_logit_sum = metrics ? reinterpret_cast<double *>(base + o_lsum) : nullptr;
    if ((s = ops.run(&f, nullptr, 0)) != UNIGAP_STATUS_OK) return s;
    double *esum = reinterpret_cast<double *>(base + o_esum);
    double *hits = reinterpret_cast<double *>(base + o_hits);
    if (metrics &&
        (s = ops.seq_extra(lp->offsets, n, ns, f.token_entropy, f.token_correct, esum, hits)) != UNIGAP_STATUS_OK)
      return s;

    std::vector<float> sums;
    std::vector<int32_t> counts;
    std::vector<double> lsum, ent, hit;
    if ((s = ops.d2h(sums, f.seq_sum, ns)) != UNIGAP_STATUS_OK) return s;
    if ((s = ops.d2h(counts, f.seq_count, ns)) != UNIGAP_STATUS_OK) return s;
    if (metrics) {
      if ((s = ops.d2h(lsum, f.seq_logit_sum, ns)) != UNIGAP_STATUS_OK) return s;
      if ((s = ops.d2h(ent, static_cast<const double *>(esum), ns)) != UNIGAP_STATUS_OK) return s;
      if ((s = ops.d2h(hit, static_cast<const double *>(hits), ns)) != UNIGAP_STATUS_OK) return s;
    }
    if ((s = ops.sync()) != UNIGAP_STATUS_OK) return s;

    // The pair-level loss: the CPU family, exactly.
    std::vector<double> pol((size_t)ns);
    for (int64_t i = 0; i < ns; i++) pol[(size_t)i] = sums[(size_t)i];
    std::vector<double> gc, gr;
    unigap_dpo_args dd = *d;
    dd.policy_chosen = pol.data();
    dd.policy_rejected = pol.data() + B;
    dd.chosen_tokens = counts.data();
    dd.rejected_tokens = counts.data() + B;
    if (grad_out && !dd.grad_chosen) {
      gc.resize((size_t)B);
      dd.grad_chosen = gc.data();
    }
    if (grad_out && !dd.grad_rejected) {
      gr.resize((size_t)B);
      dd.grad_rejected = gr.data();
    }
    if ((s = unigap_dpo_loss(&dd)) != UNIGAP_STATUS_OK) return s;

    if (policy_chosen_out) std::memcpy(policy_chosen_out, pol.data(), (size_t)B * sizeof(double));
    if (policy_rejected_out) std::memcpy(policy_rejected_out, pol.data() + B, (size_t)B * sizeof(double));
    if (chosen_tokens_out) std::memcpy(chosen_tokens_out, counts.data(), (size_t)B * sizeof(int32_t));
    if (rejected_tokens_out) std::memcpy(rejected_tokens_out, counts.data() + B, (size_t)B * sizeof(int32_t));
    if (metrics) {
      int64_t tc = 0, tr = 0;
      double lc = 0, lr = 0, es = 0, hc = 0;
      for (int64_t i = 0; i < B; i++) {
        tc += counts[(size_t)i];
        tr += counts[(size_t)(B + i)];
        lc += lsum[(size_t)i];
        lr += lsum[(size_t)(B + i)];
        hc += hit[(size_t)i];
      }
      for (int64_t i = 0; i < ns; i++) es += ent[(size_t)i];
      const double V = (double)lp->vocab;
      metrics->chosen_token_total = tc;
      metrics->rejected_token_total = tr;
      metrics->logits_chosen = tc ? lc / ((double)tc * V) : 0.0;
      metrics->logits_rejected = tr ? lr / ((double)tr * V) : 0.0;
      metrics->entropy = (tc + tr) ? es / (double)(tc + tr) : 0.0;
      metrics->token_accuracy = tc ? hc / (double)tc : 0.0;
    }
    if (!grad_out) return UNIGAP_STATUS_OK;

    // Pass 2: backward with grad_seq = [d loss / d chosen; d loss / d rejected] and the stored LSE.
    std::vector<float> g((size_t)ns);
    for (int64_t i = 0; i < B; i++) {
      g[(size_t)i] = (float)dd.grad_chosen[i];
      g[(size_t)(B + i)] = (float)dd.grad_rejected[i];
    }
    float *grad_seq = reinterpret_cast<float *>(base + o_g);
    if ((s = ops.h2d(grad_seq, g.data(), (size_t)ns * sizeof(float))) != UNIGAP_STATUS_OK) return s;
    unigap_logprobs_grad bg{grad_seq, nullptr, f.token_lse, grad_out};
    return ops.run(&f, &bg, 1);
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  }
}

template <class Ops>
unigap_status seq_loss_impl(Ops &ops, const unigap_logprobs_args *a, unigap_cuda_seq_loss_fn loss_fn, void *ctx,
                            void *grad_out) {
  if (!a || !loss_fn) return UNIGAP_STATUS_INVALID_ARGUMENT;
  unigap_status s = ops.ready();
  if (s != UNIGAP_STATUS_OK) return s;
  const int64_t n = a->n_tokens, ns = a->n_seq;
  if (n < 0 || ns < 0) return UNIGAP_STATUS_INVALID_ARGUMENT;
  try {
    Carver cv;
    const size_t o_lse = a->token_lse ? 0 : cv.take<float>(n);
    const size_t o_sum = a->seq_sum ? 0 : cv.take<float>(ns);
    const size_t o_cnt = a->seq_count ? 0 : cv.take<int32_t>(ns);
    const size_t o_g = cv.take<float>(ns);
    char *base = nullptr;
    if ((s = ops.alloc(cv.off + 16, &base)) != UNIGAP_STATUS_OK) return s;
    unigap_logprobs_args f = *a;
    if (!f.token_lse) f.token_lse = reinterpret_cast<float *>(base + o_lse);
    if (!f.seq_sum) f.seq_sum = reinterpret_cast<float *>(base + o_sum);
    if (!f.seq_count) f.seq_count = reinterpret_cast<int32_t *>(base + o_cnt);
    float *grad_seq = reinterpret_cast<float *>(base + o_g);
    if ((s = ops.run(&f, nullptr, 0)) != UNIGAP_STATUS_OK) return s;

    std::vector<float> sums;
    std::vector<int32_t> counts;
    if ((s = ops.d2h(sums, f.seq_sum, ns)) != UNIGAP_STATUS_OK) return s;
    if ((s = ops.d2h(counts, f.seq_count, ns)) != UNIGAP_STATUS_OK) return s;
    if ((s = ops.sync()) != UNIGAP_STATUS_OK) return s;
    std::vector<float> g((size_t)ns, 0.f);
    if ((s = loss_fn(ctx, sums.data(), counts.data(), ns, g.data())) != UNIGAP_STATUS_OK) return s;
    if (!grad_out) return UNIGAP_STATUS_OK;
    if ((s = ops.h2d(grad_seq, g.data(), (size_t)ns * sizeof(float))) != UNIGAP_STATUS_OK) return s;
    unigap_logprobs_grad gr{grad_seq, nullptr, f.token_lse, grad_out};
    return ops.run(&f, &gr, 1);
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  }
}

}  // namespace

// Host replay of unigap_cuda_dpo_from_logits on HOST pointers (harness only; not public ABI).
unigap_status dpo_from_logits_emulate(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                      double *policy_chosen_out, double *policy_rejected_out,
                                      int32_t *chosen_tokens_out, int32_t *rejected_tokens_out,
                                      unigap_dpo_logit_metrics *metrics) {
  HostOps ops;
  return dpo_from_logits_impl(ops, lp, d, grad_out, policy_chosen_out, policy_rejected_out, chosen_tokens_out,
                              rejected_tokens_out, metrics);
}

// Host replay of unigap_cuda_logprobs_seq_loss on HOST pointers (harness only; not public ABI).
unigap_status seq_loss_emulate(const unigap_logprobs_args *a, unigap_cuda_seq_loss_fn loss_fn, void *ctx,
                               void *grad_out) {
  HostOps ops;
  return seq_loss_impl(ops, a, loss_fn, ctx, grad_out);
}

}  // namespace unigap_cuda

extern "C" {

unigap_status unigap_cuda_logprobs_seq_loss(const unigap_logprobs_args *a, unigap_cuda_seq_loss_fn loss_fn, void *ctx,
                                            void *grad_out, unigap_cuda_stream stream) {
  unigap_cuda::DeviceOps ops(static_cast<cudaStream_t>(stream));
  return unigap_cuda::seq_loss_impl(ops, a, loss_fn, ctx, grad_out);
}

unigap_status unigap_cuda_dpo_from_logits(const unigap_logprobs_args *lp, const unigap_dpo_args *d, void *grad_out,
                                          double *policy_chosen_out, double *policy_rejected_out,
                                          int32_t *chosen_tokens_out, int32_t *rejected_tokens_out,
                                          unigap_dpo_logit_metrics *metrics, unigap_cuda_stream stream) {
  unigap_cuda::DeviceOps ops(static_cast<cudaStream_t>(stream));
  return unigap_cuda::dpo_from_logits_impl(ops, lp, d, grad_out, policy_chosen_out, policy_rejected_out,
                                           chosen_tokens_out, rejected_tokens_out, metrics);
}

unigap_status unigap_cuda_dpo_loss(const unigap_dpo_args *d, unigap_cuda_stream stream) {
  if (!d) return UNIGAP_STATUS_INVALID_ARGUMENT;
  const int64_t B = d->n_pairs;
  if (B < 1) return UNIGAP_STATUS_SHAPE_MISMATCH;
  if (!d->policy_chosen || !d->policy_rejected) return UNIGAP_STATUS_INVALID_ARGUMENT;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  try {
    std::vector<double> pc, pr, qc, qr, w;
    std::vector<int32_t> nc, nr;
    unigap_dpo_args h = *d;
    if ((s = d2h(pc, d->policy_chosen, B, st)) != UNIGAP_STATUS_OK) return s;
    if ((s = d2h(pr, d->policy_rejected, B, st)) != UNIGAP_STATUS_OK) return s;
    h.policy_chosen = pc.data();
    h.policy_rejected = pr.data();
    if (d->reference_chosen) {
      if ((s = d2h(qc, d->reference_chosen, B, st)) != UNIGAP_STATUS_OK) return s;
      h.reference_chosen = qc.data();
    }
    if (d->reference_rejected) {
      if ((s = d2h(qr, d->reference_rejected, B, st)) != UNIGAP_STATUS_OK) return s;
      h.reference_rejected = qr.data();
    }
    if (d->chosen_tokens) {
      if ((s = d2h(nc, d->chosen_tokens, B, st)) != UNIGAP_STATUS_OK) return s;
      h.chosen_tokens = nc.data();
    }
    if (d->rejected_tokens) {
      if ((s = d2h(nr, d->rejected_tokens, B, st)) != UNIGAP_STATUS_OK) return s;
      h.rejected_tokens = nr.data();
    }
    if (d->weights) {
      if ((s = d2h(w, d->weights, B, st)) != UNIGAP_STATUS_OK) return s;
      h.weights = w.data();
    }
    UNIGAP_CUDA_TRY(cudaStreamSynchronize(st));
    double loss = 0, acc = 0;
    std::vector<double> outs[6];
    double *const dev_out[6] = {d->losses, d->chosen_rewards, d->rejected_rewards, d->margins, d->grad_chosen, d->grad_rejected};
    double **host_out[6] = {&h.losses, &h.chosen_rewards, &h.rejected_rewards, &h.margins, &h.grad_chosen, &h.grad_rejected};
    for (int k = 0; k < 6; k++) {
      if (!dev_out[k]) continue;
      outs[k].resize((size_t)B);
      *host_out[k] = outs[k].data();
    }
    h.loss = d->loss ? &loss : nullptr;
    h.reward_accuracy = d->reward_accuracy ? &acc : nullptr;
    if ((s = unigap_dpo_loss(&h)) != UNIGAP_STATUS_OK) return s;
    for (int k = 0; k < 6; k++)
      if (dev_out[k])
        UNIGAP_CUDA_TRY(cudaMemcpyAsync(dev_out[k], outs[k].data(), (size_t)B * sizeof(double), cudaMemcpyHostToDevice, st));
    if (d->loss) UNIGAP_CUDA_TRY(cudaMemcpyAsync(d->loss, &loss, sizeof(double), cudaMemcpyHostToDevice, st));
    if (d->reward_accuracy)
      UNIGAP_CUDA_TRY(cudaMemcpyAsync(d->reward_accuracy, &acc, sizeof(double), cudaMemcpyHostToDevice, st));
    // The host staging vectors die on return: wait for the copies.
    UNIGAP_CUDA_TRY(cudaStreamSynchronize(st));
    return UNIGAP_STATUS_OK;
  } catch (const std::bad_alloc &) {
    return UNIGAP_STATUS_OUT_OF_MEMORY;
  }
}

}  // extern "C"
