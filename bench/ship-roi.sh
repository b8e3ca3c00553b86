#!/bin/bash
# ROI query time on N records (default 10 million) in a ClickHouse cluster
# that has sql/clickhouse/schema.sql and roi.sql applied:
#   bench/ship-roi.sh HTTP_URL [N]
# Fills affiliate.records (through the Distributed table, so both shards)
# with synthetic records made by the server itself: 85% clicks (12% of them
# bots, 70% unique), 5% landings, 2% misses, 8% conversions carrying the
# click id of a click 7 records earlier (attributed by the module one time
# in two, the rest joined), 500 creators x 7 campaigns over 3 days, 3
# currencies.  Then times each ROI view.  Run it on an empty cluster.
set -e
url=${1:?usage: $0 HTTP_URL [N]}
n=${2:-10000000}
q() { curl -sS --fail-with-body "$url/" --data-binary "$1"; }
q "SELECT host_name, port FROM system.clusters WHERE cluster = 'affiliate' FORMAT TSV"
q "SELECT count() FROM affiliate.records" | sed 's/^/records before: /'
t0=$(date +%s.%N)
q "INSERT INTO affiliate.records (id, node, ts, type, seq, click_id, link,
   creator, campaign, status, ip, bot, \`unique\`, source, order_id, amount,
   currency, attributed, duplicate, truncated)
SELECT
  concat('B', toString(number)) AS id,
  concat('web', toString(number % 4)) AS node,
  concat(replaceOne(toString(toDateTime(1795000000 + intDiv(number * 26, 1000), 'UTC')), ' ', 'T'),
         '.', substring(toString(1000 + (number * 26) % 1000), 2, 3), 'Z') AS ts,
  multiIf(number % 100 < 85, 'click', number % 100 < 90, 'landing',
          number % 100 < 92, 'miss', 'conversion') AS type,
  intDiv(number, 4) + 1 AS seq,
  multiIf(type = 'miss', NULL, type = 'conversion',
          concat('B', toString(number - 7)), id) AS click_id,
  'l' AS link,
  if(type = 'conversion' AND number % 2 = 0 OR type = 'miss', NULL,
     concat('cr', toString(intDiv(number, 100) % 500))) AS creator,
  if(type = 'conversion' AND number % 2 = 0 OR type = 'miss', NULL,
     concat('cp', toString(intDiv(number, 100) % 7))) AS campaign,
  toUInt32(302) AS status, '203.0.113.1' AS ip,
  toUInt8(type IN ('click', 'landing') AND number % 8 = 0) AS bot,
  if(type IN ('click', 'landing') AND bot = 0, toUInt8(number % 10 < 7), NULL) AS \`unique\`,
  if(type = 'conversion', if(number % 3 = 0, 'pixel', 'postback'), NULL) AS source,
  if(type = 'conversion', concat('O', toString(number)), NULL) AS order_id,
  if(type = 'conversion', concat(toString(number % 300), '.', toString(10 + number % 90)), NULL) AS amount,
  if(type = 'conversion', ['EUR', 'USD', 'GBP'][number % 3 + 1], NULL) AS currency,
  if(type = 'conversion', toUInt8(number % 2 = 1), NULL) AS attributed,
  if(type = 'conversion', toUInt8(0), NULL) AS duplicate,
  toUInt8(0) AS truncated
FROM numbers($n)"
t1=$(date +%s.%N)
echo "inserted $n records in $(echo "$t1 - $t0" | bc) s"
# the Distributed table forwards in the background: wait for every row
while :; do
    c=$(q "SELECT count() FROM affiliate.records")
    [ "$c" -ge "$n" ] && break
    sleep 1
done
echo "records in the cluster: $c"
root=$(cd "$(dirname "$0")/.." && pwd)
s=$(date +%s.%N)
sed 's/--.*//' "$root/sql/clickhouse/refresh.sql" | tr '\n' ' ' | tr ';' '\n' |
while read -r stmt; do
    [ -n "$stmt" ] && q "$stmt"
done
e=$(date +%s.%N)
echo "refresh.sql: $(echo "$e - $s" | bc) s"
for v in roi_by_creator roi_by_campaign roi_by_creator_campaign roi_by_day; do
    s=$(date +%s.%N)
    rows=$(q "SELECT count() FROM (SELECT * FROM affiliate.$v)")
    e=$(date +%s.%N)
    echo "$v: $rows rows in $(echo "$e - $s" | bc) s"
done
