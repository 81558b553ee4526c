// Log-prob scoring on the GPU: the CUDA twin of native/cpu/logprobs (spec: unigap/logprobs.h).
//
// One row group per row: a warp per row (8 rows per 256-thread block) for V <= 2048, a 512-thread
// block per row above. Each thread reads its share of the row with 16-byte coalesced loads (a
// scalar head and tail handle rows that do not start 16-byte aligned, e.g. odd V), keeping an
// online max / sum-exp in the log2 domain (w = z * log2(e) / tau, one FADD + ex2 per element), plus
// optional entropy, argmax and logit-sum terms. The group reduces once, then (backward) sweeps the
// row again writing the gradient in the logits' dtype, in place or not. Sequence outputs are a
// second, tiny kernel per sequence over the per-row results (double sums, deterministic).
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <vector>

#include "common.cuh"
#include "unigap/cuda.h"
#include "unigap/logprobs.h"

namespace unigap_cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Params {
  const void *logits;
  int64_t n, V;
  const int32_t *labels;
  const uint8_t *mask;
  int32_t ignore_index;
  const int64_t *offsets;
  int64_t n_seq;
  int shift;
  float inv_tau;  // 1 / tau
  float c;        // log2(e) / tau
  // forward outputs (NULL = not requested); write_fwd = 0 in backward-only calls
  int write_fwd;
  float *token_logp, *token_entropy, *token_lse;
  uint8_t *token_correct;
  float *row_logp;   // token_logp or scratch: per-row logp for the sequence sums (NULL if none asked)
  double *row_lsum;  // scratch: per-row sum of raw logits (NULL unless seq_logit_sum asked)
  // backward
  const float *grad_seq, *grad_token, *lse_in;
  void *grad_out;
};

