#!/usr/bin/env bash
# The thread-pool hang on a many-core host (16 cores on the H200 machines): the CPU pool before
# commit 16d4c75 could lose a region's completion count, and 3 of 31 similarity checks then hung in one
# run. This runs, with every core: native/tests/tsan/pool_stress.cpp against the current pool, and
# against an older pool source when one is given (expected to hang: timeout = the old bug), then the
# three checks that hung, REPS times each, each in its own process under a timeout.
#   bench/device/pool_check.sh HARNESS [OLD_THREADPOOL_CPP]      (REPS, default 5)
set -uo pipefail
cd "$(dirname "$0")/../.."
H="$1"
OLD="${2:-}"
status=0
g++ -O2 -std=c++17 -pthread -Inative/include native/tests/tsan/pool_stress.cpp native/cpu/threadpool.cpp -o /tmp/pool_new || exit 2
timeout 60 /tmp/pool_new 200000 || { echo "POOL|new|FAIL (exit $?)"; status=1; }
if [ -n "$OLD" ] && [ -f "$OLD" ]; then
  g++ -O2 -std=c++17 -pthread -Inative/include native/tests/tsan/pool_stress.cpp "$OLD" -o /tmp/pool_old || exit 2
  timeout 20 /tmp/pool_old 200000; rc=$?
  [ $rc -eq 124 ] && echo "POOL|old|hung (no finish in 20 s): the bug reproduced" || echo "POOL|old|exit $rc (did not hang this time)"
fi
for name in cuda/emulated/similarity cuda/emulated/similarity_tc cuda/similarity/all_ops_vs_cpu; do
  ok=0
  for r in $(seq "${REPS:-5}"); do
    timeout 30 "$H" "=$name" >/dev/null 2>&1 && ok=$((ok + 1))
  done
  echo "POOL|$name|$ok of ${REPS:-5} runs passed"
  [ "$ok" -eq "${REPS:-5}" ] || status=1
done
exit $status
