// The similarity driver shared by every ISA tier. Included once by each tier's translation unit
// (scalar.cpp, avx2.cpp, avx512.cpp) after it defines its traits struct; everything here lives in an
// anonymous namespace, so each tier gets its own copy compiled with only its flags (no ODR merging
// of an AVX-512 instantiation into the scalar tier).
//
// Traits T provide: MR, NR (microkernel tile), MC, NC (cache block, multiples of MR / NR), and
//   micro(kc, A, B, C, ldc, accumulate)   C[MR x NR] (+)= A panel (kc x MR) * B panel (kc x NR)
//   chain(a, sa, b, sb, d)                the exact per-element accumulation order of micro
//   bf16_to_f32 / f16_to_f32, sumsq, dot3, dot3_f64, affine, find_gt, count_gt.
#ifndef UNIGAP_CPU_SIMILARITY_DRIVER_H
#define UNIGAP_CPU_SIMILARITY_DRIVER_H

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>


#include "kernels.h"
#include "unigap/common.h"
#include "unigap/half.h"

namespace unigap {
namespace sim {
namespace {

// Scratch memory, 64-byte aligned. (Transparent huge pages for the big packs were tried: faster once
// warm, but the first call in a process stalled ~0.4 s on compaction; streaming B for few queries, see
// Gemm, removed the big buffer where its page faults mattered.)
inline size_t round_bytes(int64_t bytes) {
  size_t b = static_cast<size_t>((bytes + 63) / 64 * 64);
  return b ? b : 64;
}

inline void *alloc_bytes(int64_t bytes) { return std::aligned_alloc(64, round_bytes(bytes)); }

inline void free_bytes(void *p, int64_t) { std::free(p); }

template <class T>
inline void row_to_f32(const void *src, unigap_dtype dt, int64_t row, int64_t d, float *dst) {
  switch (dt) {
    case UNIGAP_DTYPE_F32: std::memcpy(dst, static_cast<const float *>(src) + row * d, static_cast<size_t>(d) * 4); break;
    case UNIGAP_DTYPE_F64: {
      const double *s = static_cast<const double *>(src) + row * d;
      for (int64_t k = 0; k < d; k++) dst[k] = static_cast<float>(s[k]);
      break;
    }
    case UNIGAP_DTYPE_BF16: T::bf16_to_f32(static_cast<const uint16_t *>(src) + row * d, d, dst); break;
    case UNIGAP_DTYPE_F16: T::f16_to_f32(static_cast<const uint16_t *>(src) + row * d, d, dst); break;
  }
}

// Split [0, n) into contiguous chunks of at least `grain` over the pool.
template <class F>
void parallel(int64_t n, int64_t grain, F &f) {
  unigap_parallel_for(
      n, grain, [](void *p, int64_t b, int64_t e) { (*static_cast<F *>(p))(b, e); }, &f);
}

// ------------------------------------------------------------------ paired cosine

inline float finish_cos(double ab, double aa, double bb) {
  if (std::isnan(ab) || std::isnan(aa) || std::isnan(bb) || std::isinf(aa) || std::isinf(bb))
    return std::numeric_limits<float>::quiet_NaN();
  if (aa == 0 || bb == 0) return 0.f;
  return static_cast<float>(ab / (std::sqrt(aa) * std::sqrt(bb)));
}

// The f32 sums of squares in [2^-100, 2^100] leave every partial sum finite and every product's
// underflow far below the result's rounding; outside it (tiny rows whose squares underflow, huge ones
// whose squares overflow, zero and non-finite rows) the row is redone in f64, where the products of
// two f32 values are exact and can neither overflow nor underflow.
inline bool f32_sums_safe(float aa, float bb) {
  return aa >= 0x1p-100f && aa <= 0x1p100f && bb >= 0x1p-100f && bb <= 0x1p100f;
}
inline float cos_f64(const float *a, const float *b, int64_t d) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t k = 0; k < d; k++) {
    const double x = a[k], y = b[k];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return finish_cos(ab, aa, bb);
}

template <class T>
unigap_status paired(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n, int64_t d,
                     float *out) {
  if (da == UNIGAP_DTYPE_F32 && db == UNIGAP_DTYPE_F32) {
    const float *A = static_cast<const float *>(a), *B = static_cast<const float *>(b);
    auto body = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        float ab, aa, bb;
        T::dot3(A + i * d, B + i * d, d, &ab, &aa, &bb);
        out[i] = f32_sums_safe(aa, bb) ? finish_cos(ab, aa, bb) : cos_f64(A + i * d, B + i * d, d);
      }
    };
    parallel(n, std::max<int64_t>(1, 16384 / d), body);
    return UNIGAP_STATUS_OK;
  }
  if (da == UNIGAP_DTYPE_F64 && db == UNIGAP_DTYPE_F64) {
    const double *A = static_cast<const double *>(a), *B = static_cast<const double *>(b);
    auto body = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        double ab, aa, bb;
        T::dot3_f64(A + i * d, B + i * d, d, &ab, &aa, &bb);
        out[i] = finish_cos(ab, aa, bb);
      }
    };
    parallel(n, std::max<int64_t>(1, 8192 / d), body);
    return UNIGAP_STATUS_OK;
  }
  std::atomic<int> oom{0};
  auto body = [&](int64_t lo, int64_t hi) {
    float *buf = static_cast<float *>(alloc_bytes(2 * d * 4));
    if (!buf) {
      oom.store(1);
      return;
    }
    for (int64_t i = lo; i < hi; i++) {
      row_to_f32<T>(a, da, i, d, buf);
      row_to_f32<T>(b, db, i, d, buf + d);
      float ab, aa, bb;
      T::dot3(buf, buf + d, d, &ab, &aa, &bb);
      out[i] = f32_sums_safe(aa, bb) ? finish_cos(ab, aa, bb) : cos_f64(buf, buf + d, d);
    }
    free_bytes(buf, 2 * d * 4);
  };
  parallel(n, std::max<int64_t>(1, 16384 / d), body);
  return oom.load() ? UNIGAP_STATUS_OUT_OF_MEMORY : UNIGAP_STATUS_OK;
}

