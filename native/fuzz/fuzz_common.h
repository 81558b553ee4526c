// Shared helpers for the libFuzzer targets: a byte reader that turns the fuzzer's input into bounded
// shapes, enum values (including invalid ones) and floats (including NaN / inf / huge), and exactly
// sized heap buffers so AddressSanitizer sees any read or write past what the C ABI promised to touch.
#ifndef UNIGAP_FUZZ_COMMON_H
#define UNIGAP_FUZZ_COMMON_H

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "unigap/common.h"

namespace fuzz {

class Reader {
 public:
  Reader(const uint8_t *data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ >= end_; }
  uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  // Integer in [lo, hi].
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(u32() % static_cast<uint64_t>(hi - lo + 1)); }
  bool flag() { return u8() & 1; }
  // A float: mostly ordinary values in [-8, 8], sometimes a special (0, -0, NaN, +-inf, huge, tiny).
  float value() {
    const uint8_t sel = u8();
    switch (sel % 16) {
      case 0: return 0.0f;
      case 1: return -0.0f;
      case 2: return std::numeric_limits<float>::quiet_NaN();
      case 3: return std::numeric_limits<float>::infinity();
      case 4: return -std::numeric_limits<float>::infinity();
      case 5: return 3.0e38f;
      case 6: return -3.0e38f;
      case 7: return 1.0e-40f;  // subnormal
      case 8: {  // raw bits
        uint32_t b = u32();
        float f;
        std::memcpy(&f, &b, 4);
        return f;
      }
      default: return (static_cast<float>(u8()) - 128.0f) / 16.0f;
    }
  }
  // A scalar option: usually valid-looking, sometimes hostile.
  double scalar(double typical) {
    switch (u8() % 8) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return -typical;
      case 2: return 0.0;
      case 3: return std::numeric_limits<double>::infinity();
      case 4: return static_cast<double>(value());
      default: return typical * (0.25 + (u8() / 64.0));
    }
  }

 private:
  const uint8_t *p_;
  const uint8_t *end_;
};

// An exactly sized heap buffer of `n` elements (NULL-safe for n = 0: a real, empty allocation).
template <typename T>
struct Buf {
  std::unique_ptr<T[]> p;
  size_t n = 0;
  explicit Buf(size_t count) : p(new T[count == 0 ? 1 : count]), n(count) {
    // Poison the outputs so reading an unwritten element is at least deterministic.
    std::memset(static_cast<void *>(p.get()), 0xA5, sizeof(T) * (count == 0 ? 1 : count));
  }
  T *get() { return p.get(); }
};

// Pick the ISA tier for this input (falls back silently when the CPU lacks it).
inline void pick_isa(Reader &r) {
  const int t = static_cast<int>(r.u8() % 3);
  unigap_isa_set(static_cast<unigap_isa>(t));
}

// bytes per element for the dtypes the kernels accept; 0 for an invalid dtype.
inline size_t dtype_size(int dt) {
  switch (dt) {
    case UNIGAP_DTYPE_F32: return 4;
    case UNIGAP_DTYPE_F64: return 8;
    case UNIGAP_DTYPE_BF16:
    case UNIGAP_DTYPE_F16: return 2;
    default: return 0;
  }
}

// Fill a buffer of `count` elements of dtype `dt` with fuzzer values.
inline void fill(Reader &r, void *dst, int dt, size_t count) {
  for (size_t i = 0; i < count; i++) {
    const float f = r.value();
    switch (dt) {
      case UNIGAP_DTYPE_F32: static_cast<float *>(dst)[i] = f; break;
      case UNIGAP_DTYPE_F64: static_cast<double *>(dst)[i] = f; break;
      default: static_cast<uint16_t *>(dst)[i] = static_cast<uint16_t>(r.u32()); break;  // raw bf16 / f16 bits
    }
  }
}

// A hard failure the sanitizers would not catch (e.g. an OK status with an impossible output).
#define FUZZ_ASSERT(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "FUZZ_ASSERT failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

}  // namespace fuzz

#endif
