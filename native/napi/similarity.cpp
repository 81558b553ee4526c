// N-API binding for the similarity family: unwrap, re-check, call the core, wrap. No math here.
// Every function takes pre-allocated outputs from the facade (lib/kernels/similarity.ts).
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "unigap/similarity.h"
#include "util.h"

namespace {

using unigap_napi::GetDouble;
using unigap_napi::GetInt;
using unigap_napi::GetTyped;
using unigap_napi::Throw;

struct Input {
  const void *data;
  unigap_dtype dtype;
  size_t length;
};

// (array, dtype string) -> the data pointer; the TypedArray kind must match the dtype.
Input GetInput(Napi::Env env, Napi::Value arr, Napi::Value dt, const char *name) {
  if (!dt.IsString()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + ": dtype must be a string");
  std::string d = dt.As<Napi::String>().Utf8Value();
  Input in;
  unigap_napi::View v;
  if (d == "f32") {
    v = GetTyped(env, arr, napi_float32_array, name);
    in.dtype = UNIGAP_DTYPE_F32;
  } else if (d == "f64") {
    v = GetTyped(env, arr, napi_float64_array, name);
    in.dtype = UNIGAP_DTYPE_F64;
  } else if (d == "bf16" || d == "f16") {
    v = GetTyped(env, arr, napi_uint16_array, name);
    in.dtype = d == "bf16" ? UNIGAP_DTYPE_BF16 : UNIGAP_DTYPE_F16;
  } else {
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE", std::string(name) + ": unknown dtype '" + d + "'");
  }
  in.data = v.data;
  in.length = v.length;
  return in;
}

// want = rows * cols, refused when the product would overflow.
void NeedLength(Napi::Env env, size_t have, int64_t rows, int64_t cols, const char *name) {
  if (rows < 0 || cols < 0 || (cols > 0 && rows > INT64_MAX / cols))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(name) + ": shape too large");
  const int64_t want = rows * cols;
  if ( static_cast<int64_t>(have) != want)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH",
          std::string(name) + " has " + std::to_string(have) + " elements, expected " + std::to_string(want));
}

int GetFlag(Napi::Env env, Napi::Value v, const char *name) {
  if (!v.IsBoolean()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value() ? 1 : 0;
}

// pairedCosine(a, aDtype, b, bDtype, n, d, out)
Napi::Value Paired(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Input a = GetInput(env, info[0], info[1], "images");
  Input b = GetInput(env, info[2], info[3], "texts");
  int64_t n = GetInt(env, info[4], "n"), d = GetInt(env, info[5], "d");
  auto out = GetTyped(env, info[6], napi_float32_array, "out");
  if (n < 0 || d < 1) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "pairedCosine: n >= 0 and d >= 1");
  NeedLength(env, a.length, n, d, "images");
  NeedLength(env, b.length, n, d, "texts");
  NeedLength(env, out.length, n, 1, "out");
  unigap_napi::CheckStatus(
      env,
      unigap_similarity_paired_cosine(a.data, a.dtype, b.data, b.dtype, n, d, static_cast<float *>(out.data)),
      "pairedCosine");
  return env.Undefined();
}

// matrix(a, aDtype, n, b, bDtype, m, d, normalize, scale, bias, out[, async])
Napi::Value Matrix(const Napi::CallbackInfo &info, bool async) {
  Napi::Env env = info.Env();
  Input a = GetInput(env, info[0], info[1], "images");
  int64_t n = GetInt(env, info[2], "n");
  Input b = GetInput(env, info[3], info[4], "texts");
  int64_t m = GetInt(env, info[5], "m"), d = GetInt(env, info[6], "d");
  int normalize = GetFlag(env, info[7], "normalize");
  double scale = GetDouble(env, info[8], "scale"), bias = GetDouble(env, info[9], "bias");
  auto out = GetTyped(env, info[10], napi_float32_array, "out");
  if (n < 0 || m < 0 || d < 1) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "similarityMatrix: n, m >= 0 and d >= 1");
  if (!std::isfinite(scale) || !std::isfinite(bias))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "similarityMatrix: scale and bias must be finite");
  NeedLength(env, a.length, n, d, "images");
  NeedLength(env, b.length, m, d, "texts");
  NeedLength(env, out.length, n, m, "out");
  float *o = static_cast<float *>(out.data);
  auto exec = [=]() {
    return unigap_similarity_matrix(a.data, a.dtype, n, b.data, b.dtype, m, d, normalize, static_cast<float>(scale),
                                    static_cast<float>(bias), o);
  };
  if (!async) {
    unigap_napi::CheckStatus(env, exec(), "similarityMatrix");
    return env.Undefined();
  }
  return unigap_napi::QueueWork(env, {info[0], info[3], info[10]}, exec, "similarityMatrixAsync");
}

