# The signed attribution cookie: exact Set-Cookie attributes, value format
# and HMAC (checked with Digest::SHA and the secret file), last_click vs
# first_click with cookies carried between requests, tampered / expired /
# foreign cookies ignored and counted in invalid_cookies, consent (if=),
# no cookie without affiliate_cookie, and nginx -t refusing weak secrets.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url decode_base64url);
use Time::HiRes qw(time);
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $SECRET = 'cookie-test-secret-0123456789abcdefghijkl';
my $WINDOW = 3600;

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_window 1h;
    affiliate_cookie aff;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;

        location /go/ { affiliate_redirect zone=aff; }
        location /first/ {
            affiliate_redirect zone=aff;
            affiliate_attribution first_click;
        }
        location /last/ {
            affiliate_redirect zone=aff;
            affiliate_attribution last_click;
        }
        location /full/ {
            affiliate_redirect zone=aff;
            affiliate_cookie aff max_age=7d domain=shop.example path=/p
                             secure httponly samesite=strict;
        }
        location /none/ {
            affiliate_redirect zone=aff;
            affiliate_cookie aff max_age=10m samesite=none secure;
        }
        location /consent/ {
            affiliate_redirect zone=aff;
            affiliate_cookie aff if=$cookie_consent;
        }
        location = /px.gif { affiliate_conversion zone=aff format=gif; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n"
          . "c\thttps://shop.example/c\tcarol\tspring\n";

my $t = Aff->new(
    http  => $http,
    files => { 'links.tsv' => $links, 'secret' => "$SECRET\n" },
);
$t->start;

my $ULID = $Aff::ULID;

sub get {
    my ($path, $cookie, %o) = @_;
    my @h = (['User-Agent' => $UA]);
    push @h, [Cookie => $cookie] if defined $cookie;
    return $t->get($path, \@h, %o);
}

sub set_cookie {
    my ($r) = @_;
    my $sc = $r->{headers}{'set-cookie'};
    return $sc;
}

sub value_of {
    my ($r) = @_;
    my $sc = set_cookie($r) // return undef;
    $sc = $sc->[0] if ref $sc;
    my ($v) = $sc =~ /^aff=([^;]*)/;
    return $v;
}

sub sign {
    my ($id, $ts, $creator, $campaign, $secret) = @_;
    my $data = join '.', $id, $ts, encode_base64url($creator),
        encode_base64url($campaign);
    return "$data." . encode_base64url(hmac_sha256($data, $secret // $SECRET));
}

sub parts_ok {
    my ($v, $creator, $campaign, $name) = @_;
    like($v // '', qr/^$ULID\.\d+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/,
        "$name: value is id.time.creator.campaign.visitor.sig (base64url, no padding)");
    my @p = split /\./, $v // '', -1;
    return unless @p == 6;
    cmp_ok(abs($p[1] - time), '<', 10, "$name: time is now");
    is(decode_base64url($p[2]), $creator, "$name: creator");
    is(decode_base64url($p[3]), $campaign, "$name: campaign");
    my $data = join '.', @p[0 .. 4];
    is($p[5], encode_base64url(hmac_sha256($data, $SECRET)),
        "$name: HMAC-SHA256 with the secret (trailing newline stripped)");
    return $p[0];
}

my %counter0 = %{ $t->status_json };
sub invalid { $t->status_json->{invalid_cookies} }

# wait for the record with this click id (clicks) or order id (conversions)
sub rec_where {
    my ($k, $v) = @_;
    my $rec;
    $t->wait_for(sub {
        ($rec) = grep { defined $_->{$k} && $_->{$k} eq $v }
                 $t->records('aff.log');
        $rec;
    }, 10);
    ok($rec, "record with $k $v") or return {};
    return $rec;
}

my $order = 0;
sub pixel {
    my ($cookie, $name) = @_;
    my $oid = 'o' . ++$order;
    my $r = get("/px.gif?order_id=$oid&amount=1&currency=EUR", $cookie);
    is($r->{status}, 200, "$name: pixel 200");
    return rec_where(order_id => $oid);
}

# --- attributes -----------------------------------------------------------------

my ($va, $ida);
{
    my $r = get('/go/a');
    is($r->{status}, 302, 'click: 302');
    ok(!ref set_cookie($r), 'click: one Set-Cookie');
    $va = value_of($r);
    is(set_cookie($r), "aff=$va; Max-Age=$WINDOW; Path=/; SameSite=Lax",
        'default attributes: Max-Age = affiliate_window, Path=/, '
        . 'SameSite=Lax');
    $ida = parts_ok($va, 'anna', 'summer', 'click a');
    is($ida, Aff::click_id($r->{headers}{location}),
        'cookie click id = Location click id');
    my $rec = rec_where(click_id => $ida // 'none');
    is($rec->{cookie}, 'set', 'click record: cookie set');
}
{
    my $r = get('/full/a');
    my $v = value_of($r);
    is(set_cookie($r), "aff=$v; Max-Age=604800; Path=/p; SameSite=Strict; "
        . 'Domain=shop.example; Secure; HttpOnly', 'all attributes');
    parts_ok($v, 'anna', 'summer', 'full');
}
{
    my $r = get('/none/b');
    my $v = value_of($r);
    is(set_cookie($r), "aff=$v; Max-Age=600; Path=/; SameSite=None; Secure",
        'samesite=none secure max_age=10m');
    parts_ok($v, 'bob', 'winter', 'none');
}

# --- last_click (the default) and first_click ----------------------------------------

my $inv = invalid();
{
    # default: last click
    my $r = get('/go/b', "aff=$va");
    my $vb = value_of($r);
    ok(defined $vb, 'last_click: a new click sets a new cookie');
    my $idb = parts_ok($vb, 'bob', 'winter', 'last click b');
    isnt($idb, $ida, 'last_click: new click id');
    is(rec_where(click_id => $idb // 'none')->{cookie}, 'set',
        'last_click: record cookie set');
    my $conv = pixel("aff=$vb", 'last click');
    is($conv->{click_id}, $idb, 'last_click: conversion -> the last click');
    is($conv->{creator}, 'bob', 'last_click: creator bob');
    is($conv->{campaign}, 'winter', 'last_click: campaign winter');
    ok($conv->{attributed}, 'last_click: attributed');

    $r = get('/last/c', "aff=$vb");
    parts_ok(value_of($r), 'carol', 'spring', 'explicit last_click');
}
{
    # first click: a live valid cookie is kept
    my $r = get('/first/b', "other=1; aff=$va; consent=1");
    is($r->{status}, 302, 'first_click: 302');
    ok(!defined set_cookie($r), 'first_click: no Set-Cookie over a live cookie');
    my $id = Aff::click_id($r->{headers}{location});
    my $rec = rec_where(click_id => $id // 'none');
    is($rec->{cookie}, 'kept', 'first_click: record cookie kept');
    is($rec->{creator}, 'bob', 'first_click: the click itself is bob\'s');
    my $conv = pixel("aff=$va", 'first click');
    is($conv->{click_id}, $ida, 'first_click: conversion -> the first click');
    is($conv->{creator}, 'anna', 'first_click: creator anna');

    # first click without a cookie sets one
    $r = get('/first/c');
    parts_ok(value_of($r), 'carol', 'spring', 'first_click, no cookie');
    $rec = rec_where(click_id => Aff::click_id($r->{headers}{location}));
    is($rec->{cookie}, 'set', 'first_click without cookie: set');
}
{
    # a cookie in the format before the visitor field still verifies
    my $old = sign('01HZZZZZZZZZZZZZZZZZZZZZZY', int(time) - 5, 'olga', 'older');
    my $conv = pixel("aff=$old", 'old format');
    ok($conv->{attributed}, 'a cookie without the visitor field: attributed');
    is($conv->{creator}, 'olga', 'old format: its creator');
}
is(invalid(), $inv, 'valid cookies are not counted as invalid');

# --- tampered, expired, foreign cookies -------------------------------------------

my @p = split /\./, $va;
my $flip = sub {
    my ($s, $i) = @_;
    my $c = substr($s, $i, 1);
    substr($s, $i, 1, $c eq 'A' ? 'B' : 'A');
    return $s;
};
my $now = int time;
my $self_id = '01HZZZZZZZZZZZZZZZZZZZZZZZ';
my %bad = (
    'signature, first char flipped' => join('.', @p[0 .. 4], $flip->($p[5], 0)),
    'signature, middle char flipped' => join('.', @p[0 .. 4], $flip->($p[5], 20)),
    'creator changed' => join('.', $p[0], $p[1], encode_base64url('mallory'),
                              @p[3 .. 5]),
    'campaign changed' => join('.', @p[0 .. 2], encode_base64url('x'),
                               @p[4, 5]),
    'time changed' => join('.', $p[0], $p[1] + 100, @p[2 .. 5]),
    'click id changed' => join('.', $self_id, @p[1 .. 5]),
    'visitor changed' => join('.', @p[0 .. 3], '0000000000000001', $p[5]),
    'visitor dropped' => join('.', @p[0 .. 3], $p[5]),
    'signature missing' => join('.', @p[0 .. 4]),
    'signed with another secret' => sign($self_id, $now, 'anna', 'summer',
        'another-secret-0123456789abcdefghijklmnop'),
    'expired (signed by the test)' => sign($self_id, $now - $WINDOW - 60,
        'eve', 'old'),
    # signed with our secret but not a ULID: a quote would reach the
    # conversion answer unescaped (t/50-request-fuzz.t, finding F2)
    'click id not a ULID (signed)' => sign('01HZZZZZZZZZZZZZZZZZZZZZ"Z', $now,
        'anna', 'summer'),
    'click id in lower case (signed)' => sign(lc $self_id, $now, 'anna',
        'summer'),
    'garbage' => 'hello',
    'empty parts' => '....',
);
for my $name (sort keys %bad) {
    my $before = invalid();
    my $r = get('/first/b', "aff=$bad{$name}");
    my $v = value_of($r);
    ok(defined $v, "$name: ignored, first_click sets a new cookie");
    parts_ok($v, 'bob', 'winter', "$name: new cookie");
    my $rec = rec_where(click_id => Aff::click_id($r->{headers}{location})
                                    // 'none');
    is($rec->{cookie}, 'set', "$name: record cookie set, not kept");
    is(invalid(), $before + 1, "$name: invalid_cookies + 1");

    $before = invalid();
    my $conv = pixel("aff=$bad{$name}", $name);
    ok(JSON::PP::is_bool($conv->{attributed}) && !$conv->{attributed},
        "$name: conversion not attributed");
    is($conv->{click_id}, undef, "$name: conversion click_id null");
    is($conv->{creator}, undef, "$name: conversion creator null");
    is(invalid(), $before + 1, "$name: invalid_cookies + 1 (pixel)");
}

# a cookie signed by the test, not expired: accepted
{
    my $v = sign($self_id, $now - 60, 'selfmade', 'camp');
    my $before = invalid();
    my $r = get('/first/b', "aff=$v");
    ok(!defined set_cookie($r), 'self-signed live cookie: kept');
    my $rec = rec_where(click_id => Aff::click_id($r->{headers}{location})
                                    // 'none');
    is($rec->{cookie}, 'kept', 'self-signed: record cookie kept');
    my $conv = pixel("aff=$v", 'self-signed');
    ok($conv->{attributed}, 'self-signed: attributed');
    is($conv->{click_id}, $self_id, 'self-signed: click id from the cookie');
    is($conv->{creator}, 'selfmade', 'self-signed: creator from the cookie');
    is($conv->{campaign}, 'camp', 'self-signed: campaign from the cookie');
    is(invalid(), $before, 'self-signed: not counted invalid');

    # almost expired: still valid
    $v = sign($self_id, $now - $WINDOW + 30, 'late', 'camp');
    $conv = pixel("aff=$v", 'almost expired');
    is($conv->{creator}, 'late', 'cookie 30 s before the end of the window '
        . 'is valid');
}

# --- consent ----------------------------------------------------------------------

for my $c (['no consent cookie', undef, 0], ['consent=0', 'consent=0', 0],
           ['consent= (empty)', 'consent=', 0], ['consent=1', 'consent=1', 1],
           ['consent=yes', 'x=y; consent=yes', 1])
{
    my ($name, $cookie, $set) = @$c;
    my $r = get('/consent/a', $cookie);
    is($r->{status}, 302, "$name: redirect");
    my $id = Aff::click_id($r->{headers}{location}) // 'none';
    my $rec = rec_where(click_id => $id);
    if ($set) {
        parts_ok(value_of($r), 'anna', 'summer', $name);
        is($rec->{cookie}, 'set', "$name: record cookie set");
    } else {
        ok(!defined set_cookie($r), "$name: no Set-Cookie");
        is($rec->{cookie}, 'no_consent', "$name: record cookie no_consent");
        is($rec->{type}, 'click', "$name: the click is still recorded");
    }
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

# --- without affiliate_cookie: no cookie set or read ---------------------------------

{
    my $u = Aff->new(
        http => <<'EOF',
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /go/ { affiliate_redirect zone=aff; }
        location = /px.gif { affiliate_conversion zone=aff format=gif; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF
        files => { 'links.tsv' => $links, 'secret' => "$SECRET\n" },
    );
    $u->start;
    my $r = $u->get('/go/a', [['User-Agent' => $UA]]);
    is($r->{status}, 302, 'no affiliate_cookie: 302');
    ok(!defined $r->{headers}{'set-cookie'}, 'no affiliate_cookie: no Set-Cookie');
    my $v = sign($self_id, $now - 60, 'selfmade', 'camp');
    $r = $u->get('/px.gif?order_id=n1&amount=1&currency=EUR',
        [['User-Agent' => $UA], [Cookie => "aff=$v"]]);
    is($r->{status}, 200, 'no affiliate_cookie: pixel 200');
    $u->wait_for(sub { scalar($u->records('aff.log')) >= 2 }, 10);
    my ($click, $conv) = $u->records('aff.log');
    ok($click && !defined $click->{cookie},
        'no affiliate_cookie: click record cookie null');
    ok($conv && !$conv->{attributed}, 'no affiliate_cookie: the cookie is '
        . 'not read');
    is($u->status_json->{invalid_cookies}, 0,
        'no affiliate_cookie: nothing counted');
    $u->stop;
}

# --- nginx -t: the secret ------------------------------------------------------------

{
    my $conf = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_secret %%DIR%%/s.key;
    affiliate_cookie aff;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /go/ { affiliate_redirect zone=aff; }
    }
EOF
    my $key = sub {
        my ($content, $mode) = @_;
        my $path = $t->write_file('s.key', $content);
        chmod $mode, $path;
        return $t->conf_test($conf);
    };
    my ($rc, $out) = $key->('k' x 32, 0600);
    is($rc, 0, 'secret of 32 bytes, 0600: passes') or diag $out;
    ($rc, $out) = $key->(('k' x 32) . "\n", 0400);
    is($rc, 0, 'secret of 32 bytes + newline, 0400: passes') or diag $out;
    for my $c (
        ['mode 0644', 'k' x 40, 0644],
        ['mode 0640', 'k' x 40, 0640],
        ['mode 0604', 'k' x 40, 0604],
        ['mode 0660', 'k' x 40, 0660],
        ['31 bytes', 'k' x 31, 0600],
        ['31 bytes + newline', ('k' x 31) . "\n", 0600],
        ['empty', '', 0600],
    ) {
        my ($rc, $out) = $key->($c->[1], $c->[2]);
        isnt($rc, 0, "nginx -t refuses a secret: $c->[0]");
        like($out, qr/s\.key/, "$c->[0]: names the file") or diag $out;
    }
    unlink $t->dir . '/s.key';
    ($rc, $out) = $t->conf_test($conf);
    isnt($rc, 0, 'nginx -t refuses a missing secret file');

    (my $nosecret = $conf) =~ s/^.*affiliate_secret.*\n//m;
    ($rc, $out) = $t->conf_test($nosecret);
    isnt($rc, 0, 'nginx -t refuses affiliate_cookie without affiliate_secret');
    like($out, qr/affiliate_secret/, 'message names affiliate_secret')
        or diag $out;
}

done_testing;
