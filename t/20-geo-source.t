# affiliate_geoip_source: the address comes from a variable (here the
# X-Client-IP header) instead of the connection, IPv4, IPv6 and IPv4-mapped;
# an absent or invalid value is a miss, not the connection address.  Also:
# a unix-domain client is a miss ("-" in access_log); without affiliate_geoip
# the variables are not found.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

require "$FindBin::Bin/lib/mkmmdb.pl";

plan skip_all => 'mmdblookup not installed (apt-get install mmdb-bin)'
    unless grep { -x "$_/mmdblookup" } split /:/, $ENV{PATH};

my $t = Aff->new(workers => 2, http => <<'EOF');
    affiliate_geoip %%DIR%%/city.mmdb;
    affiliate_geoip %%DIR%%/asn.mmdb;
    affiliate_geoip_source $http_x_client_ip;

    server {
        listen 127.0.0.1:%%PORT%%;

        # realip changes the connection address; the source wins anyway
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /geo {
            return 200 "$affiliate_country|$affiliate_region|$affiliate_city|$affiliate_asn\n";
        }
    }
EOF
my $city = mkmmdb('city', $t->dir . '/city.mmdb');
my $asn = mkmmdb('asn', $t->dir . '/asn.mmdb');
$t->start;

prng_seed(22);
my @ips = ((map { random_ipv4() } 1 .. 150), (map { random_ipv6() } 1 .. 50));
my @edge = ('127.0.0.1', '2400::1');
my $rc = mmdblookup_all($city, [@ips, @edge]);
my $ra = mmdblookup_all($asn, [@ips, @edge]);
my %expect = map { ([@ips, @edge])->[$_] => geo_expect([$rc->[$_], $ra->[$_]]) }
             0 .. $#ips + @edge;

sub geo {
    my (%h) = @_;
    my $r = $t->get('/geo', \%h);
    return 'HTTP ' . ($r->{status} // 'error') unless ($r->{status} // 0) == 200;
    (my $b = $r->{body}) =~ s/\n\z//;
    return $b;
}

my $bad = 0;
for my $ip (@ips) {
    my $got = geo('X-Client-IP' => $ip, 'X-Forwarded-For' => '2400::1');
    next if $got eq $expect{$ip};
    diag "$ip: got '$got', expected '$expect{$ip}'" if ++$bad <= 10;
}
is($bad, 0, scalar(@ips) . ' addresses from X-Client-IP as mmdblookup');

$bad = 0;
for my $ip (@ips[0 .. 49]) {
    my $got = geo('X-Client-IP' => "::ffff:$ip");
    $bad++ if $got ne $expect{$ip};
}
is($bad, 0, 'IPv4-mapped IPv6 in the source: looked up as IPv4');

my $ip = $ips[0];
is(geo('X-Client-IP' => " $ip\t"), $expect{$ip}, 'blanks around it');
is(geo('X-Client-IP' => uc $ips[-1]), $expect{ $ips[-1] }, 'upper-case IPv6');

ok($expect{'127.0.0.1'} ne '|||', '127.0.0.1 is in the database');
ok($expect{'2400::1'} ne '|||', '2400::1 is in the database');

for my $v (undef, '', 'abc', '1.2.3', '1.2.3.4.5', "$ip, 8.8.8.8",
           "[2400::1]", '2400::1::1', '999.1.1.1', '1.2.3.4:80')
{
    my $name = defined $v ? "\"$v\"" : 'absent';
    is(geo(defined $v ? ('X-Client-IP' => $v) : (),
           'X-Forwarded-For' => '2400::1'),
       '|||', "$name: a miss, not the connection address");
}

$t->stop;

unlike($t->error_log, qr/\[(alert|crit|emerg|error)\]/,
       'no errors in error.log');

# a unix-domain client has no address to look up: a miss; without any
# affiliate_geoip the variables are simply not found
my $GEO = 'return 200 "$affiliate_country|$affiliate_region|$affiliate_city'
        . '|$affiliate_asn\n";';
my $tu = Aff->new(workers => 1, http => <<"EOF");
    affiliate_geoip %%DIR%%/city.mmdb;

    log_format geo '[\$affiliate_country][\$affiliate_asn]';

    server {
        listen 127.0.0.1:%%PORT%%;
        listen unix:%%DIR%%/geo.sock;
        access_log %%DIR%%/geo.log geo;

        location /geo { $GEO }
    }
EOF
$tu->write_file('city.mmdb', $t->read_file('city.mmdb'));
$tu->start;
{
    require IO::Socket::UNIX;
    my $s = IO::Socket::UNIX->new(Peer => $tu->dir . '/geo.sock')
        or die "unix socket: $!";
    print $s "GET /geo HTTP/1.0\r\n\r\n";
    local $/;
    my $raw = <$s> // '';
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    like($head, qr{^HTTP/1\.\d 200}, 'unix-domain client: 200');
    is($body, "|||\n", 'unix-domain client: nothing found');
}
$tu->stop;
like($tu->read_file('geo.log') // '', qr/^\[-\]\[-\]$/m,
     'not found: "-" in access_log');

my $tn = Aff->new(workers => 1, http => <<"EOF");
    server {
        listen 127.0.0.1:%%PORT%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /geo { $GEO }
    }
EOF
$tn->start;
my $r = $tn->get('/geo', { 'X-Forwarded-For' => $ips[0] });
is($r->{status}, 200, 'no affiliate_geoip: 200');
is($r->{body}, "|||\n", 'no affiliate_geoip: the variables are not found');
$tn->stop;

done_testing;
