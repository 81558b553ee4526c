#!/usr/bin/env python3
"""PyTorch baselines for the CUDA log-prob kernels, and the final table of bench/device/run.sh.

  torch_baseline.py --out torch.txt
      Times, on the same shapes as the harness (--perf), torch.log_softmax + gather in eager mode and
      under torch.compile (forward), and eager forward + backward, with CUDA events (median of 7 after
      warm-up). Writes TORCH|name|dtype|shape|ms lines. If torch is not importable or sees no GPU it
      writes one TORCH_SKIPPED|reason line and exits 0.

  torch_baseline.py --sim --out torch_sim.txt
      Similarity baselines (issue 9) on the harness's perf shapes: F.normalize + matmul (cuBLAS) with
      scale and bias in bf16, the same in f32 with TF32 off (the exact-f32 reference), F.normalize +
      matmul + torch.topk(k=10), and F.cosine_similarity for the paired case. TORCH|... lines as above.

  torch_baseline.py --table --harness perf.txt --torch torch.txt [--torch-sim torch_sim.txt] [--gpu gpu.csv]
      Joins the harness PERF / PERF_SIM lines and the torch lines into one markdown table, with the
      targets of issues 8 and 9 checked where both sides were measured.
"""
import argparse
import os
import statistics
import sys

N, V = 16384, 128256
SHAPE = f"{N}x{V}"


