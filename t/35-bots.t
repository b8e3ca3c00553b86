# Bots and prefetches: link-preview and crawler User-Agents (built-in list
# and affiliate_bot_ua), Sec-Purpose / Purpose / X-Moz / X-Purpose
# prefetches, HEAD, no User-Agent.  They get the same redirect, no cookie;
# the record has bot:true and the reason; bot_clicks counts them, clicks
# and unique_clicks do not.  curl is not a bot.  A very long User-Agent is
# answered normally.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
my $SECRET = 'bots-test-secret-0123456789abcdefghijklmn';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_cookie aff;
    affiliate_bot_ua "^MyMonitor/";
    affiliate_bot_ua "uptime-?checker";

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        large_client_header_buffers 4 32k;

        # speculative requests get the redirect here, as any bot does;
        # their default 503 is tested by t/40-speculative.t
        location /go/ { affiliate_redirect zone=aff;
                        affiliate_speculative off; }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $t = Aff->new(
    http  => $http,
    files => {
        'links.tsv' => "a\thttps://shop.example/a\tanna\tsummer\n",
        'secret'    => "$SECRET\n",
    },
);
$t->start;

my $ULID = $Aff::ULID;
my $LOC = 'https://shop.example/a?click_id=CLICK&utm_source=anna'
        . '&utm_medium=affiliate&utm_campaign=summer';

my $s0 = $t->status_json;
my ($nbot, $nhuman) = (0, 0);
my %human_ua;    # distinct User-Agents of the human clicks (all on link a)

