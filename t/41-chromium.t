# A creator's follower in a real browser: Debian's chromium, headless,
# driven over the DevTools protocol (t/lib/Chromium.pm), against nginx
# with the module.  Each case is a fresh browser (a fresh profile: no
# cookie, no cache) that opens a page linking to /go/<slug> (the shop's
# own page, or another site's: a creator's link-in-bio page), lets
# Chromium do what the page asks it to do ahead of time, clicks the link
# with real mouse events, lands on the shop, then opens a thank-you page
# whose <img> is the conversion pixel.
#
#   pf, pr   Speculation Rules prefetch / prerender of /go/<slug>: the
#            speculative request is declined (503, no-store, a bot record
#            with bot_reason "prefetch"); the click reaches nginx: a
#            person's click, its cookie, the conversion attributed to it.
#   pfoff, proff
#            the same rules on a location with "affiliate_speculative
#            off": Chromium uses the 302 it got ahead of time, the click
#            never reaches nginx, the follower lands with the click id of
#            a bot record and no cookie, the order is not attributed.
#            This is why the module declines speculative navigations.
#   lp       <link rel=prefetch href=/go/lp>: the prefetch is declined
#            too (no-cors, 503, a bot record); no-store makes the click
#            come back to nginx.
#   lpexp    the same where "expires 1h" adds a second Cache-Control
#            (max-age=3600): no-store still wins in Chromium.
#   x...     the same from another site (http://localhost:PORT2 links to
#            http://127.0.0.1:PORT: another site): cross-site prefetch is
#            made too; Chromium refuses to prerender another site, but
#            uses for the click the prefetch it made ahead of that
#            prerender (xproff: the click is lost all the same).
#   dc, dcr, dcoff
#            a document rule with eagerness "conservative": nothing before
#            the press; the prefetch starts on pointerdown, the button is
#            released once it reached nginx.
#   dq       the same with a quick click: the navigation starts while the
#            prefetch is on its way; Chromium waits for its 503, then
#            fetches the click.
#
# What Chromium sends is taken from nginx's access_log (Sec-Purpose,
# Sec-Fetch-*, Cookie, and what nginx answered); what it got and made of
# it, from the DevTools Network and Preload domains.  prove -v prints a
# summary per case.  AFF_CHROMIUM_CASES=pf,lp runs only those cases.
#
# Found while writing this (Chromium 156): speculation rules work in
# headless mode over plain http on 127.0.0.1 and localhost (a list rule
# is "immediate": no hover or user activation needed), but a DevTools
# client attached straight to a page target disables prerendering
# (prerenderStatus PrerenderingDisabledByDevTools, crbug.com/1440085;
# Page.setPrerenderingAllowed does not lift it): Chromium.pm attaches
# through the tab target, as Puppeteer does.  A conservative rule's link
# is a candidate only once Chromium matched it (Preload
# preloadingAttemptSourcesUpdated): a press before that starts nothing.
# Prerender first runs a prefetch of the URL (Sec-Purpose:
# prefetch;prerender), which the prerender then uses.  Speculation Rules
# requests carry Sec-Fetch-Site: none and no Sec-Fetch-User (and
# Sec-Speculation-Tags: null same-site); <link rel=prefetch> is no-cors,
# Sec-Fetch-Dest: empty, Sec-Fetch-Site as the page.  Both follow a
# redirect they get to the shop ahead of time: the shop's page is fetched
# with the bot click's click_id.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use Aff;
use Chromium;

my $BIN = Chromium::binary();
plan skip_all => 'no chromium binary (scripts/deps.sh test installs the'
    . ' chromium package)' unless $BIN;

my $SECRET = 'chromium-test-secret-0123456789abcdefghijk';
my $TIMEOUT = 30;    # generous: 2 cores shared by several test runs

