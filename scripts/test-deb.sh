#!/bin/sh
# make test-deb: installs the package built by "make deb" on this machine and
# checks it the way an ops engineer uses it (TAP output):
#   install (module enabled in /etc/nginx/modules-enabled), the tools
#   /usr/bin/affiliate-report and /usr/bin/affiliate-ship run, the
#   affiliate-ship unit installed but not enabled, and valid; example config
#   in place, nginx -t, nginx started, a link followed and its record seen;
#   logrotate -f with the shipped file while clicks flow: the httpd-prerotate
#   hook runs, the log is rotated and the records continue in the new file
#   without a seq gap; apt-get remove disables the module (nginx starts
#   without it), reinstall enables it again, purge removes the
#   configuration, install after purge works.
# It needs root, the system nginx stopped (the shipped logrotate entry
# signals /run/nginx.pid, so the test's nginx uses it) and none of the
# package's files present. It leaves the machine as it found it: the package
# purged, the packages it installed (logrotate or curl if they were missing,
# the package's own dependencies) purged, the example configuration, the
# logs and its httpd-prerotate hook removed, its nginx stopped. Not undone:
# the apt-get update it runs when it has to install logrotate or curl.
#
# usage: sh scripts/test-deb.sh ./libnginx-mod-http-affiliate_VERSION_ARCH.deb
set -u

deb=${1:?usage: $0 path/to/libnginx-mod-http-affiliate_VERSION_ARCH.deb}
case "$deb" in /*) ;; *) deb=$(pwd)/$deb ;; esac

pkg=libnginx-mod-http-affiliate
nginx=/usr/sbin/nginx
pidfile=/run/nginx.pid
link=/etc/nginx/modules-enabled/50-mod-http-affiliate.conf
avail=/usr/share/nginx/modules-available/mod-http-affiliate.conf
so=/usr/lib/nginx/modules/ngx_http_affiliate_module.so
rot=/etc/logrotate.d/$pkg
conf=/etc/nginx/conf.d/affiliate.conf
links_dir=/etc/nginx/affiliate
logdir=/var/log/nginx/affiliate
log=$logdir/affiliate.log
examples=/usr/share/doc/$pkg/examples
unit=/lib/systemd/system/affiliate-ship.service
wants=/etc/systemd/system/multi-user.target.wants/affiliate-ship.service
hookdir=/etc/logrotate.d/httpd-prerotate
ua='Mozilla/5.0 (X11; Linux x86_64) aff-deb-test/1.0'

n=0
failed=0
master=

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    [ -n "${2:-}" ] && sed 's/^/#   /' "$2" | tail -20
}

check() {       # check "description" command...
    d=$1
    shift
    if "$@" > "$tmp/out" 2>&1; then ok "$d"; else not_ok "$d" "$tmp/out"; fi
}

bail() {
    echo "Bail out! $1"
    exit 1
}

phase_start=$(date +%s.%N)
phase_name=
phase() {       # phase NAME: prints the time the previous phase took
    now=$(date +%s.%N)
    [ -n "$phase_name" ] && echo "# $phase_name: $(awk \
        "BEGIN { printf \"%.1f\", $now - $phase_start }") s"
    [ -n "$1" ] && echo "# $1"
    phase_start=$now
    phase_name=$1
}

pkg_status() {
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null \
        || echo not-installed
}

# apt-get, waiting up to 5 min for the dpkg lock (other sessions may be
# installing); the packages it sets up are noted in $tmp/set-up, so that
# cleanup can take away those that were not on the machine before.
apt() {
    DEBIAN_FRONTEND=noninteractive apt-get -y -q \
        -o DPkg::Lock::Timeout=300 "$@" > "$tmp/apt.log" 2>&1
    apt_rc=$?
    sed -n 's/^Setting up \([^ :]*\).*/\1/p' "$tmp/apt.log" >> "$tmp/set-up"
    return $apt_rc
}

installed_packages() {  # "name status" of every package dpkg knows
    dpkg-query -W -f='${Package} ${db:Status-Status}\n' | sort -u
}

# --- preconditions: change nothing unless the machine is as expected -----

[ "$(id -u)" = 0 ] || bail "run as root (installs and removes $pkg)"
[ -f "$deb" ] || bail "$deb: no such file (make deb first)"
case "$(pkg_status)" in
not-installed) ;;
*) bail "$pkg is already on this machine ($(pkg_status)); not touching it" ;;
esac
for f in "$conf" "$links_dir" "$logdir" "$link" "$link.removed" "$rot" \
         "$unit" "$wants"; do
    [ -e "$f" ] || [ -L "$f" ] && bail "$f exists; not touching it"
