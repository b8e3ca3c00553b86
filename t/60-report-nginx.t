# tools/affiliate-report on logs written by two real nginx nodes
# (affiliate_node web1 / web2): human clicks (unique and repeated), bot
# clicks (HEAD, prefetch, a crawler User-Agent, no User-Agent, a declined
# speculative navigation), landings, pixel conversions with the cookie,
# postbacks attributed by the click index, a postback on the node that did
# not see the click, a postback for a bot's click id, an order reported on
# both nodes and twice on one, a restart of web2, a rotation of web1's log
# (gzipped), corrupt lines.  Every metric of the report is checked against
# a count kept here while making the requests: per creator, campaign,
# creator and campaign, link, day and country, and in all; first and last
# seen per creator from the records' own ts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use IO::Compress::Gzip qw(gzip $GzipError);
use POSIX qw(strftime);
use Aff;

my $TOOL = "$FindBin::Bin/../tools/affiliate-report";
my $SECRET = 'report-test-secret-0123456789abcdefghijk';
my $KEY = 'report-postback-key-0123456789AB';

sub http_for {
    my ($node) = @_;
    return <<"EOF";
    affiliate_node  $node;
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_postback_key %%DIR%%/postback.key;
    affiliate_cookie aff;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /go/ { affiliate_redirect zone=aff; }
        location /shop/ {
            affiliate_capture zone=aff creator=ref campaign=cmp;
            return 200 "page\\n";
        }
        location = /conv { affiliate_conversion zone=aff; }
        location = /px.gif { affiliate_conversion zone=aff format=gif; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF
}

my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n"
          . "c\thttps://shop.example/c\tcarla\tlaunch\n";
my %node;
for my $n (qw(web1 web2)) {
    $node{$n} = Aff->new(
        http  => http_for($n),
        files => { 'links.tsv' => $links, 'secret' => "$SECRET\n",
                   'postback.key' => "$KEY\n" });
    $node{$n}->start;
}

# the independent count: per creator, and per node
my %want;     # creator -> {clicks, unique, bots, landings, orders, cents}
my %recs;     # node -> records written
# and per record or order, what it counts for in each group it falls in
my @ev;       # {creator, campaign, link, clicks|unique|bots|landings|...}
my %camp = (anna => 'summer', bob => 'winter', carla => 'launch', '' => '');
my %owner;    # order id -> creator
my $day0 = strftime('%Y-%m-%d', gmtime);
my $uan = 0;
sub ua { return 'Mozilla/5.0 (X11; Linux x86_64) report-test/' . ++$uan }

sub click {
    my ($n, $slug, %o) = @_;
    my %cr = (a => 'anna', b => 'bob', c => 'carla');
    my $t = $node{$n};
    my @h;
    push @h, ['User-Agent' => $o{no_ua} ? undef : $o{ua} // ua()];
    push @h, @{ $o{headers} || [] };
    my $r = $t->get("/go/$slug", \@h, $o{head} ? (method => 'HEAD') : ());
    my $w = $want{ $cr{$slug} } ||= {};
    my %e = (creator => $cr{$slug}, campaign => $camp{ $cr{$slug} },
             link => $slug);
    $recs{$n}++;
    if ($o{bot}) {
        $w->{bots}++;
        $e{bots} = 1;
    } else {
        $w->{clicks}++;
        $w->{unique}++ unless $o{repeat};
        $e{clicks} = 1;
        $e{unique} = 1 unless $o{repeat};
    }
    push @ev, \%e;
    my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^(aff=[^;]+)/;
    return (Aff::click_id($r->{headers}{location} // ''), $cookie, $r);
}

sub landing {
    my ($n, $creator, $campaign) = @_;
    my $r = $node{$n}->get("/shop/p?ref=$creator&cmp=$campaign",
                           [['User-Agent' => ua()]]);
    is($r->{status}, 200, "landing on $n");
    $recs{$n}++;
    $want{$creator}{landings}++;
    $want{$creator}{unique}++;
    # a landing's link is its URI
    push @ev, { creator => $creator, campaign => $campaign,
                link => '/shop/p', landings => 1, unique => 1 };
    my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^(aff=[^;]+)/;
    return $cookie;
}

sub cents {
    my ($amount) = @_;
    my ($i, $f) = $amount =~ /^(\d+)(?:\.(\d+))?$/;
    return $i * 100 + substr(($f // '') . '00', 0, 2);
}

# an order: who gets it ('' for nobody), the link of its click, and its
# amount, counted once
my %orders;
sub order {
    my ($n, $path, $cookie, $creator, $amount, $order_id, $link) = @_;
    my $r = $node{$n}->get($path, [['User-Agent' => 'shop/1.0'],
                                   $cookie ? ([Cookie => $cookie]) : ()]);
    is($r->{status}, 200, "conversion $order_id on $n: 200");
    $recs{$n}++;
    return if $orders{$order_id}++;
    $want{$creator}{orders}++;
    $want{$creator}{cents} += cents($amount);
    $owner{$order_id} = $creator;
    # the first report of every order here is its only kind: a pixel
    # order is one no postback came for
    push @ev, { creator => $creator, campaign => $camp{$creator},
                link => $link // '', orders => 1, cents => cents($amount),
                pixel => $path =~ m{^/px} ? 1 : 0 };
}

sub postback {
    my ($n, $cid, $order_id, $amount, $creator, $link) = @_;
    order($n, "/conv?order_id=$order_id&amount=$amount&currency=EUR&key=$KEY"
              . ($cid ? "&click_id=$cid" : ''), undef, $creator, $amount,
          $order_id, $link);
}

sub pixel {
    my ($n, $cookie, $order_id, $amount, $creator, $link) = @_;
    order($n, "/px.gif?order_id=$order_id&amount=$amount&currency=EUR",
          $cookie, $creator, $amount, $order_id, $link);
}

# --- web1: anna's traffic ------------------------------------------------------
my ($ca1, $cookie1) = click('web1', 'a');
my $ua_rep = ua();
my ($ca2, $cookie2) = click('web1', 'a', ua => $ua_rep);
click('web1', 'a', ua => $ua_rep, repeat => 1);        # same person again
my ($cbot) = click('web1', 'a', head => 1, bot => 1);
click('web1', 'a', bot => 1, headers => [['Sec-Purpose' => 'prefetch']]);
click('web1', 'a', bot => 1,
      ua => 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)');
click('web1', 'a', bot => 1, no_ua => 1);
click('web1', 'a', bot => 1, headers => [['Sec-Purpose' => 'prefetch'],
                                         ['Sec-Fetch-Mode' => 'navigate']]);
my $lcookie = landing('web1', 'anna', 'summer');
landing('web1', 'anna', 'spring');                      # another campaign
my ($cc1) = click('web1', 'c');
ok($ca1 && $cookie1 && $cbot && $lcookie, 'clicks, cookies, a bot click id');

pixel('web1', $cookie1, 'A-1', '59.80', 'anna', 'a');    # cookie
postback('web1', $ca2, 'A-2', '40', 'anna', 'a');         # click index
pixel('web1', $lcookie, 'A-3', '12.34', 'anna', '/shop/p');  # landing's
postback('web1', $ca2, 'A-2', '40', 'anna', 'a');         # duplicate, same node
postback('web1', undef, 'N-1', '7.50', '');               # no click id

# --- web2: bob's traffic, and what only the report can attribute -------------
my ($cb1) = click('web2', 'b');
my ($cb2) = click('web2', 'b');
postback('web2', $cb1, 'B-1', '100.01', 'bob', 'b');
postback('web2', $cc1, 'C-1', '25.00', 'carla', 'c');     # click seen on web1
postback('web2', $cbot, 'S-1', '99.99', '');              # a bot's click id
postback('web2', $ca2, 'A-2', '40', 'anna', 'a');         # again, other node
postback('web2', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ', 'U-1', '1.00', '');

my $status2 = $node{web2}->status_json;
for my $n (keys %node) {
    $node{$n}->wait_for(sub { $node{$n}->records('aff.log') == $recs{$n} }, 10)
        or diag("$n: " . scalar($node{$n}->records('aff.log'))
                . " records, want $recs{$n}");
}

# web2 restarts: a new zone, seq from 1 again
$node{web2}->stop;
$node{web2}->start;
my $before_restart = $recs{web2};
click('web2', 'b');
click('web2', 'b', repeat => 0);
postback('web2', $cb2, 'B-2', '0.99', 'bob', 'b');  # index forgotten: joined
$node{web2}->wait_for(sub {
    $node{web2}->records('aff.log') == $recs{web2} }, 10);

# web1's log is rotated (and gzipped), then more traffic
my $d1 = $node{web1}->dir;
rename "$d1/aff.log", "$d1/aff.log.1" or die;
$node{web1}->reopen(wait_file => 'aff.log');
my @records = $node{web1}->records('aff.log.1');
my $after_rot = $recs{web1};
click('web1', 'a');
click('web1', 'c');
$node{web1}->wait_for(sub {
    -s "$d1/aff.log" && $node{web1}->records('aff.log')
        == $recs{web1} - $after_rot }, 10);
gzip("$d1/aff.log.1" => "$d1/aff.log.1.gz") or die $GzipError;
unlink "$d1/aff.log.1";

$node{$_}->stop for keys %node;
push @records, map { $node{$_}->records('aff.log') } qw(web1 web2);
my $day1 = strftime('%Y-%m-%d', gmtime);

# two corrupt lines at the end of web2's log (a torn write, junk)
my $d2 = $node{web2}->dir;
open my $fh, '>>', "$d2/aff.log" or die;
print $fh "{\"ts\":\"2026-11-25T20:00:00.000Z\",\"type\":\"cl\n", "\x00\x01junk\n";
close $fh;
my $corrupt_line = $recs{web2} + 1;

# --- the report -----------------------------------------------------------------
open $fh, '>', "$d1/costs.tsv" or die;
print $fh "anna\t*\tcpc\t0.50\tEUR\n", "anna\tsummer\tflat\t20\tEUR\n",
          "bob\twinter\tcpa\t10\tEUR\n", "carla\t*\trevshare\t20\t-\n";
close $fh;

sub run_json {
    my (@args) = @_;
    open my $p, '-|', $TOOL, '--format', 'json', @args or die "$TOOL: $!";
    local $/;
    my $out = <$p>;
    close $p;
    return eval { decode_json($out) } || do { diag($out); {} };
}

# files in any order: current log first, then the rotated gzip, web2 first
my $j = run_json('--costs', "$d1/costs.tsv", "$d2/aff.log", "$d1/aff.log",
                 "$d1/aff.log.1.gz");

sub grp {
    my ($c) = @_;
    my ($g) = grep { ($_->{key}{creator} // '') eq $c } @{ $j->{groups} };
    return $g || {};
}
sub money {
    my ($c) = @_;
    my $s = $c < 0 ? '-' : '';
    $c = abs $c;
    return sprintf('%s%d.%02d', $s, int($c / 100), $c % 100);
}

# num / den rounded half away from zero to 4 places, as a string; integers
# only (no float); undef when den is 0
sub r4 {
    my ($num, $den) = @_;
    return undef unless $den;
    my $s = ($num < 0) != ($den < 0) ? '-' : '';
    ($num, $den) = (abs $num, abs $den);
    my $q = int((2 * $num * 10000 + $den) / (2 * $den));
    return sprintf('%s%d.%04d', $s, int($q / 10000), $q % 10000);
}

my %cost = (
    anna  => (($want{anna}{clicks} + $want{anna}{landings}) * 50) + 2000,
    bob   => $want{bob}{orders} * 1000,
    carla => $want{carla}{cents} * 20 / 100,
);
for my $c (qw(anna bob carla)) {
    my $g = grp($c);
    my $w = $want{$c};
    is($g->{clicks}, $w->{clicks} // 0, "$c: human clicks");
    is($g->{unique_visits}, $w->{unique} // 0, "$c: unique visits");
    is($g->{bot_clicks}, $w->{bots} // 0, "$c: bot clicks");
    is($g->{landings}, $w->{landings} // 0, "$c: landings");
    is($g->{conversions}, $w->{orders} // 0, "$c: conversions");
    is($g->{revenue}, money($w->{cents} // 0), "$c: revenue");
    is($g->{cost}, money($cost{$c}), "$c: cost");
    is($g->{profit}, money(($w->{cents} // 0) - $cost{$c}), "$c: profit");
    my $visits = ($w->{clicks} // 0) + ($w->{landings} // 0);
    my ($cents, $orders) = ($w->{cents} // 0, $w->{orders} // 0);
    is($g->{bot_share}, r4($w->{bots} // 0, $visits + ($w->{bots} // 0)),
        "$c: bot share");
    is($g->{conversion_rate}, r4($orders, $w->{unique} // 0),
        "$c: conversion rate");
    is($g->{epc}, r4($cents, $visits * 100), "$c: EPC");
    is($g->{aov}, r4($cents, $orders * 100), "$c: AOV");
    is($g->{cpa}, r4($cost{$c}, $orders * 100), "$c: CPA");
    is($g->{roi}, r4($cents - $cost{$c}, $cost{$c}), "$c: ROI");
}
my $g = grp('');
is($g->{conversions}, $want{''}{orders}, 'nobody: conversions');
is($g->{revenue}, money($want{''}{cents}), 'nobody: revenue');

# --- every grouping, and the totals, against the count kept here ------------
# no country (no geo database): null everywhere; every record of today
# (but when the test ran across midnight UTC)
sub expected {
    my (@by) = @_;
    my %e;
    for my $ev (@ev) {
        my $k = join "\0", map { $_ eq 'day' ? $day0 : $_ eq 'country' ? ''
                                              : $ev->{$_} } @by;
        $e{$k}{$_} += $ev->{$_} // 0
            for qw(clicks unique bots landings orders cents pixel);
    }
    return \%e;
}

# a row of the report against a count: the traffic, orders and revenue
sub check_row {
    my ($name, $r, $w) = @_;
    is($r->{clicks}, $w->{clicks}, "$name: clicks");
    is($r->{landings}, $w->{landings}, "$name: landings");
    is($r->{visits}, $w->{clicks} + $w->{landings}, "$name: visits");
    is($r->{unique_visits}, $w->{unique}, "$name: unique visits");
    is($r->{bot_clicks}, $w->{bots}, "$name: bot clicks");
    is($r->{conversions}, $w->{orders}, "$name: conversions");
    is($r->{pixel_conversions}, $w->{pixel}, "$name: pixel conversions");
    is($r->{revenue}, money($w->{cents}), "$name: revenue");
}

sub check_groups {
    my ($by, $j, %o) = @_;
    my @by = split /,/, $by;
    my $e = expected(@by);
    my %got;
    for my $r (@{ $j->{groups} || [] }) {
        $got{ join "\0", map { $r->{key}{$_} // '' } @by } = $r;
    }
    is_deeply([sort keys %got], [sort keys %$e], "--by $by: the groups")
        or diag explain [keys %got];
    for my $k (sort keys %$e) {
        my ($r, $w) = ($got{$k} || {}, $e->{$k});
        (my $name = $k) =~ s/\0/,/g;
        $name = "--by $by [$name]";
        check_row($name, $r, $w);
        is($r->{cost}, money($o{cost}{$k}), "$name: cost") if $o{cost};
    }
}

my @files = ("$d2/aff.log", "$d1/aff.log", "$d1/aff.log.1.gz");
SKIP: {
    skip 'the test ran across midnight UTC', 1 if $day0 ne $day1;
    check_groups('day', run_json('--by', 'day', @files));
}
check_groups($_, run_json('--by', $_, @files))
    for qw(campaign link country);
{
    # anna: 0.50 a visit on every campaign, 20 on summer
    my $e = expected('creator', 'campaign');
    my %c;
    for my $k (keys %$e) {
        my ($cr, $cp) = split /\0/, $k, -1;
        my $w = $e->{$k};
        $c{$k} = $cr eq 'anna' ? ($w->{clicks} + $w->{landings}) * 50
                                 + ($cp eq 'summer' ? 2000 : 0)
               : $cr eq 'bob' ? $w->{orders} * 1000
               : $cr eq 'carla' ? $w->{cents} * 20 / 100 : 0;
    }
    check_groups('creator,campaign',
                 run_json('--costs', "$d1/costs.tsv", '--by',
                          'creator,campaign', @files), cost => \%c);
}

# totals
my ($tot) = @{ $j->{total} || [] };
my $e = expected()->{''};
check_row('total', $tot, $e);
my $cost_all = 0;
$cost_all += $_ for values %cost;
is($tot->{cost}, money($cost_all), 'total: cost');
is($tot->{profit}, money($e->{cents} - $cost_all), 'total: profit');
is($tot->{roi}, r4($e->{cents} - $cost_all, $cost_all), 'total: ROI');
is(grp('anna')->{visits},
   ($want{anna}{clicks} // 0) + ($want{anna}{landings} // 0), 'anna: visits');
is(grp('anna')->{pixel_conversions}, 2, 'anna: A-1 and A-3 by pixel only');

# first and last seen, from the records' ts: each creator's clicks and
# landings (bots too), and the time of its orders (their first report:
# postback before pixel, then the earliest)
my (%first, %last, %report);
sub seen {
    my ($c, $ts) = @_;
    $first{$c} = $ts if !defined $first{$c} || $ts lt $first{$c};
    $last{$c} = $ts if !defined $last{$c} || $ts gt $last{$c};
}
for my $r (@records) {
    if ($r->{type} eq 'conversion') {
        my $o = $report{ $r->{order_id} };
        my $rank = sub { (($_[0]{source} // '') eq 'postback' ? 0 : 1)
                         . $_[0]{ts} };
        $report{ $r->{order_id} } = $r
            if !$o || $rank->($r) lt $rank->($o);
    } elsif ($r->{type} eq 'click' || $r->{type} eq 'landing') {
        seen($r->{creator} // '', $r->{ts});
    }
}
seen($owner{$_}, $report{$_}{ts}) for keys %report;
for my $c ('anna', 'bob', 'carla', '') {
    is(grp($c)->{first_seen}, $first{$c} // 'none here', "'$c': first seen");
    is(grp($c)->{last_seen}, $last{$c} // 'none here', "'$c': last seen");
}
my @all_ts = sort map { $_->{ts} } grep { $_->{type} ne 'miss' } @records;
is($tot->{first_seen}, $all_ts[0], 'total: first seen');
is($tot->{last_seen}, $all_ts[-1], 'total: last seen');

my $a = $j->{attribution};
is($a->{orders}, scalar(keys %orders), 'orders counted once');
is($a->{duplicate_reports}, 2, 'A-2 reported three times: two dropped');
is($a->{multi_node_orders}, 1, 'A-2 seen by both nodes');
is($a->{joined}, 2, 'joined at report time: C-1 (other node), B-2 (restart)');
is($a->{suspicious}, 1, 'the bot click id: suspicious');
is($a->{unknown}, 1, 'an unknown click id');
is($a->{none}, 1, 'no click id');
is($a->{module}, 4, 'attributed by the module: A-1, A-2, A-3, B-1');

my $in = $j->{integrity};
my %n = map { $_->{node} => $_ } @{ $in->{nodes} };
is_deeply([sort keys %n], ['web1', 'web2'], 'nodes from the records');
is($n{web1}{records}, $recs{web1}, 'web1: every record read');
is($n{web2}{records}, $recs{web2}, 'web2: every record read');
is($n{web1}{restarts}, 0, 'web1: no restart');
is($n{web2}{restarts}, 1, 'web2: one restart');
is($n{web2}{runs}[0]{last_seq}, $before_restart, 'web2: first run length');
is($n{$_}{missing}, 0, "$_: nothing missing") for qw(web1 web2);
is($n{$_}{duplicates}, 0, "$_: no duplicates") for qw(web1 web2);
is($n{$_}{records_without_id}, 0, "$_: every record has an id")
    for qw(web1 web2);
is($n{web2}{malformed}, 2, 'web2: two corrupt lines');
is_deeply([map { "$_->{file}:$_->{line}" } @{ $in->{malformed} }],
    ["$d2/aff.log:$corrupt_line", "$d2/aff.log:" . ($corrupt_line + 1)],
    'corrupt lines: file and line');
ok(!$in->{complete}, 'corrupt lines: incomplete');
my ($gzf) = grep { $_->{file} =~ /\.gz$/ } @{ $in->{files} };
ok($gzf && $gzf->{gzip} && $gzf->{records} > 0, 'the rotated gzip was read');

# web2's own counters count A-2 again (its order table never saw it): the
# report counts it once
is($status2->{conversions}, 5, 'web2 status: 5 conversions, A-2 included');
is($status2->{duplicate_orders}, 0, 'web2 status: no duplicate order');

# without the corrupt lines: complete
open my $in2, '<', "$d2/aff.log" or die;
my @l = <$in2>;
close $in2;
open $fh, '>', "$d2/clean.log" or die;
print $fh @l[0 .. $#l - 2];
close $fh;
mkdir "$d2/web1-logs" or die;
system('cp', "$d1/aff.log", "$d1/aff.log.1.gz", "$d2/web1-logs/") == 0 or die;
$j = run_json("$d2/web1-logs", "$d2/clean.log");
ok($j->{integrity}{complete}, 'clean logs, web1 as a directory: complete')
    or diag explain $j->{integrity}{problems};

# the same logs twice (a copy of web1's): every copy is a duplicate
system('cp', "$d1/aff.log", "$d2/copy-of-web1.log") == 0 or die;
$j = run_json("$d1/aff.log", "$d1/aff.log.1.gz", "$d2/copy-of-web1.log",
              "$d2/clean.log");
my ($rec1, $dup1) = (0, 0);
for (grep { $_->{node} eq 'web1' } @{ $j->{integrity}{nodes} }) {
    $rec1 += $_->{records};
    $dup1 += $_->{duplicates};
}
is($rec1, $recs{web1}, 'copy: web1 records once');
is($dup1, $recs{web1} - $after_rot, 'copy: the copy dropped');

done_testing();
