# The flusher lease is taken over when its holder stops beating, whoever
# has the holder's pid now:
#   1. the holder is killed while flushing and its pid is given to an
#      unrelated live process (pid reuse, made with ns_last_pid): the new
#      worker takes the lease over once it is stale and writes everything
#      (kill(pid, 0) used to say "alive" and the ring was never written);
#   2. the holder is stopped (gdb) while flushing: another worker takes
#      over after the lease went stale; when the old holder runs again it
#      changes nothing (no record written twice, none lost).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use Aff;
use AffGdb;

plan skip_all => 'gdb is not installed or cannot attach (apt-get install gdb)'
    unless AffGdb::usable();

Aff->allow_log(qr/exited on signal 9\b/);

my $links = "a\thttps://a.example/\tanna\tsummer\n";

# a process that sleeps with pid $pid, made by setting ns_last_pid; returns
# its pid or undef
sub take_pid {
    my ($pid) = @_;
    for (1 .. 50) {
        open my $fh, '>', '/proc/sys/kernel/ns_last_pid' or return undef;
        print $fh $pid - 1;
        close $fh or return undef;
        my $kid = fork // return undef;
        if (!$kid) {
            POSIX::_exit(0) if $$ != $pid;
            sleep 120;
            POSIX::_exit(0);
        }
        return $kid if $kid == $pid;
        waitpid $kid, 0;
        sleep 0.05;
    }
    return undef;
}

# --- 1. the holder killed, its pid reused ---------------------------------
SKIP: {
    my $t = Aff->new(
        workers => 1,
        http    => Aff::std_http(flush => '10s'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    my ($w) = $t->worker_pids;
    my $g = AffGdb::stop_at($t, $w, 'ngx_http_affiliate_flush_batch');
    skip 'gdb could not attach', 1 unless $g;

    my @sent;
    for (1 .. 20) {
        push @sent, Aff::click_id($t->get('/go/a')->{headers}{location});
    }
    is($t->status_json->{ring}{used}, 20, 'reuse: 20 records waiting');
    $t->signal('USR1');    # the reopen hook flushes: gdb stops it there
    ok(AffGdb::hit($t, $g, 15), 'reuse: the worker stopped holding the lease');
    my $killed = time;
    kill 'KILL', $w;
    AffGdb::end($g);
    ok($t->wait_for(sub { my @n = $t->worker_pids; @n == 1 && $n[0] != $w },
                    10), 'reuse: a new worker');
    $t->wait_for(sub { !Aff::alive($w) }, 5);

    my $other = take_pid($w);
    skip "could not give pid $w to another process (ns_last_pid)", 1
        unless $other;
    ok(kill(0, $w), "reuse: pid $w is alive again, an unrelated process");

    # the new worker flushes at the reopen; the lease is stale 3 s after
    # the holder's last beat
    sleep 0.5;
    my $at = time;
    $t->signal('USR1');
    sleep 0.5;
    SKIP: {
        skip 'too slow to see the fresh lease', 1 if $at - $killed > 2.5;
        is($t->status_json->{records}{written}, 0,
            'reuse: not taken over while the beat is fresh');
    }
    sleep(3.5 - (time - $killed)) if time - $killed < 3.5;
    $t->signal('USR1');
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 20 }, 5),
        'reuse: the stale lease is taken over, the records written');
    like($t->error_log, qr/flusher lease taken over from pid $w, last beat/,
        'reuse: the take-over is logged');
    my @recs = $t->records('aff.log');
    is_deeply([map { $_->{click_id} } @recs], \@sent, 'reuse: all, in order');
    is(Aff::seq_problem(@recs), '', 'reuse: seq contiguous');
    kill 'KILL', $other;
    waitpid $other, 0;
    $t->stop;
}

# --- 2. the holder stopped, then running again ----------------------------
SKIP: {
    my $t = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '100ms'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    my ($holder) = $t->worker_pids;
    my $g = AffGdb::stop_at($t, $holder, 'ngx_http_affiliate_flush_batch',
                            hold => 1);
    skip 'gdb could not attach', 1 unless $g;
    ok(AffGdb::hit($t, $g, 10), 'stopped: a worker stopped holding the lease');
    my $stopped = time;

    my @sent;
    for (1 .. 30) {
        push @sent, Aff::click_id($t->get('/go/a')->{headers}{location});
    }
    is(scalar(grep { defined } @sent), 30, 'stopped: 30 redirects');
    sleep 1;
    is($t->status_json->{records}{written}, 0,
        'stopped: nothing written while the lease is fresh');
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 30 }, 10),
        'stopped: the other worker takes over once it is stale');
    cmp_ok(time - $stopped, '>=', 2.5, 'stopped: not before the lease is stale');

    AffGdb::release($g);    # the old holder runs on
    for (1 .. 10) {
        push @sent, Aff::click_id($t->get('/go/a')->{headers}{location});
    }
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 40 }, 5),
        'stopped: later records written');
    sleep 0.5;
    my $s = $t->status_json;
    is($s->{records}{written}, 40, 'stopped: written 40');
    is($s->{records}{lost}, 0, 'stopped: lost 0');
    my @recs = $t->records('aff.log');
    is(scalar @recs, 40, 'stopped: 40 lines, none twice');
    my %got = map { $_->{click_id} => 1 } @recs;
    is(scalar(grep { !$got{$_} } @sent), 0, 'stopped: every click written');
    is(Aff::seq_problem(@recs), '', 'stopped: seq contiguous');
    $t->stop;
}

done_testing;
