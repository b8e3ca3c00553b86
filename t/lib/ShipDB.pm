package ShipDB;

# Database servers for the shipping tests, each in its own temp dir on
# free ports, stopped when the test ends:
#   my $ch = ShipDB::ClickHouse->cluster(2);   # 2 shards, cluster "affiliate"
#   $ch->[0]->http_url, ->query($sql), ->multi($file), ->stop, ->start
#   my $pg = ShipDB::PostgreSQL->new;           # initdb, pg_ctl start
#   $pg->dsn, ->query($sql), ->file($file), ->stop, ->start
# As root the servers run as the "clickhouse" / "postgres" system users
# (setpriv).  Binaries: Debian's /usr/sbin/clickhouse-server (18.16 on
# Debian 12) and /usr/lib/postgresql/<newest>/bin.
#   ShipDB::compare_roi($by, \@report_cmd, \@sql_rows, $what)
#       tests that the ROI rows of a view equal affiliate-report's JSON
#       groups, field by field (numbers compared as exact decimals).
#   ShipDB::nginx_nodes, start_ship, traffic, option_clicks (clicks on an
#   A/B link and a device link), compare_options (their variant and device
#   in a table equal the logs'), upgrade_log: two nginx nodes, their
#   shippers and what the tests send them.

use strict;
use warnings;
use File::Temp qw(tempdir);
use JSON::PP ();
use Cwd ();
use File::Basename ();
use Aff;
use Test::More ();
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

our @ALL;

