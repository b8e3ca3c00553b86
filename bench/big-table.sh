#!/bin/bash
# The link table at scale (not a test): 1,000,000 lines, a tenth of them
# with options (A/B, a schedule, a cap, devices), loaded by nginx -t and
# by a running nginx.  Prints the load time and the master's memory.
# Usage: bench/big-table.sh [LINES]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
dir=${BENCH_DIR:-/tmp/affiliate-bench}/big
mkdir -p "$dir/tmp"

awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) {
    printf "s%07d\thttps://shop%d.example/p/%d?ref=x\tcreator%d\tcamp%d",
           i, i % 100, i, i % 1000, i % 97
    if (i % 10 == 0)
        printf "\tab=https://a.example/%d*70,https://b.example/%d*30" \
               "\tuntil=2030-01-01T00:00:00Z\tmax_clicks=%d" \
               "\tios=https://apps.apple.com/app/id%d", i, i, 1000 + i, i
    printf "\n" } }' > "$dir/links.tsv"

cat > "$dir/nginx.conf" <<END
load_module $top/build/ngx_http_affiliate_module.so;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    affiliate_zone aff:16m;
    affiliate_log $dir/affiliate.log zone=aff;
    affiliate_links $dir/links.tsv;
    server { listen 127.0.0.1:18099; location /go/ { affiliate_redirect zone=aff; } }
}
END

echo "table: $n lines, $(grep -c 'ab=' "$dir/links.tsv") with options," \
     "$(du -m "$dir/links.tsv" | cut -f1) MB"
for i in 1 2 3; do
    /usr/bin/time -f "nginx -t: %e s, max RSS %M KB" \
        /usr/sbin/nginx -t -q -p "$dir/" -c "$dir/nginx.conf"
done
/usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
sleep 1
m=$(cat "$dir/nginx.pid")
echo "running: master RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$m/status)," \
     "worker RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$(pgrep -P $m)/status)"
curl -s -o /dev/null -w "GET /go/s0000010: %{http_code} %{redirect_url}\n" \
    http://127.0.0.1:18099/go/s0000010
/usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" -s quit