// ------------------------------------------------------------------ packing

// Packed layout for P-row panels: panel p holds rows [p P, p P + P) as d steps of P floats
// (dst[p d P + k P + r] = row[k] * inv[r]); rows past `rows` are zero. f32 rows are read in place;
// other dtypes are widened into a scratch panel first. T::pack_panel does the transposition (gathers
// on the SIMD tiers).
// Packs panels [p_lo, p_hi) into dst (panel p_lo first), serially. tmp: P * d floats, needed only for
// non-f32 sources.
template <class T>
void pack_range(const void *src, unigap_dtype dt, int64_t rows, int64_t d, int P, int normalize, float *dst,
                int64_t p_lo, int64_t p_hi, float *tmp) {
  float inv[64];
  double exact[64];  // rows normalised after pack_panel, in f64 (inv[r] = 0 there), else 0
  for (int64_t p = p_lo; p < p_hi; p++) {
    const int valid = static_cast<int>(std::min<int64_t>(P, rows - p * P));
    const float *base;
    if (dt == UNIGAP_DTYPE_F32) {
      base = static_cast<const float *>(src) + p * P * d;
    } else {
      for (int r = 0; r < valid; r++) row_to_f32<T>(src, dt, p * P + r, d, tmp + static_cast<int64_t>(r) * d);
      base = tmp;
    }
    bool patch = false;
    for (int r = 0; r < P; r++) {
      exact[r] = 0;
      if (r >= valid) {
        inv[r] = 0.f;
      } else if (normalize) {
        const float *row = base + static_cast<int64_t>(r) * d;
        const float s = T::sumsq(row, d);
        if (s >= 0x1p-100f && s <= 0x1p100f) {
          inv[r] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s)));
        } else if (std::isnan(s)) {
          inv[r] = 0.f;  // NaN * 0 keeps the NaN elements: the row stays poisoned
        } else {
          // zero, tiny (squares underflow f32), huge (they overflow) or holding an infinity: the sum of
          // squares again in f64, where f32 squares neither underflow nor overflow
          double s64 = 0;
          for (int64_t k = 0; k < d; k++) s64 += static_cast<double>(row[k]) * row[k];
          const double inv64 = s64 > 0 ? 1.0 / std::sqrt(s64) : 0.0;  // an infinity gives 0: inf * 0 = NaN
          if (inv64 == 0 || (inv64 >= 0x1p-126 && inv64 <= 0x1p126)) {
            inv[r] = static_cast<float>(inv64);
          } else {  // 1 / |row| is no normal f32: the row is normalised in f64 after the panel is packed
            inv[r] = 0.f;
            exact[r] = inv64;
            patch = true;
          }
        }
      } else {
        inv[r] = 1.f;
      }
    }
    float *o = dst + (p - p_lo) * d * P;
    T::pack_panel(base, d, P, valid, inv, o);
    for (int r = 0; patch && r < valid; r++)
      if (exact[r] != 0) {
        const float *row = base + static_cast<int64_t>(r) * d;
        for (int64_t k = 0; k < d; k++) o[k * P + r] = static_cast<float>(row[k] * exact[r]);
      }
  }
}

