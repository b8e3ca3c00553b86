# tools/affiliate-ship into a real 2-shard ClickHouse cluster (two
# clickhouse-server processes, remote_servers "affiliate"), from two real
# nginx nodes under load, one shipper per node, through faults: a shipper
# killed with SIGKILL mid-batch and restarted, a rename rotation with
# nginx -s reopen, one shard stopped for a while and restarted.  Then every
# record is in the cluster exactly once by id (before and after merges), and
# the ROI views equal affiliate-report --format json on the same log files,
# field by field, per creator, campaign, creator+campaign and day, with
# costs, per currency and converted with rates.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use Aff;
use ShipDB;

plan skip_all => 'clickhouse-server not installed (scripts/deps.sh test-ship)'
    unless -x '/usr/sbin/clickhouse-server';
plan skip_all => 'as root, needs the clickhouse system user'
    if $> == 0 && !getpwnam('clickhouse');

my $ROOT = "$FindBin::Bin/..";
my $SHIP = "$ROOT/tools/affiliate-ship";
my $REPORT = "$ROOT/tools/affiliate-report";
my $KEY = 'ship-postback-key-0123456789ABCD';

# --- the cluster -----------------------------------------------------------
my $ch = ShipDB::ClickHouse->cluster(2);
$_->multi("$ROOT/sql/clickhouse/schema.sql") for @$ch;
$_->multi("$ROOT/sql/clickhouse/roi.sql") for @$ch;
is($ch->[0]->query('SELECT count() FROM system.clusters '
                   . "WHERE cluster = 'affiliate'"), "2\n",
   'cluster "affiliate" has 2 shards');

# --- two nginx nodes ---------------------------------------------------------
my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n"
          . "c\thttps://shop.example/c\tcarla\tlaunch\n"
          . "d\thttps://shop.example/d\tanna\tstories\n";
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
        files => { 'links.tsv' => $links, 'postback.key' => "$KEY\n" });
    chmod 0600, $node{$n}->dir . '/postback.key';
    $node{$n}->start;
}

# --- shippers ------------------------------------------------------------------
my %ship;
sub start_ship {
    my ($n, @urls) = @_;
    my $d = $node{$n}->dir;
    my $pid = fork // die $!;
    if (!$pid) {
        open STDERR, '>>', "$d/ship.err";
        { exec $SHIP, '--clickhouse', join(',', map { $_->http_url } @urls),
            '--state', "$d/ship", '--batch', 150, '--interval', 0.2,
            '--grace', 1, '--max-backoff', 1, "$d/aff.log" };
        POSIX::_exit(127);
    }
    $ship{$n} = $pid;
}
sub ship_status {
    my ($n) = @_;
    my $f = $node{$n}->dir . '/ship/status.json';
    open my $fh, '<', $f or return {};
    local $/;
    my $t = <$fh>;
    return eval { decode_json($t) } || {};
}
start_ship('web1', $ch->[0], $ch->[1]);
start_ship('web2', $ch->[1], $ch->[0]);

