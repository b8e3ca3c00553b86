#!/bin/sh
# make demo: starts /usr/sbin/nginx with the module on 127.0.0.1:8080, with
# an example link table, a real geo database and the click log.
# "scripts/demo.sh stop" stops it.
set -e

top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/build/demo
port=${DEMO_PORT:-8080}

if [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
    /usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf" -s quit
    sleep 0.5
fi
[ "$1" = stop ] && exit 0

mkdir -p "$dir/logs" "$dir/tmp" "$top/cache"

# a real geo database: the CC0 country + ASN database from npm, else a
# generated one (t/lib/mkmmdb.pl, Debian's libmaxmind-db-writer-perl)
db=$top/cache/geo-whois-asn-country.mmdb
if [ ! -s "$db" ] && command -v npm >/dev/null 2>&1; then
    ( cd "$top/cache" &&
      timeout 60 npm pack -q @ip-location-db/geo-whois-asn-country-mmdb \
          >/dev/null 2>&1 &&
      tar xzf ip-location-db-geo-whois-asn-country-mmdb-*.tgz \
          --strip-components=1 package/geo-whois-asn-country.mmdb &&
      rm -f ip-location-db-geo-whois-asn-country-mmdb-*.tgz ) || true
fi
if [ ! -s "$db" ]; then
    echo "npm could not fetch the geo database; generating a small one"
    sh "$top/scripts/deps.sh" test
    db=$dir/generated-geo.mmdb
    perl "$top/t/lib/mkmmdb.pl" flat "$db" >/dev/null
fi

cp "$top/examples/links.tsv" "$dir/links.tsv"
[ -s "$dir/secret.key" ] || head -c 48 /dev/urandom | base64 > "$dir/secret.key"
[ -s "$dir/postback.key" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' \
    > "$dir/postback.key"
chmod 600 "$dir/secret.key" "$dir/postback.key"
key=$(cat "$dir/postback.key")

cat > "$dir/nginx.conf" <<END
load_module $top/build/ngx_http_affiliate_module.so;
worker_processes 2;
error_log $dir/logs/error.log notice;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;

    # trust X-Forwarded-For from localhost, so the demo can pretend
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;

    affiliate_zone   aff:16m;
    affiliate_log    $dir/logs/affiliate.log zone=aff flush=1s;
    affiliate_node   demo;
    affiliate_app_schemes shopapp;
    affiliate_links  $dir/links.tsv;
    affiliate_link   hello https://shop.example/ creator=demo campaign=readme;
    affiliate_geoip  $db;
    affiliate_secret $dir/secret.key;
    affiliate_postback_key $dir/postback.key;
    affiliate_cookie aff;

    server {
        listen 127.0.0.1:$port;
        location /go/                { affiliate_redirect zone=aff; }
        location /shop/              { affiliate_capture zone=aff creator=ref
                                                         campaign=utm_campaign;
                                       return 200 "the shop's page\\n"; }
        location = /conversion       { affiliate_conversion zone=aff; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
}
END

/usr/sbin/nginx -p "$dir/" -c "$dir/nginx.conf"

cat <<END

nginx with ngx_http_affiliate_module runs on http://127.0.0.1:$port/
(configuration: $dir/nginx.conf, links: $dir/links.tsv, geo: $db)

Try:
  curl -si http://127.0.0.1:$port/go/summer
  curl -si -H 'X-Forwarded-For: 8.8.8.8' http://127.0.0.1:$port/go/world
  curl -si http://127.0.0.1:$port/go/no-such-link
  curl -si http://127.0.0.1:$port/go/test          # an A/B test
  curl -si http://127.0.0.1:$port/go/drop          # 3 clicks, then sold out
  curl -si -A 'Mozilla/5.0 (Linux; Android 14)' http://127.0.0.1:$port/go/app
  curl -si 'http://127.0.0.1:$port/shop/serum?ref=anna&utm_campaign=story'
  curl -s  http://127.0.0.1:$port/affiliate/status
  curl -s  'http://127.0.0.1:$port/affiliate/status?format=prometheus'

A sale reported by the shop (use a click_id from a Location above):
  curl -s 'http://127.0.0.1:$port/conversion?key=$key&click_id=CLICK_ID&order_id=A1&amount=59.80&currency=EUR'

Watch the click log (records are flushed every second):
  tail -f $dir/logs/affiliate.log | jq .

ROI per creator and campaign (docs/analytics.md):
  $top/tools/affiliate-report --costs $top/examples/costs.tsv \\
      --rates $top/examples/rates.tsv --by creator,campaign $dir/logs/affiliate.log*

Stop it with: make demo-stop
END