// Packs every panel of a matrix over the pool.
template <class T>
unigap_status pack(const void *src, unigap_dtype dt, int64_t rows, int64_t d, int P, int normalize, float *dst) {
  const int64_t panels = (rows + P - 1) / P;
  std::atomic<int> oom{0};
  auto body = [&](int64_t lo, int64_t hi) {
    float *tmp = nullptr;
    if (dt != UNIGAP_DTYPE_F32 && !(tmp = static_cast<float *>(alloc_bytes(static_cast<int64_t>(P) * d * 4)))) {
      oom.store(1);
      return;
    }
    pack_range<T>(src, dt, rows, d, P, normalize, dst + lo * d * P, lo, hi, tmp);
    free_bytes(tmp, static_cast<int64_t>(P) * d * 4);
  };
  parallel(panels, std::max<int64_t>(1, 4096 / (d * P) + 1), body);
  return oom.load() ? UNIGAP_STATUS_OUT_OF_MEMORY : UNIGAP_STATUS_OK;
}

// The portable transposition (scalar tier, and the SIMD tiers' fallback for huge d).
inline void pack_panel_portable(const float *base, int64_t d, int P, int valid, const float *inv, float *o) {
  for (int64_t k = 0; k < d; k++)
    for (int r = 0; r < P; r++) o[k * P + r] = r < valid ? base[static_cast<int64_t>(r) * d + k] * inv[r] : 0.f;
}

// ------------------------------------------------------------------ blocked GEMM with epilogues

// The k block: the whole row up to 1024 (CLIP widths 512-1024 run as one pass with no partial-sum
// reload; measured faster than 256-wide blocks here, since the MR-row A panels stay in L2 and the B
// panel streams from L2 at 2 vector loads per MR broadcasts), else equal blocks of at most 1024.
inline int64_t choose_kc(int64_t d) {
  int64_t blocks = (d + 1023) / 1024;
  return (d + blocks - 1) / blocks;
}

// Work items are (row block, column group) pairs; a column group is a contiguous run of column
// blocks visited in increasing column order. Threads pull items from an atomic counter, so a thread
// that gets descheduled leaves its share to the others. The matrix uses one group per column block;
// top-k and ranks use few groups (one when there are enough row blocks to keep every thread busy,
// more for few queries against many candidates) and merge the groups' partial results at the end.
// With a single row block (few queries) every column block is visited once, so B is not packed up
// front: each item packs its column block into a per-thread buffer just before using it (stream_b),
// which spares an M x D buffer and its page faults (4 x 100000 x 512: most of the time went there).
template <class T, class Epi>
struct Gemm {
  const float *Ap, *Bp;
  const void *bsrc;
  unigap_dtype bdt;
  int normalize;
  bool stream_b;
  int64_t n, m, d, kc;
  int64_t row_blocks, col_blocks, groups;
  Epi *epi;
  std::atomic<int64_t> next{0};
  std::atomic<int> oom{0};