# [name, speculation: prefetch | prerender | link, location, the page
# with the link: on the shop's own origin or on another site (the
# creator's link-in-bio page: http://localhost:PORT2 vs 127.0.0.1:PORT)]
my @CASES = (
    [pf    => 'prefetch',  'go',  'same'],
    [pr    => 'prerender', 'go',  'same'],
    [pfoff => 'prefetch',  'off', 'same'],
    [proff => 'prerender', 'off', 'same'],
    [lp    => 'link',      'go',  'same'],
    [xpf   => 'prefetch',  'go',  'cross'],
    [xpr   => 'prerender', 'go',  'cross'],
    [xpfoff => 'prefetch', 'off', 'cross'],
    # Chromium refuses to prerender another site, but the click uses the
    # prefetch it made ahead of the prerender
    [xproff => 'prerender', 'off', 'cross'],
    [xlp   => 'link',      'go',  'cross'],
    # "conservative": the rule fires on pointerdown, the navigation on
    # pointerup, while the prefetch may still be on its way
    [dc    => 'prefetch',  'go',  'same', 'conservative'],
    [dcr   => 'prerender', 'go',  'same', 'conservative'],
    [dcoff => 'prefetch',  'off', 'same', 'conservative'],
    # a site-wide "expires" adds "Cache-Control: max-age=3600" to the
    # redirect: no-store must still win, or the prefetched 302 is reused
    [lpexp => 'link',      'exp', 'same'],
    # a quick click: the prefetch may not even leave
    [dq    => 'prefetch',  'go',  'same', 'conservative', 'quick'],
);
# AFF_CHROMIUM_CASES=pf,lp: only these (when looking into one)
if (my $only = $ENV{AFF_CHROMIUM_CASES}) {
    my %only = map { $_ => 1 } split /,/, $only;
    @CASES = grep { $only{ $_->[0] } } @CASES;
}

my $LOG = join ',', map { qq{"$_->[0]":"$_->[1]"} }
    [t => '$msec'], [uri => '$request_uri'], [status => '$status'],
    [purpose => '$http_sec_purpose'], [old_purpose => '$http_purpose'],
    [mode => '$http_sec_fetch_mode'], [dest => '$http_sec_fetch_dest'],
    [site => '$http_sec_fetch_site'], [user => '$http_sec_fetch_user'],
    [cookie => '$http_cookie'], [referer => '$http_referer'],
    [ua => '$http_user_agent'], [set_cookie => '$sent_http_set_cookie'],
    [location => '$sent_http_location'],
    [tags => '$http_sec_speculation_tags'];

my %files = (
    'secret'          => "$SECRET\n",
    'links.tsv'       => join('', map {
        "$_->[0]\thttp://127.0.0.1:%%PORT%%/shop/item.html\tanna\tc-$_->[0]\n"
    } @CASES),
    'html/shop/item.html' => "<!doctype html><title>item</title>"
        . "<p>the shop's page</p>\n",
);
for my $c (@CASES) {
    my ($name, $kind, $loc, $from, $eager) = @$c;
    my $href = $from eq 'same' ? "/$loc/$name"
                               : "http://127.0.0.1:%%PORT%%/$loc/$name";
    # a list rule is "immediate"; a document rule picks the page's links
    my $rule = $eager
        ? { source => 'document', where => { href_matches => "/$loc/*" },
            eagerness => $eager }
        : { source => 'list', urls => [$href] };
    $rule = JSON::PP->new->canonical->encode({ $kind => [$rule] });
    my $head = $kind eq 'link'
        ? qq{<link rel="prefetch" href="$href">}
        : qq{<script type="speculationrules">}
          . qq{$rule</script>};
    $files{"html/c-$name.html"} = "<!doctype html><html><head>"
        . "<title>$name</title>$head</head><body>"
        . qq{<a id="go" href="$href" }
        . qq{style="display:block;height:80px;font-size:40px">}
        . "buy what anna wears</a></body></html>\n";
    $files{"html/thanks-$name.html"} = "<!doctype html><title>thanks</title>"
        . qq{<img src="/px.gif?order_id=o-$name&amount=19.90&currency=EUR"}
        . qq{ width="1" height="1" alt="">\n};
}

my $t = Aff->new(
    workers => 1,
    http => Aff::std_http(
        http => "    affiliate_secret %%DIR%%/secret;\n"
              . "    affiliate_cookie aff;\n"
              . "    log_format chromium escape=json '{$LOG}';\n",
        server => <<'EOF'),
        access_log %%DIR%%/access.log chromium;
        root %%DIR%%/html;
        location /exp/ { affiliate_redirect zone=aff; expires 1h; }
        location /off/ { affiliate_redirect zone=aff;
                         affiliate_speculative off; }
        location = /px.gif { affiliate_conversion zone=aff format=gif; }
    }

    # another site: the creator's page
    server {
        listen 127.0.0.1:%%PORT2%%;
        access_log %%DIR%%/access.log chromium;
        root %%DIR%%/html;
EOF
    files => \%files,
);
$t->start;
my $BASE = 'http://127.0.0.1:' . $t->port;
my $OTHER = 'http://localhost:' . $t->port2;

