# Configuration of the attribution directives: contexts, values, nginx -t
# errors; defaults seen at run time (cookie Max-Age = affiliate_window,
# 30d by default; max_age= overrides); zone sizes clicks=/unique=/orders=.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $SECRET = 'config-test-secret-0123456789abcdefghijklm';
my $KEY = 'config-postback-key-0123';

my %files = (
    'links.tsv'    => "a\thttps://shop.example/a\tanna\tsummer\n",
    'secret'       => "$SECRET\n",
    'postback.key' => "$KEY\n",
);

# http {} text with extra text at each level
sub conf {
    my (%o) = @_;
    my $h = $o{http} // '';
    my $s = $o{server} // '';
    my $l = $o{location} // '';
    my $zone = $o{zone} // 'affiliate_zone aff:16m;';
    return <<"EOF";
    $zone
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_secret %%DIR%%/secret;
    affiliate_postback_key %%DIR%%/postback.key;
    $h
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        $s
        location /go/ { affiliate_redirect zone=aff; $l }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF
}

my $t = Aff->new(http => conf(), files => \%files);

my ($rc, $out) = $t->conf_test;
is($rc, 0, 'base config passes') or diag $out;

my @good = (
    ['every http-level directive', http => join "\n",
        'affiliate_window 7d;', 'affiliate_unique 1h;',
        'affiliate_anonymize_ip on;', 'affiliate_attribution first_click;',
        'affiliate_allow_hosts shop.example .brand.example;',
        'affiliate_bot_ua "^MyMonitor/";', 'affiliate_bot_ua "foo";',
        'affiliate_cookie aff max_age=1d domain=shop.example path=/ secure '
            . 'httponly samesite=strict;'],
    ['affiliate_unique off', http => 'affiliate_unique off;'],
    ['affiliate_anonymize_ip off', http => 'affiliate_anonymize_ip off;'],
    ['server-level directives', server => join "\n",
        'affiliate_cookie aff samesite=none secure;',
        'affiliate_attribution last_click;', 'affiliate_anonymize_ip on;',
        'affiliate_allow_hosts shop.example;',
        'affiliate_rule "^/go/(.*)$" https://shop.example/$1 creator=a '
            . 'campaign=b;',
        'location /land/ { affiliate_capture zone=aff creator=ref '
            . 'campaign=c strip=on; return 200; }',
        'location = /conv { affiliate_conversion zone=aff; }',
        'location = /px { affiliate_conversion zone=aff format=gif; }',
        'location = /cj { affiliate_conversion zone=aff format=json; }'],
    ['location-level directives', location => join "\n",
        'affiliate_cookie aff if=$cookie_consent samesite=lax;',
        'affiliate_attribution first_click;', 'affiliate_anonymize_ip on;',
        'affiliate_allow_hosts .brand.example;',
        'affiliate_rule "^/go/(?<h>[a-z]+)/(.*)$" https://$h.brand.example/$2 '
            . 'creator=a campaign=b status=308;'],
    ['capture in a server', server => 'affiliate_capture zone=aff creator=ref;'],
    ['zone sizes', zone => 'affiliate_zone aff:16m clicks=2m unique=1m orders=1m;'],
);
for my $g (@good) {
    my ($name, %o) = @$g;
    my ($rc, $out) = $t->conf_test(conf(%o));
    is($rc, 0, "nginx -t passes: $name") or diag $out;
}

