#!/bin/bash
# Instructions per request (valgrind's callgrind), for each scenario of
# bench/run.sh beside a bare "return 302" in the same nginx: unlike CPU
# time, the count does not depend on what else runs on the machine.
# nginx runs as one process (master_process off) under callgrind; after a
# warm-up, N requests to /bare/ and N to the scenario are counted apart
# (callgrind_control dumps between them).  Prints instructions per request,
# the ratio to bare and, with BENCH_TOP=K, the K functions that add most
# (self cost, bench/cgtop.py).  BENCH_CACHESIM=1 adds valgrind's cache
# simulation (callgrind_annotate --show=DLmr,DLmw: last-level misses).
# Usage: bench/callgrind.sh [N] [SCENARIO...]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2000}
shift || true
scenarios=${*:-core options geo attribution}
export BENCH_DIR=${BENCH_DIR:-/tmp/affiliate-bench}
dir=$BENCH_DIR/callgrind
port=${BENCH_PORT:-18091}
. "$top/bench/lib.sh"

command -v valgrind >/dev/null || sh "$top/scripts/deps.sh" valgrind
bench_data

client() {     # $1: prefix, $2: slug file, $3: count
    python3 - "$port" "$1" "$dir/$2" "$3" <<'END'
import http.client, os, sys
port, prefix, slugfile, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    int(sys.argv[4])
slugs = open(slugfile).read().split()
ips = open(os.path.join(os.path.dirname(slugfile), 'ips.txt')).read().split()
c = http.client.HTTPConnection('127.0.0.1', port)
for i in range(1, n + 1):
    c.request('GET', prefix + slugs[i % len(slugs)] + '?utm_content=x',
              headers={'X-Forwarded-For': ips[i * 7 % len(ips)],
                       'User-Agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS '
                                     '17_0 like Mac OS X)',
                       'Referer': 'https://www.tiktok.com/@anna'})
    r = c.getresponse()
    r.read()
    if r.status // 100 != 3:
        sys.exit('%s: status %d' % (prefix, r.status))
END
}

dump() {    # $1: dump number; waits for callgrind to write it
    callgrind_control -d "$vg" >/dev/null
    client /bare/ slugs.txt 1       # wakes the process up
    for _ in $(seq 100); do
        [ -s "$dir/cg.out.$1" ] && return 0
        sleep 0.1
    done
    echo "callgrind dump $1 missing" >&2
    return 1
}

total() {   # instructions in a dump
    callgrind_annotate "$1" 2>/dev/null \
        | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

for s in $scenarios; do
    prefix=/go/ slugs=slugs.txt
    case $s in
    core)        conf_core "master_process off; daemon off;" ;;
    options)     conf_core "master_process off; daemon off;"
                 slugs=slugs-options.txt ;;
    geo)         conf_geo "master_process off; daemon off;" ;;
    attribution) conf_attribution "master_process off; daemon off;"
                 prefix=/r/ ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
    esac

    rm -f "$dir"/cg.out*
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
        ${BENCH_CACHESIM:+--cache-sim=yes} \
        /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" \
        > "$dir/valgrind.log" 2>&1 &
    vg=$!
    for _ in $(seq 600); do
        client /bare/ slugs.txt 1 2>/dev/null && break
        sleep 0.2
    done

    # every client address once: the geo cache is warm, as in a long run
    client /bare/ slugs.txt 1000
    client "$prefix" "$slugs" 1000
    callgrind_control -z "$vg" >/dev/null
    client /bare/ slugs.txt "$n"
    dump 1
    client "$prefix" "$slugs" "$n"
    dump 2
    kill -TERM "$vg"
    wait "$vg" || true

    mv "$dir/cg.out.1" "$dir/cg-$s-bare.out"
    mv "$dir/cg.out.2" "$dir/cg-$s.out"
    b=$(total "$dir/cg-$s-bare.out")
    m=$(total "$dir/cg-$s.out")
    echo "$s $b $m $n" | awk '{
        printf "%-12s bare %6.0f instr/req | module %6.0f instr/req | ratio %.3f | +%.0f\n",
               $1, $2 / $4, $3 / $4, $3 / $2, ($3 - $2) / $4 }'

    if [ -n "${BENCH_TOP:-}" ]; then
        python3 "$top/bench/cgtop.py" "$dir/cg-$s.out" "$dir/cg-$s-bare.out" \
            "$n" "$BENCH_TOP"
    fi
done
