// N-API binding for the dpo family: unwrap, call the core, wrap. No math (design rule 4). The facade
// (lib/kernels/dpo.ts) validates and allocates every output; this layer re-checks types and lengths.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "unigap/dpo.h"
#include "unigap/logprobs.h"
#include "dpo_args.h"
#include "util.h"

namespace {

using unigap_napi::GetTyped;
using unigap_napi::Throw;
using unigap_napi::View;

template <typename T>
T *Field(Napi::Env env, Napi::Object o, const char *name, napi_typedarray_type type, int64_t len, bool required) {
  return unigap_napi::DpoField<T>(env, o, name, type, len, required, "dpo");
}

// dpoLoss(args): fills the output arrays of `args` in place; returns undefined.
Napi::Value DpoLoss(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", "dpoLoss: args object");
  Napi::Object o = info[0].As<Napi::Object>();
  View pc = GetTyped(env, o.Get("policyChosen"), napi_float64_array, "policyChosen");
  unigap_dpo_args a;
  unigap_napi::ReadDpoArgs(env, o, &a, static_cast<int64_t>(pc.length), false, "dpo");
  unigap_napi::CheckStatus(env, unigap_dpo_loss(&a), "dpoLoss");
  return env.Undefined();
}

// ------------------------------------------------------------------------------ fused from logits
// dpoFromLogits(call, args, out) / dpoFromLogitsAsync(...): `call` is a prepared logprobs call
// (lib/kernels/logprobs.ts, NativeLogprobsCall: only its inputs are read); `args` the dpo options,
// references and pair outputs (as dpoLoss, without policy inputs or counts); `out` holds gradOut
// (logits' type, may be the logits themselves, or null), policyChosen / policyRejected (Float64Array B),
// chosenTokens / rejectedTokens (Int32Array B) and metrics (Float64Array 6: logits/chosen,
// logits/rejected, entropy, token accuracy, chosen tokens, rejected tokens).
struct Fused {
  unigap_logprobs_args lp{};
  unigap_dpo_args d{};
  std::vector<int64_t> offsets;
  void *grad_out = nullptr;
  unigap_napi::DpoFromLogitsOut out;
  unigap_dpo_logit_metrics m{};
};

std::shared_ptr<Fused> UnwrapFused(const Napi::CallbackInfo &info, const char *where) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsObject())
    Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": (call, args, out) objects expected");
  Napi::Object o = info[0].As<Napi::Object>();
  auto f = std::make_shared<Fused>();
  unigap_logprobs_args &a = f->lp;
  const int64_t dt = unigap_napi::GetInt(env, o.Get("dtype"), "dtype");
  if (dt != UNIGAP_DTYPE_F32 && dt != UNIGAP_DTYPE_BF16 && dt != UNIGAP_DTYPE_F16)
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE", std::string(where) + ": dtype must be f32, bf16 or f16");
  a.dtype = static_cast<unigap_dtype>(dt);
  a.n_tokens = unigap_napi::GetInt(env, o.Get("nTokens"), "nTokens");
  a.vocab = unigap_napi::GetInt(env, o.Get("vocab"), "vocab");
  a.n_seq = unigap_napi::GetInt(env, o.Get("nSeq"), "nSeq");
  if (a.n_tokens < 0 || a.vocab < 1 || a.n_seq < 2 || a.n_seq % 2 != 0)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": nTokens >= 0, vocab >= 1, nSeq = 2B >= 2");
  const size_t n = static_cast<size_t>(a.n_tokens), ns = static_cast<size_t>(a.n_seq);
  const size_t nv = n * static_cast<size_t>(a.vocab);
  if (n > 0 && nv / n != static_cast<size_t>(a.vocab))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": nTokens * vocab overflows");
  const napi_typedarray_type lt = a.dtype == UNIGAP_DTYPE_F32 ? napi_float32_array : napi_uint16_array;
  View lg = GetTyped(env, o.Get("logits"), lt, "logits");
  if (lg.length != nv) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": logits length is not nTokens * vocab");
  a.logits = lg.data;
  View lb = GetTyped(env, o.Get("labels"), napi_int32_array, "labels");
  if (lb.length != n) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": labels length is not nTokens");
  a.labels = static_cast<const int32_t *>(lb.data);
  a.mask = Field<const uint8_t>(env, o, "mask", napi_uint8_array, static_cast<int64_t>(n), false);
  a.ignore_index = static_cast<int32_t>(unigap_napi::GetInt(env, o.Get("ignoreIndex"), "ignoreIndex"));
  Napi::Value ov = o.Get("offsets");
  if (!ov.IsTypedArray()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": offsets must be a TypedArray");
  const bool big = ov.As<Napi::TypedArray>().TypedArrayType() == napi_bigint64_array;
  View w = GetTyped(env, ov, big ? napi_bigint64_array : napi_int32_array, "offsets");
  if (w.length != ns + 1) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": offsets length is not nSeq + 1");
  f->offsets.resize(ns + 1);
  for (size_t i = 0; i <= ns; i++) {
    f->offsets[i] = big ? static_cast<const int64_t *>(w.data)[i] : static_cast<const int32_t *>(w.data)[i];
    if ((i == 0 && f->offsets[i] != 0) || (i > 0 && f->offsets[i] < f->offsets[i - 1]) ||
        f->offsets[i] > a.n_tokens || (i == ns && f->offsets[i] != a.n_tokens))
      Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": offsets must rise from 0 to nTokens");
  }
  a.offsets = f->offsets.data();
  a.shift = o.Get("shift").ToBoolean() ? 1 : 0;
  a.temperature = static_cast<float>(unigap_napi::GetDouble(env, o.Get("temperature"), "temperature"));

  const int64_t B = a.n_seq / 2;
  unigap_napi::ReadDpoArgs(env, info[1].As<Napi::Object>(), &f->d, B, true, "dpo");
  Napi::Object out = info[2].As<Napi::Object>();
  f->grad_out = Field<void>(env, out, "gradOut", lt, static_cast<int64_t>(nv), false);
  f->out = unigap_napi::ReadDpoFromLogitsOut(env, out, B, "dpo");
  return f;
}