done
if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    bail "the system nginx ($pidfile) is running; this test starts nginx" \
         "with that pid file (the shipped logrotate entry signals it)"
fi
[ -x "$nginx" ] || bail "$nginx missing (apt-get install nginx)"

tmp=$(mktemp -d /tmp/aff-deb-XXXXXX)
: > "$tmp/set-up"
installed_packages > "$tmp/before"
enabled_before=$(ls -A /etc/nginx/modules-enabled)
pidfile_before=no
[ -e "$pidfile" ] && pidfile_before=yes
# the shipped logrotate entry runs the hooks of this directory before a
# rotation, as /etc/logrotate.d/nginx does: the test puts one there, unless
# the directory is the admin's
hook_made=no

stop_nginx() {
    [ -n "$master" ] || return 0
    kill -QUIT "$master" 2>/dev/null
    i=0
    while kill -0 "$master" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$master" 2>/dev/null; then
        echo "# nginx $master did not quit in 20 s: killed"
        kill -KILL "$master" 2>/dev/null
        pkill -KILL -P "$master" 2>/dev/null
    fi
    master=
}

cleanup() {
    stop_nginx
    if [ "$(pkg_status)" != not-installed ]; then
        apt purge "$pkg" || cat "$tmp/apt.log"
    fi
    rm -rf "$conf" "$links_dir" "$logdir"
    rm -f "$link" "$link.removed"
    [ "$hook_made" = yes ] && rm -rf "$hookdir"
    # what apt-get set up during the test and was not installed before:
    # purged (removed, when only its configuration files were there)
    purge= remove=
    for p in $(sort -u "$tmp/set-up"); do
        [ "$p" = "$pkg" ] && continue
        now=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
        [ "$now" = installed ] || continue
        # (a package of two architectures has two lines: the first counts)
        case "$(awk -v p="$p" '$1 == p { print $2; exit }' "$tmp/before")" in
        ''|not-installed) purge="$purge $p" ;;
        config-files) remove="$remove $p" ;;
        esac
    done
    if [ -n "$purge$remove" ]; then
        echo "# removing what the test installed:$purge$remove"
        [ -z "$purge" ] || apt purge $purge || cat "$tmp/apt.log"
        [ -z "$remove" ] || apt remove $remove || cat "$tmp/apt.log"
    fi
    # nginx -t creates an empty pid file to see that it can
    if [ "$pidfile_before" = no ] && [ -f "$pidfile" ] && [ ! -s "$pidfile" ]
    then
        rm -f "$pidfile"
    fi
    if [ "$(ls -A /etc/nginx/modules-enabled)" != "$enabled_before" ]; then
        echo "not ok - /etc/nginx/modules-enabled differs from before the test"
        rm -rf "$tmp"
        exit 1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

missing=
for p in logrotate curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "# installing (removed at the end):$missing"
    apt update
    apt install --no-install-recommends $missing \
        || { cat "$tmp/apt.log"; bail "cannot install$missing"; }
fi

# --- helpers ---------------------------------------------------------------

port=$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1,
                                 LocalAddr => "127.0.0.1:0")->sockport')

# The system's nginx.conf (modules-enabled/*.conf, conf.d/*.conf) with this
# test's server instead of sites-enabled, and its own error and access log.
sed -e "s|^error_log .*|error_log $tmp/error.log;|" \
    -e "s|access_log /var/log/nginx/access.log;|access_log $tmp/access.log;|" \
    -e "s|include /etc/nginx/sites-enabled/\*;|include $tmp/site.conf;|" \
    /etc/nginx/nginx.conf > "$tmp/nginx.conf"
grep -q "include $tmp/site.conf;" "$tmp/nginx.conf" \
    && grep -q "^error_log $tmp/error.log;" "$tmp/nginx.conf" \
    && grep -q "^pid $pidfile;" "$tmp/nginx.conf" \
    && grep -q 'include /etc/nginx/modules-enabled/\*.conf;' "$tmp/nginx.conf" \
    && grep -q 'include /etc/nginx/conf.d/\*.conf;' "$tmp/nginx.conf" \
    || bail "/etc/nginx/nginx.conf is not Debian's; cannot derive a test config"

