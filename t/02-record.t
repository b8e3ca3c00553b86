# Records: every field of click and miss records, nulls, truncation at the
# documented limits, seq, and the status JSON that counts them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(time);
use Aff;

# 1024 bytes, the longest destination the link table takes
my $long_dest = 'https://long.example/' . ('p' x 1003);

my $links = <<"EOF";
anna-summer\thttps://b.example/p?x=1#top\tanna\tsummer
esc\thttps://shop.example/e\ta b"c\\\\d\tcamp x
quoted\thttps://shop.example/q?x="y"\tanna\tsummer
utf\thttps://shop.example/u?x="y"\tzo\xc3\xab\t\xc3\xa9t\xc3\xa9
\xc3\xa9t\xc3\xa9\thttps://shop.example/v\tanna\tsummer
long\t$long_dest\tlen\tlong
EOF

my $t = Aff->new(
    http  => Aff::std_http(),
    files => { 'links.tsv' => $links },
);
$t->start;

my $ULID = $Aff::ULID;
my $n = 0;    # records expected so far

sub wait_records {
    my ($count) = @_;
    $t->wait_for(sub { scalar($t->raw_lines('aff.log')) >= $count }, 10);
    my @r = $t->records('aff.log');
    is(scalar @r, $count, "$count records in aff.log") or diag explain \@r;
    return @r;
}

sub ts_ok {
    my ($ts, $before, $after, $name) = @_;
    like($ts, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
        "$name: ts is RFC 3339 UTC with ms");
    my ($date, $ms) = $ts =~ /^(.*)\.(\d{3})Z$/ or return;
    my $lo = strftime('%Y-%m-%dT%H:%M:%S', gmtime(int $before));
    my $hi = strftime('%Y-%m-%dT%H:%M:%S', gmtime(int($after) + 1));
    ok($date ge $lo && $date le $hi, "$name: ts $ts between $lo and $hi");
}

# --- a click with every header -------------------------------------------

my $t0 = time;
my $r = $t->get('/go/anna-summer', [
    [Host => 'shop.test'],
    ['User-Agent' => 'Mozilla/5.0 (X11; Linux) Test/1.0'],
    [Referer => 'https://social.example/post/1?a=b'],
]);
my $t1 = time;
is($r->{status}, 302, 'click: 302');
my $loc = $r->{headers}{location};
my $id = Aff::click_id($loc);
$n++;

my ($c) = wait_records($n);
my @keys = qw(ts type click_id link creator campaign dest status ip ua
              referer host truncated seq);
ok(exists $c->{$_}, "click: field $_ present") for @keys;
ts_ok($c->{ts}, $t0, $t1, 'click');
is($c->{type}, 'click', 'click: type');
like($c->{click_id}, qr/^$ULID$/, 'click: click_id is a ULID');
is($c->{click_id}, $id, 'click: click_id is the one in Location');
is($c->{link}, 'anna-summer', 'click: link');
is($c->{creator}, 'anna', 'click: creator');
is($c->{campaign}, 'summer', 'click: campaign');
is($c->{dest}, $loc, 'click: dest is the Location sent');
is($c->{dest}, "https://b.example/p?x=1&click_id=$id&utm_source=anna"
    . '&utm_medium=affiliate&utm_campaign=summer#top', 'click: dest exact');
ok(!ref $c->{status} && $c->{status} =~ /^\d+$/, 'click: status is a number');
is($c->{status}, 302, 'click: status');
is($c->{ip}, '127.0.0.1', 'click: ip');
is($c->{ua}, 'Mozilla/5.0 (X11; Linux) Test/1.0', 'click: ua');
is($c->{referer}, 'https://social.example/post/1?a=b', 'click: referer');
is($c->{host}, 'shop.test', 'click: host');
ok(JSON::PP::is_bool($c->{truncated}) && !$c->{truncated},
    'click: truncated is false');
