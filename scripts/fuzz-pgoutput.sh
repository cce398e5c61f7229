#!/usr/bin/env bash
# Coverage-guided fuzzing of the pgoutput decoder with libFuzzer (clang), seeded with
# the captured golden messages. Runs for $1 seconds (default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I"$root/src" \
  "$root/src/cdc/pgoutput_fuzz.cc" "$root/src/cdc/pgoutput.cc" -lfmt -o "$out/pgoutput_fuzz"
i=0
for f in "$root"/tests/golden/pgoutput/*.hex; do
  while read -r _ hex; do
    echo -n "$hex" | xxd -r -p > "$out/corpus/seed$i"; i=$((i + 1))
  done < "$f"
done
"$out/pgoutput_fuzz" -max_total_time="${1:-60}" "$out/corpus"
