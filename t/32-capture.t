# affiliate_capture: a page request with a creator parameter records a
# `landing` (new click id, link = $uri, dest and status null), sets the
# attribution cookie and serves the page as usual; without the parameter
# (or with an empty one) nothing happens.  strip=on answers 302 to the same
# URL without the capture parameters (others kept in order), with
# Cache-Control: private, no-store; that record has status 302 and dest =
# the Location.  Bots get the page, no cookie.
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
my $SECRET = 'capture-test-secret-0123456789abcdefghij';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_cookie aff;

    server {
        listen 127.0.0.1:%%PORT%%;
        absolute_redirect off;   # the Location as the module sets it
        server_name localhost;

        location / {
            affiliate_capture zone=aff creator=ref campaign=utm_campaign;
            return 200 "page\n";
        }
        location /strip/ {
            affiliate_capture zone=aff creator=ref campaign=utm_campaign
                              strip=on;
            return 200 "strip page\n";
        }
        location /first/ {
            affiliate_capture zone=aff creator=ref campaign=utm_campaign;
            affiliate_attribution first_click;
            return 200 "first page\n";
        }
        location /nocamp/ {
            affiliate_capture zone=aff creator=via;
            return 200 "nocamp page\n";
        }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $t = Aff->new(
    http  => $http,
    files => {
        'links.tsv' => "plain\thttps://shop.example/item\tbob\twinter\n",
        'secret'    => "$SECRET\n",
    },
);
$t->start;

my $ULID = $Aff::ULID;

sub get {
    my ($path, $hdrs, %o) = @_;
    my @h = @{ $hdrs || [] };
    unshift @h, ['User-Agent' => $UA] unless grep { lc $_->[0] eq 'user-agent' } @h;
    return $t->get($path, \@h, %o);
}

# value of the aff cookie in a response, and its parts
sub cookie_of {
    my ($r) = @_;
    my $sc = $r->{headers}{'set-cookie'};
    return undef unless defined $sc;
    my @sc = ref $sc ? @$sc : ($sc);
    for (@sc) { return $1 if /^aff=([^;]*)/ }
    return undef;
}

sub cookie_ok {
    my ($value, $creator, $campaign, $name) = @_;
    my @p = split /\./, $value // '', -1;
    is(scalar @p, 6, "$name: cookie has 6 dot-separated parts") or return;
    like($p[0], qr/^$ULID$/, "$name: cookie click id");
    ok(abs($p[1] - time) < 10, "$name: cookie time is now");
    is(decode_base64url($p[2]), $creator, "$name: cookie creator");
    is(decode_base64url($p[3]), $campaign // '', "$name: cookie campaign");
    like($p[4], qr/^[0-9a-f]{16}$/, "$name: cookie visitor");
    my $data = join '.', @p[0 .. 4];
    is($p[5], encode_base64url(hmac_sha256($data, $SECRET)),
        "$name: cookie signature");
    return $p[0];
}

my $landings0 = $t->status_json->{landings} // 0;
my $nrec = 0;

sub wait_n {
    my ($n) = @_;
    $t->wait_for(sub { scalar($t->records('aff.log')) >= $n }, 10);
    my @r = $t->records('aff.log');
    is(scalar @r, $n, "$n records") or diag explain \@r;
    return @r;
}

# --- a landing ----------------------------------------------------------------

{
    my $r = get('/shoes/red?ref=anna&utm_campaign=summer&x=1',
        [[Referer => 'https://social.example/p']]);
    is($r->{status}, 200, 'landing: the page is served (200)');
    is($r->{body}, "page\n", 'landing: the page body');
    ok(!defined $r->{headers}{location}, 'landing: no Location');
    my $sc = $r->{headers}{'set-cookie'};
    like($sc // '', qr/^aff=[^;]+; Max-Age=2592000; Path=\/; SameSite=Lax$/,
        'landing: Set-Cookie');
    my $cid = cookie_ok(cookie_of($r), 'anna', 'summer', 'landing');
    $nrec++;
    my @recs = wait_n($nrec);
    my $rec = $recs[-1];
    is($rec->{type}, 'landing', 'landing: type');
    like($rec->{click_id} // '', qr/^$ULID$/, 'landing: new click id');
    is($rec->{click_id}, $cid, 'landing: click id is the cookie\'s');
    is($rec->{link}, '/shoes/red', 'landing: link is $uri');
    is($rec->{creator}, 'anna', 'landing: creator');
    is($rec->{campaign}, 'summer', 'landing: campaign');
    ok(!defined $rec->{dest}, 'landing: dest null');
    ok(!defined $rec->{status},
        'landing: status null');
    is($rec->{cookie}, 'set', 'landing: cookie set');
    ok(JSON::PP::is_bool($rec->{bot}) && !$rec->{bot}, 'landing: bot false');
    ok(JSON::PP::is_bool($rec->{unique}) && $rec->{unique},
        'landing: unique true');
    ok(!defined $rec->{rule}, 'landing: rule null');
    is($rec->{referer}, 'https://social.example/p', 'landing: referer');
    is($rec->{ua}, $UA, 'landing: ua');
    is($rec->{source}, undef, 'landing: source null');
    is($rec->{attributed}, undef, 'landing: attributed null');
}

# a landing without the campaign parameter: campaign null
{
    my $r = get('/?ref=bob');
    is($r->{status}, 200, 'no campaign: 200');
    is($r->{body}, "page\n", 'no campaign: page');
    cookie_ok(cookie_of($r), 'bob', '', 'no campaign');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{creator}, 'bob', 'no campaign: creator');
    ok(!defined $recs[-1]{campaign},
        'no campaign: campaign null');
    is($recs[-1]{link}, '/', 'no campaign: link /');
}

# capture without campaign= configured
{
    my $r = get('/nocamp/x?via=carol&utm_campaign=ignored');
    is($r->{body}, "nocamp page\n", 'nocamp: page');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{creator}, 'carol', 'nocamp: creator from via=');
    is($recs[-1]{campaign}, undef, 'nocamp: campaign null');
}

# no parameter, an empty one, or another parameter: nothing happens
for my $path ('/shoes/red', '/shoes/red?x=1', '/shoes/red?ref=',
              '/shoes/red?ref=&utm_campaign=c', '/shoes/red?xref=anna',
              '/shoes/red?reff=anna', '/nocamp/x?ref=anna')
{
    my $r = get($path);
    is($r->{status}, 200, "$path: 200");
    ok(!defined $r->{headers}{'set-cookie'}, "$path: no Set-Cookie");
}
# a landing after them shows that none of them was recorded
{
    get('/after?ref=dave');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{creator}, 'dave', 'requests without a creator parameter '
        . 'are not recorded');
}

