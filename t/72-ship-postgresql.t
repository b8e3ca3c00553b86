# tools/affiliate-ship into PostgreSQL (Debian's server, initdb into a temp
# dir, started and stopped here), from two real nginx nodes under load plus
# a synthetic two-node log with the awkward cases (orders reported on two
# nodes, no order id, unknown and bot click ids, bad amounts, three
# currencies): a shipper killed with SIGKILL mid-batch and restarted, a
# rename rotation with nginx -s reopen, the server stopped for a while.
# Then every record is in the table once by id (with "variant" and
# "device" of A/B and device links), and the ROI views equal
# affiliate-report --format json on the same files, field by field.  Then
# the shipper's own errors: a schema mismatch, a table made before variant
# and device (and sql/postgresql/add-variant-device.sql), a connection
# string psql rejects, an unknown host name and a database that does not
# exist at start-up: exit 2 with one line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use Encode ();
use Aff;
use POSIX ();
use ShipDB;

plan skip_all => 'PostgreSQL server not installed (scripts/deps.sh test-ship)'
    unless ShipDB::PostgreSQL::bindir() && -x '/usr/bin/psql';
plan skip_all => 'as root, needs the postgres system user'
    if $> == 0 && !getpwnam('postgres');

my $ROOT = "$FindBin::Bin/..";
my $SHIP = "$ROOT/tools/affiliate-ship";
my $REPORT = "$ROOT/tools/affiliate-report";
my $KEY = 'ship-postback-key-0123456789ABCD';

my $pg = ShipDB::PostgreSQL->new;
$pg->file("$ROOT/sql/postgresql/schema.sql");
$pg->file("$ROOT/sql/postgresql/roi.sql");
my @target = ('--postgresql', $pg->dsn);

my %node = ShipDB::nginx_nodes($KEY);
my %ship;
for my $n (qw(web1 web2)) {
    $ship{$n} = ShipDB::start_ship($node{$n}, @target);
}

# load; web1's shipper killed right after its first acknowledged batch
my $killed;
my $r1 = ShipDB::traffic($node{web1}, 600, during => sub {
    my $ck = $node{web1}->dir . '/ship/checkpoint.json';
    my $end = time + 20;
    sleep 0.02 while time < $end && !-e $ck;
    $killed = -e $ck;
    kill 'KILL', $ship{web1};
    waitpid($ship{web1}, 0);
    $ship{web1} = ShipDB::start_ship($node{web1}, @target);
});
ok($killed, "web1's shipper killed after a checkpoint, restarted");
my $r2 = ShipDB::traffic($node{web2}, 600);
is($r1->{errors} + $r2->{errors}, 0, 'no request errors');
my @c1 = ShipDB::click_ids($r1);
my $bad = 0;
for my $i (0 .. 19) {
    my $n = $i % 3 ? 'web1' : 'web2';
    $bad++ unless ShipDB::postback($node{$n}, $KEY, $c1[$i * 5], "P-$i",
                                   "1$i.9$i", $i % 4 ? 'EUR' : 'USD') == 200;
}
for my $n (qw(web1 web2)) {
    $bad++ unless ShipDB::postback($node{$n}, $KEY, $c1[7], 'BOTH-1', '70.10',
                                   'EUR') == 200;
}
is($bad, 0, 'postbacks answered 200');
is(ShipDB::option_clicks($node{web1}) + ShipDB::option_clicks($node{web2}),
   0, 'clicks on an A/B link and a device link');

rename $node{web1}->dir . '/aff.log', $node{web1}->dir . '/aff.log.1'
    or die $!;
$node{web1}->reopen(wait_file => 'aff.log');

