// N-API binding for the dpo family: unwrap, call the core, wrap. No math (design rule 4). The facade
// (lib/kernels/dpo.ts) validates and allocates every output; this layer re-checks types and lengths.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "unigap/dpo.h"
#include "unigap/logprobs.h"
#include "util.h"

namespace {

using unigap_napi::GetTyped;
using unigap_napi::Throw;
using unigap_napi::View;

// Optional typed field: undefined / null -> nullptr, otherwise the right type with `len` elements.
template <typename T>
T *Field(Napi::Env env, Napi::Object o, const char *name, napi_typedarray_type type, int64_t len, bool required) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string("dpo: ") + name + " is required");
    return nullptr;
  }
  View view = GetTyped(env, v, type, name);
  if (len >= 0 && static_cast<int64_t>(view.length) != len)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string("dpo: ") + name + " has the wrong length");
  return static_cast<T *>(view.data);
}

double Num(Napi::Env env, Napi::Object o, const char *name) {
  return unigap_napi::GetDouble(env, o.Get(name), name);
}

// Fill `a` from the args object. With fused = true the policy inputs and counts are not read.
void ReadDpoArgs(Napi::Env env, Napi::Object o, unigap_dpo_args *a, int64_t B, bool fused) {
  *a = unigap_dpo_args{};
  a->n_pairs = B;
  if (B < 1) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", "dpo: at least one pair is required");
  if (!fused) {
    a->policy_chosen = Field<const double>(env, o, "policyChosen", napi_float64_array, B, true);
    a->policy_rejected = Field<const double>(env, o, "policyRejected", napi_float64_array, B, true);
    a->chosen_tokens = Field<const int32_t>(env, o, "chosenTokens", napi_int32_array, B, false);
    a->rejected_tokens = Field<const int32_t>(env, o, "rejectedTokens", napi_int32_array, B, false);
  }
  a->reference_chosen = Field<const double>(env, o, "referenceChosen", napi_float64_array, B, false);
  a->reference_rejected = Field<const double>(env, o, "referenceRejected", napi_float64_array, B, false);
  a->weights = Field<const double>(env, o, "weights", napi_float64_array, B, false);
  Napi::Value lt = o.Get("lossTypes");
  View types = GetTyped(env, lt, napi_int32_array, "lossTypes");
  if (types.length < 1 || types.length > UNIGAP_DPO_MAX_LOSSES)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "dpo: lossTypes must list 1..16 loss types");
  a->n_losses = static_cast<int32_t>(types.length);
  a->loss_types = static_cast<const int32_t *>(types.data);
  a->loss_weights = Field<const double>(env, o, "lossWeights", napi_float64_array, a->n_losses, false);
  a->beta = Num(env, o, "beta");
  a->label_smoothing = Num(env, o, "labelSmoothing");
  a->discopop_tau = Num(env, o, "discopopTau");
  a->f_divergence = static_cast<int32_t>(unigap_napi::GetInt(env, o.Get("fDivergence"), "fDivergence"));
  a->alpha = Num(env, o, "alpha");
  a->bco_delta = Num(env, o, "bcoDelta");
  // outputs
  a->losses = Field<double>(env, o, "losses", napi_float64_array, B, true);
  a->chosen_rewards = Field<double>(env, o, "chosenRewards", napi_float64_array, B, true);
  a->rejected_rewards = Field<double>(env, o, "rejectedRewards", napi_float64_array, B, true);
  a->margins = Field<double>(env, o, "margins", napi_float64_array, B, true);
  a->grad_chosen = Field<double>(env, o, "gradChosen", napi_float64_array, B, true);
  a->grad_rejected = Field<double>(env, o, "gradRejected", napi_float64_array, B, true);
  double *scalars = Field<double>(env, o, "scalars", napi_float64_array, 2, true);  // [loss, accuracy]
  a->loss = scalars;
  a->reward_accuracy = scalars + 1;
}

// dpoLoss(args): fills the output arrays of `args` in place; returns undefined.
Napi::Value DpoLoss(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", "dpoLoss: args object");
  Napi::Object o = info[0].As<Napi::Object>();
  View pc = GetTyped(env, o.Get("policyChosen"), napi_float64_array, "policyChosen");
  unigap_dpo_args a;
  ReadDpoArgs(env, o, &a, static_cast<int64_t>(pc.length), false);
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
  double *pc = nullptr, *pr = nullptr, *metrics_out = nullptr;
  int32_t *ct = nullptr, *rt = nullptr;
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
  ReadDpoArgs(env, info[1].As<Napi::Object>(), &f->d, B, true);
  Napi::Object out = info[2].As<Napi::Object>();
  f->grad_out = Field<void>(env, out, "gradOut", lt, static_cast<int64_t>(nv), false);
  f->pc = Field<double>(env, out, "policyChosen", napi_float64_array, B, true);
  f->pr = Field<double>(env, out, "policyRejected", napi_float64_array, B, true);
  f->ct = Field<int32_t>(env, out, "chosenTokens", napi_int32_array, B, true);
  f->rt = Field<int32_t>(env, out, "rejectedTokens", napi_int32_array, B, true);
  f->metrics_out = Field<double>(env, out, "metrics", napi_float64_array, 6, true);
  return f;
}

unigap_status ExecuteFused(Fused &f) {
  unigap_status s = unigap_dpo_from_logits(&f.lp, &f.d, f.grad_out, f.pc, f.pr, f.ct, f.rt, &f.m);
  if (s == UNIGAP_STATUS_OK) {
    f.metrics_out[0] = f.m.logits_chosen;
    f.metrics_out[1] = f.m.logits_rejected;
    f.metrics_out[2] = f.m.entropy;
    f.metrics_out[3] = f.m.token_accuracy;
    f.metrics_out[4] = static_cast<double>(f.m.chosen_token_total);
    f.metrics_out[5] = static_cast<double>(f.m.rejected_token_total);
  }
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