// topk(q, qDtype, n, c, cDtype, m, d, k, normalize, outIdx, outScores)
Napi::Value Topk(const Napi::CallbackInfo &info, bool async) {
  Napi::Env env = info.Env();
  Input a = GetInput(env, info[0], info[1], "queries");
  int64_t n = GetInt(env, info[2], "n");
  Input b = GetInput(env, info[3], info[4], "candidates");
  int64_t m = GetInt(env, info[5], "m"), d = GetInt(env, info[6], "d"), k = GetInt(env, info[7], "k");
  int normalize = GetFlag(env, info[8], "normalize");
  auto idx = GetTyped(env, info[9], napi_int32_array, "indices");
  auto sc = GetTyped(env, info[10], napi_float32_array, "scores");
  if (n < 0 || m < 0 || d < 1) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "topkSimilarity: n, m >= 0 and d >= 1");
  if (k < 1 || k > m) Throw(env, 2, "ERR_UNIGAP_OUT_OF_RANGE", "topkSimilarity: k must be in [1, m]");
  NeedLength(env, a.length, n, d, "queries");
  NeedLength(env, b.length, m, d, "candidates");
  NeedLength(env, idx.length, n, k, "indices");
  NeedLength(env, sc.length, n, k, "scores");
  int32_t *oi = static_cast<int32_t *>(idx.data);
  float *os = static_cast<float *>(sc.data);
  auto exec = [=]() {
    return unigap_similarity_topk(a.data, a.dtype, n, b.data, b.dtype, m, d, k, normalize, oi, os);
  };
  if (!async) {
    unigap_napi::CheckStatus(env, exec(), "topkSimilarity");
    return env.Undefined();
  }
  return unigap_napi::QueueWork(env, {info[0], info[3], info[9], info[10]}, exec, "topkSimilarityAsync");
}

// ranks(q, qDtype, c, cDtype, n, d, normalize, out)
Napi::Value Ranks(const Napi::CallbackInfo &info, bool async) {
  Napi::Env env = info.Env();
  Input a = GetInput(env, info[0], info[1], "queries");
  Input b = GetInput(env, info[2], info[3], "candidates");
  int64_t n = GetInt(env, info[4], "n"), d = GetInt(env, info[5], "d");
  int normalize = GetFlag(env, info[6], "normalize");
  auto out = GetTyped(env, info[7], napi_float64_array, "ranks");
  if (n < 0 || d < 1) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "retrievalRanks: n >= 0 and d >= 1");
  NeedLength(env, a.length, n, d, "queries");
  NeedLength(env, b.length, n, d, "candidates");
  NeedLength(env, out.length, n, 1, "ranks");
  double *o = static_cast<double *>(out.data);
  auto exec = [=]() { return unigap_similarity_ranks(a.data, a.dtype, b.data, b.dtype, n, d, normalize, o); };
  if (!async) {
    unigap_napi::CheckStatus(env, exec(), "retrievalRanks");
    return env.Undefined();
  }
  return unigap_napi::QueueWork(env, {info[0], info[2], info[7]}, exec, "retrievalRanksAsync");
}

}  // namespace

void unigap_napi_register_similarity(Napi::Env env, Napi::Object exports) {
  exports.Set("similarityPairedCosine", Napi::Function::New(env, Paired, "similarityPairedCosine"));
  exports.Set("similarityMatrix",
              Napi::Function::New(env, [](const Napi::CallbackInfo &i) { return Matrix(i, false); }, "similarityMatrix"));
  exports.Set("similarityMatrixAsync", Napi::Function::New(
                                           env, [](const Napi::CallbackInfo &i) { return Matrix(i, true); },
                                           "similarityMatrixAsync"));
  exports.Set("similarityTopk",
              Napi::Function::New(env, [](const Napi::CallbackInfo &i) { return Topk(i, false); }, "similarityTopk"));
  exports.Set("similarityTopkAsync",
              Napi::Function::New(env, [](const Napi::CallbackInfo &i) { return Topk(i, true); }, "similarityTopkAsync"));
  exports.Set("similarityRanks",
              Napi::Function::New(env, [](const Napi::CallbackInfo &i) { return Ranks(i, false); }, "similarityRanks"));
  exports.Set("similarityRanksAsync", Napi::Function::New(
                                          env, [](const Napi::CallbackInfo &i) { return Ranks(i, true); },
                                          "similarityRanksAsync"));
}
