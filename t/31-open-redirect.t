# Open-redirect guard: destinations computed from the request are checked
# at run time.  Encoded slashes, @, backslashes, //host, CR/LF, overlong
# UTF-8, NUL, control bytes, non-ASCII, a host not in affiliate_allow_hosts,
# over-long or control-byte creator/campaign: 400, no Location, no
# Set-Cookie, no record, `rejected` + 1.  Allowed hosts (exact and .suffix,
# any case) pass.  nginx -t refuses a variable scheme/host without
# affiliate_allow_hosts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $SECRET = 'open-redirect-test-secret-0123456789abcdef';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_cookie aff;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        affiliate_allow_hosts shop.example .brand.example;

        location /out/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/out/(?<h>[^/]+)/(?<p>.*)$" https://$h/$p
                           creator=x campaign=y;
        }
        location /sl/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/sl(/.*)$" https:/$1 creator=x campaign=y;
        }
        location = /q {
            affiliate_redirect zone=aff;
            affiliate_rule "^/q$" $arg_u creator=x campaign=y;
        }
        location /fixed/ {
            affiliate_redirect zone=aff;
            affiliate_rule "(?s)^/fixed/(.*)$" https://shop.example/$1
                           creator=x campaign=y;
        }
        location /cr/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/cr/([^/]*)/([^/]*)$" https://shop.example/c
                           creator=$1 campaign=$2;
        }
        location = /affiliate/status { affiliate_status zone=aff; }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        server_name localhost;
        merge_slashes off;

        location /to/ {
            affiliate_redirect zone=aff;
            affiliate_allow_hosts shop.example;
            affiliate_rule "(?s)^/to/(.*)$" $1 creator=x campaign=y;
        }
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
my %ALLOWED = map { $_ => 1 } qw(shop.example);

sub host_allowed {
    my ($h) = @_;
    $h = lc $h;
    return 1 if $h eq 'shop.example';
    return 1 if $h eq 'brand.example' || $h =~ /\.brand\.example\z/;
    return 0;
}

sub get {
    my ($path, %o) = @_;
    return $t->get($path, [['User-Agent' => $UA]], %o);
}

sub rejected { $t->status_json->{rejected} }

my @good_ids;    # click ids of the requests that were let through

