# nginx -t refuses every malformed link-table line with <file>:<line> and
# what is wrong; accepts comments, blank lines and good tables; refuses
# too-small zones naming the minimum and bad inline links.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $good = "# header comment\n"
         . "\n"
         . "ok1\thttps://a.example/x?y=1#f\tanna\tsummer\n";   # line 3

my $t = Aff->new(http => Aff::std_http(),
                 files => { 'links.tsv' => $good });

my ($rc, $out) = $t->conf_test;
is($rc, 0, 'good table passes nginx -t') or diag $out;

# [name, bad line, regex for what is wrong]
my @bad = (
    ['one field', "lonely", qr/field/i],
    ['two fields', "s\thttps://a.example/", qr/field/i],
    ['three fields', "s\thttps://a.example/\tanna", qr/field/i],
    ['empty slug', "\thttps://a.example/\tanna\tsummer", qr/slug/i],
    ['empty destination', "s\t\tanna\tsummer", qr/destination/i],
    ['empty creator', "s\thttps://a.example/\t\tsummer", qr/creator/i],
    ['empty campaign', "s\thttps://a.example/\tanna\t", qr/campaign/i],
    ['duplicate slug', "ok1\thttps://b.example/\tbob\twinter",
        qr/duplicate/i],
    ['duplicate slug, other case', "OK1\thttps://b.example/\tbob\twinter",
        qr/duplicate/i],
    ['relative destination', "s\t/relative/path\tanna\tsummer",
        qr/absolute|http/i],
    ['no scheme', "s\ta.example/x\tanna\tsummer", qr/absolute|http/i],
    ['ftp destination', "s\tftp://a.example/x\tanna\tsummer",
        qr/absolute|http/i],
    ['javascript destination', "s\tjavascript:alert(1)\tanna\tsummer",
        qr/absolute|http/i],
    ['scheme-relative', "s\t//a.example/x\tanna\tsummer",
        qr/absolute|http/i],
    ['no host', "s\thttps://\tanna\tsummer", qr/absolute|host|http/i],
    ['no host, path', "s\thttps:///x\tanna\tsummer", qr/host/i],
    ['control char in slug', "s\x01x\thttps://a.example/\tanna\tsummer",
        qr/control/i],
    ['control char in destination',
        "s\thttps://a.example/\x01\tanna\tsummer", qr/control/i],
    ['DEL in destination', "s\thttps://a.example/\x7f\tanna\tsummer",
        qr/control/i],
    ['control char in creator', "s\thttps://a.example/\tan\x02na\tsummer",
        qr/control/i],
    ['ESC in campaign', "s\thttps://a.example/\tanna\tsum\x1bmer",
        qr/control/i],
    ['space in destination', "s\thttps://a.example/a b\tanna\tsummer",
        qr/whitespace|control/i],
);

for my $b (@bad) {
    my ($name, $line, $what) = @$b;
    # the bad line is line 5: after the good table and a blank line
    $t->write_file('links.tsv', "$good\n$line\nok2\thttps://c.example/\tc\td\n");
    my ($rc, $out) = $t->conf_test;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr{\Q${\ $t->dir}\E/links\.tsv:5\b}, "$name: names links.tsv:5")
        or diag $out;
    like($out, $what, "$name: says what is wrong") or diag $out;
    like($out, qr/\[emerg\]/, "$name: emerg");
}

# the first bad line is the one reported
$t->write_file('links.tsv', "$good" . "x\n" x 3);
($rc, $out) = $t->conf_test;
like($out, qr/links\.tsv:4\b/, 'first of several bad lines reported');

# comments, blank lines, CRLF line ends, no final newline
$t->write_file('links.tsv', "# only\n\n#\n\n");
($rc, $out) = $t->conf_test;
is($rc, 0, 'only comments and blank lines pass') or diag $out;
$t->write_file('links.tsv', "a\thttps://a.example/\tanna\tsummer");
($rc, $out) = $t->conf_test;
is($rc, 0, 'no final newline passes') or diag $out;
$t->write_file('links.tsv',
    "a\thttps://a.example/\tanna\tsummer\r\nb\thttp://b.example\tb\tc\r\n");
($rc, $out) = $t->conf_test;
is($rc, 0, 'CRLF line ends pass') or diag $out;

# a missing table
$t->write_file('links.tsv', $good);
($rc, $out) = $t->conf_test(Aff::std_http() =~ s{%%DIR%%/links\.tsv}{%%DIR%%/none.tsv}r);
isnt($rc, 0, 'missing table: nginx -t fails');
like($out, qr/none\.tsv/, 'missing table: names the file');

