#!/bin/sh
# Prints the path of Debian's nginx source tree in DIR (fetched once with
# `apt-get source nginx`, Debian's patches applied), adding a deb-src entry
# for bookworm when the machine has none.  nginx-dev's /usr/share/nginx/src
# holds headers only, so a full build of nginx needs this.
#
#   src=$(sh scripts/nginx-source.sh build/asan)
#
# The installed nginx's version is tried first, then each version the
# archive lists, newest first (the newest security upload is sometimes
# listed before its files reach the pool).  Needs dpkg-dev (dpkg-source).
set -e

OUT=${1:?usage: nginx-source.sh DIR}
mkdir -p "$OUT"
src=$(ls -d "$OUT"/nginx-1.* 2>/dev/null | head -1)
if [ -n "$src" ] && [ -f "$src/configure" ]; then
    echo "$src"
    exit 0
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! grep -rqs '^Types:.*deb-src\|^deb-src' \
        /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "adding /etc/apt/sources.list.d/debian-src.sources" >&2
    $sudo tee /etc/apt/sources.list.d/debian-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $sudo apt-get update -q >/dev/null
fi
[ -n "$(apt-cache showsrc nginx 2>/dev/null)" ] \
    || $sudo apt-get update -q >/dev/null

inst=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
for v in $inst $(apt-cache showsrc nginx | sed -n 's/^Version: //p' \
                 | sort -Vr | uniq); do
    rm -rf "$OUT"/nginx-1.* "$OUT"/nginx_*
    if (cd "$OUT" && apt-get source -q "nginx=$v") > "$OUT/source.log" 2>&1
    then
        src=$(ls -d "$OUT"/nginx-1.* | head -1)
        echo "nginx source $v: $src" >&2
        echo "$src"
        exit 0
    fi
done
cat "$OUT/source.log" >&2
echo "apt-get source nginx failed" >&2
exit 1
