# An affiliate_log may not share its file with any other log: nginx -t
# refuses it, naming the affiliate_log's file:line and the path, whatever
# the directive order.  Before, ngx_conf_open_file() handed access_log /
# error_log and the zone the same ngx_open_file_t, the zone overwrote its
# flush and data, and every request killed a worker (signal 11) while
# nginx -t passed; two zones on one file spelled differently passed too
# and interleaved two seq series.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $links = "a\thttps://a.example/\tanna\tsummer\n";

my $t = Aff->new(http => Aff::std_http(),
                 files => { 'links.tsv' => $links });
my $dir = $t->dir;
mkdir "$dir/logs";
$t->allow_log(qr/\[emerg\].*is the same file as/);

# the line of the affiliate_log (of zone $zone) in the tested file
sub log_line {
    my ($file, $zone) = @_;
    my @l = split /\n/, $t->read_file($file);
    for my $i (0 .. $#l) {
        return $i + 1 if $l[$i] =~ /^\s*affiliate_log\s.*zone=$zone\b/;
    }
    return 0;
}

my $std = Aff::std_http();
my $alog = "affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;";

# [name, http text, extra main text after http {}, the path in the message]
my @c = (
    ['access_log in http before affiliate_log',
        "access_log %%DIR%%/aff.log;\n" . $std, '', 'aff.log'],
    ['access_log in http after affiliate_log',
        $std . "access_log %%DIR%%/aff.log;\n", '', 'aff.log'],
    ['access_log in a server, relative path',
        Aff::std_http(server => 'access_log aff.log;'), '', 'aff.log'],
    ['access_log with a format and buffer',
        $std . "log_format f '\$remote_addr';\n"
             . "access_log %%DIR%%/aff.log f buffer=4k;\n", '', 'aff.log'],
    ['error_log in http',
        $std . "error_log %%DIR%%/aff.log;\n", '', 'aff.log'],
    ['error_log in a server',
        Aff::std_http(server => "error_log %%DIR%%/aff.log;"), '',
        'aff.log'],
    ['error_log in main, after the http block',
        $std, "error_log %%DIR%%/aff.log;\n", 'aff.log'],
    ['two zones, same path',
        $std . "affiliate_zone two:1m;\n"
             . "affiliate_log %%DIR%%/aff.log zone=two;\n", '', 'aff.log'],
    ['two zones, logs//aff.log and logs/aff.log',
        Aff::std_http(log => 'logs/aff.log')
            . "affiliate_zone two:1m;\n"
            . "affiliate_log logs//aff.log zone=two;\n", '', 'logs/aff.log'],
    ['two zones, logs/./aff.log and an absolute path',
        Aff::std_http(log => 'logs/aff.log')
            . "affiliate_zone two:1m;\n"
            . "affiliate_log logs/./aff.log zone=two;\n", '',
        'logs/aff.log'],
    ['two zones, one through a symlink',
        Aff::std_http(log => 'logs/aff.log')
            . "affiliate_zone two:1m;\n"
            . "affiliate_log %%DIR%%/alias.log zone=two;\n", '',
        'logs/aff.log'],
);

symlink "$dir/logs/aff.log", "$dir/alias.log" or die "symlink: $!";

for my $c (@c) {
    my ($name, $http, $after, $path) = @$c;
    my $conf = $t->make_conf($http) . $t->subst($after);
    $t->write_file('test.conf', $conf);
    unlink "$dir/aff.log", "$dir/logs/aff.log";
    my ($rc, $out) = $t->run_nginx('-t', '-c', "$dir/test.conf");
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\]/, "$name: emerg");
    # the message names an affiliate_log's line and the shared file
    my @named = $out =~ /affiliate_log "([^"]+)" in \Q$dir\E\/test\.conf:(\d+)/;
    ok(@named, "$name: names the affiliate_log's file:line") or diag $out;
    next unless @named;
    like($named[0], qr{/\Q$path\E$|/alias\.log$}, "$name: names the path");
    my @lines = grep { $_ } map { log_line('test.conf', $_) } qw(aff two);
    ok((grep { $_ == $named[1] } @lines),
        "$name: line $named[1] is an affiliate_log (@lines)") or diag $out;
    like($out, qr/is the same file as/, "$name: says why");
}

# different files, and character devices, may be used freely
for my $c (
    ['access_log and error_log on other files',
        $std . "access_log %%DIR%%/access.log;\nerror_log %%DIR%%/e.log;\n"],
    ['two zones, two files',
        $std . "affiliate_zone two:1m;\n"
             . "affiliate_log %%DIR%%/two.log zone=two;\n"],
    ['affiliate_log and access_log on /dev/null',
        Aff::std_http(log => 'x.log', http => 'access_log /dev/null;')
            =~ s{%%DIR%%/x\.log}{/dev/null}r],
    )
{
    my ($name, $http) = @$c;
    my ($rc, $out) = $t->conf_test($http);
    is($rc, 0, "$name: nginx -t passes") or diag $out;
}

# at run time, with access_log and error_log in use beside the zone, the
# records are written, and the access log has its own lines
{
    my $u = Aff->new(
        # access_log in the server: the harness turns it off in http
        http  => Aff::std_http(http => 'error_log %%DIR%%/http-error.log;',
                               server => 'access_log %%DIR%%/access.log;'),
        files => { 'links.tsv' => $links },
    );
    $u->start;
    my @ids;
    for (1 .. 20) {
        my $r = $u->get('/go/a');
        is($r->{status}, 302, "request $_: 302") if $_ == 1 || $_ == 20;
        push @ids, Aff::click_id($r->{headers}{location});
    }
    ok($u->wait_for(sub { scalar($u->records('aff.log')) == 20 }, 5),
        'run time: 20 records');
    is_deeply([map { $_->{click_id} } $u->records('aff.log')], \@ids,
        'run time: the records of the requests, in order');
    my @acc = split /\n/, $u->read_file('access.log') // '';
    is(scalar(grep { m{GET /go/a } } @acc), 20,
        'run time: the access log has its 20 lines');
    is(scalar(grep { /^\{/ } @acc), 0, 'run time: and no record');
    unlike($u->error_log, qr/exited on signal/, 'run time: no worker died');
    $u->stop;
}

done_testing;