sub free_port {
    for (1 .. 200) {
        my $p = 20000 + int(rand(30000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $p, Listen => 1,
                                      ReuseAddr => 1) or next;
        close $s;
        return $p;
    }
    die "no free port";
}

sub http {
    my ($port, $path, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 60) or return (0, '');
    $body //= '';
    print $s "POST $path HTTP/1.0\r\nHost: x\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    local $/;
    my $r = <$s> // '';
    my ($code) = $r =~ m{^HTTP/1\.\d (\d+)};
    $r =~ s/^.*?\r\n\r\n//s;
    return ($code // 0, $r);
}

sub uri_escape {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

package ShipDB::ClickHouse;

sub cluster {
    my ($class, $n) = @_;
    my @nodes = map {
        bless { http => ShipDB::free_port(), tcp => ShipDB::free_port(),
                inter => ShipDB::free_port() }, $class } 1 .. $n;
    my $shards = join '', map {
        "<shard><replica><host>127.0.0.1</host><port>$_->{tcp}</port>"
      . "</replica></shard>" } @nodes;
    for my $s (@nodes) {
        my $d = File::Temp::tempdir('ship-ch-XXXXXX', TMPDIR => 1,
                                    CLEANUP => !$ENV{AFF_KEEP});
        chmod 0755, $d;
        $s->{dir} = $d;
        mkdir "$d/$_" for qw(data tmp log);
        open my $f, '>', "$d/config.xml" or die $!;
        print $f <<"X";
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log>
    <errorlog>$d/log/err.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>$s->{http}</http_port>
  <tcp_port>$s->{tcp}</tcp_port>
  <interserver_http_port>$s->{inter}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/tmp/</user_files_path>
  <format_schema_path>$d/tmp/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <remote_servers><affiliate>$shards</affiliate></remote_servers>
</yandex>
X
        close $f;
        open $f, '>', "$d/users.xml" or die $!;
        print $f <<'X';
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage>
    <distributed_directory_monitor_sleep_time_ms>200</distributed_directory_monitor_sleep_time_ms>
  </default></profiles>
  <users><default><password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
X
        close $f;
        system('chown', '-R', 'clickhouse:clickhouse', $d) if $> == 0;
        push @ShipDB::ALL, $s;
    }
    $_->start for @nodes;
    return \@nodes;
}

sub http_url { 'http://127.0.0.1:' . $_[0]{http} }

sub start {
    my ($s) = @_;
    my @cmd = ('/usr/sbin/clickhouse-server',
               "--config-file=$s->{dir}/config.xml");
    unshift @cmd, 'setpriv', '--reuid=clickhouse', '--regid=clickhouse',
        '--clear-groups' if $> == 0;
    my $pid = fork // die $!;
    if (!$pid) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$s->{dir}/log/stdout";
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    $s->{pid} = $pid;
    my $end = Time::HiRes::time() + 60;
    while (Time::HiRes::time() < $end) {
        my ($c, $b) = ShipDB::http($s->{http}, '/?query=SELECT%201');
        return $s if $c == 200;
        die "clickhouse-server exited: " . `tail -5 $s->{dir}/log/err.log`
            if waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.2);
    }
    die "clickhouse-server did not answer on $s->{http}";
}

sub stop {
    my ($s) = @_;
    return unless $s->{pid};
    kill 'TERM', $s->{pid};
    my $end = Time::HiRes::time() + 30;
    while (Time::HiRes::time() < $end) {
        last if waitpid($s->{pid}, POSIX::WNOHANG()) == $s->{pid};
        Time::HiRes::sleep(0.1);
    }
    if (kill 0, $s->{pid}) {
        kill 'KILL', $s->{pid};
        waitpid($s->{pid}, 0);
    }
    delete $s->{pid};
}

# query text (TabSeparated) or die
sub query {
    my ($s, $sql, $body) = @_;
    my ($c, $r) = ShipDB::http($s->{http},
                               '/?query=' . ShipDB::uri_escape($sql), $body);
    die "clickhouse: $sql\n$r" unless $c == 200;
    return $r;
}

sub multi {
    my ($s, $file) = @_;
    open my $f, '<', $file or die "$file: $!";
    local $/;
    my $text = <$f>;
    $text =~ s/--[^\n]*//g;
    for my $q (split /;\s*\n/, $text) {
        next unless $q =~ /\S/;
        $s->query($q);
    }
}

package ShipDB::PostgreSQL;

sub bindir {
    my @v = sort { $b <=> $a } map { m{/(\d+)$} ? $1 : () }
        glob('/usr/lib/postgresql/*');
    return @v ? "/usr/lib/postgresql/$v[0]/bin" : undef;
}

sub as_user {
    return $> == 0 ? ('setpriv', '--reuid=postgres', '--regid=postgres',
                      '--clear-groups') : ();
}

sub new {
    my ($class) = @_;
    my $bin = bindir() or die 'no PostgreSQL server installed';
    my $d = File::Temp::tempdir('ship-pg-XXXXXX', TMPDIR => 1,
                                CLEANUP => !$ENV{AFF_KEEP});
    chmod 0755, $d;
    system('chown', 'postgres:postgres', $d) if $> == 0;
    my $s = bless { bin => $bin, dir => $d, port => ShipDB::free_port() },
        $class;
    my $pid = fork // die $!;
    if (!$pid) {
        open STDOUT, '>', "$d/initdb.log";
        open STDERR, '>&', \*STDOUT;
        { exec as_user(), "$bin/initdb", '-D', "$d/data", '-A', 'trust',
              '-U', 'postgres', '--no-sync', '-E', 'UTF8',
              '--locale=C.UTF-8' };
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    die 'initdb failed: ' . `tail -5 $d/initdb.log` if $?;
    push @ShipDB::ALL, $s;
    $s->start;
    $s->query('CREATE DATABASE aff', 'postgres');
    return $s;
}

sub dsn { "host=$_[0]{dir} port=$_[0]{port} user=postgres dbname=aff" }

sub start {
    my ($s) = @_;
    system(as_user(), "$s->{bin}/pg_ctl", '-D', "$s->{dir}/data", '-l',
           "$s->{dir}/log", '-w', '-s', '-o',
           "-p $s->{port} -k $s->{dir} -c listen_addresses='' -c fsync=off",
           'start') == 0 or die "pg_ctl start failed: "
        . `tail -5 $s->{dir}/log`;
    $s->{up} = 1;
}

sub stop {
    my ($s) = @_;
    return unless $s->{up};
    system(as_user(), "$s->{bin}/pg_ctl", '-D', "$s->{dir}/data", '-w', '-s',
           '-m', 'fast', 'stop');
    $s->{up} = 0;
}

sub psql {
    my ($s, $db, @args) = @_;
    my $dsn = "host=$s->{dir} port=$s->{port} user=postgres dbname=$db";
    open my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-v',
        'ON_ERROR_STOP=1', '-d', $dsn, @args or die $!;
    local $/;
    my $out = <$fh>;
    close $fh or die "psql @args failed";
    return $out;
}

sub query { my ($s, $sql, $db) = @_; $s->psql($db // 'aff', '-c', $sql) }
sub file  { my ($s, $file) = @_; $s->psql('aff', '-f', $file) }

package ShipDB;

sub canon {
    my ($v) = @_;
    return undef if !defined $v || $v eq '\N';
    return $v unless $v =~ /^-?[0-9]+(\.[0-9]+)?$/;
    $v =~ s/(\.[0-9]*?)0+$/$1/;
    $v =~ s/\.$//;
    $v = '0' if $v eq '-0';
    return $v;
}

sub compare_roi {
    my ($by, $report, $rows, $what) = @_;
    my @keys = split /,/, $by;
    open my $fh, '-|', @$report, '--format', 'json', '--by', $by
        or die "@$report: $!";
    my $json = do { local $/; <$fh> };
    close $fh;
    my $rep = JSON::PP::decode_json($json);
    my (%a, %b);
    my $key = sub {
        my ($h, $cur) = @_;
        return join "\x01", map({ $_ // '(null)' } @{$h}{@keys}),
            $cur // '(null)';
    };
    for my $g (@{ $rep->{groups} }) {
        $a{ $key->($g->{key}, $g->{currency}) } =
            { map { $_ => canon($g->{$_}) } grep { $_ ne 'key' } keys %$g };
    }
    my %is_key = map { $_ => 1 } @keys;
    for my $o (@$rows) {
        $b{ $key->($o, $o->{currency}) } =
            { map { $_ => canon($o->{$_}) } grep { !$is_key{$_} } keys %$o };
    }
    Test::More::is(scalar(keys %b), scalar(keys %a),
                   "$what: same groups (" . scalar(keys %a) . ')');
    my @diff;
    for my $k (sort keys %a) {
        if (!$b{$k}) { push @diff, "missing group $k"; next }
        for my $f (sort keys %{ $a{$k} }) {
            my ($x, $y) = ($a{$k}{$f}, $b{$k}{$f});
            push @diff, "$k $f: report " . ($x // 'null') . ', sql '
                . ($y // 'null')
                unless (defined $x ? $x : "\0") eq (defined $y ? $y : "\0");
        }
    }
    Test::More::is(scalar(@diff), 0, "$what: every field equal")
        or Test::More::diag(join "\n", @diff[0 .. ($#diff > 20 ? 20 : $#diff)]);
    return \%a;
}

# --- nginx nodes and shippers ---------------------------------------------------

my $ROOT = File::Basename::dirname(Cwd::abs_path(__FILE__)) . '/../..';

sub nginx_nodes {
    my ($key) = @_;
    # e: an A/B link, f: a device link (option_clicks() below)
    my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
              . "b\thttps://shop.example/b\tbob\twinter\n"
              . "c\thttps://shop.example/c\tcarla\tlaunch\n"
              . "d\thttps://shop.example/d\tanna\tstories\n"
              . "e\thttps://shop.example/e\tanna\tsummer\t"
              . "ab=https://shop.example/e1*50,https://shop.example/e2*50\n"
              . "f\thttps://shop.example/f\tbob\twinter\t"
              . "ios=https://apps.example/f\tandroid=https://play.example/f\n";
    my %node;
    for my $n (qw(web1 web2)) {
        $node{$n} = Aff->new(
            workers => 2,
            http => <<"EOF",
    affiliate_node  $n;
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_postback_key %%DIR%%/postback.key;
    affiliate_bot_ua "ShipBot";
    server {
        listen 127.0.0.1:%%PORT%%;
        location /go/ { affiliate_redirect zone=aff; }
        location /shop/ {
            affiliate_capture zone=aff creator=ref campaign=cmp;
            return 200 "page\\n";
        }
        location = /conv { affiliate_conversion zone=aff; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF
            files => { 'links.tsv' => $links, 'postback.key' => "$key\n" });
        chmod 0600, $node{$n}->dir . '/postback.key';
        $node{$n}->start;
    }
    return %node;
}

# affiliate-ship for a node's aff.log, state in DIR/ship, stderr in
# DIR/ship.err; small batches, quick retries
sub start_ship {
    my ($t, @target) = @_;
    my $d = $t->dir;
    my $pid = fork // die $!;
    if (!$pid) {
        open STDERR, '>>', "$d/ship.err";
        # a private TMPDIR: the tests check the shipper leaves nothing there
        mkdir "$d/ship-tmp";
        $ENV{TMPDIR} = "$d/ship-tmp";
        { exec "$ROOT/tools/affiliate-ship", @target, '--state', "$d/ship",
              '--batch', 150, '--interval', 0.2, '--grace', 1,
              '--max-backoff', 1, "$d/aff.log" };
        POSIX::_exit(127);
    }
    return $pid;
}

# a failing test shows what the node's shipper said
sub diag_ship_log {
    my ($t) = @_;
    return if Test::More->builder->is_passing;
    open my $fh, '<', $t->dir . '/ship.err' or return;
    my @l = <$fh>;
    splice @l, 0, @l - 40 if @l > 40;
    Test::More::diag($t->dir . "/ship.err:\n", @l);
}

sub ship_status {
    my ($t) = @_;
    open my $fh, '<', $t->dir . '/ship/status.json' or return {};
    local $/;
    my $text = <$fh>;
    return eval { JSON::PP::decode_json($text) } || {};
}

# clicks (every 9th a bot, every 13th a landing) on the four links
sub traffic {
    my ($t, $total, %o) = @_;
    return $t->load(sub {
        my $i = shift;
        my $l = (qw(a b c d))[$i % 4];
        my $ua = $i % 9 == 0 ? 'ShipBot/1.0'
               : 'Mozilla/5.0 ship/' . ($i % 40);
        if ($i % 13 == 0) {
            my ($c, $cp) = $i % 2 ? ('bob', 'winter') : ('dora', 'ig');
            return ["/shop/x?ref=$c&cmp=$cp", { 'User-Agent' => $ua }];
        }
        return ["/go/$l", { 'User-Agent' => $ua }];
    }, total => $total, concurrency => 4, collect => 1, %o);
}

# clicks on the A/B link (visitors that differ by User-Agent) and the
# device link (an iPhone, an Android phone, a desktop): records with
# "variant" and "device"
my %UA = (
    ios => 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) '
        . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 '
        . 'Mobile/15E148 Safari/604.1',
    android => 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 '
        . '(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
    desktop => 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
        . '(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36');
sub option_clicks {
    my ($t) = @_;
    my $bad = 0;
    for my $i (1 .. 12) {
        $bad++ unless $t->get('/go/e', { 'User-Agent' => "Mozilla/5.0 ab/$i" })
            ->{status} == 302;
    }
    for my $dev (sort keys %UA) {
        $bad++ unless $t->get('/go/f', { 'User-Agent' => $UA{$dev} })
            ->{status} == 302;
    }
    return $bad;
}

# tests that the rows "id SEP variant SEP device" (\N: null) that a query
# gave for the records with a variant or a device are those of the files
sub compare_options {
    my ($text, $sep, @files) = @_;
    my %want;
    for my $f (@files) {
        open my $fh, '<', $f or die "$f: $!";
        while (my $line = <$fh>) {
            next unless $line =~ /"(?:variant|device)":/;
            my $r = JSON::PP::decode_json($line);
            next unless defined $r->{variant} || defined $r->{device};
            $want{ $r->{id} } = join ' ', map { $_ // '\N' }
                @{$r}{qw(variant device)};
        }
    }
    my %have = map { my ($id, $v, $dv) = split /\Q$sep\E/; ($id => "$v $dv") }
        split /\n/, $text;
    Test::More::ok((grep { /^\d+ \\N$/ } values %want) >= 20
                   && (grep { /^\\N (ios|android|desktop)$/ } values %want)
                   >= 6, 'the logs have records with variant and with '
                   . 'device (' . scalar(keys %want) . ')');
    Test::More::is_deeply(\%have, \%want,
                          'variant and device arrive with every record');
}

# a record with variant and device, for the upgrade tests
sub upgrade_log {
    my ($path) = @_;
    open my $f, '>', $path or die "$path: $!";
    print $f '{"ts":"2026-11-30T10:00:00.000Z","type":"click","id":'
        . '"01UPGRADE0000000000000000A","node":"u","click_id":'
        . '"01UPGRADE0000000000000000A","link":"e","variant":2,'
        . '"device":"ios","ip":"203.0.113.9","bot":false,"truncated":false,'
        . '"seq":1}' . "\n";
    close $f;
}

sub click_ids {
    my ($r) = @_;
    return grep { defined } map { Aff::click_id($_ // '') }
        @{ $r->{locations} };
}

sub postback {
    my ($t, $key, $cid, $oid, $amount, $cur) = @_;
    my $q = "/conv?order_id=$oid&amount=$amount&currency=$cur&key=$key";
    $q .= "&click_id=$cid" if defined $cid;
    return $t->get($q, { 'User-Agent' => 'shop-backend/1' })->{status};
}

# ids of the records in these files: { id => count }
sub ids_in {
    my %want;
    for my $f (@_) {
        open my $fh, '<', $f or die "$f: $!";
        while (my $line = <$fh>) {
            my ($id) = $line =~ /"id":"([^"]+)"/;
            $want{$id}++;
        }
    }
    return \%want;
}

END {
    my $rc = $?;
    $_->stop for @ALL;
    $? = $rc;
}

1;
