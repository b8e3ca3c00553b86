# Speculative requests (Chromium Speculation Rules prefetch and
# prerender: Sec-Purpose: prefetch[;prerender] + Sec-Fetch-Mode: navigate,
# and <link rel=prefetch>: no-cors) are declined with 503 and
# Cache-Control: no-store, recorded as bot clicks with bot_reason
# "prefetch", so that the person's real click reaches nginx;
# affiliate_speculative sets the status or turns this off.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like '
       . 'Gecko) Chrome/156.0.0.0 Safari/537.36';
my $SECRET = 'speculative-secret-0123456789abcdefghijk';

my $t = Aff->new(
    http => Aff::std_http(
        http => "    affiliate_secret %%DIR%%/secret;\n"
              . "    affiliate_cookie aff;\n",
        server => <<'EOF'),
        location /off/ { affiliate_redirect zone=aff;
                         affiliate_speculative off; }
        location /s429/ { affiliate_redirect zone=aff;
                          affiliate_speculative 429; }
        location /land/ { affiliate_capture zone=aff creator=ref;
                          return 200 "page\n"; }
EOF
    files => {
        'links.tsv' => "a\thttps://shop.example/a\tanna\tsummer\n",
        'secret'    => "$SECRET\n",
    },
);
$t->start;

my @nav = (['Sec-Fetch-Mode' => 'navigate'], ['Sec-Fetch-Dest' => 'document']);

sub get {
    my ($path, @h) = @_;
    return $t->get($path, [['User-Agent' => $UA], @h]);
}

my $n = 0;
sub next_record {
    $t->wait_for(sub { $t->records('aff.log') > $n }, 5);
    my @r = $t->records('aff.log');
    return $r[$n++];
}

for my $purpose ('prefetch', 'prefetch;prerender') {
    my $r = get('/go/a', ['Sec-Purpose' => $purpose], @nav);
    is($r->{status}, 503, "$purpose: 503");
    is($r->{headers}{'cache-control'}, 'private, no-store', "$purpose: no-store");
    ok(!defined $r->{headers}{location}, "$purpose: no Location");
    ok(!defined $r->{headers}{'set-cookie'}, "$purpose: no cookie");
    my $rec = next_record();
    is($rec->{type}, 'click', "$purpose: a click record");
    ok($rec->{bot}, "$purpose: counted as a bot");
    is($rec->{bot_reason}, 'prefetch', "$purpose: bot_reason prefetch");
    is($rec->{status}, 503, "$purpose: status 503 in the record");
    is($rec->{click_id}, undef, "$purpose: no click id");
    like($rec->{id}, qr/^$Aff::ULID$/, "$purpose: an id all the same");
}

# the real navigation that follows is a person's click
my $r = get('/go/a', @nav);
is($r->{status}, 302, 'the real click: 302');
ok(defined $r->{headers}{'set-cookie'}, 'the real click: cookie');
my $rec = next_record();
ok(!$rec->{bot}, 'the real click: a person');

# <link rel=prefetch>: no-cors; declined too, or the browser would fetch
# the shop's page with a bot's click id (t/41-chromium.t saw it)
$r = get('/go/a', ['Sec-Purpose' => 'prefetch'], ['Sec-Fetch-Mode' => 'no-cors'],
         ['Sec-Fetch-Dest' => 'empty']);
is($r->{status}, 503, 'link rel=prefetch: declined');
is($r->{headers}{'cache-control'}, 'private, no-store', 'link rel=prefetch: no-store');
ok(!defined $r->{headers}{location}, 'link rel=prefetch: no Location');
$rec = next_record();
is($rec->{bot_reason}, 'prefetch', 'link rel=prefetch: bot_reason prefetch');

$r = get('/off/a', ['Sec-Purpose' => 'prefetch'], @nav);
is($r->{status}, 302, 'affiliate_speculative off: redirect as before');
next_record();

$r = get('/s429/a', ['Sec-Purpose' => 'prefetch;prerender'], @nav);
is($r->{status}, 429, 'affiliate_speculative 429');
is(next_record()->{status}, 429, 'the record has the status sent');

# a landing page prerendered: declined too, the real visit lands
$r = get('/land/?ref=anna', ['Sec-Purpose' => 'prefetch;prerender'], @nav);
is($r->{status}, 503, 'prerendered landing: 503');
is($r->{headers}{'cache-control'}, 'private, no-store', 'landing: no-store');
$rec = next_record();
is($rec->{type}, 'landing', 'landing record');
is($rec->{bot_reason}, 'prefetch', 'landing: bot_reason prefetch');
is($rec->{click_id}, undef, 'declined landing: no click id');
$r = get('/land/?ref=anna', @nav);
is($r->{status}, 200, 'the real visit: the page');
ok(defined $r->{headers}{'set-cookie'}, 'the real visit: cookie');
ok(!next_record()->{bot}, 'the real visit: a person');

my $st = $t->status_json;
my $c = $st->{counters} // $st;
is($c->{bot_clicks}, 6, 'bot_clicks: 5 speculative/prefetch clicks + 1 landing');

for my $bad ('200', '302', 'on', '600') {
    my ($rc, $out) = $t->conf_test(Aff::std_http(
        go => "affiliate_speculative $bad;"));
    isnt($rc, 0, "affiliate_speculative $bad refused");
    like($out, qr/invalid status "$bad".* in \S+:\d+/, "$bad: file and line");
}

$t->stop;
done_testing;