my $JSON = JSON::PP->new->utf8;

# nginx's access_log, one entry per request, in order
sub hits {
    my ($re) = @_;
    my $text = $t->read_file('access.log') // '';
    $text =~ s/[^\n]+\z//;    # a line still being written
    my @all = map { $JSON->decode($_) } grep { length } split /\n/, $text;
    return grep { $_->{uri} =~ $re } @all;
}

sub recs {
    my ($pred) = @_;
    return grep { $pred->($_) } $t->records('aff.log');
}

# the responses Chromium got for URLs matching $re (DevTools Network
# events: a redirect is in the next request's redirectResponse); header
# names lower-cased
sub responses {
    my ($p, $re) = @_;
    my @r;
    for my $e ($p->events) {
        my $x = $e->{method} eq 'Network.responseReceived'
            ? $e->{params}{response}
            : $e->{method} eq 'Network.requestWillBeSent'
            ? $e->{params}{redirectResponse} : undef;
        next unless $x && $x->{url} =~ $re;
        my %h = map { lc($_) => $x->{headers}{$_} } keys %{ $x->{headers} };
        push @r, { status => $x->{status}, headers => \%h };
    }
    return @r;
}

sub show {
    my ($h) = @_;
    return join ' ', map { "$_=" . ($h->{$_} eq '' ? '-' : $h->{$_}) }
        qw(status purpose mode dest site user);
}

my %summary;
my $p_events;

