// N-API binding for the dpo family: unwrap, call the core, wrap. No math (design rule 4). The facade
// (lib/kernels/dpo.ts) validates and allocates every output; this layer re-checks types and lengths.
#include <napi.h>

#include <string>

#include "unigap/dpo.h"
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

}  // namespace

void unigap_napi_register_dpo(Napi::Env env, Napi::Object exports) {
  exports.Set("dpoLoss", Napi::Function::New(env, DpoLoss, "dpoLoss"));
}
