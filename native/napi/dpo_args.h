// The DPO arguments as both DPO bindings read them (native/napi/dpo.cpp for host logits,
// native/napi/device.cpp for device logits): the options, references and pair outputs of `args`, and the
// per-sequence outputs and metrics of `out` of dpoFromLogits. Host typed arrays only; no math.
#ifndef UNIGAP_NAPI_DPO_ARGS_H
#define UNIGAP_NAPI_DPO_ARGS_H

#include <napi.h>

#include <string>

#include "unigap/dpo.h"
#include "util.h"

namespace unigap_napi {

// Optional typed field: undefined / null -> nullptr (a TypeError when required), otherwise the right
// TypedArray type with `len` elements (len < 0: any length). `where` prefixes the messages.
template <typename T>
T *DpoField(Napi::Env env, Napi::Object o, const char *name, napi_typedarray_type type, int64_t len, bool required,
            const char *where) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": " + name + " is required");
    return nullptr;
  }
  View view = GetTyped(env, v, type, name);
  if (len >= 0 && static_cast<int64_t>(view.length) != len)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": " + name + " has the wrong length");
  return static_cast<T *>(view.data);
}

// Fills `a` from the args object (lib/kernels/dpo.ts builds it). fused = true: the policy inputs and
// token counts are not read (they come from the logits).
inline void ReadDpoArgs(Napi::Env env, Napi::Object o, unigap_dpo_args *a, int64_t B, bool fused, const char *where) {
  *a = unigap_dpo_args{};
  a->n_pairs = B;
  if (B < 1) Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": at least one pair is required");
  if (!fused) {
    a->policy_chosen = DpoField<const double>(env, o, "policyChosen", napi_float64_array, B, true, where);
    a->policy_rejected = DpoField<const double>(env, o, "policyRejected", napi_float64_array, B, true, where);
    a->chosen_tokens = DpoField<const int32_t>(env, o, "chosenTokens", napi_int32_array, B, false, where);
    a->rejected_tokens = DpoField<const int32_t>(env, o, "rejectedTokens", napi_int32_array, B, false, where);
  }
  a->reference_chosen = DpoField<const double>(env, o, "referenceChosen", napi_float64_array, B, false, where);
  a->reference_rejected = DpoField<const double>(env, o, "referenceRejected", napi_float64_array, B, false, where);
  a->weights = DpoField<const double>(env, o, "weights", napi_float64_array, B, false, where);
  View types = GetTyped(env, o.Get("lossTypes"), napi_int32_array, "lossTypes");
  if (types.length < 1 || types.length > UNIGAP_DPO_MAX_LOSSES)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": lossTypes must list 1..16 loss types");
  a->n_losses = static_cast<int32_t>(types.length);
  a->loss_types = static_cast<const int32_t *>(types.data);
  a->loss_weights = DpoField<const double>(env, o, "lossWeights", napi_float64_array, a->n_losses, false, where);
  a->beta = GetDouble(env, o.Get("beta"), "beta");
  a->label_smoothing = GetDouble(env, o.Get("labelSmoothing"), "labelSmoothing");
  a->discopop_tau = GetDouble(env, o.Get("discopopTau"), "discopopTau");
  a->f_divergence = static_cast<int32_t>(GetInt(env, o.Get("fDivergence"), "fDivergence"));
  a->alpha = GetDouble(env, o.Get("alpha"), "alpha");
  a->bco_delta = GetDouble(env, o.Get("bcoDelta"), "bcoDelta");
  // outputs
  a->losses = DpoField<double>(env, o, "losses", napi_float64_array, B, true, where);
  a->chosen_rewards = DpoField<double>(env, o, "chosenRewards", napi_float64_array, B, true, where);
  a->rejected_rewards = DpoField<double>(env, o, "rejectedRewards", napi_float64_array, B, true, where);
  a->margins = DpoField<double>(env, o, "margins", napi_float64_array, B, true, where);
  a->grad_chosen = DpoField<double>(env, o, "gradChosen", napi_float64_array, B, true, where);
  a->grad_rejected = DpoField<double>(env, o, "gradRejected", napi_float64_array, B, true, where);
  double *scalars = DpoField<double>(env, o, "scalars", napi_float64_array, 2, true, where);  // [loss, accuracy]
  a->loss = scalars;
  a->reward_accuracy = scalars + 1;
}

// The host outputs of dpoFromLogits' `out` object: policyChosen / policyRejected (Float64Array B),
// chosenTokens / rejectedTokens (Int32Array B), metrics (Float64Array 6). gradOut is the caller's
// (a host array or a device buffer).
struct DpoFromLogitsOut {
  double *pc = nullptr, *pr = nullptr, *metrics = nullptr;
  int32_t *ct = nullptr, *rt = nullptr;
};

inline DpoFromLogitsOut ReadDpoFromLogitsOut(Napi::Env env, Napi::Object out, int64_t B, const char *where) {
  DpoFromLogitsOut r;
  r.pc = DpoField<double>(env, out, "policyChosen", napi_float64_array, B, true, where);
  r.pr = DpoField<double>(env, out, "policyRejected", napi_float64_array, B, true, where);
  r.ct = DpoField<int32_t>(env, out, "chosenTokens", napi_int32_array, B, true, where);
  r.rt = DpoField<int32_t>(env, out, "rejectedTokens", napi_int32_array, B, true, where);
  r.metrics = DpoField<double>(env, out, "metrics", napi_float64_array, 6, true, where);
  return r;
}

// metrics: logits/chosen, logits/rejected, entropy, token accuracy, chosen tokens, rejected tokens.
inline void WriteDpoMetrics(const unigap_dpo_logit_metrics &m, double *out) {
  out[0] = m.logits_chosen;
  out[1] = m.logits_rejected;
  out[2] = m.entropy;
  out[3] = m.token_accuracy;
  out[4] = static_cast<double>(m.chosen_token_total);
  out[5] = static_cast<double>(m.rejected_token_total);
}

}  // namespace unigap_napi

#endif
