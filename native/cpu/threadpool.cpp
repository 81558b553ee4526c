// A small persistent thread pool for the kernels. One parallel region at a time; a caller that
// finds the pool busy (e.g. another worker_thread is inside a kernel) runs its range serially
// instead of waiting, so concurrent callers never deadlock and never oversubscribe.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "unigap/common.h"

namespace {

int detect_threads() {
  const char *env = std::getenv("UNIGAP_THREADS");
  if (env && *env) {
    char *end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end && *end == 0 && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int i = 1; i < n_; i++) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
  }
  int size() const { return n_; }

  void run(int64_t n, int64_t grain, unigap_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t max_chunks = (n + grain - 1) / grain;
    if (n_ <= 1 || max_chunks <= 1) {
      fn(ctx, 0, n);
      return;
    }
    std::unique_lock<std::mutex> region(region_, std::try_to_lock);
    if (!region.owns_lock()) {  // pool busy: run on the caller
      fn(ctx, 0, n);
      return;
    }
    // Chunks: a few per thread for balance, never below grain.
    int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(n_) * 4);
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = fn;
      ctx_ = ctx;
      n_items_ = n;
      n_chunks_ = chunks;
      next_.store(0);
      done_.store(0);
      generation_++;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return done_.load() == n_chunks_; });
    fn_ = nullptr;
  }

 private:
  void work() {
    for (;;) {
      int64_t c = next_.fetch_add(1);
      if (c >= n_chunks_) break;
      int64_t b = n_items_ * c / n_chunks_;
      int64_t e = n_items_ * (c + 1) / n_chunks_;
      fn_(ctx_, b, e);
      if (done_.fetch_add(1) + 1 == n_chunks_) {
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_all();
      }
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex region_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  unigap_range_fn fn_ = nullptr;
  void *ctx_ = nullptr;
  int64_t n_items_ = 0, n_chunks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
};

Pool &pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit (or from a
  // worker_thread's teardown) is a classic source of hangs.
  static Pool *p = new Pool(detect_threads());
  return *p;
}

}  // namespace

extern "C" {

int unigap_threads(void) { return pool().size(); }

void unigap_parallel_for(int64_t n, int64_t grain, unigap_range_fn fn, void *ctx) {
  pool().run(n, grain, fn, ctx);
}

}