is($t->status_json->{landings}, $landings0 + 4, 'landings counter + 4');

# --- strip=on -------------------------------------------------------------------

for my $c (
    ['/strip/a?x=1&ref=anna&y=2&utm_campaign=s&z=3', '/strip/a?x=1&y=2&z=3',
        'anna', 's'],
    ['/strip/a?ref=anna&utm_campaign=s', '/strip/a', 'anna', 's'],
    ['/strip/b?ref=erin', '/strip/b', 'erin', undef],
    ['/strip/b?utm_campaign=w&ref=erin&q=hello%20world',
        '/strip/b?q=hello%20world', 'erin', 'w'],
    ['/strip/c/?a=1&ref=frank', '/strip/c/?a=1', 'frank', undef],
) {
    my ($path, $loc, $creator, $campaign) = @$c;
    my $r = get($path);
    is($r->{status}, 302, "strip $path: 302");
    is($r->{headers}{location}, $loc, "strip $path: Location $loc");
    is($r->{headers}{'cache-control'}, 'private, no-store',
        "strip $path: Cache-Control");
    my $cid = cookie_ok(cookie_of($r), $creator, $campaign // '',
        "strip $path");
    $nrec++;
    my @recs = wait_n($nrec);
    my $rec = $recs[-1];
    is($rec->{type}, 'landing', "strip $path: type landing");
    is($rec->{status}, 302, "strip $path: status 302");
    is($rec->{dest}, $loc, "strip $path: dest is the Location");
    is($rec->{link}, ($path =~ /^([^?]*)/)[0], "strip $path: link");
    is($rec->{creator}, $creator, "strip $path: creator");
    is($rec->{campaign}, $campaign, "strip $path: campaign");
    is($rec->{click_id}, $cid, "strip $path: click id is the cookie's");

    # following the Location serves the page and records nothing
    my $f = get($loc, [[Cookie => "aff=" . (cookie_of($r) // '')]]);
    is($f->{status}, 200, "strip $path: the stripped URL is served");
    is($f->{body}, "strip page\n", "strip $path: the page");
    ok(!defined $f->{headers}{'set-cookie'},
        "strip $path: no Set-Cookie on the stripped URL");
}
{
    # without the parameters a strip location serves the page
    my $r = get('/strip/a?x=1');
    is($r->{status}, 200, 'strip location without ref: 200');
    is($r->{body}, "strip page\n", 'strip location without ref: page');
}

# --- bots get the page and no cookie -------------------------------------------

{
    my $r = get('/bot?ref=anna&utm_campaign=s',
        [['User-Agent' => 'Twitterbot/1.0']]);
    is($r->{status}, 200, 'bot landing: 200');
    is($r->{body}, "page\n", 'bot landing: page');
    ok(!defined $r->{headers}{'set-cookie'}, 'bot landing: no Set-Cookie');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{type}, 'landing', 'bot landing: type landing');
    ok($recs[-1]{bot}, 'bot landing: bot true');
    is($recs[-1]{bot_reason}, 'ua', 'bot landing: bot_reason ua');
    is($recs[-1]{cookie}, undef, 'bot landing: cookie null');
    is($recs[-1]{unique}, undef, 'bot landing: unique null');

    $r = get('/strip/a?ref=anna&x=1', [['User-Agent' => 'Slackbot 1.0']]);
    is($r->{status}, 302, 'bot on strip: 302');
    is($r->{headers}{location}, '/strip/a?x=1', 'bot on strip: Location');
    ok(!defined $r->{headers}{'set-cookie'}, 'bot on strip: no Set-Cookie');
    $nrec++;
    wait_n($nrec);
}

# HEAD of a landing: bot (head), no cookie
{
    my $r = get('/head?ref=anna', [], method => 'HEAD');
    is($r->{status}, 200, 'HEAD landing: 200');
    ok(!defined $r->{headers}{'set-cookie'}, 'HEAD landing: no Set-Cookie');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{bot_reason}, 'head', 'HEAD landing: bot_reason head');
}

# first_click applies to landings: a live valid cookie is kept
{
    my $r = get('/first/p?ref=gina&utm_campaign=g1');
    my $v = cookie_of($r);
    cookie_ok($v, 'gina', 'g1', 'first_click landing without cookie');
    $nrec++;
    my @recs = wait_n($nrec);
    is($recs[-1]{cookie}, 'set', 'first_click landing: cookie set');
    $r = get('/first/p?ref=hank&utm_campaign=h1', [[Cookie => "aff=$v"]]);
    is($r->{body}, "first page\n", 'first_click landing with cookie: page');
    ok(!defined $r->{headers}{'set-cookie'},
        'first_click landing with a live cookie: no Set-Cookie');
    $nrec++;
    @recs = wait_n($nrec);
    is($recs[-1]{cookie}, 'kept', 'first_click landing: cookie kept');
    is($recs[-1]{creator}, 'hank', 'first_click landing: the landing is '
        . 'still recorded with its creator');
    # last_click (default): a landing replaces the cookie
    $r = get('/?ref=ivy', [[Cookie => "aff=$v"]]);
    cookie_ok(cookie_of($r), 'ivy', '', 'last_click landing over a cookie');
    $nrec++;
    wait_n($nrec);
}

is(Aff::seq_problem($t->records('aff.log')), '', 'seq contiguous');

# --- nginx -t -------------------------------------------------------------------

{
    my $base = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { %%CAP%% return 200; }
    }
EOF
    my $conf = sub { (my $c = $base) =~ s/%%CAP%%/$_[0]/; $c };
    my ($rc, $out) = $t->conf_test($conf->(
        'affiliate_capture zone=aff creator=ref;'));
    is($rc, 0, 'nginx -t: capture without a cookie passes') or diag $out;
    for my $bad (
        ['no creator=', 'affiliate_capture zone=aff campaign=c;'],
        ['no zone=', 'affiliate_capture creator=ref;'],
        ['unknown zone', 'affiliate_capture zone=nope creator=ref;'],
        ['strip=maybe', 'affiliate_capture zone=aff creator=ref strip=maybe;'],
        ['unknown parameter', 'affiliate_capture zone=aff creator=ref x=1;'],
    ) {
        my ($rc, $out) = $t->conf_test($conf->($bad->[1]));
        isnt($rc, 0, "nginx -t refuses affiliate_capture with $bad->[0]");
    }
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
