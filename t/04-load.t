# 20,000 requests from concurrent clients against 2 workers: exactly
# 20,000 records with 20,000 distinct click ids, contiguous seq, and the
# status counters agree.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $N = 20_000;

my $t = Aff->new(
    workers => 2,
    http    => Aff::std_http(size => '16m', flush => '100ms'),
    files   => { 'links.tsv' => "a\thttps://a.example/x?y=1\tanna\tsummer\n"
                              . "b\thttps://b.example/\tbob\twinter\n" },
);
$t->start;

my $res = $t->load(sub { $_[0] % 2 ? '/go/a' : '/go/B' },
    total => $N, concurrency => 16, collect => 1,
    headers => { 'User-Agent' => 'load/1.0' });
diag sprintf '%d requests in %.2fs (%d retries)',
    $res->{total}, $res->{elapsed}, $res->{retries};

is($res->{errors}, 0, 'no client errors');
is($res->{statuses}{302}, $N, "$N redirects")
    or diag explain $res->{statuses};
is(scalar @{ $res->{locations} }, $N, "$N Locations");

my %resp_ids;
$resp_ids{ Aff::click_id($_) // 'none' }++ for @{ $res->{locations} };
is(scalar keys %resp_ids, $N, "$N distinct click ids in responses");

ok($t->wait_for(sub { $t->status_json->{records}{written} >= $N }, 20),
    'all records written');
sleep 0.3;

my @recs = $t->records('aff.log');
is(scalar @recs, $N, "exactly $N records");

my %ids;
$ids{ $_->{click_id} // 'null' }++ for @recs;
is(scalar keys %ids, $N, "$N distinct click ids in records");
is(scalar(grep { !$resp_ids{$_} } keys %ids), 0,
    'every recorded click id was sent in a Location');

is(scalar(grep { $_->{type} eq 'click' && $_->{status} == 302 } @recs), $N,
    'all records are clicks with status 302');
is(scalar(grep { $_->{creator} eq 'anna' } @recs), $N / 2, 'half for anna');
is(scalar(grep { $_->{link} eq 'B' } @recs), $N / 2, 'link B as requested');
is(scalar(grep { ($_->{ua} // '') eq 'load/1.0' } @recs), $N, 'ua kept');

is(Aff::seq_problem(@recs), '', 'seq has no gap and no repeat');
my @seq = map { $_->{seq} } @recs;
my $sorted = !grep { $seq[$_] < $seq[$_ - 1] } 1 .. $#seq;
ok($sorted, 'records are written in seq order');

# every Location's click id is in the log, and dest matches it
my %dest = map { $_->{click_id} => $_->{dest} } @recs;
my $bad = grep { ($dest{ Aff::click_id($_) } // '') ne $_ }
    @{ $res->{locations} };
is($bad, 0, 'dest of each record is the Location sent');

my $s = $t->status_json;
is($s->{clicks}, $N, 'status: clicks');
is($s->{misses}, 0, 'status: misses');
is($s->{records}{accepted}, $N, 'status: accepted');
is($s->{records}{written}, $N, 'status: written');
is($s->{records}{dropped}, 0, 'status: dropped');
is($s->{records}{lost}, 0, 'status: lost');
is($s->{ring}{used}, 0, 'status: ring empty');
is($s->{bytes_written}, -s $t->dir . '/aff.log', 'status: bytes_written');

$t->stop;
is(scalar($t->records('aff.log')), $N, 'no record added at exit');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

# more workers than cores, pipelined clients
{
    my $u = Aff->new(
        workers => 4,
        http    => Aff::std_http(flush => '50ms'),
        files   => { 'links.tsv' => "a\thttps://a.example/\tanna\tsummer\n" },
    );
    $u->start;
    my $M = 10_000;
    my $res = $u->load(sub { $_[0] % 4 ? '/go/a' : '/go/nope' },
        total => $M, concurrency => 12, pipeline => 20, collect => 1);
    is($res->{errors}, 0, '4 workers: no client errors');
    is($res->{statuses}{302}, $M * 3 / 4, '4 workers: redirects');
    is($res->{statuses}{404}, $M / 4, '4 workers: misses');
    ok($u->wait_for(sub {
        $u->status_json->{records}{written} >= $M }, 20),
        '4 workers: all written');
    my @recs = $u->records('aff.log');
    is(scalar @recs, $M, "4 workers: $M records");
    is(Aff::seq_problem(@recs), '', '4 workers: seq contiguous');
    my %ids = map { $_->{click_id} => 1 } grep { $_->{click_id} } @recs;
    is(scalar keys %ids, $M * 3 / 4, '4 workers: distinct click ids');
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
        0, '4 workers: every click id sent is in the log');
    my @seq = map { $_->{seq} } @recs;
    ok(!grep({ $seq[$_] < $seq[$_ - 1] } 1 .. $#seq),
        '4 workers: records in seq order');
    $u->stop;
}

done_testing;
