// Linked when the CUDA backend is not compiled in: every entry point of unigap/cuda.h exists and
// answers UNIGAP_STATUS_DEVICE_UNAVAILABLE, with the reason in unigap_cuda_last_error().
#include "unigap/cuda.h"

namespace {
const char kReason[] =
    "no usable CUDA device: CUDA backend not compiled in (built with UNIGAP_CUDA=off, the node-gyp fallback, or "
    "nvcc not found)";
}

extern "C" {

int unigap_cuda_available(void) { return 0; }
const char *unigap_cuda_last_error(void) { return kReason; }

unigap_status unigap_cuda_set_device(int) { return UNIGAP_STATUS_DEVICE_UNAVAILABLE; }
unigap_status unigap_cuda_get_device(int *device) {
  if (device) *device = -1;
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_alloc(size_t, void **ptr) {
  if (ptr) *ptr = nullptr;
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_free(void *ptr) { return ptr ? UNIGAP_STATUS_DEVICE_UNAVAILABLE : UNIGAP_STATUS_OK; }
unigap_status unigap_cuda_memcpy_h2d(void *, const void *, size_t, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_memcpy_d2h(void *, const void *, size_t, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_memcpy_d2d(void *, const void *, size_t, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_memset(void *, int, size_t, unigap_cuda_stream) { return UNIGAP_STATUS_DEVICE_UNAVAILABLE; }
unigap_status unigap_cuda_stream_create(unigap_cuda_stream *out) {
  if (out) *out = nullptr;
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_stream_destroy(unigap_cuda_stream s) {
  return s ? UNIGAP_STATUS_DEVICE_UNAVAILABLE : UNIGAP_STATUS_OK;
}
unigap_status unigap_cuda_stream_sync(unigap_cuda_stream) { return UNIGAP_STATUS_DEVICE_UNAVAILABLE; }
unigap_status unigap_cuda_pointer_info(const void *, int *is_device, int *device) {
  if (is_device) *is_device = 0;
  if (device) *device = -1;
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}

unigap_status unigap_cuda_logprobs_forward(const unigap_logprobs_args *, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_logprobs_backward(const unigap_logprobs_args *, const unigap_logprobs_grad *,
                                            unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_logprobs_forward_backward(const unigap_logprobs_args *, const unigap_logprobs_grad *,
                                                    unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_logprobs_seq_loss(const unigap_logprobs_args *, unigap_cuda_seq_loss_fn, void *, void *,
                                            unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_dpo_from_logits(const unigap_logprobs_args *, const unigap_dpo_args *, void *, double *,
                                          double *, int32_t *, int32_t *, unigap_dpo_logit_metrics *,
                                          unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_dpo_loss(const unigap_dpo_args *, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}

unigap_status unigap_cuda_paired_cosine(const void *, unigap_dtype, const void *, unigap_dtype, int64_t, int64_t,
                                        float *, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_similarity_matrix(const void *, unigap_dtype, int64_t, const void *, unigap_dtype, int64_t,
                                            int64_t, int, float, float, float *, int, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_topk_similarity(const void *, unigap_dtype, int64_t, const void *, unigap_dtype, int64_t,
                                          int64_t, int64_t, int, int32_t *, float *, int, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
unigap_status unigap_cuda_retrieval_ranks(const void *, unigap_dtype, const void *, unigap_dtype, int64_t, int64_t,
                                          int, double *, int, unigap_cuda_stream) {
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}
}
