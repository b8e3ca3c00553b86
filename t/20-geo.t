# Geo variables with GeoIP2-schema databases (a City-like and an ASN one):
# for 1,000 IPv4 and 200 IPv6 addresses given by X-Forwarded-For (realip),
# $affiliate_country/region/city/asn equal what mmdblookup returns; IPv4-
# mapped IPv6 addresses; the connection address without realip; an IPv6
# client on an IPv6 listener.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::IP;
use Aff;

require "$FindBin::Bin/lib/mkmmdb.pl";

plan skip_all => 'mmdblookup not installed (apt-get install mmdb-bin)'
    unless grep { -x "$_/mmdblookup" } split /:/, $ENV{PATH};

# a free port on ::1, or 0 when there is no IPv6 loopback
my $v6port = do {
    my $s = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                Listen => 1, ReuseAddr => 1);
    $s ? $s->sockport : 0;
};
my $have_v6 = $v6port ? 1 : 0;

my $v6server = !$have_v6 ? '' : <<"EOF";
    server {
        listen [::1]:$v6port;
        set_real_ip_from ::1;
        real_ip_header X-Forwarded-For;

        location /geo {
            return 200 "\$affiliate_country|\$affiliate_region|\$affiliate_city|\$affiliate_asn\\n";
        }
    }
EOF

my $t = Aff->new(workers => 2, http => <<"EOF" . $v6server);
    affiliate_geoip %%DIR%%/city.mmdb;
    affiliate_geoip %%DIR%%/asn.mmdb;

    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /geo {
            return 200 "\$affiliate_country|\$affiliate_region|\$affiliate_city|\$affiliate_asn\\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;

        location /geo {
            add_header X-Country \$affiliate_country;
            return 200 "\$affiliate_country|\$affiliate_region|\$affiliate_city|\$affiliate_asn\\n";
        }
    }
EOF

my $city = mkmmdb('city', $t->dir . '/city.mmdb');
my $asn = mkmmdb('asn', $t->dir . '/asn.mmdb');
$t->start;

prng_seed(20);
my @ips = ((map { random_ipv4() } 1 .. 1000), (map { random_ipv6() } 1 .. 200));
my @extra = ('0.0.0.1', '255.255.255.254', '127.0.0.1', '::1', '2400::',
             '27ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8::1', '::');
push @ips, @extra;

my $rc = mmdblookup_all($city, \@ips);
my $ra = mmdblookup_all($asn, \@ips);
my %expect = map { $ips[$_] => geo_expect([$rc->[$_], $ra->[$_]]) } 0 .. $#ips;

sub geo {
    my ($ip, %o) = @_;
    my $r = $t->get('/geo', defined $ip ? { 'X-Forwarded-For' => $ip } : {},
                    %o);
    return undef unless ($r->{status} // 0) == 200;
    (my $b = $r->{body}) =~ s/\n\z//;
    return $b;
}

sub compare {
    my ($name, $list, $map) = @_;
    my ($bad, $hits, $full) = (0, 0, 0);
    for my $ip (@$list) {
        my $want = $expect{ $map ? $map->($ip) : $ip };
        my $got = geo($ip) // 'HTTP error';
        $hits++ if $want ne '|||';
        $full++ if $want !~ /(^|\|)(\||$)/;
        next if $got eq $want;
        diag "$ip: got '$got', mmdblookup '$want'" if ++$bad <= 10;
    }
    is($bad, 0, "$name: " . @$list . " addresses as mmdblookup "
                . "($hits found, $full with all four fields)");
    return $hits;
}

my $hits = compare('IPv4', [@ips[0 .. 999]]);
cmp_ok($hits, '>=', 850, 'most IPv4 addresses are in the databases');
$hits = compare('IPv6', [@ips[1000 .. 1199]]);
cmp_ok($hits, '>=', 170, 'most IPv6 addresses are in the databases');
compare('edge addresses', \@extra);

# ::ffff:a.b.c.d is looked up as a.b.c.d
my @mapped = map { "::ffff:$_" } @ips[0 .. 199];
compare('IPv4-mapped IPv6', \@mapped, sub { substr $_[0], 7 });

# the data really is what the test means to check
my @all = values %expect;
ok((grep { /\|München\|/ } @all), 'a non-ASCII city name (UTF-8)');
ok((grep { /^SG\|\|\|\d+$/ } @all), 'a record with country only');
ok((grep { /^AT\|\|Vienna\|/ } @all), 'a region without an English name');
ok((grep { /^\|\|\|\d+$/ } @all), 'an address only the ASN db has');
ok((grep { /^[A-Z]{2}\|[^|]*\|[^|]*\|$/ } @all),
   'an address only the city db has');
ok((grep { /\|\d{6,}$/ } @all), 'a 32-bit ASN');

# the connection address, without realip: 127.0.0.1
{
    my $r = $t->get('/geo', { 'X-Forwarded-For' => '2400::1' },
                    port => $t->port2);
    (my $b = $r->{body}) =~ s/\n\z//;
    is($b, $expect{'127.0.0.1'},
       'without realip: the connection address 127.0.0.1');
    my ($c) = split /\|/, $expect{'127.0.0.1'};
    is($r->{headers}{'x-country'}, length $c ? $c : undef,
       '$affiliate_country in add_header');
}

# an invalid X-Forwarded-For leaves 127.0.0.1 (realip ignores it)
is(geo('not-an-ip'), $expect{'127.0.0.1'},
   'invalid X-Forwarded-For: the connection address');

# an IPv6 client on an IPv6 listener
SKIP: {
    skip 'no ::1 on this host', 3 unless $have_v6;

    my $get6 = sub {
        my ($hdr) = @_;
        my $s = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $v6port,
                                    Timeout => 5) or return "connect: $!";
        binmode $s;
        print $s "GET /geo HTTP/1.0\r\nHost: x\r\n$hdr\r\n";
        local $/;
        my $raw = <$s> // '';
        my ($head, $body) = split /\r\n\r\n/, $raw, 2;
        return "HTTP: $head" unless $head =~ m{^HTTP/1\.\d 200};
        $body =~ s/\n\z//;
        return $body;
    };

    is($get6->(''), $expect{'::1'}, 'IPv6 listener: the client ::1');
    my $ip = $ips[1000];
    is($get6->("X-Forwarded-For: $ip\r\n"), $expect{$ip},
       "IPv6 listener with realip: $ip");
    $ip = $ips[5];
    is($get6->("X-Forwarded-For: $ip\r\n"), $expect{$ip},
       "IPv6 listener with realip: IPv4 $ip");
}

$t->stop;

unlike($t->error_log, qr/\[(alert|crit|emerg)\]|affiliate_geoip: lookup/,
       'no alerts or lookup errors in error.log');

done_testing;