ok(!ref $c->{seq} && $c->{seq} =~ /^\d+$/, 'click: seq is a number');
my $seq0 = $c->{seq};
is($seq0, 1, 'the first seq of a new zone is 1');
is($c->{bot}, JSON::PP::false, 'click with a browser UA: bot false');
is($c->{bot_reason}, undef, 'click with a browser UA: bot_reason null');

# the raw line: one line, seq is a JSON number, status too
my ($line) = $t->raw_lines('aff.log');
like($line, qr/"seq":\d+[,}]/, 'seq is written as a number');
like($line, qr/"status":302[,}]/, 'status is written as a number');
like($line, qr/^\{.*\}$/, 'record is one JSON object on one line');

# --- the slug as requested -----------------------------------------------

$r = $t->get('/go/ANNA-Summer?utm_source=zzz');
is($r->{status}, 302, 'mixed case: 302');
$n++;
my @recs = wait_records($n);
is($recs[-1]{link}, 'ANNA-Summer', 'link is the slug as requested');
is($recs[-1]{creator}, 'anna', 'mixed case: creator of the link');
is($recs[-1]{seq}, $seq0 + 1, 'seq + 1');

# --- a miss without optional headers --------------------------------------

$t0 = time;
# HTTP/1.0, no headers at all
$r = $t->get('/go/nope', { Host => undef, 'User-Agent' => undef });
$t1 = time;
is($r->{status}, 404, 'miss: 404');
$n++;
@recs = wait_records($n);
my $m = $recs[-1];
# absent means null: a field that does not apply is not written
ok(exists $m->{$_}, "miss: field $_ present")
    for qw(ts type id node link status ip bot truncated seq);
ok(!exists $m->{$_}, "miss: field $_ absent (null)")
    for qw(click_id creator campaign dest ua referer host rule unique
           cookie bot_reason attributed duplicate);
ts_ok($m->{ts}, $t0, $t1, 'miss');
is($m->{type}, 'miss', 'miss: type');
is($m->{click_id}, undef, 'miss: click_id null');
is($m->{link}, 'nope', 'miss: link');
is($m->{creator}, undef, 'miss: creator null');
is($m->{campaign}, undef, 'miss: campaign null');
is($m->{dest}, undef, 'miss: dest null');
is($m->{status}, 404, 'miss: status');
is($m->{ip}, '127.0.0.1', 'miss: ip');
is($m->{ua}, undef, 'miss: ua null');
is($m->{referer}, undef, 'miss: referer null');
is($m->{host}, undef, 'miss: host null');
ok(JSON::PP::is_bool($m->{truncated}) && !$m->{truncated},
    'miss: truncated false');
is($m->{seq}, $seq0 + 2, 'miss: seq + 1');

# a click without User-Agent and Referer: those are null
$r = $t->get('/go/anna-summer', { 'User-Agent' => undef });
$n++;
@recs = wait_records($n);
is($recs[-1]{ua}, undef, 'click without UA: ua null');
is($recs[-1]{type}, 'click', 'click without UA: still a click record');
is($recs[-1]{bot}, JSON::PP::true, 'click without UA: bot true');
is($recs[-1]{bot_reason}, 'no_ua', 'click without UA: bot_reason no_ua');
is($recs[-1]{referer}, undef, 'click without Referer: referer null');
is($recs[-1]{host}, 'localhost', 'click: host header');

# empty header values are empty strings, not null
$t->get('/go/anna-summer', [['User-Agent' => ''], [Referer => '']]);
$n++;
@recs = wait_records($n);
is($recs[-1]{ua}, '', 'empty UA: ""');
is($recs[-1]{referer}, '', 'empty Referer: ""');

# creator with JSON-special characters
$r = $t->get('/go/esc');
$n++;
@recs = wait_records($n);
is($recs[-1]{creator}, 'a b"c\\\\d', 'creator with quote and backslashes');
is($recs[-1]{dest}, $r->{headers}{location}, 'esc: dest');
like($r->{headers}{location}, qr/utm_source=a%20b%22c%5C%5Cd&/,
    'esc: creator escaped in Location');

