#!/usr/bin/env bash
# playback on a large recording (SIZE_MIB, default 1024) on the local AWS:
# the recording is encrypted by the real encrypt-recording handler, then
# 64 KiB ranges are played through the real playback handler. Prints the
# bytes read from S3 per range (target: the header once, then at most 2
# frames), and the time to first byte with the key cached against a plain S3
# ranged GET of the same size, as a ratio (SAMPLES, default 60, interleaved).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
samples="${SAMPLES:-60}"
bash "$root/infra/local/setup.sh"
cargo build --profile perf -p e2e --example playback_bench --manifest-path "$root/Cargo.toml"
work="$(mktemp -d "${TMPDIR:-/tmp}/callvault-playbench.XXXXXX")"
trap 'kill "${local_aws_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
source "$root/infra/local/local-aws.sh"
start_local_aws "$work"
"$root/target/perf/examples/playback_bench" "$size_mib" "$samples"
