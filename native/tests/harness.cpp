#include "harness.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "unigap/common.h"

namespace harness {
std::vector<Test> &registry() {
  static std::vector<Test> r;
  return r;
}
int g_failures = 0;
int g_checks = 0;
bool g_perf = false;
const char *g_current = "";
}  // namespace harness

UNIGAP_TEST("common/isa_probe") {
  unigap_isa best = unigap_isa_best();
  CHECK(unigap_isa_active() <= best);
  // Every tier up to the best can be forced; above it is refused without changing anything.
  for (int t = 0; t <= 2; t++) {
    unigap_status s = unigap_isa_set(static_cast<unigap_isa>(t));
    if (t <= best) {
      CHECK(s == UNIGAP_STATUS_OK);
      CHECK(unigap_isa_active() == t);
    } else {
      CHECK(s == UNIGAP_STATUS_UNSUPPORTED_ISA);
    }
  }
  unigap_isa_set(best);
  CHECK(unigap_isa_parse("AVX512") == UNIGAP_ISA_AVX512);
  CHECK(unigap_isa_parse("sse") == -1);
}

namespace {
struct SumCtx {
  std::vector<int64_t> hits;
};
void mark(void *ctx, int64_t b, int64_t e) {
  auto *c = static_cast<SumCtx *>(ctx);
  for (int64_t i = b; i < e; i++) c->hits[i]++;
}
}  // namespace

UNIGAP_TEST("common/parallel_for_covers_each_index_once") {
  for (int64_t n : {0, 1, 7, 1000, 100003}) {
    SumCtx c;
    c.hits.assign(n, 0);
    unigap_parallel_for(n, 3, mark, &c);
    bool ok = true;
    for (int64_t i = 0; i < n; i++) ok &= c.hits[i] == 1;
    CHECK(ok);
  }
  CHECK(unigap_threads() >= 1);
}

// Many short regions back to back from two callers at once: every index exactly once, every region
// finishes, also when the second caller finds the pool busy and runs serially. A functional check: on 2
// cores it does not catch the old pool's lost-completion race (that needed 16 cores, or TSan's timing);
// native/tests/tsan/pool_stress.cpp under ThreadSanitizer does (npm run test:sanitize).
UNIGAP_TEST("common/parallel_for_many_regions") {
  auto caller = [](int rounds, int salt) {
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
      const int64_t n = 1 + (r * 7 + salt) % 131;
      SumCtx c;
      c.hits.assign(n, 0);
      unigap_parallel_for(n, 1 + r % 3, mark, &c);
      for (int64_t i = 0; i < n; i++) bad += c.hits[i] != 1;
    }
    return bad;
  };
  int bad_other = 0;
  std::thread other([&] { bad_other = caller(2000, 1); });
  const int bad = caller(8000, 0);
  other.join();
  CHECK(bad == 0);
  CHECK(bad_other == 0);
}

UNIGAP_TEST("common/cuda_info") {
  unigap_cuda_info ci;
  unigap_cuda_info_get(&ci);
  if (ci.device_count == 0) CHECK(std::strlen(ci.reason) > 0);
}

// A filter selects the tests whose name contains it, or with a leading '=' the one named exactly.
static bool matches(const char *name, const char *filter) {
  return filter[0] == '=' ? !std::strcmp(name, filter + 1) : std::strstr(name, filter) != nullptr;
}

int main(int argc, char **argv) {
  // Line-buffered even into a pipe: a run killed by a timeout (bench/device/run.sh) keeps every line
  // printed so far, so the log names the test that was running.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const char *filter = nullptr;
  bool list = false;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--perf"))
      harness::g_perf = true;
    else if (!std::strcmp(argv[i], "--list"))
      list = true;
    else
      filter = argv[i];
  }
  if (list) {  // the registered names (those matching the filter), one per line, nothing run
    for (auto &t : harness::registry())
      if (!filter || matches(t.name, filter)) std::printf("%s\n", t.name);
    return 0;
  }
  unigap_cuda_info ci;
  unigap_cuda_info_get(&ci);
  std::printf("unigap harness %s: isa %s (best %s), threads %d, cuda %s, devices %d%s%s\n", unigap_version(),
              unigap_isa_name(unigap_isa_active()), unigap_isa_name(unigap_isa_best()), unigap_threads(),
              ci.compiled ? "compiled" : "absent", ci.device_count, ci.device_count ? "" : ": ",
              ci.device_count ? "" : ci.reason);
  int ran = 0, failed_tests = 0;
  for (auto &t : harness::registry()) {
    if (filter && !matches(t.name, filter)) continue;
    harness::g_current = t.name;
    int before = harness::g_failures;
    auto t0 = std::chrono::steady_clock::now();
    t.fn();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    bool ok = harness::g_failures == before;
    std::printf("%s %s (%.1f ms)\n", ok ? "ok  " : "FAIL", t.name, ms);
    ran++;
    if (!ok) failed_tests++;
  }
  std::printf("%d checks\n", harness::g_checks);
  std::printf("harness: %d passed, %d failed\n", ran - failed_tests, failed_tests);
  return failed_tests == 0 && ran > 0 ? 0 : 1;
}