# Names and destinations that are plain printable ASCII are copied into
# the record as they are (flags made when the table is loaded); the rest
# still goes through the escaping writer: a quote in a destination, UTF-8
# in a creator, a campaign or a slug.
for my $case (['/go/quoted', 'quoted', 'anna', 'summer', 'q'],
              ['/go/utf', 'utf', "zo\x{eb}", "\x{e9}t\x{e9}", 'u'],
              ['/go/%C3%A9t%C3%A9', "\x{e9}t\x{e9}", 'anna', 'summer', 'v'])
{
    my ($path, $link, $creator, $campaign, $p) = @$case;
    $r = $t->get($path);
    $n++;
    @recs = wait_records($n);
    is($r->{status}, 302, "$link: 302");
    is($recs[-1]{link}, $link, "$link: link");
    is($recs[-1]{creator}, $creator, "$link: creator");
    is($recs[-1]{campaign}, $campaign, "$link: campaign");
    is($recs[-1]{dest}, $r->{headers}{location}, "$link: dest is Location");
    like($recs[-1]{dest}, qr{^https://shop\.example/\Q$p\E[?]},
         "$link: dest");
}
like($t->read_file('aff.log'), qr/"dest":"[^"]*x=\\"y\\"&click_id=/,
     'a quote in a destination is escaped in the record');
like($recs[-2]{dest}, qr/utm_source=zo%C3%AB&.*utm_campaign=%C3%A9t%C3%A9$/,
     'UTF-8 names are escaped in Location');

# --- truncation -----------------------------------------------------------

# The limits from the issue, in bytes of escaped JSON output (the text
# between the quotes); the slot size of docs/internals.md (4 KiB).
my %LIMIT = (ua => 512, referer => 512, link => 128, host => 128,
             dest => 1024);
my $SLOT = 256;

sub cut_ok {
    my ($rec, $field, $sent) = @_;
    my $L = $LIMIT{$field};
    my $got = $rec->{$field} // '';
    is(length($got), $L, "$field cut at its limit $L");
    is($got, substr($sent, 0, length $got), "$field: cut value is a prefix");
    ok($rec->{truncated}, "$field cut: truncated true");
}

$t->get('/go/anna-summer', [['User-Agent' => 'u' x 600]]);
$n++;
@recs = wait_records($n);
cut_ok($recs[-1], 'ua', 'u' x 600);

$t->get('/go/anna-summer', [['User-Agent' => 'u' x 512]]);
$n++;
@recs = wait_records($n);
is($recs[-1]{ua}, 'u' x 512, 'ua of 512 bytes kept');
ok(!$recs[-1]{truncated}, 'ua of 512: truncated false');

$t->get('/go/anna-summer', [['User-Agent' => 'u' x 513]]);
$n++;
@recs = wait_records($n);
is($recs[-1]{ua}, 'u' x 512, 'ua of 513 bytes cut to 512');
ok($recs[-1]{truncated}, 'ua of 513: truncated true');

my $ref = 'https://r.example/' . 'r' x 700;
$t->get('/go/anna-summer', [[Referer => $ref]]);
$n++;
@recs = wait_records($n);
cut_ok($recs[-1], 'referer', $ref);

$t->get('/go/' . ('L' x 300));
$n++;
@recs = wait_records($n);
is($recs[-1]{type}, 'miss', 'long slug: miss');
cut_ok($recs[-1], 'link', 'L' x 300);

my $host = ('h' x 300) . '.example';
$t->get('/go/anna-summer', [[Host => $host]]);
$n++;
@recs = wait_records($n);
cut_ok($recs[-1], 'host', $host);

$r = $t->get('/go/long');
is($r->{status}, 302, 'long dest: 302');
my $full = $r->{headers}{location};
cmp_ok(length $full, '>', 1024, 'long dest: Location over 1024 bytes');
like($full, qr/^\Q$long_dest\E\?click_id=$ULID&utm_source=len&/,
    'long dest: Location complete');
