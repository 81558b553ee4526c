// Shared N-API plumbing: typed-array unwrapping with re-checks, errors with codes, a generic
// AsyncWorker that keeps its inputs alive. No math here (design rule 4).
#ifndef UNIGAP_NAPI_UTIL_H
#define UNIGAP_NAPI_UTIL_H

#include <napi.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "unigap/common.h"

namespace unigap_napi {

// Error with a `code` property. kind: 0 Error, 1 TypeError, 2 RangeError.
inline Napi::Error MakeError(Napi::Env env, int kind, const std::string &code, const std::string &msg) {
  Napi::Error e = kind == 1 ? Napi::TypeError::New(env, msg)
                            : (kind == 2 ? Napi::RangeError::New(env, msg) : Napi::Error::New(env, msg));
  e.Set("code", Napi::String::New(env, code));
  return e;
}

[[noreturn]] inline void Throw(Napi::Env env, int kind, const std::string &code, const std::string &msg) {
  throw MakeError(env, kind, code, msg);
}

inline std::string StatusCode(unigap_status s) {
  switch (s) {
    case UNIGAP_STATUS_INVALID_ARGUMENT: return "ERR_UNIGAP_INVALID_VALUE";
    case UNIGAP_STATUS_SHAPE_MISMATCH: return "ERR_UNIGAP_SHAPE_MISMATCH";
    case UNIGAP_STATUS_OUT_OF_RANGE: return "ERR_UNIGAP_OUT_OF_RANGE";
    case UNIGAP_STATUS_UNSUPPORTED_DTYPE: return "ERR_UNIGAP_INVALID_DTYPE";
    case UNIGAP_STATUS_UNSUPPORTED_ISA: return "ERR_UNIGAP_UNSUPPORTED_ISA";
    case UNIGAP_STATUS_OUT_OF_MEMORY: return "ERR_UNIGAP_OUT_OF_MEMORY";
    case UNIGAP_STATUS_DEVICE_UNAVAILABLE: return "ERR_UNIGAP_DEVICE_UNAVAILABLE";
    case UNIGAP_STATUS_DEVICE_ERROR: return "ERR_UNIGAP_DEVICE";
    default: return "ERR_UNIGAP_NATIVE";
  }
}

inline Napi::Error StatusError(Napi::Env env, unigap_status s, const std::string &where) {
  std::string msg = where + ": " + unigap_status_name(s);
  if (s == UNIGAP_STATUS_UNSUPPORTED_ISA) {
    char buf[256];
    if (unigap_isa_env_error(buf, sizeof buf)) msg += " (" + std::string(buf) + ")";
  }
  int kind = (s == UNIGAP_STATUS_SHAPE_MISMATCH || s == UNIGAP_STATUS_OUT_OF_RANGE ||
              s == UNIGAP_STATUS_INVALID_ARGUMENT)
                 ? 2
                 : (s == UNIGAP_STATUS_UNSUPPORTED_DTYPE ? 1 : 0);
  return MakeError(env, kind, StatusCode(s), msg);
}

inline void CheckStatus(Napi::Env env, unigap_status s, const char *where) {
  if (s != UNIGAP_STATUS_OK) throw StatusError(env, s, where);
}

struct View {
  void *data = nullptr;
  size_t length = 0;  // elements
  napi_typedarray_type type = napi_uint8_array;
};

// Unwrap a TypedArray of the given element type. Re-checks what the facade already validated.
inline View GetTyped(Napi::Env env, Napi::Value v, napi_typedarray_type want, const char *name) {
  if (!v.IsTypedArray()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + " must be a TypedArray");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != want)
    Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + " has the wrong TypedArray type");
  View out;
  out.type = want;
  out.length = ta.ElementLength();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  uint8_t *base = static_cast<uint8_t *>(ab.Data());
  if (base == nullptr && out.length > 0)
    Throw(env, 1, "ERR_UNIGAP_DETACHED_BUFFER", std::string(name) + " is backed by a detached ArrayBuffer");
  out.data = base ? base + ta.ByteOffset() : nullptr;
  return out;
}

inline int64_t GetInt(Napi::Env env, Napi::Value v, const char *name) {
  if (!v.IsNumber()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d)))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(name) + " must be an integer");
  return static_cast<int64_t>(d);
}

inline double GetDouble(Napi::Env env, Napi::Value v, const char *name) {
  if (!v.IsNumber()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// Runs `execute` on the libuv pool, then `done` on the JS thread; holds references to every value in
// `keep` (inputs and outputs) until then, so JS may drop them while the call is in flight.
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::vector<Napi::Value> keep, std::function<unigap_status()> execute,
         std::function<Napi::Value(Napi::Env)> done, std::string where)
      : Napi::AsyncWorker(env, "unigap"),
        deferred_(Napi::Promise::Deferred::New(env)),
        execute_(std::move(execute)),
        done_(std::move(done)),
        where_(std::move(where)) {
    for (auto &v : keep)
      if (v.IsObject()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = execute_(); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status_ != UNIGAP_STATUS_OK) {
      deferred_.Reject(StatusError(env, status_, where_).Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  std::function<unigap_status()> execute_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::string where_;
  unigap_status status_ = UNIGAP_STATUS_OK;
};

// Queue `execute` on the libuv pool (inputs in `keep` stay alive) and return a promise that resolves
// to undefined, or rejects with the status error, when it is done.
inline Napi::Promise QueueWork(Napi::Env env, std::vector<Napi::Value> keep, std::function<unigap_status()> execute,
                               std::string where) {
  auto *w = new Worker(env, std::move(keep), std::move(execute), [](Napi::Env e) { return e.Undefined(); },
                       std::move(where));
  Napi::Promise p = w->Promise();
  w->Queue();  // the worker deletes itself after OnOK / OnError
  return p;
}

}  // namespace unigap_napi

// Each family registers its functions on `exports` (native/napi/<family>.cpp).
void unigap_napi_register_logprobs(Napi::Env env, Napi::Object exports);
void unigap_napi_register_dpo(Napi::Env env, Napi::Object exports);
void unigap_napi_register_similarity(Napi::Env env, Napi::Object exports);
void unigap_napi_register_probes(Napi::Env env, Napi::Object exports);
void unigap_napi_register_device(Napi::Env env, Napi::Object exports);

#endif