site_affiliate() {
    cat > "$tmp/site.conf" <<END
server {
    listen 127.0.0.1:$port;
    location /go/ { affiliate_redirect zone=aff; }
    location = /affiliate/status {
        affiliate_status zone=aff; allow 127.0.0.1; deny all;
    }
    location = /plain { return 204; }
}
END
}

site_plain() {
    cat > "$tmp/site.conf" <<END
server {
    listen 127.0.0.1:$port;
    location = /plain { return 204; }
}
END
}

example_config() {      # what docs/install.md tells the admin to do
    cp "$examples/nginx-affiliate.conf" "$conf" \
        && install -D -m 644 "$examples/links.tsv" "$links_dir/links.tsv"
}

start_nginx() {
    if ! "$nginx" -c "$tmp/nginx.conf" > "$tmp/out" 2>&1; then
        cat "$tmp/error.log" >> "$tmp/out" 2>/dev/null
        return 1
    fi
    master=$(cat "$pidfile")
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/plain"; do
        i=$((i + 1))
        [ $i -lt 100 ] || return 1
        sleep 0.1
    done
}

http_code() {
    curl -s -o /dev/null -A "$ua" -w '%{http_code}' \
        "http://127.0.0.1:$port$1"
}

cat > "$tmp/rec.pl" <<'END'
# rec.pl count|seq|click ID FILE...: records of the NDJSON files
use strict;
use warnings;
use JSON::PP;
my ($mode, @a) = @ARGV;
my $id = $mode eq 'click' ? shift @a : undef;
my @r;
for my $f (@a) {
    open my $h, '<', $f or next;
    while (my $l = <$h>) {
        last unless $l =~ /\n\z/;
        push @r, decode_json($l);
    }
}
if ($mode eq 'count') { print scalar(@r), "\n"; exit 0 }
if ($mode eq 'click') {
    my @m = grep { ($_->{click_id} // '') eq $id } @r;
    exit 1 unless @m == 1;
    print "$m[0]{type} $m[0]{link} $m[0]{creator} $m[0]{campaign}\n";
    exit 0;
}
my @s = sort { $a <=> $b } map { $_->{seq} } @r;
die "no records\n" unless @s;
for my $i (1 .. $#s) {
    die "seq $s[$i] repeated\n" if $s[$i] == $s[$i - 1];
    die "gap between seq $s[$i - 1] and $s[$i]\n"
        if $s[$i] != $s[$i - 1] + 1;
}
print "seq $s[0]..$s[-1] contiguous, ", scalar(@s), " records\n";
END

codes() {      # for a failure: the answers of the bursts, nginx's errors
    for b in burst1 burst2; do
        [ -s "$tmp/$b" ] && sort "$tmp/$b" | uniq -c | sed "s/^/$b: /"
    done > "$tmp/codes"
    grep -v '\[notice\]' "$tmp/error.log" 2>/dev/null | tail -12 >> "$tmp/codes"
}

count() {
    perl "$tmp/rec.pl" count "$@"
}

wait_count() {          # wait_count N FILE...: up to 10 s for N records
    want=$1
    shift
    i=0
    while [ "$(count "$@")" -lt "$want" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ "$(count "$@")" -eq "$want" ]
}

# --- install -------------------------------------------------------------

echo "# package: $deb"
echo "# nginx port: $port, temp dir: $tmp"
phase "install"

if apt install "$deb"; then ok "apt-get install ./$(basename "$deb")"
else not_ok "apt-get install ./$(basename "$deb")" "$tmp/apt.log"; exit 1; fi

check "the module is in /usr/lib/nginx/modules" test -s "$so"
check "$link -> $avail" \
    test "$(readlink "$link")" = "$avail"
check "$avail loads the module" \
    grep -qx 'load_module modules/ngx_http_affiliate_module.so;' "$avail"
check "Depends on the nginx ABI it was built against" \
    sh -c "dpkg-query -W -f='\${Depends}' $pkg | grep -q 'nginx-abi-'"
check "the ABI is the installed nginx's" sh -c \
    "dpkg-query -W -f='\${Provides}' nginx | grep -q \
     \"\$(dpkg-query -W -f='\${Depends}' $pkg | grep -o 'nginx-abi-[^ ,]*')\""
check "Depends on libmaxminddb0" \
    sh -c "dpkg-query -W -f='\${Depends}' $pkg | grep -q libmaxminddb0"
check "$rot is a conffile" \
    sh -c "dpkg-query -W -f='\${Conffiles}' $pkg | grep -q ' $rot '"
check "$logdir exists" test -d "$logdir"
check "examples in $examples" \
    test -s "$examples/links.tsv" -a -s "$examples/nginx-affiliate.conf" \
        -a -s "$examples/affiliate-ship.default"
check "Suggests postgresql-client (affiliate-ship --postgresql runs psql)" \
    sh -c "dpkg-query -W -f='\${Suggests}' $pkg | grep -q postgresql-client"
for t in affiliate-report affiliate-ship; do
    check "/usr/bin/$t runs (--help)" "/usr/bin/$t" --help
done
check "the SQL in /usr/share/$pkg/sql/" \
    test -s "/usr/share/$pkg/sql/clickhouse/schema.sql" \
        -a -s "/usr/share/$pkg/sql/postgresql/schema.sql"

check "$unit is installed" test -s "$unit"
check "affiliate-ship is not enabled (no $wants)" \
    sh -c "test ! -e '$wants' && test ! -L '$wants'"
if command -v systemctl > /dev/null; then
    systemctl is-enabled affiliate-ship.service > "$tmp/enabled" 2>&1
    check "systemctl is-enabled affiliate-ship: disabled" \
        grep -qx disabled "$tmp/enabled"
fi
if [ -d /run/systemd/system ]; then
    check "affiliate-ship is not running" \
        sh -c "! systemctl is-active -q affiliate-ship.service"
    check "systemctl cat affiliate-ship" systemctl cat affiliate-ship.service
fi
if command -v systemd-analyze > /dev/null; then
    # its Documentation= (man:affiliate-ship(1)) too, when man is there
    man=--man=no
    command -v man > /dev/null && man=--man=yes
    check "systemd-analyze verify $man $unit" \
        systemd-analyze verify "$man" "$unit"
fi

# --- example configuration, nginx -t, a click -----------------------------

phase "configure and start"
check "example configuration in place" example_config
check "nginx -t (the system's configuration)" "$nginx" -t -q
site_affiliate
check "nginx -t (test configuration on port $port)" \
    "$nginx" -t -q -c "$tmp/nginx.conf"
if start_nginx; then ok "nginx started (master $master)"
else not_ok "nginx started" "$tmp/out"; exit 1; fi

curl -s -o /dev/null -A "$ua" -w '%{http_code} %{redirect_url}\n' \
    "http://127.0.0.1:$port/go/summer" > "$tmp/click"
read -r code location < "$tmp/click"
check "GET /go/summer: 302" test "$code" = 302
check "Location goes to the shop with a click id" \
    sh -c "echo '$location' | grep -Eq \
        '^https://shop.example/summer\?src=ig&click_id=[0-9A-Z]{26}&'"
click_id=$(echo "$location" | sed -n 's/.*click_id=\([0-9A-Z]*\).*/\1/p')
wait_count 1 "$log"
if perl "$tmp/rec.pl" click "$click_id" "$log" > "$tmp/rec" 2>&1 \
    && grep -qx 'click summer anna summer25' "$tmp/rec"; then
    ok "the click's record is in $log"
else
    not_ok "the click's record is in $log" "$tmp/rec"
fi

# --- logrotate while clicks flow -------------------------------------------

phase "logrotate"
if [ ! -e "$hookdir" ]; then
    mkdir "$hookdir" && hook_made=yes
    printf '#!/bin/sh\necho "$(date +%%s)" >> %s/prerotate-ran\n' "$tmp" \
        > "$hookdir/aff-deb-test"
    chmod 755 "$hookdir/aff-deb-test"
fi
burst=3000
total=1
: > "$tmp/burst1"        # before curl: the loop below reads it at once
curl -s -o /dev/null -A "$ua" -w '%{http_code}\n' \
    "http://127.0.0.1:$port/go/summer?n=[1-$burst]" > "$tmp/burst1" &
curl_pid=$!
i=0
while [ "$(wc -l < "$tmp/burst1")" -lt $((burst / 3)) ] && [ $i -lt 300 ]; do
    sleep 0.02
    i=$((i + 1))
done
check "logrotate -f $rot (during $burst clicks)" \
    logrotate -f -s "$tmp/logrotate.state" "$rot"
wait "$curl_pid"
if [ "$hook_made" = yes ]; then
    check "the $hookdir hook ran once" \
        test "$(wc -l 2>/dev/null < "$tmp/prerotate-ran")" = 1
else
    ok "# skip $hookdir is the admin's: no test hook put there"
fi
[ "$hook_made" = yes ] && rm -rf "$hookdir" && hook_made=no
during=$(grep -c '^302$' "$tmp/burst1")
if [ "$during" = "$burst" ]; then
    ok "$burst clicks during the rotation: all 302"
else
    codes
    not_ok "$burst clicks during the rotation: all 302" "$tmp/codes"
fi
total=$((total + burst))
check "$log.1 was rotated out" test -s "$log.1"
check "a new $log was created (www-data, 0640)" \
    test "$(stat -c '%U %a' "$log")" = "www-data 640"

curl -s -o /dev/null -A "$ua" -w '%{http_code}\n' \
    "http://127.0.0.1:$port/go/kit?n=[1-500]" > "$tmp/burst2"
total=$((total + $(grep -c '^302$' "$tmp/burst2")))
if [ "$(grep -c '^302$' "$tmp/burst2")" != 500 ]; then
    codes
    sed 's/^/# /' "$tmp/codes"
fi
wait_count "$total" "$log.1" "$log"
old=$(count "$log.1")
new=$(count "$log")
echo "# records: $old in $log.1, $new in $log, $total clicks"
check "every click has its record ($total)" \
    test "$((old + new))" = "$total"
check "the rotation came after $((burst / 3)) clicks of the burst or more" \
    test "$old" -gt "$((burst / 3))"
check "records written after the rotation are in the new file" \
    test "$new" -ge 500
check "no seq gap or repeat over both files" \
    perl "$tmp/rec.pl" seq "$log.1" "$log"
sed 's/^/# /' "$tmp/out"
stop_nginx
check "nothing more written at quit" test "$(count "$log.1" "$log")" = "$total"

# --- remove, reinstall, purge, install again -------------------------------

phase "remove"
if apt remove "$pkg"; then ok "apt-get remove $pkg"
else not_ok "apt-get remove $pkg" "$tmp/apt.log"; fi
check "the module file is gone" test ! -e "$so"
check "the enabling link is set aside ($link.removed)" \
    sh -c "test ! -e '$link' && test -L '$link.removed'"
check "package state: config-files" test "$(pkg_status)" = config-files
"$nginx" -t -c "$tmp/nginx.conf" > "$tmp/t.out" 2>&1
check "nginx -t refuses affiliate_* lines left in conf.d (module not loaded)" \
    grep -q 'unknown directive "affiliate_zone"' "$tmp/t.out"
rm -f "$conf"
site_plain
check "without them: nginx -t" "$nginx" -t -q -c "$tmp/nginx.conf"
if start_nginx; then ok "nginx starts without the module"
else not_ok "nginx starts without the module" "$tmp/out"; fi
check "and answers" test "$(http_code /plain)" = 204
stop_nginx

phase "reinstall"
if apt install "$deb"; then ok "reinstall after remove"
else not_ok "reinstall after remove" "$tmp/apt.log"; fi
check "the enabling link is back" \
    sh -c "test '$(readlink "$link")' = '$avail' && test ! -L '$link.removed'"
example_config
site_affiliate
check "nginx -t" "$nginx" -t -q -c "$tmp/nginx.conf"
if start_nginx; then ok "nginx started"; else not_ok "nginx started" "$tmp/out"; fi
check "GET /go/serum: 302" test "$(http_code /go/serum)" = 302
stop_nginx
check "its record (a new nginx: seq from 1)" \
    sh -c "grep -q '\"link\":\"serum\".*\"seq\":1}' '$log'"

phase "purge"
rm -f "$conf"
if apt purge "$pkg"; then ok "apt-get purge $pkg"
else not_ok "apt-get purge $pkg" "$tmp/apt.log"; fi
check "package state: not installed" test "$(pkg_status)" = not-installed
check "the enabling links are gone" \
    sh -c "test ! -L '$link' && test ! -L '$link.removed'"
check "$rot is gone" test ! -e "$rot"
site_plain
check "nginx -t" "$nginx" -t -q -c "$tmp/nginx.conf"

phase "install after purge"
if apt install "$deb"; then ok "install after purge"
else not_ok "install after purge" "$tmp/apt.log"; fi
check "enabled again" test "$(readlink "$link")" = "$avail"
check "$rot is back" test -s "$rot"
example_config
site_affiliate
check "nginx -t" "$nginx" -t -q -c "$tmp/nginx.conf"
rm -f "$conf"
if apt purge "$pkg"; then ok "purge"; else not_ok "purge" "$tmp/apt.log"; fi
phase ""

echo "1..$n"
[ "$failed" = 0 ] || echo "# $failed failed"
exit "$failed"