for my $c (@CASES) {
    # a case that dies (the browser went away, a timeout) fails, and the
    # next one runs: its browser is killed when $br goes out of scope
    eval { run_case(@$c); 1 } or fail("$c->[0]: " . ($@ =~ s/\s+\z//r));
}

sub run_case {
    my ($name, $kind, $loc, $from, $eager, $quick) = @_;
    my $ahead = ($eager // 'immediate') eq 'immediate';
    my $origin = $from eq 'same' ? $BASE : $OTHER;
    my $declined = $loc ne 'off';
    # Chromium prerenders same-site pages only (but fetches a cross-site
    # one ahead all the same)
    my $prerenders = $kind eq 'prerender' && $from eq 'same' && !$declined;
    my $people = $loc ne 'off';
    my $path = qr{^/$loc/$name$};
    my $shop = qr{^/shop/item\.html\?click_id=[^&]*&utm_source=anna&
                  .*=c-$name\b}x;
    my $pev = $kind eq 'prefetch' ? 'Preload.prefetchStatusUpdated'
                                  : 'Preload.prerenderStatusUpdated';
    my $t0 = time;
    my (%tm, $verdict, $used);

    # Chromium's verdict on the speculation: the first event with one of
    # these statuses
    my $FINAL = qr/^(?:Ready|Failure)$/;
    my $status = sub {
        my ($re, $ev) = @_;
        my ($e) = grep { $_->{params}{status} =~ $re }
            $p_events->($ev // $pev);
        return $e ? $e->{params} : undef;
    };

    my $br = Chromium->new(timeout => $TIMEOUT);
    $tm{start} = time - $t0;
    my $p = $br->page;
    $p_events = sub { $p->events(@_) };
    $p->call('Preload.enable');
    $p->call('Network.enable');
    $p->navigate("$origin/c-$name.html");
    $tm{page} = time - $t0;

    # 1. what Chromium does ahead of time
    if (!$ahead) {
        # the link is a candidate once Chromium matched it to the rule:
        # a press before that starts nothing
        ok($br->wait_for(sub {
            grep { $_->{key}{url} =~ m{/$loc/$name$} }
            map { @{ $_->{params}{preloadingAttemptSources} } }
                $p->events('Preload.preloadingAttemptSourcesUpdated');
        }, $TIMEOUT), "$name: Chromium matched the link to the rule");
        is(scalar(() = hits($path)), 0,
            "$name: $eager: nothing fetched before the press");
    } else {
        ok($br->wait_for(sub { hits($path) >= 1 }, $TIMEOUT),
            "$name: the speculative request reaches nginx")
            or diag explain [$p->events('Preload.preloadEnabledStateUpdated')];
        $tm{speculative} = time - $t0;
        if ($kind eq 'link') {
            # no Preload events for <link rel=prefetch>: its end is the
            # 503 when declined, else the redirect followed to the shop
            ok($declined
               ? $br->wait_for(sub { responses($p, qr{/\Q$name\E$}) },
                               $TIMEOUT)
               : $br->wait_for(sub { hits($shop) >= 1 }, $TIMEOUT),
                "$name: the prefetch got its answer");
        } else {
            ok($br->wait_for(sub { $verdict = $status->($FINAL) },
                $TIMEOUT), "$name: Chromium finished the $kind");
        }
        $tm{verdict} = time - $t0;
        # (a prerender refused for another site may end before its
        # prefetch followed the redirect)
        my @ahead;
        $br->wait_for(sub {
            @ahead = grep { $_->{purpose} ne '' } hits($shop);
        }, $TIMEOUT) unless $declined;
        is(scalar @ahead, $declined ? 0 : 1,
            "$name: the shop's page fetched ahead of time: "
            . ($declined ? 'no' : 'once'));
        if ($kind eq 'prerender') {
            my $n = $prerenders ? 1 : 0;
            ok($br->wait_for(sub { $p->prerendered == $n }, $TIMEOUT),
                "$name: prerendered pages waiting: $n");
        }
    }

    # 2. the follower clicks; with a conservative rule, slowly: the
    # button is released once Chromium decided on the speculation (or
    # quickly: the prefetch, if any, races the navigation)
    my $first = $p->current->{target};
    $p->press('#go');
    if (!$ahead && !$quick) {
        ok($br->wait_for(sub { hits($path) >= 1 }, $TIMEOUT),
            "$name: the press sent the speculative request");
        $tm{speculative} = time - $t0;
        # and held until Chromium's verdict: released earlier (a slow
        # server, the sanitizer build), the navigation takes over the
        # prefetch in flight and Chromium never reports it Ready
        $br->wait_for(sub { $verdict = $status->($FINAL) }, $TIMEOUT)
            if $kind ne 'link';
    }
    $p->release;
    my $url;
    ok($br->wait_for(sub { ($url = $p->url // '') =~ m{/shop/item\.html\?} },
        $TIMEOUT), "$name: the follower is on the shop's page")
        or diag "url: " . ($url // 'undef');
    $tm{landed} = time - $t0;
    my $landed_id = Aff::click_id($url);
    like($landed_id, qr/^$Aff::ULID$/, "$name: with a click_id");

    if ($quick) {
        # whatever Chromium made of the race, for the report
        $br->wait_for(sub { $verdict = $status->($FINAL) },
            5);
    } elsif ($kind ne 'link') {
        ok($br->wait_for(sub { $verdict = $status->($FINAL) },
            $TIMEOUT), "$name: Chromium's $kind finished") unless $verdict;
        $verdict //= {};
        my $fails = $declined || ($kind eq 'prerender' && !$prerenders);
        is($verdict->{status}, $fails ? 'Failure' : 'Ready',
            "$name: Chromium's $kind: " . ($fails ? 'failed' : 'ready'))
            or diag explain $verdict;
        if ($kind eq 'prefetch') {
            is($verdict->{prefetchStatus},
                $declined ? 'PrefetchFailedNon2XX'
                          : 'PrefetchSuccessfulButNotUsed',
                "$name: prefetchStatus");
        }
        if (!$declined && !$prerenders) {
            # a prefetch, or the prefetch ahead of a prerender refused
            ok($br->wait_for(sub {
                $used = $status->(qr/^Success$/,
                    'Preload.prefetchStatusUpdated');
            }, $TIMEOUT), "$name: Chromium used the prefetch for the click");
            is($used && $used->{prefetchStatus}, 'PrefetchResponseUsed',
                "$name: prefetchStatus PrefetchResponseUsed");
        }
    }

    # 3. the thank-you page and its pixel; its request is also the
    # barrier after which a click that reached nginx would be logged
    $p->navigate("$BASE/thanks-$name.html");
    my ($conv);
    ok($t->wait_for(sub {
        ($conv) = recs(sub { ($_[0]{order_id} // '') eq "o-$name" });
        $conv;
    }, $TIMEOUT), "$name: a conversion record from the pixel");
    $tm{converted} = time - $t0;
    $conv //= {};
    my $px;
    $t->wait_for(sub { ($px) = hits(qr{^/px\.gif\?order_id=o-$name&}) },
        $TIMEOUT);
    $px //= {};
    is($px->{status}, 200, "$name: pixel 200");
    is("$px->{mode}/$px->{dest}/$px->{site}", 'no-cors/image/same-origin',
        "$name: the pixel is a same-origin image");
    my $cookies = $br->call('Storage.getCookies')->{cookies};
    my ($cookie) = grep { $_->{name} eq 'aff' } @$cookies;

    # what reached nginx: speculative requests (with Sec-Purpose) and the
    # click; a record for each
    my @all = hits($path);
    my @spec = grep { $_->{purpose} ne '' } @all;
    my @clicks = grep { $_->{purpose} eq '' } @all;
    my @recs;
    ok($t->wait_for(sub {
        @recs = recs(sub { ($_[0]{link} // '') eq $name });
        @recs >= @all;
    }, $TIMEOUT), "$name: a record for each request");
    my @bots = grep { $_->{bot} } @recs;
    my @human = grep { !$_->{bot} } @recs;
    if ($quick) {
        ok(@spec <= 1, "$name: at most one speculative request");
    } else {
        ok(@spec >= 1, "$name: a speculative request");
    }
    is(scalar @bots, scalar @spec, "$name: a bot record for each");

    my $purpose = $kind eq 'prerender' ? 'prefetch;prerender' : 'prefetch';
    # a click from the other site is cross-site (127.0.0.1 and localhost
    # are different sites); Speculation Rules requests say "none"
    my $click_site = $from eq 'same' ? 'same-origin' : 'cross-site';
    my ($mode, $dest, $site) = $kind eq 'link'
        ? ('no-cors', 'empty', $click_site)
        : ('navigate', 'document', 'none');
    my $spec_status = $declined ? 503 : 302;
    for my $i (0 .. $#spec) {
        my ($h, $r) = ($spec[$i], $bots[$i] // {});
        my $w = "$name: speculative request " . ($i + 1);
        is($h->{purpose}, $purpose, "$w: Sec-Purpose $purpose");
        is($h->{mode}, $mode, "$w: Sec-Fetch-Mode $mode");
        is($h->{dest}, $dest, "$w: Sec-Fetch-Dest $dest");
        is($h->{site}, $site, "$w: Sec-Fetch-Site $site");
        is($h->{user}, '', "$w: no Sec-Fetch-User");
        is($h->{cookie}, '', "$w: no cookie to send yet");
        is($h->{status}, $spec_status, "$w: status $spec_status");
        is($h->{set_cookie}, '', "$w: no cookie for a bot");
        is($r->{bot_reason}, 'prefetch', "$w: bot_reason prefetch");
        is($r->{status}, $h->{status}, "$w: record status as sent");
        if ($declined) {
            is($r->{click_id}, undef, "$w: declined: no click id");
            is($h->{location}, '', "$w: declined: no Location");
        } else {
            is(Aff::click_id($h->{location}), $r->{click_id},
                "$w: Location with the bot record's click_id");
        }
    }

    # what Chromium got (nginx's $sent_http_cache_control is empty: the
    # module adds Cache-Control as a plain header)
    my @got = responses($p, qr{^\Q$BASE\E/$loc/$name$});
    ok((grep { $_->{status} == $spec_status } @got),
        "$name: Chromium got the $spec_status") if @spec;
    is(scalar(grep { ($_->{headers}{'cache-control'} // '') !~
        /(?:^|, )no-store\b/m } @got), 0,
        "$name: every answer Chromium got was no-store");

    my @shop = hits($shop);
    my @shop_ahead = grep { $_->{purpose} ne '' } @shop;
    my @shop_real = grep { $_->{purpose} eq '' } @shop;
    is(scalar @shop_ahead, $declined ? 0 : 1,
        "$name: the shop's page fetched ahead: " . ($declined ? 0 : 1));

    if ($people) {
        is(scalar @clicks, 1, "$name: the click reached nginx");
        my $h = $clicks[0] // {};
        is($h->{mode}, 'navigate', "$name: click: Sec-Fetch-Mode navigate");
        is($h->{site}, $click_site, "$name: click: Sec-Fetch-Site"
            . " $click_site");
        is($h->{user}, '?1', "$name: click: Sec-Fetch-User ?1");
        is($h->{status}, 302, "$name: click: 302");
        like($h->{set_cookie}, qr/^aff=$Aff::ULID\./,
            "$name: click: Set-Cookie");
        is(scalar @human, 1, "$name: one click by a person");
        my $r = $human[0] // {};
        is($r->{click_id}, Aff::click_id($h->{location}),
            "$name: the person's click id is in the Location");
        is($landed_id, $r->{click_id},
            "$name: the follower landed with the person's click id");
        is($r->{cookie}, 'set', "$name: record: cookie set");
        ok($r->{unique}, "$name: record: a unique click");
        # Chromium's default referrer policy: only the origin cross-site
        is($r->{referer}, $from eq 'same' ? "$BASE/c-$name.html" : "$OTHER/",
            "$name: record: Referer");
        is(scalar @shop_real, 1, "$name: the shop's page fetched for real");
        ok($cookie, "$name: Chromium kept the cookie")
            and like($cookie->{value}, qr/^\Q$r->{click_id}\E\./,
                "$name: cookie holds the click id");
        is($cookie && $cookie->{sameSite}, 'Lax', "$name: SameSite=Lax");
        like($px->{cookie}, qr/(?:^|; )aff=\Q$r->{click_id}\E\./,
            "$name: the pixel request carries the cookie");
        ok($conv->{attributed}, "$name: the conversion is attributed");
        is($conv->{click_id}, $r->{click_id},
            "$name: ... to the person's click");
        is($conv->{creator}, 'anna', "$name: ... creator");
        is($conv->{campaign}, "c-$name", "$name: ... campaign");
        is($conv->{source}, 'pixel', "$name: source pixel");
        $summary{$name}{click} = show($h);
        $summary{$name}{click} .= sprintf ' (%.0f ms after the first'
            . ' speculative one)', 1000 * ($h->{t} - $spec[0]{t}) if @spec;
    } else {
        # affiliate_speculative off: what the module exists to prevent
        is(scalar @clicks, 0, "$name: the click never reached nginx");
        is(scalar @shop_real, 0, "$name: nor did the shop's page");
        is(scalar @human, 0, "$name: no click by a person recorded");
        is($landed_id, ($bots[0] // {})->{click_id},
            "$name: the follower landed with the bot record's click id");
        ok(!$cookie, "$name: no attribution cookie");
        is($px->{cookie}, '', "$name: the pixel carries no cookie");
        ok(defined $conv->{attributed} && !$conv->{attributed},
            "$name: the conversion is not attributed");
        is($conv->{click_id}, undef, "$name: no click id in it");
        if ($prerenders) {
            isnt($p->current->{target}, $first,
                "$name: the click activated the prerendered page");
        }
        $summary{$name}{click} = 'none';
    }

    $br->close;
    $tm{closed} = time - $t0;
    $summary{$name}{speculative} = [map { show($_) } @spec];
    $summary{$name}{ahead} = [map { show($_) } @shop_ahead];
    $summary{$name}{verdict} = $kind eq 'link' ? 'n/a'
        : join ' ', map { $_ ? "$_->{status}"
            . ($_->{prefetchStatus} // $_->{prerenderStatus}
               ? ' ' . ($_->{prefetchStatus} // $_->{prerenderStatus}) : '')
            : () } $verdict, $used;
    $summary{$name}{times} = join ' ', map { sprintf '%s=%.2fs', $_, $tm{$_} }
        sort { $tm{$a} <=> $tm{$b} } keys %tm;
    $summary{$name}{ua} = $spec[0]{ua} if @spec;
    $summary{$name}{tags} = $spec[0]{tags} if @spec;
    $summary{$name}{cc} = join ' | ', map {
        $_->{headers}{'cache-control'} =~ s/\n/ + /gr } @got;
}

my $st = $t->status_json;
my $cnt = $st->{counters} // $st;
my $people = grep { $_->[2] ne 'off' } @CASES;
is($cnt->{clicks}, $people, "status: $people clicks by people");
my $requests = () = hits(qr{^/(?:go|off|exp)/});
is($cnt->{bot_clicks}, $requests - $people,
    'status: every other request a bot click');
is($cnt->{conversions}, scalar @CASES, 'status: a conversion per case');

for my $c (@CASES) {
    my $s = $summary{$c->[0]};
    note "$c->[0]: speculative: " . join(' | ', @{ $s->{speculative} || [] });
    note "$c->[0]: ahead to the shop: " . join(' | ', @{ $s->{ahead} || [] });
    note "$c->[0]: Chromium: $s->{verdict}; click: $s->{click}; "
        . "Sec-Speculation-Tags: " . ($s->{tags} || '-');
    note "$c->[0]: Cache-Control Chromium got: " . ($s->{cc} // '-');
    note "$c->[0]: $s->{times}";
}
note 'User-Agent: ' . ($summary{pf}{ua} // '?');

$t->stop;
done_testing;
