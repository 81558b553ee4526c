// Similarity on the GPU: the CUDA twin of native/cpu/similarity (spec: unigap/similarity.h).
//
// UNVERIFIED ON A GPU: compiled (archs 75/80/86/89/90) and replayed on the host (similarity_emulate_*),
// never run on a device yet.
//
// Two product paths (cuda.h says which inputs take which):
//   - tensor cores (similarity_mma.cuh): mma.sync with f32 accumulation on sm_80+, for bf16/bf16 and
//     f16/f16 (raw rows, 1 / |row| factors in the epilogue) and, opt-in, TF32 for f32 / mixed inputs;
//   - exact SIMT f32 FMA (below), for everything else and as the forced fallback (UNIGAP_CUDA_SIM_SIMT).
//
// The SIMT design (simple and exact):
//   1. pack: a warp per row converts f32 / bf16 / f16 to f32, sums squares in f32 (lane partials, xor
//      butterfly), scales by 1 / sqrt(sum) computed in f64 (0 for a zero row; NaN * 0 keeps NaN rows NaN,
//      inf * 0 makes infinite rows NaN, as on the CPU) and writes an f32 panel padded with zeros to
//      64-row tiles and 16-column k steps, so the product needs no bounds checks.
//   2. a shared-memory tiled SIMT GEMM (64 x 64 block tile, k step 16, 4 x 4 outputs per thread) where
//      every s_ij is ONE sequential fmaf chain over k = 0 .. Dp-1 (exact f32 FMA, no tensor cores);
//      the epilogue writes scale * s + bias (matrix), or merges the tile into per-row top-k lists
//      (one list per row and column split, in increasing column order; a short merge kernel combines
//      the splits), or counts scores strictly greater than s_ii (ranks; s_ii from the same chain).
//      The lists are sorted arrays with insertion: O(k) per accepted candidate, meant for small k
//      (retrieval k <= ~100); k close to m is correct but slow (the CPU uses heaps).
//   3. paired cosine: a warp per row, f32 partials (16-byte loads when both inputs share a dtype and
//      are aligned), f64 finish as on the CPU.
// The row-level pieces are __host__ __device__ and replayed by similarity_emulate_* for the harness.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.cuh"
#include "unigap/cuda.h"
#include "unigap/similarity.h"

