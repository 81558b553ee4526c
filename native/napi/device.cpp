// N-API binding for device memory (DeviceTensor plumbing in lib/device.ts): unwrap, call the core
// (unigap/cuda.h), wrap. No policy: the facade validates shapes, dtypes and byte counts first.
//   cudaStatus()                           { available, reason }
//   cudaAlloc(bytes, device)               handle (owned; freed by cudaFree or when collected)
//   cudaWrap(pointer: bigint, bytes, device)  handle (not owned: never freed, not accounted)
//   cudaFree(handle)                       frees an owned handle now (idempotent)
//   cudaUpload(handle, typedArray, byteOffset)    host -> device, synchronous
//   cudaDownload(handle, typedArray, byteOffset)  device -> host, synchronous
//   cudaPointer(handle)                    bigint device address
//   cudaLogprobsRun(mode, call) / cudaLogprobsRunAsync(mode, call)
//       the CUDA log-prob kernels; `call` is NativeLogprobsCall (lib/kernels/logprobs.ts) with every
//       array replaced by a device buffer handle (offsets: int64 on the device; inputLse as there);
//       runs on a fresh stream of the logits' device and returns (resolves) when that stream is done.
//   cudaDpoFromLogits(call, args, out) / cudaDpoFromLogitsAsync(...)
//       unigap_cuda_dpo_from_logits: `call` as above (inputs only), `args` and `out` exactly as the
//       CPU binding's dpoFromLogits (host typed arrays) except out.gradOut, a device handle or null.
//   cudaSimilarityRun(op, call) / cudaSimilarityRunAsync(op, call)
//       the CUDA similarity kernels (paired cosine, matrix, top-k, ranks) on device buffer handles.
// Owned allocations are reported to V8 with AdjustExternalMemory so the GC sees their size.
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "unigap/cuda.h"
#include "unigap/dpo.h"
#include "dpo_args.h"
#include "util.h"

namespace {

using unigap_napi::Throw;

struct DeviceBuffer {
  void *ptr = nullptr;
  size_t bytes = 0;
  int device = 0;
  bool owned = false;
  bool freed = false;
};

[[noreturn]] void ThrowStatus(Napi::Env env, unigap_status s, const std::string &where) {
  std::string msg = where + ": " + unigap_status_name(s);
  const char *why = unigap_cuda_last_error();
  if (why && *why) msg += " (" + std::string(why) + ")";
  throw unigap_napi::MakeError(env, s == UNIGAP_STATUS_INVALID_ARGUMENT ? 2 : 0, unigap_napi::StatusCode(s), msg);
}

void Release(Napi::Env env, DeviceBuffer *b, bool account) {
  if (!b->owned || b->freed) return;
  b->freed = true;
  if (unigap_cuda_set_device(b->device) == UNIGAP_STATUS_OK) unigap_cuda_free(b->ptr);
  b->ptr = nullptr;
  if (account) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(b->bytes));
}

void Finalize(Napi::Env env, DeviceBuffer *b) {
  Release(env, b, true);
  delete b;
}

DeviceBuffer *Handle(Napi::Env env, Napi::Value v, const char *where) {
  if (!v.IsExternal()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": not a device buffer handle");
  return v.As<Napi::External<DeviceBuffer>>().Data();
}

size_t GetSize(Napi::Env env, Napi::Value v, const char *name) {
  int64_t x = unigap_napi::GetInt(env, v, name);
  if (x < 0) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(name) + " must be >= 0");
  return static_cast<size_t>(x);
}

Napi::Value Status(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const bool ok = unigap_cuda_available() != 0;
  o.Set("available", ok);
  o.Set("reason", ok ? env.Null() : Napi::String::New(env, unigap_cuda_last_error()));
  return o;
}

Napi::Value Alloc(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const size_t bytes = GetSize(env, info[0], "bytes");
  const int device = static_cast<int>(GetSize(env, info[1], "device"));
  unigap_status s = unigap_cuda_set_device(device);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, "DeviceTensor: cuda device " + std::to_string(device));
  void *p = nullptr;
  s = unigap_cuda_alloc(bytes, &p);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, "DeviceTensor: allocating " + std::to_string(bytes) + " bytes");
  auto *b = new DeviceBuffer{p, bytes, device, true, false};
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  return Napi::External<DeviceBuffer>::New(env, b, Finalize);
}