def time_ms(fn, reps=7):
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def run_torch(out_path):
    lines = []
    sink = open(out_path, "w") if out_path else None  # written as we go: a timeout keeps what ran

    def emit(line):
        print(line, flush=True)
        lines.append(line)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    try:
        import torch
    except Exception as e:  # noqa: BLE001
        emit(f"TORCH_SKIPPED|torch is not importable: {type(e).__name__}: {e}")
        return lines
    if not torch.cuda.is_available():
        emit("TORCH_SKIPPED|torch sees no CUDA device")
        return lines
    emit(f"TORCH_INFO|torch {torch.__version__}|cuda {torch.version.cuda}|{torch.cuda.get_device_name()}")

    def logp_eager(logits, labels):
        return torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)

    try:
        logp_compiled = torch.compile(logp_eager)
    except Exception as e:  # noqa: BLE001
        logp_compiled = None
        emit(f"TORCH_SKIPPED|torch.compile unavailable: {type(e).__name__}: {e}")

    for name, dtype in (("bf16", torch.bfloat16), ("f32", torch.float32)):
        torch.manual_seed(0)
        logits = (torch.rand(N, V, device="cuda", dtype=torch.float32) * 8 - 4).to(dtype)
        labels = torch.randint(0, V, (N,), device="cuda")
        with torch.no_grad():
            ms = time_ms(lambda: logp_eager(logits, labels))
        emit(f"TORCH|torch eager log_softmax+gather (forward)|{name}|{SHAPE}|{ms:.4f}")
        if logp_compiled is not None:
            try:
                with torch.no_grad():
                    ms = time_ms(lambda: logp_compiled(logits, labels))
                emit(f"TORCH|torch.compile log_softmax+gather (forward)|{name}|{SHAPE}|{ms:.4f}")
            except Exception as e:  # noqa: BLE001
                emit(f"TORCH_SKIPPED|torch.compile {name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        # Eager forward + backward of sum(logp): the autograd reference for the fused kernel.
        x = logits.clone().requires_grad_(True)

        def fwd_bwd():
            x.grad = None
            logp_eager(x, labels).sum().backward()

        ms = time_ms(fwd_bwd)
        emit(f"TORCH|torch eager log_softmax+gather (fwd+bwd)|{name}|{SHAPE}|{ms:.4f}")
        del x, logits, labels
        torch.cuda.empty_cache()
    return lines


SIM_MATRIX = (8192, 8192, 1024)
SIM_TOPK = (8192, 65536, 1024, 10)
SIM_PAIRED = (65536, 1024)


def run_torch_sim(out_path):
    sink = open(out_path, "w") if out_path else None

    def emit(line):
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001
        emit(f"TORCH_SKIPPED|torch is not importable: {type(e).__name__}: {e}")
        return
    if not torch.cuda.is_available():
        emit("TORCH_SKIPPED|torch sees no CUDA device")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    n, m, d = SIM_MATRIX
    shape = f"{n}x{m}x{d}"
    a = torch.randn(n, d, device="cuda").to(torch.bfloat16)
    b = torch.randn(m, d, device="cuda").to(torch.bfloat16)
    with torch.no_grad():
        ms = time_ms(lambda: torch.addmm(torch.tensor(-2.5, device="cuda", dtype=torch.bfloat16),
                                         F.normalize(a, dim=-1), F.normalize(b, dim=-1).T, alpha=14.3), reps=5)
        emit(f"TORCH|torch F.normalize+matmul (bf16 out, cuBLAS)|bf16|{shape}|{ms:.4f}")
        af, bf = a.float(), b.float()
        ms = time_ms(lambda: torch.addmm(torch.tensor(-2.5, device="cuda"), F.normalize(af, dim=-1),
                                         F.normalize(bf, dim=-1).T, alpha=14.3), reps=5)
        emit(f"TORCH|torch F.normalize+matmul (f32, TF32 off: exact f32 SGEMM)|bf16->f32|{shape}|{ms:.4f}")
        torch.backends.cuda.matmul.allow_tf32 = True
        ms = time_ms(lambda: torch.addmm(torch.tensor(-2.5, device="cuda"), F.normalize(af, dim=-1),
                                         F.normalize(bf, dim=-1).T, alpha=14.3), reps=5)
        torch.backends.cuda.matmul.allow_tf32 = False
        emit(f"TORCH|torch F.normalize+matmul (f32, TF32 on)|f32|{shape}|{ms:.4f}")
        del af, bf
    del a, b
    torch.cuda.empty_cache()

    n, m, d, k = SIM_TOPK
    shape = f"{n}x{m}x{d}"
    q = torch.randn(n, d, device="cuda").to(torch.bfloat16)
    c = torch.randn(m, d, device="cuda").to(torch.bfloat16)
    with torch.no_grad():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        ms = time_ms(lambda: torch.topk(F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T, k, dim=-1), reps=3)
        peak = torch.cuda.max_memory_allocated()
        name = f"torch F.normalize+matmul+topk k={k} (N x M bf16 in memory)"
        emit(f"TORCH|{name}|bf16|{shape}|{ms:.4f}")
        # inputs (allocated before) + the call's peak working memory, MiB
        emit(f"TORCH_MEM|{name}|{shape}|{base / 2**20:.1f}|{(peak - base) / 2**20:.1f}|{peak / 2**20:.1f}")
    del q, c
    torch.cuda.empty_cache()

    n, d = SIM_PAIRED
    for name, dt in (("bf16", torch.bfloat16), ("f32", torch.float32)):
        x = torch.randn(n, d, device="cuda").to(dt)
        y = torch.randn(n, d, device="cuda").to(dt)
        with torch.no_grad():
            ms = time_ms(lambda: F.cosine_similarity(x, y, dim=-1))
        emit(f"TORCH|torch F.cosine_similarity|{name}|{n}x{d}|{ms:.4f}")
        del x, y
    torch.cuda.empty_cache()


def sim_table(perf_sim, perf, torch_rows, copy, mem_rows=()):
    if not perf_sim and not any(r[1].startswith("unigap pairedCosine") for r in perf):
        print("\nNo similarity PERF lines (cuda/perf/similarity did not run).")
        return
    print("\n## Similarity (issue 9)\n")
    print("| op | dtype | shape | ms (median) | TFLOP/s or GB/s |")
    print("|---|---|---|---:|---:|")
    for r in perf_sim:
        print(f"| {r[1]} | {r[2]} | {r[3]} | {float(r[4]):.3f} | {float(r[5]):.1f} TFLOP/s |")
    for r in perf:
        if r[1].startswith("unigap pairedCosine"):
            print(f"| {r[1]} | {r[2]} | {r[3]} | {float(r[4]):.3f} | {float(r[5]):.0f} GB/s ({float(r[6]):.1f}% of copy) |")
    for r in torch_rows:
        if "normalize" in r[1] or "cosine" in r[1]:
            print(f"| {r[1]} | {r[2]} | {r[3]} | {float(r[4]):.3f} | |")
    if mem_rows:
        print("\n| top-k memory | shape | inputs + outputs MiB | working (scratch / temporaries) MiB | peak MiB |")
        print("|---|---|---:|---:|---:|")
        for r in mem_rows:
            print(f"| {r[1]} | {r[2]} | {float(r[3]):.1f} | {float(r[4]):.1f} | {float(r[5]):.1f} |")
    print("\n## Targets (issue 9)\n")
    ours = {r[1].split(" (")[0]: float(r[4]) for r in perf_sim}
    tor = {r[1]: float(r[4]) for r in torch_rows}
    mat = ours.get("unigap similarityMatrix")
    ref = tor.get("torch F.normalize+matmul (bf16 out, cuBLAS)")
    if mat and ref:
        pct = 100 * ref / mat
        print(f"- similarityMatrix 8192x8192x1024 bf16: {pct:.1f}% of torch normalize+matmul (target >= 60%): "
              f"{'MET' if pct >= 60 else 'NOT MET'}")
    ref32 = tor.get("torch F.normalize+matmul (f32, TF32 off: exact f32 SGEMM)")
    simt = ours.get("unigap similarityMatrix SIMT")
    if simt and ref32:
        print(f"- (same precision) similarityMatrix SIMT (exact f32) vs torch exact-f32 SGEMM normalize+matmul: "
              f"{100 * ref32 / simt:.1f}%")
    tf32 = ours.get("unigap similarityMatrix TF32")
    reftf = tor.get("torch F.normalize+matmul (f32, TF32 on)")
    if tf32 and reftf:
        print(f"- similarityMatrix TF32 vs torch TF32 normalize+matmul: {100 * reftf / tf32:.1f}%")
    tk = ours.get("unigap topkSimilarity k=10")
    ref = next((v for k_, v in tor.items() if "topk" in k_), None)
    mems = {r[1].split(" (")[0]: float(r[5]) for r in mem_rows}
    if mems:
        print("- top-k peak memory (MiB, inputs + outputs + working): "
              + ", ".join(f"{k_} {v:.0f}" for k_, v in mems.items()))
    if tk and ref:
        print(f"- topkSimilarity k=10 8192x65536x1024 bf16: {ref / tk:.2f}x torch matmul+topk (target > 1x): "
              f"{'MET' if tk < ref else 'NOT MET'}")
    for r in perf:
        if r[1].startswith("unigap pairedCosine") and r[2] == "bf16":
            pct = float(r[6])
            print(f"- pairedCosine [65536,1024] bf16: {pct:.1f}% of copy bandwidth (target >= 85%): "
                  f"{'MET' if pct >= 85 else 'NOT MET'}")


def parse(path, tag):
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            if line.startswith(tag):
                rows.append(line.rstrip("\n").split("|"))
    return rows


def table(args):
    perf_all = parse(args.harness, "PERF|")
    perf_sim = parse(args.harness, "PERF_SIM|")
    sim_rows = parse(getattr(args, "torch_sim", None), "TORCH|")
    mem_rows = parse(args.harness, "PERF_MEM|") + parse(getattr(args, "torch_sim", None), "TORCH_MEM|")
    perf = [r for r in perf_all if not r[1].startswith("unigap pairedCosine")]
    ratios = parse(args.harness, "PERF_RATIO|")
    torch_rows = parse(args.torch, "TORCH|")
    skipped = parse(args.torch, "TORCH_SKIPPED|") + parse(args.torch, "TORCH_INFO|")
    gpu = ""
    if args.gpu and os.path.exists(args.gpu):
        with open(args.gpu) as f:
            rows = [l.strip() for l in f if l.strip()]
        gpu = rows[-1] if len(rows) > 1 else ""
    print(f"# unigap CUDA kernels vs PyTorch ({gpu or 'GPU unknown'})\n")
    # GPU name, driver (gpu.csv), CUDA version, commit and date (run.sh --meta), so every figure is traceable.
    if getattr(args, "meta", None):
        print("| " + " | ".join(kv.split("=", 1)[0] for kv in args.meta.split(";")) + " |")
        print("|" + "---|" * len(args.meta.split(";")))
        print("| " + " | ".join(kv.split("=", 1)[1] if "=" in kv else "" for kv in args.meta.split(";")) + " |\n")
    if not perf:
        print("No harness PERF lines: the CUDA perf tests did not run (no device, or the build failed).")
    copy = None
    for r in perf_all:
        if r[1].startswith("copy_d2d"):
            copy = float(r[5])
    eager = {}
    for r in torch_rows:
        eager[(r[1], r[2])] = float(r[4])
    print("| op | dtype | shape | ms (median) | GB/s | % of D2D copy GB/s | speed-up vs torch eager fwd |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in perf:
        name, dt, shape, ms, gbps, pct = r[1], r[2], r[3], float(r[4]), float(r[5]), float(r[6])
        ref = eager.get(("torch eager log_softmax+gather (forward)", dt))
        sp = f"{ref / ms:.2f}x" if ref and "forward" in name and "fwd+bwd" not in name else ""
        print(f"| {name} | {dt} | {shape} | {ms:.3f} | {gbps:.0f} | {pct:.1f} | {sp} |")
    torch_rows = [r for r in torch_rows if "normalize" not in r[1] and "cosine" not in r[1]]  # issue 9 rows: below
    for r in torch_rows:
        name, dt, shape, ms = r[1], r[2], r[3], float(r[4])
        bytes_ = N * V * (2 if dt == "bf16" else 4)
        gbps = bytes_ / (ms * 1e-3) / 1e9
        pct = f"{100 * gbps / copy:.1f}" if copy else ""
        print(f"| {name} | {dt} | {shape} | {ms:.3f} | {gbps:.0f} | {pct} | |")
    for r in skipped:
        print(f"\n{r[0]}: {' | '.join(r[1:])}")

    print("\n## Targets (issue 8)\n")
    fwd = {r[2]: float(r[4]) for r in perf if r[1] == "unigap forward"}
    fwd_pct = {r[2]: float(r[6]) for r in perf if r[1] == "unigap forward"}
    for dt in ("bf16", "f32"):
        if dt in fwd_pct:
            ok = fwd_pct[dt] >= 85.0
            print(f"- forward {dt}: {fwd_pct[dt]:.1f}% of copy bandwidth (target >= 85%): {'MET' if ok else 'NOT MET'}")
        ref = eager.get(("torch eager log_softmax+gather (forward)", dt))
        if dt in fwd and ref:
            sp = ref / fwd[dt]
            print(f"- forward {dt}: {sp:.2f}x torch eager (target >= 2x): {'MET' if sp >= 2 else 'NOT MET'}")
        elif dt in fwd:
            print(f"- forward {dt}: torch eager not measured (no verdict on the 2x target)")
    for r in ratios:
        dt, what, val = r[1], r[2], float(r[3])
        limit = 2.2 if "fwd+bwd/forward" in what else 1.1
        print(f"- {what} {dt}: {val:.3f} ({r[4]}; {r[5]}): {'MET' if val <= limit else 'NOT MET'}")
    sim_table(perf_sim, perf_all, sim_rows, copy, mem_rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--harness")
    ap.add_argument("--torch")
    ap.add_argument("--gpu")
    ap.add_argument("--sim", action="store_true")
    ap.add_argument("--torch-sim", dest="torch_sim")
    ap.add_argument("--meta", help="gpu=...;driver=...;cuda=...;commit=...;date=... (printed first)")
    args = ap.parse_args()
    if args.sim:
        run_torch_sim(args.out)
        return 0
    if args.table:
        table(args)
        return 0
    run_torch(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
