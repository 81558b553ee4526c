// Device memory, streams, pointer queries and the thread-local CUDA error text (unigap/cuda.h).
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common.cuh"
#include "unigap/cuda.h"

namespace unigap_cuda {

namespace {
thread_local char t_error[768] = "";
std::once_flag g_probe_once;
int g_available = 0;
char g_reason[512] = "";  // unigap_cuda_info::reason is 512 bytes
}  // namespace

void set_error(cudaError_t err, const char *where) {
  std::snprintf(t_error, sizeof t_error, "%s (%s) in %s", cudaGetErrorName(err), cudaGetErrorString(err), where);
  // Clear the sticky "last error" of non-fatal failures so later calls start clean.
  cudaGetLastError();
}

void set_message(const char *msg) { std::snprintf(t_error, sizeof t_error, "%s", msg); }
void clear_error() { t_error[0] = '\0'; }

unigap_status check_device_ptr(const void *ptr, const char *name) {
  if (!ptr) return UNIGAP_STATUS_OK;
  cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) cudaGetLastError();
  if (err != cudaSuccess || attr.type == cudaMemoryTypeUnregistered) {
    char msg[200];
    std::snprintf(msg, sizeof msg, "%s is not device memory (pass cudaMalloc'd, DeviceTensor or pinned memory)", name);
    set_message(msg);
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  }
  return UNIGAP_STATUS_OK;
}

unigap_status require_device() {
  std::call_once(g_probe_once, [] {
    unigap_cuda_info ci;
    unigap_cuda_info_get(&ci);
    g_available = ci.device_count > 0;
    std::snprintf(g_reason, sizeof g_reason, "%s", ci.reason);
  });
  clear_error();
  if (g_available) return UNIGAP_STATUS_OK;
  std::snprintf(t_error, sizeof t_error, "no usable CUDA device: %s", g_reason);
  return UNIGAP_STATUS_DEVICE_UNAVAILABLE;
}

}  // namespace unigap_cuda

using unigap_cuda::check;
using unigap_cuda::require_device;

extern "C" {

int unigap_cuda_available(void) { return require_device() == UNIGAP_STATUS_OK; }

const char *unigap_cuda_last_error(void) { return unigap_cuda::t_error; }

unigap_status unigap_cuda_set_device(int device) {
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  return check(cudaSetDevice(device), "cudaSetDevice");
}

unigap_status unigap_cuda_get_device(int *device) {
  if (!device) return UNIGAP_STATUS_INVALID_ARGUMENT;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  return check(cudaGetDevice(device), "cudaGetDevice");
}

unigap_status unigap_cuda_alloc(size_t bytes, void **ptr) {
  if (!ptr) return UNIGAP_STATUS_INVALID_ARGUMENT;
  *ptr = nullptr;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  if (bytes == 0) return UNIGAP_STATUS_OK;
  return check(cudaMalloc(ptr, bytes), "cudaMalloc");
}

unigap_status unigap_cuda_free(void *ptr) {
  if (!ptr) return UNIGAP_STATUS_OK;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  return check(cudaFree(ptr), "cudaFree");
}

static unigap_status copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, unigap_cuda_stream stream,
                          const char *where) {
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  if (bytes == 0) return UNIGAP_STATUS_OK;
  if (!dst || !src) return UNIGAP_STATUS_INVALID_ARGUMENT;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  UNIGAP_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, st));
  // With pageable host memory the D2H copy is only complete after the stream reaches it.
  if (kind == cudaMemcpyDeviceToHost) return check(cudaStreamSynchronize(st), where);
  return UNIGAP_STATUS_OK;
}

unigap_status unigap_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, unigap_cuda_stream stream) {
  return copy(dst, src, bytes, cudaMemcpyHostToDevice, stream, "memcpy_h2d");
}
unigap_status unigap_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, unigap_cuda_stream stream) {
  return copy(dst, src, bytes, cudaMemcpyDeviceToHost, stream, "memcpy_d2h");
}
unigap_status unigap_cuda_memcpy_d2d(void *dst, const void *src, size_t bytes, unigap_cuda_stream stream) {
  return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, stream, "memcpy_d2d");
}

unigap_status unigap_cuda_memset(void *dst, int byte, size_t bytes, unigap_cuda_stream stream) {
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  if (bytes == 0) return UNIGAP_STATUS_OK;
  if (!dst) return UNIGAP_STATUS_INVALID_ARGUMENT;
  return check(cudaMemsetAsync(dst, byte, bytes, static_cast<cudaStream_t>(stream)), "cudaMemsetAsync");
}

unigap_status unigap_cuda_stream_create(unigap_cuda_stream *out) {
  if (!out) return UNIGAP_STATUS_INVALID_ARGUMENT;
  *out = nullptr;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  cudaStream_t st = nullptr;
  UNIGAP_CUDA_TRY(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  *out = st;
  return UNIGAP_STATUS_OK;
}

unigap_status unigap_cuda_stream_destroy(unigap_cuda_stream stream) {
  if (!stream) return UNIGAP_STATUS_OK;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  return check(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
}

unigap_status unigap_cuda_stream_sync(unigap_cuda_stream stream) {
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  return check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

unigap_status unigap_cuda_pointer_info(const void *ptr, int *is_device, int *device) {
  if (!is_device || !device) return UNIGAP_STATUS_INVALID_ARGUMENT;
  *is_device = 0;
  *device = -1;
  unigap_status s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  if (!ptr) return UNIGAP_STATUS_OK;
  cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();  // unregistered host memory on old runtimes: not a device pointer
    return UNIGAP_STATUS_OK;
  }
  if (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) {
    *is_device = 1;
    *device = attr.device;
  }
  return UNIGAP_STATUS_OK;
}

}  // extern "C"
