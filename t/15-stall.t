# A producer that stalls between claiming a slot and publishing it (gdb
# stops it) while another generation of workers flushes the same ring
# (a reload: the old worker is stopped, the new one runs):
#   A. the stall was first seen by a worker whose cached clock is ahead
#      of the flushing worker's: the slot is not given up at once (the
#      difference was unsigned and wrapped: a false "lost");
#   B. a producer stopped while formatting its record, while the ring
#      wraps round: it cannot write into a slot of the next lap (it used
#      to format straight into the slot it had claimed);
#   C. a producer stopped after it began copying into its slot: the slot
#      is given up (lost, seq gap) but quarantined, so the next lap stops
#      there (records dropped and counted) until the writer hands it back;
#   D. the same writer killed: the flusher finds it gone and frees the
#      slot by itself.
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

Aff->allow_log(qr/was never published, counted as lost/,
               qr/exited on signal 9\b/);

my $links = "a\thttps://a.example/\tanna\tsummer\n";
my $SH = $AffGdb::SH;

# one worker, stopped at $func by gdb while it serves a request; then a
# reload: the new worker runs beside it.  Returns ($t, $gdb, $old worker,
# $new worker, $client pid).
sub stopped_worker {
    my (%o) = @_;
    my $t = Aff->new(
        workers => 1,
        http    => Aff::std_http(flush => '100ms', size => $o{size} // '16m'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    for (1 .. 3) { $t->get('/go/a') }
    $t->wait_for(sub { $t->status_json->{records}{written} == 3 }, 5);

    my ($w) = $t->worker_pids;
    my $g = AffGdb::stop_at($t, $w, $o{func}, hold => !$o{kill},
                            then => $o{then});
    return unless $g;
    my $cpid = fork // die;
    if (!$cpid) {
        eval { $t->get('/go/a', {}, timeout => 60) };
        POSIX::_exit(0);
    }
    AffGdb::hit($t, $g, 20) or return;
    $t->signal('HUP');
    my $w2;
    $t->wait_for(sub { ($w2) = grep { $_ != $w } $t->worker_pids(1); $w2 },
                 10);
    return ($t, $g, $w, $w2, $cpid);
}

# --- A. a stall noted by a clock ahead ------------------------------------
{
    # stall_since as a worker with a clock 5 s ahead would have noted it
    my ($t, $g, $w, $w2, $cpid) = stopped_worker(
        func => 'ngx_http_affiliate_ring_publish',
        then => ["set var \$sh = $SH",
                 'set var $sh->stall_pos = $sh->tail + 1',
                 'set var $sh->stall_since = '
                 . '*(unsigned long *) &ngx_current_msec + 5000']);
    SKIP: {
        skip 'gdb could not stop the worker', 1 unless $w2;
        ok(1, 'A: the old worker is stopped in publish, a new one runs');
        sleep 0.7;    # several flushes of the new worker
        my $s = $t->status_json;
        is($s->{records}{lost}, 0, 'A: no record given up while it stalls');
        AffGdb::release($g);
        waitpid $cpid, 0;
        ok($t->wait_for(sub { $t->status_json->{records}{written} == 4 }, 5),
            'A: the stalled record is written once it is published');
        $s = $t->status_json;
        is($s->{records}{lost}, 0, 'A: lost 0');
        my @recs = $t->records('aff.log');
        is(scalar @recs, 4, 'A: 4 records');
        is(Aff::seq_problem(@recs), '', 'A: seq contiguous');
        unlike($t->error_log, qr/never published/, 'A: no "lost" alert');
    }
    AffGdb::end($g) if $g;
    $t->stop if $t;
}

# --- B. stopped while formatting, the ring wraps ---------------------------
{
    my ($t, $g, $w, $w2, $cpid) = stopped_worker(
        func => 'ngx_http_affiliate_record_format', size => '1m');
    SKIP: {
        skip 'gdb could not stop the worker', 1 unless $w2;
        sleep 1.5;    # longer than the stall limit
        my $s = $t->status_json;
        my $cap = $s->{ring}{capacity};
        my $lost = $s->{records}{lost};
        is($s->{ring}{used}, 0, "B: ring empty (capacity $cap, lost $lost)");

        # the new worker's flushes wait: the next lap stays in the ring
        like(AffGdb::run($w2, "set var \$sh = $SH",
                         'set var $sh->retry_at = 4000000000',
                         'print $sh->retry_at'),
             qr/= 4000000000/, 'B: flushing held back');
        my $res = $t->load('/go/a', total => $cap, concurrency => 1,
                           collect => 1);
        is($res->{statuses}{302}, $cap, "B: a lap of $cap requests");
        $s = $t->status_json;
        is($s->{records}{dropped}, 0, 'B: all of them in the ring');

        AffGdb::release($g);    # the stopped producer goes on
        waitpid $cpid, 0;
        sleep 0.3;
        AffGdb::run($w2, "set var \$sh = $SH", 'set var $sh->retry_at = 0');

        ok($t->wait_for(sub { $t->status_json->{ring}{used} == 0 }, 10),
            'B: the ring is written');
        $s = $t->status_json;
        my @recs = $t->records('aff.log');
        my %ids;
        $ids{ $_->{click_id} }++ for @recs;
        is(scalar(grep { ($ids{ Aff::click_id($_) } // 0) != 1 }
            @{ $res->{locations} }), 0,
            'B: every click of the lap is in the log once');
        is(scalar(grep { $_->{link} ne 'a' || $_->{type} ne 'click' } @recs),
            0, 'B: no damaged record');
        my @seq = sort { $a <=> $b } map { $_->{seq} } @recs;
        my $gaps = $seq[-1] - $seq[0] + 1 - @seq;
        is($gaps, $s->{records}{lost}, 'B: seq gaps == lost');
        is(scalar(@recs), $s->{records}{written}, 'B: written == lines');
        is($s->{records}{written} + $s->{records}{lost},
           $s->{records}{accepted}, 'B: written + lost == accepted');
    }
    AffGdb::end($g) if $g;
    $t->stop if $t;
}

# --- C. stopped after it began copying: quarantine -------------------------
for my $how ('release', 'kill') {
    my ($t, $g, $w, $w2, $cpid) = stopped_worker(
        func => 'ngx_http_affiliate_ring_publish', size => '1m',
        kill => $how eq 'kill');
    my $p = $how eq 'kill' ? 'D' : 'C';
    SKIP: {
        skip 'gdb could not stop the worker', 1 unless $w2;
        ok($t->wait_for(sub { $t->status_json->{records}{lost} == 1 }, 5),
            "$p: the stalled slot is given up");
        like($t->error_log, qr/never published, counted as lost \(its writer is stalled, the slot is quarantined\)/,
            "$p: as quarantined");
        my $s = $t->status_json;
        my $cap = $s->{ring}{capacity};
        my $res = $t->load('/go/a', total => $cap + 20, concurrency => 1,
                           collect => 1);
        is($res->{statuses}{302}, $cap + 20, "$p: every request answered");
        $s = $t->status_json;
        is($s->{records}{dropped}, 21,
            "$p: the lap stops at the quarantined slot (21 dropped)");

        if ($how eq 'kill') {
            kill 'KILL', $w;
            AffGdb::end($g);
        } else {
            AffGdb::release($g);
        }
        waitpid $cpid, 0;
        ok($t->wait_for(sub {
            $t->get('/go/a');
            $t->status_json->{records}{accepted} > $s->{records}{accepted};
        }, 5), "$p: the slot is free again");
        for (1 .. 10) { $t->get('/go/a') }
        ok($t->wait_for(sub { $t->status_json->{ring}{used} == 0 }, 5),
            "$p: all written");
        $s = $t->status_json;
        my @recs = $t->records('aff.log');
        is(scalar(@recs), $s->{records}{written}, "$p: written == lines");
        my @seq = sort { $a <=> $b } map { $_->{seq} } @recs;
        is($seq[-1] - $seq[0] + 1 - @seq, 1, "$p: one seq gap");
        is($s->{records}{lost}, 1, "$p: lost 1");
        my %ids = map { $_->{click_id} => 1 } @recs;
        is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
            21, "$p: the dropped clicks are the only ones missing");
        is(scalar(grep { $_->{link} ne 'a' } @recs), 0, "$p: no damaged record");
    }
    AffGdb::end($g) if $g;
    $t->stop if $t;
}

done_testing;