# a relative table path is taken against the prefix
($rc, $out) = $t->conf_test(Aff::std_http() =~ s{%%DIR%%/links\.tsv}{links.tsv}r);
is($rc, 0, 'relative links path against the prefix') or diag $out;

# inline links
for my $c (
    ['bad destination', 'affiliate_link s ftp://x/ creator=a campaign=b;',
        qr/absolute|http/i],
    ['no creator', 'affiliate_link s https://x.example/ campaign=b;',
        qr/creator/i],
    ['no campaign', 'affiliate_link s https://x.example/ creator=a;',
        qr/campaign/i],
    ['duplicate of the table', 'affiliate_link OK1 https://x.example/ '
        . 'creator=a campaign=b;', qr/duplicate/i],
    )
{
    my ($name, $dir, $what) = @$c;
    ($rc, $out) = $t->conf_test(Aff::std_http(http => $dir));
    isnt($rc, 0, "affiliate_link $name: refused");
    like($out, $what, "affiliate_link $name: says what") or diag $out;
    like($out, qr/test\.conf:\d+/, "affiliate_link $name: names the line");
}
($rc, $out) = $t->conf_test(Aff::std_http(
    http => 'affiliate_link inl https://x.example/ creator=a campaign=b;'));
is($rc, 0, 'good inline link passes') or diag $out;

# zones and logs
{
    my $same = qr/is the same file as another affiliate_log/;
    my $base = Aff::std_http();
    my @c = (
        ['zone without a log', $base =~ s/^\s*affiliate_log .*$//mr,
            qr/affiliate zone "aff" declared in .* has no "affiliate_log"/],
        ['undeclared zone in affiliate_log',
            $base . 'affiliate_log %%DIR%%/b.log zone=nope;',
            qr/nope/],
        ['two logs for one zone',
            $base . 'affiliate_log %%DIR%%/b.log zone=aff;',
            qr/already has a log/],
        ['one file for two zones',
            $base . 'affiliate_zone two:1m; '
                  . 'affiliate_log %%DIR%%/aff.log zone=two;',
            qr/affiliate_log ".*aff\.log" in .*test\.conf:\d+ $same/],
        ['log off', $base =~ s{%%DIR%%/aff\.log}{off}r, qr/off|invalid/],
        ['bad flush', $base =~ s{flush=100ms}{flush=soon}r, qr/flush|invalid/],
        ['zone declared twice', $base . 'affiliate_zone aff:1m;',
            qr/already declared|duplicate/],
    );
    for my $c (@c) {
        my ($name, $http, $what) = @$c;
        ($rc, $out) = $t->conf_test($http);
        isnt($rc, 0, "$name: refused");
        like($out, $what, "$name: message") or diag $out;
    }
}

for my $c (['1k', qr/too small.*minimum is \d+k/],
           ['0', qr/too small|invalid/],
           ['abc', qr/invalid zone size/])
{
    ($rc, $out) = $t->conf_test(Aff::std_http(size => $c->[0]));
    isnt($rc, 0, "zone size $c->[0]: refused");
    like($out, $c->[1], "zone size $c->[0]: message") or diag $out;
}
($rc, $out) = $t->conf_test(Aff::std_http(go => '',
    server => 'location /x/ { affiliate_redirect zone=nosuch; }'));
isnt($rc, 0, 'unknown zone in affiliate_redirect: refused');
like($out, qr/nosuch/, 'unknown zone: named') or diag $out;

($rc, $out) = $t->conf_test(Aff::std_http(
    server => 'location /y/ { affiliate_redirect zone=aff status=200; }'));
isnt($rc, 0, 'status=200: refused');
like($out, qr/status/, 'status=200: message') or diag $out;

# a reload cannot change the size of a zone in use (a new ring would split
# the sequence while old workers still append to the old one)
$t->write_file('links.tsv', $good);
$t->write_file('nginx.conf', $t->make_conf(Aff::std_http()));
$t->start;
is($t->get('/go/ok1')->{status}, 302, 'running');
my @w = $t->worker_pids;
$t->allow_log(qr/\[emerg\].*affiliate zone "aff" cannot change size/);
# refused once the files are open: logged to error.log too
$t->allow_log(qr/\[emerg\].*is the same file as another affiliate_log/);
$t->write_file('nginx.conf', $t->make_conf(Aff::std_http(size => '32m')));
$t->signal('HUP');
ok($t->wait_for(sub { $t->error_log =~ /cannot change size/ }, 5),
    'reload with a new zone size: refused') or diag $t->error_log;
like($t->error_log, qr/affiliate zone "aff" cannot change size/,
    'the message names the zone');
sleep 0.5;
is_deeply([$t->worker_pids], \@w, 'the old workers keep running');
is($t->get('/go/ok1')->{status}, 302, 'and serving');
$t->stop;

done_testing;
