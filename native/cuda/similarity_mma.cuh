// Tensor-core products of the similarity family (included by similarity.cu inside namespace
// unigap_cuda::sim). UNVERIFIED ON A GPU: compiled for every arch of the build and replayed on the host
// (tc_emulate_* below, cuda/emulated/similarity_tc in the harness); never run on a device yet.
//
// Which inputs take it (host side, run() in similarity.cu): a device with compute capability >= 8.0
// and either two bf16 or two f16 matrices (flags 0: the products are exact in the f32 accumulator, so
// this is still "exact" in the sense of cuda.h), or any dtypes with UNIGAP_CUDA_SIM_ALLOW_TF32 (f32
// rows rounded to TF32, round-to-nearest-away, relative 2^-11 per element). UNIGAP_CUDA_SIM_SIMT
// forces the exact SIMT path. sm_75 and everything else: the SIMT path (the kernels below compile to
// an empty body below sm_80 and are never launched there).
//
// Layout.
//   16-bit kinds: raw rows (NOT normalised) copied into a panel of rows padded to 128 and k padded to
//     32 elements (64 bytes), plus one f32 factor per row (1 / |row| as in the SIMT pack, 1 without
//     normalize, 0 for padding): s_ij = (acc_ij * fa_i) * fb_j in the epilogue, so normalisation stays
//     fused and no row is rounded after scaling.
//   tf32: the SIMT pack (normalised f32 rows), rows padded to 128, k padded to 16 floats (64 bytes);
//     factors 1.
//   Block tile 128 x 128, 8 warps as 2 (rows) x 4 (cols), warp tile 64 x 32 = 4 x 4 mma tiles of
//   m16 x n8; k stage 64 bytes per row (32 bf16 / f16 = 2 x m16n8k16, or 16 f32 = 2 x m16n8k8 tf32),
//   two stages in shared memory filled with cp.async (16-byte chunks), row stride 80 bytes so that the
//   fragment loads (ldmatrix.x4: 8 rows x 16 bytes per phase) hit 32 distinct banks. Fragments come
//   from ldmatrix.x4 (one instruction per A fragment and per pair of B fragments), which yields exactly
//   the registers of the direct loads frag_a / frag_b (the host replay checks both agree).
//   Fragments (PTX ISA, "Matrix fragments for mma.m16n8k16 / m16n8k8"), g = lane / 4, t = lane % 4:
//     A regs 0..3 = rows (g, g + 8, g, g + 8) at k-bytes (4t, 4t, 4t + 16, 4t + 16) of the k step; for
//     16-bit kinds each reg is the element pair (2t, 2t + 1) [+8], for tf32 element t [+4]: the byte
//     offsets coincide, so one loader serves both. B regs 0..1 = candidate row g at k-bytes 4t, 4t + 16.
//     C regs 0..3 = (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
//   Epilogues: matrix (scale * s + bias, float2 stores when M is even and out 8-byte aligned), top-k
//   (the tile staged through shared memory in two 64-column halves; one thread per row inserts in
//   increasing column order into its per-split list, with the list's k-th entry kept in registers to
//   reject early), ranks (a diagonal
//   pass computes s_ii with this same kernel on tile (b, b), so s_ii and s_ij come from identical
//   instruction sequences; then a counting pass, quad-reduced, one atomicAdd per row and quad).

