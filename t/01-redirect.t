# Redirects: the exact Location for many destinations, statuses, headers,
# unknown slugs, case-insensitive slugs, inline links.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Aff;

my $links = <<"EOF";
# slug\tdestination\tcreator\tcampaign

anna-summer\thttps://b.example/p?x=1#top\tanna\tsummer
plain\thttps://shop.example/item\tbob\twinter
root\thttp://shop.example\tbob\twinter
withq\thttp://shop.example/a/b?q=hello%20world&z=\tcarol\tspring
hasutm\thttps://shop.example/x?utm_source=orig&foo=1\tdave\tfall
hasclick\thttps://shop.example/y?click_id=abc\terin\tc1
allset\thttps://shop.example/z?click_id=1&utm_source=s&utm_medium=m&utm_campaign=c\tfrank\tc2
similar\thttps://shop.example/w?my_utm_source=1&xclick_id=2&utm_medium_x=3\tgus\tc3
frag\thttps://shop.example/f#sec\tgina\tg
qfrag\thttps://shop.example/f?utm_campaign=own#a?b=c\thal\th
esc\thttps://shop.example/e\ta b&c#d+e%f\tsum mer/2026?x
utf\thttps://shop.example/u\tjos\xc3\xa9\tcaf\xc3\xa9
MixedCase\thttps://shop.example/m\tmia\tm
emptyq\thttps://x.example/p?\tq\tc
emptyqfrag\thttps://x.example/p?#f\tq\tc
trailamp\thttps://x.example/p?a=1&\tq\tc
upper\tHTTPS://X.example/p\tq\tc
bare\thttps://x.example/p?utm_source\tq\tc
caseparam\thttps://x.example/p?UTM_SOURCE=1\tq\tc
emptyfrag\thttps://x.example/p#\tq\tc
port\thttps://x.example:8443\tq\tc
EOF

my $t = Aff->new(
    http => Aff::std_http(
        http => 'affiliate_link inl https://inline.example/landing '
              . 'creator=ivan campaign=promo;',
        server => join("\n", map {
            "location /s$_/ { affiliate_redirect zone=aff status=$_; }"
        } 301, 302, 303, 307, 308),
    ) . <<'EOF',
    # a server with links of its own inherits none from http
    server {
        listen 127.0.0.1:%%PORT2%%;
        affiliate_link srv https://srv.example/only creator=sam campaign=s1;
        location /go/ { affiliate_redirect zone=aff; }
    }
EOF
    files => { 'links.tsv' => $links },
);
$t->start;

my $ULID = $Aff::ULID;