  // Bblock: the packed panels of column block jc (panel jc / NR first).
  void block(int64_t ic, int64_t jc, int64_t g, const float *Bblock, float *C) {
    const int64_t npad = (n + T::MR - 1) / T::MR * T::MR, mpad = (m + T::NR - 1) / T::NR * T::NR;
    const int64_t mcv = std::min<int64_t>(T::MC, npad - ic), ncv = std::min<int64_t>(T::NC, mpad - jc);
    for (int64_t pc = 0; pc < d; pc += kc) {
      const int64_t kcur = std::min(kc, d - pc);
      for (int64_t jr = 0; jr < ncv; jr += T::NR) {
        const float *B = Bblock + (jr / T::NR) * d * T::NR + pc * T::NR;
        for (int64_t ir = 0; ir < mcv; ir += T::MR) {
          const float *A = Ap + ((ic + ir) / T::MR) * d * T::MR + pc * T::MR;
          T::micro(kcur, A, B, C + ir * T::NC + jr, T::NC, pc > 0);
        }
      }
    }
    epi->apply(ic, std::min<int64_t>(T::MC, n - ic), jc, std::min<int64_t>(T::NC, m - jc), g, C, T::NC);
  }

  void worker() {
    const int64_t cbytes = static_cast<int64_t>(T::MC) * T::NC * 4, bbytes = static_cast<int64_t>(T::NC) * d * 4,
                  tbytes = static_cast<int64_t>(T::NR) * d * 4;
    float *C = static_cast<float *>(alloc_bytes(cbytes));
    float *Bbuf = stream_b ? static_cast<float *>(alloc_bytes(bbytes)) : nullptr;
    float *btmp = stream_b && bdt != UNIGAP_DTYPE_F32 ? static_cast<float *>(alloc_bytes(tbytes)) : nullptr;
    if (!C || (stream_b && !Bbuf) || (stream_b && bdt != UNIGAP_DTYPE_F32 && !btmp)) {
      oom.store(1);
    } else {
      const int64_t items = row_blocks * groups, mpan = (m + T::NR - 1) / T::NR;
      for (;;) {
        const int64_t it = next.fetch_add(1);
        if (it >= items) break;
        const int64_t rb = it / groups, g = it % groups;
        const int64_t ic = rb * T::MC, rows = std::min<int64_t>(T::MC, n - ic);
        epi->begin_rows(ic, rows, g);
        for (int64_t cb = g * col_blocks / groups; cb < (g + 1) * col_blocks / groups; cb++) {
          const int64_t jc = cb * T::NC, p0 = jc / T::NR;
          if (stream_b) {
            pack_range<T>(bsrc, bdt, m, d, T::NR, normalize, Bbuf, p0, std::min<int64_t>(mpan, p0 + T::NC / T::NR), btmp);
            block(ic, jc, g, Bbuf, C);
          } else {
            block(ic, jc, g, Bp + p0 * d * T::NR, C);
          }
        }
        epi->end_rows(ic, rows, g);
      }
    }
    free_bytes(C, cbytes);
    free_bytes(Bbuf, bbytes);
    free_bytes(btmp, tbytes);
  }

  static void run_fn(void *p, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) static_cast<Gemm *>(p)->worker();
  }
};

template <class T>
int64_t col_blocks_of(int64_t m) {
  return (m + T::NC - 1) / T::NC;
}

// Column groups for the stateful epilogues: 1 when the row blocks alone give every thread about
// four items, else enough groups for that, at most 16 and at most one per column block.
template <class T>
int64_t choose_groups(int64_t n, int64_t m) {
  const int64_t rb = (n + T::MC - 1) / T::MC, want = 4 * static_cast<int64_t>(unigap_threads());
  if (rb >= want) return 1;
  return std::max<int64_t>(1, std::min<int64_t>({(want + rb - 1) / rb, col_blocks_of<T>(m), 16}));
}