namespace unigap_cuda {
namespace sim {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreads = 256;

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// ---------------------------------------------------------------- host + device pieces

UNIGAP_HD bool is_nan(float x) { return x != x; }

// Top-k order: true when (as, ai) ranks below (bs, bi): NaN below any number, smaller below larger,
// equal scores (or two NaNs): the higher index ranks below.
UNIGAP_HD bool worse(float as, int32_t ai, float bs, int32_t bi) {
  const bool an = is_nan(as), bn = is_nan(bs);
  if (an != bn) return an;
  if (an || as == bs) return ai > bi;
  return as < bs;
}

// Inserts (v, j) into a best-first list of `filled` <= k entries. Candidates of one list arrive in
// increasing index order, so ties never displace an entry (the lower index already in it wins).
UNIGAP_HD void topk_insert(float *s, int32_t *ix, int k, int &filled, float v, int32_t j) {
  int pos;
  if (filled < k) {
    pos = filled++;
  } else {
    if (!worse(s[k - 1], ix[k - 1], v, j)) return;
    pos = k - 1;
  }
  while (pos > 0 && worse(s[pos - 1], ix[pos - 1], v, j)) {
    s[pos] = s[pos - 1];
    ix[pos] = ix[pos - 1];
    pos--;
  }
  s[pos] = v;
  ix[pos] = j;
}

// topk_insert with the list's k-th entry cached in registers (kth_s, kth_i, valid once filled == k):
// a candidate that cannot enter a full list is rejected without touching the list (the common case
// after warm-up). Same result as topk_insert.
UNIGAP_HD void topk_push(float *s, int32_t *ix, int k, int &filled, float &kth_s, int32_t &kth_i, float v,
                         int32_t j) {
  if (filled == k && !worse(kth_s, kth_i, v, j)) return;
  topk_insert(s, ix, k, filled, v, j);
  if (filled == k) {
    kth_s = s[k - 1];
    kth_i = ix[k - 1];
  }
}

// Merges `splits` best-first lists of row i (list g at ls + (g n + i) k, `fill[g n + i]` entries) into
// the k best, best first.
UNIGAP_HD void topk_merge_row(const float *ls, const int32_t *li, const int32_t *fill, int64_t n, int splits, int k,
                              int64_t i, float *out_s, int32_t *out_i) {
  int pos[64];
  for (int g = 0; g < splits; g++) pos[g] = 0;
  for (int r = 0; r < k; r++) {
    int best = -1;
    float bs = 0.f;
    int32_t bi = 0;
    for (int g = 0; g < splits; g++) {
      const int64_t base = ((int64_t)g * n + i);
      if (pos[g] >= fill[base]) continue;
      const float s = ls[base * k + pos[g]];
      const int32_t j = li[base * k + pos[g]];
      if (best < 0 || worse(bs, bi, s, j)) {
        best = g;
        bs = s;
        bi = j;
      }
    }
    if (best < 0) {  // fewer than k candidates in all (cannot happen with k <= m)
      out_s[r] = NAN;
      out_i[r] = -1;
      continue;
    }
    out_s[r] = bs;
    out_i[r] = bi;
    pos[best]++;
  }
}

UNIGAP_HD float inv_norm(float sumsq, int normalize) {
  if (!normalize) return 1.f;
  // NaN fails s > 0 -> 0 (NaN * 0 stays NaN); +inf -> 1/inf = 0 (inf * 0 = NaN): the row is poisoned.
  return sumsq > 0.f ? (float)(1.0 / sqrt((double)sumsq)) : 0.f;
}

UNIGAP_HD float finish_cos(float ab, float aa, float bb) {
  if (is_nan(ab) || is_nan(aa) || is_nan(bb) || fabsf(aa) == INFINITY || fabsf(bb) == INFINITY) return NAN;
  if (aa == 0.f || bb == 0.f) return 0.f;
  return (float)((double)ab / (sqrt((double)aa) * sqrt((double)bb)));
}

// The dot product chain of one score: s = fma(a_k, b_k, s) for k = 0 .. dp-1, in order (the GEMM
// threads, the ranks diagonal and the emulation all use exactly this chain).
UNIGAP_HD float chain(const float *a, const float *b, int64_t dp) {
  float s = 0.f;
  for (int64_t k = 0; k < dp; k++) s = fmaf(a[k], b[k], s);
  return s;
}

template <class D>
UNIGAP_HD float sumsq_lane(const typename D::store_t *row, int64_t d, int lane) {
  float s = 0.f;
  for (int64_t k = lane; k < d; k += 32) {
    const float x = D::load(row + k);
    s = fmaf(x, x, s);
  }
  return s;
}

// Paired-cosine lane partials. vec: 16-byte loads of kVec elements (same dtype, aligned, d % kVec == 0).
template <class DA, class DB>
UNIGAP_HD void paired_lane(const typename DA::store_t *a, const typename DB::store_t *b, int64_t d, int lane, bool vec,
                           float &ab, float &aa, float &bb) {
  ab = aa = bb = 0.f;
  if constexpr (std::is_same<DA, DB>::value) {
    if (vec) {
      constexpr int V = DA::kVec;
      const uint4 *av = reinterpret_cast<const uint4 *>(a), *bv = reinterpret_cast<const uint4 *>(b);
      for (int64_t v = lane; v < d / V; v += 32) {
        float x[V], y[V];
        DA::unpack(av[v], x);
        DB::unpack(bv[v], y);
UNIGAP_UNROLL
        for (int e = 0; e < V; e++) {
          ab = fmaf(x[e], y[e], ab);
          aa = fmaf(x[e], x[e], aa);
          bb = fmaf(y[e], y[e], bb);
        }
      }
      return;
    }
  }
  for (int64_t k = lane; k < d; k += 32) {
    const float x = DA::load(a + k), y = DB::load(b + k);
    ab = fmaf(x, y, ab);
    aa = fmaf(x, x, aa);
    bb = fmaf(y, y, bb);
  }
}

// The xor butterfly of warp_sum replayed on the host (v[l] += v[l ^ o], o = 16 .. 1): lane 0's result.
inline float butterfly_host(float (&v)[32]) {
  for (int o = 16; o > 0; o >>= 1) {
    float w[32];
    for (int l = 0; l < 32; l++) w[l] = v[l] + v[l ^ o];
    for (int l = 0; l < 32; l++) v[l] = w[l];
  }
  return v[0];
}

// ---------------------------------------------------------------- kernels

template <class D>
__global__ void __launch_bounds__(kThreads) pack_kernel(const typename D::store_t *src, int64_t rows, int64_t d,
                                                        int64_t rows_p, int64_t dp, int normalize, float *dst) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * (int64_t)(kThreads / 32) + threadIdx.x / 32;
  if (r >= rows_p) return;
  float *o = dst + r * dp;
  if (r >= rows) {
    for (int64_t k = lane; k < dp; k += 32) o[k] = 0.f;
    return;
  }
  const typename D::store_t *row = src + r * d;
  float inv = 1.f;
  if (normalize) inv = inv_norm(warp_sum(sumsq_lane<D>(row, d, lane)), 1);
  for (int64_t k = lane; k < dp; k += 32) o[k] = k < d ? D::load(row + k) * inv : 0.f;
}

enum Mode { kMatrix = 0, kTopk = 1, kRanks = 2 };

struct GemmParams {
  const float *A, *B;  // packed [rows_p, dp]
  int64_t n, m, dp;
  int64_t row_tiles, col_tiles, tiles_per_split;
  // matrix
  float *out;
  float scale, bias;
  // top-k: lists [splits][n][k], fill [splits][n]
  int k;
  float *ls;
  int32_t *li, *fill;
  // ranks
  const float *diag;
  unsigned long long *count;
};

template <int MODE>
__global__ void __launch_bounds__(kThreads) gemm_kernel(GemmParams p) {
  __shared__ float As[kBK][kBM];
  __shared__ float Bs[kBK][kBN];
  __shared__ float Cs[MODE == kTopk ? kBM : 1][MODE == kTopk ? kBN + 1 : 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t bi = blockIdx.x % p.row_tiles, split = blockIdx.x / p.row_tiles;
  const int64_t t0 = split * p.tiles_per_split;
  const int64_t t1 = t0 + p.tiles_per_split < p.col_tiles ? t0 + p.tiles_per_split : p.col_tiles;
  const int64_t i0 = bi * kBM;
  // Loader: thread tid fetches 4 consecutive k of row tid / 4 (A) and of column tid / 4 (B).
  const int lr = tid / 4, lk = (tid % 4) * 4;
  const float *Ag = p.A + (i0 + lr) * p.dp + lk;

  // top-k state of row i0 + tid (threads 0..63)
  int filled = 0;
  float kth_s = 0.f;
  int32_t kth_i = 0;
  float *my_s = nullptr;
  int32_t *my_i = nullptr;
  if (MODE == kTopk && tid < kBM && i0 + tid < p.n) {
    const int64_t base = split * p.n + i0 + tid;
    my_s = p.ls + base * p.k;
    my_i = p.li + base * p.k;
  }

  for (int64_t t = t0; t < t1; t++) {
    const int64_t j0 = t * kBN;
    const float *Bg = p.B + (j0 + lr) * p.dp + lk;
    float acc[4][4];
UNIGAP_UNROLL
    for (int a = 0; a < 4; a++)
UNIGAP_UNROLL
      for (int b = 0; b < 4; b++) acc[a][b] = 0.f;
    for (int64_t k0 = 0; k0 < p.dp; k0 += kBK) {
      const float4 av = *reinterpret_cast<const float4 *>(Ag + k0);
      const float4 bv = *reinterpret_cast<const float4 *>(Bg + k0);
      As[lk + 0][lr] = av.x;
      As[lk + 1][lr] = av.y;
      As[lk + 2][lr] = av.z;
      As[lk + 3][lr] = av.w;
      Bs[lk + 0][lr] = bv.x;
      Bs[lk + 1][lr] = bv.y;
      Bs[lk + 2][lr] = bv.z;
      Bs[lk + 3][lr] = bv.w;
      __syncthreads();
UNIGAP_UNROLL
      for (int kk = 0; kk < kBK; kk++) {
        float a[4], b[4];
UNIGAP_UNROLL
        for (int q = 0; q < 4; q++) {
          a[q] = As[kk][ty + 16 * q];
          b[q] = Bs[kk][tx + 16 * q];
        }
UNIGAP_UNROLL
        for (int x = 0; x < 4; x++)
UNIGAP_UNROLL
          for (int y = 0; y < 4; y++) acc[x][y] = fmaf(a[x], b[y], acc[x][y]);
      }
      __syncthreads();
    }

    if constexpr (MODE == kMatrix) {
UNIGAP_UNROLL
      for (int x = 0; x < 4; x++) {
        const int64_t i = i0 + ty + 16 * x;
        if (i >= p.n) continue;
UNIGAP_UNROLL
        for (int y = 0; y < 4; y++) {
          const int64_t j = j0 + tx + 16 * y;
          if (j < p.m) p.out[i * p.m + j] = fmaf(p.scale, acc[x][y], p.bias);
        }
      }
    } else if constexpr (MODE == kRanks) {
UNIGAP_UNROLL
      for (int x = 0; x < 4; x++) {
        const int64_t i = i0 + ty + 16 * x;
        if (i >= p.n) continue;
        const float dg = p.diag[i];
        unsigned c = 0;
UNIGAP_UNROLL
        for (int y = 0; y < 4; y++) {
          const int64_t j = j0 + tx + 16 * y;
          c += (j < p.m && acc[x][y] > dg) ? 1u : 0u;
        }
        if (c) atomicAdd(p.count + i, (unsigned long long)c);
      }
    } else {
UNIGAP_UNROLL
      for (int x = 0; x < 4; x++)
UNIGAP_UNROLL
        for (int y = 0; y < 4; y++) Cs[ty + 16 * x][tx + 16 * y] = acc[x][y];
      __syncthreads();
      if (my_s) {
        const int cols = (int)(p.m - j0 < kBN ? p.m - j0 : kBN);
        for (int c = 0; c < cols; c++)
          topk_push(my_s, my_i, p.k, filled, kth_s, kth_i, Cs[tid][c], (int32_t)(j0 + c));
      }
      __syncthreads();
    }
  }
  if (MODE == kTopk && my_s) p.fill[split * p.n + i0 + tid] = filled;
}

__global__ void topk_merge_kernel(const float *ls, const int32_t *li, const int32_t *fill, int64_t n, int splits, int k,
                                  float *scores, int32_t *indices) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  topk_merge_row(ls, li, fill, n, splits, k, i, scores + i * k, indices + i * k);
}

__global__ void diag_kernel(const float *A, const float *B, int64_t n, int64_t dp, float *diag,
                            unsigned long long *count) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  diag[i] = chain(A + i * dp, B + i * dp, dp);
  count[i] = 0;
}