# returns the Location with the click id replaced by CLICK, and the id
sub loc {
    my ($r) = @_;
    my $l = $r->{headers}{location} // '';
    my $id = Aff::click_id($l);
    (my $norm = $l) =~ s/([?&]click_id=)$ULID(?=[&#]|$)/${1}CLICK/;
    return ($norm, $id);
}

my $t0 = time;

my %expect = (
    'anna-summer' => 'https://b.example/p?x=1&click_id=CLICK&utm_source=anna'
        . '&utm_medium=affiliate&utm_campaign=summer#top',
    plain => 'https://shop.example/item?click_id=CLICK&utm_source=bob'
        . '&utm_medium=affiliate&utm_campaign=winter',
    root => 'http://shop.example?click_id=CLICK&utm_source=bob'
        . '&utm_medium=affiliate&utm_campaign=winter',
    withq => 'http://shop.example/a/b?q=hello%20world&z=&click_id=CLICK'
        . '&utm_source=carol&utm_medium=affiliate&utm_campaign=spring',
    hasutm => 'https://shop.example/x?utm_source=orig&foo=1&click_id=CLICK'
        . '&utm_medium=affiliate&utm_campaign=fall',
    similar => 'https://shop.example/w?my_utm_source=1&xclick_id=2'
        . '&utm_medium_x=3&click_id=CLICK&utm_source=gus'
        . '&utm_medium=affiliate&utm_campaign=c3',
    frag => 'https://shop.example/f?click_id=CLICK&utm_source=gina'
        . '&utm_medium=affiliate&utm_campaign=g#sec',
    qfrag => 'https://shop.example/f?utm_campaign=own&click_id=CLICK'
        . '&utm_source=hal&utm_medium=affiliate#a?b=c',
    esc => 'https://shop.example/e?click_id=CLICK&utm_source=a%20b%26c%23d%2Be%25f'
        . '&utm_medium=affiliate&utm_campaign=sum%20mer/2026%3Fx',
    utf => 'https://shop.example/u?click_id=CLICK&utm_source=jos%C3%A9'
        . '&utm_medium=affiliate&utm_campaign=caf%C3%A9',
    inl => 'https://inline.example/landing?click_id=CLICK&utm_source=ivan'
        . '&utm_medium=affiliate&utm_campaign=promo',
    # an empty query gets no extra '&'; a trailing '&' no second one
    emptyq => 'https://x.example/p?click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c',
    emptyqfrag => 'https://x.example/p?click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c#f',
    trailamp => 'https://x.example/p?a=1&click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c',
    upper => 'HTTPS://X.example/p?click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c',
    # a parameter without '=' is there; names are case-sensitive
    bare => 'https://x.example/p?utm_source&click_id=CLICK'
        . '&utm_medium=affiliate&utm_campaign=c',
    caseparam => 'https://x.example/p?UTM_SOURCE=1&click_id=CLICK'
        . '&utm_source=q&utm_medium=affiliate&utm_campaign=c',
    emptyfrag => 'https://x.example/p?click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c#',
    port => 'https://x.example:8443?click_id=CLICK&utm_source=q'
        . '&utm_medium=affiliate&utm_campaign=c',
);

my %seen;
for my $slug (sort keys %expect) {
    my $r = $t->get("/go/$slug");
    is($r->{status}, 302, "$slug: 302");
    my ($norm, $id) = loc($r);
    is($norm, $expect{$slug}, "$slug: Location");
    like($id // '', qr/^$ULID$/, "$slug: click_id is a ULID");
    $seen{$id}++ if defined $id;
    is($r->{headers}{'cache-control'}, 'private, no-store',
        "$slug: Cache-Control");
    is($r->{headers}{'content-length'}, '0', "$slug: Content-Length 0");
    is($r->{body}, '', "$slug: empty body");
}
is(scalar(keys %seen), scalar(keys %expect), 'click ids are distinct');

# the ULID's first 10 characters are the time in ms
{
    my $r = $t->get('/go/plain');
    my $id = Aff::click_id($r->{headers}{location});
    my $ms = 0;
    my $alpha = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    $ms = $ms * 32 + index($alpha, $_) for split //, substr($id, 0, 10);
    my $now = time * 1000;
    cmp_ok(abs($ms - $now), '<', 5000, "ULID time $ms is now ($now)")
        or diag $id;
    # click ids of requests in sequence sort by time
    my $r2 = $t->get('/go/plain');
    my $id2 = Aff::click_id($r2->{headers}{location});
    cmp_ok(substr($id2, 0, 10), 'ge', substr($id, 0, 10),
        'later click id has a later or equal time part');
    isnt($id2, $id, 'two clicks, two ids');
}

# a destination whose query sets every parameter gets none added
{
    my $r = $t->get('/go/allset');
    is($r->{status}, 302, 'allset: 302');
    is($r->{headers}{location},
        'https://shop.example/z?click_id=1&utm_source=s&utm_medium=m'
        . '&utm_campaign=c', 'allset: Location unchanged');
}

# the destination's own click_id is kept, none is added
{
    my $r = $t->get('/go/hasclick');
    is($r->{headers}{location},
        'https://shop.example/y?click_id=abc&utm_source=erin'
        . '&utm_medium=affiliate&utm_campaign=c1', 'hasclick: Location');
}

# slugs are matched case-insensitively
for my $slug (qw(ANNA-SUMMER Anna-Summer mixedcase MIXEDCASE MixedCase)) {
    my $r = $t->get("/go/$slug");
    is($r->{status}, 302, "$slug: 302 (case-insensitive)");
}
like($t->get('/go/mixedcase')->{headers}{location},
    qr{^https://shop\.example/m\?click_id=$ULID&utm_source=mia&}, 'mixedcase dest');

# the request's query string is not part of the slug
{
    my $r = $t->get('/go/plain?ref=tw&x=1');
    is($r->{status}, 302, 'slug with request args: 302');
    my ($norm) = loc($r);
    is($norm, $expect{plain}, 'request args are not copied into Location');
}

# percent-encoded slug is decoded
is($t->get('/go/pl%61in')->{status}, 302, '/go/pl%61in finds plain');

# unknown slugs
for my $path ('/go/nope', '/go/', '/go/plain/extra', '/go/plai',
              '/go/' . ('x' x 300))
{
    my $r = $t->get($path);
    is($r->{status}, 404, "$path: 404");
    ok(!defined $r->{headers}{location}, "$path: no Location");
}

# status=
for my $st (301, 302, 303, 307, 308) {
    my $r = $t->get("/s$st/plain");
    is($r->{status}, $st, "status=$st");
    my ($norm) = loc($r);
    is($norm, $expect{plain}, "status=$st: Location");
    is($r->{headers}{'content-length'}, '0', "status=$st: Content-Length 0");
    is($r->{body}, '', "status=$st: empty body");
}

# HEAD gets the same headers
{
    my $r = $t->get('/go/plain', {}, method => 'HEAD');
    is($r->{status}, 302, 'HEAD: 302');
    my ($norm) = loc($r);
    is($norm, $expect{plain}, 'HEAD: Location');
}

# HTTP/1.0 without Host
{
    my $r = $t->get('/go/plain', { Host => undef });
    is($r->{status}, 302, 'HTTP/1.0 without Host: 302');
}

# server-level links
{
    my $r = $t->get('/go/srv', {}, port => $t->port2);
    is($r->{status}, 302, 'server link: 302 in its server');
    my ($norm) = loc($r);
    is($norm, 'https://srv.example/only?click_id=CLICK&utm_source=sam'
        . '&utm_medium=affiliate&utm_campaign=s1', 'server link: Location');
    is($t->get('/go/srv')->{status}, 404, 'server link: not in other servers');
    is($t->get('/go/plain', {}, port => $t->port2)->{status}, 404,
        'a server with its own links inherits none from http');
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
