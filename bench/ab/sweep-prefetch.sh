#!/usr/bin/env bash
# A/B of the AVX-512 log-prob sweep's default software prefetch (native/cpu/logprobs/avx512_impl.h,
# kSweepPrefetch, used where no distance is passed): the current header rewritten once per variant
# (the distance and hint replaced) and timed interleaved by header-ab.sh, with a plain read probe, on
# [4096, 32000] logits. Not part of the package or the tests; a tool for the figures in the
# kSweepPrefetch comment. Needs g++ and an AVX-512 CPU.
#
#   bash bench/ab/sweep-prefetch.sh [REPS THREADS DTYPE FUSED] -- NAME:F32_BYTES:16BIT_BYTES:HINT ...
#   e.g. bash bench/ab/sweep-prefetch.sh 31 2 0 0 -- 4K:4096:8192:_MM_HINT_T0 6K:6144:12288:_MM_HINT_T0
# DTYPE 0 = f32, 1 = bf16; FUSED 1 also runs the row gradient after the statistics. The first variant
# is the reference of the paired ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "usage: $0 [REPS THREADS DTYPE FUSED] -- NAME:F32:16BIT:HINT ..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
variants=()
for v in "$@"; do
  IFS=: read -r name a b h <<< "$v"
  sed -e "s/constexpr int64_t kSweepPrefetch = .*;/constexpr int64_t kSweepPrefetch = sizeof(T) == 4 ? $a : $b;/" \
    -e "s/_MM_HINT_T0)/$h)/g" "$root/native/cpu/logprobs/avx512_impl.h" > "$work/$name.h"
  grep -q "sizeof(T) == 4 ? $a : $b;" "$work/$name.h" || { echo "kSweepPrefetch not found in avx512_impl.h" >&2; exit 1; }
  variants+=("$name:$work/$name.h")
done
bash "$here/header-ab.sh" "${args[@]}" -- "${variants[@]}"