// Packs A (and B unless streamed), runs the GEMM with the epilogue, frees the packs.
// epi.prepare() runs after the packs exist (ranks read the packed rows there, so they never stream).
template <class T, class Epi>
unigap_status run_gemm(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m, int64_t d,
                       int normalize, Epi &epi, int64_t groups) {
  const int64_t npan = (n + T::MR - 1) / T::MR, mpan = (m + T::NR - 1) / T::NR;
  const int64_t row_blocks = (n + T::MC - 1) / T::MC;
  const bool stream_b = row_blocks == 1 && !Epi::kNeedsPackedB;
  const int64_t abytes = npan * T::MR * d * 4, bbytes = stream_b ? 0 : mpan * T::NR * d * 4;
  float *Ap = static_cast<float *>(alloc_bytes(abytes));
  float *Bp = stream_b ? nullptr : static_cast<float *>(alloc_bytes(bbytes));
  unigap_status st = UNIGAP_STATUS_OK;
  if (!Ap || (!stream_b && !Bp)) st = UNIGAP_STATUS_OUT_OF_MEMORY;
  if (st == UNIGAP_STATUS_OK) st = pack<T>(a, da, n, d, T::MR, normalize, Ap);
  if (st == UNIGAP_STATUS_OK && !stream_b) st = pack<T>(b, db, m, d, T::NR, normalize, Bp);
  if (st == UNIGAP_STATUS_OK) {
    epi.Ap = Ap;
    epi.Bp = Bp;
    epi.d = d;
    epi.prepare();
    Gemm<T, Epi> g;
    g.Ap = Ap;
    g.Bp = Bp;
    g.bsrc = b;
    g.bdt = db;
    g.normalize = normalize;
    g.stream_b = stream_b;
    g.n = n;
    g.m = m;
    g.d = d;
    g.kc = choose_kc(d);
    g.row_blocks = row_blocks;
    g.col_blocks = col_blocks_of<T>(m);
    g.groups = groups;
    g.epi = &epi;
    const int64_t items = g.row_blocks * g.groups;
    unigap_parallel_for(std::min<int64_t>(unigap_threads(), items), 1, Gemm<T, Epi>::run_fn, &g);
    if (g.oom.load()) st = UNIGAP_STATUS_OUT_OF_MEMORY;
  }
  free_bytes(Ap, abytes);
  free_bytes(Bp, bbytes);
  return st;
}

struct EpiBase {
  static constexpr bool kNeedsPackedB = false;
  const float *Ap = nullptr, *Bp = nullptr;
  int64_t d = 0;
  void prepare() {}
  void begin_rows(int64_t, int64_t, int64_t) {}
  void end_rows(int64_t, int64_t, int64_t) {}
};

template <class T>
struct MatrixEpi : EpiBase {
  float *out;
  int64_t m;
  float scale, bias;
  void apply(int64_t ic, int64_t rows, int64_t jc, int64_t cols, int64_t, const float *C, int64_t ldc) {
    for (int64_t r = 0; r < rows; r++) T::affine(C + r * ldc, cols, scale, bias, out + (ic + r) * m + jc);
  }
};

template <class T>
unigap_status matrix(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m, int64_t d,
                     int normalize, float scale, float bias, float *out) {
  MatrixEpi<T> epi;
  epi.out = out;
  epi.m = m;
  epi.scale = scale;
  epi.bias = bias;
  return run_gemm<T>(a, da, n, b, db, m, d, normalize, epi, col_blocks_of<T>(m));
}

// ---- top-k: per row and column group a heap of k (score, index) with the worst entry at the root.
inline bool worse(float as, int32_t ai, float bs, int32_t bi) {
  const bool an = as != as, bn = bs != bs;
  if (an != bn) return an;
  if (an || as == bs) return ai > bi;
  return as < bs;
}

inline void sift_down(float *s, int32_t *ix, int64_t k, int64_t pos) {
  const float vs = s[pos];
  const int32_t vi = ix[pos];
  for (;;) {
    int64_t c = 2 * pos + 1;
    if (c >= k) break;
    if (c + 1 < k && worse(s[c + 1], ix[c + 1], s[c], ix[c])) c++;
    if (!worse(s[c], ix[c], vs, vi)) break;
    s[pos] = s[c];
    ix[pos] = ix[c];
    pos = c;
  }
  s[pos] = vs;
  ix[pos] = vi;
}

inline void sift_up(float *s, int32_t *ix, int64_t pos) {
  const float vs = s[pos];
  const int32_t vi = ix[pos];
  while (pos > 0) {
    int64_t p = (pos - 1) / 2;
    if (!worse(vs, vi, s[p], ix[p])) break;
    s[pos] = s[p];
    ix[pos] = ix[p];
    pos = p;
  }
  s[pos] = vs;
  ix[pos] = vi;
}

