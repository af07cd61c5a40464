#!/usr/bin/env bash
# Instructions per decode (valgrind callgrind), ours and the crates.io cwmp crate, on the same
# bytes as the criterion benchmark. Instruction counts repeat from run to run, where wall-clock
# time on a shared 2-core VM does not. Needs valgrind (Debian package valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --manifest-path bench-compare/Cargo.toml --target-dir target --example count
bin=target/release/examples/count
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 | grep -o 'refs: *[0-9,]*' | tr -dc 0-9
}
n=20
printf '%-18s %14s %14s %7s\n' case ours crates.io ratio
for c in inform_60 gpv_response_500; do
  o=$(( ($(count ours "$c" "$n") - $(count ours "$c" 0)) / n ))
  t=$(( ($(count theirs "$c" "$n") - $(count theirs "$c" 0)) / n ))
  printf '%-18s %14d %14d %6.1fx\n' "$c" "$o" "$t" "$(awk -v a="$t" -v b="$o" 'BEGIN { print a / b }')"
done
