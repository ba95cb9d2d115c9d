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
"$venv/moto/bin/python" "$root/infra/local/moto_launcher.py" --port 0 >"$work/moto.out" 2>"$work/moto.err" &
moto=$!
trap 'kill $moto 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do grep -q '^READY ' "$work/moto.out" 2>/dev/null && break; sleep 0.25; done
export AWS_ENDPOINT_URL="$(sed -n 's/^READY //p' "$work/moto.out")" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
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
measure decrypt "$bin" decrypt --context org=bench "$work/in.esdk" "$work/out.bin"
cmp "$work/in.bin" "$work/out.bin" && echo "round trip: identical"
