// The CPU probe: CPUID + XGETBV, once, into the active tier. Family dispatch units
// (native/cpu/<family>/dispatch.cpp) read unigap_isa_active() and pick their function pointers.
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "unigap/common.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <cpuid.h>
#define UNIGAP_X86 1
#endif

namespace {

struct Probe {
  unigap_cpu_features f{};
  unigap_isa best = UNIGAP_ISA_SCALAR;
  char env_error[256] = {0};
};

#ifdef UNIGAP_X86
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

Probe do_probe() {
  Probe p;
#ifdef UNIGAP_X86
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    p.f.sse42 = (c >> 20) & 1;
    p.f.fma = (c >> 12) & 1;
    p.f.f16c = (c >> 29) & 1;
    p.f.avx = (c >> 28) & 1;
    const int osxsave = (c >> 27) & 1;
    if (osxsave) {
      const uint64_t xcr0 = xgetbv0();
      p.f.os_ymm = (xcr0 & 0x6) == 0x6;
      p.f.os_zmm = p.f.os_ymm && (xcr0 & 0xe0) == 0xe0;
    }
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    p.f.avx2 = (b >> 5) & 1;
    p.f.avx512f = (b >> 16) & 1;
    p.f.avx512dq = (b >> 17) & 1;
    p.f.avx512bw = (b >> 30) & 1;
    p.f.avx512vl = (b >> 31) & 1;
    p.f.avx512fp16 = (d >> 23) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    p.f.avx512bf16 = (a >> 5) & 1;
  }
  const bool avx2_ok = p.f.avx && p.f.avx2 && p.f.fma && p.f.f16c && p.f.os_ymm;
  const bool avx512_ok = avx2_ok && p.f.avx512f && p.f.avx512bw && p.f.avx512vl && p.f.avx512dq && p.f.os_zmm;
  p.best = avx512_ok ? UNIGAP_ISA_AVX512 : (avx2_ok ? UNIGAP_ISA_AVX2 : UNIGAP_ISA_SCALAR);
#endif
  return p;
}

const Probe &probe() {
  static const Probe p = do_probe();
  return p;
}

std::atomic<int> g_active{-1};
std::atomic<int> g_env_error{0};
char g_env_msg[256];
std::once_flag g_init_once;

void init_from_env() {
  std::call_once(g_init_once, [] {
    const Probe &p = probe();
    int tier = p.best;
    const char *env = std::getenv("UNIGAP_ISA");
    if (env && *env) {
      const int req = unigap_isa_parse(env);
      if (req < 0) {
        std::snprintf(g_env_msg, sizeof g_env_msg,
                      "UNIGAP_ISA=%s is not a tier; use scalar, avx2 or avx512", env);
        g_env_error.store(1);
      } else if (req > p.best) {
        std::snprintf(g_env_msg, sizeof g_env_msg,
                      "UNIGAP_ISA=%s asks for a tier this CPU/OS lacks (best available: %s)", env,
                      unigap_isa_name(p.best));
        g_env_error.store(1);
      } else {
        tier = req;
      }
    }
    g_active.store(tier);
  });
}

}  // namespace

extern "C" {

const char *unigap_isa_name(unigap_isa isa) {
  switch (isa) {
    case UNIGAP_ISA_SCALAR: return "scalar";
    case UNIGAP_ISA_AVX2: return "avx2";
    case UNIGAP_ISA_AVX512: return "avx512";
  }
  return "unknown";
}

int unigap_isa_parse(const char *name) {
  if (!name) return -1;
  char buf[16];
  size_t n = std::strlen(name);
  if (n >= sizeof buf) return -1;
  for (size_t i = 0; i <= n; i++) buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  if (!std::strcmp(buf, "scalar")) return UNIGAP_ISA_SCALAR;
  if (!std::strcmp(buf, "avx2")) return UNIGAP_ISA_AVX2;
  if (!std::strcmp(buf, "avx512")) return UNIGAP_ISA_AVX512;
  return -1;
}

unigap_isa unigap_isa_best(void) { return probe().best; }

unigap_isa unigap_isa_active(void) {
  init_from_env();
  return static_cast<unigap_isa>(g_active.load(std::memory_order_acquire));
}

unigap_status unigap_isa_set(unigap_isa isa) {
  init_from_env();
  if (isa < UNIGAP_ISA_SCALAR || isa > UNIGAP_ISA_AVX512 || isa > probe().best)
    return UNIGAP_STATUS_UNSUPPORTED_ISA;
  g_active.store(isa, std::memory_order_release);
  g_env_error.store(0);
  return UNIGAP_STATUS_OK;
}

int unigap_isa_env_error(char *msg, size_t cap) {
  init_from_env();
  if (!g_env_error.load()) {
    if (msg && cap) msg[0] = 0;
    return 0;
  }
  if (msg && cap) std::snprintf(msg, cap, "%s", g_env_msg);
  return 1;
}

void unigap_cpu_features_get(unigap_cpu_features *out) {
  if (out) *out = probe().f;
}

const char *unigap_status_name(unigap_status s) {
  switch (s) {
    case UNIGAP_STATUS_OK: return "UNIGAP_STATUS_OK";
    case UNIGAP_STATUS_INVALID_ARGUMENT: return "UNIGAP_STATUS_INVALID_ARGUMENT";
    case UNIGAP_STATUS_SHAPE_MISMATCH: return "UNIGAP_STATUS_SHAPE_MISMATCH";
    case UNIGAP_STATUS_OUT_OF_RANGE: return "UNIGAP_STATUS_OUT_OF_RANGE";
    case UNIGAP_STATUS_UNSUPPORTED_DTYPE: return "UNIGAP_STATUS_UNSUPPORTED_DTYPE";
    case UNIGAP_STATUS_UNSUPPORTED_ISA: return "UNIGAP_STATUS_UNSUPPORTED_ISA";
    case UNIGAP_STATUS_OUT_OF_MEMORY: return "UNIGAP_STATUS_OUT_OF_MEMORY";
    case UNIGAP_STATUS_DEVICE_UNAVAILABLE: return "UNIGAP_STATUS_DEVICE_UNAVAILABLE";
    case UNIGAP_STATUS_DEVICE_ERROR: return "UNIGAP_STATUS_DEVICE_ERROR";
    case UNIGAP_STATUS_INTERNAL: return "UNIGAP_STATUS_INTERNAL";
  }
  return "UNIGAP_STATUS_UNKNOWN";
}

const char *unigap_version(void) {
#ifdef UNIGAP_VERSION
  return UNIGAP_VERSION;
#else
  return "0.0.0";
#endif
}

}  // extern "C"