namespace tc {

constexpr int kTM = 128, kTN = 128, kThreads = 256;
constexpr int kChunkBytes = 64;  // k bytes per row per stage
constexpr int kLd = 80;          // shared row stride in bytes
constexpr int kTileBytes = kTM * kLd;
constexpr int kStages = 2;
constexpr int kSmemBytes = kStages * 2 * kTileBytes;  // 40960
constexpr int kMI = 4, kNI = 4;                       // m16 / n8 tiles per warp
constexpr int kStageCols = 65;                        // top-k staging: 128 x 65 floats (33280 bytes)
static_assert(kTM * kStageCols * 4 <= kSmemBytes, "top-k staging must fit the operand buffers");

enum Kind { kBf16 = 0, kF16 = 1, kTf32 = 2 };
enum Mode { kMatrix = 0, kTopk = 1, kRanks = 2, kDiag = 3 };

// Chunk c (0 .. 511) of a stage's operand tile: row c / 4, 16 bytes at (c % 4) * 16. Thread tid copies
// chunks tid and tid + 256 of A and of B.
UNIGAP_HD void stage_chunk(int c, int &row, int &col_bytes) {
  row = c >> 2;
  col_bytes = (c & 3) * 16;
}

UNIGAP_HD uint32_t ld32(const uint8_t *p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const uint32_t *>(p);
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

// A fragment of the m16 tile whose first row is rb, k step ks (32 bytes), from a stage tile.
UNIGAP_HD void frag_a(const uint8_t *tile, int rb, int ks, int lane, uint32_t (&a)[4]) {
  const int g = lane >> 2, kb = ks * 32 + (lane & 3) * 4;
  a[0] = ld32(tile + (rb + g) * kLd + kb);
  a[1] = ld32(tile + (rb + g + 8) * kLd + kb);
  a[2] = ld32(tile + (rb + g) * kLd + kb + 16);
  a[3] = ld32(tile + (rb + g + 8) * kLd + kb + 16);
}

// B fragment of the n8 tile whose first candidate row is cb.
UNIGAP_HD void frag_b(const uint8_t *tile, int cb, int ks, int lane, uint32_t (&b)[2]) {
  const int g = lane >> 2, kb = ks * 32 + (lane & 3) * 4;
  b[0] = ld32(tile + (cb + g) * kLd + kb);
  b[1] = ld32(tile + (cb + g) * kLd + kb + 16);
}

// ldmatrix.x4 (four 8 x 8 matrices of b16, i.e. 8 rows x 16 bytes each): lane L supplies the shared
// address of row L % 8 of matrix L / 8, and receives in register q the 32-bit word L % 4 of row L / 4 of
// matrix q (PTX ISA, "ldmatrix"). A 32-bit word moves whole, so the same instruction loads TF32 data.
// The A fragment of the m16 tile at rb, k step ks: matrices (rows 0-7, bytes 0-15), (rows 8-15, 0-15),
// (rows 0-7, 16-31), (rows 8-15, 16-31) give regs a0..a3 exactly as frag_a.
UNIGAP_HD int ldsm_a_offset(int rb, int ks, int lane) {
  const int q = lane >> 3, r = lane & 7;
  return (rb + r + (q & 1) * 8) * kLd + ks * 32 + (q >> 1) * 16;
}
// The B fragments of two n8 tiles (candidate rows cb .. cb + 15): matrices (tile 0, bytes 0-15),
// (tile 0, 16-31), (tile 1, 0-15), (tile 1, 16-31) give b[y][0], b[y][1], b[y + 1][0], b[y + 1][1].
UNIGAP_HD int ldsm_b_offset(int cb, int ks, int lane) {
  const int q = lane >> 3, r = lane & 7;
  return (cb + (q >> 1) * 8 + r) * kLd + ks * 32 + (q & 1) * 16;
}

// Accumulator register q (0..3) of `lane`: its row and column within the m16 x n8 tile.
UNIGAP_HD void frag_c(int lane, int q, int &r, int &c) {
  r = (lane >> 2) + (q >> 1) * 8;
  c = (lane & 3) * 2 + (q & 1);
}

// The score of one accumulator: (acc * fa) * fb, in this order everywhere (diagonal included).
UNIGAP_HD float score(float acc, float fa, float fb) { return acc * fa * fb; }

struct Params {
  const uint8_t *A, *B;  // panels, rows padded to 128, row stride ld bytes (a multiple of 64)
  const float *fa, *fb;  // per-row factors of the panels' rows (padded), or nullptr (= 1)
  int64_t n, m, ld, kchunks;
  int64_t row_tiles, col_tiles, tiles_per_split;
  float *out;
  float scale, bias;
  int k;
  float *ls;
  int32_t *li, *fill;
  float *diag;
  unsigned long long *count;
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint8_t *p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ uint32_t to_tf32(uint32_t x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(x)));
  return r;
}
template <int KIND>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (KIND == kBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (KIND == kF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}
#endif

template <int KIND, int MODE>
__global__ void __launch_bounds__(kThreads) tc_kernel(Params p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) uint8_t smem[kSmemBytes];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
  int64_t bi, t0, t1, split = 0;
  if (MODE == kDiag) {
    bi = blockIdx.x;
    t0 = bi;
    t1 = bi + 1;
  } else {
    bi = blockIdx.x % p.row_tiles;
    split = blockIdx.x / p.row_tiles;
    t0 = split * p.tiles_per_split;
    t1 = t0 + p.tiles_per_split < p.col_tiles ? t0 + p.tiles_per_split : p.col_tiles;
  }
  const int64_t i0 = bi * kTM;

  int filled = 0;
  float kth_s = 0.f;
  int32_t kth_i = 0;
  float *my_s = nullptr;
  int32_t *my_i = nullptr;
  if (MODE == kTopk && tid < kTM && i0 + tid < p.n) {
    const int64_t base = split * p.n + i0 + tid;
    my_s = p.ls + base * p.k;
    my_i = p.li + base * p.k;
  }

  for (int64_t t = t0; t < t1; t++) {
    const int64_t j0 = t * kTN;
    float acc[kMI][kNI][4];
#pragma unroll
    for (int x = 0; x < kMI; x++)
#pragma unroll
      for (int y = 0; y < kNI; y++)
#pragma unroll
        for (int q = 0; q < 4; q++) acc[x][y][q] = 0.f;

    auto load = [&](int stage, int64_t kc) {
      uint8_t *sa = smem + stage * 2 * kTileBytes, *sb = sa + kTileBytes;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        int row, cb;
        stage_chunk(tid + h * kThreads, row, cb);
        cp_async16(sa + row * kLd + cb, p.A + (i0 + row) * p.ld + kc * kChunkBytes + cb);
        cp_async16(sb + row * kLd + cb, p.B + (j0 + row) * p.ld + kc * kChunkBytes + cb);
      }
      cp_async_commit();
    };
    load(0, 0);
    for (int64_t kc = 0; kc < p.kchunks; kc++) {
      if (kc + 1 < p.kchunks) {
        load((int)((kc + 1) & 1), kc + 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const uint8_t *sa = smem + (kc & 1) * 2 * kTileBytes, *sb = sa + kTileBytes;
#pragma unroll
      for (int ks = 0; ks < 2; ks++) {
        uint32_t a[kMI][4], b[kNI][2];
#pragma unroll
        for (int x = 0; x < kMI; x++) ldsm_x4(a[x], sa + ldsm_a_offset(wm * 64 + x * 16, ks, lane));
#pragma unroll
        for (int y = 0; y < kNI; y += 2) {
          uint32_t t4[4];
          ldsm_x4(t4, sb + ldsm_b_offset(wn * 32 + y * 8, ks, lane));
          b[y][0] = t4[0];
          b[y][1] = t4[1];
          b[y + 1][0] = t4[2];
          b[y + 1][1] = t4[3];
        }
        if constexpr (KIND == kTf32) {
#pragma unroll
          for (int x = 0; x < kMI; x++)
#pragma unroll
            for (int q = 0; q < 4; q++) a[x][q] = to_tf32(a[x][q]);
#pragma unroll
          for (int y = 0; y < kNI; y++)
#pragma unroll
            for (int q = 0; q < 2; q++) b[y][q] = to_tf32(b[y][q]);
        }
#pragma unroll
        for (int x = 0; x < kMI; x++)
#pragma unroll
          for (int y = 0; y < kNI; y++) mma<KIND>(acc[x][y], a[x], b[y]);
      }
      __syncthreads();
    }

    // ---- epilogues
    if constexpr (MODE == kMatrix) {
      // float2 stores need an 8-byte aligned out (a fromPointer tensor may be only 4-aligned)
      const bool pairs = (p.m % 2) == 0 && (reinterpret_cast<uintptr_t>(p.out) % 8) == 0;
#pragma unroll
      for (int x = 0; x < kMI; x++)
#pragma unroll
        for (int y = 0; y < kNI; y++)
#pragma unroll
          for (int h = 0; h < 2; h++) {
            int r, c;
            frag_c(lane, 2 * h, r, c);
            const int64_t i = i0 + wm * 64 + x * 16 + r, j = j0 + wn * 32 + y * 8 + c;
            if (i >= p.n || j >= p.m) continue;
            const float fa = p.fa ? p.fa[i] : 1.f;
            const float v0 = fmaf(p.scale, score(acc[x][y][2 * h], fa, p.fb ? p.fb[j] : 1.f), p.bias);
            const float v1 = fmaf(p.scale, score(acc[x][y][2 * h + 1], fa, p.fb ? p.fb[j + 1] : 1.f), p.bias);
            float *o = p.out + i * p.m + j;
            if (pairs) {
              *reinterpret_cast<float2 *>(o) = make_float2(v0, v1);  // j even, m even, out 8-aligned
            } else {
              o[0] = v0;
              if (j + 1 < p.m) o[1] = v1;
            }
          }
    } else if constexpr (MODE == kDiag) {
#pragma unroll
      for (int x = 0; x < kMI; x++)
#pragma unroll
        for (int y = 0; y < kNI; y++)
#pragma unroll
          for (int q = 0; q < 4; q++) {
            int r, c;
            frag_c(lane, q, r, c);
            r += wm * 64 + x * 16;
            c += wn * 32 + y * 8;
            const int64_t i = i0 + r;
            if (r == c && i < p.n)
              p.diag[i] = score(acc[x][y][q], p.fa ? p.fa[i] : 1.f, p.fb ? p.fb[i] : 1.f);
          }
    } else if constexpr (MODE == kRanks) {
#pragma unroll
      for (int x = 0; x < kMI; x++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          int r, c;
          frag_c(lane, 2 * h, r, c);
          const int64_t i = i0 + wm * 64 + x * 16 + r;
          unsigned cnt = 0;
          if (i < p.n) {
            const float dg = p.diag[i], fa = p.fa ? p.fa[i] : 1.f;
#pragma unroll
            for (int y = 0; y < kNI; y++)
#pragma unroll
              for (int e = 0; e < 2; e++) {
                const int64_t j = j0 + wn * 32 + y * 8 + c + e;
                if (j < p.m && score(acc[x][y][2 * h + e], fa, p.fb ? p.fb[j] : 1.f) > dg) cnt++;
              }
          }
          cnt += __shfl_xor_sync(0xffffffffu, cnt, 1);
          cnt += __shfl_xor_sync(0xffffffffu, cnt, 2);
          if ((lane & 3) == 0 && cnt) atomicAdd(p.count + i, (unsigned long long)cnt);
        }
    } else {  // top-k: two 64-column halves through shared memory
      float(*cs)[kStageCols] = reinterpret_cast<float(*)[kStageCols]>(smem);
      for (int half = 0; half < 2; half++) {
        if ((wn >> 1) == half) {
#pragma unroll
          for (int x = 0; x < kMI; x++)
#pragma unroll
            for (int y = 0; y < kNI; y++)
#pragma unroll
              for (int q = 0; q < 4; q++) {
                int r, c;
                frag_c(lane, q, r, c);
                r += wm * 64 + x * 16;
                c += (wn & 1) * 32 + y * 8;
                const int64_t i = i0 + r, j = j0 + half * 64 + c;  // padded rows have factors 0
                cs[r][c] = score(acc[x][y][q], p.fa ? p.fa[i] : 1.f, p.fb ? p.fb[j] : 1.f);
              }
        }
        __syncthreads();
        if (my_s) {
          const int64_t jb = j0 + half * 64;
          const int cols = (int)(p.m - jb < 64 ? (p.m - jb > 0 ? p.m - jb : 0) : 64);
          for (int c = 0; c < cols; c++)
            topk_push(my_s, my_i, p.k, filled, kth_s, kth_i, cs[tid][c], (int32_t)(jb + c));
        }
        __syncthreads();
      }
    }
  }
  if (MODE == kTopk && my_s) p.fill[split * p.n + i0 + tid] = filled;
#endif
}

// 16-bit pack: a warp per row; raw values into the padded panel, the row factor from the same f32
// lane partials + butterfly and inv_norm as the SIMT pack (1 without normalize, 0 for padding rows).
template <class D>
__global__ void __launch_bounds__(256) pack16_kernel(const uint16_t *src, int64_t rows, int64_t d, int64_t rows_p,
                                                     int64_t dp, int normalize, uint16_t *dst, float *fac) {
  const int lane = threadIdx.x % 32;
  const int64_t r = blockIdx.x * 8LL + threadIdx.x / 32;
  if (r >= rows_p) return;
  uint16_t *o = dst + r * dp;
  if (r >= rows) {
    for (int64_t k = lane; k < dp; k += 32) o[k] = 0;
    if (lane == 0) fac[r] = 0.f;
    return;
  }
  const uint16_t *row = src + r * d;
  float f = 1.f;
  if (normalize) f = inv_norm(warp_sum(sumsq_lane<D>(row, d, lane)), 1);
  for (int64_t k = lane; k < dp; k += 32) o[k] = k < d ? row[k] : (uint16_t)0;
  if (lane == 0) fac[r] = f;
}

// ---------------------------------------------------------------- host emulation

// cvt.rna.tf32.f32 on the host: keep 10 mantissa bits, round half away from zero (NaN / inf kept).
inline uint32_t tf32_rna_host(uint32_t u) {
  if ((u & 0x7f800000u) == 0x7f800000u) return u;
  return (u + 0x1000u) & 0xffffe000u;
}

inline float half_bits_to_float(int kind, uint16_t h) { return kind == kBf16 ? BF16::to_float(h) : F16::to_float(h); }

// One warp's mma on the host, decoded with the PTX ISA's documented fragment layouts (written
// independently of frag_a / frag_b / frag_c): D = A B + C with exact products summed in double and
// one rounding to f32 per instruction (an idealised tensor core; real ones differ by ~1 ulp of the
// partial sum per instruction).
inline void mma_host(int kind, float (&c)[32][4], const uint32_t (&a)[32][4], const uint32_t (&b)[32][2]) {
  double A[16][16] = {}, B[16][8] = {};
  const int K = kind == kTf32 ? 8 : 16;
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane / 4, t = lane % 4;
    if (kind == kTf32) {
      auto v = [](uint32_t u) { return (double)bits_to_f32(tf32_rna_host(u)); };
      A[g][t] = v(a[lane][0]);  // a0: (g, t)
      A[g + 8][t] = v(a[lane][1]);  // a1: (g + 8, t)
      A[g][t + 4] = v(a[lane][2]);  // a2: (g, t + 4)
      A[g + 8][t + 4] = v(a[lane][3]);  // a3: (g + 8, t + 4)
      B[t][g] = v(b[lane][0]);  // b0: (k = t, n = g)
      B[t + 4][g] = v(b[lane][1]);  // b1: (k = t + 4, n = g)
    } else {
      auto lo = [kind](uint32_t u) { return (double)half_bits_to_float(kind, (uint16_t)(u & 0xffffu)); };
      auto hi = [kind](uint32_t u) { return (double)half_bits_to_float(kind, (uint16_t)(u >> 16)); };
      // a0..a7 = {reg0 lo/hi: (g, 2t / 2t+1)}, {reg1: (g+8, ..)}, {reg2: (g, 2t+8 / 2t+9)}, {reg3: (g+8, ..)}
      const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
      for (int q = 0; q < 4; q++) {
        A[rows[q]][cols[q]] = lo(a[lane][q]);
        A[rows[q]][cols[q] + 1] = hi(a[lane][q]);
      }
      // b0, b1 = reg0 (k = 2t, 2t + 1; n = g); b2, b3 = reg1 (k = 2t + 8, 2t + 9)
      B[2 * t][g] = lo(b[lane][0]);
      B[2 * t + 1][g] = hi(b[lane][0]);
      B[2 * t + 8][g] = lo(b[lane][1]);
      B[2 * t + 9][g] = hi(b[lane][1]);
    }
  }
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane / 4, t = lane % 4;
    for (int q = 0; q < 4; q++) {
      const int r = g + (q >= 2 ? 8 : 0), col = 2 * t + (q & 1);  // c0..c3 (documented)
      double s = c[lane][q];
      for (int k = 0; k < K; k++) s += A[r][k] * B[k][col];
      c[lane][q] = (float)s;
    }
  }
}

