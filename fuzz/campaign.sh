#!/usr/bin/env bash
# The fuzzing campaign (outside CI): runs each target until it has had
# CPU_MINUTES of CPU, in chunks so that time lost to a busy machine is not
# counted, then minimises its corpus into fuzz/corpus/<target> (what
# `make test` replays) and writes its figures to fuzz/results/<target>.txt.
#   fuzz/campaign.sh [target...]      (default: every target; CPU_MINUTES=30)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is
# enough with RUSTC_BOOTSTRAP=1 and no sanitizer (-s none).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/libfuzzer"
export RUSTC_BOOTSTRAP=1
minutes=${CPU_MINUTES:-30}
chunk=${CHUNK_SECONDS:-300}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header decrypt_stream decrypt_range range_header s3_event kms_event)
cargo fuzz build --fuzz-dir . -s none -O >/dev/null
mkdir -p "$here/results" work artifacts
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    cp -n "$here/corpus/$t/"* "work/$t/" 2>/dev/null || true
    log="$here/results/$t.log"; : > "$log"
    cpu=0; execs=0; crashes=0; chunks=0
    while [ "$cpu" -lt $((minutes * 60)) ]; do
        set +e
        /usr/bin/time -f "%U %S" -o time.$t.out \
            "target/x86_64-unknown-linux-gnu/release/$t" "work/$t" \
            -max_total_time="$chunk" -print_final_stats=1 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="artifacts/$t/" >chunk.$t.log 2>&1
        status=$?
        set -e
        # The last line: /usr/bin/time puts "Command exited with non-zero status" above.
        used=$(tail -1 time.$t.out 2>/dev/null | awk '{printf "%d", $1+$2}')
        used=${used:-0}
        cpu=$((cpu + used)); chunks=$((chunks + 1))
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' chunk.$t.log | tail -1)
        execs=$((execs + ${n:-0}))
        cov=$(grep -E '^#[0-9]+' chunk.$t.log | grep -o 'cov: [0-9]*' | tail -1 || true)
        ft=$(grep -E '^#[0-9]+' chunk.$t.log | grep -o 'ft: [0-9]*' | tail -1 || true)
        echo "chunk $chunks: status $status, cpu ${used}s (total ${cpu}s), execs ${n:-0}, $cov $ft" >> "$log"
        if [ "$status" -ne 0 ]; then
            crashes=$((crashes + 1))
            grep -E 'panicked|ERROR|artifact' chunk.$t.log | head -5 >> "$log"
            # A finding stops the target: fix it, add a regression test, rerun.
            [ "$crashes" -lt 3 ] || break
        fi
    done
    # The seeds and the inputs that found bugs stay; what the campaign found
    # joins them only where it adds coverage (libFuzzer's merge, i.e. cargo
    # fuzz cmin).
    find "$here/corpus/$t" -type f ! -name 'seed-*' ! -name 'regression-*' -delete
    "target/x86_64-unknown-linux-gnu/release/$t" -merge=1 "$here/corpus/$t" "work/$t" >merge.$t.log 2>&1
    {
        echo "target: $t"
        echo "cpu_seconds: $cpu"
        echo "chunks: $chunks"
        echo "executions: $execs"
        echo "last: $(tail -1 "$log")"
        echo "crashing_chunks: $crashes"
        echo "artifacts: $(ls "artifacts/$t" | wc -l)"
        echo "corpus_kept: $(ls "$here/corpus/$t" | wc -l) of $(ls "work/$t" | wc -l)"
        grep -E '^MERGE-OUTER: [0-9]+ new files' merge.$t.log || true
        echo "finished: $(date -u +%FT%TZ)"
    } > "$here/results/$t.txt"
done
