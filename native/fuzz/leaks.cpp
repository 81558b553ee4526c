// Leak check for every kernel's C entry point: 1,000 calls of each (forward, backward, fused
// logprobs; dpo loss and dpo from logits; paired cosine, matrix, top-k, ranks), on every ISA tier
// this CPU has, with the error paths mixed in (invalid arguments return a status; they must not leak
// either). Built with ASan + LeakSanitizer by scripts/fuzz.mjs (`npm run test:leaks`):
//   - LeakSanitizer reports any allocation left unreachable at exit (the process then fails);
//   - the allocator's live-bytes counter must not grow between call 100 and call 1,000 (a leak that
//     stays reachable, e.g. a cache that grows per call, shows here).
#include <sanitizer/allocator_interface.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "unigap/dpo.h"
#include "unigap/logprobs.h"
#include "unigap/similarity.h"

namespace {

int g_fail = 0;

void expect(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "leaks: FAIL %s\n", what);
    g_fail++;
  }
}

struct Logprobs {
  int64_t n = 24, v = 67, ns = 3;
  std::vector<float> logits, gout, tlogp, tlse, tent, ssum, smean, gseq;
  std::vector<int32_t> labels, scount;
  std::vector<uint8_t> tcor;
  std::vector<int64_t> off{0, 8, 16, 24};
  std::vector<double> slogit;
  Logprobs() : logits(n * v), gout(n * v), tlogp(n), tlse(n), tent(n), ssum(ns), smean(ns), gseq(ns, 1.0f),
               labels(n), scount(ns), tcor(n), slogit(ns) {
    for (size_t i = 0; i < logits.size(); i++) logits[i] = static_cast<float>((i * 37 % 101) - 50) / 10.0f;
    for (int64_t i = 0; i < n; i++) labels[i] = i % 5 == 0 ? -100 : static_cast<int32_t>(i * 7 % v);
  }
  unigap_logprobs_args args() {
    unigap_logprobs_args a{};
    a.logits = logits.data();
    a.dtype = UNIGAP_DTYPE_F32;
    a.n_tokens = n;
    a.vocab = v;
    a.labels = labels.data();
    a.ignore_index = -100;
    a.offsets = off.data();
    a.n_seq = ns;
    a.shift = 1;
    a.temperature = 0.7f;
    a.token_logp = tlogp.data();
    a.token_lse = tlse.data();
    a.token_entropy = tent.data();
    a.token_correct = tcor.data();
    a.seq_sum = ssum.data();
    a.seq_count = scount.data();
    a.seq_mean = smean.data();
    a.seq_logit_sum = slogit.data();
    return a;
  }
  void call(int i) {
    unigap_logprobs_args a = args();
    unigap_logprobs_grad g{};
    g.grad_seq = gseq.data();
    g.grad_out = gout.data();
    expect(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OK, "logprobs forward");
    g.token_lse = i % 2 ? tlse.data() : nullptr;
    expect(unigap_logprobs_backward(&a, &g) == UNIGAP_STATUS_OK, "logprobs backward");
    expect(unigap_logprobs_forward_backward(&a, &g) == UNIGAP_STATUS_OK, "logprobs fused");
    // error paths: out-of-range label (detected after the scratch is allocated), bad temperature
    labels[3] = static_cast<int32_t>(v + 5);
    expect(unigap_logprobs_forward(&a) == UNIGAP_STATUS_OUT_OF_RANGE, "logprobs bad label");
    labels[3] = 2;
    a.temperature = -1;
    expect(unigap_logprobs_forward(&a) == UNIGAP_STATUS_INVALID_ARGUMENT, "logprobs bad temperature");
  }
};

