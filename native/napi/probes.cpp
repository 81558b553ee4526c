// Machine-limit probes for the benchmarks (bandwidth, FMA peak).
#include <napi.h>

#include "unigap/probes.h"
#include "util.h"

namespace {
Napi::Value ReadBandwidth(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t bytes = unigap_napi::GetInt(env, info[0], "bytes");
  int64_t reps = unigap_napi::GetInt(env, info[1], "reps");
  if (bytes < 4096 || bytes > (int64_t(1) << 36) || reps < 1 || reps > 1000)
    unigap_napi::Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "probeReadBandwidth: bytes in [4096, 2^36], reps in [1, 1000]");
  return Napi::Number::New(env, unigap_probe_read_bandwidth(bytes, static_cast<int>(reps)));
}
Napi::Value FmaPeak(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int64_t iters = unigap_napi::GetInt(env, info[0], "iters");
  int64_t reps = unigap_napi::GetInt(env, info[1], "reps");
  if (iters < 1 || reps < 1 || reps > 1000)
    unigap_napi::Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "probeFmaPeak: iters >= 1, reps in [1, 1000]");
  return Napi::Number::New(env, unigap_probe_fma_peak(iters, static_cast<int>(reps)));
}
}  // namespace

void unigap_napi_register_probes(Napi::Env env, Napi::Object exports) {
  exports.Set("probeReadBandwidth", Napi::Function::New(env, ReadBandwidth, "probeReadBandwidth"));
  exports.Set("probeFmaPeak", Napi::Function::New(env, FmaPeak, "probeFmaPeak"));
}
