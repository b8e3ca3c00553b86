#!/bin/bash
# Lag of one affiliate-ship following a log written at a steady rate:
#   bench/ship-lag.sh HTTP_URL[,URL] [RATE [SECONDS]]   (default 5000/s, 30 s)
# A writer appends click records at RATE per second (in 10 ms steps, like
# nginx's flusher) to a temp log; the shipper (batches of up to 10000 or
# 1 s) follows it into the cluster's affiliate.records.  Every second the
# shipper's status.json is sampled: lag in records and seconds.  At the end:
# the records/s shipped, the largest lag, and the time to catch up.
set -e
urls=${1:?usage: $0 HTTP_URL[,URL] [RATE [SECONDS]]}
rate=${2:-5000}
secs=${3:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d)
trap 'kill $ship 2>/dev/null; rm -rf "$d"' EXIT
: > "$d/aff.log"
"$root/tools/affiliate-ship" --clickhouse "$urls" --state "$d/st" \
    "$d/aff.log" 2> "$d/ship.err" &
ship=$!
python3 - "$d/aff.log" "$rate" "$secs" "$d/st/status.json" <<'PY'
import json, os, sys, time
path, rate, secs, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
f = open(path, 'a')
n = 0
t0 = time.time()
lags, lagr = [], []
last_sample = t0
run = 'R%d' % os.getpid()
tmpl = ('{"ts":"%s","type":"click","id":"%s","node":"bench","click_id":"%s",'
        '"link":"summer","rule":null,"creator":"anna","campaign":"summer25",'
        '"dest":"https://shop.example/summer","status":302,"ip":"203.0.113.0",'
        '"ua":"Mozilla/5.0","referer":null,"host":"shop.example","country":"DE",'
        '"region":null,"city":null,"asn":null,"bot":false,"bot_reason":null,'
        '"unique":true,"reason":null,"cookie":"set","source":null,"order_id":null,'
        '"amount":null,"currency":null,"attributed":null,"duplicate":null,'
        '"truncated":false,"seq":%d}\n')
def sample():
    try:
        st = json.load(open(status))
        lags.append(st['lag_seconds']); lagr.append(st['lag_records'])
    except Exception:
        pass
while True:
    now = time.time()
    if now - t0 >= secs:
        break
    due = int((now - t0) * rate)
    ts = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now)) + '.%03dZ' % (int(now * 1000) % 1000)
    buf = []
    while n < due:
        n += 1
        i = '%s%020d' % (run, n)
        buf.append(tmpl % (ts, i[-26:], i[-26:], n))
    f.write(''.join(buf)); f.flush()
    if now - last_sample >= 1:
        sample(); last_sample = now
    time.sleep(0.01)
wrote = time.time()
while True:
    try:
        st = json.load(open(status))
        if st['records_sent'] >= n and st['lag_records'] == 0:
            break
    except Exception:
        pass
    time.sleep(0.05)
done = time.time()
print('wrote %d records in %.1f s (%.0f/s)' % (n, wrote - t0, n / (wrote - t0)))
print('lag while writing: records max %d, mean %.0f; seconds max %.2f, mean %.2f'
      % (max(lagr or [0]), sum(lagr) / max(len(lagr), 1), max(lags or [0]),
         sum(lags) / max(len(lags), 1)))
print('caught up %.2f s after the writer stopped; shipped %.0f records/s overall'
      % (done - wrote, n / (done - t0)))
PY
grep -c . "$d/ship.err" >/dev/null && tail -3 "$d/ship.err" || true