// Sequence s with offsets[s] <= t < offsets[s + 1] (empty sequences skipped).
UNIGAP_HD int64_t find_seq(const int64_t *off, int64_t n_seq, int64_t t) {
  int64_t lo = 0, hi = n_seq;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (off[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// Row t counts when its target (t + shift) stays inside the sequence, is not ignore_index and is
// not masked out. Returns the label through *y.
UNIGAP_HD bool row_counted(const Params &p, int64_t t, int64_t seq_end, int32_t *y) {
  if (p.shift && t >= seq_end - 1) return false;
  int64_t target = t + p.shift;
  if (target >= p.n) return false;  // only with offsets the facade should have refused
  int32_t lab = p.labels[target];
  *y = lab;
  if (lab == p.ignore_index) return false;
  if (p.mask && p.mask[target] == 0) return false;
  return true;
}

struct Stats {
  Online o;
  float amax;
  int64_t aidx;
  double lsum;
};

// Rescale a part (m, s, t) to the common max M: s' = s 2^(m-M), t' = 2^(m-M) (t + s (m - M)), where
// t = sum e (w - m) is kept relative to the part's own max (as the CPU tiers do) so the entropy
// log s - t / s does not cancel. A part with m = -inf holds nothing.
UNIGAP_HD void rescale(float m, float s, float t, float M, bool ent, float &s_out, float &t_out) {
  if (m == -INFINITY) {
    s_out = 0.f;
    t_out = 0.f;
    return;
  }
  const float delta = m - M;
  const float f = fast_exp2(delta);
  s_out = f * s;
  t_out = ent ? f * (t + s * delta) : 0.f;
}

template <bool kExtras>
UNIGAP_HD Stats stats_merge(Stats a, const Stats &b, bool ent, bool arg) {
  Stats r;
  const float m = fmaxf(a.o.m, b.o.m);
  float sa, ta, sb, tb;
  rescale(a.o.m, a.o.s, a.o.t, m, kExtras && ent, sa, ta);
  rescale(b.o.m, b.o.s, b.o.t, m, kExtras && ent, sb, tb);
  r.o.m = m;
  r.o.s = sa + sb;
  r.o.t = ta + tb;
  r.amax = a.amax;
  r.aidx = a.aidx;
  r.lsum = 0.0;
  if (kExtras) {
    if (arg) argmax_merge(r.amax, r.aidx, b.amax, b.aidx);
    r.lsum = a.lsum + b.lsum;
  }
  return r;
}

template <bool kExtras>
__device__ __forceinline__ Stats warp_stats(Stats v, bool ent, bool arg, bool lsum) {
UNIGAP_UNROLL
  for (int o = 16; o > 0; o >>= 1) {
    Stats w;
    w.o.m = __shfl_xor_sync(0xffffffffu, v.o.m, o);
    w.o.s = __shfl_xor_sync(0xffffffffu, v.o.s, o);
    w.o.t = 0.f;
    w.amax = -INFINITY;
    w.aidx = INT64_MAX;
    w.lsum = 0.0;
    if (kExtras) {
      if (ent) w.o.t = __shfl_xor_sync(0xffffffffu, v.o.t, o);
      if (arg) {
        w.amax = __shfl_xor_sync(0xffffffffu, v.amax, o);
        w.aidx = __shfl_xor_sync(0xffffffffu, (long long)v.aidx, o);
      }
      if (lsum) w.lsum = __shfl_xor_sync(0xffffffffu, v.lsum, o);
    }
    v = stats_merge<kExtras>(v, w, ent, arg);
  }
  return v;
}

// Whole-group reduction; every lane of the group gets the result. TPR > 32 means one row per block.
template <int TPR, bool kExtras>
__device__ __forceinline__ Stats group_stats(Stats v, Stats *sh, bool ent, bool arg, bool lsum) {
  v = warp_stats<kExtras>(v, ent, arg, lsum);
  if constexpr (TPR > 32) {
    const int w = threadIdx.x / 32, l = threadIdx.x % 32;
    if (l == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
      Stats x = l < TPR / 32 ? sh[l] : Stats{{-INFINITY, 0.f, 0.f}, -INFINITY, INT64_MAX, 0.0};
      x = warp_stats<kExtras>(x, ent, arg, lsum);
      if (l == 0) sh[TPR / 32] = x;
    }
    __syncthreads();
    v = sh[TPR / 32];
  }
  return v;
}

template <class D, bool kExtras>
struct Acc {
  Stats st{{-INFINITY, 0.f, 0.f}, -INFINITY, INT64_MAX, 0.0};
  float lsum_f = 0.f;  // per-thread fp32 partial of the logit sum (widened at the group reduction)

  template <int N>
  UNIGAP_HD void add(const float (&z)[N], int64_t idx0, float c, bool ent, bool arg, bool lsum) {
    float w[N];
    float lm = -INFINITY;
UNIGAP_UNROLL
    for (int i = 0; i < N; i++) {
      w[i] = z[i] * c;
      lm = fmaxf(lm, w[i]);
    }
    if (lm > st.o.m) {
      if (st.o.m == -INFINITY) {
        st.o.m = lm;  // nothing accumulated yet (s = t = 0)
      } else {
        const float delta = st.o.m - lm;
        const float f = fast_exp2(delta);
        if (kExtras && ent) st.o.t = f * (st.o.t + st.o.s * delta);
        st.o.s *= f;
        st.o.m = lm;
      }
    }
UNIGAP_UNROLL
    for (int i = 0; i < N; i++) {
      const float d = w[i] - st.o.m;
      const float e = fast_exp2(d);
      const bool ninf = w[i] == -INFINITY;  // probability 0 (also while the max so far is -inf)
      st.o.s += ninf ? 0.f : e;
      if (kExtras && ent) st.o.t += ninf ? 0.f : e * d;
    }
    if (kExtras) {
      if (arg) {
UNIGAP_UNROLL
        for (int i = 0; i < N; i++)
          // strict '>': each thread visits increasing indices -> first max; the first non-NaN value
          // is always taken so an all -inf row still names index 0 of its thread.
          if (z[i] > st.amax || (st.aidx == INT64_MAX && z[i] == z[i])) {
            st.amax = z[i];
            st.aidx = idx0 + i;
          }
      }
      if (lsum) {
UNIGAP_UNROLL
        for (int i = 0; i < N; i++) lsum_f += z[i];
      }
    }
  }
};

// Row layout: [0, head) scalar, then nvec 16-byte vectors, then the scalar tail [tail0, V).
struct RowSplit {
  int64_t head, nvec, tail0;
};

template <class D>
UNIGAP_HD RowSplit split_row(const typename D::store_t *x, int64_t V) {
  const uintptr_t mis = reinterpret_cast<uintptr_t>(x) & 15u;
  int64_t head = mis ? (int64_t)((16u - mis) / sizeof(typename D::store_t)) : 0;
  if (mis % sizeof(typename D::store_t)) head = V;  // not even element-aligned: all scalar
  if (head > V) head = V;
  int64_t nvec = (V - head) / D::kVec;
  return RowSplit{head, nvec, head + nvec * D::kVec};
}

UNIGAP_HD uint4 load16(const void *p) { return *reinterpret_cast<const uint4 *>(p); }

// ---------------------------------------------------------------- one row, in phases
// The row code is written once, as lane-level phases, and runs both in the kernel (a lane is a
// thread of the row group, the reduction is warp shuffles + shared memory) and on the host in
// logprobs_emulate (lanes run one after another, the reduction replays the same butterfly), which
// the harness checks against the CPU core on machines without a GPU.

// Lane-independent facts about a row.
struct RowCtx {
  int64_t s;  // sequence
  int32_t y;  // label of the target
  bool counted, bad;
  RowSplit sp;
  bool galign;  // grad_out has the logits' 16-byte phase (vector stores)
  float zy;     // the label's logit, read before any in-place sweep
  bool ent, arg, lsm;
};

template <class D, bool kExtras, bool kGrad>
UNIGAP_HD RowCtx row_prologue(const Params &p, int64_t row) {
  using T = typename D::store_t;
  RowCtx r{};
  r.s = find_seq(p.offsets, p.n_seq, row);
  r.y = 0;
  r.counted = row_counted(p, row, p.offsets[r.s + 1], &r.y);
  r.bad = r.counted && (r.y < 0 || (int64_t)r.y >= p.V);
  const T *x = static_cast<const T *>(p.logits) + row * p.V;
  r.sp = split_row<D>(x, p.V);
  if (kGrad) {
    const T *gx = static_cast<const T *>(p.grad_out) + row * p.V;
    r.galign = (reinterpret_cast<uintptr_t>(gx) & 15u) == (reinterpret_cast<uintptr_t>(x) & 15u);
  }
  r.ent = kExtras && p.write_fwd && p.token_entropy;
  r.arg = kExtras && p.write_fwd && p.token_correct;
  r.lsm = kExtras && p.write_fwd && p.row_lsum;
  r.zy = (r.counted && !r.bad) ? D::load(x + r.y) : 0.f;
  return r;
}

// Not counted: zeros everywhere. Bad label (a facade bug): NaN, never an out-of-bounds read.
template <class D, int TPR, bool kGrad>
UNIGAP_HD void skip_lane(const Params &p, const RowCtx &r, int64_t row, int lane) {
  using T = typename D::store_t;
  const float v = r.bad ? NAN : 0.f;
  if (p.write_fwd && lane == 0) {
    if (p.token_logp) p.token_logp[row] = v;
    if (p.token_entropy) p.token_entropy[row] = v;
    if (p.token_correct) p.token_correct[row] = 0;
    if (p.token_lse) p.token_lse[row] = v;
    if (p.row_logp && p.row_logp != p.token_logp) p.row_logp[row] = v;
    if (p.row_lsum) p.row_lsum[row] = v;
  }
  if (kGrad) {
    T *gx = static_cast<T *>(p.grad_out) + row * p.V;
    const T gv = D::from_float(v);
    for (int64_t j = lane; j < p.V; j += TPR) gx[j] = gv;
  }
}

// This lane's share of the statistics pass (scalar head, 16-byte body 4 vectors at a time, tail).
template <class D, int TPR, bool kExtras>
UNIGAP_HD Stats stats_lane(const Params &p, const RowCtx &r, int64_t row, int lane) {
  using T = typename D::store_t;
  const T *x = static_cast<const T *>(p.logits) + row * p.V;
  const RowSplit &sp = r.sp;
  const float c = p.c;
  const bool ent = r.ent, arg = r.arg, lsm = r.lsm;
  Acc<D, kExtras> acc;
  for (int64_t j = lane; j < sp.head; j += TPR) {
    float z[1] = {D::load(x + j)};
    acc.add(z, j, c, ent, arg, lsm);
  }
  const T *body = x + sp.head;
  int64_t i = lane;
  for (; i + 3 * TPR < sp.nvec; i += 4 * TPR) {
    uint4 v0 = load16(body + i * D::kVec);
    uint4 v1 = load16(body + (i + TPR) * D::kVec);
    uint4 v2 = load16(body + (i + 2 * TPR) * D::kVec);
    uint4 v3 = load16(body + (i + 3 * TPR) * D::kVec);
    float z[D::kVec];
    D::unpack(v0, z);
    acc.add(z, sp.head + i * D::kVec, c, ent, arg, lsm);
    D::unpack(v1, z);
    acc.add(z, sp.head + (i + TPR) * D::kVec, c, ent, arg, lsm);
    D::unpack(v2, z);
    acc.add(z, sp.head + (i + 2 * TPR) * D::kVec, c, ent, arg, lsm);
    D::unpack(v3, z);
    acc.add(z, sp.head + (i + 3 * TPR) * D::kVec, c, ent, arg, lsm);
  }
  for (; i < sp.nvec; i += TPR) {
    float z[D::kVec];
    D::unpack(load16(body + i * D::kVec), z);
    acc.add(z, sp.head + i * D::kVec, c, ent, arg, lsm);
  }
  for (int64_t j = sp.tail0 + lane; j < p.V; j += TPR) {
    float z[1] = {D::load(x + j)};
    acc.add(z, j, c, ent, arg, lsm);
  }
  acc.st.lsum = acc.lsum_f;
  return acc.st;
}

// From the group's reduced statistics: the log2-domain LSE; lane 0 writes the row's outputs.
UNIGAP_HD float finish_row(const Params &p, const RowCtx &r, const Stats &red, int64_t row, bool writer) {
  const float lse2 = red.o.m + log2f(red.o.s);
  if (p.write_fwd && writer) {
    const float logp = kLn2 * ((mul_rn(r.zy, p.c) - red.o.m) - log2f(red.o.s));
    if (p.token_logp) p.token_logp[row] = logp;
    if (p.row_logp && p.row_logp != p.token_logp) p.row_logp[row] = logp;
    if (p.token_lse) p.token_lse[row] = kLn2 * lse2;
    if (r.ent) p.token_entropy[row] = kLn2 * (log2f(red.o.s) - red.o.t / red.o.s);
    if (r.arg) p.token_correct[row] = (red.aidx == (int64_t)r.y && lse2 == lse2) ? 1 : 0;
    if (r.lsm) p.row_lsum[row] = red.lsum;
  }
  return lse2;
}

// This lane's share of the gradient sweep, backwards (what the stats pass read last is likeliest
// still in L2). d/dz = gs * (1[v == y] - p), p = exp2(w - lse2); the label column in fp32 before
// rounding, as the CPU does it: gs * (1 - p_y) = -gs * expm1(logp_y), exact near p_y = 1.
template <class D, int TPR>
UNIGAP_HD void grad_lane(const Params &p, const RowCtx &r, float lse2, int64_t row, int lane) {
  using T = typename D::store_t;
  const T *x = static_cast<const T *>(p.logits) + row * p.V;
  T *gx = static_cast<T *>(p.grad_out) + row * p.V;
  const RowSplit &sp = r.sp;
  const float c = p.c;
  const int64_t y = r.y;
  float g = 0.f;
  if (p.grad_seq) g += p.grad_seq[r.s];
  if (p.grad_token) g += p.grad_token[row];
  const float gs = g * p.inv_tau;
  const float ycol = -gs * expm1f(kLn2 * (mul_rn(r.zy, c) - lse2));
  for (int64_t j = sp.tail0 + lane; j < p.V; j += TPR)
    gx[j] = D::from_float(j == y ? ycol : -gs * fast_exp2(D::load(x + j) * c - lse2));
  const T *body = x + sp.head;
  T *gbody = gx + sp.head;
  auto emit = [&](const uint4 &v, int64_t iv) {
    float z[D::kVec];
    D::unpack(v, z);
    const int64_t idx0 = sp.head + iv * D::kVec;
UNIGAP_UNROLL
    for (int k = 0; k < D::kVec; k++) z[k] = idx0 + k == y ? ycol : -gs * fast_exp2(z[k] * c - lse2);
    if (r.galign) {
      *reinterpret_cast<uint4 *>(gbody + iv * D::kVec) = D::pack(z);
    } else {
UNIGAP_UNROLL
      for (int k = 0; k < D::kVec; k++) gbody[iv * D::kVec + k] = D::from_float(z[k]);
    }
  };
  // This lane's vectors are lane, lane + TPR, ...; start from its last one, two at a time.
  int64_t i = lane < sp.nvec ? lane + ((sp.nvec - 1 - lane) / TPR) * TPR : -1;
  for (; i >= TPR; i -= 2 * TPR) {  // i and i - TPR are both this lane's
    const uint4 v0 = load16(body + i * D::kVec);
    const uint4 v1 = load16(body + (i - TPR) * D::kVec);
    emit(v0, i);
    emit(v1, i - TPR);
  }
  if (i >= 0) emit(load16(body + i * D::kVec), i);
  for (int64_t j = lane; j < sp.head; j += TPR)
    gx[j] = D::from_float(j == y ? ycol : -gs * fast_exp2(D::load(x + j) * c - lse2));
}

template <class D, int TPR, bool kExtras, bool kGrad>
__global__ void __launch_bounds__(TPR == 32 ? 256 : TPR) row_kernel(Params p) {
  constexpr int kRowsPerBlock = TPR == 32 ? 8 : 1;
  __shared__ Stats sh[TPR > 32 ? TPR / 32 + 1 : 1];
  const int lane = threadIdx.x % TPR;
  const int64_t row = (int64_t)blockIdx.x * kRowsPerBlock + threadIdx.x / TPR;
  if (row >= p.n) return;  // whole group leaves together (no barrier follows for it)
  const RowCtx r = row_prologue<D, kExtras, kGrad>(p, row);
  if (!r.counted || r.bad) {
    skip_lane<D, TPR, kGrad>(p, r, row, lane);
    return;
  }
  float lse2;
  if (!kGrad || p.lse_in == nullptr) {
    const Stats part = stats_lane<D, TPR, kExtras>(p, r, row, lane);
    const Stats red = group_stats<TPR, kExtras>(part, sh, r.ent, r.arg, r.lsm);
    lse2 = finish_row(p, r, red, row, lane == 0);
  } else {
    lse2 = p.lse_in[row] * kLog2e;
  }
  if (kGrad) {
    // Every lane has read zy (and, in place, finished its stats sweep) before any lane writes.
    if constexpr (TPR > 32)
      __syncthreads();
    else
      __syncwarp();
    grad_lane<D, TPR>(p, r, lse2, row, lane);
  }
}

// Host replay of one row group: the same phases, lanes one after another, and the group reduction
// replayed as the kernel's butterfly (warp xor shuffles, then warp 0 over the warps' results).
template <class D, int TPR, bool kExtras, bool kGrad>
void row_emulate(const Params &p, int64_t row) {
  const RowCtx r = row_prologue<D, kExtras, kGrad>(p, row);
  if (!r.counted || r.bad) {
    for (int lane = 0; lane < TPR; lane++) skip_lane<D, TPR, kGrad>(p, r, row, lane);
    return;
  }
  float lse2;
  if (!kGrad || p.lse_in == nullptr) {
    Stats part[TPR];
    for (int lane = 0; lane < TPR; lane++) part[lane] = stats_lane<D, TPR, kExtras>(p, r, row, lane);
    const Stats ident{{-INFINITY, 0.f, 0.f}, -INFINITY, INT64_MAX, 0.0};
    auto butterfly = [&](Stats *v) {  // 32 lanes, as warp_stats: v[l] = merge(v[l], v[l ^ o])
      for (int o = 16; o > 0; o >>= 1) {
        Stats nv[32];
        for (int l = 0; l < 32; l++) {
          Stats w = v[l ^ o];
          if (!kExtras || !r.ent) w.o.t = 0.f;
          if (!kExtras || !r.arg) {
            w.amax = -INFINITY;
            w.aidx = INT64_MAX;
          }
          if (!kExtras || !r.lsm) w.lsum = 0.0;
          nv[l] = stats_merge<kExtras>(v[l], w, r.ent, r.arg);
        }
        for (int l = 0; l < 32; l++) v[l] = nv[l];
      }
    };
    Stats red;
    if (TPR == 32) {
      butterfly(part);
      red = part[0];
    } else {
      Stats warp0[32];
      for (int w = 0; w < 32; w++) warp0[w] = ident;
      for (int w = 0; w < TPR / 32; w++) {
        butterfly(part + 32 * w);
        warp0[w] = part[32 * w];
      }
      butterfly(warp0);
      red = warp0[0];
    }
    lse2 = finish_row(p, r, red, row, true);
  } else {
    lse2 = p.lse_in[row] * kLog2e;
  }
  if (kGrad)
    for (int lane = 0; lane < TPR; lane++) grad_lane<D, TPR>(p, r, lse2, row, lane);
}

// One block per sequence: sum, count, mean, logit sum over its counted rows (double accumulation).
__global__ void __launch_bounds__(256) seq_kernel(Params p, float *seq_sum, int32_t *seq_count, float *seq_mean,
                                                  double *seq_logit_sum) {
  const int64_t s = blockIdx.x;
  // Clamped so that offsets the facade should have refused never read out of bounds.
  const int64_t a = min(max(p.offsets[s], (int64_t)0), p.n), b = min(max(p.offsets[s + 1], a), p.n);
  double sum = 0.0, lsum = 0.0;
  int count = 0;
  for (int64_t t = a + threadIdx.x; t < b; t += blockDim.x) {
    int32_t y;
    if (!row_counted(p, t, b, &y)) continue;
    count++;
    if (p.row_logp) sum += p.row_logp[t];
    if (p.row_lsum) lsum += p.row_lsum[t];
  }
  sum = warp_sum(sum);
  lsum = warp_sum(lsum);
  count = warp_sum(count);
  __shared__ double sh_sum[8], sh_lsum[8];
  __shared__ int sh_count[8];
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  if (l == 0) {
    sh_sum[w] = sum;
    sh_lsum[w] = lsum;
    sh_count[w] = count;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < (int)(blockDim.x / 32); k++) {
      sum += sh_sum[k];
      lsum += sh_lsum[k];
      count += sh_count[k];
    }
    if (seq_sum) seq_sum[s] = (float)sum;
    if (seq_count) seq_count[s] = count;
    if (seq_mean) seq_mean[s] = count ? (float)(sum / count) : 0.f;
    if (seq_logit_sum) seq_logit_sum[s] = lsum;
  }
}

enum Mode { kForward, kBackward, kForwardBackward };

unigap_status check_args(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, Mode mode) {
  if (!a) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->dtype != UNIGAP_DTYPE_F32 && a->dtype != UNIGAP_DTYPE_BF16 && a->dtype != UNIGAP_DTYPE_F16)
    return UNIGAP_STATUS_UNSUPPORTED_DTYPE;
  if (a->n_tokens < 0 || a->vocab < 1 || a->n_seq < 0) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->shift != 0 && a->shift != 1) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (!(a->temperature > 0.f) || !std::isfinite(a->temperature)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->n_tokens > 0 && a->vocab > INT64_MAX / 4 / a->n_tokens) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (a->n_tokens > 0 && (!a->logits || !a->labels)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((a->n_tokens > 0 || a->n_seq > 0) && (!a->offsets || a->n_seq < 1)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (mode != kForward) {
    if (!g) return UNIGAP_STATUS_INVALID_ARGUMENT;
    if (a->n_tokens > 0 && !g->grad_out) return UNIGAP_STATUS_INVALID_ARGUMENT;
  }
  return UNIGAP_STATUS_OK;
}

unigap_status check_pointers(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, bool fwd) {
  const struct {
    const void *p;
    const char *name;
  } ptrs[] = {{a->logits, "logits"},
              {a->labels, "labels"},
              {a->mask, "mask"},
              {a->offsets, "offsets"},
              {fwd ? a->token_logp : nullptr, "token_logp"},
              {fwd ? a->token_entropy : nullptr, "token_entropy"},
              {fwd ? a->token_correct : nullptr, "token_correct"},
              {fwd ? a->token_lse : nullptr, "token_lse"},
              {fwd ? a->seq_sum : nullptr, "seq_sum"},
              {fwd ? a->seq_count : nullptr, "seq_count"},
              {fwd ? a->seq_mean : nullptr, "seq_mean"},
              {fwd ? a->seq_logit_sum : nullptr, "seq_logit_sum"},
              {g ? g->grad_seq : nullptr, "grad_seq"},
              {g ? g->grad_token : nullptr, "grad_token"},
              {g ? g->token_lse : nullptr, "grad.token_lse"},
              {g ? g->grad_out : nullptr, "grad_out"}};
  for (const auto &q : ptrs) {
    unigap_status s = check_device_ptr(q.p, q.name);
    if (s != UNIGAP_STATUS_OK) return s;
  }
  return UNIGAP_STATUS_OK;
}

template <class D, int TPR>
cudaError_t launch_rows(const Params &p, bool extras, bool grad, cudaStream_t st) {
  constexpr int kRows = TPR == 32 ? 8 : 1;
  const int threads = TPR == 32 ? 256 : TPR;
  const int64_t blocks = ceil_div(p.n, kRows);
  if (blocks > INT32_MAX) return cudaErrorInvalidConfiguration;
  dim3 grid((unsigned)blocks);
  if (extras) {
    if (grad)
      row_kernel<D, TPR, true, true><<<grid, threads, 0, st>>>(p);
    else
      row_kernel<D, TPR, true, false><<<grid, threads, 0, st>>>(p);
  } else {
    if (grad)
      row_kernel<D, TPR, false, true><<<grid, threads, 0, st>>>(p);
    else
      row_kernel<D, TPR, false, false><<<grid, threads, 0, st>>>(p);
  }
  return cudaGetLastError();
}

template <class D>
cudaError_t launch_dtype(const Params &p, bool extras, bool grad, cudaStream_t st) {
  return p.V <= 2048 ? launch_rows<D, 32>(p, extras, grad, st) : launch_rows<D, 512>(p, extras, grad, st);
}


}  // namespace

namespace {

// Params of a call (pointers as given: device pointers for the kernels, host ones for the emulation).
Params make_params(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, Mode mode) {
  const bool fwd = mode != kBackward;
  Params p{};
  p.logits = a->logits;
  p.n = a->n_tokens;
  p.V = a->vocab;
  p.labels = a->labels;
  p.mask = a->mask;
  p.ignore_index = a->ignore_index;
  p.offsets = a->offsets;
  p.n_seq = a->n_seq;
  p.shift = a->shift;
  p.inv_tau = (float)(1.0 / (double)a->temperature);
  p.c = (float)(1.4426950408889634 / (double)a->temperature);
  p.write_fwd = fwd ? 1 : 0;
  if (fwd) {
    p.token_logp = a->token_logp;
    p.token_entropy = a->token_entropy;
    p.token_lse = a->token_lse;
    p.token_correct = a->token_correct;
  }
  if (mode != kForward) {
    p.grad_seq = g->grad_seq;
    p.grad_token = g->grad_token;
    // A forward in the same call recomputes the statistics anyway (they are needed for its outputs).
    p.lse_in = mode == kBackward ? g->token_lse : nullptr;
    p.grad_out = g->grad_out;
  }
  return p;
}

bool wants_seq(const unigap_logprobs_args *a, Mode mode) {
  return mode != kBackward && (a->seq_sum || a->seq_count || a->seq_mean || a->seq_logit_sum);
}
// Per-row scratch for the sequence sums: logp when token_logp is not asked for, raw logit sums.
bool needs_row_logp(const unigap_logprobs_args *a) { return (a->seq_sum || a->seq_mean) && !a->token_logp; }

}  // namespace

unigap_status logprobs_run(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode_i,
                           cudaStream_t st) {
  const Mode mode = static_cast<Mode>(mode_i);
  unigap_status s = check_args(a, g, mode);
  if (s != UNIGAP_STATUS_OK) return s;
  s = require_device();
  if (s != UNIGAP_STATUS_OK) return s;
  const bool fwd = mode != kBackward;
  if ((s = check_pointers(a, mode == kForward ? nullptr : g, fwd)) != UNIGAP_STATUS_OK) return s;

  const bool seq_out = wants_seq(a, mode);
  Params p = make_params(a, g, mode);
  StreamScratch scratch(st);
  if (seq_out && p.n > 0) {
    const bool need_logp = needs_row_logp(a);
    const size_t bytes = (need_logp ? (size_t)p.n * sizeof(float) : 0) + (a->seq_logit_sum ? (size_t)p.n * sizeof(double) : 0);
    if (bytes) {
      UNIGAP_CUDA_TRY(cudaMallocAsync(&scratch.ptr, bytes, st));
      char *base = static_cast<char *>(scratch.ptr);
      if (a->seq_logit_sum) {
        p.row_lsum = reinterpret_cast<double *>(base);
        base += (size_t)p.n * sizeof(double);
      }
      if (need_logp) p.row_logp = reinterpret_cast<float *>(base);
    }
    if (!need_logp && (a->seq_sum || a->seq_mean)) p.row_logp = a->token_logp;
  }

  if (p.n > 0) {
    const bool extras = fwd && (a->token_entropy || a->token_correct || a->seq_logit_sum);
    const bool grad = mode != kForward;
    cudaError_t err = cudaSuccess;
    switch (a->dtype) {
      case UNIGAP_DTYPE_F32: err = launch_dtype<F32>(p, extras, grad, st); break;
      case UNIGAP_DTYPE_BF16: err = launch_dtype<BF16>(p, extras, grad, st); break;
      default: err = launch_dtype<F16>(p, extras, grad, st); break;
    }
    UNIGAP_CUDA_TRY(err);
  }
  if (seq_out && p.n_seq > 0) {
    if (p.n_seq > INT32_MAX) return UNIGAP_STATUS_OUT_OF_RANGE;
    seq_kernel<<<(unsigned)p.n_seq, 256, 0, st>>>(p, a->seq_sum, a->seq_count, a->seq_mean, a->seq_logit_sum);
    UNIGAP_CUDA_TRY(cudaGetLastError());
  }
  return UNIGAP_STATUS_OK;
}

namespace {
template <class D, int TPR>
void emulate_rows(const Params &p, bool extras, bool grad) {
  for (int64_t row = 0; row < p.n; row++) {
    if (extras) {
      if (grad)
        row_emulate<D, TPR, true, true>(p, row);
      else
        row_emulate<D, TPR, true, false>(p, row);
    } else {
      if (grad)
        row_emulate<D, TPR, false, true>(p, row);
      else
        row_emulate<D, TPR, false, false>(p, row);
    }
  }
}
template <class D>
void emulate_dtype(const Params &p, bool extras, bool grad) {
  if (p.V <= 2048)
    emulate_rows<D, 32>(p, extras, grad);
  else
    emulate_rows<D, 512>(p, extras, grad);
}
}  // namespace

// The kernels' row code replayed on the host, on HOST pointers, single-threaded (see row_emulate).
// Same checks (minus the device ones), same phases, same reduction order; sequence sums as the
// sequence kernel computes them. For the harness: it tests this file's math and index logic where
// there is no GPU. Not part of the public ABI.
unigap_status logprobs_emulate(const unigap_logprobs_args *a, const unigap_logprobs_grad *g, int mode_i) {
  const Mode mode = static_cast<Mode>(mode_i);
  unigap_status s = check_args(a, g, mode);
  if (s != UNIGAP_STATUS_OK) return s;
  const bool fwd = mode != kBackward;
  const bool seq_out = wants_seq(a, mode);
  Params p = make_params(a, g, mode);
  std::vector<float> row_logp;
  std::vector<double> row_lsum;
  if (seq_out && p.n > 0) {
    if (needs_row_logp(a)) {
      row_logp.assign((size_t)p.n, NAN);
      p.row_logp = row_logp.data();
    } else if (a->seq_sum || a->seq_mean) {
      p.row_logp = a->token_logp;
    }
    if (a->seq_logit_sum) {
      row_lsum.assign((size_t)p.n, NAN);
      p.row_lsum = row_lsum.data();
    }
  }
  if (p.n > 0) {
    const bool extras = fwd && (a->token_entropy || a->token_correct || a->seq_logit_sum);
    const bool grad = mode != kForward;
    switch (a->dtype) {
      case UNIGAP_DTYPE_F32: emulate_dtype<F32>(p, extras, grad); break;
      case UNIGAP_DTYPE_BF16: emulate_dtype<BF16>(p, extras, grad); break;
      default: emulate_dtype<F16>(p, extras, grad); break;
    }
  }
  if (seq_out)
    for (int64_t q = 0; q < p.n_seq; q++) {
      const int64_t lo = std::min(std::max(p.offsets[q], (int64_t)0), p.n);
      const int64_t hi = std::min(std::max(p.offsets[q + 1], lo), p.n);
      double sum = 0.0, lsum = 0.0;
      int count = 0;
      for (int64_t t = lo; t < hi; t++) {
        int32_t y;
        if (!row_counted(p, t, hi, &y)) continue;
        count++;
        if (p.row_logp) sum += p.row_logp[t];
        if (p.row_lsum) lsum += p.row_lsum[t];
      }
      if (a->seq_sum) a->seq_sum[q] = (float)sum;
      if (a->seq_count) a->seq_count[q] = count;
      if (a->seq_mean) a->seq_mean[q] = count ? (float)(sum / count) : 0.f;
      if (a->seq_logit_sum) a->seq_logit_sum[q] = lsum;
    }
  return UNIGAP_STATUS_OK;
}

}  // namespace unigap_cuda

extern "C" {

unigap_status unigap_cuda_logprobs_forward(const unigap_logprobs_args *a, unigap_cuda_stream stream) {
  return unigap_cuda::logprobs_run(a, nullptr, 0, static_cast<cudaStream_t>(stream));
}

unigap_status unigap_cuda_logprobs_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g,
                                            unigap_cuda_stream stream) {
  return unigap_cuda::logprobs_run(a, g, 1, static_cast<cudaStream_t>(stream));
}

unigap_status unigap_cuda_logprobs_forward_backward(const unigap_logprobs_args *a, const unigap_logprobs_grad *g,
                                                    unigap_cuda_stream stream) {
  return unigap_cuda::logprobs_run(a, g, 2, static_cast<cudaStream_t>(stream));
}

}  // extern "C"
