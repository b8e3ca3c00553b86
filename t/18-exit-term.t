# On TERM the master re-sends TERM at 150, 350, 750 and 1550 ms; after
# 1550 ms its next wake-up (a worker exiting, or the 3150 ms alarm) sends
# SIGKILL to every worker left.  A worker's exit drain must end before
# 1.55 s.  Here the flusher lease is held by a worker stopped by gdb, so
# the other workers' drains cannot write: they must give up and exit by
# themselves (code 0, a warning) in time; the drain used to wait 2 s, and
# the first worker to exit got the others SIGKILLed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Aff;
use AffGdb;

plan skip_all => 'gdb is not installed or cannot attach (apt-get install gdb)'
    unless AffGdb::usable();

my $links = "a\thttps://a.example/\tanna\tsummer\n";

my $t = Aff->new(
    workers => 3,
    http    => Aff::std_http(flush => '100ms'),
    files   => { 'links.tsv' => $links },
);
$t->start;
my ($holder, @drain) = $t->worker_pids;
# the stopped holder is killed by the master, as it should be
$t->allow_log(qr/worker process $holder exited on signal 9\b/);

my $g = AffGdb::stop_at($t, $holder, 'ngx_http_affiliate_flush_batch');
SKIP: {
    skip 'gdb could not attach', 1 unless $g;
    ok(AffGdb::hit($t, $g, 10), 'a worker stopped holding the lease');
    for (1 .. 10) { $t->get('/go/a') }
    is($t->status_json->{ring}{used}, 10, '10 records waiting');

    my $m = $t->master_pid;
    my $t0 = time;
    my %took;
    kill 'TERM', $m;
    $t->wait_for(sub {
        for my $w (@drain) {
            $took{$w} //= time - $t0 unless Aff::alive($w);
        }
        keys %took == @drain;
    }, 10);
    # the master sees the holder die only once gdb lets it go
    kill 'KILL', $holder;
    AffGdb::end($g);
    ok($t->wait_for(sub { !Aff::alive($m) }, 10), 'nginx exits');

    my $log = $t->error_log;
    for my $w (@drain) {
        my $s = $took{$w} // 99;
        cmp_ok($s, '<', 1.4,
            sprintf('worker %d drained and exited in %.2f s, before the '
                    . 'master may SIGKILL it (1.55 s)', $w, $s));
        like($log, qr/worker process $w exited with code 0/,
            "worker $w exited by itself");
        unlike($log, qr/worker process $w exited on signal/,
            "worker $w was not killed");
    }
    like($log, qr/\[warn\].*records left unflushed at exit/,
        'the drain warns about the records it could not write');
}

done_testing;
