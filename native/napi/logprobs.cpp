// N-API binding for the logprobs family: unwrap (re-checking types and lengths), call the core,
// return. No math; the facade (lib/kernels/logprobs.ts) validated and allocated everything.
//   logprobsRun(mode, call)       mode 0 forward, 1 backward, 2 forward + backward; returns undefined
//   logprobsRunAsync(mode, call)  the same on the libuv pool; a Promise that keeps `call` alive
// `call` fields are documented with PreparedLogprobsCall in lib/kernels/logprobs.ts.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "unigap/logprobs.h"
#include "util.h"

namespace {

using unigap_napi::GetTyped;
using unigap_napi::Throw;

struct Call {
  unigap_logprobs_args a{};
  unigap_logprobs_grad g{};
  std::vector<int64_t> offsets;  // widened from Int32Array (or copied from BigInt64Array)
  int mode = 0;
};

// Optional typed array field: null/undefined -> nullptr; otherwise type and length re-checked.
void *Opt(Napi::Env env, Napi::Object o, const char *key, napi_typedarray_type type, size_t len) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  unigap_napi::View w = GetTyped(env, v, type, key);
  if (w.length != len)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH",
          std::string(key) + " has " + std::to_string(w.length) + " elements, expected " + std::to_string(len));
  return w.data;
}

std::shared_ptr<Call> Unwrap(const Napi::CallbackInfo &info, const char *where) {
  Napi::Env env = info.Env();
  auto c = std::make_shared<Call>();
  c->mode = static_cast<int>(unigap_napi::GetInt(env, info[0], "mode"));
  if (c->mode < 0 || c->mode > 2) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": mode must be 0, 1 or 2");
  if (!info[1].IsObject()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": call must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  unigap_logprobs_args &a = c->a;
  const int64_t dt = unigap_napi::GetInt(env, o.Get("dtype"), "dtype");
  if (dt != UNIGAP_DTYPE_F32 && dt != UNIGAP_DTYPE_BF16 && dt != UNIGAP_DTYPE_F16)
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE", std::string(where) + ": dtype must be f32, bf16 or f16");
  a.dtype = static_cast<unigap_dtype>(dt);
  a.n_tokens = unigap_napi::GetInt(env, o.Get("nTokens"), "nTokens");
  a.vocab = unigap_napi::GetInt(env, o.Get("vocab"), "vocab");
  a.n_seq = unigap_napi::GetInt(env, o.Get("nSeq"), "nSeq");
  if (a.n_tokens < 0 || a.vocab < 1 || a.n_seq < 0)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": nTokens >= 0, vocab >= 1, nSeq >= 0");
  const size_t n = static_cast<size_t>(a.n_tokens), ns = static_cast<size_t>(a.n_seq);
  const size_t nv = n * static_cast<size_t>(a.vocab);
  if (a.n_tokens > 0 && nv / n != static_cast<size_t>(a.vocab))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": nTokens * vocab overflows");
  const napi_typedarray_type lt = a.dtype == UNIGAP_DTYPE_F32 ? napi_float32_array : napi_uint16_array;
  {
    unigap_napi::View w = GetTyped(env, o.Get("logits"), lt, "logits");
    if (w.length != nv) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": logits length is not nTokens * vocab");
    a.logits = w.data;
  }
  {
    unigap_napi::View w = GetTyped(env, o.Get("labels"), napi_int32_array, "labels");
    if (w.length != n) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": labels length is not nTokens");
    a.labels = static_cast<const int32_t *>(w.data);
  }
  a.mask = static_cast<const uint8_t *>(Opt(env, o, "mask", napi_uint8_array, n));
  a.ignore_index = static_cast<int32_t>(unigap_napi::GetInt(env, o.Get("ignoreIndex"), "ignoreIndex"));
  {
    Napi::Value ov = o.Get("offsets");
    if (!ov.IsTypedArray()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": offsets must be a TypedArray");
    const bool big = ov.As<Napi::TypedArray>().TypedArrayType() == napi_bigint64_array;
    unigap_napi::View w = GetTyped(env, ov, big ? napi_bigint64_array : napi_int32_array, "offsets");
    if (w.length != ns + 1) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": offsets length is not nSeq + 1");
    c->offsets.resize(ns + 1);
    for (size_t i = 0; i <= ns; i++)
      c->offsets[i] = big ? static_cast<const int64_t *>(w.data)[i] : static_cast<const int32_t *>(w.data)[i];
    a.offsets = c->offsets.data();
  }
  a.shift = o.Get("shift").ToBoolean() ? 1 : 0;
  a.temperature = static_cast<float>(unigap_napi::GetDouble(env, o.Get("temperature"), "temperature"));
  a.token_logp = static_cast<float *>(Opt(env, o, "tokenLogp", napi_float32_array, n));
  a.token_entropy = static_cast<float *>(Opt(env, o, "tokenEntropy", napi_float32_array, n));
  a.token_correct = static_cast<uint8_t *>(Opt(env, o, "tokenCorrect", napi_uint8_array, n));
  a.token_lse = static_cast<float *>(Opt(env, o, "tokenLse", napi_float32_array, n));
  a.seq_sum = static_cast<float *>(Opt(env, o, "seqSum", napi_float32_array, ns));
  a.seq_count = static_cast<int32_t *>(Opt(env, o, "seqCount", napi_int32_array, ns));
  a.seq_mean = static_cast<float *>(Opt(env, o, "seqMean", napi_float32_array, ns));
  a.seq_logit_sum = static_cast<double *>(Opt(env, o, "seqLogitSum", napi_float64_array, ns));
  if (c->mode != 0) {
    unigap_logprobs_grad &g = c->g;
    g.grad_seq = static_cast<const float *>(Opt(env, o, "gradSeq", napi_float32_array, ns));
    g.grad_token = static_cast<const float *>(Opt(env, o, "gradToken", napi_float32_array, n));
    g.token_lse = c->mode == 1 ? static_cast<const float *>(Opt(env, o, "inputLse", napi_float32_array, n)) : nullptr;
    g.grad_out = Opt(env, o, "gradOut", lt, nv);
    if (!g.grad_out && n > 0) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": gradOut is required");
  }
  return c;
}

