# Conversions: click -> pixel (format=gif, cookie carried) -> postback
# (key=), sig= HMAC auth, POST form bodies, attribution by cookie or by the
# click index, unknown click ids, duplicate order ids, exact amounts,
# invalid amounts/currencies/order ids (400), unauthenticated postbacks
# (403), and the status counters (conversions, duplicate_orders, revenue,
# invalid_conversions, unauthenticated).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $SECRET = 'conversion-test-secret-0123456789abcdefgh';
my $KEY = 'postback-key-0123456789ABCDEF';

my $http = <<'EOF';
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
        location = /conv { affiliate_conversion zone=aff; }
        location = /convj { affiliate_conversion zone=aff format=json; }
        location = /px.gif { affiliate_conversion zone=aff format=gif; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n";

my $t = Aff->new(
    http  => $http,
    files => {
        'links.tsv'    => $links,
        'secret'       => "$SECRET\n",
        'postback.key' => "$KEY\n",
    },
);
$t->start;

my $ULID = $Aff::ULID;
my $JSON = JSON::PP->new->utf8;

sub get {
    my ($path, $cookie, %o) = @_;
    my @h = (['User-Agent' => $UA]);
    push @h, [Cookie => $cookie] if defined $cookie;
    push @h, ['Content-Type' => $o{ctype}] if defined $o{ctype};
    return $t->get($path, \@h, %o);
}

sub json_of {
    my ($r) = @_;
    my $j = eval { $JSON->decode($r->{body}) };
    return ref $j eq 'HASH' ? $j : {};
}

sub st { $t->status_json }

sub rec_where {
    my ($k, $v, $n) = @_;
    my @rec;
    $t->wait_for(sub {
        @rec = grep { defined $_->{$k} && $_->{$k} eq $v }
               $t->records('aff.log');
        @rec >= ($n // 1);
    }, 10);
    ok(@rec >= ($n // 1), "record with $k $v") or return {};
    return $rec[-1];
}

# revenue expected, in units of 1/10000, per currency
my %rev;
my $nconv = 0;     # conversions recorded, not duplicates
my $ndup = 0;
sub counted {
    my ($amount, $cur) = @_;
    my ($i, $f) = $amount =~ /^(\d+)(?:\.(\d+))?$/;
    $f = substr(($f // '') . '0000', 0, 4);
    $rev{$cur} += $i * 10000 + $f;
    $nconv++;
}
sub rev_str {
    my ($u) = @_;
    use integer;
    return sprintf('%d.%04d', $u / 10000, $u % 10000);
}

# --- click -> pixel -> postback ------------------------------------------------

my $r = get('/go/a');
is($r->{status}, 302, 'click: 302');
my $C = Aff::click_id($r->{headers}{location});
my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^(aff=[^;]+)/;
ok($cookie, 'click: cookie') or diag explain $r->{headers};
$cookie //= 'aff=none';

{
    my $r = get('/px.gif?order_id=ord-1&amount=19.90&currency=EUR', $cookie);
    is($r->{status}, 200, 'pixel: 200');
    is($r->{headers}{'content-type'}, 'image/gif', 'pixel: image/gif');
    is($r->{headers}{'cache-control'}, 'private, no-store',
        'pixel: Cache-Control');
    is(length $r->{body}, 43, 'pixel: 43-byte body');
    like($r->{body}, qr/^GIF8[79]a\x01\x00\x01\x00/, 'pixel: a 1x1 GIF');
    is($r->{headers}{'content-length'}, 43, 'pixel: Content-Length 43');
    ok(!defined $r->{headers}{'set-cookie'}, 'pixel: no Set-Cookie');
    counted('19.90', 'EUR');
    my $rec = rec_where(order_id => 'ord-1');
    is($rec->{type}, 'conversion', 'pixel: type conversion');
    is($rec->{source}, 'pixel', 'pixel: source pixel');
    is($rec->{click_id}, $C, 'pixel: click id from the cookie');
    is($rec->{creator}, 'anna', 'pixel: creator');
    is($rec->{campaign}, 'summer', 'pixel: campaign');
    is($rec->{amount}, '19.90', 'pixel: amount kept exactly');
    is($rec->{currency}, 'EUR', 'pixel: currency');
    ok(JSON::PP::is_bool($rec->{attributed}) && $rec->{attributed},
        'pixel: attributed true');
    ok(JSON::PP::is_bool($rec->{duplicate}) && !$rec->{duplicate},
        'pixel: duplicate false');
    ok(JSON::PP::is_bool($rec->{bot}) && !$rec->{bot}, 'pixel: bot false');
    for my $f (qw(unique cookie rule bot_reason)) {
        ok(!defined $rec->{$f}, "pixel: $f null (absent)");
    }
    my ($line) = grep { /"order_id":"ord-1"/ } $t->raw_lines('aff.log');
    like($line // '', qr/"amount":"19\.90"/,
        'amount written as the JSON string "19.90"');
}

{
    my $r = get("/conv?click_id=$C&order_id=ord-2&amount=40&currency=EUR"
        . "&key=$KEY");
    is($r->{status}, 200, 'postback: 200');
    like($r->{headers}{'content-type'} // '', qr{^application/json},
        'postback: application/json');
    my $j = json_of($r);
    is_deeply($j, { ok => JSON::PP::true, click_id => $C,
                    attributed => JSON::PP::true,
                    duplicate => JSON::PP::false },
        'postback: response body') or diag $r->{body};
    counted('40', 'EUR');
    my $rec = rec_where(order_id => 'ord-2');
    is($rec->{source}, 'postback', 'postback: source postback');
    is($rec->{click_id}, $C, 'postback: click id');
    is($rec->{creator}, 'anna', 'postback: creator from the click index');
    is($rec->{campaign}, 'summer', 'postback: campaign from the click index');
    is($rec->{amount}, '40', 'postback: amount "40"');
    ok($rec->{attributed}, 'postback: attributed');
    ok(!$rec->{duplicate}, 'postback: not duplicate');
}

# format=json explicitly, with a second click
my $C2;
{
    my $r = get('/go/b');
    $C2 = Aff::click_id($r->{headers}{location});
    $r = get("/convj?order_id=ord-3&click_id=$C2&amount=0.5&currency=USD"
        . "&key=$KEY");
    is($r->{status}, 200, 'format=json: 200');
    is(json_of($r)->{click_id}, $C2, 'format=json: click id');
    counted('0.5', 'USD');
    my $rec = rec_where(order_id => 'ord-3');
    is($rec->{creator}, 'bob', 'format=json: creator bob from the index');
    is($rec->{campaign}, 'winter', 'format=json: campaign');
    is($rec->{amount}, '0.5', 'format=json: amount "0.5"');
}

# a valid cookie wins over a click_id parameter on a postback
{
    my $r = get("/conv?click_id=$C2&order_id=ord-16&amount=1&currency=EUR"
        . "&key=$KEY", $cookie);
    is($r->{status}, 200, 'postback with cookie and click_id: 200');
    is(json_of($r)->{click_id}, $C, 'cookie wins over the click_id parameter');
    counted('1', 'EUR');
    my $rec = rec_where(order_id => 'ord-16');
    is($rec->{click_id}, $C, 'cookie wins: record click id');
    is($rec->{creator}, 'anna', 'cookie wins: creator anna');
}

# --- sig= ------------------------------------------------------------------------

{
    my @params = ("order_id=ord-4", "amount=12.3400", "currency=USD",
                  "click_id=$C");
    my $sig = hmac_sha256_hex(join('&', @params), $KEY);
    # sig in the middle: the others, in their order, are signed
    my $qs = join '&', @params[0, 1], "sig=$sig", @params[2, 3];
    my $r = get("/conv?$qs");
    is($r->{status}, 200, 'sig in the middle: 200') or diag $r->{body};
    is(json_of($r)->{attributed}, JSON::PP::true, 'sig: attributed');
    counted('12.3400', 'USD');
    my $rec = rec_where(order_id => 'ord-4');
    is($rec->{source}, 'postback', 'sig: source postback');
    is($rec->{amount}, '12.3400', 'sig: amount kept as "12.3400"');

    @params = ("click_id=$C", "order_id=ord-5", "amount=1", "currency=EUR");
    $sig = hmac_sha256_hex(join('&', @params), $KEY);
    $r = get('/conv?' . join('&', "sig=$sig", @params));
    is($r->{status}, 200, 'sig first: 200');
    counted('1', 'EUR');
    $r = get('/conv?' . join('&', @params, "sig=$sig"));
    is($r->{status}, 200, 'sig last (same order): 200');
    is(json_of($r)->{duplicate}, JSON::PP::true,
        'sig last: same order id again is a duplicate');
    $ndup++;
}

# --- POST form bodies -------------------------------------------------------------

{
    my $body = "click_id=$C2&order_id=ord-6&amount=5.5&currency=EUR&key=$KEY";
    my $r = get('/conv', undef, method => 'POST', body => $body,
        ctype => 'application/x-www-form-urlencoded');
    is($r->{status}, 200, 'POST form: 200') or diag $r->{body};
    is(json_of($r)->{click_id}, $C2, 'POST form: click id');
    counted('5.5', 'EUR');
    my $rec = rec_where(order_id => 'ord-6');
    is($rec->{creator}, 'bob', 'POST form: creator');
    is($rec->{amount}, '5.5', 'POST form: amount');

    my $signed = "order_id=ord-7&click_id=$C2&amount=2&currency=GBP";
    my $sig = hmac_sha256_hex($signed, $KEY);
    $r = get('/conv', undef, method => 'POST', body => "$signed&sig=$sig",
        ctype => 'application/x-www-form-urlencoded');
    is($r->{status}, 200, 'POST form with sig: 200') or diag $r->{body};
    counted('2', 'GBP');
    rec_where(order_id => 'ord-7');

    $r = get('/conv', undef, method => 'POST',
        body => "order_id=ord-8&amount=2&currency=GBP&sig=" . ('0' x 64),
        ctype => 'application/x-www-form-urlencoded');
    is($r->{status}, 403, 'POST form with a wrong sig: 403');
}

# a POST body over 4k is refused (the spec says max 4k; no status given)
{
    my $body = "order_id=big&amount=1&currency=EUR&key=$KEY&pad="
             . ('x' x 5000);
    my $r = get('/conv', undef, method => 'POST', body => $body,
        ctype => 'application/x-www-form-urlencoded');
    like($r->{status} // '', qr/^4\d\d$/, "POST body over 4k: 4xx "
        . "($r->{status})");
}

# --- attribution without cookie / with unknown ids -----------------------------

{
    # a pixel ignores a click_id parameter
    my $r = get("/px.gif?click_id=$C&order_id=ord-9&amount=3&currency=EUR");
    is($r->{status}, 200, 'pixel with click_id, no cookie: 200');
    counted('3', 'EUR');
    my $rec = rec_where(order_id => 'ord-9');
    ok(JSON::PP::is_bool($rec->{attributed}) && !$rec->{attributed},
        'pixel: a click_id parameter does not attribute');
    is($rec->{creator}, undef, 'pixel with click_id: creator null');

    # no click id and no cookie: recorded, not attributed
    $r = get("/conv?order_id=ord-10&amount=4&currency=EUR&key=$KEY");
    is($r->{status}, 200, 'postback without click id: 200');
    is_deeply(json_of($r), { ok => JSON::PP::true, click_id => undef,
                             attributed => JSON::PP::false,
                             duplicate => JSON::PP::false },
        'postback without click id: response') or diag $r->{body};
    counted('4', 'EUR');
    $rec = rec_where(order_id => 'ord-10');
    is($rec->{click_id}, undef, 'without click id: click_id null');
    ok(!$rec->{attributed}, 'without click id: attributed false');
    is($rec->{creator}, undef, 'without click id: creator null');
    is($rec->{campaign}, undef, 'without click id: campaign null');

    # a well-formed click id that was never issued
    my $unknown = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
    $r = get("/conv?click_id=$unknown&order_id=ord-11&amount=4&currency=EUR"
        . "&key=$KEY");
    is($r->{status}, 200, 'unknown click id: 200');
    is(json_of($r)->{attributed}, JSON::PP::false,
        'unknown click id: attributed false');
    counted('4', 'EUR');
    $rec = rec_where(order_id => 'ord-11');
    ok(JSON::PP::is_bool($rec->{attributed}) && !$rec->{attributed},
        'unknown click id: record attributed false');
    is($rec->{creator}, undef, 'unknown click id: creator null');
}

# --- exact amounts ------------------------------------------------------------------

for my $c (['123456789012345.1234', 'JPY', 'ord-12'], ['0.0001', 'CHF', 'ord-13'],
           ['007', 'CHF', 'ord-14'], ['19.90', 'EUR', 'ord-15'])
{
    my ($amount, $cur, $oid) = @$c;
    my $r = get("/conv?order_id=$oid&amount=$amount&currency=$cur&key=$KEY");
    is($r->{status}, 200, "amount $amount $cur: 200") or diag $r->{body};
    counted($amount, $cur);
    my $rec = rec_where(order_id => $oid);
    is($rec->{amount}, $amount, "amount \"$amount\" kept exactly");
    is($rec->{currency}, $cur, "currency $cur");
}

# --- duplicates ---------------------------------------------------------------------

{
    my $before = st();
    my $r = get("/conv?click_id=$C&order_id=ord-2&amount=40&currency=EUR"
        . "&key=$KEY");
    is($r->{status}, 200, 'duplicate order: 200');
    is_deeply(json_of($r), { ok => JSON::PP::true, click_id => $C,
                             attributed => JSON::PP::true,
                             duplicate => JSON::PP::true },
        'duplicate order: response duplicate true') or diag $r->{body};
    $ndup++;
    my $rec = rec_where(order_id => 'ord-2', 2);
    ok(JSON::PP::is_bool($rec->{duplicate}) && $rec->{duplicate},
        'duplicate order: record duplicate true');
    my $after = st();
    is($after->{conversions}, $before->{conversions},
        'duplicate: conversions unchanged');
    is($after->{duplicate_orders}, $before->{duplicate_orders} + 1,
        'duplicate: duplicate_orders + 1');
    is_deeply($after->{revenue}, $before->{revenue},
        'duplicate: revenue unchanged');

    # a pixel repeating an order id
    $r = get('/px.gif?order_id=ord-1&amount=19.90&currency=EUR', $cookie);
    is($r->{status}, 200, 'duplicate pixel: 200');
    $ndup++;
    $rec = rec_where(order_id => 'ord-1', 2);
    ok($rec->{duplicate}, 'duplicate pixel: duplicate true');
    is(st()->{duplicate_orders}, $before->{duplicate_orders} + 2,
        'duplicate pixel: duplicate_orders + 1');
}

# --- invalid parameters: 400, counted, no record --------------------------------------

sub invalid_ok {
    my ($qs, $name) = @_;
    my $before = st()->{invalid_conversions};
    my $r = get("/conv?$qs&key=$KEY");
    is($r->{status}, 400, "$name: 400");
    my $j = json_of($r);
    ok(JSON::PP::is_bool($j->{ok}) && !$j->{ok}, "$name: ok false")
        or diag $r->{body};
    ok(defined $j->{error} && !ref $j->{error} && length $j->{error},
        "$name: error message");
    is(st()->{invalid_conversions}, $before + 1,
        "$name: invalid_conversions + 1");
}

my $bad = 0;
for my $amount ('-1', '1e3', '1E3', 'NaN', 'nan', 'inf', 'Infinity', '1.23456',
                '', '1,5', '+1', '1.', '.5', '0x10', '1234567890123456',
                '%201', '1%20', '1.2.3', '１')
{
    invalid_ok("order_id=bad-a$bad&amount=$amount&currency=EUR",
        "amount '$amount'");
    $bad++;
}
for my $cur ('eur', 'Eur', 'XXQ', 'EURO', 'EU', '', '978', 'E1R')
{
    invalid_ok("order_id=bad-c$bad&amount=1&currency=$cur",
        "currency '$cur'");
    $bad++;
}
invalid_ok('order_id=&amount=1&currency=EUR', 'empty order_id');
invalid_ok('order_id=' . ('x' x 65) . '&amount=1&currency=EUR',
    'order_id of 65 bytes');
invalid_ok('click_id=abc&order_id=bad-id&amount=1&currency=EUR',
    'click_id not a ULID');
invalid_ok("click_id=${C}X&order_id=bad-id2&amount=1&currency=EUR",
    'click_id of 27 characters');
{
    # 64 bytes is fine
    my $oid = 'y' x 64;
    my $r = get("/conv?order_id=$oid&amount=1&currency=EUR&key=$KEY");
    is($r->{status}, 200, 'order_id of 64 bytes: 200');
    counted('1', 'EUR');
    rec_where(order_id => $oid);
}
{
    # pixel: invalid amount is a 400 too
    my $before = st()->{invalid_conversions};
    my $r = get('/px.gif?order_id=bad-px&amount=1e3&currency=EUR', $cookie);
    is($r->{status}, 400, 'pixel with amount 1e3: 400');
    is(st()->{invalid_conversions}, $before + 1,
        'pixel: invalid_conversions + 1');
}

# --- unauthenticated postbacks: 403, counted, no record -----------------------------

sub unauth_ok {
    my ($path, $name, %o) = @_;
    my $before = st()->{unauthenticated};
    my $r = get($path, undef, %o);
    is($r->{status}, 403, "$name: 403");
    is(st()->{unauthenticated}, $before + 1, "$name: unauthenticated + 1");
}

my $q = "click_id=$C&order_id=unauth&amount=1&currency=EUR";
unauth_ok("/conv?$q", 'no key');
unauth_ok("/convj?$q", 'no key (format=json)');
unauth_ok("/conv?$q&key=wrong", 'wrong key');
unauth_ok("/conv?$q&key=", 'empty key');
unauth_ok("/conv?$q&key=${KEY}x", 'key with an extra byte');
unauth_ok("/conv?$q&key=" . substr($KEY, 0, -1), 'key one byte short');
unauth_ok("/conv?$q&key=" . lc $KEY, 'key in other case');
unauth_ok("/conv?$q&sig=" . hmac_sha256_hex($q, 'not-the-key-0123456789'),
    'sig with another key');
unauth_ok("/conv?$q&sig=" . hmac_sha256_hex("$q&x=1", $KEY),
    'sig of other parameters');
unauth_ok("/conv?$q&x=1&sig=" . hmac_sha256_hex($q, $KEY),
    'sig does not cover a parameter');
unauth_ok("/conv?$q&sig=", 'empty sig');
unauth_ok('/conv', 'POST without key', method => 'POST', body => $q,
    ctype => 'application/x-www-form-urlencoded');

# --- all records, counters -----------------------------------------------------------

{
    # a last conversion so that everything before it has been flushed
    my $r = get("/conv?order_id=last&amount=1&currency=EUR&key=$KEY");
    counted('1', 'EUR');
    rec_where(order_id => 'last');
    my @conv = grep { ($_->{type} // '') eq 'conversion' }
               $t->records('aff.log');
    is(scalar @conv, $nconv + $ndup, 'one record per accepted conversion, '
        . 'none for 400/403') or diag explain [map { $_->{order_id} } @conv];
    ok(!grep({ ($_->{order_id} // '') =~ /^(bad|unauth|big$)/ } @conv),
        'no record of an invalid or unauthenticated request');
    for my $c (@conv) {
        ok(!ref $c->{amount} && $c->{amount} =~ /^[0-9]/,
            "amount of $c->{order_id} is a string");
    }

    my $s = st();
    is($s->{conversions}, $nconv, "conversions counter $nconv");
    is($s->{duplicate_orders}, $ndup, "duplicate_orders $ndup");
    my %want = map { $_ => rev_str($rev{$_}) } keys %rev;
    is_deeply($s->{revenue}, \%want, 'revenue per currency, 4 fraction '
        . 'digits, duplicates counted once') or diag explain $s->{revenue};
    is($s->{revenue}{EUR}, rev_str($rev{EUR}), "EUR revenue "
        . rev_str($rev{EUR}));
    is($s->{revenue}{JPY}, '123456789012345.1234', 'JPY revenue exact');
    is($s->{invalid_conversions}, $bad + 4 + 1, 'invalid_conversions total');
    is($s->{unauthenticated}, 13, 'unauthenticated total');
}

# a pixel carrying a key that does not verify: 403 too
{
    unauth_ok('/px.gif?order_id=unauth-px&amount=1&currency=EUR&key=wrong',
        'pixel with a wrong key');
    get("/conv?order_id=last2&amount=1&currency=EUR&key=$KEY");
    rec_where(order_id => 'last2');
    ok(!grep({ ($_->{order_id} // '') eq 'unauth-px' } $t->records('aff.log')),
        'pixel with a wrong key: no record');
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

# --- nginx -t: postback key, conversion options ------------------------------------

{
    my $conf = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_postback_key %%DIR%%/pk;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /conv { affiliate_conversion %%ARGS%%; }
    }
EOF
    my $test = sub {
        my ($key, $mode, $args) = @_;
        $args //= 'zone=aff';
        my $p = $t->write_file('pk', $key);
        chmod $mode, $p;
        (my $c = $conf) =~ s/%%ARGS%%/$args/;
        return $t->conf_test($c);
    };
    my ($rc, $out) = $test->('k' x 16, 0600);
    is($rc, 0, 'postback key of 16 bytes passes') or diag $out;
    ($rc, $out) = $test->('k' x 16, 0600, 'zone=aff format=gif');
    is($rc, 0, 'format=gif passes') or diag $out;
    ($rc, $out) = $test->('k' x 15, 0600);
    isnt($rc, 0, 'postback key of 15 bytes refused');
    ($rc, $out) = $test->(('k' x 15) . "\n", 0600);
    isnt($rc, 0, 'postback key of 15 bytes + newline refused');
    ($rc, $out) = $test->('k' x 20, 0644);
    isnt($rc, 0, 'postback key with mode 0644 refused');
    ($rc, $out) = $test->('k' x 20, 0600, 'zone=aff format=xml');
    isnt($rc, 0, 'format=xml refused');
    ($rc, $out) = $test->('k' x 20, 0600, 'zone=other');
    isnt($rc, 0, 'unknown zone refused');
    ($rc, $out) = $test->('k' x 20, 0600, 'format=gif');
    isnt($rc, 0, 'affiliate_conversion without zone= refused');
}

done_testing;
