#!/usr/bin/env python3
"""PyTorch baselines for the CUDA log-prob kernels, and the final table of bench/device/run.sh.

  torch_baseline.py --out torch.txt
      Times, on the same shapes as the harness (--perf), torch.log_softmax + gather in eager mode and
      under torch.compile (forward), and eager forward + backward, with CUDA events (median of 7 after
      warm-up). Writes TORCH|name|dtype|shape|ms lines. If torch is not importable or sees no GPU it
      writes one TORCH_SKIPPED|reason line and exits 0.

  torch_baseline.py --table --harness perf.txt --torch torch.txt [--gpu gpu.csv]
      Joins the harness PERF lines and the torch lines into one markdown table, with the targets of
      issue 8 checked where both sides were measured.
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
    perf = parse(args.harness, "PERF|")
    ratios = parse(args.harness, "PERF_RATIO|")
    torch_rows = parse(args.torch, "TORCH|")
    skipped = parse(args.torch, "TORCH_SKIPPED|") + parse(args.torch, "TORCH_INFO|")
    gpu = ""
    if args.gpu and os.path.exists(args.gpu):
        with open(args.gpu) as f:
            rows = [l.strip() for l in f if l.strip()]
        gpu = rows[-1] if len(rows) > 1 else ""
    print(f"# unigap CUDA kernels vs PyTorch ({gpu or 'GPU unknown'})\n")
    if not perf:
        print("No harness PERF lines: the CUDA perf tests did not run (no device, or the build failed).")
    copy = None
    for r in perf:
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--harness")
    ap.add_argument("--torch")
    ap.add_argument("--gpu")
    args = ap.parse_args()
    if args.table:
        table(args)
        return 0
    run_torch(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