Napi::Value Wrap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBigInt()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", "DeviceTensor.fromPointer: pointer must be a bigint");
  bool lossless = false;
  const uint64_t addr = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || addr == 0)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "DeviceTensor.fromPointer: pointer must be a non-zero 64-bit address");
  const size_t bytes = GetSize(env, info[1], "bytes");
  const int device = static_cast<int>(GetSize(env, info[2], "device"));
  void *p = reinterpret_cast<void *>(static_cast<uintptr_t>(addr));
  int is_dev = 0, dev = -1;
  unigap_status s = unigap_cuda_pointer_info(p, &is_dev, &dev);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, "DeviceTensor.fromPointer");
  if (!is_dev)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", "DeviceTensor.fromPointer: the address is not CUDA device memory");
  if (dev != device)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE",
          "DeviceTensor.fromPointer: the address lives on device " + std::to_string(dev) + ", not " + std::to_string(device));
  auto *b = new DeviceBuffer{p, bytes, device, false, false};
  return Napi::External<DeviceBuffer>::New(env, b, Finalize);
}

Napi::Value Free(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Release(env, Handle(env, info[0], "cudaFree"), true);
  return env.Undefined();
}

// Copies between a TypedArray's bytes and [byteOffset, byteOffset + its byteLength) of the buffer.
Napi::Value Copy(const Napi::CallbackInfo &info, bool upload) {
  Napi::Env env = info.Env();
  const char *where = upload ? "DeviceTensor.upload" : "DeviceTensor.download";
  DeviceBuffer *b = Handle(env, info[0], where);
  if (b->freed) Throw(env, 0, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": the tensor was disposed");
  if (!info[1].IsTypedArray()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": expected a TypedArray");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const size_t off = GetSize(env, info[2], "byteOffset");
  const size_t n = ta.ByteLength();
  if (off > b->bytes || n > b->bytes - off)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": copy of " + std::to_string(n) +
                                                   " bytes at " + std::to_string(off) + " exceeds the tensor's " +
                                                   std::to_string(b->bytes) + " bytes");
  if (n == 0) return env.Undefined();
  uint8_t *host = static_cast<uint8_t *>(ta.ArrayBuffer().Data());
  if (!host) Throw(env, 1, "ERR_UNIGAP_DETACHED_BUFFER", std::string(where) + ": detached ArrayBuffer");
  host += ta.ByteOffset();
  unigap_status s = unigap_cuda_set_device(b->device);
  if (s == UNIGAP_STATUS_OK) {
    uint8_t *dev = static_cast<uint8_t *>(b->ptr) + off;
    s = upload ? unigap_cuda_memcpy_h2d(dev, host, n, nullptr) : unigap_cuda_memcpy_d2h(host, dev, n, nullptr);
    if (s == UNIGAP_STATUS_OK && upload) s = unigap_cuda_stream_sync(nullptr);
  }
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, where);
  return env.Undefined();
}

Napi::Value Upload(const Napi::CallbackInfo &info) { return Copy(info, true); }
Napi::Value Download(const Napi::CallbackInfo &info) { return Copy(info, false); }

Napi::Value Pointer(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  DeviceBuffer *b = Handle(env, info[0], "cudaPointer");
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(b->freed ? nullptr : b->ptr)));
}


// ---------------------------------------------------------------- kernels on device buffers

struct CudaLogprobs {
  unigap_logprobs_args a{};
  unigap_logprobs_grad g{};
  int mode = 0;
  int device = 0;
};

// A device-buffer field: null/undefined -> nullptr (or an error when required); otherwise a live
// handle on the call's device holding at least `bytes` bytes.
void *Dev(Napi::Env env, Napi::Object o, const char *key, size_t bytes, bool required, int device, const char *where) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) {
    if (required && bytes > 0) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": " + key + " is required");
    return nullptr;
  }
  DeviceBuffer *b = Handle(env, v, key);
  if (b->freed) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": " + key + " was disposed");
  if (b->device != device)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": " + key + " is on device " +
                                                  std::to_string(b->device) + ", the call runs on device " + std::to_string(device));
  if (b->bytes < bytes)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": " + key + " holds " + std::to_string(b->bytes) +
                                                   " bytes, needs " + std::to_string(bytes));
  return b->ptr;
}

