#!/usr/bin/env bash
# A/B of the AVX-512 log-prob sweep's software prefetch (native/cpu/logprobs/avx512_impl.h,
# kSweepPrefetch): compiles the current header once per variant into one driver (each in its own
# namespace, the prefetch distance and hint replaced) and times the variants interleaved per repetition,
# with a plain read probe, on [4096, 32000] logits. Not part of the package or the tests; a tool for
# the figures in the kSweepPrefetch comment. Needs g++ and an AVX-512 CPU.
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
cp "$root/native/cpu/logprobs/kernels.h" "$work/"
# The header, made includable once per variant: no include guard, the distance and hint from macros.
sed -e 's/^#ifndef UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H/#if 1/' -e 's/^#define UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H//' \
    -e 's/constexpr int64_t kSweepPrefetch = .*;/constexpr int64_t kSweepPrefetch = sizeof(T) == 4 ? PF_F32 : PF_16;/' \
    -e 's/_MM_HINT_T0)/PF_HINT)/g' "$root/native/cpu/logprobs/avx512_impl.h" > "$work/avx512_impl.h"
grep -q 'PF_F32 : PF_16' "$work/avx512_impl.h" || { echo "kSweepPrefetch not found in avx512_impl.h" >&2; exit 1; }
{
  printf '%s\n' '#include <immintrin.h>' '#include <algorithm>' '#include <chrono>' '#include <cmath>' '#include <cstdint>' \
    '#include <cstdio>' '#include <cstdlib>' '#include <cstring>' '#include <limits>' '#include <thread>' '#include <vector>' \
    '#include "kernels.h"' \
    'typedef void (*Fn)(const void *, int64_t, float, int, ::unigap::logprobs::RowStats *);' \
    'typedef void (*Gn)(const void *, void *, int64_t, float, float, float, int);'
  i=0
  for v in "$@"; do
    IFS=: read -r name a b h <<< "$v"
    printf 'namespace v%d { namespace unigap { namespace logprobs { using namespace ::unigap::logprobs; } } }\n' $i
    printf 'namespace v%d {\n#define PF_F32 %s\n#define PF_16 %s\n#define PF_HINT %s\n#include "avx512_impl.h"\n}\n' $i "$a" "$b" "$h"
    printf '#undef PF_F32\n#undef PF_16\n#undef PF_HINT\n#undef UNIGAP_AI\n#undef UNIGAP_AI_LAMBDA\n'
    i=$((i + 1))
  done
  printf 'static const char *names[] = {'; for v in "$@"; do printf '"%s", ' "${v%%:*}"; done; printf '};\n'
  for fn in "f32:Fn:stats:F32" "b16:Fn:stats:BF16" "g32:Gn:grad:F32" "g16:Gn:grad:BF16"; do
    IFS=: read -r arr ty f d <<< "$fn"
    printf 'static %s %s[] = {' "$ty" "$arr"
    for ((j = 0; j < i; j++)); do printf 'v%d::unigap::logprobs::%s<v%d::unigap::logprobs::%s>, ' $j "$f" $j "$d"; done
    printf '};\n'
  done
  printf 'static const int NK = %d;\n' $i
  printf '#include "%s"\n' "$here/sweep_prefetch_main.h"
} > "$work/ab.cpp"
g++ -O3 -std=c++17 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -Wno-uninitialized -pthread \
  -I"$root/native/include" -I"$work" "$work/ab.cpp" -o "$work/ab"
"$work/ab" "${args[@]}"
