/*
 * Machine-limit probes for the benchmarks: every bench row is printed as a share of what this machine
 * can do, measured here, not a datasheet number.
 *  - read bandwidth: all pool threads stream-sum one buffer (f32 adds, active ISA tier); best of reps.
 *  - FMA peak: all pool threads run independent chains of f32 fused multiply-adds in registers
 *    (active tier: avx512 = 16 lanes, avx2 = 8 lanes, scalar = 1), 2 flops per lane per FMA.
 */
#ifndef UNIGAP_PROBES_H
#define UNIGAP_PROBES_H

#include "unigap/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GB/s (1e9 bytes/s) reading a fresh `bytes`-byte buffer, best of `reps`. Returns < 0 on failure. */
double unigap_probe_read_bandwidth(int64_t bytes, int reps);
/* GFLOP/s of f32 FMA across the pool, best of `reps` runs of `iters` iterations per thread. */
double unigap_probe_fma_peak(int64_t iters, int reps);

#ifdef __cplusplus
}
#endif

#endif
