#!/bin/bash
# Builds build/asan/nginx: nginx 1.22.1 from Debian's source package with
# AddressSanitizer + UndefinedBehaviorSanitizer, --with-debug,
# NGX_DEBUG_PALLOC (every pool allocation is its own malloc(), so ASan sees
# overflows inside pools) and this module linked in statically
# (--add-module).  Incremental: the source is fetched and configured once;
# afterwards only changed module files are recompiled and nginx relinked.
# Reconfigures when `config`, this script or the flags change.
#
#   scripts/build-asan.sh            # -> build/asan/nginx
#   ASAN_CC=gcc scripts/build-asan.sh
#
# The source: scripts/nginx-source.sh (`apt-get source nginx`, a deb-src
# entry added when missing; nginx-dev's /usr/share/nginx/src has headers
# only, so there is no offline fallback).
set -e

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${ASAN_BUILD:-$REPO/build/asan}
CC_=${ASAN_CC:-clang}
JOBS=${JOBS:-$(nproc)}

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
SAN="$SAN -fno-sanitize-recover=address"
LDFLAGS="$SAN"
# UBSan checks that nginx's own code fails by design: see the list
IGNORE=$REPO/scripts/asan-ignorelist.txt
case "$CC_" in
*clang*) SAN="$SAN -fsanitize-ignorelist=$IGNORE" ;;
*) SAN="$SAN -fno-sanitize=alignment,nonnull-attribute,pointer-overflow" ;;
esac
CFLAGS="-g -O1 $SAN -DNGX_DEBUG_PALLOC=1"

# Debian's basic_configure_flags (debian/rules, = nginx-dev's conf_flags):
# every module the packaged nginx has built in; no dynamic modules.
FLAGS=(
    --prefix=/usr/share/nginx
    --conf-path=/etc/nginx/nginx.conf
    --http-log-path=/var/log/nginx/access.log
    --error-log-path=stderr
    --lock-path=/var/lock/nginx.lock
    --pid-path=/run/nginx.pid
    --modules-path=/usr/lib/nginx/modules
    --http-client-body-temp-path=/var/lib/nginx/body
    --http-fastcgi-temp-path=/var/lib/nginx/fastcgi
    --http-proxy-temp-path=/var/lib/nginx/proxy
    --http-scgi-temp-path=/var/lib/nginx/scgi
    --http-uwsgi-temp-path=/var/lib/nginx/uwsgi
    --with-compat
    --with-debug
    --with-pcre-jit
    --with-http_ssl_module
    --with-http_stub_status_module
    --with-http_realip_module
    --with-http_auth_request_module
    --with-http_v2_module
    --with-http_dav_module
    --with-http_slice_module
    --with-threads
)

sh "$REPO/scripts/deps.sh" asan

mkdir -p "$OUT"

# 1. the source tree, once
src=$(sh "$REPO/scripts/nginx-source.sh" "$OUT")

# 2. configure when the flags, config or this script changed
stamp="$CC_ $CFLAGS | $LDFLAGS | ${FLAGS[*]} | $REPO"
stamp="$stamp | $(cat "$REPO/config" "$0" | md5sum)"
# a changed ignorelist changes no configure output: rebuild everything
ign=$(md5sum < "$IGNORE")
if [ "$(cat "$OUT/ignorelist.md5" 2>/dev/null)" != "$ign" ]; then
    rm -rf "$OUT/objs"
    echo "$ign" > "$OUT/ignorelist.md5"
fi
if [ ! -f "$OUT/objs/Makefile" ] || [ "$(cat "$OUT/configure.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "configuring nginx ($CC_, ASan+UBSan) in $OUT/objs"
    rm -f "$OUT/configure.stamp"
    # every object depends on these two headers: keep their times when a
    # new configure (a file added to `config`) writes the same text
    for h in ngx_auto_config.h ngx_auto_headers.h; do
        [ -f "$OUT/objs/$h" ] && cp -p "$OUT/objs/$h" "$OUT/$h.prev"
    done
    (cd "$src" && ./configure --with-cc="$CC_" \
        --with-cc-opt="$CFLAGS" --with-ld-opt="$LDFLAGS" \
        "${FLAGS[@]}" --add-module="$REPO" --builddir="$OUT/objs") \
        > "$OUT/configure.log" 2>&1 \
        || { tail -30 "$OUT/configure.log"; exit 1; }
    for h in ngx_auto_config.h ngx_auto_headers.h; do
        if [ -f "$OUT/$h.prev" ] && cmp -s "$OUT/$h.prev" "$OUT/objs/$h"
        then
            touch -r "$OUT/$h.prev" "$OUT/objs/$h"
        fi
        rm -f "$OUT/$h.prev"
    done
    echo "$stamp" > "$OUT/configure.stamp"
fi

# 3. build (make tracks the module's sources; the .h files too, below)
# nginx's Makefile makes module objects depend on ngx_module_deps only,
# which lists one header: any newer header rebuilds the module's objects
for h in "$REPO"/ngx_http_affiliate_module/*.h; do
    for o in "$OUT"/objs/addon/ngx_http_affiliate_module/*.o; do
        if [ -e "$o" ] && [ "$h" -nt "$o" ]; then rm -f "$o"; fi
    done
done
make -s -j"$JOBS" -f "$OUT/objs/Makefile" -C "$src" \
    > "$OUT/make.log" 2>&1 || { grep -v '^\s*$' "$OUT/make.log" | tail -40; exit 1; }
cp "$OUT/objs/nginx" "$OUT/nginx.tmp" && mv -f "$OUT/nginx.tmp" "$OUT/nginx"
echo "built $OUT/nginx"
