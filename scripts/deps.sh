#!/bin/sh
# Installs the Debian packages the build (and, with "test", the suite or
# the benchmark) needs, only when something is missing.
set -e

pkgs="gcc make nginx nginx-dev libmaxminddb-dev libpcre2-dev libssl-dev zlib1g-dev"
case "$1" in
# prometheus: promtool checks the status's Prometheus format;
# strace: t/17-flush-bound.t (one buffer per event)
test)  pkgs="$pkgs mmdb-bin libmaxmind-db-writer-perl gdb strace chromium prometheus" ;;
bench) pkgs="$pkgs wrk libmaxmind-db-writer-perl" ;;
# build-asan.sh: clang, apt-get source (dpkg-dev); test-valgrind: valgrind
asan)  pkgs="$pkgs clang libclang-rt-14-dev llvm-14 dpkg-dev"
       pkgs="$pkgs mmdb-bin libmaxmind-db-writer-perl gdb strace" ;;
valgrind) pkgs="$pkgs valgrind mmdb-bin libmaxmind-db-writer-perl" ;;
# fuzz/build.sh: clang 14 with libFuzzer, apt-get source (dpkg-dev)
fuzz)  pkgs="$pkgs clang-14 libclang-rt-14-dev dpkg-dev binutils" ;;
ship|test-ship) pkgs="$pkgs clickhouse-server clickhouse-client postgresql" ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

echo "installing:$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
    --no-install-recommends $missing >/dev/null

# Debian starts the servers it installs: the packaged nginx on port 80, the
# ClickHouse and PostgreSQL servers (the shipping tests start their own),
# the Prometheus server that comes with promtool. We only want their
# binaries, so the ones this run has just installed are stopped and
# disabled. A server that was already installed is left as it is: on a
# machine whose nginx serves sites, nothing here stops or disables it.
for s in nginx clickhouse-server postgresql prometheus; do
    case " $missing " in *" $s "*)
        echo "stopping and disabling $s (installed just now)"
        $sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
        $sudo service "$s" stop >/dev/null 2>&1 || true ;;
    esac
done