my $uan = 0;
sub traffic {
    my ($n, $total, %o) = @_;
    return $node{$n}->load(sub {
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
sub click_ids {
    my ($r) = @_;
    return grep { defined } map { Aff::click_id($_ // '') }
        @{ $r->{locations} };
}
my $orders = 0;
sub postback {
    my ($n, $cid, $oid, $amount, $cur) = @_;
    my $q = "/conv?order_id=$oid&amount=$amount&currency=$cur&key=$KEY";
    $q .= "&click_id=$cid" if defined $cid;
    my $r = $node{$n}->get($q, { 'User-Agent' => 'shop-backend/1' });
    $orders++;
    return $r->{status};
}

# phase 1: load on both nodes; web1's shipper is killed mid-batch
my $r1;
my $killed_at;
$r1 = traffic('web1', 1500, during => sub {
    my $end = time + 20;
    my $ck = $node{web1}->dir . '/ship/checkpoint.json';
    sleep 0.02 while time < $end && !-e $ck;
    kill 'KILL', $ship{web1};
    waitpid($ship{web1}, 0);
    $killed_at = ship_status('web1')->{records_sent};
    start_ship('web1', $ch->[0], $ch->[1]);
});
ok(defined $killed_at && $killed_at < 1500,
   "web1's shipper killed mid-stream (status: " . ($killed_at // 'none')
   . ' records), restarted');
my $r2 = traffic('web2', 1500);
is($r1->{errors} + $r2->{errors}, 0, 'phase 1: no request errors');
my @c1 = click_ids($r1);
my @c2 = click_ids($r2);

# conversions: on the node that saw the click, on the other node, an order
# reported on both nodes, no click id, an unknown click id, other currencies
my $bad = 0;
for my $i (0 .. 39) {
    my ($n, $cid) = $i % 3 ? ('web1', $c1[$i * 7]) : ('web2', $c1[$i * 5]);
    $bad++ unless postback($n, $cid, "P1-$i", sprintf('%d.%02d', 10 + $i, $i),
                           $i % 4 ? 'EUR' : 'USD') == 200;
}
$bad++ unless postback('web1', $c2[3], 'BOTH-1', '70.10', 'EUR') == 200;
$bad++ unless postback('web2', $c2[3], 'BOTH-1', '70.10', 'EUR') == 200;
$bad++ unless postback('web2', undef, 'NOCLICK-1', '5', 'EUR') == 200;
$bad++ unless postback('web1', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ', 'U-1', '1', 'GBP')
    == 200;
is($bad, 0, 'postbacks answered 200');

# rotation of web1's log: rename, then nginx -s reopen
rename $node{web1}->dir . '/aff.log', $node{web1}->dir . '/aff.log.1'
    or die $!;
$node{web1}->reopen(wait_file => 'aff.log');

# shard 2 stops; both nodes get traffic and orders; shard 2 comes back
$ch->[1]->stop;
my $r3 = traffic('web2', 800);
my $r4 = traffic('web1', 800);
for my $i (0 .. 19) {
    my @c = click_ids($r3);
    $bad++ unless postback($i % 2 ? 'web1' : 'web2', $c[$i * 11],
                           "P2-$i", "$i.5", 'EUR') == 200;
}
is($bad, 0, 'postbacks during the outage answered 200');
sleep 2;
my $fo = ship_status('web2')->{failovers} // 0;
ok($fo > 0, "web2's shipper failed over while its first server was down "
   . "($fo)");
$ch->[1]->start;

# --- every record once -----------------------------------------------------------
my %want;
my @files = (map({ $node{web1}->dir . "/$_" } qw(aff.log.1 aff.log)),
             $node{web2}->dir . '/aff.log');
for my $n (qw(web1 web2)) {
    my @f = grep { /^\Q${\ $node{$n}->dir}\E/ } @files;
    my $expect = $n eq 'web1' ? 1500 + 800 + 27 + 10 : 1500 + 800 + 15 + 10;
    $node{$n}->wait_for(sub {
        my $c = 0;
        $c += scalar(() = $node{$n}->records($_ =~ s{.*/}{}r)) for @f;
        $c >= $expect }, 15);
}
sleep 0.5;
for my $f (@files) {
    open my $fh, '<', $f or die "$f: $!";
    while (my $line = <$fh>) {
        my ($id) = $line =~ /"id":"([^"]+)"/;
        $want{$id}++;
    }
}
my $total = keys %want;
ok($total >= 4600, "$total records in the logs");
is(scalar(grep { $_ > 1 } values %want), 0, 'ids are unique in the logs');

my $end = time + 90;
my $got = 0;
while (time < $end) {
    $got = eval { $ch->[0]->query(
        'SELECT uniqExact(id) FROM affiliate.records') + 0 } // 0;
    last if $got >= $total
        && (ship_status('web1')->{lag_records} // 1) == 0
        && (ship_status('web2')->{lag_records} // 1) == 0;
    sleep 0.5;
}
is($got, $total, 'every record reached the cluster');
my %have;
for my $line (split /\n/, $ch->[0]->query(
        'SELECT id, count() FROM affiliate.records GROUP BY id')) {
    my ($id, $c) = split /\t/, $line;
    $have{$id} = $c;
}
is_deeply([sort keys %have], [sort keys %want],
          'the ids in the cluster are exactly the ids in the logs');
my $copies = 0;
$copies += $_ - 1 for values %have;
note("rows resent and not yet merged: $copies");
for my $s (@$ch) {
    $s->query('OPTIMIZE TABLE affiliate.records_local FINAL');
}
is($ch->[0]->query('SELECT count() FROM affiliate.records') + 0, $total,
   'after merges each id is one row');
my $per_shard = join ' ', map {
    $_->query('SELECT count() FROM affiliate.records_local') + 0 } @$ch;
my ($s1, $s2) = split / /, $per_shard;
ok($s1 > 0 && $s2 > 0, "both shards hold records ($per_shard)");
my $web1 = 0;
for my $f (@files[0, 1]) {
    open my $fh, '<', $f or die $!;
    $web1++ while <$fh>;
}
is($ch->[0]->query("SELECT count() FROM affiliate.records WHERE "
                   . "node = 'web1'") + 0, $web1, 'node is kept');

# a conversion that carries a click_id lives on its click's shard
for my $i (0, 1) {
    is($ch->[$i]->query(<<'EOF') + 0, 0, "shard $i: conversions with their click");
SELECT count() FROM affiliate.records_local
WHERE type = 'conversion' AND isNotNull(click_id)
  AND click_id NOT IN (SELECT click_id FROM affiliate.records_local
                       WHERE type IN ('click', 'landing')
                         AND isNotNull(click_id))
  AND click_id IN (SELECT click_id FROM affiliate.records
                   WHERE type IN ('click', 'landing') AND isNotNull(click_id))
EOF
}

# --- ROI equal to affiliate-report ---------------------------------------------
my $dir = $node{web1}->dir;
open my $cf, '>', "$dir/costs.tsv" or die $!;
print $cf "anna\t*\tcpc\t0.15\tEUR\n", "anna\tstories\tcpc\t0.40\tEUR\n",
    "anna\t*\tflat\t100\tEUR\n", "bob\twinter\tflat\t50.5\tUSD\n",
    "bob\t*\trevshare\t12.5\t-\n", "carla\t*\tcpa\t3.25\tGBP\n",
    "carla\tlaunch\trevshare\t7\t-\n", "zed\t*\tflat\t10\tEUR\n";
close $cf;
open my $rf, '>', "$dir/rates.tsv" or die $!;
print $rf "USD\tEUR\t0.92\n", "GBP\tEUR\t1.1675\n";
close $rf;
for my $s (@$ch) {
    system($SHIP, '--clickhouse', $s->http_url, '--load-costs',
           "$dir/costs.tsv") == 0 or die 'load-costs failed';
}

sub canon {
    my ($v) = @_;
    return undef if !defined $v || $v eq '\N';
    return $v unless $v =~ /^-?[0-9]+(\.[0-9]+)?$/;
    $v =~ s/(\.[0-9]*?)0+$/$1/;
    $v =~ s/\.$//;
    $v = '0' if $v eq '-0';
    return $v;
}

sub compare {
    my ($by, $view, $what, @opts) = @_;
    my @keys = split /,/, $by;
    my $out = `$REPORT --format json --by $by @opts @files`;
    my $rep = decode_json($out);
    my (%a, %b);
    for my $g (@{ $rep->{groups} }) {
        my $k = join "\x01", map({ $_ // '(null)' } @{ $g->{key} }{@keys}),
            $g->{currency} // '(null)';
        $a{$k} = { map { $_ => canon($g->{$_}) } grep { $_ ne 'key' }
                   keys %$g };
    }
    for my $line (split /\n/, $ch->[0]->query(
            "SELECT * FROM affiliate.$view FORMAT JSONEachRow")) {
        my $o = decode_json($line);
        my $k = join "\x01", map({ $_ // '(null)' } @{$o}{@keys}),
            $o->{currency} // '(null)';
        $b{$k} = { map { $_ => canon($o->{$_}) } grep { my $f = $_;
                   !grep { $_ eq $f } @keys } keys %$o };
    }
    is(scalar(keys %a), scalar(keys %b), "$what: same groups ("
       . scalar(keys %a) . ')');
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
    is(scalar(@diff), 0, "$what: every field equal") or diag join "\n",
        @diff[0 .. ($#diff > 20 ? 20 : $#diff)];
    return \%a;
}

my $g = compare('creator', 'roi_by_creator', 'by creator, per currency',
                '--costs', "$dir/costs.tsv");
ok(scalar(grep { ($_->{conversions} // 0) > 0 } values %$g) >= 3,
   'the comparison covers groups with conversions');
compare('campaign', 'roi_by_campaign', 'by campaign',
        '--costs', "$dir/costs.tsv");
compare('creator,campaign', 'roi_by_creator_campaign', 'by creator+campaign',
        '--costs', "$dir/costs.tsv");
compare('day', 'roi_by_day', 'by day', '--costs', "$dir/costs.tsv");
system($SHIP, '--clickhouse', $ch->[0]->http_url, '--load-rates',
       "$dir/rates.tsv", '--currency', 'EUR') == 0 or die 'load-rates';
compare('creator', 'roi_by_creator', 'by creator, converted to EUR',
        '--costs', "$dir/costs.tsv", '--rates', "$dir/rates.tsv");
compare('creator,campaign', 'roi_by_creator_campaign',
        'by creator+campaign, converted to EUR',
        '--costs', "$dir/costs.tsv", '--rates', "$dir/rates.tsv");

# --- the shipper's own errors ----------------------------------------------------
my $o = `$SHIP --clickhouse ftp://x --state $dir/s2 $dir/aff.log 2>&1`;
is($? >> 8, 2, 'a bad URL: exit 2');
like($o, qr/bad ClickHouse URL/, 'a bad URL: says so');
$o = `$SHIP --clickhouse ${\ $ch->[0]->http_url} --table affiliate.costs --state $dir/s3 --once $dir/aff.log 2>&1`;
is($? >> 8, 2, 'a schema mismatch: exit 2');
like($o, qr/has no column/, 'a schema mismatch: says which column');
chmod 0, "$dir/rates.tsv";
if ($> != 0) {
    $o = `$SHIP --clickhouse ${\ $ch->[0]->http_url} --state $dir/s4 $dir/rates.tsv 2>&1`;
    is($? >> 8, 2, 'an unreadable file: exit 2');
}

for my $n (qw(web1 web2)) {
    kill 'TERM', $ship{$n};
    waitpid($ship{$n}, 0);
    is($? >> 8, 0, "$n shipper: SIGTERM, exit 0");
    $node{$n}->stop;
}
$_->stop for @$ch;
done_testing;
