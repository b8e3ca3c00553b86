# tools/affiliate-report on hand-made logs whose every number is known:
# human, unique and bot clicks (HEAD, prefetch, User-Agent, no UA),
# landings, attribution by the module, joined at report time (click on the
# other node), suspicious (bot click id), unknown and missing click ids,
# --window, duplicate orders across nodes (postback preferred), costs
# (flat, cpc, cpa, revshare, "*", a named campaign over "*"), currencies
# with and without --rates, --from/--to, integrity (seq gap, restart, a
# batch written twice, malformed lines with file:line, records without
# id/node), inputs (gzip, rotated files in reverse order, a directory, a
# glob, stdin), bad costs/rates files, and the four output formats.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use IO::Compress::Gzip qw(gzip $GzipError);

my $TOOL = "$FindBin::Bin/../tools/affiliate-report";
my $dir = tempdir('aff-report-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{AFF_KEEP});
diag("files in $dir") if $ENV{AFF_KEEP};
my $JSON = JSON::PP->new->canonical;
my ($T, $F, $N) = (JSON::PP::true, JSON::PP::false, undef);

mkdir "$dir/a";
mkdir "$dir/b";

# one record with every field of the module (id/node only when given)
sub rec {
    my (%f) = @_;
    my %r = (ts => undef, type => undef, click_id => $N, link => $N,
        rule => $N, creator => $N, campaign => $N, dest => $N, status => $N,
        ip => '198.51.100.0', ua => 'Mozilla/5.0', referer => $N,
        host => 'shop.example', country => $N, region => $N, city => $N,
        asn => $N, bot => $F, bot_reason => $N, unique => $N, cookie => $N,
        source => $N, order_id => $N, amount => $N, currency => $N,
        attributed => $N, duplicate => $N, truncated => $F, %f);
    $r{unique} = $N if $r{bot};
    return $JSON->encode(\%r) . "\n";
}

my $seq;
sub a_rec {
    my ($ts, %f) = @_;
    $seq++;
    my $id = sprintf('01KA%022d', $seq + ($f{_run} // 0) * 1000);
    delete $f{_run};
    return rec(ts => "2026-11-${ts}Z", seq => $seq, node => 'a', id => $id,
               %f);
}
sub click {
    my ($cid, $creator, $campaign, %f) = @_;
    return (type => 'click', click_id => $cid, link => 'l-' . $creator,
            creator => $creator, campaign => $campaign, status => 302,
            unique => $T, %f);
}
sub conv {
    my ($order, $amount, $cur, $src, $cid, %f) = @_;
    return (type => 'conversion', click_id => $cid, source => $src,
            order_id => $order, amount => $amount, currency => $cur,
            status => 200, attributed => $F, duplicate => $F, %f);
}

# --- node a: affiliate.log.1 (gzip), affiliate.log ---------------------------
$seq = 0;
my $a1 = a_rec('01T10:00:00.000', click('CA1', 'anna', 'summer',
                                          country => 'DE'))
       . a_rec('01T10:01:00.000', click('CA2', 'anna', 'summer',
                                          unique => $F))
       . a_rec('01T10:02:00.000', click('CA3', 'anna', 'summer', bot => $T,
                                          bot_reason => 'head'))
       . a_rec('01T10:03:00.000', click('CA4', 'anna', 'summer', bot => $T,
                                          bot_reason => 'prefetch'))
       . a_rec('01T10:04:00.000', click('CA5', 'anna', 'summer',
                                          type => 'landing', link => '/p'))
       . a_rec('01T10:05:00.000', click('CB1', 'bob', 'winter',
                                          country => 'FR'))
       . a_rec('01T10:06:00.000', click('CA7', 'anna', 'summer',
                                          reason => 'capped', status => 410));
gzip(\$a1 => "$dir/a/affiliate.log.1.gz") or die $GzipError;

my $a2 = a_rec('01T12:00:00.000', conv('O1', '100.00', 'EUR', 'postback',
                 'CA1', attributed => $T, creator => 'anna',
                 campaign => 'summer'))
       . a_rec('01T12:01:00.000', conv('O2', '20.00', 'EUR', 'pixel', 'CA2',
                 attributed => $T, creator => 'anna', campaign => 'summer'));
$seq++;                                             # seq 10 is lost
my $batch = a_rec('01T12:03:00.000', conv('O3', '50.00', 'EUR', 'postback',
                    'CB2'))
          . a_rec('01T12:04:00.000', conv('O4', '30.00', 'EUR', 'postback',
                    'CA3'))
          . a_rec('01T12:05:00.000', click('CB3', 'bob', 'winter',
                    bot => $T, bot_reason => 'ua'));
$a2 .= $batch . "{\"ts\":\"2026-11-01T12:05:30.000Z\",\"type\":\"cli\n"
     . $batch                                       # written twice
     . a_rec('01T12:06:00.000', conv('O5', '9.99', 'USD', 'postback', 'CB1',
                 attributed => $T, creator => 'bob', campaign => 'winter'));
$seq = 0;                                           # restart
$a2 .= a_rec('02T08:00:00.000', click('CA6', 'anna', 'summer'), _run => 1)
     . a_rec('02T08:01:00.000', conv('O6', '15.50', 'EUR', 'postback', 'CA1'),
             _run => 1)
     . a_rec('02T08:02:00.000', conv('O2', '20.00', 'EUR', 'pixel', 'CA2'),
             _run => 1)
     . a_rec('02T09:00:00.000', type => 'miss', link => 'nope',
             status => 404, _run => 1);
open my $fh, '>', "$dir/a/affiliate.log" or die;
print $fh $a2;
close $fh;

# --- node b: an older module, no id and no node ------------------------------
my $b = '';
my $bs = 0;
sub b_rec {
    my ($ts, %f) = @_;
    $bs++;
    return rec(ts => "2026-11-${ts}Z", seq => $bs, %f);
}
$b .= b_rec('01T09:00:00.000', click('CB2', 'bob', 'winter', country => 'FR'))
    . b_rec('01T09:30:00.000', click('CC1', 'carl', 'launch'))
    . b_rec('01T12:10:00.000', conv('O2', '21.00', 'EUR', 'postback', 'CA2'))
    . b_rec('01T13:00:00.000', conv('O7', '40.00', 'EUR', 'postback',
                                    '01KAUNKNOWNUNKNOWNUNKNOWN0'))
    . b_rec('01T13:05:00.000', conv('O8', '5.00', 'EUR', 'postback', undef))
    . b_rec('01T13:10:00.000', click('CC2', 'carl', undef, type => 'landing',
                                     unique => $F, link => '/x'))
    . b_rec('01T13:20:00.000', click('CC3', 'carl', 'launch', bot => $T,
                                     bot_reason => 'no_ua', ua => undef));
open $fh, '>', "$dir/b/affiliate.log" or die;
print $fh $b;
close $fh;

sub write_file {
    my ($name, $text) = @_;
    open my $w, '>', "$dir/$name" or die "$name: $!";
    print $w $text;
    close $w;
}
write_file('costs.tsv', <<"EOF");
# creator\tcampaign\tmodel\tamount\tcurrency
anna\t*\tcpc\t0.25\tEUR
anna\tsummer\tflat\t10\tEUR
anna\tsummer\trevshare\t10\t-
bob\twinter\tcpa\t5\tEUR
bob\t*\tflat\t3.50\tEUR

carl\t*\tcpc\t0.10\tEUR
carl\tlaunch\tcpc\t0.20\tEUR
EOF
write_file('rates.tsv', "USD\tEUR\t0.9\nEUR\tUSD\t1.1\n");

# run the tool: (exit code, stdout, stderr)
sub run {
    my (@args) = @_;
    my $stdin = '';
    if (ref $args[0] eq 'SCALAR') {
        $stdin = ${ shift @args };
    }
    my $in = "$dir/stdin";
    open my $w, '>', $in or die;
    print $w $stdin;
    close $w;
    my $pid = open(my $out, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', $in or die;
        open STDERR, '>', "$dir/stderr" or die;
        exec $TOOL, @args or die "exec: $!";
    }
    local $/;
    my $text = <$out> // '';
    close $out;
    my $code = $? >> 8;
    open my $e, '<', "$dir/stderr" or die;
    my $err = <$e> // '';
    return ($code, $text, $err);
}

sub report {
    my (@args) = @_;
    my ($code, $out, $err) = run('--format', 'json', @args);
    my $j = eval { decode_json($out) };
    ok($j, "json report: @args") or diag("exit $code\n$err\n$out");
    return $j || {};
}

sub group {
    my ($j, %key) = @_;
    my @g = grep {
        my $g = $_;
        !grep { ($g->{key}{$_} // '') ne ($key{$_} // '') } keys %key
    } @{ $j->{groups} };
    return @g;
}

sub row {
    my ($j, $cur, %key) = @_;
    my ($g) = grep { ($_->{currency} // '') eq $cur } group($j, %key);
    return $g || {};
}

sub check {
    my ($name, $got, %want) = @_;
    for my $k (sort keys %want) {
        is($got->{$k}, $want{$k}, "$name: $k");
    }
}

# --- everything, per creator, no rates ---------------------------------------

my @files = ("$dir/a/affiliate.log", "$dir/a/affiliate.log.1.gz",
             "$dir/b");     # newest first, then a directory
my $j = report('--costs', "$dir/costs.tsv", @files);

check('anna', row($j, 'EUR', creator => 'anna'),
    clicks => 3, landings => 1, visits => 4, unique_visits => 3,
    bot_clicks => 2, bot_share => '0.3333', inactive_clicks => 1,
    conversions => 3,
    pixel_conversions => 0, revenue => '136.50', cost => '24.65',
    profit => '111.85', roi => '4.5375', conversion_rate => '1.0000',
    epc => '34.1250', aov => '45.5000', cpa => '8.2167',
    first_seen => '2026-11-01T10:00:00.000Z',
    last_seen => '2026-11-02T08:01:00.000Z');
is(scalar(group($j, creator => 'anna')), 1, 'anna: one currency row');

check('bob EUR', row($j, 'EUR', creator => 'bob'),
    clicks => 2, landings => 0, unique_visits => 2, bot_clicks => 1,
    conversions => 1, revenue => '50.00', cost => '13.50', profit => '36.50',
    roi => '2.7037', cpa => '13.5000');
check('bob USD', row($j, 'USD', creator => 'bob'),
    clicks => 2, conversions => 1, revenue => '9.99', cost => '0.00',
    profit => '9.99', roi => undef, cpa => '0.0000');
check('carl', row($j, 'EUR', creator => 'carl'),
    clicks => 1, landings => 1, unique_visits => 1, bot_clicks => 1,
    bot_share => '0.3333', conversions => 0, revenue => '0.00',
    cost => '0.30', profit => '-0.30', roi => '-1.0000',
    conversion_rate => '0.0000', aov => undef, cpa => undef);
check('unattributed', row($j, 'EUR', creator => ''),
    clicks => 0, conversions => 3, revenue => '75.00', cost => '0.00',
    epc => undef, conversion_rate => undef);
is_deeply([map { $_->{key}{creator} // '-' } @{ $j->{groups} }],
    ['anna', 'bob', 'carl', '-', 'bob'],
    'sorted by ROI, n/a last, then by profit');

my ($te) = grep { $_->{currency} eq 'EUR' } @{ $j->{total} };
check('total EUR', $te, clicks => 6, landings => 2, unique_visits => 6,
    bot_clicks => 4, conversions => 7, revenue => '261.50', cost => '38.45',
    profit => '223.05');
my ($tu) = grep { $_->{currency} eq 'USD' } @{ $j->{total} };
check('total USD', $tu, conversions => 1, revenue => '9.99');

check('attribution', $j->{attribution}, orders => 8, reports => 10,
    duplicate_reports => 2, module => 2, joined => 3, suspicious => 1,
    unknown => 1, none => 1, late => 0, multi_node_orders => 1,
    pixel_only => 0, amount_conflicts => 1);

my $in = $j->{integrity};
ok(!$in->{complete}, 'integrity: not complete');
my ($na) = grep { $_->{node} eq 'a' } @{ $in->{nodes} };
my ($nb) = grep { $_->{node} =~ m{/b/affiliate\.log$} } @{ $in->{nodes} };
check('node a', $na, records => 17, duplicates => 3, missing => 1,
    restarts => 1, malformed => 1, records_without_id => 0,
    node_from_file => $F);
check('node b', $nb, records => 7, duplicates => 0, missing => 0,
    restarts => 0, records_without_id => 7, node_from_file => $T);
is($in->{malformed_count}, 1, 'one malformed line');
is("$in->{malformed}[0]{file}:$in->{malformed}[0]{line}",
    "$dir/a/affiliate.log:6", 'malformed line: file and line number');
ok((grep { /1 record\(s\) missing after seq 9/ } @{ $in->{problems} }),
    'problem: the lost seq 10') or diag explain $in->{problems};
is(scalar @{ $in->{problems} }, 2, 'two problems: the gap, the bad line');
ok((grep { /without "id"/ } @{ $in->{notes} }), 'note: records without id');
ok((grep { /without "node"/ } @{ $in->{notes} }),
    'note: records without node');

# --- --window: O6 (click 22 h before) is late with 12h -----------------------
$j = report('--window', '12h', @files);
check('window 12h', $j->{attribution}, joined => 2, late => 1);
check('window 12h anna', row($j, 'EUR', creator => 'anna'),
    conversions => 2, revenue => '121.00');

# --- rates: everything in EUR, exact ---------------------------------------
$j = report('--costs', "$dir/costs.tsv", '--rates', "$dir/rates.tsv", @files);
is($j->{currency}, 'EUR', 'rates: currency EUR');
is(scalar(group($j, creator => 'bob')), 1, 'rates: bob on one row');
check('bob in EUR', row($j, 'EUR', creator => 'bob'), conversions => 2,
    revenue => '58.991', cost => '13.50', profit => '45.491',
    roi => '3.3697');
$j = report('--costs', "$dir/costs.tsv", '--rates', "$dir/rates.tsv",
            '--currency', 'USD', @files);
check('anna in USD', row($j, 'USD', creator => 'anna'),
    revenue => '150.150', cost => '27.115');
my ($code, $out, $err) = run('--rates', "$dir/rates.tsv", '--currency',
                             'GBP', @files);
is($code, 2, 'missing rate: exit 2');
like($err, qr/no rate from (EUR|USD) to GBP/, 'missing rate: named');

# --- by creator,campaign and by day ---------------------------------------------
$j = report('--costs', "$dir/costs.tsv", '--by', 'creator,campaign', @files);
check('carl/launch', row($j, 'EUR', creator => 'carl', campaign => 'launch'),
    clicks => 1, bot_clicks => 1, cost => '0.20');
check('carl/-', row($j, 'EUR', creator => 'carl', campaign => ''),
    landings => 1, cost => '0.10');
$j = report('--by', 'day', @files);
check('day 1', row($j, 'EUR', day => '2026-11-01'), clicks => 5,
    landings => 2, conversions => 6, revenue => '246.00');
check('day 2', row($j, 'EUR', day => '2026-11-02'), clicks => 1,
    conversions => 1, revenue => '15.50');
$j = report('--by', 'country,creator', @files);
check('DE anna', row($j, 'EUR', country => 'DE', creator => 'anna'),
    clicks => 1, conversions => 2, revenue => '115.50');

# --- period ------------------------------------------------------------------
$j = report('--from', '2026-11-02', @files);
check('from 11-02 anna', row($j, 'EUR', creator => 'anna'), clicks => 1,
    unique_visits => 1, conversions => 1, revenue => '15.50');
check('from 11-02', $j->{attribution}, orders => 1, outside_period => 7);
$j = report('--from', '2026-11-01T10:01', '--to', '2026-11-01', @files);
check('to 11-01 (whole day)', row($j, 'EUR', creator => 'anna'),
    clicks => 1, landings => 1, bot_clicks => 2, conversions => 2);

# --- complete data, stdin, glob ------------------------------------------------
$j = report("$dir/b/affiliate.log");
ok($j->{integrity}{complete}, 'node b alone: complete')
    or diag explain $j->{integrity}{problems};
($code, $out, $err) = run(\$b, '--format', 'json', '-');
$j = eval { decode_json($out) } || {};
check('stdin', row($j, 'EUR', creator => 'carl'), clicks => 1,
    landings => 1);
is($j->{integrity}{nodes}[0]{node}, '(stdin)', 'stdin: node (stdin)');
$j = report("$dir/a/affiliate.lo*");
is($j->{integrity}{nodes}[0]{records}, 17, 'glob: both files of node a');
$j = report("$dir/a/affiliate.log.1.gz", "$dir/a/affiliate.log.1.gz");
is($j->{integrity}{nodes}[0]{records}, 7, 'the same file twice: read once');
is($j->{integrity}{nodes}[0]{duplicates}, 0, '... no duplicates');

# the same records (with node) in a copy: all duplicates
write_file('copy.log', $a1);
$j = report("$dir/a/affiliate.log.1.gz", "$dir/copy.log");
is(row($j, '', creator => 'anna')->{clicks}, 2, 'copy: counted once');
my @rows = @{ $j->{integrity}{nodes} };
is(scalar @rows, 2, 'copy: a log of its own for node a');
is($rows[0]{records} + $rows[1]{records}, 7, 'copy: 7 records');
is($rows[0]{duplicates} + $rows[1]{duplicates}, 7, 'copy: 7 duplicates');
ok($j->{integrity}{complete}, 'copy: still complete');

# one node, two zones: two logs, each numbered from 1, at the same times
mkdir "$dir/z";
for my $zone (qw(one two)) {
    write_file("z/$zone.log", join '', map {
        rec(ts => "2026-11-01T10:00:0$_.000Z", type => 'click', seq => $_,
            node => 'z', id => "ID-$zone-$_", creator => $zone,
            click_id => "C-$zone-$_")
    } 1 .. 3);
}
$j = report("$dir/z");
@rows = @{ $j->{integrity}{nodes} };
is_deeply([map { $_->{name} } @rows],
    ["z ($dir/z/one.log)", "z ($dir/z/two.log)"], 'two zones: two rows');
is_deeply([map { "$_->{records}/$_->{duplicates}" } @rows], ['3/0', '3/0'],
    'two zones: every record, no duplicate');
is(row($j, '', creator => 'two')->{clicks}, 3, 'two zones: counted');
ok($j->{integrity}{complete}, 'two zones: complete');

# a cut gzip (rotation in progress)
write_file('cut.gz', substr(do { my $z; gzip(\$b => \$z); $z }, 0, 60));
$j = report("$dir/cut.gz");
ok(!$j->{integrity}{complete}, 'cut gzip: incomplete');
like(join(' ', @{ $j->{integrity}{problems} }), qr/cut\.gz: read error/,
    'cut gzip: reported');

# --- malformed lines of every kind -----------------------------------------------
my $good = rec(ts => '2026-11-01T10:00:00.000Z', type => 'click', seq => 1,
               creator => 'x', click_id => 'X1');
write_file('bad.log', $good
    . "not json\n"
    . "\n"
    . "[1,2]\n"
    . "{\"ts\":\"2026-11-01T10:00:00.000Z\",\"type\":\"click\"}\n"
    . "{\"ts\":\"yesterday\",\"type\":\"click\",\"seq\":2}\n"
    . "{\"ts\":\"2026-11-01T10:00:00.000Z\",\"type\":\"nope\",\"seq\":2}\n"
    . "{\"a\":\"\xff\"}\n"
    . substr($good, 0, -1) . "{}\n"
    . rec(ts => '2026-11-01T10:00:01.000Z', type => 'conversion', seq => 2,
          order_id => 'Z', amount => '1,5', currency => 'EUR')
    . rec(ts => '2026-11-01T10:00:02.000Z', type => 'click', seq => 3,
          creator => 'x', click_id => 'X2')
    . '{"ts":"2026-11-01T10:00:0');
$j = report("$dir/bad.log");
is($j->{integrity}{malformed_count}, 10, 'ten malformed lines');
is_deeply([map { $_->{line} } @{ $j->{integrity}{malformed} }],
    [2 .. 10, 12], 'each with its line number');
like($j->{integrity}{malformed}[-1]{reason}, qr/incomplete last line/,
    'the cut last line');
like($j->{integrity}{malformed}[3]{reason}, qr/no "seq" field/,
    'a record without seq');
is(row($j, '', creator => 'x')->{clicks}, 2, 'the good lines count');

# --- costs and rates errors --------------------------------------------------------
for my $c (
    ["anna\tsummer\tcpm\t1\tEUR\n", qr/costs\.tsv:1: unknown model "cpm"/],
    ["anna\tsummer\tcpc\t1\n", qr/costs\.tsv:1: expected 5 tab-separated/],
    ["# x\nanna\tsummer\tcpc\t-1\tEUR\n", qr/costs\.tsv:2: amount "-1"/],
    ["anna\tsummer\tcpc\t0.1\teuro\n", qr/costs\.tsv:1: currency "euro"/],
    ["anna\tsummer\trevshare\t120\t-\n", qr/costs\.tsv:1: revshare .* 100/],
    ["anna\t*\tcpc\t1\tEUR\nanna\t*\tcpc\t2\tEUR\n",
     qr/costs\.tsv:2: .*line 1/],
    ["anna\t\tflat\t1\tEUR\n", qr/costs\.tsv:1: empty campaign/],
    )
{
    write_file('costs.tsv', $c->[0]);
    my ($code, $out, $err) = run('--costs', "$dir/costs.tsv", @files);
    is($code, 2, "bad costs: exit 2 ($c->[1])");
    like($err, $c->[1], 'bad costs: file:line and why');
    is($out, '', 'bad costs: no report');
}
write_file('rates.tsv', "USD\tEUR\tabc\n");
($code, $out, $err) = run('--rates', "$dir/rates.tsv", @files);
like($err, qr/rates\.tsv:1: rate "abc"/, 'bad rate: file:line');
($code, $out, $err) = run("$dir/none.log");
is($code, 2, 'missing input: exit 2');
like($err, qr/none\.log: no such file/, 'missing input: named');
($code, $out, $err) = run('--by', 'colour', @files);
is($code, 2, 'bad --by: exit 2');

# --- text, CSV, HTML -----------------------------------------------------------------
write_file('costs.tsv', "anna\t*\tcpc\t0.25\tEUR\n");
($code, $out, $err) = run('--costs', "$dir/costs.tsv", '--by',
                          'creator,campaign,day', @files);
is($code, 0, 'text: exit 0');
my (undef, $table) = split /\n\n/, $out;
my @long = grep { length > 100 } split /\n/, $table;
is(scalar @long, 0, 'text: no table line over 100 columns')
    or diag explain \@long;
like($table, qr/\ntotal\s+EUR\s+6\s/, 'text: the table ends with totals');
like($out, qr/^anna\s+summer\s+2026-11-01\s+EUR\s+2\s+2\s/m,
    'text: anna row');
like($out, qr/Integrity: INCOMPLETE/, 'text: verdict');
{
    # without --from/--to the header names the data's own first and last
    # record (the totals' first_seen and last_seen), not "start .. end"
    my $tj = report(@files);
    my @seen = grep { defined $_->{first_seen} } @{$tj->{total}};
    my ($lo) = sort map { $_->{first_seen} } @seen;
    my ($hi) = reverse sort map { $_->{last_seen} } @seen;
    like($out, qr/^affiliate-report: \Q$lo .. $hi\E \(UTC; first and last record\)\n/,
        "text: the period is the data's, $lo .. $hi") or diag $out;
    my (undef, $o2) = run('--from', '2026-11-02', @files);
    like($o2, qr/^affiliate-report: 2026-11-02T00:00:00\.000Z \.\. \Q$hi\E \(UTC; to the last record\)/,
        'text: --from, then to the last record') or diag $o2;
}
like($out, qr{malformed: \Q$dir\E/a/affiliate\.log:6:}, 'text: file:line');
($code, $out, $err) = run('--strict', @files);
is($code, 1, '--strict: exit 1 when incomplete');
($code, $out, $err) = run('--strict', "$dir/b/affiliate.log");
is($code, 0, '--strict: exit 0 when complete');

($code, $out, $err) = run('--format', 'csv', '--by', 'creator', @files);
my @csv = split /\n/, $out;
like($csv[0], qr/^creator,currency,clicks,landings,visits,unique_visits,/,
    'csv: header');
ok((grep { /^anna,EUR,3,1,4,3,2,0\.3333,1,3,0,1\.0000,136\.50,/ } @csv),
    'csv: anna row') or diag $out;
ok((grep { /^\(total\),USD,/ } @csv), 'csv: a total row per currency');

($code, $out, $err) = run('--help');
is($code, 0, '--help: exit 0');
like($out, qr/^usage: affiliate-report \[OPTIONS\]/, '--help: usage line');
like($out, qr/--costs FILE/, '--help: options');

done_testing();
