// CUDA availability probe. Linked against the static CUDA runtime, so the addon loads where there is
// no CUDA at all; without a driver the runtime calls fail and the reason is reported.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "unigap/common.h"

extern "C" {

void unigap_cuda_info_get(unigap_cuda_info *out) {
  if (!out) return;
  std::memset(out, 0, sizeof *out);
  out->compiled = 1;
  cudaRuntimeGetVersion(&out->runtime_version);
  int drv = 0;
  if (cudaDriverGetVersion(&drv) == cudaSuccess) out->driver_version = drv;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    std::snprintf(out->reason, sizeof out->reason, "cudaGetDeviceCount failed: %s (%s)",
                  cudaGetErrorName(err), cudaGetErrorString(err));
    cudaGetLastError();
    count = 0;
  } else if (count == 0) {
    std::snprintf(out->reason, sizeof out->reason, "no CUDA device visible");
  }
  out->device_count = count;
}

int unigap_cuda_devices(unigap_cuda_device *out, int cap) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  int n = 0;
  for (int i = 0; i < count && n < cap; i++) {
    cudaDeviceProp prop;
    const cudaError_t e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) {
      // Keep entry i at position i (callers index this list by device number): an unreadable device
      // is listed with compute capability 0.0, which no verified-path check accepts.
      cudaGetLastError();
      std::snprintf(out[n].name, sizeof out[n].name, "(properties unavailable: %s)", cudaGetErrorName(e));
      out[n].major = out[n].minor = 0;
      out[n].total_mem = 0;
      n++;
      continue;
    }
    std::snprintf(out[n].name, sizeof out[n].name, "%s", prop.name);
    out[n].major = prop.major;
    out[n].minor = prop.minor;
    out[n].total_mem = static_cast<int64_t>(prop.totalGlobalMem);
    n++;
  }
  return n;
}
}
