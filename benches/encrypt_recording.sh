#!/usr/bin/env bash
# encrypt-recording on a large recording (SIZE_MIB, default 1024) through the
# real handler on the local AWS, against a plain streamed S3 copy of the same
# object with the same SDK and the same part size; as a ratio (target: at
# most 1.3), and the handler's peak memory (target: under 128 MiB whatever
# the size), each phase in its own process under /usr/bin/time -v.
# ROUNDS (default 2) repeats both and keeps the best time of each.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
rounds="${ROUNDS:-2}"
bash "$root/infra/local/setup.sh"
cargo build --profile perf -p e2e --example encrypt_bench --manifest-path "$root/Cargo.toml"
bench="$root/target/perf/examples/encrypt_bench"
work="$(mktemp -d "${TMPDIR:-/tmp}/callvault-encbench.XXXXXX")"
venv="$root/infra/local/.venv"
trap 'kill "${local_aws_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
source "$root/infra/local/local-aws.sh"
start_local_aws "$work"
state="$work/state.json"
run() { # phase -> "seconds peak_MiB"
  /usr/bin/time -v "$bench" "$1" "$state" >"$work/out.txt" 2>"$work/time.txt" || { cat "$work/out.txt" "$work/time.txt" >&2; exit 1; }
  local secs kib
  secs=$(sed -n 's/^SECONDS //p' "$work/out.txt")
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  echo "$secs $(echo "$kib/1024" | bc -l)"
}
best_copy=999999 best_handler=999999 peak_copy=0 peak_handler=0
for r in $(seq 1 "$rounds"); do
  "$bench" prepare "$state" "$size_mib"
  read -r s m < <(run copy)
  printf 'round %d: plain S3 copy   %8.2f s  peak RSS %6.1f MiB\n' "$r" "$s" "$m"
  best_copy=$(echo "if ($s < $best_copy) $s else $best_copy" | bc -l); peak_copy=$(echo "if ($m > $peak_copy) $m else $peak_copy" | bc -l)
  read -r s m < <(run handler)
  printf 'round %d: encrypt-recording %6.2f s  peak RSS %6.1f MiB\n' "$r" "$s" "$m"
  best_handler=$(echo "if ($s < $best_handler) $s else $best_handler" | bc -l); peak_handler=$(echo "if ($m > $peak_handler) $m else $peak_handler" | bc -l)
done
printf 'RESULT size_mib=%d copy_s=%.2f handler_s=%.2f ratio=%.2f handler_peak_mib=%.1f copy_peak_mib=%.1f\n' \
  "$size_mib" "$best_copy" "$best_handler" "$(echo "$best_handler / $best_copy" | bc -l)" "$peak_handler" "$peak_copy"
