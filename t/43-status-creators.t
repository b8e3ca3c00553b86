# Live counters per creator and campaign in the zone's creators= table
# (clicks, landings, unique clicks, bot clicks, conversions and revenue
# per currency); the JSON status lists the top pairs by clicks (?top=),
# pairs that find no room go to one "other" bucket (counted, never lost);
# the status speaks Prometheus text format 0.0.4 on ?format=prometheus or
# a scrape's Accept, checked with promtool.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempfile);
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $KEY = 'postback-key-0123456789ABCDEF';

my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n"
          . "q\thttps://shop.example/q\tq\"uote\\back\tnew\\nline\n";

sub conf {
    my ($zone) = @_;
    return Aff::std_http(
        size => '8m',
        http => "    affiliate_postback_key %%DIR%%/postback.key;\n"
              . "    affiliate_unique 1h;\n",
        server => <<'EOF') =~ s/affiliate_zone  aff:8m;/$zone/r;
        location = /conv { affiliate_conversion zone=aff; }
        location /land/ { affiliate_capture zone=aff creator=ref
                                            campaign=cmp; return 204; }
        location /r/ {
            affiliate_rule "^/r/(?<c>[a-z0-9]+)$" https://shop.example/
                           creator=$c campaign=many;
            affiliate_redirect zone=aff;
        }
EOF
}

my $t = Aff->new(http => conf('affiliate_zone  aff:8m creators=24576;'),
                 files => { 'links.tsv' => $links, 'postback.key' => "$KEY\n" });
$t->start;

sub get { $t->get($_[0], [['User-Agent' => $_[1] // $UA]]) }

my $conv = sub {
    my ($id, $order, $amount, $cur) = @_;
    my $r = get("/conv?key=$KEY&click_id=$id&order_id=$order&amount=$amount"
                . "&currency=$cur");
    is($r->{status}, 200, "conversion $order");
};

# each postback right after its click: the click index is direct-mapped,
# a later click could take a click's entry (docs/internals.md)
my @orders = (['o1', '10.10', 'EUR'], ['o2', '0.0001', 'EUR'], ['o3', '5', 'USD'],
              ['o1', '99', 'EUR']);         # the last: a duplicate, not counted
for my $i (1 .. 5) {
    my $r = $t->get('/go/a', [['User-Agent' => "$UA n$i"]]);
    my $id = Aff::click_id($r->{headers}{location});
    $conv->($id, @{ $orders[$i - 1] }) if $orders[$i - 1];
}
get('/go/a') for 1 .. 2;                    # repeats: not unique
get('/go/b') for 1 .. 3;
get('/go/a', 'Googlebot/2.1');               # a bot
get('/go/q');
get('/land/?ref=anna&cmp=summer');           # a landing of anna/summer

$conv->('01ARZ3NDEKTSV4RRFFQ69G5FAV', 'o9', '7', 'EUR');   # unattributed

my $s = $t->status_json;
my $c = $s->{creators};
is($c->{capacity}, 63, 'capacity: the entries but "other"');
my %top = map { ("$_->{creator}/$_->{campaign}" => $_) } @{ $c->{top} };
is($c->{top}[0]{creator}, 'anna', 'top pair by clicks first');
my $anna = $top{'anna/summer'};
is($anna->{clicks}, 7, 'anna: clicks by people');
is($anna->{landings}, 1, 'anna: landings');
is($anna->{unique_clicks}, 7, 'anna: unique clicks and landings (5 + 1 + 1)');
is($anna->{bot_clicks}, 1, 'anna: bot clicks');
is($anna->{conversions}, 3, 'anna: attributed conversions, no duplicate');
is_deeply($anna->{revenue}, { EUR => '10.1001', USD => '5.0000' },
          'anna: revenue per currency, exact');
is($top{'bob/winter'}{clicks}, 3, 'bob: clicks');
is($top{"q\"uote\\back/new\\nline"}{clicks}, 1, 'names with quotes escaped');
is($c->{other}{clicks}, 0, 'nothing in "other" yet');

my $t1 = $t->status_json('/affiliate/status?top=1');
is(scalar @{ $t1->{creators}{top} }, 1, '?top=1: one pair');

# --- the table fills up: "other" takes the rest ----------------------------

get("/r/c$_") for 1 .. 80;
$s = $t->status_json('/affiliate/status?top=1000');
my @top = @{ $s->{creators}{top} };
is(scalar @top, 63, 'the table holds 63 pairs');
my $sum = 0;
$sum += $_->{clicks} for @top, $s->{creators}{other};
is($sum, $s->{clicks}, 'clicks of all pairs and "other" add up to the zone\'s');
cmp_ok($s->{creators}{other}{clicks}, '>', 0, '"other" counted the rest');

# --- Prometheus ------------------------------------------------------------------

my $r = $t->get('/affiliate/status?format=prometheus');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     'format=prometheus: text/plain; version=0.0.4');
my $prom = $r->{body};
like($prom, qr/^# TYPE affiliate_clicks_total counter$/m, 'TYPE lines');
like($prom, qr/^affiliate_clicks_total\{zone="aff"\} $s->{clicks}$/m,
     'the zone\'s clicks');
like($prom, qr/^affiliate_creator_clicks_total\{zone="aff",creator="anna",campaign="summer"\} 7$/m,
     'per creator and campaign');
like($prom, qr/^affiliate_creator_revenue_total\{zone="aff",creator="anna",campaign="summer",currency="EUR"\} 10\.1001$/m,
     'revenue per creator, campaign and currency');
like($prom, qr/^affiliate_creator_clicks_total\{zone="aff",creator="q\\"uote\\\\back",campaign="new\\\\nline"\} 1$/m,
     'label values escaped');
like($prom, qr/^affiliate_creator_clicks_total\{zone="aff",creator="",campaign=""\} \d+$/m,
     '"other" with empty labels');

$r = $t->get('/affiliate/status', [[Accept => 'application/openmetrics-text;'
    . 'version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,'
    . 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1']]);
like($r->{headers}{'content-type'}, qr{^text/plain}, 'a Prometheus scrape\'s Accept');
$r = $t->get('/affiliate/status', [[Accept => '*/*']]);
like($r->{headers}{'content-type'}, qr{^application/json}, 'curl\'s Accept: JSON');
is($t->get('/affiliate/status?format=xml')->{status}, 400, 'format=xml: 400');

SKIP: {
    my ($promtool) = grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH};
    skip 'promtool is not installed (scripts/deps.sh test installs it)', 1
        unless $promtool;
    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh $prom;
    close $fh;
    my $out = `$promtool check metrics < $file 2>&1`;
    is($?, 0, 'promtool check metrics') or diag $out;
}

$t->stop;
done_testing;
