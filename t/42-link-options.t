# Link options (docs/links.md): A/B variants (sticky, weighted), schedules
# (from=, until=), exact click caps across workers (max_clicks=, human
# clicks only, surviving reload), expired= fallbacks and 410, device and
# app links with real User-Agent strings, per-link status, query=forward
# and utm=set, their precedence, the record fields variant/device/reason
# and the counters; bad values fail nginx -t with file, line and option.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(strftime);
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like '
       . 'Gecko) Chrome/131.0.0.0 Safari/537.36';

# real User-Agent strings of current phones and in-app browsers
my %UAS = (
    'iPhone Safari' => ['ios', 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like '
        . 'Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 '
        . 'Mobile/15E148 Safari/604.1'],
    'iPad Safari' => ['ios', 'Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) '
        . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 '
        . 'Mobile/15E148 Safari/604.1'],
    'Instagram iOS' => ['ios', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like '
        . 'Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
        . 'Instagram 339.0.3.12.91 (iPhone14,5; iOS 17_5; en_US; en; '
        . 'scale=3.00; 1170x2532; 618410024)'],
    'Facebook iOS' => ['ios', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like '
        . 'Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
        . '[FBAN/FBIOS;FBAV/460.0.0.35.110;FBBV/604127890;FBDV/iPhone15,2;'
        . 'FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;'
        . 'FBOP/80]'],
    'TikTok iOS' => ['ios', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like '
        . 'Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
        . 'musical_ly_35.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store '
        . 'ByteLocale/en Region/US RevealType/Dialog isDarkMode/0 '
        . 'WKWebView/1 BytedanceWebview/d8a21c6'],
    'Android Chrome' => ['android', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) '
        . 'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 '
        . 'Mobile Safari/537.36'],
    'Instagram Android' => ['android', 'Mozilla/5.0 (Linux; Android 14; '
        . 'SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, '
        . 'like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36 '
        . 'Instagram 355.0.0.37.103 Android (34/14; 450dpi; 1080x2340; '
        . 'samsung; SM-S918B; dm3q; qcom; en_US; 654217896)'],
    'TikTok Android' => ['android', 'Mozilla/5.0 (Linux; Android 13; '
        . 'SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, '
        . 'like Gecko) Version/4.0 Chrome/129.0.6668.100 Mobile Safari/537.36 '
        . 'trill_370104 JsSdk/1.0 NetType/WIFI Channel/googleplay '
        . 'AppName/musical_ly app_version/37.1.4 ByteLocale/en'],
    'Facebook Android' => ['android', 'Mozilla/5.0 (Linux; Android 14; '
        . 'SM-G991B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, '
        . 'like Gecko) Version/4.0 Chrome/130.0.6723.102 Mobile Safari/537.36 '
        . '[FB_IAB/FB4A;FBAV/489.0.0.66.81;]'],
    'desktop Chrome' => ['desktop', $UA],
    'desktop Firefox' => ['desktop', 'Mozilla/5.0 (Windows NT 10.0; Win64; '
        . 'x64; rv:133.0) Gecko/20100101 Firefox/133.0'],
    'Mac Safari (an iPad in desktop mode too)' => ['desktop',
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 '
        . '(KHTML, like Gecko) Version/18.1 Safari/605.1.15'],
);

my $past = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 86400));
my $future = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 86400));
my $future_tz = strftime('%Y-%m-%dT%H:%M:%S+02:00', gmtime(time + 7200 + 600));

