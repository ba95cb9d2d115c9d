#!/usr/bin/env bash
# Peak memory of `callvault encrypt` and `decrypt` on a 2 GiB file, measured
# with /usr/bin/time -v against the local AWS. Target: under 64 MiB each.
# SIZE_MIB overrides the size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${SIZE_MIB:-2048}"
bash "$root/infra/local/setup.sh"
# CALLVAULT_BIN measures an existing build (its buffers, hence its peak
# memory, are the same in every profile); by default a release build.
bin="${CALLVAULT_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release -p callvault --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/callvault"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/callvault-mem.XXXXXX")"
venv="$root/infra/local/.venv"
trap 'kill "${local_aws_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
source "$root/infra/local/local-aws.sh"
start_local_aws "$work"
key="$("$venv/moto/bin/python" -c 'import boto3; print(boto3.client("kms").create_key()["KeyMetadata"]["Arn"])')"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/in.bin"
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" 2>"$work/time.txt" || { cat "$work/time.txt" >&2; exit 1; }
  local kib secs
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  printf '%-8s %6d MiB in, peak RSS %6.1f MiB, wall %s\n' "$label" "$size_mib" "$(echo "$kib/1024" | bc -l)" "$secs"
}
measure encrypt "$bin" encrypt --key "$key" --context org=bench "$work/in.bin" "$work/in.esdk"
measure decrypt "$bin" decrypt --key "$key" --context org=bench "$work/in.esdk" "$work/out.bin"
cmp "$work/in.bin" "$work/out.bin" && echo "round trip: identical"
