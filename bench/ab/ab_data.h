// The logits of the bench/ab drivers: n values uniform in [-6, 6) from a fixed LCG, as f32 or as the
// truncated bf16 bits (dtype 1), into x. Shared by header_ab_main.h and capi-logprobs.cpp so that both
// time the same data.
#pragma once
#include <cstdint>
#include <cstring>
inline void ab_fill_logits(char *x, int64_t n, int dtype) {
  uint32_t s = 12345;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    const float f = static_cast<int>(s >> 9) * (12.0f / (1 << 23)) - 6.0f;
    if (dtype) {
      uint32_t b;
      std::memcpy(&b, &f, 4);
      reinterpret_cast<uint16_t *>(x)[i] = static_cast<uint16_t>(b >> 16);
    } else {
      reinterpret_cast<float *>(x)[i] = f;
    }
  }
}