my $links = join '', map { join("\t", @$_) . "\n" } (
    ['plain', 'https://shop.example/plain', 'anna', 'c1'],
    ['ab', 'https://shop.example/ab', 'anna', 'c1',
     'ab=https://a.example/x*70,https://b.example/y*30'],
    ['soon', 'https://shop.example/soon', 'anna', 'c1', "from=$future"],
    ['soon-tz', 'https://shop.example/soon', 'anna', 'c1', "from=$future_tz",
     'expired=https://shop.example/wait'],
    ['live', 'https://shop.example/live', 'anna', 'c1', "from=$past",
     "until=$future"],
    ['over', 'https://shop.example/over', 'anna', 'c1', "until=$past",
     'expired=https://shop.example/ended?x=1'],
    ['cap5', 'https://shop.example/cap', 'anna', 'c1', 'max_clicks=5'],
    ['capfb', 'https://shop.example/cap', 'anna', 'c1', 'max_clicks=2',
     'expired=https://shop.example/sold-out'],
    ['hammer', 'https://shop.example/hammer', 'anna', 'c1', 'max_clicks=300'],
    ['dev', 'https://shop.example/web', 'bob', 'c2',
     'ios=https://apps.apple.com/app/id1', 'android=myapp://product/7?x=1',
     'ab=https://a.example/*1,https://b.example/*1'],
    ['st', 'https://shop.example/st', 'bob', 'c2', 'status=307'],
    ['perm', 'https://shop.example/perm', 'bob', 'c2', 'status=301',
     'permanent=on'],
    ['fwd', 'https://shop.example/fwd?keep=dest', 'bob', 'c2',
     'query=forward'],
    ['utm', 'https://shop.example/u?utm_source=orig&utm_medium=mail&a=1',
     'bob', 'c2', 'utm=set'],
    ['utmkeep', 'https://shop.example/u?utm_source=orig&a=1', 'bob', 'c2'],
);

