# affiliate_zone's clicks=, unique=, orders=, caps= and creators= are
# checked at nginx -t,
# naming the parameter: sizes near 2^63 (their sum used to wrap around,
# pass the check and fail later with "ngx_slab_alloc() failed") and
# tables too small to hold the minimum number of entries (unique=10 used
# to disable the table silently).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $links = "a\thttps://a.example/\tanna\tsummer\n";
my $t = Aff->new(http => Aff::std_http(),
                 files => { 'links.tsv' => $links });

sub zone_test {
    my ($params) = @_;
    my $http = Aff::std_http() =~ s/affiliate_zone\s+aff:16m;/affiliate_zone aff:16m $params;/r;
    return $t->conf_test($http);
}

my $max = '9223372036854775807';    # 2^63 - 1, what ngx_parse_size takes

# [parameters, the parameter the message must name, what it must say]
my @bad = (
    ["clicks=$max", "clicks=$max", qr/too large/],
    ["unique=$max", "unique=$max", qr/too large/],
    ["orders=$max", "orders=$max", qr/too large/],
    ["clicks=$max unique=$max orders=1m", "clicks=$max", qr/too large/],
    ["clicks=1m unique=$max orders=$max", "unique=$max", qr/too large/],
    ["clicks=9223372036854775000 unique=9223372036854775000",
        "clicks=9223372036854775000", qr/too large/],
    ["clicks=8m unique=8m", "unique=8m", qr/too large.*for the ring/],
    ["clicks=16m", "clicks=16m", qr/too large/],
    ["unique=10", "unique=10", qr/holds 0 entries, the minimum is 64/],
    ["unique=1535", "unique=1535", qr/holds 63 entries, the minimum is 64/],
    ["orders=0", "orders=0", qr/holds 0 entries/],
    ["clicks=1k", "clicks=1k", qr/holds 4 entries, the minimum is 64/],
    ["caps=$max", "caps=$max", qr/too large/],
    ["clicks=4m caps=12m", "caps=12m", qr/too large.*for the ring/],
    ["caps=1023", "caps=1023", qr/holds 63 entries, the minimum is 64 \(1024 bytes\)/],
    ["caps=0", "caps=0", qr/holds 0 entries/],
    ["creators=24575", "creators=24575", qr/holds 63 entries, the minimum is 64/],
);

for my $b (@bad) {
    my ($p, $name, $what) = @$b;
    my ($rc, $out) = zone_test($p);
    isnt($rc, 0, "$p: nginx -t fails");
    like($out, qr/\[emerg\].* affiliate zone "aff": "\Q$name\E"/,
        "$p: names $name") or diag $out;
    like($out, $what, "$p: says what") or diag $out;
    like($out, qr/test\.conf:\d+/, "$p: names the line");
    unlike($out, qr/ngx_slab_alloc/, "$p: not a slab failure later");
}

# the boundaries pass
for my $p ('unique=1536 orders=1536 clicks=15872', 'clicks=2m unique=1m orders=1m',
           'clicks=12m unique=1m orders=2m', 'caps=1024', 'caps=1m creators=1m')
{
    my ($rc, $out) = zone_test($p);
    is($rc, 0, "$p: passes") or diag $out;
}

# a minimum-size zone with the default shares passes
{
    my ($rc, $out) = $t->conf_test(Aff::std_http(size => '512k'));
    is($rc, 0, '512k with default tables passes') or diag $out;
}

# the tables work at their minimum: 64 unique entries
{
    my $u = Aff->new(
        http  => Aff::std_http(http => 'affiliate_unique 1h;')
                     =~ s/affiliate_zone\s+aff:16m;/affiliate_zone aff:16m unique=1536;/r,
        files => { 'links.tsv' => $links },
    );
    $u->start;
    $u->get('/go/a');
    $u->get('/go/a');
    ok($u->wait_for(sub { scalar($u->records('aff.log')) == 2 }, 5),
        'unique=1536: two records');
    my @r = $u->records('aff.log');
    is_deeply([map { $_->{unique} ? 1 : 0 } @r], [1, 0],
        'unique=1536: the table works (first unique, second not)');
    $u->stop;
}

done_testing;
