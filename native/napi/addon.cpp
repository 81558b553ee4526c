// Module entry: per-environment instance data, the backend report, and each family's registration.
#include <napi.h>

#include "unigap/common.h"
#include "util.h"

namespace {

struct AddonData {
  int loads = 0;  // placeholder for per-environment state (constructors, caches) kept per env
};

Napi::Value BackendInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", unigap_version());
  unigap_cpu_features f;
  unigap_cpu_features_get(&f);
  Napi::Object feat = Napi::Object::New(env);
  feat.Set("sse42", !!f.sse42);
  feat.Set("avx", !!f.avx);
  feat.Set("avx2", !!f.avx2);
  feat.Set("fma", !!f.fma);
  feat.Set("f16c", !!f.f16c);
  feat.Set("avx512f", !!f.avx512f);
  feat.Set("avx512bw", !!f.avx512bw);
  feat.Set("avx512vl", !!f.avx512vl);
  feat.Set("avx512dq", !!f.avx512dq);
  feat.Set("avx512bf16", !!f.avx512bf16);
  feat.Set("avx512fp16", !!f.avx512fp16);
  feat.Set("osYmm", !!f.os_ymm);
  feat.Set("osZmm", !!f.os_zmm);
  o.Set("features", feat);
  o.Set("isa", unigap_isa_name(unigap_isa_active()));
  o.Set("bestIsa", unigap_isa_name(unigap_isa_best()));
  char msg[256];
  if (unigap_isa_env_error(msg, sizeof msg))
    o.Set("isaError", msg);
  else
    o.Set("isaError", env.Null());
  o.Set("threads", unigap_threads());
  unigap_cuda_info ci;
  unigap_cuda_info_get(&ci);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", !!ci.compiled);
  cuda.Set("runtimeVersion", ci.runtime_version);
  cuda.Set("driverVersion", ci.driver_version);
  cuda.Set("deviceCount", ci.device_count);
  unigap_cuda_device devs[16];
  int n = ci.device_count > 0 ? unigap_cuda_devices(devs, 16) : 0;
  Napi::Array arr = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", devs[i].name);
    d.Set("computeCapability", std::to_string(devs[i].major) + "." + std::to_string(devs[i].minor));
    d.Set("totalMemory", static_cast<double>(devs[i].total_mem));
    arr.Set(i, d);
  }
  cuda.Set("devices", arr);
  cuda.Set("reason", ci.device_count > 0 ? env.Null() : Napi::String::New(env, ci.reason));
  o.Set("cuda", cuda);
  return o;
}

Napi::Value SetIsa(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    unigap_napi::Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", "setIsa: tier must be a string");
  std::string name = info[0].As<Napi::String>();
  int t = unigap_isa_parse(name.c_str());
  if (t < 0) unigap_napi::Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "setIsa: unknown tier '" + name + "'");
  unigap_status s = unigap_isa_set(static_cast<unigap_isa>(t));
  if (s != UNIGAP_STATUS_OK)
    unigap_napi::Throw(env, 0, "ERR_UNIGAP_UNSUPPORTED_ISA",
                       "setIsa: this CPU lacks '" + name + "' (best: " + unigap_isa_name(unigap_isa_best()) + ")");
  return Napi::String::New(env, unigap_isa_name(unigap_isa_active()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  data->loads++;
  env.SetInstanceData<AddonData>(data);  // freed by Node when this environment tears down
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  unigap_napi_register_logprobs(env, exports);
  unigap_napi_register_dpo(env, exports);
  unigap_napi_register_similarity(env, exports);
  unigap_napi_register_probes(env, exports);
  unigap_napi_register_device(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(unigap, Init)