sub conf {
    my (%o) = @_;
    return Aff::std_http(
        http => "    affiliate_app_schemes myapp;\n"
              . "    affiliate_link inl https://shop.example/inline "
              . "creator=carl campaign=c3 max_clicks=1 "
              . "expired=https://shop.example/inline-gone;\n"
              . ($o{http} // ''),
        size => '8m');
}

my $t = Aff->new(workers => 2, http => conf(),
                 files => { 'links.tsv' => $links });
$t->start;

my $sent = 0;    # every request to /go/ writes one record

sub get {
    my ($path, $ua, @h) = @_;
    $sent++;
    return $t->get($path, [['User-Agent' => $ua // $UA], @h]);
}

# the record of a click id, or the latest one once all are written
sub last_record {
    my ($id) = @_;
    my @r;
    $t->wait_for(sub { @r = $t->records('aff.log'); @r >= $sent }, 10);
    return (grep { ($_->{click_id} // '') eq $id } @r)[0] if defined $id;
    return (sort { $b->{seq} <=> $a->{seq} } @r)[0];
}

my $r;

# --- plain links are untouched ------------------------------------------------

$r = get('/go/plain');
is($r->{status}, 302, 'plain: 302');
my $rec = last_record(Aff::click_id($r->{headers}{location}));
is($rec->{variant}, undef, 'plain: variant null');
is($rec->{device}, undef, 'plain: device null');
is($rec->{reason}, undef, 'plain: reason null');

# --- A/B: weights, stickiness -------------------------------------------------

my %n;
for my $i (1 .. 2000) {
    $r = get('/go/ab', "$UA visitor/$i");
    my ($host) = ($r->{headers}{location} // '') =~ m{^https://([^/]+)/};
    $n{$host // 'none'}++;
}
my $share = ($n{'a.example'} // 0) / 2000;
ok($share > 0.66 && $share < 0.74, "A/B: 70/30 split over 2000 visitors "
   . "(a: $share)") or diag explain \%n;
is(($n{'a.example'} // 0) + ($n{'b.example'} // 0), 2000, 'A/B: only variants');

my %seen;
for (1 .. 5) {
    $r = get('/go/ab', "$UA sticky/1");
    $seen{($r->{headers}{location} =~ m{^https://([^/]+)/})[0]}++;
}
is(scalar keys %seen, 1, 'A/B: the same visitor keeps the same variant');
$rec = last_record(Aff::click_id($r->{headers}{location}));
like($rec->{variant}, qr/^[12]$/, 'A/B: variant in the record (1-based)');
is($rec->{variant}, (keys %seen)[0] eq 'a.example' ? 1 : 2,
   'A/B: variant matches the destination');

# --- schedules -----------------------------------------------------------------

$r = get('/go/soon');
is($r->{status}, 410, 'from= in the future: 410');
is($r->{headers}{'cache-control'}, 'private, no-store', '410 is no-store');
$rec = last_record();
is($rec->{reason}, 'not_yet', 'record reason not_yet');
is($rec->{status}, 410, 'record status 410');
is($rec->{click_id}, undef, 'no click id for a link that is not live');

$r = get('/go/soon-tz');
like($r->{headers}{location} // '', qr{^https://shop\.example/wait\?click_id=},
     'from= with an offset, not yet: the expired= fallback');
is(last_record()->{reason}, 'not_yet', 'fallback: reason not_yet');

$r = get('/go/live');
like($r->{headers}{location}, qr{^https://shop\.example/live\?}, 'from..until: live');

$r = get('/go/over');
like($r->{headers}{location} // '', qr{^https://shop\.example/ended\?x=1&click_id=},
     'until= past: expired= fallback with click id');
is(last_record()->{reason}, 'expired', 'record reason expired');

# --- caps ------------------------------------------------------------------------

# bots and prefetches never use a cap up
for (1 .. 3) {
    $r = get('/go/cap5', 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)');
    is($r->{status}, 302, 'a bot before the cap: redirected');
}
$r = get('/go/cap5', $UA, ['Sec-Purpose' => 'prefetch']);
is($r->{status}, 503, 'a prefetch: declined, the cap untouched');

my @st;
push @st, get('/go/cap5', "$UA n/$_")->{status} for 1 .. 7;
is(join(',', @st), '302,302,302,302,302,410,410',
   'max_clicks=5: five human clicks, then 410');
$rec = last_record();
is($rec->{reason}, 'capped', 'record reason capped');
$r = get('/go/cap5', 'Googlebot/2.1');
is($r->{status}, 410, 'a bot after the cap: 410 as well');

push @st, get('/go/capfb')->{status} for 1 .. 3;
$r = get('/go/capfb');
like($r->{headers}{location} // '', qr{^https://shop\.example/sold-out\?},
     'capped with expired=: the fallback');

$r = get('/go/inl');
like($r->{headers}{location}, qr{/inline\?}, 'inline link with options: live');
$r = get('/go/inl');
like($r->{headers}{location} // '', qr{/inline-gone\?}, 'inline max_clicks=1: fallback');

# caps survive a reload
$t->reload;
$r = get('/go/cap5');
is($r->{status}, 410, 'the cap survives a reload');

# exact across workers: many clients hammering one capped link
my $res = $t->load('/go/hammer', total => 2000, concurrency => 8,
                   headers => { 'User-Agent' => $UA });
$sent += 2000;
is($res->{statuses}{302} // 0, 300, 'hammered max_clicks=300: exactly 300 redirects')
    or diag explain $res->{statuses};
is($res->{statuses}{410} // 0, 1700, 'and 1700 410s');

# --- devices and apps --------------------------------------------------------------

for my $name (sort keys %UAS) {
    my ($dev, $ua) = @{ $UAS{$name} };
    $r = get('/go/dev', $ua);
    my $loc = $r->{headers}{location} // '';
    if ($dev eq 'ios') {
        like($loc, qr{^https://apps\.apple\.com/app/id1\?click_id=}, "$name: App Store");
    } elsif ($dev eq 'android') {
        like($loc, qr{^myapp://product/7\?x=1&click_id=}, "$name: the app");
    } else {
        like($loc, qr{^https://[ab]\.example/\?click_id=},
             "$name: no device URL: the A/B variants");
    }
    $rec = last_record(Aff::click_id($loc));
    is($rec->{device}, $dev, "$name: device $dev in the record");
}

# --- per-link behaviour --------------------------------------------------------------

is(get('/go/st')->{status}, 307, 'status=307');
$r = get('/go/perm');
is($r->{status}, 301, 'status=301 with permanent=on');
is($r->{headers}{'cache-control'}, 'private, no-store', '301 is still no-store');

$r = get('/go/fwd?ref=ig&keep=visitor&utm_source=evil&click_id=forged&x=a%20b&y');
my $loc = $r->{headers}{location};
like($loc, qr{^https://shop\.example/fwd\?keep=dest&ref=ig&x=a%20b&y&click_id=[0-9A-Z]{26}&utm_source=bob&},
     'query=forward: visitor parameters kept, no duplicates, module ones win');
unlike($loc, qr/evil|forged|keep=visitor/, 'query=forward: nothing overridden');
$r = get('/go/plain?ref=ig');
unlike($r->{headers}{location}, qr/ref=ig/, 'default query=drop');

$r = get('/go/utm');
like($r->{headers}{location}, qr{^https://shop\.example/u\?a=1&click_id=\w{26}&utm_source=bob&utm_medium=affiliate&utm_campaign=c2$},
     'utm=set: the module\'s utm_* replace the destination\'s');
$r = get('/go/utmkeep');
like($r->{headers}{location}, qr{utm_source=orig}, 'default utm=keep');
unlike($r->{headers}{location}, qr{utm_source=bob}, 'utm=keep: not overwritten');

# --- counters -----------------------------------------------------------------------------

my $s = $t->status_json;
is($s->{not_yet}, 2, 'counter not_yet');
is($s->{expired}, 1, 'counter expired');
cmp_ok($s->{capped}, '>=', 1700 + 2 + 2 + 1, 'counter capped');

# --- bad values fail nginx -t ----------------------------------------------------------------

my @bad = (
    ['weights 0', "x\thttps://s.example/\ta\tb\tab=https://a.example/*0,https://b.example/*0",
     qr/links\.tsv:1: the "ab=" weights add up to 0/],
    ['one variant', "x\thttps://s.example/\ta\tb\tab=https://a.example/*1",
     qr/at least two variants/],
    ['no weight', "x\thttps://s.example/\ta\tb\tab=https://a.example/,https://b.example/*1",
     qr/needs a weight/],
    ['variant not http', "x\thttps://s.example/\ta\tb\tab=ftp://a.example/*1,https://b.example/*1",
     qr/variant is not an absolute http/],
    ['until before from', "x\thttps://s.example/\ta\tb\tfrom=$future\tuntil=$past",
     qr/"until=" is not after "from="/],
    ['bad time', "x\thttps://s.example/\ta\tb\tuntil=tomorrow", qr/RFC 3339/],
    ['unknown scheme', "x\thttps://s.example/\ta\tb\tios=otherapp://x",
     qr/affiliate_app_schemes/],
    # fuzz_links FZ7: a bad https URL was then taken for an app link
    ['device URL with a bad host', "x\thttps://s.example/\ta\tb\tios=https://b*d.example/",
     qr/destination has an invalid host/],
    ['device URL without a host', "x\thttps://s.example/\ta\tb\tandroid=HTTP:x",
     qr/destination is not an absolute http/],
    ['app scheme outside a device field', "x\tmyapp://x\ta\tb",
     qr/links\.tsv:1: destination is not an absolute http/],
    ['301 without permanent', "x\thttps://s.example/\ta\tb\tstatus=301",
     qr/"status=301" needs "permanent=on"/],
    ['status 200', "x\thttps://s.example/\ta\tb\tstatus=200", qr/invalid "status="/],
    ['unknown option', "x\thttps://s.example/\ta\tb\tcolor=red", qr/unknown option/],
    ['max_clicks 0', "x\thttps://s.example/\ta\tb\tmax_clicks=0", qr/positive/],
    ['expired without schedule', "x\thttps://s.example/\ta\tb\texpired=https://e.example/",
     qr/"expired=" needs/],
    ['query=maybe', "x\thttps://s.example/\ta\tb\tquery=maybe", qr/"query=" must be/],
);
for my $b (@bad) {
    my ($name, $line, $re) = @$b;
    $t->write_file('bad.tsv', "$line\n");
    my ($rc, $out) = $t->conf_test(Aff::std_http(
        http => "    affiliate_app_schemes myapp;\n    affiliate_links %%DIR%%/bad.tsv;\n"));
    isnt($rc, 0, "nginx -t refuses: $name");
    like($out, qr/bad\.tsv:1: /, "$name: file and line") or diag $out;
    (my $re2 = "$re") =~ s/links\\\.tsv/bad\\.tsv/;
    like($out, qr/$re2/, "$name: what is wrong") or diag $out;
}

for my $bad ('http', 'JavaScript', 'my_app', 'data') {
    my ($rc, $out) = $t->conf_test(Aff::std_http(
        http => "    affiliate_app_schemes $bad;\n"));
    isnt($rc, 0, "affiliate_app_schemes $bad refused");
}

my ($rc, $out) = $t->conf_test(Aff::std_http(
    http => "    affiliate_link q https://s.example/ creator=a campaign=b "
          . "until=$past from=$future;\n"));
like($out, qr/affiliate_link: "until=" is not after "from=" in \S+:\d+/,
     'inline options: the same checks, named file and line');

$t->stop;
done_testing;
