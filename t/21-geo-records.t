# Geo in click records and geo-targeted links: the record's country, region,
# city and asn come from the database; a link's per-country destination is
# chosen by the visitor's country, the default one otherwise; a lookup miss
# never fails the redirect and is counted in geo_misses.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $t = Aff->new(workers => 1, http => Aff::std_http() . <<'EOF2',
    affiliate_geoip %%DIR%%/const.mmdb;
    affiliate_geoip_source $http_x_geo;
EOF2
    files => { 'links.tsv' =>
        "w\thttps://shop.example/intl\tanna\tlaunch\t"
        . "geo=ZZ:https://zz.shop.example/x?a=1,DE:https://shop.example/de\n" });

system('perl', "$FindBin::Bin/lib/mkmmdb.pl", '--value', 'Lyon',
       'const', $t->dir . '/const.mmdb') == 0 or die "mkmmdb failed";
$t->start;

my $r = $t->get('/go/w', { 'X-Geo' => '198.51.100.7' });
is($r->{status}, 302, 'known country: 302');
like($r->{headers}{location}, qr{^https://zz\.shop\.example/x\?a=1&click_id=},
     'known country: its own destination');

$r = $t->get('/go/w', { 'X-Geo' => 'not-an-address' });
is($r->{status}, 302, 'lookup miss: still 302');
like($r->{headers}{location}, qr{^https://shop\.example/intl\?click_id=},
     'lookup miss: the default destination');

ok($t->wait_for(sub { -s $t->dir . '/aff.log'
                      && (() = $t->raw_lines('aff.log')) == 2 }, 5),
   'two records');
my @recs = $t->records('aff.log');
is($recs[0]{country}, 'ZZ', 'record: country');
is($recs[0]{city}, 'Lyon', 'record: city');
is($recs[0]{region}, 'Lyon', 'record: region');
is($recs[0]{asn}, 64512, 'record: asn is a number');
like($recs[0]{dest}, qr{^https://zz\.shop\.example/}, 'record: dest');
is($recs[1]{country}, undef, 'miss: country null');
is($recs[1]{asn}, undef, 'miss: asn null');

is($t->status_json->{geo_misses}, 1, 'status: geo_misses 1');
ok($t->stop, 'stops');
done_testing;
