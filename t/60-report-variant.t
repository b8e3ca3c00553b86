# tools/affiliate-report's per-variant and per-device view (--by variant,
# --by device) on the log of a real nginx: an A/B link (ab=, two variants),
# a device link (ios=, android=), a plain link; visitors (each sticky to
# its variant, some coming back), bot clicks, postbacks that name a click
# (attributed by the module, or joined at report time after a restart
# emptied the click index), a postback for an unknown click.  Each
# conversion takes the variant and device of its click.  Every row is
# checked against a count kept here from what nginx answered (the variant
# from the Location, the device from the User-Agent sent).  Then the
# report command that `make demo` prints (scripts/demo.sh), run as it is
# printed, on this log.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Aff;

my $TOP = "$FindBin::Bin/..";
my $TOOL = "$TOP/tools/affiliate-report";
my $KEY = 'variant-postback-key-0123456789AB';

my $http = <<'EOF';
    affiliate_node  web1;
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/logs/affiliate.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_postback_key %%DIR%%/postback.key;
    affiliate_app_schemes myapp;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /go/ { affiliate_redirect zone=aff; }
        location = /conv { affiliate_conversion zone=aff; }
    }
EOF
# the creators and campaigns of examples/costs.tsv (the demo's command
# reads it)
my $links = join '', map { join("\t", @$_) . "\n" } (
    ['ab', 'https://shop.example/ab', 'anna', 'summer25',
     'ab=https://a.example/one*60,https://b.example/two*40'],
    ['dev', 'https://shop.example/web', 'bob', 'starter',
     'ios=https://apps.apple.com/app/id1', 'android=myapp://product/7'],
    ['plain', 'https://shop.example/plain', 'carla', 'launch'],
);
my $t = Aff->new(http => $http,
                 files => { 'links.tsv' => $links,
                            'secret' => "variant-test-secret-0123456789abcdefgh\n",
                            'postback.key' => "$KEY\n" });
$t->start;

my $IOS = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) '
    . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 '
    . 'Safari/604.1';
my $ANDROID = 'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 '
    . '(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36';
my $DESKTOP = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 '
    . 'Firefox/133.0';
my $BOT = 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)';

# the count kept here: per link, variant and device ('' for none), the
# traffic and the orders; the key fields of each group as the report
# writes them (variant a number, null for none)
my %want;
my $recs = 0;
my $n = 0;