__global__ void ranks_finish_kernel(const float *diag, const unsigned long long *count, int64_t n, double *ranks) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  ranks[i] = is_nan(diag[i]) ? (double)NAN : (double)(count[i] + 1);
}

template <class DA, class DB>
__global__ void __launch_bounds__(kThreads) paired_kernel(const typename DA::store_t *a, const typename DB::store_t *b,
                                                          int64_t n, int64_t d, bool vec, float *out) {
  const int lane = threadIdx.x % 32;
  const int64_t i = blockIdx.x * (int64_t)(kThreads / 32) + threadIdx.x / 32;
  if (i >= n) return;
  float ab, aa, bb;
  paired_lane<DA, DB>(a + i * d, b + i * d, d, lane, vec, ab, aa, bb);
  ab = warp_sum(ab);
  aa = warp_sum(aa);
  bb = warp_sum(bb);
  if (lane == 0) out[i] = finish_cos(ab, aa, bb);
}

#include "similarity_mma.cuh"

// ---------------------------------------------------------------- host side

bool dtype_ok(unigap_dtype dt) {
  return dt == UNIGAP_DTYPE_F32 || dt == UNIGAP_DTYPE_BF16 || dt == UNIGAP_DTYPE_F16;
}

// The CPU family's size limits (similarity/dispatch.cpp), f64 refused.
unigap_status check_sizes(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m,
                          int64_t d, const void *out) {
  if (!dtype_ok(da) || !dtype_ok(db)) return UNIGAP_STATUS_UNSUPPORTED_DTYPE;
  if (n < 0 || m < 0 || d < 1 || n > (int64_t(1) << 31) - 64 || m > (int64_t(1) << 31) - 64 ||
      d > (int64_t(1) << 40) / (n + m + 64))
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((n > 0 && (!a || !out)) || (m > 0 && !b)) return UNIGAP_STATUS_INVALID_ARGUMENT;
  return UNIGAP_STATUS_OK;
}

template <class D>
cudaError_t launch_pack_t(const void *src, int64_t rows, int64_t d, int64_t rows_p, int64_t dp, int normalize,
                          float *dst, cudaStream_t st) {
  const int64_t blocks = ceil_div(rows_p, kThreads / 32);
  if (blocks > INT32_MAX) return cudaErrorInvalidConfiguration;
  pack_kernel<D><<<(unsigned)blocks, kThreads, 0, st>>>(static_cast<const typename D::store_t *>(src), rows, d, rows_p,
                                                         dp, normalize, dst);
  return cudaGetLastError();
}

cudaError_t launch_pack(const void *src, unigap_dtype dt, int64_t rows, int64_t d, int64_t rows_p, int64_t dp,
                        int normalize, float *dst, cudaStream_t st) {
  switch (dt) {
    case UNIGAP_DTYPE_F32: return launch_pack_t<F32>(src, rows, d, rows_p, dp, normalize, dst, st);
    case UNIGAP_DTYPE_BF16: return launch_pack_t<BF16>(src, rows, d, rows_p, dp, normalize, dst, st);
    default: return launch_pack_t<F16>(src, rows, d, rows_p, dp, normalize, dst, st);
  }
}

// Column splits of the top-k (at most 64: the merge keeps one cursor per split). The grid is row_tiles x
// splits blocks and `capacity` of them run at once (SMs x resident blocks per SM): pick the split count
// whose last wave is fullest (a grid of 1.2 waves costs 2), preferring fewer splits (less merge work,
// shorter list warm-up) among those within 2% of the best; at least one full wave when possible.
int64_t choose_tiles_per_split(int64_t row_tiles, int64_t col_tiles, int64_t capacity) {
  if (capacity < 1) capacity = 1;
  const int64_t max_s = std::min<int64_t>(64, col_tiles);
  double best_eff = -1;
  int64_t best_tps = col_tiles;
  for (int pass = 0; pass < 2; pass++)
    for (int64_t s = 1; s <= max_s; s++) {
      const int64_t tps = ceil_div(col_tiles, s), splits = ceil_div(col_tiles, tps);
      if (splits != s) continue;  // the same partition as a smaller s
      const int64_t blocks = row_tiles * splits, waves = ceil_div(blocks, capacity);
      // work per block is tps tiles: efficiency = useful tile-slots / occupied tile-slots
      const double eff = (double)(row_tiles * col_tiles) / (double)(waves * capacity * tps);
      if (pass == 0) {
        if (eff > best_eff) best_eff = eff;
      } else if (eff >= best_eff - 0.02 && (blocks >= capacity || s == max_s)) {
        return tps;
      }
    }
  for (int64_t s = max_s; s >= 1; s--)  // fewer blocks than one wave in every choice: the most splits
    if (ceil_div(col_tiles, ceil_div(col_tiles, s)) == s) return ceil_div(col_tiles, s);
  return best_tps;
}

constexpr int kKnownFlags = UNIGAP_CUDA_SIM_ALLOW_TF32 | UNIGAP_CUDA_SIM_SIMT;

// The tensor-core kind for these inputs, or -1 for the exact SIMT path (see cuda.h).
int tc_kind(unigap_dtype da, unigap_dtype db, int flags, int cc_major) {
  if ((flags & UNIGAP_CUDA_SIM_SIMT) || cc_major < 8) return -1;
  if (da == db && da == UNIGAP_DTYPE_BF16) return tc::kBf16;
  if (da == db && da == UNIGAP_DTYPE_F16) return tc::kF16;
  if (flags & UNIGAP_CUDA_SIM_ALLOW_TF32) return tc::kTf32;
  return -1;
}