unigap_status Execute(const Call &c) {
  switch (c.mode) {
    case 0: return unigap_logprobs_forward(&c.a);
    case 1: return unigap_logprobs_backward(&c.a, &c.g);
    default: return unigap_logprobs_forward_backward(&c.a, &c.g);
  }
}

Napi::Value Run(const Napi::CallbackInfo &info) {
  auto c = Unwrap(info, "logprobsRun");
  unigap_napi::CheckStatus(info.Env(), Execute(*c), "logprobsRun");
  return info.Env().Undefined();
}

Napi::Value RunAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto c = Unwrap(info, "logprobsRunAsync");
  // Keep the call object and every array it holds alive until the worker finishes.
  std::vector<Napi::Value> keep{info[1]};
  Napi::Object o = info[1].As<Napi::Object>();
  for (const char *k : {"logits", "labels", "mask", "offsets", "tokenLogp", "tokenEntropy", "tokenCorrect", "tokenLse",
                        "seqSum", "seqCount", "seqMean", "seqLogitSum", "gradSeq", "gradToken", "inputLse", "gradOut"})
    keep.push_back(o.Get(k));
  return unigap_napi::QueueWork(env, keep, [c]() { return Execute(*c); }, "logprobsRunAsync");
}

}  // namespace

void unigap_napi_register_logprobs(Napi::Env env, Napi::Object exports) {
  exports.Set("logprobsRun", Napi::Function::New(env, Run, "logprobsRun"));
  exports.Set("logprobsRunAsync", Napi::Function::New(env, RunAsync, "logprobsRunAsync"));
}