std::shared_ptr<CudaLogprobs> UnwrapLogprobs(Napi::Env env, Napi::Value modev, Napi::Value callv, const char *where,
                                             bool inputs_only) {
  auto c = std::make_shared<CudaLogprobs>();
  c->mode = static_cast<int>(unigap_napi::GetInt(env, modev, "mode"));
  if (c->mode < 0 || c->mode > 2) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": mode must be 0, 1 or 2");
  if (!callv.IsObject()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": call must be an object");
  Napi::Object o = callv.As<Napi::Object>();
  unigap_logprobs_args &a = c->a;
  const int64_t dt = unigap_napi::GetInt(env, o.Get("dtype"), "dtype");
  if (dt != UNIGAP_DTYPE_F32 && dt != UNIGAP_DTYPE_BF16 && dt != UNIGAP_DTYPE_F16)
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE", std::string(where) + ": dtype must be f32, bf16 or f16");
  a.dtype = static_cast<unigap_dtype>(dt);
  a.n_tokens = unigap_napi::GetInt(env, o.Get("nTokens"), "nTokens");
  a.vocab = unigap_napi::GetInt(env, o.Get("vocab"), "vocab");
  a.n_seq = unigap_napi::GetInt(env, o.Get("nSeq"), "nSeq");
  if (a.n_tokens < 0 || a.vocab < 1 || a.n_seq < 0 || (a.n_tokens > 0 && a.vocab > INT64_MAX / 4 / a.n_tokens))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": nTokens >= 0, vocab >= 1, nSeq >= 0, no overflow");
  const size_t n = static_cast<size_t>(a.n_tokens), ns = static_cast<size_t>(a.n_seq);
  const size_t es = a.dtype == UNIGAP_DTYPE_F32 ? 4 : 2, nvb = n * static_cast<size_t>(a.vocab) * es;
  {
    Napi::Value lv = o.Get("logits");
    c->device = Handle(env, lv, "logits")->device;
  }
  const int d = c->device;
  a.logits = Dev(env, o, "logits", nvb, true, d, where);
  a.labels = static_cast<const int32_t *>(Dev(env, o, "labels", n * 4, true, d, where));
  a.mask = static_cast<const uint8_t *>(Dev(env, o, "mask", n, false, d, where));
  a.ignore_index = static_cast<int32_t>(unigap_napi::GetInt(env, o.Get("ignoreIndex"), "ignoreIndex"));
  a.offsets = static_cast<const int64_t *>(Dev(env, o, "offsets", (ns + 1) * 8, true, d, where));
  a.shift = o.Get("shift").ToBoolean() ? 1 : 0;
  a.temperature = static_cast<float>(unigap_napi::GetDouble(env, o.Get("temperature"), "temperature"));
  if (inputs_only) return c;
  a.token_logp = static_cast<float *>(Dev(env, o, "tokenLogp", n * 4, false, d, where));
  a.token_entropy = static_cast<float *>(Dev(env, o, "tokenEntropy", n * 4, false, d, where));
  a.token_correct = static_cast<uint8_t *>(Dev(env, o, "tokenCorrect", n, false, d, where));
  a.token_lse = static_cast<float *>(Dev(env, o, "tokenLse", n * 4, false, d, where));
  a.seq_sum = static_cast<float *>(Dev(env, o, "seqSum", ns * 4, false, d, where));
  a.seq_count = static_cast<int32_t *>(Dev(env, o, "seqCount", ns * 4, false, d, where));
  a.seq_mean = static_cast<float *>(Dev(env, o, "seqMean", ns * 4, false, d, where));
  a.seq_logit_sum = static_cast<double *>(Dev(env, o, "seqLogitSum", ns * 8, false, d, where));
  if (c->mode != 0) {
    unigap_logprobs_grad &g = c->g;
    g.grad_seq = static_cast<const float *>(Dev(env, o, "gradSeq", ns * 4, false, d, where));
    g.grad_token = static_cast<const float *>(Dev(env, o, "gradToken", n * 4, false, d, where));
    g.token_lse = c->mode == 1 ? static_cast<const float *>(Dev(env, o, "inputLse", n * 4, false, d, where)) : nullptr;
    g.grad_out = Dev(env, o, "gradOut", nvb, true, d, where);
  }
  return c;
}

// Runs `f` on a fresh stream of `device` and waits for it (on the calling thread).
unigap_status OnStream(int device, const std::function<unigap_status(unigap_cuda_stream)> &f) {
  unigap_status s = unigap_cuda_set_device(device);
  if (s != UNIGAP_STATUS_OK) return s;
  unigap_cuda_stream st = nullptr;
  if ((s = unigap_cuda_stream_create(&st)) != UNIGAP_STATUS_OK) return s;
  s = f(st);
  const unigap_status sync = unigap_cuda_stream_sync(st);
  if (s == UNIGAP_STATUS_OK) s = sync;
  unigap_cuda_stream_destroy(st);
  return s;
}

