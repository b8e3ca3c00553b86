# Workers that die at the worst moments (gdb stops them there, then
# SIGKILL; no exit drain runs):
#   1. between claiming a slot and publishing it: after 1 s the flusher
#      finds the writer gone, frees the slot, counts it lost, logs an alert
#      and goes on;
#   2. while flushing, holding the flusher lease: the next worker takes
#      the lease over; nothing is lost or written twice;
#   3. idle, with records waiting in the ring: the new workers write them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep);
use Aff;
use AffGdb;
Aff->allow_log(qr/exited on signal 9\b/, qr/was never published, counted as lost/);

my $CAN_GDB = AffGdb::usable();

my $links = "a\thttps://a.example/\tanna\tsummer\n";

# --- 1. killed between claim and publish ---------------------------------
SKIP: {
    skip 'gdb is not installed or cannot attach (apt-get install gdb)', 1
        unless $CAN_GDB;
    my $t = Aff->new(
        workers => 1,
        http    => Aff::std_http(flush => '100ms'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;

    for (1 .. 5) { $t->get('/go/a') }
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 5 }, 5),
        'claim/publish: 5 records written');

    my ($w) = $t->worker_pids;
    my $g = AffGdb::stop_at($t, $w, 'ngx_http_affiliate_ring_publish');
    if (!$g) {
        fail('gdb could not attach to the worker');
        last SKIP;
    }

    # a request that stops the worker inside publish
    my $cpid = fork // die;
    if (!$cpid) {
        eval { $t->get('/go/a', {}, timeout => 20) };
        POSIX::_exit(0);
    }
    ok(AffGdb::hit($t, $g, 20), 'the worker stopped in publish');
    kill 'KILL', $w;
    AffGdb::end($g);
    waitpid $cpid, 0;

    ok($t->wait_for(sub {
        my @n = $t->worker_pids;
        @n == 1 && $n[0] != $w;
    }, 10), 'the master starts a new worker');

    my @after;
    for (1 .. 5) {
        my $r = $t->get('/go/a');
        is($r->{status}, 302, "after the kill: request $_ answered");
        push @after, Aff::click_id($r->{headers}{location});
    }
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 10 }, 10),
        'after the kill: the 5 new records are written');
    my $s = $t->status_json;
    is($s->{records}{accepted}, 11, 'accepted 11 (one claimed by the dead)');
    is($s->{records}{lost}, 1, 'lost 1');
    is($s->{records}{written}, 10, 'written 10');
    is($s->{records}{dropped}, 0, 'dropped 0');
    is($s->{ring}{used}, 0, 'ring empty');
    like($t->error_log,
        qr/\[alert\].*never published, counted as lost \(its writer died\)/,
        'the lost record is logged as an alert');

    my @recs = $t->records('aff.log');
    is(scalar @recs, 10, '10 records in the file');
    my $base = $recs[0]{seq};
    is_deeply([map { $_->{seq} } @recs],
        [$base .. $base + 4, $base + 6 .. $base + 10],
        'seq: one gap, exactly where the lost record was');
    is_deeply([map { $_->{click_id} } @recs[5 .. 9]], \@after,
        'the records after the gap are the new requests');
    $t->stop;
}

# --- 2. the flusher killed holding the lease -----------------------------
SKIP: {
    skip 'gdb is not installed or cannot attach (apt-get install gdb)', 1
        unless $CAN_GDB;
    my $t = Aff->new(
        workers => 1,
        # the first flush is 10 s after the start: gdb is attached and
        # the requests are sent by then
        http    => Aff::std_http(flush => '10s'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;

    my ($w) = $t->worker_pids;
    my $g = AffGdb::stop_at($t, $w, 'ngx_http_affiliate_flush_batch');
    if (!$g) {
        fail('gdb could not attach to the worker');
        last SKIP;
    }
    # requests while gdb is attached: the breakpoint is in the flusher only
    my @sent;
    for (1 .. 20) {
        my $r = $t->get('/go/a');
        push @sent, Aff::click_id($r->{headers}{location});
    }
    is(scalar(grep { defined } @sent), 20, 'lease: 20 redirects');
    is($t->status_json->{ring}{used}, 20, 'lease: 20 records in the ring');
    ok(AffGdb::hit($t, $g, 15), 'the worker stopped in a flush');
    kill 'KILL', $w;
    AffGdb::end($g);

    ok($t->wait_for(sub {
        my @n = $t->worker_pids;
        @n == 1 && $n[0] != $w;
    }, 10), 'lease: the master starts a new worker');
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 20 }, 15),
        'lease: the new worker takes the lease over and writes');
    my $s = $t->status_json;
    is($s->{records}{lost}, 0, 'lease: lost 0');
    is($s->{records}{accepted}, 20, 'lease: accepted 20');
    my @recs = $t->records('aff.log');
    is(scalar @recs, 20, 'lease: 20 records, none twice');
    is_deeply([map { $_->{click_id} } @recs], \@sent, 'lease: in order');
    is(Aff::seq_problem(@recs), '', 'lease: seq contiguous');
    $t->stop;
}

# --- 3. idle workers killed with records waiting --------------------------
{
    my $t = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '2s', size => '64m'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;

    $t->get('/go/a');
    ok($t->wait_for(sub { $t->status_json->{records}{written} == 1 }, 5),
        'idle: first record written');

    my $N = 1000;
    my $res = $t->load('/go/a', total => $N, concurrency => 4, collect => 1);
    is($res->{statuses}{302}, $N, "idle: $N redirects");
    my $s = $t->status_json;
    cmp_ok($s->{ring}{used}, '>', 0,
        "idle: records waiting in the ring ($s->{ring}{used})");

    my @old = $t->worker_pids;
    is(scalar @old, 2, 'idle: 2 workers');
    kill 'KILL', @old;
    ok($t->wait_for(sub {
        my %o = map { $_ => 1 } @old;
        my @w = $t->worker_pids;
        @w == 2 && !grep { $o{$_} } @w;
    }, 10), 'idle: the master starts 2 new workers');

    ok($t->wait_for(sub {
        $t->status_json->{records}{written} == $N + 1 }, 10),
        'idle: the new workers write the waiting records');
    $s = $t->status_json;
    is($s->{records}{accepted}, $N + 1, 'idle: accepted');
    is($s->{records}{lost}, 0, 'idle: lost 0');
    is($s->{clicks}, $N + 1, 'idle: clicks kept');

    my $r = $t->get('/go/a');
    is($r->{status}, 302, 'idle: after the kill: 302');
    ok($t->wait_for(sub { scalar($t->raw_lines('aff.log')) == $N + 2 }, 5),
        'idle: after the kill: recorded');

    my @recs = $t->records('aff.log');
    is(scalar @recs, $N + 2, 'idle: all records');
    my %ids = map { $_->{click_id} => 1 } @recs;
    is(scalar keys %ids, $N + 2, 'idle: distinct click ids');
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
        0, 'idle: every click id sent is in the log');
    is(Aff::seq_problem(@recs), '', 'idle: seq contiguous');
    $t->stop;
    unlike($t->error_log, qr/\[(crit|emerg)\]/, 'no crit/emerg in error.log');
}

done_testing;
