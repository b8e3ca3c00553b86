# tools/affiliate-ship into a real 2-shard ClickHouse cluster (two
# clickhouse-server processes, remote_servers "affiliate"), from two real
# nginx nodes under load, one shipper per node, through faults: a shipper
# killed with SIGKILL mid-batch and restarted, a rename rotation with
# nginx -s reopen, one shard stopped for a while and restarted, and a whole
# log shipped twice.  The killed shipper resends at most one batch (merges
# stopped until that is counted).  Then every record is in the cluster
# exactly once by id (before and after merges), with "variant" and
# "device" of A/B and device links, and
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
# no merge folds a duplicate before phase 1's are counted
$_->query('SYSTEM STOP MERGES affiliate.records_local') for @$ch;

# --- two nginx nodes, one shipper each ---------------------------------------
my %node = ShipDB::nginx_nodes($KEY);
my %ship;
sub start_ship {
    my ($n, @urls) = @_;
    $ship{$n} = ShipDB::start_ship($node{$n}, '--clickhouse',
                                   join(',', map { $_->http_url } @urls));
}
sub ship_status { ShipDB::ship_status($node{$_[0]}) }
start_ship('web1', $ch->[0], $ch->[1]);
start_ship('web2', $ch->[1], $ch->[0]);

sub traffic { ShipDB::traffic($node{$_[0]}, @_[1 .. $#_]) }
sub postback {
    my ($n, @a) = @_;
    return ShipDB::postback($node{$n}, $KEY, @a);
}
*click_ids = \&ShipDB::click_ids;

# phase 1: load on both nodes; web1's shipper is killed mid-batch
my $BATCH = 150;                    # ShipDB::start_ship's --batch
my $r1;
my ($ck_off, $log_size);
$r1 = traffic('web1', 1500, during => sub {
    my $end = time + 20;
    my $ck = $node{web1}->dir . '/ship/checkpoint.json';
    sleep 0.02 while time < $end && !-e $ck;
    kill 'KILL', $ship{web1};
    waitpid($ship{web1}, 0);
    $log_size = -s $node{web1}->dir . '/aff.log';
    my $doc = eval { decode_json(do { local (@ARGV, $/) = $ck; <> }) };
    ($ck_off) = map { $_->{offset} } values %{ $doc->{files} // {} };
    start_ship('web1', $ch->[0], $ch->[1]);
});
ok(defined $ck_off && $ck_off < $log_size,
   "web1's shipper killed with records left to send (checkpoint at byte "
   . ($ck_off // 'none') . " of $log_size), restarted");
my $r2 = traffic('web2', 1500);
is($r1->{errors} + $r2->{errors}, 0, 'phase 1: no request errors');

# what web1 wrote in phase 1 reaches the cluster; the restart sent again
# at most the batch that was in flight when the shipper was killed
sleep 0.5;                          # flush=100ms: every record is written
my $w1 = keys %{ ShipDB::ids_in($node{web1}->dir . '/aff.log') };
my ($w1_rows, $w1_ids) = (0, 0);
my $w1_end = time + 60;
while (time < $w1_end) {
    ($w1_rows, $w1_ids) = map { $_ + 0 } split /\t/, $ch->[0]->query(
        "SELECT count(), uniqExact(id) FROM affiliate.records "
        . "WHERE node = 'web1'");
    last if $w1_ids >= $w1;
    sleep 0.3;
}
is($w1_ids, $w1, "phase 1: web1's $w1 records in the cluster");
ok($w1_rows - $w1_ids <= $BATCH, 'SIGKILL and restart: at most one batch '
   . "sent twice ($w1_rows rows, $w1_ids ids, batches of $BATCH)");
$_->query('SYSTEM START MERGES affiliate.records_local') for @$ch;
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
is(ShipDB::option_clicks($node{web1}) + ShipDB::option_clicks($node{web2}),
   0, 'clicks on an A/B link and a device link');

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

# a synthetic two-node log with the awkward cases (orders on two nodes, no
# order id, unknown and bot click ids, bad amounts, three currencies)
my $gen = $node{web2}->dir . '/gen';
mkdir $gen;
system('python3', "$FindBin::Bin/lib/ship-gen.py", $gen, 3000, 2, 7, 'gen')
    == 0 or die 'ship-gen failed';
for my $g (qw(gen1 gen2)) {
    system($SHIP, '--clickhouse', $ch->[0]->http_url, '--state',
           "$gen/st-$g", '--once', "$gen/$g.log") == 0
        or die "shipping $g failed";
}

# --- every record once -----------------------------------------------------------
my @files = (map({ $node{web1}->dir . "/$_" } qw(aff.log.1 aff.log)),
             $node{web2}->dir . '/aff.log', "$gen/gen1.log", "$gen/gen2.log");
sleep 1;                            # flush=100ms: every record is written
my %want = %{ ShipDB::ids_in(@files) };
my $total = keys %want;
ok($total >= 7600, "$total records in the logs");
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
ShipDB::compare_options($ch->[0]->query(
    'SELECT id, variant, device FROM affiliate.records '
    . 'WHERE isNotNull(variant) OR isNotNull(device)'), "\t", @files);

# the worst replay: web2's log shipped again from the start (a lost state
# directory); the ids stay exact, and the ROI below is computed with these
# copies not merged yet (merges are stopped until then: a background merge
# of the small parts could otherwise fold them before we count)
$_->query('SYSTEM STOP MERGES affiliate.records_local') for @$ch;
system($SHIP, '--clickhouse', $ch->[0]->http_url, '--state',
       $node{web2}->dir . '/replay', '--once', $node{web2}->dir . '/aff.log')
    == 0 or die 'replay failed';
$end = time + 30;
my $rows = 0;
while (time < $end) {
    $rows = $ch->[0]->query('SELECT count() FROM affiliate.records') + 0;
    last if $rows >= $total + 2300;
    sleep 0.3;
}
ok($rows > $total + 2000, "the replay doubled web2's rows ($rows rows, "
   . "$total ids)");
is($ch->[0]->query('SELECT uniqExact(id) FROM affiliate.records') + 0,
   $total, 'distinct ids unchanged by the replay');

my $per_shard = join ' ', map {
    $_->query('SELECT count() FROM affiliate.records_local') + 0 } @$ch;
my ($s1, $s2) = split / /, $per_shard;
ok($s1 > 0 && $s2 > 0, "both shards hold records ($per_shard)");
my $web1 = 0;
for my $f (grep { m{^\Q${\ $node{web1}->dir}\E/} } @files) {
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

$ch->[0]->multi("$ROOT/sql/clickhouse/refresh.sql");

sub compare {
    my ($by, $view, $what, @opts) = @_;
    my @rows = map { decode_json($_) } split /\n/, $ch->[0]->query(
        "SELECT * FROM affiliate.$view FORMAT JSONEachRow");
    return ShipDB::compare_roi($by, [$REPORT, @opts, @files], \@rows, $what);
}

my $g = compare('creator', 'roi_by_creator', 'by creator, per currency',
                '--costs', "$dir/costs.tsv");
ok(scalar(grep { ($_->{conversions} // 0) > 0 } values %$g) >= 6,
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

for my $s (@$ch) {
    $s->query('SYSTEM START MERGES affiliate.records_local');
    $s->query('OPTIMIZE TABLE affiliate.records_local FINAL');
}
is($ch->[0]->query('SELECT count() FROM affiliate.records') + 0, $total,
   'after merges each id is one row');
$ch->[0]->multi("$ROOT/sql/clickhouse/refresh.sql");
compare('creator,campaign', 'roi_by_creator_campaign',
        'after merges, by creator+campaign, converted to EUR',
        '--costs', "$dir/costs.tsv", '--rates', "$dir/rates.tsv");

# --- the shipper's own errors ----------------------------------------------------
my $o = `$SHIP --clickhouse ftp://x --state $dir/s2 $dir/aff.log 2>&1`;
is($? >> 8, 2, 'a bad URL: exit 2');
like($o, qr/bad ClickHouse URL/, 'a bad URL: says so');
$o = `$SHIP --clickhouse ${\ $ch->[0]->http_url} --table affiliate.costs --state $dir/s3 --once $dir/aff.log 2>&1`;
is($? >> 8, 2, 'a schema mismatch: exit 2');
like($o, qr/has no column/, 'a schema mismatch: says which column');

# tables made before variant and device: the shipper says what is missing;
# sql/clickhouse/add-variant-device.sql adds them (here in a database
# "upg" made by schema.sql without the two columns)
sub upg_sql {
    my ($s, $file) = @_;
    open my $f, '<', $file or die "$file: $!";
    my $text = do { local $/; <$f> };
    $text =~ s/--[^\n]*//g;
    $text =~ s/\baffiliate\.(records|costs|rates)/upg.$1/g;
    $text =~ s/DATABASE IF NOT EXISTS affiliate/DATABASE IF NOT EXISTS upg/;
    $text =~ s/Distributed\(affiliate, affiliate,/Distributed(affiliate, upg,/;
    $s->query($_) for grep { /\S/ } split /;\s*\n/, $text;
}
for my $s (@$ch) {
    upg_sql($s, "$ROOT/sql/clickhouse/schema.sql");
    $s->query("ALTER TABLE upg.$_ DROP COLUMN variant, DROP COLUMN device")
        for qw(records_local records);
}
ShipDB::upgrade_log("$dir/upg.log");
my $upg = "--clickhouse ${\ $ch->[0]->http_url} --table upg.records "
    . "--state $dir/s5 --once $dir/upg.log";
$o = `$SHIP $upg 2>&1`;
is($? >> 8, 2, 'a table made before variant and device: exit 2');
like($o, qr/has no column variant, device: .*ALTER TABLE/,
     '... naming both and the upgrade');
upg_sql($_, "$ROOT/sql/clickhouse/add-variant-device.sql") for @$ch;
$o = `$SHIP $upg 2>&1`;
is($? >> 8, 0, 'after add-variant-device.sql: shipped') or diag $o;
my $u = '';
$end = time + 20;
while (time < $end) {
    $u = $ch->[0]->query('SELECT variant, device FROM upg.records');
    last if $u ne '';
    sleep 0.2;
}
is($u, "2\tios\n", '... with variant and device');

chmod 0, "$dir/rates.tsv";
if ($> != 0) {
    $o = `$SHIP --clickhouse ${\ $ch->[0]->http_url} --state $dir/s4 $dir/rates.tsv 2>&1`;
    is($? >> 8, 2, 'an unreadable file: exit 2');
}

for my $n (qw(web1 web2)) {
    kill 'TERM', $ship{$n};
    waitpid($ship{$n}, 0);
    is($? >> 8, 0, "$n shipper: SIGTERM, exit 0");
    ShipDB::diag_ship_log($node{$n});
    $node{$n}->stop;
}
$_->stop for @$ch;
done_testing;