sub rec_of {
    my ($id) = @_;
    my $rec;
    $t->wait_for(sub {
        ($rec) = grep { ($_->{click_id} // '') eq $id } $t->records('aff.log');
        $rec;
    }, 10);
    return $rec;
}

# headers: arrayref of pairs (no User-Agent unless given)
sub click {
    my ($hdrs, %o) = @_;
    my $r = $t->get('/go/a', $hdrs, %o);
    my $l = $r->{headers}{location} // '';
    my $id = Aff::click_id($l);
    (my $norm = $l) =~ s/([?&]click_id=)$ULID(?=[&#]|$)/${1}CLICK/;
    return ($r, $norm, $id);
}

sub bot_ok {
    my ($hdrs, $reason, $name, %o) = @_;
    my ($r, $norm, $id) = click($hdrs, %o);
    is($r->{status}, 302, "$name: redirect still given (302)");
    is($norm, $LOC, "$name: same Location");
    ok(!defined $r->{headers}{'set-cookie'}, "$name: no Set-Cookie");
    my $rec = rec_of($id // 'none');
    ok($rec, "$name: recorded") or return;
    is($rec->{type}, 'click', "$name: type click");
    ok(JSON::PP::is_bool($rec->{bot}) && $rec->{bot}, "$name: bot true");
    is($rec->{bot_reason}, $reason, "$name: bot_reason $reason");
    ok(!defined $rec->{unique}, "$name: unique null");
    ok(!defined $rec->{cookie}, "$name: cookie null");
    $nbot++;
}

sub human_ok {
    my ($hdrs, $name) = @_;
    my ($r, $norm, $id) = click($hdrs);
    is($r->{status}, 302, "$name: 302");
    is($norm, $LOC, "$name: Location");
    like($r->{headers}{'set-cookie'} // '', qr/^aff=/, "$name: Set-Cookie");
    my $rec = rec_of($id // 'none');
    ok($rec, "$name: recorded") or return;
    ok(JSON::PP::is_bool($rec->{bot}) && !$rec->{bot}, "$name: bot false");
    ok(!defined $rec->{bot_reason},
        "$name: bot_reason null");
    is($rec->{cookie}, 'set', "$name: cookie set");
    my ($ua) = map { $_->[1] } grep { lc $_->[0] eq 'user-agent' } @$hdrs;
    ok(JSON::PP::is_bool($rec->{unique})
        && ($rec->{unique} ? 1 : 0) == ($human_ua{$ua} ? 0 : 1),
        "$name: unique " . ($human_ua{$ua} ? 'false' : 'true'));
    $human_ua{$ua}++;
    $nhuman++;
}

# --- not bots ------------------------------------------------------------------

human_ok([['User-Agent' => $UA]], 'Firefox');
human_ok([['User-Agent' => 'curl/8']], 'curl/8 is not a bot');
human_ok([['User-Agent' => 'curl/8.5.0']], 'curl/8.5.0 is not a bot');
human_ok([['User-Agent' => 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like '
    . 'Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 '
    . 'Mobile/15E148 Safari/604.1']], 'Safari on iPhone');
human_ok([['User-Agent' => 'xMyMonitor/1.0']], 'custom ^pattern not at start');
human_ok([['User-Agent' => $UA], ['Purpose' => 'other']], 'Purpose: other');
human_ok([['User-Agent' => $UA], ['X-Moz' => 'something']], 'X-Moz: other');

# --- User-Agents ---------------------------------------------------------------

my @uas = (
    'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
    'Facebot',
    'Twitterbot/1.0',
    'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
    'Slack-ImgProxy (+https://api.slack.com/robots)',
    'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)',
    'TelegramBot (like TwitterBot)',
    'WhatsApp/2.23.20.0 A',
    'LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)',
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 '
        . '(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; '
        . '+http://www.apple.com/go/applebot)',
    'Pinterest/0.2 (+https://www.pinterest.com/bot.html)',
    'Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)',
    'Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5',
    'Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)',
    'Iframely/1.3.1 (+https://iframely.com/docs/about)',
    'Mozilla/5.0 (X11; Linux x86_64) Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/)',
    'Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)',
    'DuckDuckBot/1.0; (+http://duckduckgo.com/duckduckbot.html)',
    'Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)',
    'ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)',
    'SomethingElse bot/1.0',
    'AcmeCrawler 2.0',
    'my-spider',
    # case-insensitive
    'FACEBOOKEXTERNALHIT/1.1',
    'twitterbot/1.0',
    'WHATSAPP/2',
    # affiliate_bot_ua
    'MyMonitor/2.0',
    'mymonitor/2.0 (case-insensitive)',
    'Acme Uptime-Checker 1',
    'uptimechecker',
);
for my $ua (@uas) {
    bot_ok([['User-Agent' => $ua]], 'ua', "UA '$ua'");
}

# --- prefetch, HEAD, no User-Agent ------------------------------------------------

bot_ok([['User-Agent' => $UA], ['Sec-Purpose' => 'prefetch']], 'prefetch',
    'Sec-Purpose: prefetch');
bot_ok([['User-Agent' => $UA], ['Sec-Purpose' => 'prefetch;prerender']],
    'prefetch', 'Sec-Purpose: prefetch;prerender');
bot_ok([['User-Agent' => $UA], ['Sec-Purpose' => 'prefetch; anonymous-client-ip']],
    'prefetch', 'Sec-Purpose: prefetch; anonymous-client-ip');
bot_ok([['User-Agent' => $UA], ['Purpose' => 'prefetch']], 'prefetch',
    'Purpose: prefetch');
bot_ok([['User-Agent' => $UA], ['X-Moz' => 'prefetch']], 'prefetch',
    'X-Moz: prefetch');
bot_ok([['User-Agent' => $UA], ['X-Purpose' => 'preview']], 'prefetch',
    'X-Purpose: preview');
bot_ok([['User-Agent' => $UA]], 'head', 'HEAD', method => 'HEAD');
bot_ok([['User-Agent' => undef]], 'no_ua', 'no User-Agent');

# --- long User-Agents ---------------------------------------------------------------

for my $c (
    ['8 KB browser UA', 'Mozilla/5.0 ' . ('a' x 8192), 0],
    ['8 KB of one letter', 'b' x 8192, 0],
    ['8 KB of "bo"', 'bo' x 4096, 0],
    ['8 KB of "spide"', 'spide' x 1640, 0],
    ['8 KB of "Uptime-"', 'Uptime-' x 1170, 0],
    ['8 KB starting with Twitterbot', 'Twitterbot/1.0 ' . ('a' x 8192), 1],
) {
    my ($name, $ua, $is_bot) = @$c;
    my ($r, $norm, $id) = click([['User-Agent' => $ua]]);
    is($r->{status}, 302, "$name: 302");
    is($norm, $LOC, "$name: Location");
    my $rec = rec_of($id // 'none');
    ok($rec, "$name: recorded") or next;
    ok(JSON::PP::is_bool($rec->{bot}) && ($rec->{bot} ? 1 : 0) == $is_bot,
        "$name: bot " . ($is_bot ? 'true' : 'false'));
    if ($is_bot) {
        is($rec->{bot_reason}, 'ua', "$name: bot_reason ua");
        ok(!defined $r->{headers}{'set-cookie'}, "$name: no Set-Cookie");
        $nbot++;
    } else {
        like($r->{headers}{'set-cookie'} // '', qr/^aff=/, "$name: Set-Cookie");
        $human_ua{$ua}++;
        $nhuman++;
    }
}

# --- counters ---------------------------------------------------------------------

{
    my $s = $t->status_json;
    is($s->{bot_clicks} - ($s0->{bot_clicks} // 0), $nbot,
        "bot_clicks + $nbot");
    is($s->{clicks} - $s0->{clicks}, $nhuman,
        "clicks + $nhuman: bots are not counted");
    # all clicks are from 127.0.0.1 on link a: one unique click per
    # distinct human User-Agent
    my $nu = keys %human_ua;
    is($s->{unique_clicks} - ($s0->{unique_clicks} // 0), $nu,
        "unique_clicks + $nu: bots are not counted");
    my @recs = $t->records('aff.log');
    is(scalar(grep { $_->{bot} } @recs), $nbot, "$nbot bot records");
    is(scalar @recs, $nbot + $nhuman, 'one record per click');
}

# only the first 512 bytes of the User-Agent are matched (docs/directives.md):
# a bot name far into a long header is not seen, and costs nothing to look for
{
    my $before = $t->status_json->{bot_clicks};
    for my $c (['8 KB ending with Twitterbot', ('a' x 8192) . ' Twitterbot/1.0'],
               ['8 KB ending with uptimechecker (affiliate_bot_ua)', ('y' x 8192) . ' uptimechecker'],
               ['bot name at byte 500', ('z' x 499) . ' Twitterbot/1.0' . ('a' x 8000)])
    {
        my ($name, $ua) = @$c;
        my $seen = $name =~ /byte 500/ ? 1 : 0;
        my ($r, $norm, $id) = click([['User-Agent' => $ua]]);
        is($r->{status}, 302, "$name: 302");
        is($norm, $LOC, "$name: Location");
        my $rec = rec_of($id // 'none');
        ok($rec, "$name: recorded");
        is($rec && $rec->{bot} ? 1 : 0, $seen, "$name: bot " . ($seen ? 'true' : 'false'));
        is(defined $r->{headers}{'set-cookie'} ? 1 : 0, 1 - $seen, "$name: Set-Cookie only for a person");
    }
    is($t->status_json->{bot_clicks}, $before + 1, 'bot_clicks + 1');
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

# nginx -t: a bad affiliate_bot_ua regex, and its context
{
    my ($rc, $out) = $t->conf_test(<<'EOF');
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_bot_ua "(unclosed";
    server { listen 127.0.0.1:%%PORT%%; location /go/ { affiliate_redirect zone=aff; } }
EOF
    isnt($rc, 0, 'nginx -t refuses a bad affiliate_bot_ua regex');
    ($rc, $out) = $t->conf_test(<<'EOF');
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    server { listen 127.0.0.1:%%PORT%%;
             location /go/ { affiliate_redirect zone=aff; affiliate_bot_ua x; } }
EOF
    isnt($rc, 0, 'nginx -t refuses affiliate_bot_ua in a location');
}

done_testing;