sub variant_of {
    my ($loc) = @_;
    return 1 if $loc =~ m{^https://a\.example/one};
    return 2 if $loc =~ m{^https://b\.example/two};
    return '';
}

sub device_of {
    my ($link, $ua) = @_;
    return '' unless $link eq 'dev';
    return $ua =~ /iPhone/ ? 'ios' : $ua =~ /Android/ ? 'android'
                                                      : 'desktop';
}

# a click: (click id, the group it was counted in)
sub click {
    my ($link, %o) = @_;
    my $ua = $o{ua} // "$DESKTOP visitor/" . ++$n;
    my $r = $t->get("/go/$link", [['User-Agent' => $ua]],
                    $o{head} ? (method => 'HEAD') : ());
    $recs++;
    my $loc = $r->{headers}{location} // '';
    my $g = join "\0", $link, variant_of($loc), device_of($link, $ua);
    my $w = $want{$g} ||= {};
    if ($o{bot}) {
        $w->{bots}++;
    } else {
        $w->{clicks}++;
        $w->{unique}++ unless $o{repeat};
    }
    return (Aff::click_id($loc), $g, $loc);
}

my %orders;
sub postback {
    my ($cid, $g, $order_id, $amount) = @_;
    my $r = $t->get("/conv?order_id=$order_id&amount=$amount&currency=EUR"
                    . "&key=$KEY&click_id=$cid",
                    [['User-Agent' => 'shop/1.0']]);
    is($r->{status}, 200, "postback $order_id: 200");
    $recs++;
    return if $orders{$order_id}++;
    my ($i, $f) = $amount =~ /^(\d+)(?:\.(\d+))?$/;
    $want{$g}{orders}++;
    $want{$g}{cents} += $i * 100 + substr(($f // '') . '00', 0, 2);
}

# --- traffic ------------------------------------------------------------------
# the A/B link: 30 visitors, a third of them come back (same User-Agent
# and address: the same variant, not unique); an order from every fourth
my (%seen_variant, @ab);
for my $i (1 .. 30) {
    my $ua = "$DESKTOP ab-visitor/$i";
    my ($cid, $g, $loc) = click('ab', ua => $ua);
    push @ab, [$cid, $g];
    $seen_variant{ variant_of($loc) }++;
    if ($i % 3 == 0) {
        my (undef, $g2) = click('ab', ua => $ua, repeat => 1);
        is($g2, $g, "visitor $i keeps the variant");
    }
    postback($cid, $g, "AB-$i", sprintf('%d.%02d', 10 + $i, $i))
        if $i % 4 == 0;
}
ok($seen_variant{1} && $seen_variant{2}, 'both variants were sent')
    or diag explain \%seen_variant;
ok(!$seen_variant{''}, 'every A/B click got a variant');
click('ab', ua => $BOT, bot => 1);
click('ab', head => 1, bot => 1);

# the device link: iPhone, Android, desktop visitors
my @dev;
for my $i (1 .. 9) {
    my $ua = ($IOS, $ANDROID, $DESKTOP)[$i % 3] . " dev-visitor/$i";
    my ($cid, $g) = click('dev', ua => $ua);
    push @dev, [$cid, $g];
    postback($cid, $g, "DEV-$i", "5.$i") if $i <= 3;
}
click('dev', ua => "$BOT dev", bot => 1);

# the plain link
my ($pc, $pg) = click('plain');
click('plain');
postback($pc, $pg, 'P-1', '99.99');
postback($pc, $pg, 'P-1', '99.99');             # the same order again

$t->wait_for(sub { $t->records('logs/affiliate.log') == $recs }, 10)
    or diag('records: ' . scalar($t->records('logs/affiliate.log'))
            . ", want $recs");

# a restart empties the click index: these postbacks are joined to their
# clicks by the report, which takes their variant and device from them
$t->stop;
rename $t->dir . '/logs/affiliate.log', $t->dir . '/logs/affiliate.log.1'
    or die "rename: $!";
$t->start;
postback($ab[0][0], $ab[0][1], 'AB-late', '7.77');
postback($dev[4][0], $dev[4][1], 'DEV-late', '3.33');
# a click id no click has: nobody's, no variant
$t->get("/conv?order_id=U-1&amount=1.00&currency=EUR&key=$KEY"
        . '&click_id=ZZZZZZZZZZZZZZZZZZZZZZZZZZ', [['User-Agent' => 'shop']]);
$want{"\0\0"}{orders}++;
$want{"\0\0"}{cents} += 100;
$t->wait_for(sub { $t->records('logs/affiliate.log') == 3 }, 10)
    or diag('after restart: ' . scalar($t->records('logs/affiliate.log')));
$t->stop;

my @logs = map { $t->dir . "/logs/$_" } qw(affiliate.log.1 affiliate.log);
my @all = map { $t->records("logs/$_") } qw(affiliate.log.1 affiliate.log);
ok((grep { ($_->{variant} // 0) == 2 } @all)
   && (grep { ($_->{device} // '') eq 'android' } @all),
   'the records carry variant and device');

# --- the report -----------------------------------------------------------------
sub run_json {
    my (@args) = @_;
    open my $p, '-|', $TOOL, '--format', 'json', @args or die "$TOOL: $!";
    local $/;
    my $out = <$p>;
    close $p;
    is($? >> 8, 0, "report @args: exit 0");
    return eval { decode_json($out) } || do { diag($out); {} };
}

sub money {
    my ($c) = @_;
    return sprintf('%d.%02d', int($c / 100), $c % 100);
}

# the count kept here, rolled up on some of link, variant, device
my %INDEX = (link => 0, variant => 1, device => 2);
sub expected {
    my (@by) = @_;
    my %e;
    for my $g (keys %want) {
        my @f = split /\0/, $g, -1;
        my $k = join "\0", map { $f[ $INDEX{$_} ] } @by;
        $e{$k}{$_} += $want{$g}{$_} // 0
            for qw(clicks unique bots orders cents);
    }
    return \%e;
}

for my $by (['link', 'variant'], ['variant'], ['device'],
            ['link', 'variant', 'device'])
{
    my $j = run_json('--by', join(',', @$by), @logs);
    my $e = expected(@$by);
    my %got;
    for my $r (@{ $j->{groups} || [] }) {
        my $k = join "\0", map { $r->{key}{$_} // '' } @$by;
        ok(!exists $got{$k}, "@$by: one row per group");
        $got{$k} = $r;
    }
    is_deeply([sort keys %got], [sort keys %$e], "@$by: the groups")
        or diag explain [keys %got];
    for my $k (sort keys %$e) {
        my $r = $got{$k} || {};
        my $w = $e->{$k};
        (my $name = $k) =~ s/\0/,/g;
        is($r->{clicks}, $w->{clicks}, "@$by [$name]: clicks");
        is($r->{unique_visits}, $w->{unique}, "@$by [$name]: unique visits");
        is($r->{bot_clicks}, $w->{bots}, "@$by [$name]: bot clicks");
        is($r->{conversions}, $w->{orders}, "@$by [$name]: conversions");
        is($r->{revenue}, money($w->{cents}), "@$by [$name]: revenue");
    }
    my @variants = grep { defined } map { $_->{key}{variant} }
        @{ $j->{groups} };
    ok(!grep({ !/^[12]\z/ } @variants), "@$by: a variant is a number")
        if grep { $_ eq 'variant' } @$by;
}

my $j = run_json('--by', 'link,variant', @logs);
is($j->{attribution}{joined}, 2, 'the two late postbacks joined');
is($j->{attribution}{unknown}, 1, 'the unknown click id');
is($j->{attribution}{module}, 11, 'attributed by the module: 11');

# --- the demo's command -----------------------------------------------------------
# as scripts/demo.sh prints it, with its $top and $dir: this log in
# $dir/logs/affiliate.log*
open my $fh, '<', "$TOP/scripts/demo.sh" or die "demo.sh: $!";
my $demo = do { local $/; <$fh> };
close $fh;
my ($cmd) = $demo =~ m{^\s*(\$top/tools/affiliate-report\s(?:[^\n]*\\\n)*[^\n]*)$}m;
ok($cmd, 'demo.sh prints a report command') or diag($demo);
$cmd //= 'false';
# as the here-document prints it (\\ is \), for sh as a user pastes it
$cmd =~ s/\\\\/\\/g;
like($cmd, qr{\$dir/logs/affiliate\.log\*}, 'it reads $dir/logs/affiliate.log*');
my $dir = $t->dir;
my $out = `top='$TOP' dir='$dir'; $cmd 2>&1`;
is($? >> 8, 0, 'the demo command: exit 0') or diag($out);
like($out, qr/^affiliate-report: /, 'the demo command: a report');
like($out, qr/by creator,campaign, money in EUR/, 'by creator and campaign, in EUR');
like($out, qr/^Integrity: complete/m, 'the data is complete');
my $e = expected();
my $tot = $e->{''};
my ($tline) = $out =~ /^(total\s.*)$/m;
ok($tline, 'a total line') or diag($out);
my @f = split ' ', $tline // '';
is($f[1], $tot->{clicks}, 'total clicks as counted here');
is($f[2], $tot->{unique}, 'total unique visits as counted here');
like($tline, qr/\s\Q@{[ money($tot->{cents}) ]}\E\s/,
     'total revenue as counted here');
# examples/costs.tsv: anna summer25 flat 150.00 EUR and * cpc 0.05 EUR; bob
# starter cpa 4.00 EUR; carla * revshare 12.5, launch flat 80.00 USD
# (examples/rates.tsv: USD 0.92 EUR)
my ($anna) = $out =~ /^(anna\s+summer25\s.*)$/m;
my $anna_visits = 0;
$anna_visits += $want{$_}{clicks} // 0 for grep { /^ab\0/ } keys %want;
like($anna // '', qr/\s\Q@{[ money(15000 + 5 * $anna_visits) ]}\E\s/,
     'anna summer25: cost = 150 + 0.05 per visit');

done_testing();
