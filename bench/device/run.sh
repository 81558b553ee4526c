#!/usr/bin/env bash
# unigap on a GPU machine, no Node needed: configure and build the C++ harness standalone with nvcc,
# run every CUDA check against the CPU core, run compute-sanitizer on the small cases, time the kernels
# with CUDA events (--perf), measure D2D copy bandwidth, and time PyTorch eager / torch.compile
# log_softmax + gather on the same shapes. The last thing printed is the table.
#
#   bench/device/run.sh            # writes everything to $OUT (the device tool's folder) or ./gpu-out
#   CUDA_ARCH=80 bench/device/run.sh   # another GPU generation (default 90: H100 / H200)
#   SKIP_SANITIZER=1 / SKIP_TORCH=1 shorten the run.
# Budget: about 6-7 minutes on an H100 (build < 1 min with one arch, checks ~1 min, sanitizer <= 3 min,
# perf ~0.5 min, torch <= 3 min); every step has its own timeout. At most 8 files land in $OUT:
# run.log build.log gpu.csv check.txt sanitizer.log perf.txt torch.txt table.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-gpu}"
ARCH="${CUDA_ARCH:-90}"
exec > >(tee "$OUT/run.log") 2>&1
status=0
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "environment"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory --format=csv 2>&1 | tee "$OUT/gpu.csv"
nvcc --version | tail -2
cmake --version | head -1
python3 --version 2>&1

step "configure + build (arch $ARCH)"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
t0=$(date +%s)
if ! cmake -S . -B "$BUILD" "${GEN[@]}" -DUNIGAP_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1; then
  cat "$OUT/build.log"; echo "CONFIGURE FAILED"; exit 2
fi
if ! cmake --build "$BUILD" --target unigap_harness -j"$(nproc)" >>"$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"; echo "BUILD FAILED"; exit 2
fi
echo "build: $(( $(date +%s) - t0 )) s"
H="$BUILD/unigap_harness"

step "CUDA checks vs the CPU core"
if ! timeout 240 "$H" cuda | tee "$OUT/check.txt"; then status=1; echo "CHECKS FAILED (or timed out)"; fi
grep -q "^SKIPPED" "$OUT/check.txt" && { echo "CUDA tests were SKIPPED: no usable device here"; status=1; }

if [ -z "${SKIP_SANITIZER:-}" ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer (small cases)"
  for t in "memcheck cuda/logprobs/empty_batch_and_bad_label" "memcheck cuda/dpo/from_logits_f16_in_place" \
           "racecheck cuda/logprobs/forward_f16"; do
    set -- $t
    echo "-- $1 $2"
    timeout 60 compute-sanitizer --tool "$1" --error-exitcode 3 "$H" "$2" >/tmp/unigap-sanitizer.tmp 2>&1
    rc=$?
    tail -4 /tmp/unigap-sanitizer.tmp; cat /tmp/unigap-sanitizer.tmp >>"$OUT/sanitizer.log"
    if [ $rc -eq 124 ]; then echo "   (timed out: not a failure, no verdict)"; elif [ $rc -ne 0 ]; then echo "   SANITIZER FAILED ($rc)"; status=1; fi
  done
  rm -f /tmp/unigap-sanitizer.tmp
fi

if [ -f .device/unigap.node ] && [ -f .device/node.xz ]; then
  step "Node smoke: N-API device plumbing (.device/unigap.node, a CUDA build of the addon)"
  python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.device/node.xz'),open('/tmp/node','wb'))" && chmod +x /tmp/node
  timeout 120 /tmp/node bench/device/node_smoke.mjs "$PWD/.device/unigap.node" || { status=1; echo "NODE SMOKE FAILED"; }
else
  echo "(Node smoke skipped: carry .device with unigap.node (CUDA build) and node.xz to run it)"
fi

step "perf (CUDA events, median of 7)"
timeout 180 "$H" --perf cuda/perf | tee "$OUT/perf.txt" || status=1

if [ -z "${SKIP_TORCH:-}" ]; then
  step "PyTorch baselines"
  PYTHONUNBUFFERED=1 timeout 180 python3 bench/device/torch_baseline.py --out "$OUT/torch.txt" || echo "torch baseline: failed or timed out (see above)"
fi

step "table"
python3 bench/device/torch_baseline.py --table --harness "$OUT/perf.txt" --torch "$OUT/torch.txt" --gpu "$OUT/gpu.csv" \
  | tee "$OUT/table.md"
echo "run.sh: exit $status"
exit $status
