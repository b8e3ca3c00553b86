#!/bin/sh
# Installs the Debian packages the build (and, with "test", the suite or
# the benchmark) needs, only when something is missing.
set -e

pkgs="gcc make nginx nginx-dev libmaxminddb-dev libpcre2-dev libssl-dev zlib1g-dev"
case "$1" in
# prometheus: promtool checks the status's Prometheus format
test)  pkgs="$pkgs mmdb-bin libmaxmind-db-writer-perl gdb chromium prometheus" ;;
bench) pkgs="$pkgs wrk libmaxmind-db-writer-perl" ;;
# build-asan.sh: clang, apt-get source (dpkg-dev); test-valgrind: valgrind
asan)  pkgs="$pkgs clang libclang-rt-14-dev llvm-14 dpkg-dev"
       pkgs="$pkgs mmdb-bin libmaxmind-db-writer-perl gdb" ;;
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
# Debian starts the packaged nginx on port 80; we only want its binary.
$sudo systemctl disable --now nginx >/dev/null 2>&1 || true
# the shipping tests start their own ClickHouse and PostgreSQL servers
for s in clickhouse-server postgresql; do
    case "$missing" in *"$s"*)
        $sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
        $sudo service "$s" stop >/dev/null 2>&1 || true ;;
    esac
done
# nor the Prometheus server that comes with promtool
$sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