unigap_status ExecLogprobs(const CudaLogprobs &c) {
  return OnStream(c.device, [&c](unigap_cuda_stream st) {
    switch (c.mode) {
      case 0: return unigap_cuda_logprobs_forward(&c.a, st);
      case 1: return unigap_cuda_logprobs_backward(&c.a, &c.g, st);
      default: return unigap_cuda_logprobs_forward_backward(&c.a, &c.g, st);
    }
  });
}

std::vector<Napi::Value> KeepAll(const Napi::CallbackInfo &info, size_t from) {
  std::vector<Napi::Value> keep;
  for (size_t k = from; k < info.Length(); k++) {
    keep.push_back(info[k]);
    if (!info[k].IsObject()) continue;
    Napi::Object o = info[k].As<Napi::Object>();
    Napi::Array names = o.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) keep.push_back(o.Get(names.Get(i)));
  }
  return keep;
}

Napi::Value LogprobsRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto c = UnwrapLogprobs(env, info[0], info[1], "cudaLogprobsRun", false);
  unigap_status s = ExecLogprobs(*c);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, "cudaLogprobsRun");
  return env.Undefined();
}

Napi::Value LogprobsRunAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto c = UnwrapLogprobs(env, info[0], info[1], "cudaLogprobsRunAsync", false);
  return unigap_napi::QueueWork(env, KeepAll(info, 1), [c]() { return ExecLogprobs(*c); }, "cudaLogprobsRunAsync");
}

struct CudaDpo {
  std::shared_ptr<CudaLogprobs> lp;
  unigap_dpo_args d{};
  void *grad_out = nullptr;
  unigap_napi::DpoFromLogitsOut out;
};

std::shared_ptr<CudaDpo> UnwrapDpo(const Napi::CallbackInfo &info, const char *where) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsObject())
    Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": (call, args, out) objects expected");
  auto f = std::make_shared<CudaDpo>();
  f->lp = UnwrapLogprobs(env, Napi::Number::New(env, 0), info[0], where, true);
  const int64_t B = f->lp->a.n_seq / 2;
  if (B < 1 || f->lp->a.n_seq != 2 * B)
    Throw(env, 2, "ERR_UNIGAP_SHAPE_MISMATCH", std::string(where) + ": nSeq must be 2B >= 2");
  // The options, references and pair outputs as the CPU binding reads them (dpo_args.h).
  unigap_napi::ReadDpoArgs(env, info[1].As<Napi::Object>(), &f->d, B, true, where);
  Napi::Object out = info[2].As<Napi::Object>();
  const unigap_logprobs_args &lp = f->lp->a;
  const size_t nvb = static_cast<size_t>(lp.n_tokens) * static_cast<size_t>(lp.vocab) * (lp.dtype == UNIGAP_DTYPE_F32 ? 4 : 2);
  f->grad_out = Dev(env, out, "gradOut", nvb, false, f->lp->device, where);
  f->out = unigap_napi::ReadDpoFromLogitsOut(env, out, B, where);
  return f;
}

unigap_status ExecDpo(CudaDpo &f) {
  unigap_dpo_logit_metrics m{};
  unigap_status s = OnStream(f.lp->device, [&](unigap_cuda_stream st) {
    return unigap_cuda_dpo_from_logits(&f.lp->a, &f.d, f.grad_out, f.out.pc, f.out.pr, f.out.ct, f.out.rt, &m, st);
  });
  if (s == UNIGAP_STATUS_OK) unigap_napi::WriteDpoMetrics(m, f.out.metrics);
  return s;
}

Napi::Value DpoFromLogits(const Napi::CallbackInfo &info) {
  auto f = UnwrapDpo(info, "cudaDpoFromLogits");
  unigap_status s = ExecDpo(*f);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(info.Env(), s, "cudaDpoFromLogits");
  return info.Env().Undefined();
}

Napi::Value DpoFromLogitsAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto f = UnwrapDpo(info, "cudaDpoFromLogitsAsync");
  return unigap_napi::QueueWork(env, KeepAll(info, 0), [f]() { return ExecDpo(*f); }, "cudaDpoFromLogitsAsync");
}

