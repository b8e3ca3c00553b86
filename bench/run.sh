#!/bin/bash
# The benchmark (not a test), docs/benchmark.md: wrk against each scenario
# and against a bare "return 302" in the same nginx, same run, one worker,
# wrk on the other core; bare and scenario alternate, BENCH_ROUNDS times
# (4).  Prints requests/s, the worker's CPU microseconds per request (on-CPU
# time from /proc/PID/schedstat) and the ratios to bare (the median of the
# rounds' ratios, and their range); then the do-it-yourself kit
# (../shared/bench-anchors/diy.conf) measured the same way, the cost of the
# link options path over core, the latency added at 50% and 90% of bare's
# saturation rate, and the 1M-line link table (bench/big-table.sh, unless
# BENCH_NO_BIG is set).  Usage: bench/run.sh [SECONDS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-3}
rounds=${BENCH_ROUNDS:-4}
export BENCH_DIR=${BENCH_DIR:-/tmp/affiliate-bench}
dir=$BENCH_DIR
port=${BENCH_PORT:-18090}
. "$top/bench/lib.sh"

sh "$top/scripts/deps.sh" bench
bench_data
rm -f "$dir/affiliate.log" "$dir/kit.log" "$dir/records"
kit=yes
kit_data || kit=no

# the worker's on-CPU time in nanoseconds
cpu_ns() { awk '{ print $1 }' /proc/"$1"/schedstat; }

start() {
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
    sleep 0.5
    worker=$(pgrep -P "$(cat "$dir/nginx.pid")")
}

# Each nginx starts with an empty log: appending to the gigabytes the
# scenarios before wrote (and their dirty pages being written back) cost
# the worker's write() up to 2 ns a byte on this VM's ext4, which charged
# each scenario for the I/O of the ones before it.  Lines and bytes are
# counted before the file goes.
stop() {
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" -s quit 2>/dev/null
    while [ -e "$dir/nginx.pid" ]; do sleep 0.1; done
    if [ -f "$dir/affiliate.log" ]; then
        wc -lc < "$dir/affiliate.log" >> "$dir/records"
        rm -f "$dir/affiliate.log"
    fi
    rm -f "$dir/kit.log"
}

# $1: location prefix, $2: slug file, [$3: seconds]; prints "rps
# cpu_us_per_request"
measure() {
    local t0 t1 out
    t0=$(cpu_ns "$worker")
    out=$(BENCH_PREFIX=$1 BENCH_SLUGS=$2 wrk -t1 -c64 -d"${3:-$secs}s" \
          -s "$top/bench/wrk.lua" "http://127.0.0.1:$port/")
    t1=$(cpu_ns "$worker")
    echo "$out" | awk -v t=$((t1 - t0)) '
        /^ *[0-9]+ requests in/ { n = $1 }
        /Requests\/sec/ { r = $2 }
        END { printf "%.0f %.2f\n", r, t / 1000 / n }'
}

# $1: name, $2: prefix, $3: slug file.  After a warm-up, bare and the
# scenario alternate $rounds times; the ratios are the median of the
# rounds' ratios (each round's two measurements are seconds apart), the
# rates and CPU times the means; last, the rounds' lowest and highest CPU
# ratio.
scenario() {
    local i out=""
    start
    measure /bare/ slugs.txt 2 >/dev/null
    measure "$2" "$3" 2 >/dev/null
    for i in $(seq "$rounds"); do
        out="$out $(measure /bare/ slugs.txt) $(measure "$2" "$3")"
    done
    stop
    echo "$out" | awk -v name="$1" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
                    t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        {
            n = NF / 4
            for (i = 1; i <= n; i++) {
                br += $(4 * i - 3); bc += $(4 * i - 2)
                mr += $(4 * i - 1); mc += $(4 * i)
                rr[i] = $(4 * i - 1) / $(4 * i - 3)
                cr[i] = $(4 * i) / $(4 * i - 2)
            }
            rm = median(rr, n); cm = median(cr, n)
            printf "%-12s %7.0f %6.2f | %7.0f %6.2f | %5.3f %5.3f" \
                   "  (cpu %.3f-%.3f)\n", name, br / n, bc / n, mr / n,
                   mc / n, rm, cm, cr[1], cr[n] }' | tee -a "$dir/table"
}

# paced wrk: $1 prefix, $2 connections, $3 seconds
paced() {
    BENCH_PREFIX=$1 BENCH_SLUGS=slugs.txt BENCH_DELAY=2 \
        wrk -t1 -c"$2" -d"$3s" --latency -s "$top/bench/wrk.lua" \
        "http://127.0.0.1:$port/"
}

# latency at a paced rate: $1 prefix, $2 rate; prints "rps p50_us p99_us"
latency() {
    local c r
    # each connection waits 2 ms (wrk's delay() counts whole milliseconds)
    # after an answer: a 1 s trial finds how many connections give the rate
    c=$(( ($2 * 2 + 500) / 1000 ))
    r=$(paced "$1" "$c" 1 | awk '/Requests\/sec/ { printf "%d", $2 }')
    c=$(( r > 0 ? c * $2 / r : c ))
    c=$(( c < 1 ? 1 : c ))
    paced "$1" "$c" "$secs" | awk '
        function us(v) {
            if (v ~ /us$/) return v + 0;
            if (v ~ /ms$/) return v * 1000;
            return v * 1000000 }
        /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) }
        /Requests\/sec/ { r = $2 }
        END { printf "%.0f %.0f %.0f\n", r, p50, p99 }'
}

echo "nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||'), wrk $(wrk -v 2>&1 \
    | awk 'NR == 1 { print $2 }'), $(nproc) CPUs, load $(cut -d' ' -f1-3 \
    /proc/loadavg), $rounds rounds of ${secs}s per measurement"
: > "$dir/table"
echo "scenario        bare rps  us/req |  module  us/req | rps   cpu (ratios to bare)"

conf_core
scenario core /go/ slugs.txt
scenario options /go/ slugs-options.txt
conf_geo
scenario geo-city /go/ slugs.txt
conf_attribution
scenario attribution /r/ slugs.txt
if [ $kit = yes ]; then
    conf_kit
    scenario kit /kit/ slugs.txt
fi

awk '$1 == "core" { c = $6 - $3 } $1 == "options" { o = $6 - $3 }
     END { printf "options path: %+.2f us/request over core " \
                  "(each minus its own bare)\n", o - c }' "$dir/table"

# latency: bare's saturation rate is the mean of the bare columns above
sat=$(awk '{ s += $2; n++ } END { printf "%d", s / n }' "$dir/table")
echo "latency (us), paced, bare saturation about $sat rps:"
echo "load  scenario      rps   p50   p99 | bare rps   p50   p99 | added p50 p99"
for s in core:/go/ attribution:/r/; do
    conf_${s%%:*}
    start
    for pct in 50 90; do
        rate=$((sat * pct / 100))
        b=$(latency /bare/ $rate)
        m=$(latency "${s#*:}" $rate)
        echo "$m $b" | awk -v pct=$pct -v name="${s%%:*}" '{
            printf "%3d%%  %-11s %6d %5d %5d | %8d %5d %5d | %+5d %+5d\n",
                   pct, name, $1, $2, $3, $4, $5, $6, $2 - $5, $3 - $6 }'
    done
    stop
done
awk '{ n += $1; b += $2 } END {
        printf "records written: %d, %.0f bytes on average\n", n, b / n }' \
    "$dir/records"
[ -n "${BENCH_NO_BIG:-}" ] || bash "$top/bench/big-table.sh"
