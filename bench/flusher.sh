#!/bin/sh
# The flusher's microbenchmark (bench/flusher.c): builds it against
# nginx's headers (the module's build tree, made by "make") and runs it.
# Usage: bench/flusher.sh [FILE] [ROUNDS]; FILE on the disk to measure
# (default /tmp/affiliate-flusher.log).  Prints records/s.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/share/nginx/src/src
build=${BUILD:-$top/build}
out=$build/flusher
[ -f "$build/objs/ngx_auto_config.h" ] || make -C "$top" >/dev/null
${CC:-cc} -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
    -Wno-unused-function \
    -I "$src/core" -I "$src/event" -I "$src/event/modules" \
    -I "$src/os/unix" -I "$src/http" -I "$src/http/modules" \
    -I "$src/http/v2" -I "$build/objs" -I "$top/ngx_http_affiliate_module" \
    -o "$out" "$top/bench/flusher.c" -lcrypto -lpthread
"$out" "$@"
