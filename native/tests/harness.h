// Minimal standalone test harness (no Node, no framework): every kernel variant vs the scalar /
// float64 reference, plus a perf mode. Families add native/tests/test_<family>.cpp with
// UNIGAP_TEST(name) { ... } blocks; CHECK* macros record failures without aborting.
#ifndef UNIGAP_TESTS_HARNESS_H
#define UNIGAP_TESTS_HARNESS_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace harness {

struct Test {
  const char *name;
  std::function<void()> fn;
};
std::vector<Test> &registry();
struct Registrar {
  Registrar(const char *name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

extern int g_failures;
extern int g_checks;
extern bool g_perf;  // --perf: time kernels too
extern const char *g_current;

inline void fail(const char *file, int line, const std::string &msg) {
  g_failures++;
  if (g_failures <= 50) std::fprintf(stderr, "  FAIL [%s] %s:%d: %s\n", g_current, file, line, msg.c_str());
}

// |a - b| <= atol + rtol * |b|, with NaN == NaN and matching infinities.
inline bool close(double a, double b, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

// Deterministic per test, fresh values (never zeros).
inline std::mt19937_64 &rng() {
  static std::mt19937_64 r(12345);
  return r;
}
inline float uniform(float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  return d(rng());
}
inline float normal(float mean = 0.f, float sd = 1.f) {
  std::normal_distribution<float> d(mean, sd);
  return d(rng());
}

}  // namespace harness

#define UNIGAP_CAT2(a, b) a##b
#define UNIGAP_CAT(a, b) UNIGAP_CAT2(a, b)
#define UNIGAP_TEST(name)                                                                    \
  static void UNIGAP_CAT(unigap_test_fn_, __LINE__)();                                       \
  static harness::Registrar UNIGAP_CAT(unigap_test_reg_, __LINE__)(name, UNIGAP_CAT(unigap_test_fn_, __LINE__)); \
  static void UNIGAP_CAT(unigap_test_fn_, __LINE__)()

#define CHECK(cond)                                                     \
  do {                                                                  \
    harness::g_checks++;                                                \
    if (!(cond)) harness::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_CLOSE(a, b, rtol, atol)                                                              \
  do {                                                                                             \
    harness::g_checks++;                                                                           \
    double _a = (a), _b = (b);                                                                     \
    if (!harness::close(_a, _b, (rtol), (atol))) {                                                 \
      char _buf[256];                                                                              \
      std::snprintf(_buf, sizeof _buf, "%s = %.9g vs %s = %.9g", #a, _a, #b, _b);                  \
      harness::fail(__FILE__, __LINE__, _buf);                                                     \
    }                                                                                              \
  } while (0)

#endif