template <int MODE>
cudaError_t launch_tc(int kind, int64_t grid, const tc::Params &p, cudaStream_t st) {
  if (grid < 1 || grid > INT32_MAX) return cudaErrorInvalidConfiguration;
  switch (kind) {
    case tc::kBf16: tc::tc_kernel<tc::kBf16, MODE><<<(unsigned)grid, tc::kThreads, 0, st>>>(p); break;
    case tc::kF16: tc::tc_kernel<tc::kF16, MODE><<<(unsigned)grid, tc::kThreads, 0, st>>>(p); break;
    default: tc::tc_kernel<tc::kTf32, MODE><<<(unsigned)grid, tc::kThreads, 0, st>>>(p); break;
  }
  return cudaGetLastError();
}

cudaError_t launch_pack16(const void *src, unigap_dtype dt, int64_t rows, int64_t d, int64_t rows_p, int64_t dp,
                          int normalize, uint16_t *dst, float *fac, cudaStream_t st) {
  const int64_t blocks = ceil_div(rows_p, 8);
  if (blocks > INT32_MAX) return cudaErrorInvalidConfiguration;
  const auto *s = static_cast<const uint16_t *>(src);
  if (dt == UNIGAP_DTYPE_BF16)
    tc::pack16_kernel<BF16><<<(unsigned)blocks, 256, 0, st>>>(s, rows, d, rows_p, dp, normalize, dst, fac);
  else
    tc::pack16_kernel<F16><<<(unsigned)blocks, 256, 0, st>>>(s, rows, d, rows_p, dp, normalize, dst, fac);
  return cudaGetLastError();
}

// The tensor-core path of run(): pack (raw 16-bit + factors, or normalised f32 for TF32), then one
// tc_kernel launch per mode (ranks: the diagonal pass first).
unigap_status run_tc(int kind, int mode, const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db,
                     int64_t m, int64_t d, int normalize, float scale, float bias, int64_t k, int32_t *indices,
                     float *scores, float *out, double *ranks, int sms, cudaStream_t st) {
  const int64_t es = kind == tc::kTf32 ? 4 : 2;
  const int64_t np = round_up(n, tc::kTM), mp = round_up(m, tc::kTN), dp = round_up(d, tc::kChunkBytes / es);
  const int64_t ld = dp * es, row_tiles = np / tc::kTM, col_tiles = mp / tc::kTN;
  int64_t tps = 1;
  if (mode == kTopk) {
    int per_sm = 1;
    using tc::kTopk;
    const auto occ = [&](auto kernel) {
      return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, tc::kThreads, 0);
    };
    const cudaError_t e = kind == tc::kBf16  ? occ(tc::tc_kernel<tc::kBf16, kTopk>)
                          : kind == tc::kF16 ? occ(tc::tc_kernel<tc::kF16, kTopk>)
                                             : occ(tc::tc_kernel<tc::kTf32, kTopk>);
    UNIGAP_CUDA_TRY(e);
    tps = choose_tiles_per_split(row_tiles, col_tiles, (int64_t)sms * (per_sm > 0 ? per_sm : 1));
  }
  const int64_t splits = ceil_div(col_tiles, tps);
  if (row_tiles * splits > INT32_MAX) return UNIGAP_STATUS_INVALID_ARGUMENT;
  const int64_t bytes_a = np * ld, bytes_b = mp * ld;
  const int64_t bytes_f = kind == tc::kTf32 ? 0 : round_up((np + mp) * 4, 16);
  int64_t extra = 0;
  if (mode == kTopk) extra = round_up(splits * n * k * 8 + splits * n * 4, 16);
  if (mode == kRanks) extra = round_up(n * 4, 16) + n * 8;
  StreamScratch scratch(st);
  UNIGAP_CUDA_TRY(cudaMallocAsync(&scratch.ptr, (size_t)(bytes_a + bytes_b + bytes_f + extra), st));
  char *base = static_cast<char *>(scratch.ptr);
  tc::Params p{};
  p.A = reinterpret_cast<const uint8_t *>(base);
  p.B = reinterpret_cast<const uint8_t *>(base + bytes_a);
  char *rest = base + bytes_a + bytes_b + bytes_f;
  if (kind == tc::kTf32) {
    UNIGAP_CUDA_TRY(launch_pack(a, da, n, d, np, dp, normalize, reinterpret_cast<float *>(base), st));
    UNIGAP_CUDA_TRY(launch_pack(b, db, m, d, mp, dp, normalize, reinterpret_cast<float *>(base + bytes_a), st));
  } else {
    float *fa = reinterpret_cast<float *>(base + bytes_a + bytes_b), *fb = fa + np;
    UNIGAP_CUDA_TRY(launch_pack16(a, da, n, d, np, dp, normalize, reinterpret_cast<uint16_t *>(base), fa, st));
    UNIGAP_CUDA_TRY(
        launch_pack16(b, db, m, d, mp, dp, normalize, reinterpret_cast<uint16_t *>(base + bytes_a), fb, st));
    p.fa = fa;
    p.fb = fb;
  }
  p.n = n;
  p.m = m;
  p.ld = ld;
  p.kchunks = ld / tc::kChunkBytes;
  p.row_tiles = row_tiles;
  p.col_tiles = col_tiles;
  p.tiles_per_split = tps;
  const int64_t grid = row_tiles * splits;
  if (mode == kMatrix) {
    p.out = out;
    p.scale = scale;
    p.bias = bias;
    UNIGAP_CUDA_TRY(launch_tc<tc::kMatrix>(kind, grid, p, st));
  } else if (mode == kTopk) {
    p.k = (int)k;
    p.ls = reinterpret_cast<float *>(rest);
    p.li = reinterpret_cast<int32_t *>(rest + splits * n * k * 4);
    p.fill = reinterpret_cast<int32_t *>(rest + splits * n * k * 8);
    UNIGAP_CUDA_TRY(launch_tc<tc::kTopk>(kind, grid, p, st));
    topk_merge_kernel<<<(unsigned)ceil_div(n, 128), 128, 0, st>>>(p.ls, p.li, p.fill, n, (int)splits, (int)k, scores,
                                                                  indices);
    UNIGAP_CUDA_LAUNCHED("tc topk merge");
  } else {
    p.diag = reinterpret_cast<float *>(rest);
    p.count = reinterpret_cast<unsigned long long *>(rest + round_up(n * 4, 16));
    UNIGAP_CUDA_TRY(cudaMemsetAsync(p.count, 0, (size_t)n * 8, st));
    UNIGAP_CUDA_TRY(launch_tc<tc::kDiag>(kind, row_tiles, p, st));
    UNIGAP_CUDA_TRY(launch_tc<tc::kRanks>(kind, grid, p, st));
    ranks_finish_kernel<<<(unsigned)ceil_div(n, 128), 128, 0, st>>>(p.diag, p.count, n, ranks);
    UNIGAP_CUDA_LAUNCHED("tc ranks finish");
  }
  return UNIGAP_STATUS_OK;
}

