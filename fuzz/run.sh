#!/bin/bash
# Runs each fuzzer (build/fuzz/bin) for FUZZ_TIME seconds, one after the
# other, on a working corpus in build/fuzz/corpus/NAME seeded from
# fuzz/corpus/NAME, and prints executions per second and corpus size.
# A failure leaves its input in build/fuzz/artifacts/NAME/ and the log in
# build/fuzz/logs/NAME.log; the script then exits 1 after the others ran.
#
#   fuzz/run.sh [SECONDS] [NAME...]
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BUILD:-$REPO/build}/fuzz
TIME=${1:-${FUZZ_TIME:-60}}
shift || true
names=${*:-$(cd "$REPO/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}

mkdir -p "$OUT/logs"
failed=""
summary="$OUT/summary.txt"
printf '%-12s %10s %10s %8s %10s  %s\n' fuzzer runs exec/s corpus bytes \
    result > "$summary"

for name in $names; do
    bin="$OUT/bin/fuzz_$name"
    corpus="$OUT/corpus/$name"
    art="$OUT/artifacts/$name"
    log="$OUT/logs/$name.log"
    mkdir -p "$corpus" "$art"

    # the reproducers of past findings must keep passing
    for f in "$REPO"/fuzz/crashes-found/"$name"-*; do
        [ -f "$f" ] || continue
        if ! "$bin" "$f" > "$log.replay" 2>&1; then
            echo "fuzz_$name: reproducer $f fails again"
            failed="$failed $name"
        fi
    done

    echo "fuzz_$name: ${TIME}s"
    "$bin" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$art/" \
        "$corpus" "$REPO/fuzz/corpus/$name" > "$log" 2>&1
    rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)

    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (rc $rc, see $log)"
        failed="$failed $name"
        grep -m3 -A2 'PROPERTY FAILED\|ERROR: \|runtime error' "$log"
        ls "$art" | sed "s|^|  input: $art/|"
    fi

    printf '%-12s %10s %10s %8s %10s  %s\n' "$name" "${runs:-?}" \
        "${eps:-?}" "$files" "$bytes" "$result" | tee -a "$summary"
done

echo
cat "$summary"

if [ -n "$failed" ]; then
    echo "fuzzers that failed:$failed"
    exit 1
fi
