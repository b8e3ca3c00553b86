#!/bin/bash
# The benchmark (not a test): wrk against affiliate_redirect and against a
# bare "return 302" in the same nginx, same run, one worker, wrk on the
# other core.  Prints requests/s, worker CPU microseconds per request and
# the ratios to bare for each scenario.  Usage: bench/run.sh [SECONDS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-5}
export BENCH_DIR=${BENCH_DIR:-/tmp/affiliate-bench}
dir=$BENCH_DIR
port=18090
mkdir -p "$dir/tmp"

sh "$top/scripts/deps.sh" bench

# 10,000 links, 1,000 client addresses
awk 'BEGIN { for (i = 0; i < 10000; i++)
    printf "l%05d\thttps://brand%d.example/p/%d\tc%02d\tk%d\n",
           i, i % 50, i, i % 100, i % 7 }' > "$dir/links.tsv"
# and 10,000 links with options: A/B, a cap that is never reached, devices
awk 'BEGIN { for (i = 0; i < 10000; i++)
    printf "o%05d\thttps://brand%d.example/p/%d\tc%02d\tk%d\t" \
           "ab=https://a.example/%d*70,https://b.example/%d*30\t" \
           "max_clicks=1000000000\tios=https://apps.apple.com/app/id%d\t" \
           "android=https://play.google.com/store/apps/details?id=x%d\n",
           i, i % 50, i, i % 100, i % 7, i, i, i, i }' >> "$dir/links.tsv"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "l%05d\n", i }' \
    > "$dir/slugs.txt"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "o%05d\n", i }' \
    > "$dir/slugs-options.txt"
awk 'BEGIN { srand(7); for (i = 0; i < 1000; i++)
    printf "%d.%d.%d.%d\n", 1 + int(rand() * 222), int(rand() * 256),
           int(rand() * 256), 1 + int(rand() * 254) }' > "$dir/ips.txt"
[ -s "$dir/city.mmdb" ] || perl "$top/t/lib/mkmmdb.pl" city "$dir/city.mmdb" \
    >/dev/null

conf() {    # $1: extra http-level directives, $2: extra locations
    cat > "$dir/nginx.conf" <<END
load_module $top/build/ngx_http_affiliate_module.so;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    affiliate_zone aff:16m caps=1m;
    affiliate_log $dir/affiliate.log zone=aff flush=1s;
    affiliate_links $dir/links.tsv;
    $1
    server {
        listen 127.0.0.1:$port;
        location /bare/ { return 302 https://brand.example/landing; }
        location /go/ { affiliate_redirect zone=aff; }
        $2
    }
}
END
}

measure() {     # $1: location prefix; prints "rps cpu_us_per_request"
    local w t0 t1 out
    w=$(pgrep -P "$(cat "$dir/nginx.pid")")
    t0=$(awk '{print $14 + $15}' /proc/"$w"/stat)
    out=$(BENCH_PREFIX=$1 BENCH_SLUGS=${BENCH_SLUGS:-slugs.txt} wrk -t1 -c64 -d"${secs}s" -s "$top/bench/wrk.lua" \
          "http://127.0.0.1:$port/")
    t1=$(awk '{print $14 + $15}' /proc/"$w"/stat)
    echo "$out" | awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /^ *[0-9]+ requests in/ { n = $1 }
        /Requests\/sec/ { r = $2 }
        END { printf "%.0f %.2f\n", r, t * 1e6 / hz / n }'
}

scenario() {    # $1: name, $2: prefix; bare and module alternate, twice
    local b1 b2 m1 m2
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"
    sleep 0.5
    measure /bare/ >/dev/null              # warm-up
    b1=$(measure /bare/); m1=$(measure "$2")
    b2=$(measure /bare/); m2=$(measure "$2")
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" -s quit
    sleep 1
    echo "$b1 $b2 $m1 $m2" | awk -v name="$1" '{
        br = ($1 + $3) / 2; bc = ($2 + $4) / 2;
        mr = ($5 + $7) / 2; mc = ($6 + $8) / 2;
        printf "%-12s bare %6.0f rps %5.2f us/req | module %6.0f rps %5.2f us/req | throughput ratio %.3f, cpu ratio %.3f\n",
               name, br, bc, mr, mc, mr / br, mc / bc }'
}

conf "" ""
scenario core /go/
BENCH_SLUGS=slugs-options.txt scenario options /go/
conf "affiliate_geoip $dir/city.mmdb;" ""
scenario geo-city /go/
head -c 48 /dev/urandom | base64 > "$dir/secret.key"
chmod 600 "$dir/secret.key"
conf "affiliate_secret $dir/secret.key;
    affiliate_cookie aff max_age=30d;
    affiliate_unique 24h;" \
     "location /r/ {
            affiliate_rule \"^/r/(?<slug>l[0-9]+)\$\"
                https://brand.example/p/\$slug creator=\$slug campaign=bench;
            affiliate_redirect zone=aff;
        }"
scenario attribution /r/
echo "records written: $(wc -l < "$dir/affiliate.log")"
