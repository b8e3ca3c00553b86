# One flush event writes one buffer: a backlog of several buffers is
# written one write() per turn of the event loop, with epoll polled in
# between (strace shows an epoll_wait between any two writes of records),
# so the worker's clients are not kept waiting behind the whole backlog.
# It used to loop over the whole backlog in one event.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep);
use Aff;

my ($STRACE) = grep { -x } map { "$_/strace" } split /:/, $ENV{PATH};
plan skip_all => 'strace is not installed' unless $STRACE;

my $links = "a\thttps://a.example/\tanna\tsummer\n";

my $t = Aff->new(
    workers => 1,
    # flush=10s: nothing is written before the reopen below
    http    => Aff::std_http(flush => '10s', size => '64m'),
    files   => { 'links.tsv' => $links },
);
$t->start;
my $N = 6000;
my $cap = $t->status_json->{ring}{capacity};
cmp_ok($N, '<', $cap / 2, "$N records stay below the high-water mark");
my $res = $t->load('/go/a', total => $N, concurrency => 4);
is($res->{statuses}{302}, $N, "$N redirects");
my $s = $t->status_json;
is($s->{ring}{used}, $N, 'all waiting in the ring');

my ($w) = $t->worker_pids;
my $out = $t->dir . '/strace.out';
my $spid = fork // die;
if (!$spid) {
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    { exec $STRACE, '-p', $w, '-e', 'trace=write,epoll_wait', '-s', '8',
        '-o', $out }
    POSIX::_exit(127);
}
sleep 1;    # strace attached

SKIP: {
    skip 'strace could not attach', 1
        unless waitpid($spid, WNOHANG) == 0 && -e $out;

    $t->signal('USR1');    # the reopen hook starts the flush
    ok($t->wait_for(sub { $t->status_json->{records}{written} == $N }, 20),
        "all $N written");
    sleep 0.3;
    kill 'INT', $spid;
    waitpid $spid, 0;

    my ($run, $max, $writes, $bytes) = (0, 0, 0, 0);
    open my $fh, '<', $out or die "$out: $!";
    while (<$fh>) {
        if (/^write\(\d+, "\{\\"ts/ && /= (\d+)$/) {
            $writes++;
            $bytes += $1;
            $run++;
            $max = $run if $run > $max;
        } elsif (/^epoll_wait\(/) {
            $run = 0;
        }
    }
    close $fh;
    cmp_ok($writes, '>=', 3, "the backlog took $writes writes ($bytes bytes)");
    is($max, 1, 'at most one write of records between two epoll_wait calls');
    my @recs = $t->records('aff.log');
    is(scalar @recs, $N, "$N records");
    is(Aff::seq_problem(@recs), '', 'seq contiguous');
}
kill 'KILL', $spid;
waitpid $spid, 0;
$t->stop;

done_testing;
