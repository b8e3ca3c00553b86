# Link options (docs/links.md): A/B variants (sticky, weighted), schedules
# (from=, until=), exact click caps across workers (max_clicks=, human
# clicks only, surviving reload), expired= fallbacks and 410, device and
# app links with real User-Agent strings, per-link status, query=forward
# and utm=set, their precedence, the record fields variant/device/reason
# and the counters; bad values fail nginx -t with file, line and option.
# A click on a link that is not live is no click: no cookie, no click id,
# counted by its reason only.  Caps are per slug as looked up (any case),
# a full caps= table serves uncapped and counts cap_table_full.
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
              . "    log_format pids '\$pid \$uri \$status';\n"
              . ($o{http} // ''),
        go => 'access_log %%DIR%%/pids.log pids;',
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
like($r->{headers}{location} // '', qr{^https://shop\.example/wait\?utm_source=anna&},
     'from= with an offset, not yet: the expired= fallback, no click id');
is(last_record()->{reason}, 'not_yet', 'fallback: reason not_yet');

$r = get('/go/live');
like($r->{headers}{location}, qr{^https://shop\.example/live\?}, 'from..until: live');

$r = get('/go/over');
like($r->{headers}{location} // '',
     qr{^https://shop\.example/ended\?x=1&utm_source=anna&utm_medium=affiliate&utm_campaign=c1$},
     'until= past: the expired= fallback with the UTM parameters, no click id');
$rec = last_record();
is($rec->{reason}, 'expired', 'record reason expired');
is($rec->{status}, 302, 'fallback record: status 302');
is($rec->{click_id}, undef, 'fallback record: no click id');

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

# exact across workers: many clients hammering one capped link, one
# connection a request so that both workers take part
my $res = $t->load('/go/hammer', total => 2000, concurrency => 8,
                   keepalive => 0, headers => { 'User-Agent' => $UA });
$sent += 2000;
is($res->{statuses}{302} // 0, 300, 'hammered max_clicks=300: exactly 300 redirects')
    or diag explain $res->{statuses};
is($res->{statuses}{410} // 0, 1700, 'and 1700 410s');
my %pids;
for (split /\n/, $t->read_file('pids.log') // '') {
    my ($pid, $uri, $st) = split / /;
    $pids{$pid}{$st}++ if $uri eq '/go/hammer';
}
is(scalar(grep { $pids{$_}{302} } keys %pids), 2,
   'hammer: both workers gave redirects of the capped link')
    or diag explain \%pids;

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

# people only: cap5 2 + capfb 2 + inl 1 + after the reload 1 + hammer 1700
# (the bot after the cap is a bot click)
my $s = $t->status_json;
is($s->{not_yet}, 2, 'counter not_yet');
is($s->{expired}, 1, 'counter expired');
is($s->{capped}, 1700 + 2 + 2 + 1 + 1, 'counter capped, exactly');

# --- bad values fail nginx -t ----------------------------------------------------------------

my $inv = sub { my ($o, $v) = @_; qr/invalid "\Q$o\E=" value "\Q$v\E": / };
my $heavy = join ',', map { "https://v.example/$_*1000000" } 1 .. 4300;
my @bad = (
    ['weights 0', "x\thttps://s.example/\ta\tb\tab=https://a.example/*0,https://b.example/*0",
     qr/links\.tsv:1: invalid "ab=" value "https:\/\/a\.example\/\*0,https:\/\/b\.example\/\*0": the weights add up to 0/],
    ['one variant', "x\thttps://s.example/\ta\tb\tab=https://a.example/*1",
     qr/invalid "ab=" value "[^"]*": at least two variants/],
    ['no weight', "x\thttps://s.example/\ta\tb\tab=https://a.example/,https://b.example/*1",
     qr/invalid "ab=" value "[^"]*": a variant needs a weight/],
    ['variant not http', "x\thttps://s.example/\ta\tb\tab=ftp://a.example/*1,https://b.example/*1",
     qr/invalid "ab=" value "[^"]*": a variant is not an absolute http/],
    ['weight too big', "x\thttps://s.example/\ta\tb\tab=https://a.example/*1000001,https://b.example/*1",
     qr/invalid "ab=" value "[^"]*": a weight must be a whole number from 0 to 1000000/],
    # 4300 x 1000000 used to wrap the 32-bit running sums around
    ['4300 heavy variants', "x\thttps://s.example/\ta\tb\tab=$heavy",
     qr/invalid "ab=" value "https:\/\/v\.example\/1\*1000000,[^"]{20,}\.\.\.": more than 100 variants/],
    ['until before from', "x\thttps://s.example/\ta\tb\tfrom=$future\tuntil=$past",
     qr/"until=" is not after "from="/],
    ['bad time', "x\thttps://s.example/\ta\tb\tuntil=tomorrow",
     qr/invalid "until=" value "tomorrow": a time must be RFC 3339/],
    ['February 31', "x\thttps://s.example/\ta\tb\tuntil=2026-02-31T00:00:00Z",
     qr/invalid "until=" value "2026-02-31T00:00:00Z": no such day in that month/],
    ['February 29 of 2026', "x\thttps://s.example/\ta\tb\tfrom=2026-02-29T12:00:00Z",
     qr/invalid "from=" value "2026-02-29T12:00:00Z": no such day/],
    ['April 31', "x\thttps://s.example/\ta\tb\tfrom=2026-04-31T12:00:00Z",
     qr/invalid "from=" value "2026-04-31T12:00:00Z": no such day/],
    ['offset +99:99', "x\thttps://s.example/\ta\tb\tfrom=2026-12-01T00:00:00+99:99",
     qr/invalid "from=" value "2026-12-01T00:00:00\+99:99": a time must be RFC 3339/],
    ['offset +24:00', "x\thttps://s.example/\ta\tb\tuntil=2026-12-01T00:00:00+24:00",
     qr/invalid "until=" value "2026-12-01T00:00:00\+24:00": a time must be RFC 3339/],
    ['offset -05:60', "x\thttps://s.example/\ta\tb\tuntil=2026-12-01T00:00:00-05:60",
     qr/invalid "until=" value "[^"]*": a time must be RFC 3339/],
    ['second 60', "x\thttps://s.example/\ta\tb\tuntil=2026-12-31T23:59:60Z",
     qr/invalid "until=" value "2026-12-31T23:59:60Z": a time must be RFC 3339/],
    ['the epoch', "x\thttps://s.example/\ta\tb\tuntil=1970-01-01T00:00:00Z",
     qr/invalid "until=" value "1970-01-01T00:00:00Z": the time must be after 1970/],
    ['unknown scheme', "x\thttps://s.example/\ta\tb\tios=otherapp://x",
     qr/invalid "ios=" value: app link scheme "otherapp" is not listed in "affiliate_app_schemes"/],
    # fuzz_links FZ7: a bad https URL was then taken for an app link
    ['device URL with a bad host', "x\thttps://s.example/\ta\tb\tios=https://b*d.example/",
     qr/invalid "ios=" value "https:\/\/b\*d\.example\/": destination has an invalid host/],
    ['device URL without a host', "x\thttps://s.example/\ta\tb\tandroid=HTTP:x",
     qr/invalid "android=" value "HTTP:x": destination is not an absolute http/],
    ['desktop URL with a space', "x\thttps://s.example/\ta\tb\tdesktop=https://d.example/a b",
     qr/invalid "desktop=" value "https:\/\/d\.example\/a b": destination contains/],
    ['app scheme outside a device field', "x\tmyapp://x\ta\tb",
     qr/links\.tsv:1: destination is not an absolute http/],
    ['expired= not http', "x\thttps://s.example/\ta\tb\tuntil=$past\texpired=myapp://x",
     qr/invalid "expired=" value "myapp:\/\/x": destination is not an absolute http/],
    ['301 without permanent', "x\thttps://s.example/\ta\tb\tstatus=301",
     qr/"status=301" needs "permanent=on"/],
    ['status 200', "x\thttps://s.example/\ta\tb\tstatus=200",
     qr/invalid "status=" value "200": expected 301, 302, 303, 307 or 308/],
    ['permanent=yes', "x\thttps://s.example/\ta\tb\tpermanent=yes",
     qr/invalid "permanent=" value "yes": expected "on" or "off"/],
    ['unknown option', "x\thttps://s.example/\ta\tb\tcolor=red",
     qr/unknown option "color=" \(ab=/],
    ['no "="', "x\thttps://s.example/\ta\tb\tforward",
     qr/invalid option "forward": an option is "name=value"/],
    ['no value', "x\thttps://s.example/\ta\tb\tuntil=",
     qr/"until=" needs a value/],
    ['max_clicks 0', "x\thttps://s.example/\ta\tb\tmax_clicks=0",
     qr/invalid "max_clicks=" value "0": a positive number/],
    ['max_clicks x', "x\thttps://s.example/\ta\tb\tmax_clicks=ten",
     qr/invalid "max_clicks=" value "ten": a positive number/],
    ['expired without schedule', "x\thttps://s.example/\ta\tb\texpired=https://e.example/",
     qr/"expired=" needs/],
    ['query=maybe', "x\thttps://s.example/\ta\tb\tquery=maybe",
     qr/invalid "query=" value "maybe": expected "forward" or "drop"/],
    ['utm=all', "x\thttps://s.example/\ta\tb\tutm=all",
     qr/invalid "utm=" value "all": expected "set" or "keep"/],
);

# every option given twice is refused, whatever the values
for my $d (["ab=https://a.example/*1,https://b.example/*1",
            "ab=https://c.example/*1,https://d.example/*1"],
           ["from=$past", "from=$past"], ["until=$future", "until=$future"],
           ['max_clicks=5', 'max_clicks=6'],
           ['expired=https://e.example/', 'expired=https://f.example/', "until=$future"],
           ['ios=https://i.example/', 'ios=https://j.example/'],
           ['android=https://i.example/', 'android=myapp://x'],
           ['desktop=https://i.example/', 'desktop=https://i.example/'],
           ['status=302', 'status=307'], ['permanent=on', 'permanent=off'],
           ['query=forward', 'query=drop'], ['utm=set', 'utm=set'])
{
    my ($o) = $d->[0] =~ /^(\w+)=/;
    push @bad, ["duplicate $o=", join("\t", "x\thttps://s.example/\ta\tb", @$d),
                qr/links\.tsv:1: duplicate "$o="/];
}

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

# the edges that pass
my $hundred = join ',', map { "https://v.example/$_*1000000" } 1 .. 100;
for my $good ("from=2028-02-29T12:00:00Z", "until=2099-12-31T23:59:59.999Z",
              "from=2026-12-01T00:00:00-23:59", "until=2026-12-01t00:00:00z",
              "from=1970-01-01T00:00:01Z", "ab=$hundred")
{
    $t->write_file('good.tsv', "x\thttps://s.example/\ta\tb\t$good\n");
    my ($rc, $out) = $t->conf_test(Aff::std_http(
        http => "    affiliate_app_schemes myapp;\n"
              . "    affiliate_links %%DIR%%/good.tsv;\n"));
    is($rc, 0, 'nginx -t accepts ' . substr($good, 0, 40)) or diag $out;
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

# --- a second server: cookies, geo, inline options, caps in any case ----------

my $SECRET = 'link-options-secret-0123456789abcdefghijkl';
my $IPHONE = $UAS{'iPhone Safari'}[1];
my $ANDROID = $UAS{'Android Chrome'}[1];
my $IN = 'https://shop.example';

my $ulinks = join '', map { join("\t", @$_) . "\n" } (
    ['live', "$IN/live", 'lena', 'l1'],
    ['gone', "$IN/gone", 'gina', 'g1', "until=$past"],
    ['gonefb', "$IN/gonefb", 'gina', 'g1', "until=$past",
     "expired=$IN/over?x=1"],
    ['capone', "$IN/capone", 'gina', 'g1', 'max_clicks=1'],
    ['abc', "$IN/abc", 'anna', 'c1',
     'ab=https://a.example/c*1,https://b.example/c*1'],
    ['prec', "$IN/prec", 'pia', 'p1', 'ios=https://ios.example/p',
     'geo=ZZ:https://zz.example/p',
     'ab=https://a.example/p*1,https://b.example/p*1'],
    ['precgone', "$IN/prec", 'pia', 'p1', 'ios=https://ios.example/p',
     'geo=ZZ:https://zz.example/p',
     'ab=https://a.example/p*1,https://b.example/p*1',
     "until=$past", "expired=$IN/over"],
    ['headcap', "$IN/headcap", 'hana', 'h1', 'max_clicks=2'],
    ['drop', "$IN/drop", 'dora', 'd1', 'max_clicks=3'],
    (map { ["full$_", "$IN/full$_", 'fay', 'f1', 'max_clicks=1'] } 1 .. 65),
);

my $uhttp = <<'EOF';
    affiliate_secret %%DIR%%/secret;
    affiliate_cookie aff;
    affiliate_geoip %%DIR%%/const.mmdb;
    affiliate_geoip_source $http_x_geo;
    affiliate_link inab https://shop.example/inab creator=ina campaign=i1
        ab=https://a.example/i*1,https://b.example/i*1;
    affiliate_link inios https://shop.example/inios?k=v creator=ina
        campaign=i1 ios=https://apps.apple.com/app/id9 status=307
        query=forward;
    affiliate_zone tiny:1m caps=1024;
    affiliate_log  %%DIR%%/tiny.log zone=tiny;
EOF
my $userver = <<'EOF';
        location /t/ { affiliate_redirect zone=tiny; }
        location = /tiny/status { affiliate_status zone=tiny; }
        location /r/ {
            affiliate_redirect zone=aff;
            affiliate_allow_hosts .brand.example;
            affiliate_rule "^/r/set/(\w+)$"
                https://shop.example/p/$1?utm_source=orig&a=1
                creator=rita campaign=r1 query=forward utm=set;
            affiliate_rule "^/r/keep/(\w+)$"
                https://shop.example/p/$1?utm_source=orig
                creator=rita campaign=r1;
            affiliate_rule "^/r/h/([^/]+)/(\w+)$" https://$1/$2
                creator=rita campaign=r1 query=forward utm=set;
        }
EOF
my $u = Aff->new(workers => 1,
    http => Aff::std_http(http => $uhttp, server => $userver) . <<'EOF',
    # another server of the same zone, the same slug in capitals
    server {
        listen 127.0.0.1:%%PORT2%%;
        affiliate_link DROP https://shop.example/drop2 creator=dora
            campaign=d1 max_clicks=3;
        location /go/ { affiliate_redirect zone=aff; }
    }
EOF
    files => { 'links.tsv' => $ulinks, 'secret' => "$SECRET\n" });
system('perl', "$FindBin::Bin/lib/mkmmdb.pl", 'const',
       $u->dir . '/const.mmdb') == 0 or die "mkmmdb failed";
$u->start;

my $uget = sub {
    my ($path, @h) = @_;
    my %h = ('User-Agent' => $UA, @h);
    return $u->get($path, [map { [$_ => $h{$_}] } sort keys %h]);
};
my $cookie_of = sub {
    my ($r) = @_;
    my $c = $r->{headers}{'set-cookie'} // return undef;
    return ($c =~ /^(aff=[^;]+)/)[0];
};

# --- a link that is not live is no click ---------------------------------------

$r = $uget->('/go/live');
my $valid = $cookie_of->($r);
ok($valid, 'a live link sets the cookie');

$r = $uget->('/go/gone', Cookie => $valid);
is($r->{status}, 410, 'until= past, no expired=: 410');
is($r->{headers}{'set-cookie'}, undef,
   '410: no Set-Cookie (the visitor keeps a valid cookie)');

$r = $uget->('/go/gonefb', Cookie => $valid);
is($r->{status}, 302, 'until= past with expired=: 302');
is($r->{headers}{location},
   "$IN/over?x=1&utm_source=gina&utm_medium=affiliate&utm_campaign=g1",
   'the fallback: the UTM parameters, no click id');
is($r->{headers}{'set-cookie'}, undef, 'the fallback: no Set-Cookie');

is($uget->('/go/capone')->{status}, 302, 'max_clicks=1: the first click');
$r = $uget->('/go/capone', Cookie => $valid);
is($r->{status}, 410, 'max_clicks=1: then 410');
is($r->{headers}{'set-cookie'}, undef, 'capped: no Set-Cookie');

$r = $uget->('/go/gone', 'User-Agent' => 'Googlebot/2.1');
is($r->{status}, 410, 'a bot on a link that is not live: 410');

my @ur;
$u->wait_for(sub {
    @ur = grep { ($_->{link} // '') =~ /^(?:gone|gonefb|capone)$/ }
          $u->records('aff.log');
    @ur >= 5 }, 10);
is(join(',', map { "$_->{link}:$_->{status}:" . ($_->{reason} // '-') } @ur),
   'gone:410:expired,gonefb:302:expired,capone:302:-,capone:410:capped,'
   . 'gone:410:expired', 'records: status and reason');
is(scalar(grep { $_->{reason} && defined $_->{click_id} } @ur), 0,
   'no click id in a record with a reason');
is(scalar(grep { $_->{reason} && defined $_->{cookie} } @ur), 0,
   'no cookie in a record with a reason');
is($ur[-1]{bot}, JSON::PP::true, 'the bot\'s record: bot');

my $us = $u->status_json;
is($us->{clicks}, 2, 'clicks: the live link and the first capped click only');
is($us->{unique_clicks}, 2, 'unique_clicks: the same two');
is($us->{expired}, 2, 'expired: the two clicks of a person');
is($us->{capped}, 1, 'capped: one');
is($us->{bot_clicks}, 1, 'the bot: a bot click, not in expired');
my %utop = map { ("$_->{creator}/$_->{campaign}" => $_) }
           @{ $us->{creators}{top} };
is($utop{'gina/g1'}{clicks} // 0, 1, 'gina: only the live click counted');
is($utop{'gina/g1'}{unique_clicks} // 0, 1, 'gina: one unique click');
is($utop{'gina/g1'}{bot_clicks} // 0, 1, 'gina: the bot click');

# --- A/B stickiness by the cookie's visitor id ------------------------------------

# the visitor id of a cookie decides, whatever the User-Agent
my (%byid, %variants);
for my $i (1 .. 40) {
    my $v = sprintf '%08x%08x', $i * 2654435761 % 4294967296, $i * 40503;
    my $c = "aff=01ARZ3NDEKTSV4RRFFQ69G5FAV.1700000000.YQ.Yg.$v." . ('A' x 43);
    for my $k (1 .. 3) {
        my ($h) = ($uget->('/go/abc', 'User-Agent' => "$UA v$i/$k",
                           Cookie => $c)->{headers}{location} // '')
                  =~ m{^https://([ab])\.example/};
        $byid{$i}{$h // 'none'}++;
        $variants{$h // 'none'}++;
    }
}
is(scalar(grep { keys %{ $byid{$_} } == 1 } keys %byid), 40,
   'A/B: each cookie visitor id keeps its variant over three User-Agents');
ok(($variants{a} // 0) > 0 && ($variants{b} // 0) > 0 && !$variants{none},
   'A/B: the visitor ids fall on both variants') or diag explain \%variants;

# the cookie a click sets carries the variant to another User-Agent
$r = $uget->('/go/abc', 'User-Agent' => "$UA first");
my $c = $cookie_of->($r);
my ($v0) = ($r->{headers}{location} // '') =~ m{^https://([ab])\.example/};
my %after;
for my $k (1 .. 10) {
    my ($h) = ($uget->('/go/abc', 'User-Agent' => "$UA other/$k", Cookie => $c)
                    ->{headers}{location} // '') =~ m{^https://([ab])\.example/};
    $after{$h // 'none'}++;
}
is_deeply(\%after, { $v0 => 10 },
          'A/B: with the cookie it set, ten other User-Agents keep the variant');

# --- precedence: schedule, device, geo, A/B --------------------------------------

my $over = qr{^\Q$IN\E/over\?utm_source=pia&};
my %prec = (
    'schedule over device, geo and A/B' => ['/go/precgone', $IPHONE, 1, $over],
    'schedule over geo and A/B' => ['/go/precgone', $UA, 1, $over],
    'schedule over A/B' => ['/go/precgone', $UA, 0, $over],
    'device over geo' => ['/go/prec', $IPHONE, 1,
                          qr{^https://ios\.example/p\?click_id=}],
    'device over A/B' => ['/go/prec', $IPHONE, 0,
                          qr{^https://ios\.example/p\?click_id=}],
    'geo over A/B' => ['/go/prec', $UA, 1,
                       qr{^https://zz\.example/p\?click_id=}],
    'no URL for the device: geo' => ['/go/prec', $ANDROID, 1,
                                     qr{^https://zz\.example/p\?click_id=}],
    'no country: A/B' => ['/go/prec', $UA, 0,
                          qr{^https://[ab]\.example/p\?click_id=}],
);
for my $name (sort keys %prec) {
    my ($path, $ua, $geo, $re) = @{ $prec{$name} };
    $r = $uget->($path, 'User-Agent' => $ua,
                 'X-Geo' => $geo ? '198.51.100.7' : 'not-an-address');
    like($r->{headers}{location} // '', $re, "precedence: $name");
}

# --- HEAD never uses a cap up ---------------------------------------------------

for (1 .. 5) {
    $r = $u->get('/go/headcap', [['User-Agent' => $UA]], method => 'HEAD');
    is($r->{status}, 302, 'HEAD on a capped link: redirected');
}
is(join(',', map { $uget->('/go/headcap', 'User-Agent' => "$UA h$_")->{status} }
             1 .. 3),
   '302,302,410', 'max_clicks=2 after five HEADs: two GETs, then 410');

# --- inline options at run time -------------------------------------------------

my %inab;
for my $i (1 .. 60) {
    my ($h) = ($uget->('/go/inab', 'User-Agent' => "$UA in/$i")
                    ->{headers}{location} // '')
              =~ m{^https://([ab])\.example/i\?click_id=};
    $inab{$h // 'none'}++;
}
ok(($inab{a} // 0) > 10 && ($inab{b} // 0) > 10 && !$inab{none},
   'inline ab=: both variants over 60 visitors') or diag explain \%inab;
$r = $uget->('/go/inios?ref=tt', 'User-Agent' => $IPHONE);
is($r->{status}, 307, 'inline status=307');
like($r->{headers}{location} // '',
     qr{^https://apps\.apple\.com/app/id9\?ref=tt&click_id=},
     'inline ios= and query=forward');
$r = $uget->('/go/inios?ref=tt');
like($r->{headers}{location} // '',
     qr{^https://shop\.example/inios\?k=v&ref=tt&click_id=},
     'inline: a desktop gets the link\'s own destination, query forwarded');

# --- query= and utm= of affiliate_rule --------------------------------------------

$r = $uget->('/r/set/p1?ref=ig&utm_source=evil&click_id=forged');
like($r->{headers}{location} // '',
     qr{^https://shop\.example/p/p1\?a=1&ref=ig&click_id=[0-9A-Z]{26}&utm_source=rita&utm_medium=affiliate&utm_campaign=r1$},
     'rule query=forward utm=set: the visitor\'s parameters, the module\'s UTM');
$r = $uget->('/r/keep/p1?ref=ig');
like($r->{headers}{location} // '',
     qr{^https://shop\.example/p/p1\?utm_source=orig&click_id=\w{26}&utm_medium=affiliate&utm_campaign=r1$},
     'rule defaults: query=drop, utm=keep');
$r = $uget->('/r/h/shop.brand.example/x?ref=ig');
like($r->{headers}{location} // '',
     qr{^https://shop\.brand\.example/x\?ref=ig&click_id=},
     'rule with a host from the request, query=forward: an allowed host');
$r = $uget->('/r/h/evil.example/x?ref=ig');
is($r->{status}, 400, 'query=forward keeps the open-redirect guard: 400');
$r = $uget->('/r/h/evil.example%23.brand.example/x?u=1');
is($r->{status}, 400, 'a host hidden before "#": 400');
($rc, $out) = $u->conf_test(Aff::std_http(
    go => 'affiliate_rule "^/go/(\w+)$" https://s.example/$1 query=maybe;'));
like($out, qr/invalid parameter "query=maybe"/, 'rule query=maybe refused');

# --- one cap per slug as it is looked up ------------------------------------------

my @drop = ((map { $uget->('/go/drop')->{status} } 1 .. 2),
            (map { $u->get('/go/DROP', [['User-Agent' => $UA]],
                           port => $u->port2)->{status} } 1 .. 2),
            $uget->('/go/Drop')->{status});
is(join(',', @drop), '302,302,302,410,410',
   '"drop" and "DROP" in two servers of one zone share max_clicks=3');

# --- a full caps= table: served uncapped, counted ---------------------------------

# caps=1024: 64 counters; 65 capped links, each clicked twice
my %pattern;
for my $i (1 .. 65) {
    my $p = join ',', map {
        $uget->("/t/full$i", 'User-Agent' => "$UA f$_")->{status} } 1 .. 2;
    $pattern{$p}++;
}
is_deeply(\%pattern, { '302,410' => 64, '302,302' => 1 },
          'caps=1024: 64 links capped, the 65th served uncapped')
    or diag explain \%pattern;
my $ts = $u->status_json('/tiny/status');
is($ts->{cap_table_full}, 2, 'cap_table_full: both clicks of the 65th link');
is($ts->{capped}, 64, 'capped: 64');

$u->stop;
done_testing;
