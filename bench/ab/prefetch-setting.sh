#!/usr/bin/env bash
# A/B of the log-prob sweep's prefetch setting through the library (bench/ab/prefetch_setting_main.cpp):
#   bash bench/ab/prefetch-setting.sh REPS DTYPE SETTING...   (DTYPE 0 = f32, 1 = bf16, 2 = f16; SETTING 0 = tuned,
#   N = pinned at N KiB; the first is the reference of the paired ratios; UNIGAP_THREADS=N as usual)
#   e.g. bash bench/ab/prefetch-setting.sh 21 0 6 0 12
# Needs the native build (npm install) for build/libunigap_core.a. Not part of the package or the tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -f "$root/build/libunigap_core.a" ] || { echo "build/libunigap_core.a missing: run npm install first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -O2 -std=c++17 -pthread -I"$root/native/include" "$here/prefetch_setting_main.cpp" "$root/build/libunigap_core.a" -o "$work/ab"
"$work/ab" "$@"