template <class T>
struct TopkEpi : EpiBase {
  int64_t n, k, groups;
  // Group g keeps rows in sc[g] / idx[g] (n * k each; group 0 is the caller's output) and fill counts.
  float **sc;
  int32_t **idx;
  int64_t **filled;
  void apply(int64_t ic, int64_t rows, int64_t jc, int64_t cols, int64_t g, const float *C, int64_t ldc) {
    for (int64_t r = 0; r < rows; r++) {
      const float *c = C + r * ldc;
      float *hs = sc[g] + (ic + r) * k;
      int32_t *hi = idx[g] + (ic + r) * k;
      int64_t &f = filled[g][ic + r];
      int64_t t = 0;
      // Within a group candidates arrive in increasing index order, so a newcomer beats the root only
      // when its score is strictly greater (or the root is NaN and the newcomer is not).
      while (t < cols) {
        if (f < k) {
          hs[f] = c[t];
          hi[f] = static_cast<int32_t>(jc + t);
          sift_up(hs, hi, f);
          f++;
          t++;
          continue;
        }
        const float root = hs[0];
        if (root == root) {
          t += T::find_gt(c + t, cols - t, root);
          if (t >= cols) break;
        } else if (c[t] != c[t]) {
          t++;
          continue;
        }
        hs[0] = c[t];
        hi[0] = static_cast<int32_t>(jc + t);
        sift_down(hs, hi, k, 0);
        t++;
      }
    }
  }
  void end_rows(int64_t ic, int64_t rows, int64_t g) {
    // Heap sort in place: repeatedly move the worst to the end -> best first (f entries).
    for (int64_t r = 0; r < rows; r++) {
      float *hs = sc[g] + (ic + r) * k;
      int32_t *hi = idx[g] + (ic + r) * k;
      for (int64_t e = filled[g][ic + r] - 1; e > 0; e--) {
        std::swap(hs[0], hs[e]);
        std::swap(hi[0], hi[e]);
        sift_down(hs, hi, e, 0);
      }
    }
  }
  // Merge each row's sorted group lists into group 0 (the output), best first, k entries.
  void merge(int64_t lo, int64_t hi_row, float *tmp_s, int32_t *tmp_i) {
    int64_t pos[16];
    for (int64_t i = lo; i < hi_row; i++) {
      for (int64_t g = 0; g < groups; g++) pos[g] = 0;
      for (int64_t r = 0; r < k; r++) {
        int64_t best = -1;
        for (int64_t g = 0; g < groups; g++) {
          if (pos[g] >= filled[g][i]) continue;
          const float s = sc[g][i * k + pos[g]];
          const int32_t j = idx[g][i * k + pos[g]];
          if (best < 0 || worse(sc[best][i * k + pos[best]], idx[best][i * k + pos[best]], s, j)) best = g;
        }
        tmp_s[r] = sc[best][i * k + pos[best]];
        tmp_i[r] = idx[best][i * k + pos[best]];
        pos[best]++;
      }
      std::memcpy(sc[0] + i * k, tmp_s, static_cast<size_t>(k) * 4);
      std::memcpy(idx[0] + i * k, tmp_i, static_cast<size_t>(k) * 4);
    }
  }
};