// Packs both sides and runs one GEMM mode (tensor cores where tc_kind allows, else exact SIMT). Sizes
// and flags already checked, n, m >= 1.
unigap_status run(int mode, const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m,
                  int64_t d, int normalize, float scale, float bias, int64_t k, int32_t *indices, float *scores,
                  float *out, double *ranks, int flags, cudaStream_t st) {
  int dev = 0, sms = 132, major = 0;
  UNIGAP_CUDA_TRY(cudaGetDevice(&dev));
  UNIGAP_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  UNIGAP_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  const int kind = tc_kind(da, db, flags, major);
  if (kind >= 0)
    return run_tc(kind, mode, a, da, n, b, db, m, d, normalize, scale, bias, k, indices, scores, out, ranks, sms, st);
  const int64_t dp = round_up(d, kBK), np = round_up(n, kBM), mp = round_up(m, kBN);
  const int64_t row_tiles = np / kBM, col_tiles = mp / kBN;
  int64_t tps = 1, splits = col_tiles;
  if (mode == kTopk) {
    int per_sm = 1;
    UNIGAP_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemm_kernel<kTopk>, kThreads, 0));
    tps = choose_tiles_per_split(row_tiles, col_tiles, (int64_t)sms * (per_sm > 0 ? per_sm : 1));
    splits = ceil_div(col_tiles, tps);
  }
  if (row_tiles * splits > INT32_MAX) return UNIGAP_STATUS_INVALID_ARGUMENT;
  // Scratch: packed A, packed B, then the mode's state (all 16-byte aligned offsets).
  const int64_t bytes_a = np * dp * 4, bytes_b = mp * dp * 4;
  int64_t extra = 0;
  if (mode == kTopk) extra = round_up(splits * n * k * 8 + splits * n * 4, 16);
  if (mode == kRanks) extra = round_up(n * 4, 16) + n * 8;
  StreamScratch scratch(st);
  UNIGAP_CUDA_TRY(cudaMallocAsync(&scratch.ptr, (size_t)(bytes_a + bytes_b + extra), st));
  char *base = static_cast<char *>(scratch.ptr);
  float *Ap = reinterpret_cast<float *>(base), *Bp = reinterpret_cast<float *>(base + bytes_a);
  char *rest = base + bytes_a + bytes_b;
  UNIGAP_CUDA_TRY(launch_pack(a, da, n, d, np, dp, normalize, Ap, st));
  UNIGAP_CUDA_TRY(launch_pack(b, db, m, d, mp, dp, normalize, Bp, st));

  GemmParams p{};
  p.A = Ap;
  p.B = Bp;
  p.n = n;
  p.m = m;
  p.dp = dp;
  p.row_tiles = row_tiles;
  p.col_tiles = col_tiles;
  p.tiles_per_split = tps;
  const unsigned grid = (unsigned)(row_tiles * splits);
  if (mode == kMatrix) {
    p.out = out;
    p.scale = scale;
    p.bias = bias;
    gemm_kernel<kMatrix><<<grid, kThreads, 0, st>>>(p);
    UNIGAP_CUDA_LAUNCHED("gemm matrix");
  } else if (mode == kTopk) {
    p.k = (int)k;
    p.ls = reinterpret_cast<float *>(rest);
    p.li = reinterpret_cast<int32_t *>(rest + splits * n * k * 4);
    p.fill = reinterpret_cast<int32_t *>(rest + splits * n * k * 8);
    gemm_kernel<kTopk><<<grid, kThreads, 0, st>>>(p);
    UNIGAP_CUDA_LAUNCHED("gemm topk");
    topk_merge_kernel<<<(unsigned)ceil_div(n, 128), 128, 0, st>>>(p.ls, p.li, p.fill, n, (int)splits, (int)k, scores,
                                                                  indices);
    UNIGAP_CUDA_LAUNCHED("topk merge");
  } else {
    float *diag = reinterpret_cast<float *>(rest);
    auto *count = reinterpret_cast<unsigned long long *>(rest + round_up(n * 4, 16));
    diag_kernel<<<(unsigned)ceil_div(n, 128), 128, 0, st>>>(Ap, Bp, n, dp, diag, count);
    UNIGAP_CUDA_LAUNCHED("ranks diag");
    p.diag = diag;
    p.count = count;
    gemm_kernel<kRanks><<<grid, kThreads, 0, st>>>(p);
    UNIGAP_CUDA_LAUNCHED("gemm ranks");
    ranks_finish_kernel<<<(unsigned)ceil_div(n, 128), 128, 0, st>>>(diag, count, n, ranks);
    UNIGAP_CUDA_LAUNCHED("ranks finish");
  }
  return UNIGAP_STATUS_OK;
}

bool vec_ok(const void *a, const void *b, unigap_dtype da, unigap_dtype db, int64_t d) {
  if (da != db) return false;
  const int64_t v = da == UNIGAP_DTYPE_F32 ? 4 : 8;
  return d % v == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0;
}

template <class DA, class DB>
cudaError_t launch_paired_t(const void *a, const void *b, int64_t n, int64_t d, bool vec, float *out, cudaStream_t st) {
  const int64_t blocks = ceil_div(n, kThreads / 32);
  if (blocks > INT32_MAX) return cudaErrorInvalidConfiguration;
  paired_kernel<DA, DB><<<(unsigned)blocks, kThreads, 0, st>>>(static_cast<const typename DA::store_t *>(a),
                                                               static_cast<const typename DB::store_t *>(b), n, d, vec,
                                                               out);
  return cudaGetLastError();
}

template <class DA>
cudaError_t launch_paired_b(const void *a, const void *b, unigap_dtype db, int64_t n, int64_t d, bool vec, float *out,
                            cudaStream_t st) {
  switch (db) {
    case UNIGAP_DTYPE_F32: return launch_paired_t<DA, F32>(a, b, n, d, vec, out, st);
    case UNIGAP_DTYPE_BF16: return launch_paired_t<DA, BF16>(a, b, n, d, vec, out, st);
    default: return launch_paired_t<DA, F16>(a, b, n, d, vec, out, st);
  }
}

// ---------------------------------------------------------------- host emulation (harness)
// The same per-element code on HOST pointers, single-threaded: the pack (lane partials + butterfly),
// the per-score fmaf chain over the padded k, the split partition of the top-k with its insertion
// and merge, the diagonal and the strict count of the ranks, the paired lanes. Not emulated: the
// tiling itself (which never changes a score: each is one thread's chain), shared memory, barriers.

