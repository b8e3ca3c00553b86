#!/bin/bash
# One affiliate-ship into PostgreSQL, and the ROI views over what it
# shipped:  bench/ship-pg.sh [RECORDS]   (default 1000000)
# Starts a private PostgreSQL (Debian's newest under /usr/lib/postgresql,
# initdb into a temp dir, a Unix socket only, fsync off as in the tests),
# applies sql/postgresql/schema.sql and roi.sql, generates RECORDS
# synthetic records of two nodes with t/lib/ship-gen.py, ships each node's
# log with --once --batch 20000, prints records/s, then times each ROI view
# and the table's size.  Stops the server and removes everything at exit.
set -e
n=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server: scripts/deps.sh test-ship" >&2; exit 1; }
d=$(mktemp -d)
chmod 755 "$d"
as=()
if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$d"
    as=(setpriv --reuid=postgres --regid=postgres --clear-groups)
fi
port=$(( 20000 + RANDOM % 20000 ))
stop() {
    "${as[@]}" "$bin/pg_ctl" -D "$d/data" -w -s -m fast stop 2>/dev/null || true
    rm -rf "$d"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$d/data" -A trust -U postgres --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$d/initdb.log"
"${as[@]}" "$bin/pg_ctl" -D "$d/data" -l "$d/log" -w -s \
    -o "-p $port -k $d -c listen_addresses='' -c fsync=off" start
psql() { command psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$d" -p "$port" -U postgres "$@"; }
psql -d postgres -c 'CREATE DATABASE aff'
psql -d aff -f "$root/sql/postgresql/schema.sql" -f "$root/sql/postgresql/roi.sql"
dsn="host=$d port=$port user=postgres dbname=aff"

mkdir "$d/gen"
python3 "$root/t/lib/ship-gen.py" "$d/gen" "$n" 2
lines=$(cat "$d"/gen/*.log | wc -l)
t0=$(date +%s.%N)
for f in "$d"/gen/*.log; do
    "$root/tools/affiliate-ship" --postgresql "$dsn" --state "$d/st-${f##*/}" \
        --once --batch 20000 "$f" 2>/dev/null
done
t1=$(date +%s.%N)
echo "$lines records shipped in $(echo "$t1 - $t0" | bc) s:" \
     "$(echo "$lines / ($t1 - $t0)" | bc) records/s"
echo "rows: $(psql -d aff -c 'SELECT count(*) FROM affiliate.records')," \
     "table and indexes: $(psql -d aff -c "SELECT pg_size_pretty(
        pg_total_relation_size('affiliate.records'))")"
psql -d aff -c 'ANALYZE affiliate.records'
for v in roi_by_creator roi_by_campaign roi_by_creator_campaign roi_by_day; do
    s=$(date +%s.%N)
    rows=$(psql -d aff -c "SELECT count(*) FROM (SELECT * FROM affiliate.$v) v")
    e=$(date +%s.%N)
    echo "$v: $rows rows in $(echo "$e - $s" | bc) s"
done
