#!/bin/bash
# Records/s that one affiliate-ship ships into a ClickHouse cluster:
#   bench/ship-throughput.sh URL[,URL...] [RECORDS]
# The cluster must have sql/clickhouse/schema.sql applied (see
# docs/shipping.md).  Generates RECORDS synthetic records (default 500000)
# with t/lib/ship-gen.py, ships them with --once, prints the rate.
set -e
urls=${1:?usage: $0 URL[,URL...] [RECORDS]}
n=${2:-500000}
root=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 "$root/t/lib/ship-gen.py" "$d" "$n" 1
lines=$(cat "$d/web1.log" | wc -l)
t0=$(date +%s.%N)
"$root/tools/affiliate-ship" --clickhouse "$urls" --state "$d/st" --once \
    --batch 20000 "$d/web1.log"
t1=$(date +%s.%N)
echo "$lines records in $(echo "$t1 - $t0" | bc) s:" \
     "$(echo "$lines / ($t1 - $t0)" | bc) records/s"