template <class T>
unigap_status topk(const void *a, unigap_dtype da, int64_t n, const void *b, unigap_dtype db, int64_t m, int64_t d,
                   int64_t k, int normalize, int32_t *idx, float *scores) {
  const int64_t groups = choose_groups<T>(n, m);
  float *sc[16];
  int32_t *ix[16];
  int64_t *filled[16];
  unigap_status st = UNIGAP_STATUS_OK;
  for (int64_t g = 0; g < groups; g++) {
    sc[g] = g ? static_cast<float *>(alloc_bytes(n * k * 4)) : scores;
    ix[g] = g ? static_cast<int32_t *>(alloc_bytes(n * k * 4)) : idx;
    filled[g] = static_cast<int64_t *>(alloc_bytes(n * 8));
    if (!sc[g] || !ix[g] || !filled[g]) st = UNIGAP_STATUS_OUT_OF_MEMORY;
    else std::memset(filled[g], 0, static_cast<size_t>(n) * 8);
  }
  TopkEpi<T> epi;
  epi.n = n;
  epi.k = k;
  epi.groups = groups;
  epi.sc = sc;
  epi.idx = ix;
  epi.filled = filled;
  if (st == UNIGAP_STATUS_OK) st = run_gemm<T>(a, da, n, b, db, m, d, normalize, epi, groups);
  if (st == UNIGAP_STATUS_OK && groups > 1) {
    std::atomic<int> oom{0};
    auto body = [&](int64_t lo, int64_t hi) {
      float *ts = static_cast<float *>(alloc_bytes(k * 4));
      int32_t *ti = static_cast<int32_t *>(alloc_bytes(k * 4));
      if (ts && ti) epi.merge(lo, hi, ts, ti);
      else oom.store(1);
      free_bytes(ts, k * 4);
      free_bytes(ti, k * 4);
    };
    parallel(n, std::max<int64_t>(1, 65536 / (k * groups)), body);
    if (oom.load()) st = UNIGAP_STATUS_OUT_OF_MEMORY;
  }
  for (int64_t g = 0; g < groups; g++) {
    if (g) {
      free_bytes(sc[g], n * k * 4);
      free_bytes(ix[g], n * k * 4);
    }
    free_bytes(filled[g], n * 8);
  }
  return st;
}

// ---- ranks: the own score s_ii from the same accumulation chain (computed once, after packing),
// then each block adds the number of strictly greater scores in its rows (atomically: column groups
// of one row may run on different threads).
template <class T>
struct RanksEpi : EpiBase {
  static constexpr bool kNeedsPackedB = true;
  int64_t n;
  float *diag;
  std::atomic<int64_t> *count;
  void prepare() {
    auto body = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) {
        const float *a = Ap + (i / T::MR) * d * T::MR + i % T::MR;
        const float *b = Bp + (i / T::NR) * d * T::NR + i % T::NR;
        diag[i] = T::chain(a, T::MR, b, T::NR, d);
        count[i].store(0, std::memory_order_relaxed);
      }
    };
    parallel(n, std::max<int64_t>(1, 65536 / d), body);
  }
  void apply(int64_t ic, int64_t rows, int64_t, int64_t cols, int64_t, const float *C, int64_t ldc) {
    for (int64_t r = 0; r < rows; r++)
      count[ic + r].fetch_add(T::count_gt(C + r * ldc, cols, diag[ic + r]), std::memory_order_relaxed);
  }
};

template <class T>
unigap_status ranks(const void *a, unigap_dtype da, const void *b, unigap_dtype db, int64_t n, int64_t d,
                    int normalize, double *out) {
  float *diag = static_cast<float *>(alloc_bytes(n * 4));
  auto *count = static_cast<std::atomic<int64_t> *>(alloc_bytes(n * static_cast<int64_t>(sizeof(std::atomic<int64_t>))));
  unigap_status st = (diag && count) ? UNIGAP_STATUS_OK : UNIGAP_STATUS_OUT_OF_MEMORY;
  if (st == UNIGAP_STATUS_OK) {
    for (int64_t i = 0; i < n; i++) new (&count[i]) std::atomic<int64_t>(0);
    RanksEpi<T> epi;
    epi.n = n;
    epi.diag = diag;
    epi.count = count;
    st = run_gemm<T>(a, da, n, b, db, n, d, normalize, epi, choose_groups<T>(n, n));
    if (st == UNIGAP_STATUS_OK)
      for (int64_t i = 0; i < n; i++)
        out[i] = diag[i] != diag[i] ? std::numeric_limits<double>::quiet_NaN()
                                    : static_cast<double>(count[i].load(std::memory_order_relaxed) + 1);
  }
  free_bytes(diag, n * 4);
  free_bytes(count, n * static_cast<int64_t>(sizeof(std::atomic<int64_t>)));
  return st;
}

template <class T>
constexpr Table make_table() {
  return Table{paired<T>, matrix<T>, topk<T>, ranks<T>};
}

}  // namespace
}  // namespace sim
}  // namespace unigap

#endif
