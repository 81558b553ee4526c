// libFuzzer target for the DPO C ABI: unigap_dpo_loss (pair level) and unigap_dpo_from_logits (fused).
// Fuzzer bytes pick B (0..9, so B < 1 is tried), the loss-type list (0..17 entries, values -1..15 so
// invalid ones and too-long lists are tried), which optional arrays exist, the scalars (NaN / inf /
// negative / 0 included) and the values. Buffers are exactly sized; invalid arguments must come back
// as a status; an OK reward accuracy must be in [0, 1].
#include <algorithm>
#include <cstdio>

#include "fuzz_common.h"
#include "unigap/dpo.h"

using fuzz::Buf;
using fuzz::Reader;

namespace {

void fill_d(Reader &r, Buf<double> &b) {
  for (size_t i = 0; i < b.n; i++) b.get()[i] = r.u8() % 4 == 0 ? r.value() : (r.u8() - 128.0) / 4.0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader r(data, size);
  fuzz::pick_isa(r);
  const bool fused = r.flag();
  const int64_t B = r.range(0, 9);
  const size_t ub = static_cast<size_t>(B);
  Buf<double> pc(ub), pr(ub), qc(ub), qr(ub), w(ub);
  fill_d(r, pc);
  fill_d(r, pr);
  fill_d(r, qc);
  fill_d(r, qr);
  fill_d(r, w);
  Buf<int32_t> nc(ub), nr(ub);
  for (size_t i = 0; i < ub; i++) nc.get()[i] = static_cast<int32_t>(r.range(-1, 20));
  for (size_t i = 0; i < ub; i++) nr.get()[i] = static_cast<int32_t>(r.range(-1, 20));
  const int32_t n_losses = static_cast<int32_t>(r.u8() % 9 == 0 ? r.range(0, 17) : r.range(1, 3));
  Buf<int32_t> types(static_cast<size_t>(std::max<int32_t>(n_losses, 0)));
  Buf<double> lw(static_cast<size_t>(std::max<int32_t>(n_losses, 0)));
  for (int32_t k = 0; k < n_losses; k++) {
    types.get()[k] = static_cast<int32_t>(r.u8() % 10 == 0 ? r.range(-1, 16) : r.range(0, 14));
    lw.get()[k] = r.u8() % 6 == 0 ? r.value() : 0.5 + r.u8() / 128.0;
  }
  const uint8_t sel = r.u8();
  unigap_dpo_args a{};
  a.n_pairs = B;
  a.reference_chosen = sel & 1 ? qc.get() : nullptr;
  a.reference_rejected = sel & 1 ? qr.get() : (sel & 2 ? qr.get() : nullptr);  // sometimes only one: invalid
  a.weights = sel & 4 ? w.get() : nullptr;
  a.n_losses = n_losses;
  a.loss_types = types.get();
  a.loss_weights = sel & 8 ? lw.get() : nullptr;
  a.beta = r.scalar(0.1);
  a.label_smoothing = r.u8() % 3 == 0 ? r.scalar(0.2) : 0.0;
  a.discopop_tau = r.scalar(0.05);
  a.f_divergence = static_cast<int32_t>(r.u8() % 6 == 0 ? r.range(-1, 5) : r.range(0, 3));
  a.alpha = r.u8() % 4 == 0 ? r.scalar(0.5) : 1.0;
  a.bco_delta = r.u8() % 4 == 0 ? r.scalar(0.3) : 0.0;
  double loss = NAN, acc = NAN;
  Buf<double> losses(ub), rc(ub), rr(ub), mg(ub), gc(ub), gr(ub);
  const uint8_t outs = r.u8();
  a.loss = outs & 1 ? &loss : nullptr;
  a.losses = outs & 2 ? losses.get() : nullptr;
  a.chosen_rewards = outs & 4 ? rc.get() : nullptr;
  a.rejected_rewards = outs & 8 ? rr.get() : nullptr;
  a.margins = outs & 16 ? mg.get() : nullptr;
  a.reward_accuracy = outs & 32 ? &acc : nullptr;
  a.grad_chosen = outs & 64 ? gc.get() : nullptr;
  a.grad_rejected = outs & 128 ? gr.get() : nullptr;

  unigap_status s;
  if (!fused) {
    const uint8_t in = r.u8();
    a.policy_chosen = in & 1 ? pc.get() : (in & 2 ? nullptr : pc.get());
    a.policy_rejected = pr.get();
    a.chosen_tokens = in & 4 ? nc.get() : nullptr;
    a.rejected_tokens = in & 8 ? nr.get() : nullptr;
    s = unigap_dpo_loss(&a);
  } else {
    // Logits of 2B sequences (or a wrong count), as the logprobs target builds them.
    const int64_t ns = r.u8() % 6 == 0 ? r.range(0, 5) : 2 * B;
    const int64_t v = r.range(1, 40);
    const int64_t n = r.range(0, 20);
    const int dt = r.u8() % 3 == 0 ? (r.flag() ? UNIGAP_DTYPE_BF16 : UNIGAP_DTYPE_F16) : UNIGAP_DTYPE_F32;
    const size_t esz = fuzz::dtype_size(dt);
    const size_t nv = static_cast<size_t>(n * v);
    std::unique_ptr<uint8_t[]> logits(new uint8_t[nv * esz + 1]);
    fuzz::fill(r, logits.get(), dt, nv);
    Buf<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++)
      labels.get()[i] = r.u8() % 7 == 0 ? static_cast<int32_t>(r.range(-101, v + 1)) : static_cast<int32_t>(r.range(0, v - 1));
    Buf<int64_t> off(static_cast<size_t>(ns + 1));
    for (int64_t q = 0; q <= ns; q++) off.get()[q] = r.range(0, n);
    std::sort(off.get(), off.get() + ns + 1);
    off.get()[0] = 0;
    if (r.u8() % 8 != 0) off.get()[ns] = n;
    unigap_logprobs_args lp{};
    lp.logits = logits.get();
    lp.dtype = static_cast<unigap_dtype>(dt);
    lp.n_tokens = n;
    lp.vocab = v;
    lp.labels = labels.get();
    lp.ignore_index = -100;
    lp.offsets = off.get();
    lp.n_seq = ns;
    lp.shift = r.u8() % 2;
    lp.temperature = r.u8() % 8 == 0 ? r.value() : 1.0f;
    const uint8_t in = r.u8();
    if (in & 1) a.policy_chosen = pc.get();  // must be refused: policy comes from the logits
    if (in & 2) a.chosen_tokens = nc.get();  // likewise
    std::unique_ptr<uint8_t[]> gout(new uint8_t[nv * esz + 1]);
    void *grad = in & 4 ? nullptr : (in & 8 ? logits.get() : gout.get());
    Buf<double> pco(ub), pro(ub);
    Buf<int32_t> cto(ub), rto(ub);
    unigap_dpo_logit_metrics met{};
    s = unigap_dpo_from_logits(&lp, &a, grad, in & 16 ? nullptr : pco.get(), pro.get(), in & 32 ? nullptr : cto.get(),
                               rto.get(), in & 64 ? nullptr : &met);
    if (s == UNIGAP_STATUS_OK) {
      FUZZ_ASSERT(ns == 2 * B && B >= 1);
      FUZZ_ASSERT(a.policy_chosen == nullptr && a.chosen_tokens == nullptr);
      for (size_t i = 0; i < ub; i++) FUZZ_ASSERT(rto.get()[i] >= 0 && rto.get()[i] <= n);
    }
  }
  FUZZ_ASSERT(s >= UNIGAP_STATUS_OK && s <= UNIGAP_STATUS_INTERNAL && s != UNIGAP_STATUS_INTERNAL);
  if (s == UNIGAP_STATUS_OK && a.reward_accuracy) FUZZ_ASSERT(std::isnan(acc) || (acc >= 0 && acc <= 1));
  return 0;
}
