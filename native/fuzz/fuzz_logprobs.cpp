// libFuzzer target for the logprobs C ABI (unigap_logprobs_forward / _backward / _forward_backward).
// Fuzzer bytes pick small shapes (N <= 24, V <= 40, up to 6 sequences), dtypes (including invalid
// ones), offsets (valid or not), labels (in range, ignored, or hostile), masks, shift, temperature and
// which outputs exist; every buffer is exactly the size the spec says, so ASan flags any overrun.
// The core must return a status for anything invalid and never touch memory outside the buffers.
#include <algorithm>
#include <cstdio>

#include "fuzz_common.h"
#include "unigap/logprobs.h"

using fuzz::Buf;
using fuzz::Reader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader r(data, size);
  fuzz::pick_isa(r);
  static const int kDtypes[] = {UNIGAP_DTYPE_F32, UNIGAP_DTYPE_BF16, UNIGAP_DTYPE_F16, UNIGAP_DTYPE_F64, 7};
  const int dt = kDtypes[r.u8() % 5];
  const int mode = r.u8() % 3;  // 0 forward, 1 backward, 2 fused
  const int64_t n = r.range(0, 24);
  // V mostly small; sometimes wide enough to cross the SIMD widths and tails (16 / 32 lanes).
  const int64_t v = r.flag() ? r.range(1, 40) : r.range(0, 70);
  const int64_t ns = r.range(0, 6);
  const size_t esz = fuzz::dtype_size(dt) ? fuzz::dtype_size(dt) : 4;
  const size_t nv = static_cast<size_t>(n) * static_cast<size_t>(v < 0 ? 0 : v);

  std::unique_ptr<uint8_t[]> logits(new uint8_t[nv * esz + 1]);
  bool ordinary = true;  // all logits in [-8, 8] (f32 only): then the outputs must be finite
  for (size_t i = 0; i < nv; i++) {
    if (esz == 2) {
      reinterpret_cast<uint16_t *>(logits.get())[i] = static_cast<uint16_t>(r.u32());
      ordinary = false;
    } else {
      const float f = r.value();
      if (!(f >= -8.0f && f <= 8.0f)) ordinary = false;
      if (esz == 8) reinterpret_cast<double *>(logits.get())[i] = f;
      else reinterpret_cast<float *>(logits.get())[i] = f;
    }
  }
  const int32_t ignore_index = r.flag() ? -100 : static_cast<int32_t>(r.range(-3, 3));
  Buf<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) {
    switch (r.u8() % 8) {
      case 0: labels.get()[i] = ignore_index; break;
      case 1: labels.get()[i] = static_cast<int32_t>(r.u32()); break;  // hostile
      case 2: labels.get()[i] = static_cast<int32_t>(v); break;          // one past the end
      default: labels.get()[i] = static_cast<int32_t>(r.range(0, v > 0 ? v - 1 : 0));
    }
  }
  Buf<uint8_t> mask(static_cast<size_t>(n));
  const bool use_mask = r.flag();
  for (int64_t i = 0; i < n; i++) mask.get()[i] = r.u8() % 3 == 0 ? 0 : 1;
  // Offsets: usually a valid non-decreasing cut of [0, N]; sometimes garbage the core must refuse.
  Buf<int64_t> offsets(static_cast<size_t>(ns + 1));
  const bool valid_offsets = r.u8() % 4 != 0;
  for (int64_t s = 0; s <= ns; s++) offsets.get()[s] = valid_offsets ? r.range(0, n) : r.range(-2, n + 2);
  if (valid_offsets) {
    std::sort(offsets.get(), offsets.get() + ns + 1);
    offsets.get()[0] = 0;
    offsets.get()[ns] = n;
  }
  unigap_logprobs_args a{};
  a.logits = nv ? logits.get() : (r.flag() ? nullptr : logits.get());
  a.dtype = static_cast<unigap_dtype>(dt);
  a.n_tokens = n;
  a.vocab = v;
  a.labels = labels.get();
  a.mask = use_mask ? mask.get() : nullptr;
  a.ignore_index = ignore_index;
  a.offsets = offsets.get();
  a.n_seq = ns;
  a.shift = static_cast<int>(r.u8() % 5 == 0 ? 2 : r.u8() % 2);
  a.temperature = r.u8() % 6 == 0 ? r.value() : 0.25f + r.u8() / 64.0f;
  Buf<float> tlogp(n), tent(n), tlse(n), ssum(ns), smean(ns);
  Buf<uint8_t> tcor(n);
  Buf<int32_t> scount(ns);
  Buf<double> slogit(ns);
  const uint8_t outs = r.u8();
  a.token_logp = outs & 1 ? tlogp.get() : nullptr;
  a.token_entropy = outs & 2 ? tent.get() : nullptr;
  a.token_correct = outs & 4 ? tcor.get() : nullptr;
  a.token_lse = outs & 8 ? tlse.get() : nullptr;
  a.seq_sum = outs & 16 ? ssum.get() : nullptr;
  a.seq_count = outs & 32 ? scount.get() : nullptr;
  a.seq_mean = outs & 64 ? smean.get() : nullptr;
  a.seq_logit_sum = outs & 128 ? slogit.get() : nullptr;

  unigap_logprobs_grad g{};
  Buf<float> gseq(ns), gtok(n), lse_in(n);
  for (int64_t s = 0; s < ns; s++) gseq.get()[s] = r.value();
  for (int64_t i = 0; i < n; i++) gtok.get()[i] = r.value();
  for (int64_t i = 0; i < n; i++) lse_in.get()[i] = r.value();
  std::unique_ptr<uint8_t[]> gout(new uint8_t[nv * esz + 1]);
  const uint8_t gsel = r.u8();
  g.grad_seq = gsel & 1 ? gseq.get() : nullptr;
  g.grad_token = gsel & 2 ? gtok.get() : nullptr;
  g.token_lse = gsel & 4 ? lse_in.get() : nullptr;
  g.grad_out = gsel & 8 ? const_cast<void *>(a.logits) : (gsel & 16 ? nullptr : gout.get());  // in place / missing / own

  unigap_status s;
  switch (mode) {
    case 0: s = unigap_logprobs_forward(&a); break;
    case 1: s = unigap_logprobs_backward(&a, &g); break;
    default: s = unigap_logprobs_forward_backward(&a, &g); break;
  }
  FUZZ_ASSERT(s >= UNIGAP_STATUS_OK && s <= UNIGAP_STATUS_INTERNAL);
  FUZZ_ASSERT(s != UNIGAP_STATUS_INTERNAL);
  if (s == UNIGAP_STATUS_OK && mode != 1) {
    // Contract checks the sanitizers cannot see.
    for (int64_t q = 0; q < ns && a.seq_count; q++) {
      const int64_t len = offsets.get()[q + 1] - offsets.get()[q];
      FUZZ_ASSERT(scount.get()[q] >= 0 && scount.get()[q] <= len);
    }
    for (int64_t i = 0; i < n && a.token_correct; i++) FUZZ_ASSERT(tcor.get()[i] <= 1);
    if (ordinary && dt == UNIGAP_DTYPE_F32 && a.temperature >= 0.25f && a.token_logp && mode == 0)
      for (int64_t i = 0; i < n; i++) FUZZ_ASSERT(std::isfinite(tlogp.get()[i]) && tlogp.get()[i] <= 1e-4f);
  }
  return 0;
}
