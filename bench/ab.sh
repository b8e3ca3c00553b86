#!/bin/bash
# Two builds of the module compared on one scenario of bench/run.sh, the
# way docs/benchmark.md's fifth pass did it: each build in its own nginx,
# the worker pinned to CPU 1 and wrk to CPU 0, bare and the scenario
# alternating ROUNDS times (5); prints each build's median CPU ratio to
# bare and its user and system time per request (/proc/PID/stat).  Run
# it twice: on a VM two runs of one build differ by a few percent.
#
#   bench/ab.sh OLD.so NEW.so [core|geo|attribution] [SECONDS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n 2,10p "$0" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2") scen=${3:-core} secs=${4:-3} rounds=${ROUNDS:-5}
export BENCH_DIR=${BENCH_DIR:-/tmp/affiliate-bench}/ab
dir=$BENCH_DIR
port=${BENCH_PORT:-18092}
case $scen in
    attribution) prefix=/r/ ;;
    core|geo) prefix=/go/ ;;
    *) echo "ab.sh: unknown scenario $scen" >&2; exit 2 ;;
esac
. "$top/bench/lib.sh"
bench_data

# user and system clock ticks of the worker
ticks() { awk '{ print $14, $15 }' /proc/"$worker"/stat; }

# $1 prefix; prints "requests utime stime" (ticks)
measure() {
    local a b out
    a=$(ticks)
    out=$(BENCH_PREFIX=$1 taskset -c 0 wrk -t1 -c64 -d"${secs}s" \
          -s "$top/bench/wrk.lua" "http://127.0.0.1:$port/")
    b=$(ticks)
    echo "$out" | awk -v a="$a" -v b="$b" '
        /requests in/ { n = $1 }
        END { split(a, x); split(b, y); print n, y[1] - x[1], y[2] - x[2] }'
}

build() {       # $1: the module
    local i
    MODULE_SO=$1
    conf_$scen
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
    sleep 0.5
    worker=$(pgrep -P "$(cat "$dir/nginx.pid")")
    taskset -pc 1 "$worker" >/dev/null
    measure /bare/ >/dev/null
    measure "$prefix" >/dev/null
    for i in $(seq "$rounds"); do
        echo "$(measure /bare/) $(measure "$prefix")"
    done | awk -v name="$1" -v hz="$(getconf CLK_TCK)" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
                    t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        {
            r[NR] = ($5 + $6) / $4 / (($2 + $3) / $1)
            bu += $2 / $1; bs += $3 / $1; mu += $5 / $4; ms += $6 / $4
        }
        END {
            u = 1e6 / hz / NR
            printf "%s: cpu ratio %.3f (median of %d), us/request " \
                   "bare %.2f user %.2f system, module %.2f user %.2f " \
                   "system\n", name, median(r, NR), NR, bu * u, bs * u,
                   mu * u, ms * u }'
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" -s quit 2>/dev/null
    while [ -e "$dir/nginx.pid" ]; do sleep 0.1; done
    rm -f "$dir/affiliate.log"
}

echo "$scen, $rounds rounds of ${secs}s, load $(cut -d' ' -f1-3 /proc/loadavg)"
build "$old"
build "$new"
