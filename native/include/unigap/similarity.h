/*
 * unigap image–prompt similarity: the C ABI and its spec.
 *
 * Inputs are row-major embedding matrices: A (N rows) and B (M rows), both with D >= 1 columns, row
 * stride D. Each input has its own dtype (f32 | f64 | bf16 | f16), so f32 images can meet bf16 texts.
 *
 * Math.
 *   paired cosine   c_i  = <a_i, b_i> / (|a_i| |b_i|)                         (i < N, A and B both N rows)
 *   matrix          S_ij = scale * s_ij + bias,   s_ij = cos(a_i, b_j) (normalize) or <a_i, b_j> (raw)
 *   top-k           per query row i the k best j by s_ij (no scale / bias), best first
 *   ranks           r_i = 1 + #{ j : s_ij > s_ii }                            (A and B both N rows)
 *
 * Widening. f16 / bf16 are converted to f32 exactly; every sum is an f32 accumulation. f64 inputs:
 * the paired cosine keeps f64 (f64 products and sums, rounded to f32 at the end) when both inputs are
 * f64; everywhere else (the matrix family, mixed dtypes) f64 values are rounded to f32 first.
 * Norms inside the matrix family are applied before the product: rows are converted, scaled by
 * 1 / |row| (f32 sum of squares, inverse square root in f64) and packed into panels once, so
 * s_ij = sum_k â_ik b̂_jk and the magnitude of the inputs cannot overflow the dot product.
 *
 * Zero vectors. A row whose norm is 0 has cosine 0 with everything (never NaN): its normalised row is
 * all zeros.
 *
 * Range. Every finite input works on the CPU, tiny or huge: a row whose f32 sum of squares falls
 * outside [2^-100, 2^100] (its squares underflow, e.g. every |x| below ~1e-20, or overflow, |x| above
 * ~1e19) has its sums (paired cosine: with the dot product) redone in f64, where the products of f32
 * values are exact, and is normalised in f64 where 1 / |row| is no normal f32. Raw dot products
 * (normalize = 0) are f32 sums of f32 products and overflow as such. The CUDA kernels keep f32 sums of
 * squares: there, rows with |x| outside about [1e-19, 1e19] are outside the contract.
 *
 * NaN. A NaN (or an infinity) in input row a_i makes exactly the outputs that depend on a_i NaN: c_i,
 * row i of S, the scores of query i in top-k, rank r_i; likewise a non-finite b_j poisons c_j, column
 * j of S, and s_ij for every query (so rank r_j is NaN; other ranks ignore j because NaN > x is false).
 *
 * Ordering (top-k and ranks). Scores are compared as floats with one total order: any number beats
 * NaN, larger beats smaller, and between equal scores (or two NaNs) the lower candidate index wins. So
 * a NaN query row returns candidates 0..k-1 with NaN scores, and NaN candidates come last. Ranks count
 * only strictly greater scores: a tie with the own candidate counts for the query (optimistic), and
 * r_i = NaN when s_ii is NaN. s_ij and s_ii come from the same f32 accumulation order, so a duplicate
 * of the own candidate ties exactly rather than by rounding luck.
 *
 * Memory. The matrix family packs A and B once into f32 panels (O((N + M) D); with at most one row
 * block of queries, B is instead packed block by block into a per-thread buffer as it is used), then
 * runs a blocked GEMM (AVX-512 14x32 / AVX2 6x16 / scalar 4x4 microkernels, FMA on the SIMD tiers,
 * row blocks x column groups pulled by the unigap thread pool) whose epilogue writes S, or merges
 * each block into per-row top-k heaps (one per column group, merged at the end by the order below),
 * or counts greater scores: top-k and ranks never hold N x M (O((N + M) D + N k) in all).
 *
 * Sizes are 64-bit. N = 0 or M = 0 does nothing. D >= 1. 1 <= k <= M. scale and bias finite.
 * Every tier (scalar | avx2 | avx512, see common.h) agrees with the scalar one to f32 rounding.
 */
#ifndef UNIGAP_SIMILARITY_H
#define UNIGAP_SIMILARITY_H

#include "unigap/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out: n floats. */
unigap_status unigap_similarity_paired_cosine(const void *a, unigap_dtype a_dtype, const void *b, unigap_dtype b_dtype,
                                              int64_t n, int64_t d, float *out);

/* out: n * m floats, row-major (row i = query a_i). normalize: 0 raw dot products, 1 cosine. */
unigap_status unigap_similarity_matrix(const void *a, unigap_dtype a_dtype, int64_t n, const void *b,
                                       unigap_dtype b_dtype, int64_t m, int64_t d, int normalize, float scale,
                                       float bias, float *out);

/* indices, scores: n * k each, row i best first (see Ordering). */
unigap_status unigap_similarity_topk(const void *q, unigap_dtype q_dtype, int64_t n, const void *c,
                                     unigap_dtype c_dtype, int64_t m, int64_t d, int64_t k, int normalize,
                                     int32_t *indices, float *scores);

/* ranks: n doubles, each an integer >= 1 or NaN. Candidates c has n rows (candidate i belongs to query i). */
unigap_status unigap_similarity_ranks(const void *q, unigap_dtype q_dtype, const void *c, unigap_dtype c_dtype,
                                      int64_t n, int64_t d, int normalize, double *ranks);

#ifdef __cplusplus
}
#endif

#endif
