#!/usr/bin/env bash
# Re-keying on the local AWS.
#  1. One recording of SIZE_MIB (default 1024) re-keyed by the rekey handler
#     (a schema 2.0 task: read, decrypt, encrypt as a new message, write a
#     new version, verify, move the catalog row), against a plain streamed S3
#     copy of the same vault object with the same SDK and part size: the
#     ratio (target: at most 1.3) and the handler's peak memory (target:
#     under 128 MiB), each phase in its own process under /usr/bin/time -v.
#     ROUNDS (default 2) repeats both (moving A->B, then B->A, ...) and keeps
#     the best time of each.
#  2. `callvault rekey --local` over MANY (default 100) 1 MiB recordings with
#     WORKERS (default 4) workers: recordings per second.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
rounds="${ROUNDS:-2}"
many="${MANY:-100}"
workers="${WORKERS:-4}"
bash "$root/infra/local/setup.sh"
cargo build --profile perf -p e2e --example rekey_bench --manifest-path "$root/Cargo.toml"
cargo build --profile perf -p callvault --manifest-path "$root/Cargo.toml"
bench="$root/target/perf/examples/rekey_bench"
callvault="$root/target/perf/callvault"
work="$(mktemp -d "${TMPDIR:-/tmp}/callvault-rekeybench.XXXXXX")"
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
"$bench" prepare "$state" "$size_mib"
best_copy=999999 best_rekey=999999 peak_copy=0 peak_rekey=0
for r in $(seq 1 "$rounds"); do
  read -r s m < <(run copy)
  printf 'round %d: plain S3 copy %8.2f s  peak RSS %6.1f MiB\n' "$r" "$s" "$m"
  best_copy=$(echo "if ($s < $best_copy) $s else $best_copy" | bc -l); peak_copy=$(echo "if ($m > $peak_copy) $m else $peak_copy" | bc -l)
  read -r s m < <(run rekey)
  printf 'round %d: rekey          %8.2f s  peak RSS %6.1f MiB\n' "$r" "$s" "$m"
  best_rekey=$(echo "if ($s < $best_rekey) $s else $best_rekey" | bc -l); peak_rekey=$(echo "if ($m > $peak_rekey) $m else $peak_rekey" | bc -l)
done
printf 'RESULT size_mib=%d copy_s=%.2f rekey_s=%.2f ratio=%.2f rekey_peak_mib=%.1f copy_peak_mib=%.1f\n' \
  "$size_mib" "$best_copy" "$best_rekey" "$(echo "$best_rekey / $best_copy" | bc -l)" "$peak_rekey" "$peak_copy"

"$bench" many "$state" "$many" >"$work/many.txt"
eval "export $(grep '^CATALOG_TABLE=' "$work/many.txt")"
export RECORDING_KEYS="$(sed -n 's/^RECORDING_KEYS=//p' "$work/many.txt")"
start=$(date +%s.%N)
"$callvault" rekey --type many --from-key "$FROM_KEY" --to-key "$TO_KEY" --local --workers "$workers" \
  --report "$work/report.csv" | tail -1
end=$(date +%s.%N)
printf 'RESULT local_recordings=%d local_mib_each=1 workers=%d wall_s=%.2f recordings_per_s=%.1f\n' \
  "$many" "$workers" "$(echo "$end - $start" | bc -l)" "$(echo "$many / ($end - $start)" | bc -l)"