my @bad = (
    # contexts
    ['affiliate_secret in a server', server => 'affiliate_secret %%DIR%%/secret;'],
    ['affiliate_postback_key in a server',
        server => 'affiliate_postback_key %%DIR%%/postback.key;'],
    ['affiliate_window in a server', server => 'affiliate_window 1d;'],
    ['affiliate_window in a location', location => 'affiliate_window 1d;'],
    ['affiliate_unique in a server', server => 'affiliate_unique 1h;'],
    ['affiliate_bot_ua in a server', server => 'affiliate_bot_ua foo;'],
    ['affiliate_rule in http', http => 'affiliate_rule "^/x$" '
        . 'https://shop.example/ creator=a campaign=b;'],
    ['affiliate_capture in http', http => 'affiliate_capture zone=aff '
        . 'creator=ref;'],
    ['affiliate_conversion in a server', server => 'affiliate_conversion '
        . 'zone=aff;'],
    ['affiliate_conversion in http', http => 'affiliate_conversion zone=aff;'],
    # values
    ['affiliate_attribution middle_click',
        http => 'affiliate_attribution middle_click;'],
    ['affiliate_unique forever', http => 'affiliate_unique forever;'],
    ['affiliate_anonymize_ip maybe', http => 'affiliate_anonymize_ip maybe;'],
    ['affiliate_window abc', http => 'affiliate_window abc;'],
    ['affiliate_cookie samesite=sometimes',
        http => 'affiliate_cookie aff samesite=sometimes;'],
    ['affiliate_cookie max_age=xyz', http => 'affiliate_cookie aff max_age=xyz;'],
    ['affiliate_cookie unknown option', http => 'affiliate_cookie aff color=red;'],
    ['affiliate_cookie without a name', http => 'affiliate_cookie;'],
    ['affiliate_allow_hosts without hosts', http => 'affiliate_allow_hosts;'],
    ['affiliate_conversion format=xml',
        server => 'location = /c { affiliate_conversion zone=aff format=xml; }'],
    ['affiliate_conversion unknown zone',
        server => 'location = /c { affiliate_conversion zone=nope; }'],
    ['affiliate_capture unknown zone',
        server => 'location = /c { affiliate_capture zone=nope creator=r; }'],
    ['affiliate_capture without creator=',
        server => 'location = /c { affiliate_capture zone=aff; }'],
    ['affiliate_rule status=200', location => 'affiliate_rule "^/go/x$" '
        . 'https://shop.example/ creator=a campaign=b status=200;'],
    ['affiliate_rule variable host without allow_hosts',
        location => 'affiliate_rule "^/go/(.*)/(.*)$" https://$1/$2 '
        . 'creator=a campaign=b;'],
    ['affiliate_zone clicks=abc',
        zone => 'affiliate_zone aff:16m clicks=abc;'],
);
for my $b (@bad) {
    my ($name, %o) = @$b;
    my ($rc, $out) = $t->conf_test(conf(%o));
    isnt($rc, 0, "nginx -t refuses: $name");
    like($out, qr/\[emerg\]/, "$name: emerg") or diag $out;
}

# allow_hosts at http level covers a server's rule with a variable host
{
    my ($rc, $out) = $t->conf_test(conf(
        http => 'affiliate_allow_hosts shop.example;',
        location => 'affiliate_rule "^/go/(.*)/(.*)$" https://$1/$2 '
            . 'creator=a campaign=b;'));
    is($rc, 0, 'allow_hosts at http level covers a location rule') or diag $out;
}

# --- run time: cookie Max-Age defaults ------------------------------------------

sub max_age {
    my ($u, $path) = @_;
    my $r = $u->get($path, [['User-Agent' => $UA]]);
    my ($m) = ($r->{headers}{'set-cookie'} // '') =~ /; Max-Age=(\d+)/;
    return $m;
}

{
    my $u = Aff->new(files => \%files, http => conf(
        zone => 'affiliate_zone aff:16m clicks=2m unique=1m orders=1m;',
        http => 'affiliate_cookie aff;',
        server => 'location /m/ { affiliate_redirect zone=aff; '
                . 'affiliate_cookie aff max_age=1h; }'));
    $u->start;
    is(max_age($u, '/go/a'), 2592000, 'default Max-Age: 30d window');
    is(max_age($u, '/m/a'), 3600, 'max_age=1h');
    $u->wait_for(sub { scalar($u->records('aff.log')) >= 2 }, 10);
    is(scalar($u->records('aff.log')), 2, 'zone with clicks=/unique=/orders= '
        . 'records clicks');
    for my $rec ($u->records('aff.log')) {
        ok(exists $rec->{$_}, "click record has field $_")
            for qw(bot unique truncated seq);
        # absent means null: a link click by a person has no rule,
        # bot_reason nor conversion fields
        ok(!defined $rec->{$_}, "click record: $_ null")
            for qw(rule bot_reason source order_id amount currency
                   attributed duplicate);
    }
    my $s = $u->status_json;
    is($s->{clicks}, 2, 'status: clicks 2');
    # same address, User-Agent and link (slug a) in both locations
    is($s->{unique_clicks}, 1, 'status: unique_clicks 1');
    for my $k (qw(unique_clicks bot_clicks landings conversions
                  duplicate_orders rejected invalid_cookies unauthenticated
                  invalid_conversions))
    {
        ok(defined $s->{$k} && !ref $s->{$k} && $s->{$k} =~ /^\d+$/,
            "status has counter $k");
    }
    is(ref $s->{revenue}, 'HASH', 'status has a revenue object');
    is_deeply($s->{revenue}, {}, 'revenue is empty without conversions');
    $u->stop;
}
{
    my $u = Aff->new(files => \%files, http => conf(
        http => "affiliate_window 2h;\n    affiliate_cookie aff;"));
    $u->start;
    is(max_age($u, '/go/a'), 7200, 'Max-Age follows affiliate_window 2h');
    $u->stop;
}

done_testing;