// ---------------------------------------------------------------- similarity on device buffers
// cudaSimilarityRun(op, call) / cudaSimilarityRunAsync(op, call): the CUDA similarity kernels
// (unigap_cuda_*, cuda.h) on device buffers; op 0 paired cosine, 1 matrix, 2 top-k, 3 ranks.
// call: { a, aDtype, b, bDtype, n, m, d, normalize, scale, bias, k, flags, out, indices, scores, ranks }
// (handles; dtype codes of unigap_dtype; m is ignored for ops 0 and 3, where b has n rows). Outputs:
// op 0 out (n f32), op 1 out (n m f32), op 2 indices (n k i32) and scores (n k f32), op 3 ranks (n f64).
// Runs on a fresh stream of a's device and returns (resolves) when it is done.

struct CudaSim {
  int op = 0, device = 0, normalize = 1, flags = 0;
  const void *a = nullptr, *b = nullptr;
  unigap_dtype da = UNIGAP_DTYPE_F32, db = UNIGAP_DTYPE_F32;
  int64_t n = 0, m = 0, d = 0, k = 0;
  float scale = 1.f, bias = 0.f;
  float *out = nullptr, *scores = nullptr;
  int32_t *indices = nullptr;
  double *ranks = nullptr;
};

unigap_dtype SimDtype(Napi::Env env, Napi::Value v, const char *name, const char *where) {
  const int64_t dt = unigap_napi::GetInt(env, v, name);
  if (dt == UNIGAP_DTYPE_F64)
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE",
          std::string(where) + ": " + name + " f64 is not supported on the GPU (UNSUPPORTED_DTYPE)");
  if (dt != UNIGAP_DTYPE_F32 && dt != UNIGAP_DTYPE_BF16 && dt != UNIGAP_DTYPE_F16)
    Throw(env, 1, "ERR_UNIGAP_INVALID_DTYPE", std::string(where) + ": " + name + " must be f32, bf16 or f16");
  return static_cast<unigap_dtype>(dt);
}

// Byte count of rows x cols elements of `es` bytes, or a RangeError when it does not fit size_t.
size_t SimBytes(Napi::Env env, int64_t rows, int64_t cols, size_t es, const char *where) {
  if (rows < 0 || cols < 0 || (cols > 0 && static_cast<uint64_t>(rows) > (UINT64_MAX / es) / static_cast<uint64_t>(cols)))
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": sizes overflow");
  return static_cast<size_t>(rows) * static_cast<size_t>(cols) * es;
}

std::shared_ptr<CudaSim> UnwrapSim(Napi::Env env, Napi::Value opv, Napi::Value callv, const char *where) {
  auto c = std::make_shared<CudaSim>();
  c->op = static_cast<int>(unigap_napi::GetInt(env, opv, "op"));
  if (c->op < 0 || c->op > 3) Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": op must be 0..3");
  if (!callv.IsObject()) Throw(env, 1, "ERR_UNIGAP_INVALID_TYPE", std::string(where) + ": call must be an object");
  Napi::Object o = callv.As<Napi::Object>();
  c->da = SimDtype(env, o.Get("aDtype"), "aDtype", where);
  c->db = SimDtype(env, o.Get("bDtype"), "bDtype", where);
  c->n = unigap_napi::GetInt(env, o.Get("n"), "n");
  c->d = unigap_napi::GetInt(env, o.Get("d"), "d");
  c->m = (c->op == 0 || c->op == 3) ? c->n : unigap_napi::GetInt(env, o.Get("m"), "m");
  if (c->n < 0 || c->m < 0 || c->d < 1)
    Throw(env, 2, "ERR_UNIGAP_INVALID_VALUE", std::string(where) + ": n >= 0, m >= 0, d >= 1");
  c->normalize = o.Get("normalize").ToBoolean() ? 1 : 0;
  c->flags = static_cast<int>(unigap_napi::GetInt(env, o.Get("flags"), "flags"));
  if (c->op == 1) {
    c->scale = static_cast<float>(unigap_napi::GetDouble(env, o.Get("scale"), "scale"));
    c->bias = static_cast<float>(unigap_napi::GetDouble(env, o.Get("bias"), "bias"));
  }
  if (c->op == 2) {
    c->k = unigap_napi::GetInt(env, o.Get("k"), "k");
    if (c->k < 1 || c->k > c->m)
      Throw(env, 2, "ERR_UNIGAP_OUT_OF_RANGE", std::string(where) + ": k must be in [1, m]");
  }
  c->device = Handle(env, o.Get("a"), "a")->device;
  const int dv = c->device;
  const size_t ea = c->da == UNIGAP_DTYPE_F32 ? 4 : 2, eb = c->db == UNIGAP_DTYPE_F32 ? 4 : 2;
  c->a = Dev(env, o, "a", SimBytes(env, c->n, c->d, ea, where), true, dv, where);
  c->b = Dev(env, o, "b", SimBytes(env, c->m, c->d, eb, where), true, dv, where);
  // A required output of rows x cols elements of es bytes.
  auto out = [&](const char *key, int64_t rows, int64_t cols, size_t es) {
    return Dev(env, o, key, SimBytes(env, rows, cols, es, where), true, dv, where);
  };
  switch (c->op) {
    case 0: c->out = static_cast<float *>(out("out", c->n, 1, 4)); break;
    case 1: c->out = static_cast<float *>(out("out", c->n, c->m, 4)); break;
    case 2:
      c->indices = static_cast<int32_t *>(out("indices", c->n, c->k, 4));
      c->scores = static_cast<float *>(out("scores", c->n, c->k, 4));
      break;
    default: c->ranks = static_cast<double *>(out("ranks", c->n, 1, 8)); break;
  }
  return c;
}

