// Per-ISA probe kernels (internal). Only native/cpu/probes/dispatch.cpp names them.
#ifndef UNIGAP_CPU_PROBES_KERNELS_H
#define UNIGAP_CPU_PROBES_KERNELS_H
#include <cstdint>
namespace unigap {
float probe_sum_scalar(const float *x, int64_t n);
float probe_sum_avx2(const float *x, int64_t n);
float probe_sum_avx512(const float *x, int64_t n);
// Returns a value depending on the chains (so nothing is optimised away); flops = iters*lanes*chains*2.
float probe_fma_scalar(int64_t iters, int *lanes_x_chains);
float probe_fma_avx2(int64_t iters, int *lanes_x_chains);
float probe_fma_avx512(int64_t iters, int *lanes_x_chains);
}  // namespace unigap
#endif
