# The smallest zone the module accepts, under load: the ring fills, records
# are dropped (never blocking a request), and written + dropped == requests,
# matching the status counters and the file.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $links = "a\thttps://a.example/\tanna\tsummer\n";

my $probe = Aff->new(http => Aff::std_http(size => '1k'),
                     files => { 'links.tsv' => $links });
my ($rc, $out) = $probe->conf_test;
isnt($rc, 0, 'affiliate_zone aff:1k is refused');
like($out, qr/too small/, '1k: "too small"');
my ($min) = $out =~ /minimum is (\d+)k/;
ok($min, 'the message names the minimum in k') or diag $out;
$min //= 256;
like($out, qr/nginx\.conf:\d+/, '1k: names the config line');

($rc, $out) = $probe->conf_test(Aff::std_http(size => ($min - 1) . 'k'));
isnt($rc, 0, ($min - 1) . 'k is refused');
($rc, $out) = $probe->conf_test(Aff::std_http(size => "${min}k"));
is($rc, 0, "${min}k is accepted") or diag $out;
($rc, $out) = $probe->conf_test(Aff::std_http(size => ($min * 1024 - 1)));
isnt($rc, 0, ($min * 1024 - 1) . ' bytes are refused');

my $t = Aff->new(
    workers => 2,
    http    => Aff::std_http(size => "${min}k", flush => '1s'),
    files   => { 'links.tsv' => $links },
);
$t->start;

my $s = $t->status_json;
my $cap = $s->{ring}{capacity};
cmp_ok($cap, '>=', 64, "capacity $cap of the minimum zone: at least 64");
cmp_ok($s->{ring}{size}, '<=', $min * 1024, 'the ring fits in the zone');
is($s->{ring}{size}, $s->{ring}{slots} * ($s->{ring}{slot_size} + 16),
   'ring size == slots * (slot_size + header)');

# pipelined requests fill the ring faster than one flush empties it;
# whether records are dropped depends on timing, the sums must hold anyway
my $N = 10_000;
my $res = $t->load(sub { $_[0] % 5 ? '/go/a' : '/go/nope' },
    total => $N, concurrency => 8, pipeline => 200, collect => 1);
diag sprintf '%d requests in %.2fs', $res->{total}, $res->{elapsed};
is($res->{errors}, 0, 'no client errors');
is($res->{statuses}{302}, $N * 4 / 5, 'every click redirected');
is($res->{statuses}{404}, $N / 5, 'every miss answered');

ok($t->wait_for(sub {
    my $s = $t->status_json;
    $s->{ring}{used} == 0
        && $s->{records}{written} == $s->{records}{accepted};
}, 10), 'ring drained');
sleep 0.3;

$s = $t->status_json;
diag explain $s->{records};
my $acc = $s->{records}{accepted};
my $wr = $s->{records}{written};
my $dr = $s->{records}{dropped};
is($s->{clicks}, $N * 4 / 5, 'status: clicks');
is($s->{misses}, $N / 5, 'status: misses');
diag "dropped under pipelined load: $dr";
is($wr + $dr, $N, 'written + dropped == requests');
is($acc, $wr, 'accepted == written');
is($s->{records}{lost}, 0, 'lost 0');
cmp_ok($s->{ring}{used}, '<=', $cap, 'used <= capacity');

my @recs = $t->records('aff.log');
is(scalar @recs, $wr, 'records in the file == written');
is($s->{bytes_written}, -s $t->dir . '/aff.log', 'bytes_written');
is(Aff::seq_problem(@recs), '', 'seq of accepted records contiguous');
my %sent = map { Aff::click_id($_) => 1 } @{ $res->{locations} };
is(scalar(grep { $_->{type} eq 'click' && !$sent{ $_->{click_id} } } @recs),
    0, 'every recorded click id was sent');
my %ids;
$ids{ $_->{click_id} }++ for grep { $_->{click_id} } @recs;
is(scalar(grep { $_ > 1 } values %ids), 0, 'no duplicate records');

# after the burst the zone records again
my $r = $t->get('/go/a');
is($r->{status}, 302, 'after the burst: 302');
ok($t->wait_for(sub { $t->status_json->{records}{written} == $wr + 1 }, 5),
    'after the burst: the next record is written');
@recs = $t->records('aff.log');
is($recs[-1]{click_id}, Aff::click_id($r->{headers}{location}),
    'after the burst: its click id');
is(Aff::seq_problem(@recs), '', 'seq still contiguous');

$t->stop;
unlike($t->error_log, qr/\[(crit|emerg)\]/, 'no crit/emerg in error.log');

done_testing;
