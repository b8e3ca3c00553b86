package HostileReq;

# Hostile raw HTTP requests for whole-request fuzzing, and a fast client
# that sends them pipelined on keep-alive connections from forked clients.
#
#   my ($http, $files) = HostileReq::fuzz_conf(%o);   # http {} text + files
#   my $g = HostileReq->new(seed => $seed, port => $port);
#   my $req = $g->request($i);      # request number $i, the same for a
#                                   # given seed whatever the client
#   my $res = HostileReq::run(port => ..., total => N, clients => C,
#                             pipeline => K, gen => sub { $g->request(@_) },
#                             check => \&HostileReq::check_response);
#
# A request is a hash: raw (exact bytes), head (a HEAD: no body in the
# answer), h09 (HTTP/0.9: no status line, answer ends at close), last (may
# make nginx close the connection: sent last in its batch), sp (carries
# Sec-Purpose), allow (hash of 5xx statuses nginx core documents for this
# request, e.g. 501 for an unknown Transfer-Encoding), kind (a label).
#
# run() returns the merged accumulators of the clients (see check_response
# for the keys), plus total, retries, elapsed, problems.
#
# location_host($location, $request_host): the host a browser goes to when
# it follows the Location (WHATWG URL parsing, as far as hosts go), or
# 'scheme:NAME' for a scheme that is not http(s).

use strict;
use warnings;

use List::Util ();
use Encode ();
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex sha1);
use Errno qw(EINTR EAGAIN);
use JSON::PP;
use MIME::Base64 qw(encode_base64url);
use POSIX ();
use Socket qw(IPPROTO_TCP TCP_NODELAY PF_INET SOCK_STREAM inet_aton
              pack_sockaddr_in);
use Storable qw(nstore retrieve);
use Time::HiRes qw(time sleep);

use Aff ();

our $SECRET = 'fuzz-cookie-secret-0123456789abcdefghijklmn';
our $KEY    = 'fuzz-postback-key-0123456789';
our $OTHER_SECRET = 'another-secret-0123456789abcdefghijklmnop';

my $B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

# --- configuration ----------------------------------------------------

# slug => [destination, creator, campaign, geo]
our @LINKS = (
    ['summer', 'https://shop.example/summer?src=ig#sizes', 'anna', 'summer25'],
    ['serum', 'https://shop.example/p/serum-30ml', 'anna', 'skincare'],
    ['kit', 'https://shop.example/kit?utm_source=newsletter', 'bob', 'starter'],
    ['clk', 'https://shop.example/c?click_id=fixed&x=1', 'carla', 'launch'],
    ['w', 'https://shop.example/intl', 'anna', 'launch',
     'geo=DE:https://de.shop.example/x?a=1,US:https://us.shop.example/,'
     . 'BR:https://shop.brand.example/br'],
    ['deep/path', 'https://go.brand.example/deep?', 'dora',
     'Gr' . "\xc3\xbc\xc3\x9f" . 'e "q" \\b'],
    ["caf\xc3\xa9", 'https://shop.example/cafe', "\xc3\xa9mile",
     "\xc3\xa9t\xc3\xa9"],
    ['pct%41', 'https://shop.example/pct', 'pam', 'p%q&r=s'],
    ['L' x 128, 'https://shop.example/long', 'lou', 'long'],
    ['amp', 'https://shop.example/amp?a=1&', 'amy', 'a b'],
    ['Mixed.Case-1', 'http://shop.example:8080/m', 'max', 'mc'],
);

our @ALLOW_HOSTS = ('shop.example', '.brand.example');

sub links_tsv {
    return join '', map { join("\t", @$_) . "\n" } @LINKS;
}