$n++;
@recs = wait_records($n);
cut_ok($recs[-1], 'dest', $full);
is($recs[-1]{click_id}, Aff::click_id($full), 'long dest: click_id kept');

# --- seq and the status JSON ----------------------------------------------

@recs = $t->records('aff.log');
is(Aff::seq_problem(@recs), '', 'seq contiguous');
is_deeply([map { $_->{seq} } @recs], [$seq0 .. $seq0 + $n - 1],
    'seq in file order, +1 each');

my $clicks = grep { $_->{type} eq 'click' && !$_->{bot} } @recs;
my $bots = grep { $_->{type} eq 'click' && $_->{bot} } @recs;
my $misses = grep { $_->{type} eq 'miss' } @recs;
my $s;
$t->wait_for(sub {
    $s = $t->status_json;
    $s->{records}{written} == $n;
}, 5);
is($s->{zone}, 'aff', 'status: zone');
is($s->{clicks}, $clicks, "status: clicks $clicks");
is($s->{bot_clicks}, $bots, "status: bot_clicks $bots");
is($s->{misses}, $misses, "status: misses $misses");
is($s->{records}{accepted}, $n, 'status: accepted');
is($s->{records}{written}, $n, 'status: written');
is($s->{records}{dropped}, 0, 'status: dropped');
is($s->{records}{lost}, 0, 'status: lost');
is($s->{ring}{slot_size}, $SLOT, "status: slot_size $SLOT");
is($s->{ring}{used}, 0, 'status: ring empty after flush');
# the zone also holds other tables: at least half of it is the ring
cmp_ok($s->{ring}{size}, '>=', 8 * 1024 * 1024,
    "status: a ring of $s->{ring}{size} bytes in a 16m zone");
cmp_ok($s->{ring}{size}, '<=', 16 * 1024 * 1024,
    'status: the ring fits in 16m');
is($s->{ring}{size}, $s->{ring}{slots} * ($SLOT + 16),
    'status: size == slots * (slot_size + header)');
cmp_ok($s->{ring}{capacity}, '>=', $s->{ring}{slots} / 16,
    "status: capacity $s->{ring}{capacity} records");
cmp_ok($s->{ring}{capacity}, '<=', $s->{ring}{slots},
    'status: capacity at most one record a slot');
is($s->{bytes_written}, -s $t->dir . '/aff.log',
    'status: bytes_written is the file size');
like($s->{last_flush} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
    'status: last_flush is a timestamp');

my $sr = $t->get('/affiliate/status');
for my $k (qw(clicks misses accepted written dropped lost capacity used
              slot_size bytes_written))
{
    like($sr->{body}, qr/"$k":\d+[,}]/, "status: $k is a JSON number");
}
like($sr->{headers}{'content-type'} // '', qr{^application/json},
    'status: Content-Type application/json');

# status requests are not records
sleep 0.3;
is(scalar($t->records('aff.log')), $n, 'status requests are not recorded');

# a fresh zone: last_flush null before the first flush
{
    my $u = Aff->new(http => Aff::std_http(flush => '10s'),
                     files => { 'links.tsv' => $links });
    $u->start;
    my $s0 = $u->status_json;
    is($s0->{last_flush}, undef, 'fresh zone: last_flush null');
    is($s0->{records}{accepted}, 0, 'fresh zone: accepted 0');
    is($s0->{clicks}, 0, 'fresh zone: clicks 0');
    $u->get('/go/anna-summer');
    $s0 = $u->status_json;
    is($s0->{records}{accepted}, 1, 'one click: accepted 1');
    is($s0->{ring}{used}, 1, 'one click waits in the ring');
    is($s0->{records}{written}, 0, 'flush=10s: nothing written yet');
    $u->stop;
    is(scalar($u->records('aff.log')), 1, 'exit writes the waiting record');
}

$t->stop;
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
