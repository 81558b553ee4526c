#ifndef UNIGAP_CPU_LOGPROBS_PREFETCH_TUNER_H
#define UNIGAP_CPU_LOGPROBS_PREFETCH_TUNER_H
#include <algorithm>
#include <cstdint>

namespace unigap {
namespace logprobs {

// The statistics' software prefetch distance (AVX-512 sweep), tuned by each pool thread while it
// works. The best distance moves with the memory system's state, which on a shared VM changes by
// itself. f32 [4096, 32000], paired medians against the fixed 6 KiB (bench/ab/prefetch-setting.sh):
// - machine reading ~60 GB/s, 2 threads: 8 KiB 0.937-0.940, 12 KiB 0.942-0.952, 4 KiB 1.082;
// - 1 thread: 8 KiB 0.918-0.928, 12 KiB 0.915-0.951, 4 KiB 1.096;
// - machine reading ~42 GB/s, 2 threads: 4 KiB 0.982, 12 KiB 1.054.
// So each thread times its rows (a prefetch never changes a result): every kPeriod rows a tournament
// runs each distance for kRun rows in a row, the median of a run's rows after its first (a stall
// weighs one row) is averaged into that distance's estimate, and the rest of the period runs the
// lowest estimate. A per-row epsilon-greedy version with a moving average (one row in 16 exploring)
// was tried first: its single rows carried the previous distance's stream in flight, and it kept
// 0.995 where 8 KiB gave 0.937. One tuner per thread, dtype width and kind of row (the plain forward
// or with entropy / argmax / logit sum, whose rows cost more; with the gradient written after it or
// not), kept across calls.
class PrefetchTuner {
 public:
  static constexpr int kArms = 4;
  // KiB ahead; 16-bit rows stream half the bytes per element, and measured best a bit further ahead
  int kib(int arm, bool narrow) const { return (narrow ? kKib16 : kKib32)[arm]; }
  // The distance for the next row: a tournament opens every kPeriod rows, each distance running
  // kRun rows in a row (the order rotates); the rest of the period runs the best one so far.
  int pick() const {
    if (i_ < kArms * kRun) return static_cast<int>((i_ / kRun + round_) % kArms);
    return best_;
  }
  // The time of the row just run with pick()'s distance, in ns per element.
  void add(double ns_per_elem) {
    if (i_ < kArms * kRun) {
      const int arm = pick();
      const uint32_t j = i_ % kRun;
      if (j > 0) run_[j - 1] = ns_per_elem;  // the first row after a switch has the old stream in flight
      if (j == kRun - 1) {
        std::nth_element(run_, run_ + (kRun - 1) / 2, run_ + kRun - 1);  // the median: a stall is one row
        const double m = run_[(kRun - 1) / 2];
        est_[arm] = est_[arm] == 0 ? m : (est_[arm] + m) / 2;
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
  static constexpr int kKib32[kArms] = {4, 6, 8, 12}, kKib16[kArms] = {6, 8, 12, 16};
  static constexpr uint32_t kRun = 8, kPeriod = 512;
  double est_[kArms] = {};
  double run_[kRun - 1] = {};
  uint32_t i_ = 0, round_ = 0;
  int best_ = 1;
};

}  // namespace logprobs
}  // namespace unigap

#endif