# every host a Location may name: the destinations' hosts and the hosts
# affiliate_allow_hosts allows (a leading dot: the domain and below)
sub allowed_host {
    my ($h) = @_;
    our %EXACT;
    unless (%EXACT) {
        for my $l (@LINKS) {
            my @d = ($l->[1]);
            push @d, $l->[4] =~ m{(https?://[^,]+)}g if $l->[4];
            for (@d) { $EXACT{ lc $1 } = 1 if m{^https?://([^/:?#]+)} }
        }
        $EXACT{$_} = 1 for grep { !/^\./ } @ALLOW_HOSTS;
    }
    return 1 if $EXACT{$h};
    for my $s (grep { /^\./ } @ALLOW_HOSTS) {
        return 1 if $h eq substr($s, 1) || substr($h, -length $s) eq $s;
    }
    return 0;
}

# the http {} text of the fuzz configuration, every feature on
sub fuzz_conf {
    my (%o) = @_;
    my $size  = $o{size}  // '64m';
    my $flush = $o{flush} // '100ms';
    my $geo   = $o{geo}   // '';
    my $extra = $o{server} // '';
    my $http  = $o{http}  // '';
    my $XL = 'add_header X-Aff-Click $affiliate_click_id always;';
    my $text = <<"EOF";
    affiliate_zone   aff:$size;
    affiliate_log    %%DIR%%/aff.log zone=aff flush=$flush;
    affiliate_links  %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_postback_key %%DIR%%/postback.key;
    affiliate_cookie aff max_age=7d httponly;
    affiliate_bot_ua "HeadlessChrome|python-requests";
    affiliate_bot_ua "^MyMonitor/";
    affiliate_unique 24h;
$geo
$http
    keepalive_requests 1000000;
    keepalive_timeout 60s;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        absolute_redirect off;   # Locations exactly as sent by the module
        root %%DIR%%/html;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        affiliate_allow_hosts @ALLOW_HOSTS;

        location /go/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/go/to/(?<h>[^/]+)/(?<p>.*)\$" https://\$h/\$p
                           creator=partner campaign=network;
            affiliate_rule "(?s)^/go/raw/(.*)\$" https://shop.example/r/\$1
                           creator=\$arg_c campaign=\$arg_k;
            affiliate_rule "^/go/(?<handle>[a-z0-9_]{2,32})/(?<sku>[A-Za-z0-9-]{1,64})\$"
                           https://shop.example/p/\$sku creator=\$handle
                           campaign=deeplink;
            add_header X-Loc go always;
            $XL
        }
        location = /out {
            affiliate_redirect zone=aff;
            affiliate_rule "^/out\$" \$arg_to creator=\$arg_ref
                           campaign=outbound;
            add_header X-Loc go always;
            $XL
        }
        location /p/ {
            affiliate_redirect zone=aff status=307;
            affiliate_anonymize_ip on;
            affiliate_attribution first_click;
            add_header X-Loc go always;
            $XL
        }
        location /g2/ {
            affiliate_redirect zone=aff status=301;
            error_page 404 https://shop.example/;
            add_header X-Loc go always;
            $XL
        }
        location / {
            affiliate_capture zone=aff creator=ref campaign=cmp;
            add_header X-Loc cap always;
            $XL
            return 200 "page\\n";
        }
        location /s/ {
            affiliate_capture zone=aff creator=ref campaign=cmp strip=on;
            add_header X-Loc cap always;
            $XL
            return 200 "strip page\\n";
        }
        location /site/ {
            affiliate_capture zone=aff creator=ref campaign=cmp;
            index index.html;
            add_header X-Loc cap always;
            $XL
        }
        location /tf/ {
            affiliate_capture zone=aff creator=ref;
            try_files \$uri /site/index.html;
            add_header X-Loc cap always;
            $XL
        }
        location = /conv {
            affiliate_conversion zone=aff;
            add_header X-Loc conv always;
            $XL
        }
        location = /px.gif {
            affiliate_conversion zone=aff format=gif;
            add_header X-Loc conv always;
            $XL
        }
        location = /affiliate/status {
            affiliate_status zone=aff;
            add_header X-Loc status always;
        }
        location = /geo {
            add_header X-Loc geo always;
            return 200 "\$affiliate_country|\$affiliate_city|\$affiliate_asn\\n";
        }
$extra
    }
EOF
    my %files = (
        'links.tsv'       => links_tsv(),
        'secret'          => "$SECRET\n",
        'postback.key'    => "$KEY\n",
        'html/site/index.html' => "site\n",
    );
    return ($text, \%files);
}

# --- the generator ------------------------------------------------------

sub new {
    my ($class, %o) = @_;
    return bless { seed => $o{seed} // 1, port => $o{port} // 80 }, $class;
}

# a uniform pick
sub pick { return $_[ int rand @_ ] }

# weighted pick: (weight, value, weight, value, ...); a value that is a
# sub is called only when picked
sub wpick {
    my $sum = 0;
    for (my $i = 0; $i < @_; $i += 2) { $sum += $_[$i] }
    my $r = rand $sum;
    for (my $i = 0; $i < @_; $i += 2) {
        next if ($r -= $_[$i]) >= 0;
        my $v = $_[$i + 1];
        return ref $v eq 'CODE' ? $v->() : $v;
    }
    return ref $_[-1] eq 'CODE' ? $_[-1]->() : $_[-1];
}

sub chance { return rand() < $_[0] }

sub rand_str {
    my ($n, $alphabet) = @_;
    $alphabet //= join '', 'a' .. 'z', '0' .. '9';
    return join '', map { substr $alphabet, int rand length $alphabet, 1 }
        1 .. $n;
}

sub ulid {
    return substr($B32, int rand 8, 1) . rand_str(25, $B32);
}

sub pct { return join '', map { sprintf '%%%02X', ord } split //, $_[0] }

# percent-encode some bytes of a string
sub pct_some {
    my ($s, $p) = @_;
    return join '', map {
        rand() < $p ? sprintf(chance(0.5) ? '%%%02X' : '%%%02x', ord) : $_
    } split //, $s;
}

# bytes that make text hostile; raw ones are for header values (nginx
# refuses NUL, CR and LF there, the others pass), encoded ones for URIs
my @NASTY = ("\x01", "\x07", "\x08", "\t", "\x1b", "\x1f", "\x7f", '"', '\\',
    "\xff", "\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xc3(",
    "\xf4\x90\x80\x80", "\xe2\x82", "\xc3\xa9", "\xe2\x82\xac",
    "\xf0\x9f\x98\x80", "\xef\xbb\xbf", "\\u0000", "</script>", "%s%n",
    "\${jndi:x}", "'", '{"a":1}', "\xc2\x85", "\xe2\x80\xa8");
my @URI_NASTY = ('%00', '%0a', '%0D%0A', '%09', '%7f', '%ff', '%C0%AF',
    '%c3%28', '%e2%82', '%C3%A9', '%F0%9F%98%80', '%2F', '%2f', '%5C',
    '%25', '%2e%2e', '%u0041', '%', '%4', '%zz', "\xc3\xa9", "\xff",
    '\\', '//', '/./', '/../', ';x=1', '%3F', '%23', '+', '%20', '%22',
    '"', "'", '<', '>', '`', '{', '|', '}', '^', '[', ']');

# inserts $n pieces of @pool at random places
sub insert_some {
    my ($s, $n, @pool) = @_;
    for (1 .. $n) {
        substr($s, int rand(length($s) + 1), 0, pick(@pool));
    }
    return $s;
}

sub mutate_text { return insert_some($_[0], int rand 3, @NASTY) }

sub mutate_uri {
    return insert_some($_[0], wpick(5, 0, 4, 1, 2, 2, 1, 4), @URI_NASTY);
}

sub flip_case {
    my ($s) = @_;
    return join '', map { chance(0.5) ? uc : lc } split //, $s;
}

my @UA = (
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '
        . 'Chrome/124.0 Safari/537.36',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
        . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 '
        . 'Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 '
        . 'Firefox/125.0',
    'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
    'facebookexternalhit/1.1', 'WhatsApp/2.23.20.0',
    'TelegramBot (like TwitterBot)',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'HeadlessChrome/124', 'python-requests/2.31.0', 'curl/8.5.0',
    'MyMonitor/1.0', 'Wget/1.21', 'Mozilla/5.0 (compatible; crawler)',
);

sub user_agent {
    return wpick(
        60, sub { pick(@UA) },
        8,  sub { mutate_text(pick(@UA)) },
        4,  '',
        3,  ' ',
        4,  sub { 'Mozilla/5.0 ' . ('A' x (400 + int rand 3000)) },
        3,  sub { ('x' x (505 + int rand 10)) . 'Googlebot' },
        2,  sub { "\xc3\xa9\xe2\x82\xac" x (100 + int rand 200) },
        2,  sub { "\xff\xfe" x (100 + int rand 300) },
        4,  sub { rand_str(1 + int rand 40,
                           join '', map { chr } 0x20 .. 0x7e) },
        3,  sub { join('', map { chr(1 + int rand 255) } 1 .. 1 + int rand 60)
                  =~ s/[\r\n]//gr },
    );
}

sub referer {
    return wpick(
        40, 'https://l.instagram.com/',
        10, 'https://www.tiktok.com/@anna/video/1?lang=de',
        10, sub { 'https://example.com/' . mutate_text('p?a=1&b="x"') },
        5,  '',
        5,  'javascript:alert(1)',
        5,  sub { 'https://' . ('r' x (500 + int rand 2000)) . '.example/' },
        5,  "https://ex.example/\xc3\xa9\xff\\\"/x",
        5,  sub { mutate_text('http://localhost/go/summer') },
    );
}

sub ipv4 { return join '.', map { int rand 256 } 1 .. 4 }

sub ipv6 {
    return join ':', map { sprintf '%x', int rand 65536 } 1 .. 8;
}

sub xff {
    return wpick(
        30, \&ipv4,
        10, \&ipv6,
        10, sub { join(', ', map { ipv4() } 1 .. 1 + int rand 5) },
        5,  sub { '::ffff:' . ipv4() },
        5,  sub { '2001:db8::' . sprintf('%x', int rand 65536) },
        5,  'unknown',
        5,  '999.1.1.1',
        5,  '[::1]:80',
        5,  sub { ipv4() . ':8080' },
        3,  '1.2.3',
        3,  ', , ,',
        3,  sub { join(',', map { ipv4() } 1 .. 200) },
        2,  sub { mutate_text(ipv4()) },
        3,  '127.0.0.1',
        2,  '0.0.0.0',
        2,  '255.255.255.255',
        2,  '::',
    );
}

# a cookie value signed with $secret
sub sign_cookie {
    my ($secret, $id, $t, $creator, $campaign) = @_;
    my $v = "$id.$t." . encode_base64url($creator) . '.'
          . encode_base64url($campaign);
    return "$v." . encode_base64url(hmac_sha256($v, $secret));
}

sub aff_cookie {
    my $now = int time;
    my $id = chance(0.9) ? ulid() : mutate_text(ulid());
    # the reader checks the signature, not the click id: any 26 bytes
    $id = substr($id . ('Z' x 26), 0, 26) if length $id != 26 && chance(0.7);
    my ($c, $k) = @{ wpick(
        60, ['anna', 'summer25'],
        10, sub { [mutate_text('anna'), mutate_text('camp')] },
        5,  ['', ''],
        5,  ['x' x 400, 'y' x 400],
        5,  ["\x00\x01\"\\", "\xff\xfe"],
        5,  ["\xc3\xa9mile", "\xe2\x82\xac"],
    ) };
    my $t = wpick(70, sub { $now - int rand 86400 * 6 }, 10, $now + 10000,
                  10, $now - 86400 * 40, 5, 0, 5, '99999999999999999999');
    my $v = sign_cookie(chance(0.85) ? $SECRET : $OTHER_SECRET, $id, $t, $c,
                        $k);
    return wpick(
        60, $v,
        8,  sub { my $x = $v; substr($x, int rand length $x, 1, 'A'); $x },
        5,  sub { substr($v, 0, int rand length $v) },
        5,  "$v.x",
        4,  join('.', ('A' x 26), 1, '', '', ''),
        4,  sub { join '.', map { rand_str(int rand 30) }
                           1 .. 1 + int rand 8 },
        4,  '',
        3,  $v =~ s/\./%2E/gr,
        3,  "\"$v\"",
        4,  sub { '.' x (int rand 50) },
    );
}

sub cookie_header {
    return wpick(
        50, sub { 'aff=' . aff_cookie() },
        10, sub { 'consent=1; aff=' . aff_cookie() . '; theme=dark' },
        5,  sub { 'aff=' . aff_cookie() . '; aff=' . aff_cookie() },
        5,  sub { 'AFF=' . aff_cookie() },
        5,  'aff=',
        5,  'aff',
        5,  sub { 'other=1; ' . ('c' x (int rand 3000)) },
        5,  sub { 'aff=' . aff_cookie() . ';;;; ;=;' },
        5,  sub { mutate_text('aff=' . aff_cookie()) },
    );
}

sub slug {
    my $s = wpick(
        60, sub { pick(map { $_->[0] } @LINKS) },
        10, sub { rand_str(1 + int rand 20) },
        5,  '',
        5,  sub { 'x' x (100 + int rand 3000) },
        3,  sub { 'a' x (127 + int rand 4) },
        5,  sub { 'L' x (126 + int rand 4) },
        3,  sub { 'summer' x (1 + int rand 1300) },
        4,  "caf\xc3\xa9",
        3,  'caf%C3%A9',
        3,  'caf%c3%a9',
        3,  'pct%2541',
        2,  'pctA',
    );
    $s = flip_case($s) if chance(0.3);
    $s = pct_some($s, rand 0.6) if chance(0.25);
    $s = mutate_uri($s) if chance(0.35);
    $s .= wpick(60, '', 5, '/', 5, '//', 5, '?x=1',
                5, sub { '?click_id=' . ulid() },
                5, '#f', 3, ';p=1', 3, '%00', 3, '.', 3, '/..', 3, '%2F',
                3, sub { '?a=' . ('q' x (int rand 5000)) });
    return $s;
}

sub go_path {
    my $pre = wpick(60, '/go/', 5, '//go//', 5, '/go/./', 5, '/x/../go/',
                    4, '/GO/', 4, '/go%2F', 4, '/%67o/', 3, '/go/%2E/',
                    3, '/p/', 4, '/g2/', 3, '/go\\', 2, '/./go/',
                    2, '/go/../go/', 2, '/../go/');
    my $az = join '', 'a' .. 'z', '0' .. '9', '_';
    return wpick(
        55, sub { $pre . slug() },
        12, sub {
            '/go/' . wpick(60, sub { rand_str(2 + int rand 10, $az) },
                           10, sub { 'A' . rand_str(3) }, 10, 'x' x 40,
                           10, '_')
            . '/' . wpick(60, sub { rand_str(1 + int rand 20,
                                        join '', 'a' .. 'z', 'A' .. 'Z', '-') },
                          10, 'a' x 70, 10, sub { mutate_uri('sku') }, 10, '')
        },
        15, sub { '/go/to/' . rule_host() . '/' . mutate_uri(rand_str(5)) },
        10, sub {
            '/go/raw/' . mutate_uri(rand_str(int rand 20))
            . (chance(0.7) ? '?c=' . param_text() . '&k=' . param_text() : '')
        },
        8,  sub {
            my @q;
            push @q, 'to=' . out_dest() if chance(0.9);
            push @q, 'ref=' . param_text() if chance(0.8);
            push @q, 'to=' . out_dest() if chance(0.2);
            '/out?' . join('&', @q);
        },
    );
}

sub rule_host {
    return wpick(
        15, 'shop.example', 5, 'SHOP.EXAMPLE', 15, 'shop.brand.example',
        5,  'brand.example', 5, 'x.brand.example:8443', 5, 'brand.example.',
        8,  'evil.example', 5, 'brand.example.evil.example',
        5,  'xbrand.example', 5, 'shop.brand.example@evil.example',
        5,  'evil.example%5C.brand.example', 5, 'evil.example%2F.brand.example',
        3,  '%65vil.example', 3, 'shop.example%00.evil.example',
        3,  '[::1]', 3, '127.0.0.1', 3, 'shop.example:80@evil.example',
        3,  'shop.example%23@evil.example', 3, 'shop.example%3F.evil',
        3,  'shop.example%0D%0ALocation:%20https://evil.example',
        2,  "shop.brand.example\xc3\xa9", 2, 'sh%6Fp.example',
        2,  '.brand.example', 2, 'a' x 300 . '.brand.example',
    );
}

sub out_dest {
    my $d = wpick(
        10, 'https://shop.brand.example/x',
        5,  'https://brand.example:8443/x',
        5,  'HTTPS://SHOP.BRAND.EXAMPLE/',
        5,  sub { 'https://shop.brand.example/?click_id=' . ulid() },
        8,  'https://evil.example/',
        5,  '//evil.example/',
        5,  '///evil.example/',
        5,  'javascript:alert(1)',
        5,  'https%3A%2F%2Fshop.brand.example%2F',
        5,  'https://shop.brand.example/%0d%0aSet-Cookie:a=b',
        5,  'https://shop.brand.example\\@evil.example/',
        3,  'https://shop.brand.example\\.evil.example/',
        3,  'https:/\\evil.example/',
        3,  'https:evil.example',
        3,  'http://shop.brand.example./',
        3,  'https://shop.brand.example:99999/',
        3,  'https://[::1]/',
        3,  'https://user:pw@shop.brand.example/',
        3,  "https://shop.brand.example/\xc3\xa9",
        3,  'https://shop.brand.example/' . ('p' x 1100),
        3,  'https://shop.brand.example#@evil.example',
        3,  'https://shop.brand.example?@evil.example',
        3,  'https://evil.example%2F.brand.example/',
        3,  'http://brand.example.evil.example/',
        2,  'https://shop.brand.example/%2F%2Fevil.example',
        2,  'ftp://shop.brand.example/',
        2,  '',
    );
    $d = mutate_uri($d) if chance(0.15);
    return $d;
}

sub param_text {
    return wpick(
        40, sub { pick('anna', 'bob', 'Carla', 'x_y', 'a.b-c') },
        8,  '',
        8,  'a%20b+c',
        8,  'a%3Fb',
        5,  sub { 'x' x (60 + int rand 10) },
        5,  sub { 'y' x (120 + int rand 20) },
        5,  '%00', 5, '%0d%0a', 5, '%C3%A9mile', 5, '%ff%fe',
        5,  sub { mutate_uri('creator') },
        3,  '%22%5C%22',
        3,  '%25',
        3,  'a&ref=b',
    );
}

sub capture_path {
    my $p = wpick(
        20, '/', 10, '/page', 20, '/s/', 10, '/s/deep/x.html',
        6, '/site/', 4, '/tf/x', 4, '/site/index.html',
        5, '//evil.example/../s/', 5, '/\\evil.example/../s/',
        3, '//s/', 3, '/s//evil.example/..', 3, '/%2F%2Fevil.example/../s/',
        3, '/\\/evil.example/../s/', 3, '/s/%0d%0aX:y',
        2, sub { '/s/' . ('d' x 3000) },
        2, "/s/\xc3\xa9\xff", 2, '/s/?', 2, '/./s/', 2, '/s/%2e%2e/x',
        2, '/s\\..\\x',
    );
    $p = mutate_uri($p) if chance(0.1);
    my @q;
    push @q, wpick(8, 'ref', 2, 'REF', 1, 'Ref', 1, 'r%65f') . '='
        . param_text() if chance(0.85);
    push @q, 'cmp=' . param_text() if chance(0.5);
    push @q, wpick(1, 'size=m', 1, 'utm_source=ig', 1, 'a=1&b=2', 1, 'x',
                   1, '', 1, '=', 1, '&&', 1, sub { 'q=' . mutate_uri('v') },
                   1, 'ref', 1, 'cmp=')
        for 1 .. int rand 3;
    push @q, 'ref=' . param_text() if chance(0.1);
    @q = List::Util::shuffle(@q) if chance(0.5);
    return @q ? "$p?" . join('&', @q) : $p;
}

# conversion parameters as raw form text, with a correct sig or key
# now and then; $ids: click ids seen by this client
sub conversion_query {
    my ($ids) = @_;
    my @p;
    my $order = wpick(
        50, sub { 'A' . int(rand 2000) },
        10, sub { 'ord-' . rand_str(10) },
        5,  '',
        5,  sub { 'x' x (64 + int rand 3) },
        5,  'o' x 64,
        5,  '%00x', 5, 'a%0Ab', 5, '%C3%A9', 5, 'a+b%2Bc', 5, '%7F',
        5,  sub { mutate_uri('ord') },
    );
    my $amount = wpick(
        50, sub { int(rand 1000) . (chance(0.5) ? '.' . int(rand 100) : '') },
        5,  '999999999999999.9999', 3, '0', 3, '0.0001', 3, '1000000000000000',
        3,  '-1', 3, '1e5', 3, 'NaN', 3, 'inf', 3, '1.', 3, '.5', 3, '1.23456',
        3,  '+1', 3, '0x10', 3, '1,5', 3, '', 3, '1%00', 3, ' 1',
        3,  '00012.50', 3, '1' x 40, 2, "\xef\xbc\x91\xef\xbc\x92",
    );
    my $cur = wpick(
        40, sub { pick('EUR', 'USD', 'JPY', 'GBP', 'CHF', 'BRL') },
        5,  'eur', 5, 'EU', 5, 'EURO', 5, 'XXX', 5, 'ABC', 5, '%45UR',
        5,  "\xe2\x82\xac", 3, 'E%00R', 3, '', 3, 'E+R',
    );
    my $seen = int rand 1000;
    my $click = wpick(
        30, undef,
        # the same random numbers drawn either way: request $i stays the
        # same whatever this client saw before
        30, sub { my $u = ulid(); @$ids ? $ids->[$seen % @$ids] : $u },
        15, \&ulid,
        5,  sub { lc ulid() },
        5,  'short',
        5,  sub { ulid() . 'X' },
        5,  sub { mutate_uri(ulid()) },
        5,  'IIIIIIIIIIIIIIIIIIIIIIIIII',
    );
    push @p, "order_id=$order" if chance(0.95);
    push @p, "amount=$amount" if chance(0.95);
    push @p, "currency=$cur" if chance(0.95);
    push @p, "click_id=$click" if defined $click;
    push @p, pick('x=1', 'Amount=5', 'order_id=dup', 'a', '=', 'utm=a%26b')
        if chance(0.15);
    @p = List::Util::shuffle(@p) if chance(0.3);
    my $auth = wpick(35, 'sig', 25, 'key', 10, 'badsig', 10, 'badkey',
                     15, 'none', 5, 'both');
    if ($auth eq 'key') {
        push @p, 'key=' . (chance(0.9) ? $KEY : pct_some($KEY, 0.3));
    } elsif ($auth eq 'badkey') {
        push @p, 'key=' . pick('', 'x', substr($KEY, 0, 10), $KEY . 'x',
                               lc $KEY);
    } elsif ($auth eq 'sig' || $auth eq 'both') {
        my $sig = hmac_sha256_hex(join('&', @p), $KEY);
        $sig = uc $sig if chance(0.2);
        push @p, "key=$KEY" if $auth eq 'both';
        splice @p, int rand(@p + 1), 0, "sig=$sig";
    } elsif ($auth eq 'badsig') {
        push @p, 'sig=' . pick('', 'zz' x 32, '0' x 64, '0' x 63,
            hmac_sha256_hex('x', $KEY), mutate_text('ab' x 32));
    }
    return join '&', @p;
}

sub chunked {
    my ($body) = @_;
    my $out = '';
    while (length $body) {
        my $n = 1 + int rand(length $body);
        my $c = substr($body, 0, $n, '');
        $out .= sprintf(chance(0.8) ? '%x' : '%X', $n)
              . (chance(0.1) ? ';ext=1' : '') . "\r\n$c\r\n";
    }
    return $out . '0' . "\r\n" . (chance(0.1) ? "X-Trailer: 1\r\n" : '')
         . "\r\n";
}

sub common_headers {
    my ($r) = @_;
    my @h;
    push @h, ['User-Agent', user_agent()] if chance(0.93);
    push @h, ['Referer', referer()] if chance(0.4);
    push @h, ['Cookie', cookie_header()] if chance(0.35);
    push @h, ['X-Forwarded-For', xff()] if chance(0.5);
    if (chance(0.15)) {
        my $sp = pick('prefetch', 'prefetch;prerender', 'PREFETCH', 'prerender',
                      '', 'anything', 'prefetch' x 100);
        push @h, ['Sec-Purpose', $sp];
        $r->{sp} = 1;
    }
    push @h, ['Sec-Fetch-Mode', pick('navigate', 'no-cors', 'cors',
                                     'NAVIGATE', '', 'same-origin')]
        if chance(0.2);
    push @h, ['Sec-Fetch-Dest', pick('document', 'empty', 'image', 'iframe')]
        if chance(0.2);
    push @h, ['Sec-Fetch-Site', pick('none', 'same-origin', 'cross-site')]
        if chance(0.15);
    push @h, ['Sec-Fetch-User', '?1'] if chance(0.1);
    push @h, ['Purpose', 'prefetch'] if chance(0.03);
    push @h, ['X-Moz', 'prefetch'] if chance(0.03);
    push @h, ['X-Purpose', 'preview'] if chance(0.03);
    push @h, ['Accept', 'text/html,*/*;q=0.8'] if chance(0.3);
    push @h, ['Accept-Language', 'de-DE,de;q=0.9'] if chance(0.2);
    push @h, ['X-Junk-' . rand_str(3), mutate_text('v')] if chance(0.1);
    push @h, ["X_Under", '1'] if chance(0.02);
    push @h, ["Bad Name", '1'] if chance(0.02);
    push @h, ["X-\xc3\xa9", '1'] if chance(0.02);
    push @h, ['X-Long', 'l' x (1000 + int rand 7000)] if chance(0.02);
    return @h;
}

# request number $i; $ids: click ids this client got so far (postbacks
# use them, for the click index)
sub request {
    my ($self, $i, $ids) = @_;
    srand(unpack 'N', sha1("$self->{seed}:$i"));
    my %r = (i => $i, allow => {});
    my $kind = wpick(40, 'go', 15, 'capture', 22, 'conv', 3, 'status',
                     8, 'raw', 4, 'geo', 8, 'mixed');
    my ($method, $path, $body, @h);
    my $proto = wpick(90, 'HTTP/1.1', 8, 'HTTP/1.0', 1, 'HTTP/1.2',
                      1, 'HTTP/2.0');
    @h = common_headers(\%r);
    $method = wpick(80, 'GET', 12, 'HEAD', 4, 'POST', 1, 'OPTIONS',
                    1, 'DELETE', 1, 'PUT', 1, 'TRACE');
    if ($kind eq 'go') {
        $path = go_path();
    } elsif ($kind eq 'capture') {
        $path = capture_path();
    } elsif ($kind eq 'status') {
        $path = pick('/affiliate/status', '/affiliate/status?x=1',
                     '/affiliate//status', '/affiliate/Status');
    } elsif ($kind eq 'geo') {
        $path = '/geo';
    } elsif ($kind eq 'mixed') {
        $path = pick('/', '/go/', '/go', '/g2/', '/p/', '/conv/x', '/px.gif/',
                     '/affiliate/status/', '/favicon.ico', '/site/index.html',
                     '/' . mutate_uri(rand_str(5)), '*');
    } elsif ($kind eq 'conv') {
        my $q = conversion_query($ids || []);
        $path = chance(0.7) ? '/conv' : '/px.gif';
        $method = wpick(55, 'GET', 40, 'POST', 5, 'HEAD');
        if ($method eq 'POST') {
            $body = $q;
            push @h, ['Content-Type', pick(
                'application/x-www-form-urlencoded', 'text/plain',
                'application/x-www-form-urlencoded; charset=utf-8')]
                if chance(0.9);
            $path .= '?' . conversion_query([]) if chance(0.2);
        } else {
            $path .= "?$q";
        }
    }
    if ($kind eq 'raw') {
        return $self->raw_request(\%r, \@h);
    }

    # request target forms
    my $host = 'localhost';
    my $target = $path;
    if (chance(0.03)) {
        my $ah = pick('localhost', 'evil.example', "localhost:$self->{port}");
        $target = "http://$ah$path";
    }

    # bodies on any method now and then; well framed unless sent to a
    # conversion endpoint below
    if (!defined $body && chance(0.04)) {
        $body = rand_str(int rand 3000);
    }
    my $framing = 'cl';
    if (defined $body) {
        $framing = wpick(75, 'cl', 20, 'chunked', 5, 'expect');
        $framing = 'cl' if $proto ne 'HTTP/1.1';
    }

    # malformed bodies: only to the exact conversion paths
    my $bad_body = 0;
    if (defined $body && $path =~ m{^/(conv|px\.gif)\z} && chance(0.15)) {
        $bad_body = wpick(20, 'big', 20, 'bigchunked', 15, 'badchunk',
                          10, 'cl_te', 10, 'badcl', 10, 'dupcl', 10, 'te',
                          5, 'emptychunk');
    }

    my $raw = "$method $target $proto\r\n";
    my @hdrs;
    push @hdrs, ['Host', $host] unless $proto eq 'HTTP/1.0' && chance(0.5);
    push @hdrs, @h;
    if ($proto eq 'HTTP/1.0') {
        push @hdrs, ['Connection', 'keep-alive'] if chance(0.5);
    } elsif (chance(0.03)) {
        my $c = pick('close', 'Keep-Alive', 'upgrade');
        push @hdrs, ['Connection', $c];
        $r{last} = 1 if $c eq 'close';
    }
    $r{allow}{505} = 1 if $proto eq 'HTTP/2.0';

    my $payload = '';
    if (defined $body) {
        if ($bad_body eq 'big') {
            $body = 'order_id=' . ('b' x (4100 + int rand 3000));
        } elsif ($bad_body eq 'bigchunked') {
            $body = 'order_id=' . ('b' x (4100 + int rand 3000));
            $framing = 'chunked';
        }
        if ($bad_body eq 'badchunk') {
            push @hdrs, ['Transfer-Encoding', 'chunked'];
            $payload = pick("zz\r\nabc\r\n0\r\n\r\n",
                            "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n",
                            "3\r\nabcdef\r\n0\r\n\r\n", "-1\r\n\r\n0\r\n\r\n");
            $r{last} = 1;
        } elsif ($bad_body eq 'cl_te') {
            push @hdrs, ['Content-Length', length $body],
                        ['Transfer-Encoding', 'chunked'];
            $payload = chunked($body);
            $r{last} = 1;
        } elsif ($bad_body eq 'badcl') {
            push @hdrs, ['Content-Length', pick('abc', '+5', '-1', '1 2',
                                                '5,5', '0x10', '')];
            $r{last} = 1;
        } elsif ($bad_body eq 'dupcl') {
            push @hdrs, ['Content-Length', length $body],
                        ['Content-Length', length $body];
            $payload = $body;
            $r{last} = 1;
        } elsif ($bad_body eq 'te') {
            push @hdrs, ['Transfer-Encoding',
                         pick('gzip', 'gzip, chunked', 'identity',
                              'chunked, chunked')];
            $payload = $body;
            $r{allow}{501} = 1;    # nginx core: unknown Transfer-Encoding
            $r{last} = 1;
        } elsif ($bad_body eq 'emptychunk') {
            push @hdrs, ['Transfer-Encoding', 'chunked'];
            $payload = "0\r\n\r\n";
        } elsif ($framing eq 'chunked' || $framing eq 'expect') {
            push @hdrs, ['Transfer-Encoding', 'chunked'];
            push @hdrs, ['Expect', '100-continue'] if $framing eq 'expect';
            $payload = chunked($body);
        } else {
            my $cl = length $body;
            push @hdrs, ['Content-Length',
                         wpick(90, $cl, 5, sprintf('%05d', $cl), 5, "$cl ")];
            $payload = $body;
        }
    }
    @hdrs = List::Util::shuffle(@hdrs) if chance(0.2);
    my $eol = chance(0.03) ? "\n" : "\r\n";
    $raw =~ s/\r\n\z/$eol/;
    $raw .= "$_->[0]: $_->[1]$eol" for @hdrs;
    $raw .= $eol . $payload;
    $r{raw} = $raw;
    $r{head} = $method eq 'HEAD' ? 1 : 0;
    $r{last} = 1 if $proto eq 'HTTP/1.0';
    # answers that close the connection (400 of the open-redirect guard,
    # of nginx for %00 or a path above the root): end the batch there, so
    # that fewer pipelined requests are sent again
    $r{last} = 1 if $path =~ m{^/(?:go/(?:to|raw)/|out\?)|%00|^/\.\./}i;
    $r{kind} = $kind;
    return \%r;
}

# requests broken at the HTTP level: nginx answers 400 (or 414, 405, 505,
# 501) and usually closes
sub raw_request {
    my ($self, $r, $h) = @_;
    my $hl = join '', map { "$_->[0]: $_->[1]\r\n" } @$h;
    my $host = "Host: localhost\r\n";
    my $get = "GET /go/summer HTTP/1.1\r\n$host";
    my $v = int rand 22;
    if ($v == 20) {
        # HTTP/0.9: the status endpoint and a plain page only (a click
        # would leave a record without a visible Location)
        $r->{raw} = pick("GET /affiliate/status\r\n", "GET /\r\n");
        $r->{h09} = 1;
    } else {
        $r->{raw} = (
            "get /go/summer HTTP/1.1\r\n$host\r\n",
            "GET /go/summer\x01 HTTP/1.1\r\n$host\r\n",
            "GET /go/su mmer HTTP/1.1\r\n$host\r\n",
            'GET /go/' . ('s' x 9000) . " HTTP/1.1\r\n$host\r\n",
            "${get}Host: evil.example\r\n\r\n",
            "GET /go/summer HTTP/1.1\r\nHost: a b\r\n\r\n",
            "${get}X: a\x00b\r\n\r\n",
            "$get folded\r\n\r\n",
            "${get}NoColon\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ("\x00" x 40),
            "${get}X-Big: " . ('b' x 9000) . "\r\n\r\n",
            "GET /go/%ZZ HTTP/1.1\r\n$host$hl\r\n",
            "GET go/summer HTTP/1.1\r\n$host\r\n",
            "GET /go/summer HTTP/9.9\r\n$host\r\n",
            "GET /go/summer HTTP/1.1 extra\r\n$host\r\n",
            "GET /go/summer HTTP/1.1\r\nHost: [::1\r\n\r\n",
            "${get}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "GET /../../etc/passwd HTTP/1.1\r\n$host\r\n",
            "GET /go/\xc3\x28\xff HTTP/1.1\r\n$host$hl\r\n",
            undef,
            "GET http://evil.example/go/summer HTTP/1.1\r\n$host$hl\r\n",
        )[$v];
        $r->{allow}{505} = 1 if $v == 14;    # nginx: HTTP/9.9
    }
    $r->{last} = 1;
    $r->{head} = 0;
    $r->{kind} = 'raw';
    return $r;
}

# --- where a Location goes ----------------------------------------------

sub authority_host {
    my ($s) = @_;
    my ($auth) = $s =~ m{^([^/?#]*)};
    $auth =~ s/^.*\@//s;
    my $host;
    if ($auth =~ /^\[([^\]]*)\]/) {
        $host = "[$1]";
    } else {
        ($host = $auth) =~ s/:[^:]*\z//;
    }
    $host =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    $host = lc $host;
    $host =~ s/\.\z//;
    return $host;
}

sub location_host {
    my ($loc, $req_host, $req_scheme) = @_;
    $req_scheme //= 'http';
    $loc =~ s/^[\x00-\x20]+//;
    $loc =~ s/[\x00-\x20]+\z//;
    $loc =~ tr/\t\n\r//d;
    if ($loc =~ m{^([A-Za-z][A-Za-z0-9+.\-]*):(.*)\z}s) {
        my ($scheme, $rest) = (lc $1, $2);
        return "scheme:$scheme" unless $scheme eq 'http' || $scheme eq 'https';
        $rest =~ tr{\\}{/};
        if ($scheme ne $req_scheme || $rest =~ m{^//}) {
            $rest =~ s{^/+}{};
            return authority_host($rest);
        }
        $loc = $rest;    # "http:path" relative to an http base
    }
    $loc =~ tr{\\}{/};
    if ($loc =~ m{^//}) {
        $loc =~ s{^/+}{};
        return authority_host($loc);
    }
    return $req_host;
}

# the text a record holds for the bytes $b (docs/log-format.md): valid
# UTF-8 kept, each other byte U+FFFD, cut at a character boundary when
# the escaped JSON would pass $limit bytes.  Returns (characters, cut)
my $UTF8_SEQ = qr/[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]
    |[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]
    |\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}
    |\xf4[\x80-\x8f][\x80-\xbf]{2}/x;

sub json_text {
    my ($b, $limit) = @_;
    my ($out, $len) = ('', 0);
    while ($b =~ /\G(?:([\x00-\x7f])|($UTF8_SEQ)|(.))/gcs) {
        my ($ch, $w);
        if (defined $1) {
            $ch = $1;
            $w = $ch =~ /["\\\n\r\t]/ ? 2 : $ch =~ /[\x00-\x1f\x7f]/ ? 6 : 1;
        } elsif (defined $2) {
            $ch = Encode::decode('UTF-8', $2);
            $w = length $2;
        } else {
            $ch = "\x{fffd}";
            $w = 6;
        }
        return ($out, 1) if defined $limit && $len + $w > $limit;
        $out .= $ch;
        $len += $w;
    }
    return ($out, 0);
}

# the records of an NDJSON file, decoded by $procs processes at once:
# (\@records, \@problems).  A line must be UTF-8 as RFC 3629 defines it
# (noncharacters such as U+FDEA are valid UTF-8 and valid JSON; Perl's
# strict Encode 'UTF-8' refuses them) holding one JSON object
sub read_records {
    my ($file, $procs) = @_;
    $procs ||= 2;
    open my $fh, '<:raw', $file or return ([], ["$file: $!"]);
    my @lines = <$fh>;
    close $fh;
    my @prob;
    push @prob, "$file: the last line has no newline"
        if @lines && $lines[-1] !~ /\n\z/;
    my $per = int(@lines / $procs) + 1;
    my @kids;
    for my $k (0 .. $procs - 1) {
        my $from = $k * $per;
        my $to = $from + $per - 1;
        $to = $#lines if $to > $#lines;
        my $out = "$file.decoded.$$.$k";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $json = JSON::PP->new->utf8;
            my (@r, @p);
            for my $n ($from .. $to) {
                my $l = $lines[$n];
                $l =~ s/\n\z//;
                if ($l !~ /\A(?:[\x00-\x7f]|$UTF8_SEQ)*\z/) {
                    push @p, 'line ' . ($n + 1) . ' is not UTF-8: '
                           . escape($l);
                    $l = Encode::encode('UTF-8', Encode::decode('UTF-8', $l));
                }
                my $rec = eval { $json->decode($l) };
                if (ref $rec eq 'HASH') {
                    push @r, $rec;
                } else {
                    push @p, 'line ' . ($n + 1) . ' is not a JSON object: '
                           . escape($l);
                }
            }
            nstore([\@r, \@p], $out);
            POSIX::_exit(0);
        }
        push @kids, [$pid, $out];
    }
    my @recs;
    for my $k (@kids) {
        waitpid $k->[0], 0;
        my $got = -e $k->[1] ? retrieve($k->[1])
                             : [[], ["decoder $k->[0] failed"]];
        unlink $k->[1];
        push @recs, @{ $got->[0] };
        push @prob, @{ $got->[1] };
    }
    return (\@recs, \@prob);
}

# --- checking an answer ---------------------------------------------------

my $JSON = JSON::PP->new->utf8;

sub hval {
    my ($resp, $name) = @_;
    my $v = $resp->{headers}{$name};
    return undef unless $v;
    return $v->[-1];
}

sub escape {
    my ($s) = @_;
    $s = substr($s, 0, 600) . '...' if length $s > 600;
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}

# checks one answer and counts it into $acc:
#   statuses{code}, by{"LOC CODE"} (LOC: the X-Loc header of the
#   location: go, cap, conv, status, geo; - for nginx's own answers),
#   declined (503 + no-store to Sec-Purpose), go_locs[], go_ids[],
#   landing_ids[],
#   strip_locs[], conv_ok, conv_dup_json, conv_json_400, conv_json_403,
#   status_ok, errpage, prob[] ("i: message")
sub check_response {
    my ($req, $resp, $acc) = @_;
    my $st = $resp->{status} // 'none';
    my $prob = sub {
        push @{ $acc->{prob} }, "request $req->{i} ($req->{kind}): $_[0]\n"
            . '    ' . escape($req->{raw}) . "\n    answer: "
            . escape($resp->{head_raw} // '');
    };
    if ($req->{h09}) {
        $acc->{statuses}{'0.9'}++;
        return;
    }
    $acc->{statuses}{$st}++;
    if ($st eq 'none') {
        $prob->('no status line');
        return;
    }
    my $xloc = hval($resp, 'x-loc') // '-';
    $acc->{by}{"$xloc $st"}++;
    my $cc = join ',', @{ $resp->{headers}{'cache-control'} || [] };

    if ($st >= 500) {
        if ($st == 503 && $req->{sp} && $cc =~ /no-store/) {
            $acc->{declined}++;
        } elsif ($req->{allow}{$st}) {
            $acc->{core5xx}{$st}++;
        } else {
            $prob->("HTTP $st");
        }
    }

    my @locs = @{ $resp->{headers}{location} || [] };
    $prob->('two Location headers') if @locs > 1;
    for my $loc (@locs) {
        if ($loc =~ /[\x00-\x20\x7f]/) {
            $prob->('Location with a control byte or space');
            next;
        }
        $acc->{nonascii_loc}++ if $loc =~ /[\x80-\xff]/;
        my $h = location_host($loc, 'localhost');
        next if $h eq 'localhost';
        $prob->("Location goes to another host: $h") unless allowed_host($h);
    }

    my $click = hval($resp, 'x-aff-click');
    if ($xloc eq 'go') {
        if ($st =~ /^30[12378]\z/) {
            if (defined $click) {
                push @{ $acc->{go_locs} }, $locs[0] // '';
                push @{ $acc->{go_ids} }, $click;
                $prob->('redirect without no-store') unless $cc =~ /no-store/;
            } else {
                # error_page 404 https://shop.example/ of /g2/: a miss
                $acc->{errpage}++;
                $prob->('3xx without click id, not the error_page')
                    unless ($locs[0] // '') eq 'https://shop.example/';
            }
        }
    } elsif ($xloc eq 'cap') {
        if (defined $click) {
            push @{ $acc->{landing_ids} }, $click;
            push @{ $acc->{strip_locs} }, $locs[0] // '' if $st == 302;
        }
    } elsif ($xloc eq 'conv') {
        my $json = ($resp->{headers}{'content-type'} || [''])->[-1]
                   =~ m{^application/json};
        my $j;
        if ($json && length $resp->{body}) {
            $j = eval { $JSON->decode($resp->{body}) };
            $prob->('conversion answer is not JSON') unless ref $j eq 'HASH';
        }
        if ($st == 200) {
            $acc->{conv_ok}++;
            # docs/directives.md: a HEAD gets 405 and changes nothing
            $prob->('HEAD to a conversion endpoint answered 200')
                if $req->{head};
        } elsif ($st == 400 && $json) {
            $acc->{conv_json_400}++;
        } elsif ($st == 403 && $json) {
            $acc->{conv_json_403}++;
        }
    } elsif ($xloc eq 'status' && $st == 200 && !$req->{head}) {
        my $j = eval { $JSON->decode($resp->{body}) };
        if (ref $j eq 'HASH') { $acc->{status_ok}++ }
        else { $prob->('status answer is not JSON') }
    }
}

# waits until the zone of Aff $t has written (or lost) every record it
# accepted; returns the status then, undef after $timeout seconds
sub wait_written {
    my ($t, $timeout) = @_;
    my $s;
    return $t->wait_for(sub {
        $s = $t->status_json;
        $s->{ring}{used} == 0 && $s->{records}{written} + $s->{records}{lost}
                                 == $s->{records}{accepted};
    }, $timeout) ? $s : undef;
}

# --- the client -----------------------------------------------------------

# parses one answer at the start of $$buf; undef when incomplete
sub parse_one {
    my ($buf, $req, $eof) = @_;
    if ($req->{h09}) {
        return undef unless $eof;
        my $r = { status => undef, headers => {}, body => $$buf, close => 1 };
        $$buf = '';
        return $r;
    }
    while (1) {
        my $p = index $$buf, "\r\n\r\n";
        return undef if $p < 0;
        my $head = substr $$buf, 0, $p;
        my ($st) = $head =~ m{^HTTP/\d\.\d (\d{3})};
        if (defined $st && $st >= 100 && $st < 200 && $st != 101) {
            substr($$buf, 0, $p + 4, '');    # 100 Continue
            next;
        }
        my %h;
        for (split /\r\n/, $head) {
            next unless /^([^:]+):\s*(.*)\z/s;
            push @{ $h{ lc $1 } }, $2;
        }
        my $te = $h{'transfer-encoding'} && $h{'transfer-encoding'}[-1]
                 =~ /chunked/i;
        my $cl = $h{'content-length'} ? $h{'content-length'}[-1] : undef;
        my $close = ($h{connection} && $h{connection}[-1] =~ /close/i) ? 1 : 0;
        my $body;
        my $start = $p + 4;
        if ($req->{head} || (defined $st && ($st == 204 || $st == 304))) {
            $body = '';
            substr($$buf, 0, $start, '');
        } elsif ($te) {
            my $pos = $start;
            $body = '';
            while (1) {
                my $e = index $$buf, "\r\n", $pos;
                return undef if $e < 0;
                my ($n) = substr($$buf, $pos, $e - $pos) =~ /^([0-9a-fA-F]+)/;
                $n = hex($n // 0);
                if ($n == 0) {
                    my $end = index $$buf, "\r\n\r\n", $e;
                    if (substr($$buf, $e, 4) eq "\r\n\r\n") { $end = $e }
                    return undef if $end < 0;
                    substr($$buf, 0, $end + 4, '');
                    last;
                }
                return undef if length($$buf) < $e + 2 + $n + 2;
                $body .= substr $$buf, $e + 2, $n;
                $pos = $e + 2 + $n + 2;
            }
        } elsif (defined $cl) {
            return undef if length($$buf) < $start + $cl;
            $body = substr $$buf, $start, $cl;
            substr($$buf, 0, $start + $cl, '');
        } else {
            return undef unless $eof;
            $body = substr $$buf, $start;
            $$buf = '';
            $close = 1;
        }
        return { status => $st, headers => \%h, body => $body,
                 close => $close, head_raw => $head };
    }
}

# ($resp, 'ok') or (undef, 'eof' | 'cut' | 'timeout')
sub read_one {
    my ($sock, $buf, $req, $timeout, $eofref) = @_;
    my $end;
    my $bits = '';
    vec($bits, fileno $sock, 1) = 1;
    while (1) {
        my $r = parse_one($buf, $req, $$eofref);
        return ($r, 'ok') if $r;
        return (undef, length $$buf ? 'cut' : 'eof') if $$eofref;
        $end //= time + $timeout;
        return (undef, 'timeout') if time > $end;
        next unless select(my $rb = $bits, undef, undef, 0.5) > 0;
        my $n = sysread $sock, $$buf, 262144, length $$buf;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            $$eofref = 1;    # ECONNRESET
        } elsif ($n == 0) {
            $$eofref = 1;
        }
    }
}

# a connected TCP socket to 127.0.0.1:$port (plain socket(): cheaper than
# IO::Socket::INET, which matters when 400s close a connection in four)
sub connect_to {
    my ($port) = @_;
    my $addr = pack_sockaddr_in($port, inet_aton('127.0.0.1'));
    for (1 .. 50) {
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        if (connect($s, $addr)) {
            setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
            binmode $s;
            return $s;
        }
        close $s;
        sleep 0.05;
    }
    return undef;
}

# one client: requests $ci, $ci + clients, ... ; pipelines batches of up
# to `pipeline` requests; a request left without any byte of answer when
# nginx closes is sent again on a new connection (nginx did not process
# it); stops after `total` requests or, with `until`, when until->()
# returns true (checked between batches); `delay`: seconds to sleep
# after each batch (a paced load)
sub client {
    my ($o, $ci, $out) = @_;
    my %acc = (retries => 0, sent => 0, conns => 0);
    my @queue;
    my $next = $ci;
    my @ids;
    my ($sock, $buf, $eof);
    my $nbatch = 0;
    # batch sizes from their own hash: the generator reseeds rand()
    my $pl_rand = sub {
        1 + unpack('N', sha1("batch:$o->{seed}:$ci:" . $nbatch++))
            % $o->{pipeline};
    };
    my $done = sub {
        return !@queue && ($o->{until} ? $o->{until}->()
                                       : $next >= $o->{total});
    };
    my %tries;
    until ($done->()) {
        my $k = $pl_rand->();
        my ($bytes, @batch) = (0);
        while (@batch < $k && $bytes < 65536) {
            my $r;
            if (@queue) {
                $r = shift @queue;
            } elsif ($o->{until} ? !$o->{until}->() : $next < $o->{total}) {
                $r = $o->{gen}->($next, \@ids);
                $next += $o->{clients};
            } else {
                last;
            }
            push @batch, $r;
            $bytes += length $r->{raw};
            last if $r->{last} || $r->{h09};
        }
        last unless @batch;
        unless ($sock) {
            $sock = connect_to($o->{port});
            ($buf, $eof) = ('', 0);
            $acc{conns}++;
            unless ($sock) {
                push @{ $acc{prob} }, "cannot connect: $!";
                last;
            }
        }
        Aff::syswrite_all($sock, join '', map { $_->{raw} } @batch);
        my $answered = 0;
        my $closed = 0;
        for my $req (@batch) {
            my ($resp, $state) = read_one($sock, \$buf, $req,
                                          $o->{timeout} // 60, \$eof);
            if (!$resp) {
                if ($state ne 'eof') {
                    push @{ $acc{prob} }, "request $req->{i} ($req->{kind}): "
                        . "$state answer: " . escape($buf) . "\n    "
                        . escape($req->{raw});
                    $answered++;    # not sent again
                }
                $closed = 1;
                last;
            }
            $answered++;
            $acc{sent}++;
            $o->{check}->($req, $resp, \%acc);
            if (my $id = hval($resp, 'x-aff-click')) {
                push @ids, $id;
                shift @ids if @ids > 50;
            }
            if ($resp->{close}) { $closed = 1; last }
        }
        my @left = @batch[$answered .. $#batch];
        for my $r (@left) {
            if (++$tries{ $r->{i} } > 5) {
                push @{ $acc{prob} }, "request $r->{i} ($r->{kind}): no "
                    . "answer on 5 connections\n    " . escape($r->{raw});
                next;
            }
            $acc{retries}++;
            push @queue, $r;
        }
        @queue = sort { $a->{i} <=> $b->{i} } @queue if @left;
        if ($closed || $eof || @left) {
            close $sock;
            undef $sock;
        }
        sleep $o->{delay} if $o->{delay};
    }
    close $sock if $sock;
    nstore(\%acc, $out);
}

sub merge {
    my ($into, $from) = @_;
    for my $k (keys %$from) {
        my $v = $from->{$k};
        if (ref $v eq 'ARRAY') {
            push @{ $into->{$k} }, @$v;
        } elsif (ref $v eq 'HASH') {
            $into->{$k} //= {};
            merge($into->{$k}, $v);
        } else {
            $into->{$k} = ($into->{$k} // 0) + $v;
        }
    }
}

# forks `clients` clients; `during` runs in the parent meanwhile
sub run {
    my (%o) = @_;
    $o{clients}  //= 4;
    $o{pipeline} //= 8;
    $o{seed}     //= 1;
    $o{check}    //= \&check_response;
    my $dir = $o{dir} // '/tmp';
    my $t0 = time;
    my @kids;
    for my $ci (0 .. $o{clients} - 1) {
        my $out = "$dir/hostile.$$.$ci";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $ok = eval { client(\%o, $ci, $out); 1 };
            print STDERR "client $ci: $@" unless $ok;
            POSIX::_exit($ok ? 0 : 1);
        }
        push @kids, [$pid, $out];
    }
    my $during = $o{during} ? $o{during}->() : undef;
    my %res = (prob => [], during => $during);
    for my $k (@kids) {
        waitpid $k->[0], 0;
        push @{ $res{prob} }, "client exited with $?" if $?;
        my $acc = -e $k->[1] ? retrieve($k->[1]) : undef;
        unlink $k->[1];
        if (!$acc) {
            push @{ $res{prob} }, "client $k->[0] left no results";
            next;
        }
        merge(\%res, $acc);
    }
    $res{elapsed} = time - $t0;
    $res{total} = $res{sent} // 0;
    return \%res;
}

1;
