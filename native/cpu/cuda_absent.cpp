// Linked when the CUDA backend is not compiled in: the report says so.
#include <cstdio>
#include <cstring>

#include "unigap/common.h"

extern "C" {

void unigap_cuda_info_get(unigap_cuda_info *out) {
  if (!out) return;
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->reason, sizeof out->reason,
                "CUDA backend not compiled in (built with UNIGAP_CUDA=off, the node-gyp fallback, or nvcc not found)");
}

int unigap_cuda_devices(unigap_cuda_device *, int) { return 0; }
}
