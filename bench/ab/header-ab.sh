#!/usr/bin/env bash
# A/B of versions of the AVX-512 log-prob kernels (native/cpu/logprobs/avx512_impl.h): each variant
# compiled into one driver in its own namespace and timed interleaved per repetition with a plain
# read probe, on [4096, 32000] logits (the driver is header_ab_main.h). Not part of the package or the
# tests; a tool for before / after figures of kernel changes. Needs g++ and AVX-512. A variant is
#   NAME:HEADER                      a version of the header (e.g. from git show), or
#   NAME:F32_BYTES:16BIT_BYTES:HINT  the current header with its default prefetch (kSweepPrefetch)
#                                    and hint replaced (the figures in the kSweepPrefetch comment)
#
#   bash bench/ab/header-ab.sh [REPS THREADS DTYPE FUSED] -- VARIANT ...
#   e.g. git show 75adfb5:native/cpu/logprobs/avx512_impl.h > /tmp/old.h
#        bash bench/ab/header-ab.sh 21 2 0 0 -- old:/tmp/old.h new:native/cpu/logprobs/avx512_impl.h
#        bash bench/ab/header-ab.sh 31 2 0 0 -- 4K:4096:8192:_MM_HINT_T0 6K:6144:8192:_MM_HINT_T0
# DTYPE 0 = f32, 1 = bf16; FUSED 1 also runs the row gradient after the statistics. The first
# variant is the reference of the paired ratios. Each header is called with flags 0 (its defaults).
# AB_V=n sets the row length (default 32000); AB_L2ROWS=k makes each thread cycle over k rows of its
# own (rows that fit L2: the kernels' compute alone), e.g.
#   AB_L2ROWS=8 bash bench/ab/header-ab.sh 61 1 1 0 -- old:/tmp/old.h new:native/cpu/logprobs/avx512_impl.h
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "usage: $0 [REPS THREADS DTYPE FUSED] -- NAME:HEADER | NAME:F32:16BIT:HINT ..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/native/cpu/logprobs/kernels.h" "$work/"
{
  printf '%s\n' '#include <immintrin.h>' '#include <algorithm>' '#include <chrono>' '#include <cmath>' '#include <cstdint>' \
    '#include <cstdio>' '#include <cstdlib>' '#include <cstring>' '#include <limits>' '#include <thread>' '#include <vector>' \
    '#include "kernels.h"' \
    'typedef void (*Fn)(const void *, int64_t, float, int, ::unigap::logprobs::RowStats *);' \
    'typedef void (*Gn)(const void *, void *, int64_t, float, float, float, int);'
  i=0
  for v in "$@"; do
    IFS=: read -r name h b hint <<< "$v"
    if [ -n "$hint" ]; then  # the current header, its default prefetch distance and hint replaced
      sed -e "s/constexpr int64_t kSweepPrefetch = .*;/constexpr int64_t kSweepPrefetch = sizeof(T) == 4 ? $h : $b;/" \
        -e "s/_MM_HINT_T0)/$hint)/g" "$root/native/cpu/logprobs/avx512_impl.h" > "$work/src$i.h"
      grep -q "sizeof(T) == 4 ? $h : $b;" "$work/src$i.h" || { echo "kSweepPrefetch not found in avx512_impl.h" >&2; exit 1; }
      h="$work/src$i.h"
    fi
    [ -f "$h" ] || { echo "no such header: $h" >&2; exit 2; }
    # includable once per variant: no include guard
    sed -e 's/^#ifndef UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H/#if 1/' -e 's/^#define UNIGAP_CPU_LOGPROBS_AVX512_IMPL_H//' "$h" > "$work/h$i.h"
    printf 'namespace v%d { namespace unigap { namespace logprobs { using namespace ::unigap::logprobs; } } }\n' $i
    printf 'namespace v%d {\n#include "h%d.h"\n}\n#undef UNIGAP_AI\n#undef UNIGAP_AI_LAMBDA\n' $i $i
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
  printf '#include "%s"\n' "$here/header_ab_main.h"
} > "$work/ab.cpp"
g++ -O3 -std=c++17 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c -Wno-uninitialized -pthread \
  -I"$root/native/include" -I"$work" "$work/ab.cpp" -o "$work/ab"
"$work/ab" "${args[@]}"