template <class D>
void pack_host_t(const void *src, int64_t rows, int64_t d, int64_t dp, int normalize, float *dst) {
  const auto *s = static_cast<const typename D::store_t *>(src);
  for (int64_t r = 0; r < rows; r++) {
    const typename D::store_t *row = s + r * d;
    float inv = 1.f;
    if (normalize) {
      float v[32];
      for (int l = 0; l < 32; l++) v[l] = sumsq_lane<D>(row, d, l);
      inv = inv_norm(butterfly_host(v), 1);
    }
    for (int64_t k = 0; k < dp; k++) dst[r * dp + k] = k < d ? D::load(row + k) * inv : 0.f;
  }
}

void pack_host(const void *src, unigap_dtype dt, int64_t rows, int64_t d, int64_t dp, int normalize, float *dst) {
  switch (dt) {
    case UNIGAP_DTYPE_F32: pack_host_t<F32>(src, rows, d, dp, normalize, dst); break;
    case UNIGAP_DTYPE_BF16: pack_host_t<BF16>(src, rows, d, dp, normalize, dst); break;
    default: pack_host_t<F16>(src, rows, d, dp, normalize, dst); break;
  }
}

template <class DA, class DB>
void paired_host_t(const void *a, const void *b, int64_t n, int64_t d, bool vec, float *out) {
  const auto *A = static_cast<const typename DA::store_t *>(a);
  const auto *B = static_cast<const typename DB::store_t *>(b);
  for (int64_t i = 0; i < n; i++) {
    float vab[32], vaa[32], vbb[32];
    for (int l = 0; l < 32; l++) paired_lane<DA, DB>(A + i * d, B + i * d, d, l, vec, vab[l], vaa[l], vbb[l]);
    const float ab = butterfly_host(vab), aa = butterfly_host(vaa), bb = butterfly_host(vbb);
    out[i] = finish_cos(ab, aa, bb);
  }
}

template <class DA>
void paired_host_b(const void *a, const void *b, unigap_dtype db, int64_t n, int64_t d, bool vec, float *out) {
  switch (db) {
    case UNIGAP_DTYPE_F32: paired_host_t<DA, F32>(a, b, n, d, vec, out); break;
    case UNIGAP_DTYPE_BF16: paired_host_t<DA, BF16>(a, b, n, d, vec, out); break;
    default: paired_host_t<DA, F16>(a, b, n, d, vec, out); break;
  }
}

}  // namespace sim

// The top-k split choice (pure host code), for the harness.
int64_t similarity_topk_tiles_per_split(int64_t row_tiles, int64_t col_tiles, int64_t capacity) {
  return sim::choose_tiles_per_split(row_tiles, col_tiles, capacity);
}

// Host replays for the harness (test_cuda_similarity.cu). Same validation as the device entries;
// `splits` forces the top-k column partition (>= 1; the device picks it from the SM count).
unigap_status similarity_emulate_paired(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n,
                                        int64_t d, float *out) {
  unigap_status s = sim::check_sizes(a, da, n, b, db, n, d, out);
  if (s != UNIGAP_STATUS_OK || n == 0) return s;
  const bool vec = sim::vec_ok(a, b, da, db, d);
  switch (da) {
    case UNIGAP_DTYPE_F32: sim::paired_host_b<F32>(a, b, db, n, d, vec, out); break;
    case UNIGAP_DTYPE_BF16: sim::paired_host_b<BF16>(a, b, db, n, d, vec, out); break;
    default: sim::paired_host_b<F16>(a, b, db, n, d, vec, out); break;
  }
  return UNIGAP_STATUS_OK;
}

// The emulations' column split: `splits` clamped to [1, min(64, col_tiles)]; returns the split count
// and sets *tps (tiles per split), as the top-k launchers lay out their per-split lists.
static int emulated_splits(int splits, int64_t col_tiles, int64_t *tps) {
  if (splits < 1) splits = 1;
  if (splits > 64) splits = 64;
  if (splits > col_tiles) splits = (int)col_tiles;
  *tps = ceil_div(col_tiles, splits);
  return (int)ceil_div(col_tiles, *tps);
}

// mode 0 matrix (out), 1 top-k (indices, scores), 2 ranks (ranks; b has n rows).
unigap_status similarity_emulate(int mode, const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db,
                                 int64_t m, int64_t d, int normalize, float scale, float bias, int64_t k, int splits,
                                 float *out, int32_t *indices, float *scores, double *ranks) {
  using namespace sim;
  const void *o = mode == kMatrix ? (const void *)out : mode == kTopk ? (const void *)indices : (const void *)ranks;
  unigap_status s = check_sizes(a, da, n, b, db, m, d, o);
  if (s != UNIGAP_STATUS_OK) return s;
  if (mode == kTopk && (k < 1 || k > m)) return UNIGAP_STATUS_OUT_OF_RANGE;
  if (n == 0 || m == 0) return UNIGAP_STATUS_OK;
  const int64_t dp = round_up(d, kBK);
  std::vector<float> A((size_t)(n * dp)), B((size_t)(m * dp));
  pack_host(a, da, n, d, dp, normalize, A.data());
  pack_host(b, db, m, d, dp, normalize, B.data());
  if (mode == kMatrix) {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) out[i * m + j] = fmaf(scale, chain(&A[i * dp], &B[j * dp], dp), bias);
  } else if (mode == kTopk) {
    const int64_t col_tiles = ceil_div(m, kBN);
    int64_t tps = 0;
    const int ns = emulated_splits(splits, col_tiles, &tps);
    std::vector<float> ls((size_t)(ns * n * k));
    std::vector<int32_t> li(ls.size()), fill((size_t)(ns * n));
    for (int g = 0; g < ns; g++)
      for (int64_t i = 0; i < n; i++) {
        const int64_t base = g * n + i;
        int filled = 0;
        float kth_s = 0.f;
        int32_t kth_i = 0;
        const int64_t j_end = std::min<int64_t>(m, (g + 1) * tps * kBN);
        for (int64_t j = g * tps * kBN; j < j_end; j++)
          topk_push(&ls[base * k], &li[base * k], (int)k, filled, kth_s, kth_i, chain(&A[i * dp], &B[j * dp], dp),
                    (int32_t)j);
        fill[base] = filled;
      }
    for (int64_t i = 0; i < n; i++)
      topk_merge_row(ls.data(), li.data(), fill.data(), n, ns, (int)k, i, scores + i * k, indices + i * k);
  } else {
    for (int64_t i = 0; i < n; i++) {
      const float dg = chain(&A[i * dp], &B[i * dp], dp);
      unsigned long long c = 0;
      for (int64_t j = 0; j < m; j++) c += chain(&A[i * dp], &B[j * dp], dp) > dg ? 1 : 0;
      ranks[i] = is_nan(dg) ? (double)NAN : (double)(c + 1);
    }
  }
  return UNIGAP_STATUS_OK;
}