unigap_status ExecSim(const CudaSim &c) {
  return OnStream(c.device, [&c](unigap_cuda_stream st) {
    switch (c.op) {
      case 0: return unigap_cuda_paired_cosine(c.a, c.da, c.b, c.db, c.n, c.d, c.out, st);
      case 1:
        return unigap_cuda_similarity_matrix(c.a, c.da, c.n, c.b, c.db, c.m, c.d, c.normalize, c.scale, c.bias, c.out,
                                             c.flags, st);
      case 2:
        return unigap_cuda_topk_similarity(c.a, c.da, c.n, c.b, c.db, c.m, c.d, c.k, c.normalize, c.indices, c.scores,
                                           c.flags, st);
      default: return unigap_cuda_retrieval_ranks(c.a, c.da, c.b, c.db, c.n, c.d, c.normalize, c.ranks, c.flags, st);
    }
  });
}

Napi::Value SimilarityRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto c = UnwrapSim(env, info[0], info[1], "cudaSimilarityRun");
  unigap_status s = ExecSim(*c);
  if (s != UNIGAP_STATUS_OK) ThrowStatus(env, s, "cudaSimilarityRun");
  return env.Undefined();
}

Napi::Value SimilarityRunAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto c = UnwrapSim(env, info[0], info[1], "cudaSimilarityRunAsync");
  return unigap_napi::QueueWork(env, KeepAll(info, 1), [c]() { return ExecSim(*c); }, "cudaSimilarityRunAsync");
}

}  // namespace

void unigap_napi_register_device(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStatus", Napi::Function::New(env, Status, "cudaStatus"));
  exports.Set("cudaAlloc", Napi::Function::New(env, Alloc, "cudaAlloc"));
  exports.Set("cudaWrap", Napi::Function::New(env, Wrap, "cudaWrap"));
  exports.Set("cudaFree", Napi::Function::New(env, Free, "cudaFree"));
  exports.Set("cudaUpload", Napi::Function::New(env, Upload, "cudaUpload"));
  exports.Set("cudaDownload", Napi::Function::New(env, Download, "cudaDownload"));
  exports.Set("cudaPointer", Napi::Function::New(env, Pointer, "cudaPointer"));
  exports.Set("cudaLogprobsRun", Napi::Function::New(env, LogprobsRun, "cudaLogprobsRun"));
  exports.Set("cudaLogprobsRunAsync", Napi::Function::New(env, LogprobsRunAsync, "cudaLogprobsRunAsync"));
  exports.Set("cudaDpoFromLogits", Napi::Function::New(env, DpoFromLogits, "cudaDpoFromLogits"));
  exports.Set("cudaDpoFromLogitsAsync", Napi::Function::New(env, DpoFromLogitsAsync, "cudaDpoFromLogitsAsync"));
  exports.Set("cudaSimilarityRun", Napi::Function::New(env, SimilarityRun, "cudaSimilarityRun"));
  exports.Set("cudaSimilarityRunAsync", Napi::Function::New(env, SimilarityRunAsync, "cudaSimilarityRunAsync"));
}
