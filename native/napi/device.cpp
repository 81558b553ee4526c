// N-API binding for device memory (DeviceTensor plumbing in lib/device.ts): unwrap, call the core
// (unigap/cuda.h), wrap. No policy: the facade validates shapes, dtypes and byte counts first.
//   cudaStatus()                           { available, reason }
//   cudaAlloc(bytes, device)               handle (owned; freed by cudaFree or when collected)
//   cudaWrap(pointer: bigint, bytes, device)  handle (not owned: never freed, not accounted)
//   cudaFree(handle)                       frees an owned handle now (idempotent)
//   cudaUpload(handle, typedArray, byteOffset)    host -> device, synchronous
//   cudaDownload(handle, typedArray, byteOffset)  device -> host, synchronous
//   cudaPointer(handle)                    bigint device address
// Owned allocations are reported to V8 with AdjustExternalMemory so the GC sees their size.
#include <napi.h>

#include <cstdint>
#include <string>

#include "unigap/cuda.h"
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

}  // namespace

void unigap_napi_register_device(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStatus", Napi::Function::New(env, Status, "cudaStatus"));
  exports.Set("cudaAlloc", Napi::Function::New(env, Alloc, "cudaAlloc"));
  exports.Set("cudaWrap", Napi::Function::New(env, Wrap, "cudaWrap"));
  exports.Set("cudaFree", Napi::Function::New(env, Free, "cudaFree"));
  exports.Set("cudaUpload", Napi::Function::New(env, Upload, "cudaUpload"));
  exports.Set("cudaDownload", Napi::Function::New(env, Download, "cudaDownload"));
  exports.Set("cudaPointer", Napi::Function::New(env, Pointer, "cudaPointer"));
}
