// Thread-pool stress, built alone with -fsanitize=thread by scripts/test-sanitize.mjs (the harness
// runs the same check without TSan as common/parallel_for_many_regions): many short regions back to
// back, so workers of one region are still leaving while the next begins, from two callers at once
// (one gets the pool, the other runs its range serially). Every index must be visited exactly once
// and every region must finish; ThreadSanitizer reports any unsynchronised access to the pool's state
// (the pool before the generation-tagged claims fails it in a few hundred regions).
//   pool_stress [rounds]     UNIGAP_THREADS picks the pool size
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "unigap/common.h"

namespace {
struct Ctx {
  std::vector<std::atomic<int>> *hits;
};
void mark(void *c, int64_t b, int64_t e) {
  auto *x = static_cast<Ctx *>(c);
  for (int64_t i = b; i < e; i++) (*x->hits)[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
}
int caller(int rounds, int salt) {
  for (int r = 0; r < rounds; r++) {
    const int64_t n = 1 + (r * 7 + salt) % 131;
    std::vector<std::atomic<int>> h(static_cast<size_t>(n));
    Ctx c{&h};
    unigap_parallel_for(n, 1 + r % 3, mark, &c);
    for (int64_t i = 0; i < n; i++)
      if (h[static_cast<size_t>(i)].load() != 1) {
        std::fprintf(stderr, "pool_stress: caller %d round %d: index %lld visited %d times\n", salt, r, (long long)i,
                     h[static_cast<size_t>(i)].load());
        return 1;
      }
  }
  return 0;
}
}  // namespace

int main(int argc, char **argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20000;
  int bad_other = 0;
  std::thread other([&] { bad_other = caller(rounds / 4, 1); });
  int bad = caller(rounds, 0);
  other.join();
  bad |= bad_other;
  std::printf("pool_stress: %d threads, %d + %d regions: %s\n", unigap_threads(), rounds, rounds / 4,
              bad ? "FAILED" : "ok");
  return bad;
}