// ldmatrix.x4 on the host from the 32 lanes' offsets (documented semantics, see ldsm_a_offset).
inline void ldsm_x4_host(const uint8_t *tile, const int (&off)[32], uint32_t (&r)[32][4]) {
  for (int lane = 0; lane < 32; lane++)
    for (int q = 0; q < 4; q++) r[lane][q] = ld32(tile + off[q * 8 + lane / 4] + 4 * (lane % 4));
}

// The block (bi) x column-tile (t) product of tc_kernel replayed on the host: the same stage chunks
// (stage_chunk), the same shared layout and fragment loaders, mma_host per warp and instruction.
// acc[warp][lane][x][y][q].
struct HostAcc {
  float v[8][32][kMI][kNI][4];
};

// Returns false when ldmatrix's distribution and the direct fragment loads disagree (an emulation bug).
inline bool tc_block_host(int kind, const uint8_t *A, const uint8_t *B, int64_t ld, int64_t kchunks, int64_t i0,
                          int64_t j0, std::vector<uint8_t> &smem, HostAcc &acc) {
  std::memset(&acc, 0, sizeof acc);
  for (int64_t kc = 0; kc < kchunks; kc++) {
    uint8_t *sa = smem.data() + (kc & 1) * 2 * kTileBytes, *sb = sa + kTileBytes;
    for (int tid = 0; tid < kThreads; tid++)
      for (int h = 0; h < 2; h++) {
        int row, cb;
        stage_chunk(tid + h * kThreads, row, cb);
        std::memcpy(sa + row * kLd + cb, A + (i0 + row) * ld + kc * kChunkBytes + cb, 16);
        std::memcpy(sb + row * kLd + cb, B + (j0 + row) * ld + kc * kChunkBytes + cb, 16);
      }
    for (int ks = 0; ks < 2; ks++)
      for (int w = 0; w < 8; w++) {
        const int wm = w >> 2, wn = w & 3;
        static thread_local uint32_t a[kMI][32][4], b[kNI][32][2];
        int off[32];
        for (int x = 0; x < kMI; x++) {
          for (int lane = 0; lane < 32; lane++) off[lane] = ldsm_a_offset(wm * 64 + x * 16, ks, lane);
          ldsm_x4_host(sa, off, a[x]);
        }
        for (int y = 0; y < kNI; y += 2) {
          uint32_t t4[32][4];
          for (int lane = 0; lane < 32; lane++) off[lane] = ldsm_b_offset(wn * 32 + y * 8, ks, lane);
          ldsm_x4_host(sb, off, t4);
          for (int lane = 0; lane < 32; lane++) {
            b[y][lane][0] = t4[lane][0];
            b[y][lane][1] = t4[lane][1];
            b[y + 1][lane][0] = t4[lane][2];
            b[y + 1][lane][1] = t4[lane][3];
          }
          // the direct 32-bit fragment loads (frag_a / frag_b) must agree with ldmatrix's distribution
          for (int lane = 0; lane < 32; lane++) {
            uint32_t d0[2], d1[2];
            frag_b(sb, wn * 32 + y * 8, ks, lane, d0);
            frag_b(sb, wn * 32 + (y + 1) * 8, ks, lane, d1);
            if (d0[0] != b[y][lane][0] || d0[1] != b[y][lane][1] || d1[0] != b[y + 1][lane][0] ||
                d1[1] != b[y + 1][lane][1])
              return false;
          }
        }
        for (int x = 0; x < kMI; x++)
          for (int lane = 0; lane < 32; lane++) {
            uint32_t d[4];
            frag_a(sa, wm * 64 + x * 16, ks, lane, d);
            for (int q = 0; q < 4; q++)
              if (d[q] != a[x][lane][q]) return false;
          }
        for (int x = 0; x < kMI; x++)
          for (int y = 0; y < kNI; y++) {
            float c[32][4];
            for (int lane = 0; lane < 32; lane++)
              for (int q = 0; q < 4; q++) c[lane][q] = acc.v[w][lane][x][y][q];
            mma_host(kind, c, a[x], b[y]);
            for (int lane = 0; lane < 32; lane++)
              for (int q = 0; q < 4; q++) acc.v[w][lane][x][y][q] = c[lane][q];
          }
      }
  }
  return true;
}

}  // namespace tc
