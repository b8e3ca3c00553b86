# Where the module meets nginx core (issue 7): capture strip=on never
# answers a Location that leaves the host (//host, /\host, from the raw
# request line); internal redirects (index, try_files, error_page) and
# subrequests never record a landing, click or conversion twice; a HEAD to
# the conversion endpoint changes nothing; sig is not rewritten in $args;
# the creator parameter decodes the same in capture and conversions.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $SECRET = 'core-edges-secret-0123456789abcdefghijkl';
my $KEY = 'postback-key-0123456789ABCDEF';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_postback_key %%DIR%%/postback.key;
    affiliate_cookie aff;

    log_format args '$args|$request';

    server {
        listen 127.0.0.1:%%PORT%%;
        absolute_redirect off;
        merge_slashes off;
        server_name localhost;
        root %%DIR%%/html;

        location / {
            affiliate_capture zone=aff creator=ref campaign=utm_campaign;
            index index.html;
        }
        location /strip/ {
            affiliate_capture zone=aff creator=ref strip=on;
            return 200 "strip\n";
        }
        location /tf/ {
            affiliate_capture zone=aff creator=ref;
            try_files $uri /tf/fallback.html?$args;
        }
        location /ep/ {
            affiliate_capture zone=aff creator=ref;
            error_page 404 /ep-missing.html?$args;
        }
        location /go/ {
            affiliate_redirect zone=aff;
            error_page 404 = /go/fallback;
        }
        location = /conv {
            affiliate_conversion zone=aff;
            access_log %%DIR%%/access.log args;
        }
        location = /affiliate/status { affiliate_status zone=aff; }
        location = /mirrored.txt {
            mirror /go/a;
            mirror /conv;
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        absolute_redirect off;
        merge_slashes off;
        server_name localhost;

        location / {
            affiliate_capture zone=aff creator=ref strip=on;
            return 200 "strip\n";
        }
    }
EOF

my $t = Aff->new(
    http  => $http,
    files => {
        'links.tsv'    => "a\thttps://shop.example/a\tanna\tsummer\n"
                        . "fallback\thttps://shop.example/\thouse\tnone\n",
        'secret'       => "$SECRET\n",
        'postback.key' => "$KEY\n",
        'html/index.html' => "home\n",
        'html/tf/fallback.html' => "fallback\n",
        'html/ep-missing.html' => "missing\n",
        'html/mirrored.txt' => "mirrored\n",
    },
);
$t->start;

sub get {
    my ($path, %o) = @_;
    my $h = delete $o{headers} || [];
    return $t->get($path, [['User-Agent' => $UA], @$h], %o);
}

sub raw_get {
    my ($target, @h) = @_;
    my $raw = "GET $target HTTP/1.1\r\nHost: localhost\r\nUser-Agent: $UA\r\n"
        . join('', map { "$_\r\n" } @h) . "Connection: close\r\n\r\n";
    return $t->get('/', undef, raw => $raw, port => $t->port2);
}

my $n = 0;
sub records_now {
    my ($want, $name) = @_;
    $t->wait_for(sub { $t->records('aff.log') >= $want }, 5);
    select(undef, undef, undef, 0.3);
    my @r = $t->records('aff.log');
    is(scalar @r, $want, "$name: $want records in all") or diag explain [@r[$n .. $#r]];
    my @new = @r[$n .. $#r];
    $n = @r;
    return @new;
}

sub set_cookies {
    my ($r) = @_;
    my $sc = $r->{headers}{'set-cookie'};
    return 0 unless defined $sc;
    return ref $sc ? scalar @$sc : 1;
}

# --- 2. capture strip=on: no Location to another host ----------------------

for my $target ('//evil.example/../strip/?ref=anna',
                '//evil.example/strip/../strip/?ref=anna&x=1',
                '/strip//evil.example/?ref=anna',
                '/strip/..//evil.example/?ref=anna',
                "/strip/../\\evil.example/?ref=anna",
                "/\\evil.example/../strip/?ref=anna",
                '/strip/%2F%2Fevil.example?ref=anna',
                '/strip/a%0d%0aX-Injected:%201?ref=anna')
{
    my $r = raw_get($target);
    my $loc = $r->{headers}{location};
    if ($r->{status} == 302) {
        ok(defined $loc, "$target: 302 with a Location");
        unlike($loc, qr{^[/\\]{2}}, "$target: Location $loc is not "
               . "protocol-relative");
        unlike($loc, qr{^[a-z]+:}i, "$target: Location has no scheme");
        unlike($loc, qr/[\x00-\x20\x7f]/, "$target: no control bytes");
        like($loc, qr{^/}, "$target: Location is a path");
        unlike($loc, qr/ref=/, "$target: capture parameter stripped");
    } else {
        is($r->{status}, 400, "$target: refused");
    }
    ok(!exists $r->{headers}{'x-injected'}, "$target: no injected header");
}
my $r = raw_get('/strip/p%C3%A9%20q/?ref=anna&keep=1');
is($r->{headers}{location}, '/strip/p%C3%A9%20q/?keep=1',
   'strip: the normalised path, escaped, other arguments kept');
records_now(9, 'strip landings');

# --- 3. internal redirects record once --------------------------------------

$r = get('/?ref=anna&utm_campaign=c1');
is($r->{status}, 200, 'index: page served');
is($r->{body}, "home\n", 'index: the index file');
is(set_cookies($r), 1, 'index: one Set-Cookie');
my @l = records_now($n + 1, 'index');
is($l[0]{type}, 'landing', 'index: one landing');

$r = get('/tf/nothing?ref=anna');
is($r->{body}, "fallback\n", 'try_files: fallback served');
is(set_cookies($r), 1, 'try_files: one Set-Cookie');
records_now($n + 1, 'try_files');

$r = get('/ep/nothing?ref=anna');
is($r->{status}, 404, 'error_page: 404');
is(set_cookies($r), 1, 'error_page: one Set-Cookie');
records_now($n + 1, 'error_page');

$r = get('/go/nope');
is($r->{status}, 302, 'redirect miss -> error_page -> fallback link');
my @g = records_now($n + 2, 'miss then fallback');
is(join(',', map { $_->{type} } @g), 'miss,click', 'a miss, then a click');
is($g[1]{click_id}, Aff::click_id($r->{headers}{location}),
   'the click record has the click id that was sent');

# subrequests (mirror, SSI, auth_request) never record
$r = get("/mirrored.txt?click_id=01ARZ3NDEKTSV4RRFFQ69G5FAV&order_id=m1&amount=1"
         . "&currency=EUR&key=$KEY");
is($r->{status}, 200, 'mirror: the main request answered');
$r = get('/go/a');
is($r->{status}, 302, 'a click after the mirrored request');
my ($after) = records_now($n + 1, 'mirrored subrequests made no record');
is($after->{type}, 'click', 'the next record is the real click');

my $st = $t->status_json;
is($st->{counters}{landings} // $st->{landings}, 12, 'landings counted once each')
    or diag explain $st;

# --- 9. HEAD conversion, sig in $args, decoding --------------------------------

my $conv = "click_id=01ARZ3NDEKTSV4RRFFQ69G5FAV&order_id=h1&amount=5.00"
         . "&currency=EUR";
$r = get("/conv?$conv&key=$KEY", method => 'HEAD');
isnt($r->{status}, 200, "HEAD conversion refused ($r->{status})");
$r = get("/conv?$conv&key=$KEY");
is($r->{status}, 200, 'GET conversion after HEAD accepted');
like($r->{body}, qr/"duplicate":false/, 'the HEAD did not take the order id');
my @c = records_now($n + 1, 'HEAD made no record');
is($c[0]{amount}, '5.00', 'the GET is the one recorded');

my $signed = "click_id=01ARZ3NDEKTSV4RRFFQ69G5FAV&order_id=s1&amount=1"
           . "&currency=EUR";
my $sig = uc hmac_sha256_hex($signed, $KEY);
$r = get("/conv?$signed&sig=$sig");
is($r->{status}, 200, 'upper-case sig accepted');
records_now($n + 1, 'signed conversion');
$t->wait_for(sub { -s $t->dir . '/access.log' }, 5);
my ($line) = grep { /order_id=s1/ } split /\n/, $t->read_file('access.log');
like($line, qr/sig=$sig/, 'sig is logged as sent (not lower-cased)');

$r = get('/?ref=a%3Fb+c%2Bd');
my ($land) = records_now($n + 1, 'decoded landing');
is($land->{creator}, 'a?b c+d', 'capture: %3F, + and %2B decode as in a form');

# --- 4. a chunked conversion body (UBSan once saw memcpy from NULL) -------

{
    my $body = "click_id=01ARZ3NDEKTSV4RRFFQ69G5FAV&order_id=chunk1&amount=2.50"
             . "&currency=EUR&key=$KEY";
    my ($b1, $b2) = (substr($body, 0, 20), substr($body, 20));
    my $raw = "POST /conv HTTP/1.1\r\nHost: localhost\r\nUser-Agent: $UA\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        . sprintf("%x\r\n%s\r\n", length $b1, $b1)
        . sprintf("%x\r\n%s\r\n", length $b2, $b2) . "0\r\n\r\n";
    my $r = $t->get('/', undef, raw => $raw);
    is($r->{status}, 200, 'chunked conversion body: 200');
    my ($c) = records_now($n + 1, 'chunked conversion');
    is($c->{order_id}, 'chunk1', 'chunked body: the order recorded');
    is($c->{amount}, '2.50', 'chunked body: the amount');
}

# --- 9. the open-redirect guard's message is the one documented -------------

my ($rc, $out) = $t->conf_test(Aff::std_http(
    go => 'affiliate_rule "^/go/(.*)/(.*)$" https://$1/$2 creator=a;'));
isnt($rc, 0, 'a rule with a variable host needs affiliate_allow_hosts');
my $doc = do { local (@ARGV, $/) = "$FindBin::Bin/../docs/directives.md"; <> };
my ($documented) = $doc =~ /^affiliate_rule in \S+: (the destination's host .*?)\n```/ms;
$documented =~ s/\n/ /g;
like($out, qr/affiliate_rule in \S+test\.conf:\d+: \Q$documented\E/,
     'the message is word for word the one in docs/directives.md');

$t->stop;
done_testing;
