# Unique clicks (client address + User-Agent + link within affiliate_unique)
# and affiliate_anonymize_ip (/24 for IPv4, /48 for IPv6, applied after
# the unique check).  Client addresses come from X-Forwarded-For (realip).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use Aff;

my $UA1 = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';
my $UA2 = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/2.0';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /go/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/go/r/([0-9]+)$" https://shop.example/r/$1
                           creator=r campaign=r;
        }
        location /anon/ {
            affiliate_redirect zone=aff;
            affiliate_anonymize_ip on;
        }
        location /land/ {
            affiliate_capture zone=aff creator=ref;
            return 200 "page\n";
        }
        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $links = "a\thttps://shop.example/a\tanna\tsummer\n"
          . "b\thttps://shop.example/b\tbob\twinter\n"
          . "c\thttps://shop.example/c\tcarol\tspring\n";

my $t = Aff->new(http => $http, files => { 'links.tsv' => $links });
$t->start;

my $s0 = $t->status_json;
my ($nclicks, $nunique) = (0, 0);

sub rec_of {
    my ($t, $id) = @_;
    my $rec;
    $t->wait_for(sub {
        ($rec) = grep { ($_->{click_id} // '') eq $id } $t->records('aff.log');
        $rec;
    }, 10);
    return $rec;
}

sub click {
    my ($path, $ip, $ua, $unique, $want_ip, %o) = @_;
    my $u = $o{t} // $t;
    my $name = "$path from $ip, " . ($ua eq $UA1 ? 'UA1' : 'UA2');
    $name = "$o{name}: $name" if $o{name};
    my $r = $u->get($path, [['User-Agent' => $ua],
                            ['X-Forwarded-For' => $ip]]);
    is($r->{status}, 302, "$name: 302");
    my $rec = rec_of($u, Aff::click_id($r->{headers}{location}) // 'none');
    ok($rec, "$name: recorded") or return;
    ok(JSON::PP::is_bool($rec->{unique})
        && ($rec->{unique} ? 1 : 0) == $unique,
        "$name: unique " . ($unique ? 'true' : 'false'))
        or diag "unique: " . ($rec->{unique} // 'null');
    is($rec->{ip}, $want_ip // $ip, "$name: ip " . ($want_ip // $ip));
    unless ($o{t}) { $nclicks++; $nunique += $unique }
    return $rec;
}

# --- unique ---------------------------------------------------------------------

click('/go/a', '198.51.100.7', $UA1, 1);
click('/go/a', '198.51.100.7', $UA1, 0);
click('/go/a', '198.51.100.7', $UA1, 0);
click('/go/a', '198.51.100.7', $UA2, 1);      # other User-Agent
click('/go/a', '198.51.100.7', $UA2, 0);
click('/go/b', '198.51.100.7', $UA1, 1);      # other link
click('/go/a', '198.51.100.8', $UA1, 1);      # other address
click('/go/a', '198.51.100.8', $UA1, 0);
click('/go/r/1', '198.51.100.7', $UA1, 1);    # rule URI is the link
click('/go/r/1', '198.51.100.7', $UA1, 0);
click('/go/r/2', '198.51.100.7', $UA1, 1);
click('/go/a', '2001:db8:1:2::5', $UA1, 1);   # IPv6, not anonymized
click('/go/a', '2001:db8:1:2::5', $UA1, 0);
click('/go/a', '2001:db8:1:2::6', $UA1, 1);

# --- anonymize_ip ----------------------------------------------------------------

click('/anon/c', '203.0.113.77', $UA1, 1, '203.0.113.0');
# same /24, another address: the unique check sees the full address
click('/anon/c', '203.0.113.78', $UA1, 1, '203.0.113.0');
click('/anon/c', '203.0.113.77', $UA1, 0, '203.0.113.0');
click('/anon/c', '203.0.113.78', $UA1, 0, '203.0.113.0');
click('/anon/c', '203.0.113.255', $UA1, 1, '203.0.113.0');
click('/anon/c', '10.1.2.3', $UA1, 1, '10.1.2.0');
click('/anon/c', '2001:db8:1:2::5', $UA1, 1, '2001:db8:1::');
click('/anon/c', '2001:db8:1:3::5', $UA1, 1, '2001:db8:1::');
click('/anon/c', '2001:db8:1:2::5', $UA1, 0, '2001:db8:1::');
click('/anon/c', '2001:db8:abcd:12:ff::1', $UA1, 1, '2001:db8:abcd::');
click('/anon/c', '2001:db8:0:1::1', $UA1, 1, '2001:db8::');
click('/anon/c', '2a00:1450:4001:81c:0:0:0:200e', $UA1, 1, '2a00:1450:4001::');
# the same client on a location without anonymize_ip: the full address
click('/go/c', '203.0.113.77', $UA2, 1, '203.0.113.77');

{
    my $s = $t->status_json;
    is($s->{clicks} - $s0->{clicks}, $nclicks, "clicks + $nclicks");
    is($s->{unique_clicks} - ($s0->{unique_clicks} // 0), $nunique,
        "unique_clicks + $nunique");
}

# --- landings -------------------------------------------------------------------

for my $c ([1, $UA1], [0, $UA1], [1, $UA2]) {
    my ($unique, $ua) = @$c;
    my $before = scalar $t->records('aff.log');
    my $r = $t->get('/land/x?ref=zed', [['User-Agent' => $ua],
                                         ['X-Forwarded-For' => '198.51.100.9']]);
    is($r->{status}, 200, 'landing: 200');
    $t->wait_for(sub { scalar($t->records('aff.log')) > $before }, 10);
    my $rec = ($t->records('aff.log'))[-1];
    is($rec->{type}, 'landing', 'landing: type');
    ok(JSON::PP::is_bool($rec->{unique})
        && ($rec->{unique} ? 1 : 0) == $unique,
        'landing: unique ' . ($unique ? 'true' : 'false'));
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

# --- affiliate_unique TIME -----------------------------------------------------------

{
    my $u = Aff->new(http => <<'EOF', files => { 'links.tsv' => $links });
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    affiliate_unique 2s;
    affiliate_anonymize_ip on;
    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        location /go/ { affiliate_redirect zone=aff; }
        location /full/ { affiliate_redirect zone=aff; affiliate_anonymize_ip off; }
    }
EOF
    $u->start;
    my %o = (t => $u, name => "unique 2s");
    click('/go/a', '198.51.100.7', $UA1, 1, '198.51.100.0', %o);
    click('/go/a', '198.51.100.7', $UA1, 0, '198.51.100.0', %o);
    sleep 3.5;
    click('/go/a', '198.51.100.7', $UA1, 1, '198.51.100.0', %o);
    click('/full/b', '198.51.100.7', $UA1, 1, '198.51.100.7',
        t => $u, name => 'anonymize_ip at http level, off in a location');
    $u->stop;
}

done_testing;
