# Shared by bench/run.sh and bench/callgrind.sh (sourced, not run): the
# data sets and the nginx configurations of the benchmark.
# Needs: top (the repository), dir (the work directory), port.

MODULE_SO=${BENCH_MODULE:-$top/build/ngx_http_affiliate_module.so}

bench_data() {
    mkdir -p "$dir/tmp"

    # 10,000 links, 1,000 client addresses
    awk 'BEGIN { for (i = 0; i < 10000; i++)
        printf "l%05d\thttps://brand%d.example/p/%d\tc%02d\tk%d\n",
               i, i % 50, i, i % 100, i % 7 }' > "$dir/links.tsv"
    # and 10,000 links with options: A/B, a cap never reached, devices.
    # wrk.lua's visitor is an iPhone: the even links have ios= (the device
    # decides), the odd ones android= only, so that the device check finds
    # nothing and the A/B choice runs for half of the requests
    awk 'BEGIN { for (i = 0; i < 10000; i++)
        printf "o%05d\thttps://brand%d.example/p/%d\tc%02d\tk%d\t" \
               "ab=https://a.example/%d*70,https://b.example/%d*30\t" \
               "max_clicks=1000000000\t%s" \
               "android=https://play.google.com/store/apps/details?id=x%d\n",
               i, i % 50, i, i % 100, i % 7, i, i,
               i % 2 ? "" : sprintf("ios=https://apps.apple.com/app/id%d\t", i),
               i }' >> "$dir/links.tsv"
    awk 'BEGIN { for (i = 0; i < 10000; i++) printf "l%05d\n", i }' \
        > "$dir/slugs.txt"
    awk 'BEGIN { for (i = 0; i < 10000; i++) printf "o%05d\n", i }' \
        > "$dir/slugs-options.txt"
    awk 'BEGIN { srand(7); for (i = 0; i < 1000; i++)
        printf "%d.%d.%d.%d\n", 1 + int(rand() * 222), int(rand() * 256),
               int(rand() * 256), 1 + int(rand() * 254) }' > "$dir/ips.txt"
    [ -s "$dir/city.mmdb" ] \
        || perl "$top/t/lib/mkmmdb.pl" city "$dir/city.mmdb" >/dev/null
    head -c 48 /dev/urandom | base64 > "$dir/secret.key"
    chmod 600 "$dir/secret.key"
}

# the do-it-yourself kit (../shared/bench-anchors/diy.conf): Debian's
# geoip2 module and the CC0 country database of the ip-location-db project
# from npm, installed here, never committed
kit_data() {
    [ -f /usr/lib/nginx/modules/ngx_http_geoip2_module.so ] || {
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends libnginx-mod-http-geoip2 >/dev/null
    }
    if [ ! -s "$dir/country.mmdb" ]; then
        (cd "$dir" && npm pack -q @ip-location-db/geo-whois-asn-country-mmdb \
                >/dev/null 2>&1 \
         && tar xzf ip-location-db-geo-whois-asn-country-mmdb-*.tgz \
                --strip-components=1 package/geo-whois-asn-country.mmdb \
         && mv geo-whois-asn-country.mmdb country.mmdb \
         && rm -f ip-location-db-geo-whois-asn-country-mmdb-*.tgz) \
            || { echo "kit: cannot fetch the country database" >&2; return 1; }
    fi
    awk 'BEGIN { for (i = 0; i < 10000; i++)
        printf "/kit/l%05d \"https://brand%d.example/p/%d\";\n", i, i % 50, i }' \
        > "$dir/kit-links.map"
}

# $1: extra http-level directives, $2: extra locations, $3: main-level
conf() {
    cat > "$dir/nginx.conf" <<END
load_module $MODULE_SO;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
$3
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

conf_core() { conf "" "" "${1:-}"; }

conf_geo() { conf "affiliate_geoip $dir/city.mmdb;" "" "${1:-}"; }

# rule + cookie + bot + unique
conf_attribution() {
    conf "affiliate_secret $dir/secret.key;
    affiliate_cookie aff max_age=30d;
    affiliate_unique 24h;" \
     "location /r/ {
            affiliate_rule \"^/r/(?<slug>l[0-9]+)\$\"
                https://brand.example/p/\$slug creator=\$slug campaign=bench;
            affiliate_redirect zone=aff;
        }" "${1:-}"
}

# the kit in the same server as /bare/, as in diy.conf
conf_kit() {
    cat > "$dir/nginx.conf" <<END
load_module /usr/lib/nginx/modules/ngx_http_geoip2_module.so;
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
${1:-}
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    geoip2 $dir/country.mmdb { \$geo_country country_code; }
    map_hash_bucket_size 128;
    map_hash_max_size 65536;
    map \$uri \$dest { default ""; include $dir/kit-links.map; }
    map \$uri \$creator { default ""; ~^/kit/l(?<n>\\d\\d) c\$n; }
    log_format attr escape=json '{"ts":"\$msec","id":"\$request_id","uri":"\$uri","creator":"\$creator","dest":"\$dest","ip":"\$remote_addr","cc":"\$geo_country","ua":"\$http_user_agent","ref":"\$http_referer","uid":"\$uid_set"}';
    server {
        listen 127.0.0.1:$port;
        location /bare/ { return 302 https://brand.example/landing; }
        location /kit/ {
            userid on; userid_name aff; userid_expires 30d;
            access_log $dir/kit.log attr buffer=64k flush=1s;
            if (\$dest = "") { return 404; }
            return 302 "\$dest?utm_source=\$creator&utm_medium=affiliate&click_id=\$request_id";
        }
    }
}
END
}
