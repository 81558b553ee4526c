#!/usr/bin/env bash
# unigap on a GPU machine, no Node needed: configure and build the C++ harness standalone with nvcc,
# run every CUDA check against the CPU core, run compute-sanitizer on the small cases, time the kernels
# with CUDA events (--perf), measure D2D copy bandwidth, and time PyTorch eager / torch.compile
# log_softmax + gather on the same shapes, and (issue 9) the similarity kernels against F.normalize +
# matmul (cuBLAS), + torch.topk, and F.cosine_similarity. The last thing printed is the table.
#
#   bench/device/run.sh            # writes everything to $OUT (the device tool's folder) or ./gpu-out
#   CUDA_ARCH=80 bench/device/run.sh   # another GPU generation (default 90: H100 / H200)
#   SKIP_SANITIZER=1 / SKIP_TORCH=1 / SKIP_PERF=1 (checks only) shorten the run; PER_TEST_S caps each check;
#   AB_EXP2=1 also times the log-prob kernels built with exp2f instead of ex2.approx.ftz (a second build).
# Budget: about 6-7 minutes on an H100 (build < 1 min with one arch, checks ~1 min, sanitizer <= 5 min,
# perf ~0.5 min, torch <= 3 min); every step has its own timeout, capped so the whole run ends within
# BUDGET_S seconds (default 520: fits one 540-600 s device call; a step that would not fit is skipped
# and says so). At most 8 files land in $OUT:
# run.log build.log gpu.csv check.txt sanitizer.log perf.txt torch.txt table.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-gpu}"
ARCH="${CUDA_ARCH:-90}"
exec > >(tee "$OUT/run.log") 2>&1
status=0
rm -f /tmp/unigap-torch-sim.txt
step() { printf '\n== %s (%s, %d s in)\n' "$1" "$(date -u +%H:%M:%S)" "$SECONDS"; }
BUDGET="${BUDGET_S:-520}"
# cap T: the step timeout T, lowered so that the run (plus 20 s for the table) stays inside BUDGET;
# prints 0 when fewer than 15 s would be left.
cap() { local left=$(( BUDGET - 20 - SECONDS )); [ "$left" -lt 15 ] && { echo 0; return; }; [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }

step "environment"
DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "date: $DATE"
echo "commit: $COMMIT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.memory --format=csv 2>&1 | tee "$OUT/gpu.csv"
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
CUDA_DRV="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
CUDA_VER="$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)"
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

step "CUDA checks vs the CPU core (one process per test)"
# Each test runs alone under its own timeout (PER_TEST_S, default 60), so a hang or a slow test costs
# only itself and the log says which it was; the harness prints line by line, so a killed test keeps
# its output. cuda/perf/* is the perf step's.
: >"$OUT/check.txt"
if "$H" =cuda/host_checks | grep -q '^SKIPPED'; then echo "CUDA tests were SKIPPED: no usable device here"; status=1; fi
mapfile -t TESTS < <("$H" --list cuda/ | grep '^cuda/' | grep -v '^cuda/perf/')
echo "${#TESTS[@]} tests"
n_ok=0; n_fail=0; n_to=0
for name in "${TESTS[@]}"; do
  t=$(cap "${PER_TEST_S:-60}")
  if [ "$t" -eq 0 ]; then echo "SKIPPED (out of time budget): $name" | tee -a "$OUT/check.txt"; n_to=$((n_to + 1)); continue; fi
  s0=$SECONDS
  timeout "$t" "$H" "=$name" >/tmp/unigap-check.tmp 2>&1
  rc=$?
  grep -v '^unigap harness\|^[0-9]* checks$\|^harness: ' /tmp/unigap-check.tmp | tee -a "$OUT/check.txt"
  if [ $rc -eq 124 ]; then echo "TIMEOUT after ${t} s: $name" | tee -a "$OUT/check.txt"; n_to=$((n_to + 1));
  elif [ $rc -ne 0 ]; then [ $rc -ne 1 ] && echo "EXIT $rc: $name" | tee -a "$OUT/check.txt"; n_fail=$((n_fail + 1));
  else n_ok=$((n_ok + 1)); fi
  [ $((SECONDS - s0)) -ge 20 ] && echo "   ($name took $((SECONDS - s0)) s)"
done
rm -f /tmp/unigap-check.tmp
echo "checks: ${n_ok} passed, ${n_fail} failed, ${n_to} timed out or skipped" | tee -a "$OUT/check.txt"
[ "$n_fail" -eq 0 ] && [ "$n_to" -eq 0 ] && [ "${#TESTS[@]}" -gt 0 ] || { status=1; echo "CHECKS FAILED"; }

if [ -z "${SKIP_SANITIZER:-}" ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer (small cases)"
  for t in "memcheck cuda/logprobs/empty_batch_and_bad_label" "memcheck cuda/dpo/from_logits_f16_in_place" \
           "racecheck cuda/logprobs/forward_f16" "memcheck cuda/similarity/sanitize_small" \
           "racecheck cuda/similarity/sanitize_small"; do
    set -- $t
    echo "-- $1 $2"
    # keep >= 100 s for perf (~2 s of kernels) and torch (~25 s on an H200, torch.compile included)
    tl=$(( BUDGET - 120 - SECONDS )); [ "$tl" -gt 60 ] && tl=60
    if [ "$tl" -lt 15 ]; then echo "   (skipped: out of time budget)"; continue; fi
    timeout "$tl" compute-sanitizer --tool "$1" --error-exitcode 3 "$H" "$2" >/tmp/unigap-sanitizer.tmp 2>&1
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

if [ -n "${SKIP_PERF:-}" ]; then echo; echo "(perf and torch skipped: SKIP_PERF set)"; echo "run.sh: exit $status"; exit $status; fi
step "perf (CUDA events, median of 7)"
# cuda/perf/{copy_bandwidth, logprobs, dpo*, similarity}: the similarity part (matrix 8192x8192x1024 bf16 on
# tensor cores and forced SIMT, f32 with TF32; top-k k=10 on 8192x65536x1024 bf16 both ways, with peak
# memory; pairedCosine [65536,1024]) adds ~10 s.
t=$(cap 180); if [ "$t" -gt 0 ]; then timeout "$t" "$H" --perf cuda/perf | tee "$OUT/perf.txt" || status=1; else echo "(perf skipped: out of time budget)"; status=1; fi

if [ -n "${AB_EXP2:-}" ]; then
  step "perf A/B: the log-prob kernels with exp2f (-DUNIGAP_CUDA_PRECISE_EXP2) instead of ex2.approx.ftz"
  # Same sources, second build tree; only cuda/perf/logprobs runs (its lines go to run.log, not perf.txt).
  t=$(cap 90)
  if [ "$t" -gt 0 ]; then
    ( cmake -S . -B "$BUILD-exp2f" "${GEN[@]}" -DUNIGAP_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_FLAGS=-DUNIGAP_CUDA_PRECISE_EXP2 >/dev/null 2>&1 &&
      timeout "$t" cmake --build "$BUILD-exp2f" --target unigap_harness -j"$(nproc)" >/dev/null 2>&1 &&
      timeout 60 "$BUILD-exp2f/unigap_harness" --perf cuda/perf/ | grep '^PERF' | grep -v 'PERF_SIM\|PERF_MEM\|pairedCosine' | sed 's/^/EXP2F|/' ) ||
      echo "(exp2f A/B build or run failed or timed out)"
  else
    echo "(exp2f A/B skipped: out of time budget)"
  fi
fi

if [ -z "${SKIP_TORCH:-}" ]; then
  step "PyTorch baselines"
  # similarity first (quick, ~10-20 s), then the log-prob baselines (slower: torch.compile)
  t=$(cap 60); [ "$t" -gt 0 ] && { PYTHONUNBUFFERED=1 timeout "$t" python3 bench/device/torch_baseline.py --sim --out /tmp/unigap-torch-sim.txt || echo "torch similarity baseline: failed or timed out (see above)"; }
  t=$(cap 180); [ "$t" -gt 0 ] && { PYTHONUNBUFFERED=1 timeout "$t" python3 bench/device/torch_baseline.py --out "$OUT/torch.txt" || echo "torch baseline: failed or timed out (see above)"; }
  [ -f /tmp/unigap-torch-sim.txt ] && cat /tmp/unigap-torch-sim.txt >>"$OUT/torch.txt"
fi

step "table"
python3 bench/device/torch_baseline.py --table --harness "$OUT/perf.txt" --torch "$OUT/torch.txt" --torch-sim "$OUT/torch.txt" --gpu "$OUT/gpu.csv" \
  --meta "GPU=${GPU_NAME:-unknown};driver=${DRIVER:-unknown};CUDA (nvcc)=${CUDA_VER:-unknown};CUDA (driver)=${CUDA_DRV:-unknown};commit=$COMMIT;date=$DATE" \
  | tee "$OUT/table.md"
echo "run.sh: exit $status"
exit $status