// The tensor-core path replayed on the host (kernel-level: stage chunks, shared layout, fragment
// loaders, a documented-layout mma per warp and instruction, the epilogues with their helpers), for
// the kind tc_kind picks on an sm_80+ device: bf16/bf16 and f16/f16, or any pair with
// UNIGAP_CUDA_SIM_ALLOW_TF32; other inputs (no tensor-core path) give INVALID_ARGUMENT. `splits` forces
// the top-k column partition as in similarity_emulate.
unigap_status similarity_emulate_tc(int mode, const void *a, unigap_dtype da, int64_t n, const void *b,
                                    unigap_dtype db, int64_t m, int64_t d, int normalize, float scale, float bias,
                                    int64_t k, int splits, int flags, float *out, int32_t *indices, float *scores,
                                    double *ranks) {
  using namespace sim;
  const void *o = mode == kMatrix ? (const void *)out : mode == kTopk ? (const void *)indices : (const void *)ranks;
  unigap_status s = check_sizes(a, da, n, b, db, m, d, o);
  if (s != UNIGAP_STATUS_OK) return s;
  if (mode == kTopk && (k < 1 || k > m)) return UNIGAP_STATUS_OUT_OF_RANGE;
  const int kind = tc_kind(da, db, flags, 8);
  if (kind < 0 || (flags & ~kKnownFlags) != 0) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if (n == 0 || m == 0) return UNIGAP_STATUS_OK;
  const int64_t es = kind == tc::kTf32 ? 4 : 2;
  const int64_t np = round_up(n, tc::kTM), mp = round_up(m, tc::kTN), dp = round_up(d, tc::kChunkBytes / es);
  const int64_t ld = dp * es, row_tiles = np / tc::kTM, col_tiles = mp / tc::kTN;
  std::vector<uint8_t> PA((size_t)(np * ld), 0), PB((size_t)(mp * ld), 0);
  std::vector<float> fa((size_t)np, 0.f), fb((size_t)mp, 0.f);
  const bool have_f = kind != tc::kTf32;
  auto pack = [&](const void *src, unigap_dtype dt, int64_t rows, std::vector<uint8_t> &P, std::vector<float> &f) {
    if (kind == tc::kTf32) {
      std::vector<float> tmp((size_t)(rows * dp));
      pack_host(src, dt, rows, d, dp, normalize, tmp.data());
      std::memcpy(P.data(), tmp.data(), tmp.size() * 4);
      return;
    }
    const auto *h = static_cast<const uint16_t *>(src);
    for (int64_t r = 0; r < rows; r++) {
      float fac = 1.f;
      if (normalize) {
        float v[32];
        for (int l = 0; l < 32; l++)
          v[l] = dt == UNIGAP_DTYPE_BF16 ? sumsq_lane<BF16>(h + r * d, d, l) : sumsq_lane<F16>(h + r * d, d, l);
        fac = inv_norm(butterfly_host(v), 1);
      }
      f[(size_t)r] = fac;
      std::memcpy(P.data() + r * ld, h + r * d, (size_t)d * 2);
    }
  };
  pack(a, da, n, PA, fa);
  pack(b, db, m, PB, fb);
  auto FA = [&](int64_t i) { return have_f ? fa[(size_t)i] : 1.f; };
  auto FB = [&](int64_t j) { return have_f ? fb[(size_t)j] : 1.f; };
  std::vector<uint8_t> smem(tc::kSmemBytes);
  auto acc = std::make_unique<tc::HostAcc>();
  // Calls f(r, c, value) for every accumulator of the block tile (tile-local row and column).
  auto each = [&](auto &&f) {
    for (int w = 0; w < 8; w++)
      for (int lane = 0; lane < 32; lane++)
        for (int x = 0; x < tc::kMI; x++)
          for (int y = 0; y < tc::kNI; y++)
            for (int q = 0; q < 4; q++) {
              int r, c;
              tc::frag_c(lane, q, r, c);
              f(w, (w >> 2) * 64 + x * 16 + r, (w & 3) * 32 + y * 8 + c, acc->v[w][lane][x][y][q]);
            }
  };
  if (mode == kMatrix) {
    for (int64_t bi = 0; bi < row_tiles; bi++)
      for (int64_t t = 0; t < col_tiles; t++) {
        if (!tc::tc_block_host(kind, PA.data(), PB.data(), ld, dp * es / tc::kChunkBytes, bi * tc::kTM, t * tc::kTN,
                               smem, *acc))
          return UNIGAP_STATUS_INTERNAL;
        each([&](int, int r, int c, float v) {
          const int64_t i = bi * tc::kTM + r, j = t * tc::kTN + c;
          if (i < n && j < m) out[i * m + j] = fmaf(scale, tc::score(v, FA(i), FB(j)), bias);
        });
      }
  } else if (mode == kTopk) {
    int64_t tps = 0;
    const int ns = emulated_splits(splits, col_tiles, &tps);
    std::vector<float> ls((size_t)(ns * n * k));
    std::vector<int32_t> li(ls.size()), fill((size_t)(ns * n));
    std::vector<float> cs((size_t)(tc::kTM * tc::kStageCols));
    for (int64_t bi = 0; bi < row_tiles; bi++)
      for (int g = 0; g < ns; g++) {
        int filled[tc::kTM] = {};
        float kth_s[tc::kTM] = {};
        int32_t kth_i[tc::kTM] = {};
        const int64_t i0 = bi * tc::kTM;
        for (int64_t t = g * tps; t < std::min<int64_t>((g + 1) * tps, col_tiles); t++) {
          const int64_t j0 = t * tc::kTN;
          if (!tc::tc_block_host(kind, PA.data(), PB.data(), ld, dp * es / tc::kChunkBytes, i0, j0, smem, *acc))
            return UNIGAP_STATUS_INTERNAL;
          for (int half = 0; half < 2; half++) {
            each([&](int w, int r, int c, float v) {
              if (((w & 3) >> 1) != half) return;
              const int cc = c - half * 64;
              cs[(size_t)(r * tc::kStageCols + cc)] = tc::score(v, FA(i0 + r), FB(j0 + c));
            });
            for (int row = 0; row < tc::kTM; row++) {
              const int64_t i = i0 + row;
              if (i >= n) continue;
              const int64_t base = g * n + i, jb = j0 + half * 64;
              const int cols = (int)(m - jb < 64 ? (m - jb > 0 ? m - jb : 0) : 64);
              for (int c = 0; c < cols; c++)
                topk_push(&ls[(size_t)(base * k)], &li[(size_t)(base * k)], (int)k, filled[row], kth_s[row],
                              kth_i[row], cs[(size_t)(row * tc::kStageCols + c)], (int32_t)(jb + c));
            }
          }
        }
        for (int row = 0; row < tc::kTM; row++)
          if (i0 + row < n) fill[(size_t)(g * n + i0 + row)] = filled[row];
      }
    for (int64_t i = 0; i < n; i++)
      topk_merge_row(ls.data(), li.data(), fill.data(), n, ns, (int)k, i, scores + i * k, indices + i * k);
  } else {
    std::vector<float> diag((size_t)n);
    std::vector<unsigned long long> count((size_t)n, 0);
    for (int64_t bi = 0; bi < row_tiles; bi++) {  // the diagonal pass: tile (bi, bi)
      if (!tc::tc_block_host(kind, PA.data(), PB.data(), ld, dp * es / tc::kChunkBytes, bi * tc::kTM, bi * tc::kTN,
                             smem, *acc))
        return UNIGAP_STATUS_INTERNAL;
      each([&](int, int r, int c, float v) {
        const int64_t i = bi * tc::kTM + r;
        if (r == c && i < n) diag[(size_t)i] = tc::score(v, FA(i), FB(i));
      });
    }
    for (int64_t bi = 0; bi < row_tiles; bi++)
      for (int64_t t = 0; t < col_tiles; t++) {
        if (!tc::tc_block_host(kind, PA.data(), PB.data(), ld, dp * es / tc::kChunkBytes, bi * tc::kTM, t * tc::kTN,
                               smem, *acc))
          return UNIGAP_STATUS_INTERNAL;
        each([&](int, int r, int c, float v) {
          const int64_t i = bi * tc::kTM + r, j = t * tc::kTN + c;
          if (i < n && j < m && tc::score(v, FA(i), FB(j)) > diag[(size_t)i]) count[(size_t)i]++;
        });
      }
    for (int64_t i = 0; i < n; i++)
      ranks[i] = is_nan(diag[(size_t)i]) ? (double)NAN : (double)(count[(size_t)i] + 1);
  }
  return UNIGAP_STATUS_OK;
}

}  // namespace unigap_cuda

