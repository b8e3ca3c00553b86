# affiliate_geoip / affiliate_geoip_source configuration: nginx -t refuses
# a missing, unreadable, empty, corrupt or truncated database naming the
# file, and malformed parameters naming test.conf:line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

require "$FindBin::Bin/lib/mkmmdb.pl";

my $t = Aff->new(workers => 1);
my $dir = $t->dir;
my $good = mkmmdb('flat', "$dir/good.mmdb");

my $bytes = $t->read_file('good.mmdb');
$t->write_file('empty.mmdb', '');
$t->write_file('garbage.mmdb', join '', map { chr(($_ * 7919) % 251) } 1 .. 65536);
$t->write_file('truncated.mmdb', substr($bytes, 0, length($bytes) / 2));
$t->write_file('headless.mmdb', substr($bytes, 0, 1000)
                                . substr($bytes, -200));
mkdir "$dir/adir";

my $server = "server { listen 127.0.0.1:%%PORT%%; }\n";

sub conf {
    my ($http) = @_;
    return $t->conf_test($http . $server);
}

my ($rc, $out) = conf("affiliate_geoip $good;\n"
                      . "affiliate_geoip $good auto_reload=5s asn=off;\n"
                      . "affiliate_geoip_source \$http_x_real_ip;\n");
is($rc, 0, 'valid configuration') or diag $out;

my @bad = (
    # [ name, http text, output pattern ]
    ['missing file', "affiliate_geoip $dir/nope.mmdb;",
     qr/\[emerg\].*MMDB_open\("\Q$dir\E\/nope\.mmdb"\) failed: .*No such file/],
    ['a directory', "affiliate_geoip $dir/adir;",
     qr/\[emerg\].*"\Q$dir\E\/adir".*failed/],
    ['empty file', "affiliate_geoip $dir/empty.mmdb;",
     qr/\[emerg\].*MMDB_open\("\Q$dir\E\/empty\.mmdb"\) failed: \w/],
    ['garbage', "affiliate_geoip $dir/garbage.mmdb;",
     qr/\[emerg\].*MMDB_open\("\Q$dir\E\/garbage\.mmdb"\) failed: .*metadata/i],
    ['truncated', "affiliate_geoip $dir/truncated.mmdb;",
     qr/\[emerg\].*MMDB_open\("\Q$dir\E\/truncated\.mmdb"\) failed: \w/],
    ['search tree cut', "affiliate_geoip $dir/headless.mmdb;",
     qr/\[emerg\].*MMDB_open\("\Q$dir\E\/headless\.mmdb"\) failed: \w/],
    ['second database missing',
     "affiliate_geoip $good;\naffiliate_geoip $dir/nope2.mmdb;",
     qr/\[emerg\].*nope2\.mmdb.*test\.conf:\d+/],
    ['unknown parameter', "affiliate_geoip $good colour=country.iso_code;",
     qr/\[emerg\] \d+#\d+: invalid parameter "colour=country\.iso_code".*test\.conf:\d+/],
    ['empty data path', "affiliate_geoip $good country=;",
     qr/\[emerg\] \d+#\d+: invalid data path "".*test\.conf:\d+/],
    ['empty component', "affiliate_geoip $good city=city..en;",
     qr/\[emerg\] \d+#\d+: invalid data path "city\.\.en"/],
    ['trailing dot', "affiliate_geoip $good city=city.;",
     qr/\[emerg\] \d+#\d+: invalid data path "city\."/],
    ['too deep', "affiliate_geoip $good city=" . join('.', ('a') x 17) . ';',
     qr/\[emerg\] \d+#\d+: data path ".*" is too deep/],
    ['bad auto_reload', "affiliate_geoip $good auto_reload=soon;",
     qr/\[emerg\] \d+#\d+: invalid auto_reload time "soon"/],
    ['zero auto_reload', "affiliate_geoip $good auto_reload=0;",
     qr/\[emerg\] \d+#\d+: invalid auto_reload time "0"/],
    ['no path', "affiliate_geoip;",
     qr/\[emerg\] \d+#\d+: invalid number of arguments in "affiliate_geoip"/],
    ['in server', "server { listen 127.0.0.1:%%PORT2%%; "
                  . "affiliate_geoip $good; }",
     qr/\[emerg\] \d+#\d+: "affiliate_geoip" directive is not allowed here/],
    ['source without $', "affiliate_geoip $good;\n"
                         . "affiliate_geoip_source http_x_real_ip;",
     qr/\[emerg\] \d+#\d+: invalid variable name "http_x_real_ip"/],
    ['source twice', "affiliate_geoip $good;\n"
                     . "affiliate_geoip_source \$http_a;\n"
                     . "affiliate_geoip_source \$http_b;",
     qr/\[emerg\] \d+#\d+: "affiliate_geoip_source" directive is duplicate/],
    ['source unknown variable', "affiliate_geoip $good;\n"
                                . "affiliate_geoip_source \$no_such_var;",
     qr/\[emerg\] \d+#\d+: unknown "no_such_var" variable/],
);

for my $b (@bad) {
    my ($name, $http, $re) = @$b;
    ($rc, $out) = conf("$http\n");
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message") or diag $out;
}

# an unreadable file (only meaningful when not root)
SKIP: {
    skip 'running as root: permissions do not apply', 2 if $> == 0;
    $t->write_file('secret.mmdb', $bytes);
    chmod 0, "$dir/secret.mmdb";
    ($rc, $out) = conf("affiliate_geoip $dir/secret.mmdb;\n");
    isnt($rc, 0, 'unreadable: nginx -t fails');
    like($out, qr/secret\.mmdb.*Permission denied/, 'unreadable: message');
}

# the source without a database: a warning, not an error
($rc, $out) = conf("affiliate_geoip_source \$http_x_real_ip;\n");
is($rc, 0, 'source without a database is accepted');
like($out, qr/\[warn\] \d+#\d+: "affiliate_geoip_source" is set, but there is no "affiliate_geoip"/,
     'source without a database: warning');

# a relative path is relative to the configuration's directory (the prefix
# here, where test.conf is)
($rc, $out) = conf("affiliate_geoip good.mmdb;\n");
is($rc, 0, 'relative path: resolved against the conf dir') or diag $out;

done_testing;
