// A small persistent thread pool for the kernels. One parallel region at a time; a caller that
// finds the pool busy (e.g. another worker_thread is inside a kernel) runs its range serially
// instead of waiting, so concurrent callers never deadlock and never oversubscribe.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
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

// A region is a job (fn, ctx, items, chunks) and a 32-bit generation tag. Chunks are claimed from
// next_ = (tag << 32) | index with compare-exchange, so only a thread holding this generation's tag
// can claim one: a worker still finishing an earlier region (it woke late, or it is between its last
// claim and going back to sleep) finds a tag that is not its own and leaves, never running or counting
// a chunk of the new region. done_ counts finished chunks of the current region: every chunk of a
// region is finished before its caller returns, so resetting done_ for the next region (before the
// new tag is published) loses nothing. (The earlier pool reset plain counters that a late worker
// could still touch: it could take chunk 0 of the next region between the two resets, so that
// region's completion count was lost and the caller waited forever, or count a chunk twice and let
// the caller return while the chunk still ran. Seen as hangs of the similarity checks on a 16-core
// machine.)
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
    Job job{fn, ctx, n, std::min<int64_t>(max_chunks, static_cast<int64_t>(n_) * 4)};
    uint32_t tag;
    {
      std::lock_guard<std::mutex> lk(m_);
      tag = static_cast<uint32_t>(++generation_);
      job_ = job;
      done_.store(0);
      next_.store(static_cast<uint64_t>(tag) << 32);
    }
    cv_.notify_all();
    work(job, tag);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return done_.load() == job.n_chunks; });
  }

 private:
  struct Job {
    unigap_range_fn fn;
    void *ctx;
    int64_t n_items, n_chunks;
  };

  void work(const Job &job, uint32_t tag) {
    for (;;) {
      uint64_t c = next_.load();
      for (;;) {
        if (static_cast<uint32_t>(c >> 32) != tag || static_cast<int64_t>(c & 0xffffffffu) >= job.n_chunks) return;
        if (next_.compare_exchange_weak(c, c + 1)) break;
      }
      const int64_t k = static_cast<int64_t>(c & 0xffffffffu);
      job.fn(job.ctx, job.n_items * k / job.n_chunks, job.n_items * (k + 1) / job.n_chunks);
      if (done_.fetch_add(1) + 1 == job.n_chunks) {
        std::lock_guard<std::mutex> lk(m_);
        done_cv_.notify_all();
      }
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      Job job;
      uint32_t tag;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
        tag = static_cast<uint32_t>(seen);
      }
      work(job, tag);
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex region_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // guarded by m_, as is job_
  Job job_{};
  std::atomic<uint64_t> next_{0};
  std::atomic<int64_t> done_{0};
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