# a response never redirects to a host that is not allowed and never
# carries an injected header
sub safe_ok {
    my ($r, $name) = @_;
    my $loc = $r->{headers}{location};
    if (defined $loc) {
        my ($host) = $loc =~ m{^https?://([^/?#:]*)}i;
        ok(defined $host && host_allowed($host),
            "$name: Location host is allowed") or diag $loc;
    }
    unlike($r->{raw_headers}, qr/^X-Injected/mi, "$name: no injected header");
    unlike($r->{raw_headers}, qr/^Set-Cookie:\s*x=1/mi,
        "$name: no injected cookie");
}

sub reject_ok {
    my ($path, $name, %o) = @_;
    $name //= $path;
    my $before = rejected();
    my $r = get($path, %o);
    is($r->{status}, 400, "$name: 400");
    ok(!defined $r->{headers}{location}, "$name: no Location")
        or diag $r->{headers}{location};
    ok(!defined $r->{headers}{'set-cookie'}, "$name: no Set-Cookie");
    safe_ok($r, $name);
    if ($o{nginx_may_refuse} && ($r->{status} // 0) == 400
        && rejected() == $before)
    {
        pass("$name: refused by nginx itself before the module");
    } else {
        is(rejected(), $before + 1, "$name: rejected + 1");
    }
    return $r;
}

sub pass_ok {
    my ($path, $loc, $name, %o) = @_;
    $name //= $path;
    my $before = rejected();
    my $r = get($path, %o);
    is($r->{status}, 302, "$name: 302");
    my $l = $r->{headers}{location} // '';
    my $id = Aff::click_id($l);
    (my $norm = $l) =~ s/([?&]click_id=)$ULID(?=[&#]|$)/${1}CLICK/;
    is($norm, $loc, "$name: Location");
    safe_ok($r, $name);
    like($r->{headers}{'set-cookie'} // '', qr/^aff=/, "$name: Set-Cookie");
    is(rejected(), $before, "$name: rejected unchanged");
    push @good_ids, $id if defined $id;
    return $r;
}

my $Q = 'click_id=CLICK&utm_source=x&utm_medium=affiliate&utm_campaign=y';

# --- allowed hosts: exact, .suffix, any case, port ---------------------------

pass_ok('/out/shop.example/x', "https://shop.example/x?$Q");
pass_ok('/out/shop.example/a/b/c', "https://shop.example/a/b/c?$Q");
pass_ok('/out/brand.example/x', "https://brand.example/x?$Q",
    '.brand.example matches brand.example');
pass_ok('/out/sub.brand.example/x', "https://sub.brand.example/x?$Q",
    '.brand.example matches a subdomain');
pass_ok('/out/a.b.brand.example/', "https://a.b.brand.example/?$Q",
    '.brand.example matches a deeper subdomain');
pass_ok('/out/SHOP.Example/x', "https://SHOP.Example/x?$Q",
    'host compared case-insensitively');
pass_ok('/out/shop.example:8443/x', "https://shop.example:8443/x?$Q",
    'host with a port');
pass_ok('/q?u=https://shop.example/ok', "https://shop.example/ok?$Q",
    '$arg_u destination on an allowed host');
pass_ok('/q?u=http://www.brand.example/p?a=1',
    "http://www.brand.example/p?a=1&$Q", '$arg_u http with a query');
pass_ok('/fixed/ok', "https://shop.example/ok?$Q", 'fixed host');
pass_ok('/fixed/@evil.example', "https://shop.example/\@evil.example?$Q",
    '@ in the path of a fixed host is not in the authority');
pass_ok('/cr/' . ('a' x 64) . '/' . ('k' x 128),
    'https://shop.example/c?click_id=CLICK&utm_source=' . ('a' x 64)
    . '&utm_medium=affiliate&utm_campaign=' . ('k' x 128),
    'creator of 64 and campaign of 128 bytes');

# --- hosts not allowed -------------------------------------------------------

reject_ok('/out/evil.example/x', 'host not in affiliate_allow_hosts');
# "https:/$1": no literal "://", the capture's leading "/" makes the host
reject_ok('/sl/evil.example/x', 'https:/$1: host from the capture, checked');
pass_ok('/sl/shop.example/ok', "https://shop.example/ok?$Q",
    'https:/$1: an allowed host passes');
reject_ok('/out/xbrand.example/x', 'xbrand.example does not match .brand.example');
reject_ok('/out/brand.example.evil.example/x', 'allowed name as a prefix');
reject_ok('/out/shop.example.evil.example/x', 'exact name as a prefix');
reject_ok('/out/evilshop.example/x', 'exact name as a suffix');
reject_ok('/q?u=https://evil.example/', '$arg_u: other host');
reject_ok('/q?u=http://evil.example', '$arg_u: other host without path');

# --- encoded slashes ---------------------------------------------------------

reject_ok('/out/evil.example%2F/x', '%2F after the host');
reject_ok('/out/evil.example%2F%2Fshop.example/x', '%2F%2F inside the host');
reject_ok('/out/shop.example%252F%252Fevil.example/x', '%252F (double)');
reject_ok('/q?u=https:%2F%2Fevil.example/', '$arg_u: https:%2F%2F');
reject_ok('/q?u=https://shop.example%2F@evil.example/', '$arg_u: %2F@');
reject_ok('/q?u=https://shop.example%2Fevil.example/', '$arg_u: % in host');
reject_ok('/q?u=%2F%2Fevil.example/', '$arg_u: %2F%2Fhost');

# --- @ -----------------------------------------------------------------------

reject_ok('/out/shop.example@evil.example/x', '@ in the host');
reject_ok('/out/shop.example%40evil.example/x', '%40 in the host');
reject_ok('/out/shop.example:443@evil.example/x', 'port@ in the host');
reject_ok('/q?u=https://shop.example@evil.example/', '$arg_u: user@');
reject_ok('/q?u=https://user:pw@shop.example/', '$arg_u: userinfo');

# --- backslashes -------------------------------------------------------------

reject_ok('/out/shop.example%5Cevil.example/x', '%5C in the host');
reject_ok('/out/evil.example%5C@shop.example/x', '%5C@ in the host');
reject_ok('/q?u=https://evil.example\\@shop.example/', '$arg_u: \\@');
reject_ok('/q?u=https:/\\evil.example/', '$arg_u: https:/\\');
reject_ok('/q?u=https:\\\\evil.example/', '$arg_u: https:\\\\');
reject_ok('/fixed/a%5Cb', 'backslash in a path');

# --- //evil.example and other schemes ------------------------------------------

reject_ok('/out//evil.example/x', '/out//evil.example');
reject_ok('/q?u=//evil.example/', '$arg_u: //evil.example');
reject_ok('/q?u=///evil.example/', '$arg_u: ///evil.example');
reject_ok('/q?u=javascript:alert(1)', '$arg_u: javascript:');
reject_ok('/q?u=ftp://shop.example/', '$arg_u: ftp://');
reject_ok('/q?u=https:shop.example/', '$arg_u: https: without //');
reject_ok('/q?u=', '$arg_u: empty');
reject_ok('/q', '$arg_u: absent');
reject_ok('/q?u=https://', '$arg_u: no host');
reject_ok('/q?u=https://shop.example%0D%0AX-Injected:%20yes',
    '$arg_u: encoded CR LF in the host');

# the whole destination from the decoded URI (merge_slashes off)
{
    my $before = rejected();
    for my $c (
        ['/to/https:%2F%2Fevil.example%2Fx', 'to: encoded https://evil'],
        ['/to///evil.example/x', 'to: //evil.example'],
        ['/to/https:%2F%2Fshop.example@evil.example%2Fx', 'to: @'],
        ['/to/https:%2F%2Fevil.example%5C.shop.example%2F', 'to: backslash'],
        ['/to/https:%2F%2Fshop.example%0D%0AX-Injected:%20yes', 'to: CR LF'],
        ['/to/https:%2F%2Fshop.example%2Fa%C0%AF', 'to: overlong UTF-8'],
    ) {
        my $r = get($c->[0], port => $t->port2);
        is($r->{status}, 400, "$c->[1]: 400");
        ok(!defined $r->{headers}{location}, "$c->[1]: no Location");
        safe_ok($r, $c->[1]);
    }
    is(rejected(), $before + 6, 'to: rejected + 6');

    my $r = get('/to/https:%2F%2Fshop.example%2Fok', port => $t->port2);
    is($r->{status}, 302, 'to: encoded https://shop.example/ok: 302');
    like($r->{headers}{location} // '',
        qr{^https://shop\.example/ok\?click_id=$ULID&utm_source=x&},
        'to: Location on the allowed host');
    push @good_ids, Aff::click_id($r->{headers}{location});
}

# --- CR/LF, control bytes, space, non-ASCII, NUL ------------------------------

# (?<p>.*) does not match a LF (PCRE without (?s)): no rule matches, a miss
my $nmiss = 0;
for my $c (['/out/shop.example/%0D%0AX-Injected:%20yes', 'CR LF in /out/ path'],
           ['/out/shop.example/%0D%0ASet-Cookie:%20x=1', 'CR LF Set-Cookie'])
{
    my $before = rejected();
    my $r = get($c->[0]);
    is($r->{status}, 404, "$c->[1]: 404 (.* does not match LF: no rule)");
    ok(!defined $r->{headers}{location}, "$c->[1]: no Location");
    safe_ok($r, $c->[1]);
    is(rejected(), $before, "$c->[1]: not counted as rejected");
    $nmiss++;
}
reject_ok('/out/shop.example/%0DX-Injected:%20yes', 'CR in the /out/ path');
reject_ok('/fixed/%0D%0AX-Injected:%20yes', 'CR LF in a (?s) path');
reject_ok('/fixed/%0D%0ASet-Cookie:%20x=1', 'CR LF Set-Cookie in a (?s) path');
reject_ok('/out/shop.example%0D%0AX-Injected:%20yes/x', 'CR LF in the host');
reject_ok('/fixed/%0AX-Injected:%20yes', 'LF in a fixed-host path');
reject_ok('/fixed/%0D', 'CR alone');
reject_ok('/fixed/a%09b', 'tab');
reject_ok('/fixed/a%01b', 'control byte 0x01');
reject_ok('/fixed/a%7Fb', 'DEL');
reject_ok('/fixed/a%20b', 'space');
reject_ok('/fixed/caf%C3%A9', 'non-ASCII (UTF-8) byte');
reject_ok('/out/shop.example%C0%AF%C0%AFevil.example/x',
    'overlong UTF-8 / in the host');
reject_ok('/out/shop.example/%C0%AF', 'overlong UTF-8 / in the path');
reject_ok('/fixed/..%C0%AF..%C0%AFevil', 'overlong UTF-8 in a fixed path');
reject_ok('/out/shop.example/%00', 'percent-encoded NUL',
    nginx_may_refuse => 1);
reject_ok('/fixed/a%00b', 'percent-encoded NUL in a fixed path',
    nginx_may_refuse => 1);

# other characters that are not allowed in a host
reject_ok('/out/evil.example%23.shop.example/x', '# in the host');
reject_ok('/out/evil.example%3F.shop.example/x', '? in the host');
reject_ok('/out/shop_example/x', '_ in the host');

# --- creator / campaign -----------------------------------------------------

reject_ok('/cr/' . ('a' x 65) . '/k', 'creator of 65 bytes');
reject_ok('/cr/a/' . ('k' x 129), 'campaign of 129 bytes');
reject_ok('/cr/a%01b/k', 'control byte in creator');
reject_ok('/cr/a/k%1Fx', 'control byte in campaign');
reject_ok('/cr/a%0D%0AX-Injected:%20yes/k', 'CR LF in creator');

# --- records: only the requests let through ----------------------------------

my $n = @good_ids;
$t->wait_for(sub { scalar($t->records('aff.log')) >= $n + $nmiss }, 10);
sleep 0.5;    # a few flushes: records of rejected requests would show up
my @all = $t->records('aff.log');
my @recs = grep { ($_->{type} // '') ne 'miss' } @all;
is(scalar @recs, $n, "$n click records: rejected requests are not recorded")
    or diag explain [map { $_->{link} } @recs];
is(scalar(@all) - scalar(@recs), $nmiss, "$nmiss miss records");
my %ids = map { ($_->{click_id} // '') => 1 } @recs;
ok($ids{$_}, "record for click $_") for @good_ids;
for my $rec (@recs) {
    my ($host) = ($rec->{dest} // '') =~ m{^https?://([^/?#:]*)}i;
    ok(defined $host && host_allowed($host),
        "recorded dest on an allowed host: " . ($rec->{dest} // 'null'));
}

# --- nginx -t ---------------------------------------------------------------

sub conf_with {
    my ($srv, $loc) = @_;
    return <<"EOF";
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    server {
        listen 127.0.0.1:%%PORT%%;
        $srv
        location /out/ { affiliate_redirect zone=aff; $loc }
    }
EOF
}

my $hrule = 'affiliate_rule "^/out/(?<h>[^/]+)/(?<p>.*)$" https://$h/$p '
          . 'creator=x campaign=y;';
{
    my ($rc, $out) = $t->conf_test(conf_with('', $hrule));
    isnt($rc, 0, 'nginx -t refuses a variable host without allow_hosts');
    like($out, qr/the destination's host comes from a variable, which a request could set/,
        'message: the host comes from a variable') or diag $out;
    like($out, qr/affiliate_allow_hosts/, 'message names affiliate_allow_hosts');

    for my $c (
        ['$arg_u', 'affiliate_rule "^/out/x$" $arg_u creator=x campaign=y;'],
        ['scheme from $1',
         'affiliate_rule "^/out/(https?)/(.*)$" $1://shop.example/$2 '
         . 'creator=x campaign=y;'],
        ['host suffix from $1',
         'affiliate_rule "^/out/(.*)$" https://shop.example$1 '
         . 'creator=x campaign=y;'],
        ['"https:/$1" (no literal "://")',
         'affiliate_rule "^/out(/.*)$" https:/$1 creator=x campaign=y;'],
        ['"https:$1"',
         'affiliate_rule "^/out/(.*)$" https:$1 creator=x campaign=y;'],
        ['port from a variable',
         'affiliate_rule "^/out/(\d+)$" https://shop.example:$1/ '
         . 'creator=x campaign=y;'],
    ) {
        my ($rc, $out) = $t->conf_test(conf_with('', $c->[1]));
        isnt($rc, 0, "nginx -t refuses $c->[0] without allow_hosts");
        like($out, qr/affiliate_allow_hosts/, "$c->[0]: message")
            or diag $out;
    }

    ($rc, $out) = $t->conf_test(conf_with('',
        'affiliate_rule "^/out/(.*)$" https://shop.example/$1?r=$arg_r '
        . 'creator=$arg_c campaign=y;'));
    is($rc, 0, 'nginx -t: variables only in the path/query need no '
        . 'allow_hosts') or diag $out;

    ($rc, $out) = $t->conf_test(conf_with('affiliate_allow_hosts shop.example;',
        $hrule));
    is($rc, 0, 'nginx -t: allow_hosts in the server') or diag $out;
    ($rc, $out) = $t->conf_test(conf_with('',
        "affiliate_allow_hosts shop.example .brand.example; $hrule"));
    is($rc, 0, 'nginx -t: allow_hosts in the location') or diag $out;
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