struct Dpo {
  int64_t B = 5;
  std::vector<double> pc{-3, -4, -5, -6, -7}, pr{-4, -3, -8, -6, -9}, qc{-3.5, -4, -5, -6.5, -7},
      qr{-3.9, -3.2, -8, -6, -9.1}, w{1, 0.5, 2, 1, 1}, losses, rc, rr, mg, gc, gr;
  std::vector<int32_t> nc{3, 4, 5, 6, 7}, nr{4, 3, 8, 6, 9};
  double loss = 0, acc = 0;
  Dpo() : losses(B), rc(B), rr(B), mg(B), gc(B), gr(B) {}
  unigap_dpo_args args(const int32_t *types, int32_t nt) {
    unigap_dpo_args a{};
    a.n_pairs = B;
    a.policy_chosen = pc.data();
    a.policy_rejected = pr.data();
    a.reference_chosen = qc.data();
    a.reference_rejected = qr.data();
    a.chosen_tokens = nc.data();
    a.rejected_tokens = nr.data();
    a.weights = w.data();
    a.n_losses = nt;
    a.loss_types = types;
    a.beta = 0.1;
    a.discopop_tau = 0.05;
    a.alpha = 1.0;
    a.loss = &loss;
    a.losses = losses.data();
    a.chosen_rewards = rc.data();
    a.rejected_rewards = rr.data();
    a.margins = mg.data();
    a.reward_accuracy = &acc;
    a.grad_chosen = gc.data();
    a.grad_rejected = gr.data();
    return a;
  }
  void call(int i, Logprobs &lp) {
    const int32_t t1[] = {static_cast<int32_t>(i % UNIGAP_DPO_LOSS_TYPE_COUNT)};
    unigap_dpo_args a = args(t1, 1);
    expect(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK, "dpo loss");
    const int32_t all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    a = args(all, 15);
    expect(unigap_dpo_loss(&a) == UNIGAP_STATUS_OK, "dpo all losses");
    a.beta = -1;
    expect(unigap_dpo_loss(&a) == UNIGAP_STATUS_INVALID_ARGUMENT, "dpo bad beta");
    // fused: 2B = 6 sequences over the logprobs fixture's 24 rows
    std::vector<int64_t> off{0, 4, 8, 12, 16, 20, 24};
    unigap_logprobs_args l = lp.args();
    l.offsets = off.data();
    l.n_seq = 6;
    Dpo d3;
    d3.B = 3;
    unigap_dpo_args f = args(t1, 1);
    f.n_pairs = 3;
    f.policy_chosen = f.policy_rejected = nullptr;
    f.chosen_tokens = f.rejected_tokens = nullptr;
    f.weights = nullptr;
    std::vector<double> pco(3), pro(3);
    std::vector<int32_t> cto(3), rto(3);
    unigap_dpo_logit_metrics m{};
    expect(unigap_dpo_from_logits(&l, &f, lp.gout.data(), pco.data(), pro.data(), cto.data(), rto.data(), &m) ==
               UNIGAP_STATUS_OK,
           "dpo from logits");
    lp.labels[5] = 1000;
    expect(unigap_dpo_from_logits(&l, &f, lp.gout.data(), pco.data(), pro.data(), cto.data(), rto.data(), &m) ==
               UNIGAP_STATUS_OUT_OF_RANGE,
           "dpo from logits bad label");
    lp.labels[5] = 1;
  }
};

struct Sim {
  int64_t n = 37, m = 41, d = 45, k = 5;
  std::vector<float> a, b, out, sc, cos;
  std::vector<int32_t> idx;
  std::vector<double> ranks;
  Sim() : a(n * d), b(m * d), out(n * m), sc(n * k), cos(n), idx(n * k), ranks(n) {
    for (size_t i = 0; i < a.size(); i++) a[i] = static_cast<float>((i * 13 % 29) - 14) / 7.0f;
    for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<float>((i * 17 % 31) - 15) / 7.0f;
  }
  void call(int i) {
    const int norm = i % 2;
    expect(unigap_similarity_paired_cosine(a.data(), UNIGAP_DTYPE_F32, b.data(), UNIGAP_DTYPE_F32, n, d, cos.data()) ==
               UNIGAP_STATUS_OK,
           "paired cosine");
    expect(unigap_similarity_matrix(a.data(), UNIGAP_DTYPE_F32, n, b.data(), UNIGAP_DTYPE_F32, m, d, norm, 2.0f,
                                    0.5f, out.data()) == UNIGAP_STATUS_OK,
           "matrix");
    expect(unigap_similarity_topk(a.data(), UNIGAP_DTYPE_F32, n, b.data(), UNIGAP_DTYPE_F32, m, d, k, norm, idx.data(),
                                  sc.data()) == UNIGAP_STATUS_OK,
           "topk");
    expect(unigap_similarity_ranks(a.data(), UNIGAP_DTYPE_F32, b.data(), UNIGAP_DTYPE_F32, n, d, norm, ranks.data()) ==
               UNIGAP_STATUS_OK,
           "ranks");
    expect(unigap_similarity_topk(a.data(), UNIGAP_DTYPE_F32, n, b.data(), UNIGAP_DTYPE_F32, m, d, m + 1, norm,
                                  idx.data(), sc.data()) == UNIGAP_STATUS_OUT_OF_RANGE,
           "topk bad k");
  }
};

}  // namespace

int main(int argc, char **argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 1000;
  Logprobs lp;
  Dpo dpo;
  Sim sim;
  const unigap_isa best = unigap_isa_best();
  for (int tier = 0; tier <= static_cast<int>(best); tier++) {
    unigap_isa_set(static_cast<unigap_isa>(tier));
    size_t warm = 0;
    for (int i = 0; i < calls; i++) {
      lp.call(i);
      dpo.call(i, lp);
      sim.call(i);
      if (i == 99) warm = __sanitizer_get_current_allocated_bytes();
    }
    const size_t after = __sanitizer_get_current_allocated_bytes();
    const long long growth = static_cast<long long>(after) - static_cast<long long>(warm);
    std::printf("leaks: %s: %d calls of each of 11 entry points (+5 error paths): live heap %zu -> %zu bytes (%+lld)\n",
                unigap_isa_name(static_cast<unigap_isa>(tier)), calls, warm, after, growth);
    if (calls >= 200 && growth > 64 * 1024) {
      std::fprintf(stderr, "leaks: FAIL live heap grew by %lld bytes between call 100 and call %d\n", growth, calls);
      g_fail++;
    }
  }
  if (g_fail) std::fprintf(stderr, "leaks: %d failures\n", g_fail);
  else std::printf("leaks: clean (LeakSanitizer checks at exit)\n");
  return g_fail ? 1 : 0;
}