unigap_status ExecuteFused(Fused &f) {
  unigap_status s = unigap_dpo_from_logits(&f.lp, &f.d, f.grad_out, f.out.pc, f.out.pr, f.out.ct, f.out.rt, &f.m);
  if (s == UNIGAP_STATUS_OK) unigap_napi::WriteDpoMetrics(f.m, f.out.metrics);
  return s;
}

Napi::Value DpoFromLogits(const Napi::CallbackInfo &info) {
  auto f = UnwrapFused(info, "dpoFromLogits");
  unigap_napi::CheckStatus(info.Env(), ExecuteFused(*f), "dpoFromLogits");
  return info.Env().Undefined();
}

Napi::Value DpoFromLogitsAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto f = UnwrapFused(info, "dpoFromLogitsAsync");
  // Keep the three objects and every array they hold alive until the worker finishes.
  std::vector<Napi::Value> keep{info[0], info[1], info[2]};
  for (int k = 0; k < 3; k++) {
    Napi::Object o = info[k].As<Napi::Object>();
    Napi::Array names = o.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) keep.push_back(o.Get(names.Get(i)));
  }
  return unigap_napi::QueueWork(env, keep, [f]() { return ExecuteFused(*f); }, "dpoFromLogitsAsync");
}

}  // namespace

void unigap_napi_register_dpo(Napi::Env env, Napi::Object exports) {
  exports.Set("dpoLoss", Napi::Function::New(env, DpoLoss, "dpoLoss"));
  exports.Set("dpoFromLogits", Napi::Function::New(env, DpoFromLogits, "dpoFromLogits"));
  exports.Set("dpoFromLogitsAsync", Napi::Function::New(env, DpoFromLogitsAsync, "dpoFromLogitsAsync"));
}
