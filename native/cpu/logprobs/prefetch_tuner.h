#ifndef UNIGAP_CPU_LOGPROBS_PREFETCH_TUNER_H
#define UNIGAP_CPU_LOGPROBS_PREFETCH_TUNER_H
#include <algorithm>
#include <cstdint>

namespace unigap {
namespace logprobs {

// The software prefetch distance of the statistics' sweep over f32 rows (AVX-512 tier), tuned by
// each pool thread while it works. The best distance moves with the memory system's state, which
// on this shared VM changes by itself within minutes. f32 [4096, 32000] through the library, paired
// medians against the fixed 6 KiB (bench/ab/prefetch-setting.sh, 2026-11-26):
// - fast memory state (6 KiB reading 57-60 GB/s), 2 threads: 8 KiB 0.936-0.957, 12 KiB 0.942-0.960,
//   4 KiB 1.08-1.10;
// - 1 thread: 8 KiB 0.918-0.931, 12 KiB 0.915-0.951, 4 KiB 1.096;
// - slow memory state (6 KiB reading 42-44 GB/s), 2 threads: 4 KiB 0.982-1.001, 8 KiB 1.05-1.07, 12 KiB 1.054.
// So each thread times rows (a prefetch never changes a result): every kPeriod rows a tournament
// runs each distance for kRun rows in a row; the median of a run's rows after its first (which has
// the previous distance's stream in flight; the median lets a stall weigh one row) moves that
// distance's estimate a quarter of the way, and the rest of the period runs the lowest estimate.
// Only tournament rows are timed (see timing()). Tuned, against the fixed 6 KiB: 0.953 / 0.972
// (2 threads) and 0.942 (1 thread) in the fast state, 1.004 / 1.007 in the slow one.
// Tried first: a per-row epsilon-greedy tuner (one row in 16 exploring, a moving average, every
// row timed) kept 0.995 where 8 KiB gave 0.937; tournaments of 8-row runs with every row timed
// still cost 2-7% against the distance they chose. 16-bit rows are not tuned (avx512_impl.h).
// One tuner per thread and kind of row (the plain forward or with entropy / argmax / logit sum,
// whose rows cost more; with the gradient written after it or not), kept across calls.
class PrefetchTuner {
 public:
  static constexpr int kArms = 4;
  static constexpr uint32_t kRun = 16, kPeriod = 1024;  // rows
  // KiB ahead (f32 rows)
  int kib(int arm) const { return kKib[arm]; }
  // The distance for the next row: a tournament opens every kPeriod rows, each distance running
  // kRun rows in a row (the order rotates); the rest of the period runs the best one so far.
  int pick() const {
    if (i_ < kArms * kRun) return static_cast<int>((i_ / kRun + round_) % kArms);
    return best_;
  }
  // Whether the next row's time is wanted: only inside a tournament, and not for a run's first row
  // (it has the previous distance's stream in flight). Reading the clock waits for the core's
  // window to drain (the vDSO clock orders rdtsc), which timing every row cost: bf16 rows of
  // 32000 timed each ran 7% slower than the same distance untimed.
  bool timing() const { return i_ < kArms * kRun && i_ % kRun != 0; }
  // After every row: its time in ns per element when timing() asked for it (ignored otherwise).
  void done(double ns_per_elem = 0) {
    if (timing()) {
      const uint32_t j = i_ % kRun;
      run_[j - 1] = ns_per_elem;
      if (j == kRun - 1) {
        const int arm = pick();
        std::nth_element(run_, run_ + (kRun - 1) / 2, run_ + kRun - 1);  // the median: a stall is one row
        const double m = run_[(kRun - 1) / 2];
        est_[arm] = est_[arm] == 0 ? m : est_[arm] + (m - est_[arm]) / 4;
        if (i_ == kArms * kRun - 1) {
          best_ = 0;
          for (int q = 1; q < kArms; q++)
            if (est_[q] < est_[best_]) best_ = q;
        }
      }
    }
    if (++i_ == kPeriod) i_ = 0, round_++;
  }

 private:
  static constexpr int kKib[kArms] = {4, 6, 8, 12};
  double est_[kArms] = {};
  double run_[kRun - 1] = {};
  uint32_t i_ = 0, round_ = 0;
  int best_ = 1;
};

}  // namespace logprobs
}  // namespace unigap

#endif