# the server stops while both nodes take traffic, then comes back
$pg->stop;
for my $n (qw(web1 web2)) {
    ShipDB::traffic($node{$n}, 300);
}
my $end = time + 10;
sleep 0.2 while time < $end
    && !(ShipDB::ship_status($node{web2})->{retries} // 0);
ok((ShipDB::ship_status($node{web2})->{retries} // 0) > 0,
   'the shipper retries while the server is down');
$pg->start;

# a synthetic two-node log, shipped with --once
my $gen = $node{web2}->dir . '/gen';
mkdir $gen;
system('python3', "$FindBin::Bin/lib/ship-gen.py", $gen, 3000, 2, 7, 'gen')
    == 0 or die 'ship-gen failed';
# a User-Agent with a NUL byte (the module writes \u0000): PostgreSQL text
# cannot hold it, the shipper writes U+FFFD
open my $gf, '>>', "$gen/gen2.log" or die $!;
print $gf '{"ts":"2026-11-30T10:00:00.000Z","type":"miss","id":"01NULNULNULNULNULNULNULNUL",'
    . '"node":"gen2","click_id":null,"link":"x","ua":"a\\u0000b","bot":false,'
    . '"truncated":false,"seq":999999}' . "\n";
close $gf;
for my $g (qw(gen1 gen2)) {
    system($SHIP, @target, '--state', "$gen/st-$g", '--once',
           "$gen/$g.log") == 0 or die "shipping $g failed";
}

my @files = (map({ $node{web1}->dir . "/$_" } qw(aff.log.1 aff.log)),
             $node{web2}->dir . '/aff.log', "$gen/gen1.log", "$gen/gen2.log");
sleep 1;
my %want = %{ ShipDB::ids_in(@files) };
my $total = keys %want;
my $got = 0;
$end = time + 60;
while (time < $end) {
    $got = eval { $pg->query('SELECT count(*) FROM affiliate.records') + 0 }
        // 0;
    last if $got >= $total;
    sleep 0.3;
}
is($got, $total, "every record reached PostgreSQL ($total)");
my %have = map { $_ => 1 } split /\n/,
    $pg->query('SELECT id FROM affiliate.records');
is_deeply([sort keys %have], [sort keys %want],
          'the ids in the table are exactly the ids in the logs');
ShipDB::compare_options($pg->query(
    "SELECT id, coalesce(variant::text, '\\N'), coalesce(device, '\\N') "
    . 'FROM affiliate.records '
    . 'WHERE variant IS NOT NULL OR device IS NOT NULL'), '|', @files);
system($SHIP, @target, '--state', $node{web2}->dir . '/replay', '--once',
       $node{web2}->dir . '/aff.log') == 0 or die 'replay failed';
is($pg->query('SELECT count(*) FROM affiliate.records') + 0, $total,
   'a log shipped twice: each id still once');
is($pg->query("SELECT ua FROM affiliate.records "
              . "WHERE id = '01NULNULNULNULNULNULNULNUL'"),
   Encode::encode('UTF-8', "a\x{fffd}b\n"),
   'a NUL in a string arrives as U+FFFD');

# --- ROI equal to affiliate-report ---------------------------------------------
my $dir = $node{web1}->dir;
open my $cf, '>', "$dir/costs.tsv" or die $!;
print $cf "anna\t*\tcpc\t0.15\tEUR\n", "anna\tstories\tcpc\t0.40\tEUR\n",
    "anna\t*\tflat\t100\tEUR\n", "bob\twinter\tflat\t50.5\tUSD\n",
    "bob\t*\trevshare\t12.5\t-\n", "carla\t*\tcpa\t3.25\tGBP\n",
    "carla\tcarla-c2\trevshare\t7\t-\n", "eve\teve-c1\tcpa\t2\tUSD\n",
    "eve\t*\tcpa\t1.5\tEUR\n", "zed\t*\tflat\t10\tEUR\n";
close $cf;
open my $rf, '>', "$dir/rates.tsv" or die $!;
print $rf "USD\tEUR\t0.92\n", "GBP\tEUR\t1.1675\n";
close $rf;
system($SHIP, @target, '--load-costs', "$dir/costs.tsv") == 0
    or die 'load-costs failed';

sub compare {
    my ($by, $view, $what, @opts) = @_;
    my @rows = map { decode_json($_) } split /\n/, $pg->query(
        "SELECT row_to_json(v) FROM affiliate.$view v");
    return ShipDB::compare_roi($by, [$REPORT, @opts, @files], \@rows, $what);
}

my @costs = ('--costs', "$dir/costs.tsv");
my $g = compare('creator', 'roi_by_creator', 'by creator, per currency',
                @costs);
ok(scalar(grep { ($_->{conversions} // 0) > 0 } values %$g) >= 6,
   'the comparison covers groups with conversions');
compare('campaign', 'roi_by_campaign', 'by campaign', @costs);
compare('creator,campaign', 'roi_by_creator_campaign', 'by creator+campaign',
        @costs);
compare('day', 'roi_by_day', 'by day', @costs);
system($SHIP, @target, '--load-rates', "$dir/rates.tsv") == 0
    or die 'load-rates failed';
compare('creator', 'roi_by_creator', 'by creator, converted to EUR', @costs,
        '--rates', "$dir/rates.tsv");
compare('creator,campaign', 'roi_by_creator_campaign',
        'by creator+campaign, converted to EUR', @costs,
        '--rates', "$dir/rates.tsv");

# two shippers sending the same ids in opposite orders (two copies of a
# log replayed at once): PostgreSQL ends one transaction with "deadlock
# detected"; that batch is sent again, neither shipper gives up
$pg->query('CREATE TABLE affiliate.twice (LIKE affiliate.records '
           . 'INCLUDING ALL)');
my @dl = map { sprintf '{"ts":"2026-11-30T10:00:00.000Z","type":"miss",'
    . '"id":"01DEADLOCK%016d","node":"dl","seq":%d,"bot":false,'
    . '"truncated":false}', $_, $_ } 1 .. 20000;
my %dlpid;
for my $f ('up', 'down') {
    open my $fh, '>', "$dir/$f.log" or die $!;
    print $fh map { "$_\n" } $f eq 'up' ? @dl : reverse @dl;
    close $fh;
    $dlpid{$f} = fork // die $!;
    if (!$dlpid{$f}) {
        open STDERR, '>', "$dir/$f.err";
        { exec $SHIP, @target, '--table', 'affiliate.twice', '--batch', 20000,
              '--state', "$dir/st-$f", '--once', "$dir/$f.log" };
        POSIX::_exit(127);
    }
}
for my $f (sort keys %dlpid) {
    waitpid($dlpid{$f}, 0);
    is($? >> 8, 0, "the same ids in opposite orders: shipper $f exit 0")
        or diag `cat $dir/$f.err`;
}
is($pg->query('SELECT count(DISTINCT id) || \' \' || count(*) '
              . 'FROM affiliate.twice'), "20000 20000\n",
   'the same ids in opposite orders: each once');

# schema mismatch and a bad connection string
my $o = `$SHIP @{[map { "'$_'" } @target]} --table affiliate.costs --state $dir/s3 --once $dir/aff.log 2>&1`;
is($? >> 8, 2, 'a schema mismatch: exit 2');
like($o, qr/has no column/, 'a schema mismatch: says which column');

# a table made before variant and device (schema "upg": schema.sql without
# them): exit 2 naming them; add-variant-device.sql adds them
sub upg_sql {
    my ($file) = @_;
    open my $f, '<', $file or die "$file: $!";
    my $text = do { local $/; <$f> };
    $text =~ s/\baffiliate\b/upg/g;
    open my $g, '>', "$dir/upg.sql" or die $!;
    print $g $text;
    close $g;
    $pg->file("$dir/upg.sql");
}
upg_sql("$ROOT/sql/postgresql/schema.sql");
$pg->query('ALTER TABLE upg.records DROP COLUMN variant, DROP COLUMN device');
ShipDB::upgrade_log("$dir/upg.log");
my @upg = (@target, '--table', 'upg.records', '--state', "$dir/s5", '--once',
           "$dir/upg.log");
$o = `$SHIP @{[map { "'$_'" } @upg]} 2>&1`;
is($? >> 8, 2, 'a table made before variant and device: exit 2');
like($o, qr/has no column variant, device: .*ALTER TABLE/,
     '... naming both and the upgrade');
upg_sql("$ROOT/sql/postgresql/add-variant-device.sql");
upg_sql("$ROOT/sql/postgresql/add-variant-device.sql");
$o = `$SHIP @{[map { "'$_'" } @upg]} 2>&1`;
is($? >> 8, 0, 'after add-variant-device.sql (twice): shipped') or diag $o;
is($pg->query("SELECT variant || ' ' || device FROM upg.records"), "2 ios\n",
   '... with variant and device');

# connection strings: refused by psql's parser, an unknown host name, a
# database that does not exist (the last two: at start-up only)
my $S = qr/^affiliate-ship: bad PostgreSQL connection string: /;
my $U = qr/^affiliate-ship: PostgreSQL at start-up: /;
for my $c (['bad connection string', 'host=/tmp dbname=aff foo=bar',
            qr/${S}invalid connection option "foo"$/],
           ['bad port in the string', 'port=abc',
            qr/${S}invalid integer value "abc" for connection option "port"$/],
           ['bad URI', 'postgresql://a@[x/db', qr/$S.*in URI[^\n]*$/],
           ['unknown host name', 'host=no-such-host.invalid dbname=aff',
            qr/${U}could not translate host name "no-such-host.invalid"/],
           ['no such database', $pg->dsn =~ s/dbname=aff/dbname=nodb/r,
            qr/$U.*database "nodb" does not exist$/]) {
    my ($what, $dsn, $re) = @$c;
    $o = `$SHIP --postgresql '$dsn' --state $dir/s6 --once $dir/aff.log 2>&1`;
    is($? >> 8, 2, "$what: exit 2");
    like($o, $re, "$what: says so, in one line") or diag $o;
}

for my $n (qw(web1 web2)) {
    kill 'TERM', $ship{$n};
    waitpid($ship{$n}, 0);
    is($? >> 8, 0, "$n shipper: SIGTERM, exit 0");
    my @left = glob($node{$n}->dir . '/ship-tmp/*');
    is("@left", '', "$n shipper (killed and restarted): no temporary file "
       . 'left behind');
    ShipDB::diag_ship_log($node{$n});
    $node{$n}->stop;
}
$pg->stop;
done_testing;
