# Geo variables with the flat ip-location-db schema (country_code, state1,
# city) for 1,000 IPv4 and 200 IPv6 addresses against mmdblookup; an
# IPv4-only database (IPv6 clients skip it, IPv4-mapped ones use it);
# explicit FIELD=path and FIELD=off, and how later databases fill the
# fields earlier ones left empty.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

require "$FindBin::Bin/lib/mkmmdb.pl";

plan skip_all => 'mmdblookup not installed (apt-get install mmdb-bin)'
    unless grep { -x "$_/mmdblookup" } split /:/, $ENV{PATH};

my $SERVER = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /geo {
            return 200 "$affiliate_country|$affiliate_region|$affiliate_city|$affiliate_asn\n";
        }
    }
EOF

sub geo {
    my ($t, $ip) = @_;
    my $r = $t->get('/geo', { 'X-Forwarded-For' => $ip });
    return 'HTTP ' . ($r->{status} // 'error') unless ($r->{status} // 0) == 200;
    (my $b = $r->{body}) =~ s/\n\z//;
    return $b;
}

sub compare {
    my ($t, $name, $ips, $expect) = @_;
    my ($bad, $hits) = (0, 0);
    for my $i (0 .. $#$ips) {
        my $got = geo($t, $ips->[$i]);
        $hits++ if $expect->[$i] ne '|||';
        next if $got eq $expect->[$i];
        diag "$ips->[$i]: got '$got', expected '$expect->[$i]'"
            if ++$bad <= 10;
    }
    is($bad, 0, "$name: " . @$ips . " addresses as expected ($hits found)");
    return $hits;
}

# --- the flat schema alone, no field arguments ---------------------------

my $t = Aff->new(workers => 2, http => <<'EOF' . $SERVER);
    affiliate_geoip %%DIR%%/flat.mmdb;
EOF
my $flat = mkmmdb('flat', $t->dir . '/flat.mmdb');
$t->start;

prng_seed(21);
my @v4 = map { random_ipv4() } 1 .. 1000;
my @v6 = map { random_ipv6() } 1 .. 200;
my @ips = (@v4, @v6);
my $rf = mmdblookup_all($flat, \@ips);
my @expect = map { geo_expect([$_]) } @$rf;

my $hits = compare($t, 'flat IPv4', [@ips[0 .. 999]], [@expect[0 .. 999]]);
cmp_ok($hits, '>=', 850, 'most IPv4 addresses are in the database');
$hits = compare($t, 'flat IPv6', [@ips[1000 .. 1199]],
                [@expect[1000 .. 1199]]);
cmp_ok($hits, '>=', 170, 'most IPv6 addresses are in the database');
ok((grep { /^BR\|São Paulo\|São Paulo\|$/ } @expect),
   'non-ASCII state1 and city');
ok((grep { /^NL\|North Holland\|\|$/ } @expect), 'a record without city');
$t->stop;

# --- an IPv4-only database behind the flat one --------------------------

my $t4 = Aff->new(workers => 1, http => <<'EOF' . $SERVER);
    affiliate_geoip %%DIR%%/flat4.mmdb country=off region=off;
    affiliate_geoip %%DIR%%/flat4.mmdb country=off region=off city=off
                    asn=off auto_reload=1s;
    affiliate_geoip %%DIR%%/const.mmdb auto_reload=1s;
EOF
my $flat4 = mkmmdb('flat', $t4->dir . '/flat4.mmdb', '--ipv4-only',
                   '--seed', 4);
mkmmdb('const', $t4->dir . '/const.mmdb', '--value', 'C');
$t4->start;

my @some = @v4[0 .. 199];
my $r4 = mmdblookup_all($flat4, \@some);
my @e4 = map {
    my $city = $_ && $_->{city} ? $_->{city}[1] : 'C';
    "ZZ|C|$city|64512";
} @$r4;
compare($t4, 'IPv4-only db, IPv4', \@some, \@e4);
compare($t4, 'IPv4-only db, IPv4-mapped', [map { "::ffff:$_" } @some], \@e4);
compare($t4, 'IPv4-only db, IPv6: skipped', [@v6[0 .. 49]],
        [('ZZ|C|C|64512') x 50]);
$t4->stop;
unlike($t4->error_log, qr/affiliate_geoip: lookup/,
       'no lookup errors for IPv6 in the IPv4-only database');

# --- explicit paths, "off", filling from later databases ----------------

my $tx = Aff->new(workers => 1, http => <<'EOF' . $SERVER);
    affiliate_geoip %%DIR%%/city.mmdb region=subdivisions.1.iso_code
                    city=off asn=country.geoname_id;
    affiliate_geoip %%DIR%%/flat.mmdb country=city;
EOF
my $city = mkmmdb('city', $tx->dir . '/city.mmdb');
$tx->write_file('flat.mmdb', $t->read_file('flat.mmdb'));
$tx->start;

@some = (@v4[0 .. 299], @v6[0 .. 99]);
my $rc = mmdblookup_all($city, \@some);
$rf = mmdblookup_all($tx->dir . '/flat.mmdb', \@some);
my @ex;
for my $i (0 .. $#some) {
    my %paths1 = (region => [[qw(subdivisions 1 iso_code)]], city => [],
                  asn => [[qw(country geoname_id)]]);
    my $a = geo_expect([$rc->[$i]], %paths1);
    my $b = geo_expect([$rf->[$i]], country => [['city']]);
    # per field: the first database's value, else the second one's
    my @a = split /\|/, $a, -1;
    my @b = split /\|/, $b, -1;
    push @ex, join '|', map { length $a[$_] ? $a[$_] : $b[$_] } 0 .. 3;
}
compare($tx, 'explicit paths and fill order', \@some, \@ex);
ok((grep { /^[A-Z]{2}\|X[^|]+\|[^|]+\|\d+$/ } @ex),
   'region from subdivisions.1, city from the second database');
ok((grep { /^[^|]{3,}\|/ } @ex), 'country=city from the flat database');
$tx->stop;

for my $x ($t, $tx) {
    unlike($x->error_log, qr/\[(alert|crit|emerg)\]|affiliate_geoip: lookup/,
           'no alerts or lookup errors in error.log');
}

done_testing;