using namespace unigap_cuda;

extern "C" {

unigap_status unigap_cuda_paired_cosine(const void *a, unigap_dtype a_dtype, const void *b, unigap_dtype b_dtype,
                                        int64_t n, int64_t d, float *out, unigap_cuda_stream stream) {
  unigap_status s = sim::check_sizes(a, a_dtype, n, b, b_dtype, n, d, out);
  if (s != UNIGAP_STATUS_OK) return s;
  if ((s = require_device()) != UNIGAP_STATUS_OK) return s;
  if (n == 0) return UNIGAP_STATUS_OK;
  if ((s = check_device_ptrs({{a, "a"}, {b, "b"}, {out, "out"}})) != UNIGAP_STATUS_OK) return s;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const bool vec = sim::vec_ok(a, b, a_dtype, b_dtype, d);
  cudaError_t e;
  switch (a_dtype) {
    case UNIGAP_DTYPE_F32: e = sim::launch_paired_b<F32>(a, b, b_dtype, n, d, vec, out, st); break;
    case UNIGAP_DTYPE_BF16: e = sim::launch_paired_b<BF16>(a, b, b_dtype, n, d, vec, out, st); break;
    default: e = sim::launch_paired_b<F16>(a, b, b_dtype, n, d, vec, out, st); break;
  }
  return check(e, "paired_cosine launch");
}

unigap_status unigap_cuda_similarity_matrix(const void *a, unigap_dtype a_dtype, int64_t n, const void *b,
                                            unigap_dtype b_dtype, int64_t m, int64_t d, int normalize, float scale,
                                            float bias, float *out, int flags, unigap_cuda_stream stream) {
  unigap_status s = sim::check_sizes(a, a_dtype, n, b, b_dtype, m, d, m > 0 ? static_cast<const void *>(out) : a);
  if (s != UNIGAP_STATUS_OK) return s;
  if (!std::isfinite(scale) || !std::isfinite(bias) || (normalize != 0 && normalize != 1) ||
      (flags & ~sim::kKnownFlags) != 0)
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((s = require_device()) != UNIGAP_STATUS_OK) return s;
  if (n == 0 || m == 0) return UNIGAP_STATUS_OK;
  if ((s = check_device_ptrs({{a, "a"}, {b, "b"}, {out, "out"}})) != UNIGAP_STATUS_OK) return s;
  return sim::run(sim::kMatrix, a, a_dtype, n, b, b_dtype, m, d, normalize, scale, bias, 0, nullptr, nullptr, out,
                  nullptr, flags, static_cast<cudaStream_t>(stream));
}

unigap_status unigap_cuda_topk_similarity(const void *q, unigap_dtype q_dtype, int64_t n, const void *c,
                                          unigap_dtype c_dtype, int64_t m, int64_t d, int64_t k, int normalize,
                                          int32_t *indices, float *scores, int flags, unigap_cuda_stream stream) {
  unigap_status s = sim::check_sizes(q, q_dtype, n, c, c_dtype, m, d, indices);
  if (s != UNIGAP_STATUS_OK) return s;
  if (k < 1 || k > m) return UNIGAP_STATUS_OUT_OF_RANGE;
  if ((normalize != 0 && normalize != 1) || (n > 0 && !scores) || (flags & ~sim::kKnownFlags) != 0 || k > INT32_MAX ||
      n > (int64_t(1) << 40) / k)
    return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((s = require_device()) != UNIGAP_STATUS_OK) return s;
  if (n == 0) return UNIGAP_STATUS_OK;
  if ((s = check_device_ptrs({{q, "q"}, {c, "c"}, {indices, "indices"}, {scores, "scores"}})) != UNIGAP_STATUS_OK)
    return s;
  return sim::run(sim::kTopk, q, q_dtype, n, c, c_dtype, m, d, normalize, 1.f, 0.f, k, indices, scores, nullptr,
                  nullptr, flags, static_cast<cudaStream_t>(stream));
}

unigap_status unigap_cuda_retrieval_ranks(const void *q, unigap_dtype q_dtype, const void *c, unigap_dtype c_dtype,
                                          int64_t n, int64_t d, int normalize, double *ranks, int flags,
                                          unigap_cuda_stream stream) {
  unigap_status s = sim::check_sizes(q, q_dtype, n, c, c_dtype, n, d, ranks);
  if (s != UNIGAP_STATUS_OK) return s;
  if ((normalize != 0 && normalize != 1) || (flags & ~sim::kKnownFlags) != 0) return UNIGAP_STATUS_INVALID_ARGUMENT;
  if ((s = require_device()) != UNIGAP_STATUS_OK) return s;
  if (n == 0) return UNIGAP_STATUS_OK;
  if ((s = check_device_ptrs({{q, "q"}, {c, "c"}, {ranks, "ranks"}})) != UNIGAP_STATUS_OK) return s;
  return sim::run(sim::kRanks, q, q_dtype, n, c, c_dtype, n, d, normalize, 1.f, 0.f, 0, nullptr, nullptr, nullptr,
                  ranks, flags, static_cast<cudaStream_t>(stream));
}

}  // extern "C"
