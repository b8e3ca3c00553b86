#!/bin/bash
# Builds the libFuzzer fuzzers into build/fuzz/bin (see fuzz/README.md).
#
# Debian's nginx source (1.22.1, scripts/nginx-source.sh) is configured
# once into build/fuzz/objs with clang, -fsanitize=fuzzer-no-link,address,
# undefined, NGX_DEBUG_PALLOC (each pool allocation is its own malloc(), so
# ASan sees an overflow inside a pool) and this module as a static addon,
# with the modules nginx itself does not need left out.  Its objects go
# into build/fuzz/libngx.a (nginx's main() renamed); each harness includes
# the module file under test, so its static functions are reachable, and
# takes everything else from the archive.  Incremental: reconfigures when
# `config`, this script or the flags change; rebuilds a fuzzer when its
# harness, fuzz_common.h or the archive changed.
set -e

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build}
OUT=$BUILD/fuzz
JOBS=${JOBS:-$(nproc)}
CC=${FUZZ_CC:-clang-14}
command -v "$CC" >/dev/null || CC=clang

# UBSan reports are fatal (halt_on_error in fuzz_common.h) but stay
# recoverable, so that fuzz/ubsan.supp can name nginx's own patterns
SAN="-fsanitize=address,undefined"
CFLAGS="-g -O1 -fno-omit-frame-pointer $SAN -DNGX_DEBUG_PALLOC=1"
WITHOUT="charset gzip ssi userid access auth_basic mirror autoindex geo map
         split_clients referer rewrite proxy fastcgi uwsgi scgi grpc memcached
         limit_conn limit_req empty_gif browser upstream_hash upstream_ip_hash
         upstream_least_conn upstream_random upstream_keepalive upstream_zone"
# --with-compat: the request structures laid out as in Debian's nginx
FLAGS=(--with-compat --with-pcre --with-debug)
for m in $WITHOUT; do
    FLAGS+=("--without-http_${m}_module")
done

mkdir -p "$OUT/bin"

# 1. Debian's nginx source tree, once (scripts/nginx-source.sh)
src=$(sh "$REPO/scripts/nginx-source.sh" "$OUT")

# 2. configure when the flags, config or this script changed
stamp="$CC $CFLAGS | ${FLAGS[*]} | $REPO"
stamp="$stamp | $(cat "$REPO/config" "$0" | md5sum)"
if [ ! -f "$OUT/objs/Makefile" ] \
   || [ "$(cat "$OUT/configure.stamp" 2>/dev/null)" != "$stamp" ]
then
    echo "configuring nginx for the fuzzers in $OUT/objs"
    rm -f "$OUT/configure.stamp"
    rm -rf "$OUT/objs"
    (cd "$src" && ./configure --with-cc="$CC" \
        --with-cc-opt="$CFLAGS -fsanitize=fuzzer-no-link" \
        --with-ld-opt="$SAN" "${FLAGS[@]}" \
        --add-module="$REPO" --builddir="$OUT/objs") \
        > "$OUT/configure.log" 2>&1 \
        || { tail -30 "$OUT/configure.log"; exit 1; }
    echo "$stamp" > "$OUT/configure.stamp"
fi

# 3. nginx's and the module's objects (make knows what changed)
# (FUZZ_KEEP_GOING=1: go on when a module file does not compile, for
# working on one fuzzer while another file is being edited)
keep=""
[ -z "$FUZZ_KEEP_GOING" ] || keep="-k"
if ! make -s $keep -j"$JOBS" -C "$src" -f "$OUT/objs/Makefile" binary \
        > "$OUT/make.log" 2>&1
then
    tail -40 "$OUT/make.log"
    [ -n "$FUZZ_KEEP_GOING" ] || exit 1
    echo "FUZZ_KEEP_GOING: going on with the objects that were built"
fi

# 4. the archive, when an object is newer
if [ ! -f "$OUT/libngx.a" ] \
   || [ -n "$(find "$OUT/objs" -name '*.o' -newer "$OUT/libngx.a")" ]
then
    rm -f "$OUT/libngx.a"
    objcopy --redefine-sym main=ngx_fuzz_nginx_main \
        "$OUT/objs/src/core/nginx.o" "$OUT/nginx_nomain.o"
    find "$OUT/objs" -name '*.o' ! -path '*/src/core/nginx.o' \
        | sort | xargs ar rcs "$OUT/libngx.a" "$OUT/nginx_nomain.o"
fi

# the libraries nginx links with, from its own link command
libs=$(sed -n '/-o \.\.\/objs\/nginx\|-o .*objs\/nginx /,/^$/p' \
           "$OUT/objs/Makefile" | grep -o -- ' -l[^ ]*' | tr -d '\n')
incs=$(sed -n '/^ALL_INCS =/,/^$/p' "$OUT/objs/Makefile" \
           | grep -o -- '-I [^ ]*' | sed "s|-I \([^/]\)|-I $src/\1|" \
           | sed "s|$src/\.\./objs|$OUT/objs|" | tr '\n' ' ')

# 5. the fuzzers
build_one() {
    name=$1
    bin="$OUT/bin/fuzz_$name"
    harness="$REPO/fuzz/fuzz_$name.c"
    if [ -f "$bin" ] && [ "$bin" -nt "$harness" ] \
       && [ "$bin" -nt "$REPO/fuzz/fuzz_common.h" ] \
       && [ "$bin" -nt "$REPO/fuzz/build.sh" ] \
       && [ "$bin" -nt "$OUT/libngx.a" ] \
       && [ -z "$(find "$REPO/ngx_http_affiliate_module" -name '*.[ch]' \
                  -newer "$bin")" ]
    then
        return 0
    fi
    echo "building fuzz_$name"
    # shellcheck disable=SC2086
    $CC $CFLAGS -fsanitize=fuzzer -Wall -Wextra -Werror \
        -Wno-unused-parameter -Wno-unused-function \
        -DFZ_UBSAN_SUPP="\"$REPO/fuzz/ubsan.supp\"" \
        $incs -I "$REPO/fuzz" -o "$bin.tmp" "$harness" \
        "$OUT/libngx.a" $libs -lcrypt -lpthread \
        && mv -f "$bin.tmp" "$bin"
}
export -f build_one
export OUT REPO CC CFLAGS incs libs

names=${FUZZERS:-$(cd "$REPO/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
printf '%s\n' $names | xargs -P "$JOBS" -I{} bash -c 'build_one {}'
