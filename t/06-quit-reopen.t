# nginx -s quit right after a burst writes every record (flush=10s, so only
# the exit drain can); -s reopen after a rename splits the records between
# the old and the new file with nothing lost or repeated; seq runs on
# without gap or repeat through reopen, reload and quit.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use Aff;

my $links = "a\thttps://a.example/\tanna\tsummer\n";

# --- quit drains the ring -------------------------------------------------
{
    my $t = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '10s', size => '64m'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    my $N = 3000;
    # a ring half full is flushed at once: stay below that
    my $cap = $t->status_json->{ring}{capacity};
    cmp_ok($N, '<', $cap / 2, "quit: $N records fill less than half of $cap");
    my $res = $t->load(sub { $_[0] % 10 ? '/go/a' : '/go/nope' },
        total => $N, concurrency => 8, collect => 1);
    is($res->{errors}, 0, 'quit: no client errors');
    is($res->{statuses}{302}, $N * 9 / 10, 'quit: redirects');
    is($res->{statuses}{404}, $N / 10, 'quit: misses');

    my $s = $t->status_json;
    is($s->{records}{written}, 0, 'quit: nothing written before quit');
    is($s->{records}{accepted}, $N, 'quit: all accepted');
    is($s->{ring}{used}, $N, 'quit: all waiting in the ring');
    is(-s $t->dir . '/aff.log' || 0, 0, 'quit: log empty before quit');

    ok($t->stop(10), 'quit: nginx exits');
    my @recs = $t->records('aff.log');
    is(scalar @recs, $N, "quit: $N records written at exit");
    is(Aff::seq_problem(@recs), '', 'quit: seq contiguous');
    my %ids = map { $_->{click_id} => 1 } grep { $_->{click_id} } @recs;
    is(scalar keys %ids, $N * 9 / 10, 'quit: distinct click ids');
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
        0, 'quit: every click id sent is in the log');
    unlike($t->error_log, qr/\[(alert|crit|emerg)\]/,
        'quit: no alerts in error.log');
}

# --- quit while clients still send ---------------------------------------
{
    my $t = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '10s'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    my $stopped;
    my $res = $t->load('/go/a', total => 20000, concurrency => 8,
        collect => 1, during => sub { sleep 0.3; $stopped = $t->stop(15) });
    ok($stopped, 'quit under load: nginx exits');
    my $ok = $res->{statuses}{302} // 0;
    cmp_ok($ok, '>', 0, "quit under load: $ok redirects before exit");
    my @recs = $t->records('aff.log');
    is(scalar @recs, $ok, 'quit under load: one record per redirect');
    my %ids = map { $_->{click_id} => 1 } @recs;
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
        0, 'quit under load: every click id sent is in the log');
    is(Aff::seq_problem(@recs), '', 'quit under load: seq contiguous');
}

# --- reopen after a rename, reload, quit: one seq through all ------------
{
    my $t = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '100ms'),
        files   => { 'links.tsv' => $links },
    );
    $t->start;
    my $dir = $t->dir;
    my @locs;
    my $batch = sub {
        my ($n) = @_;
        my $res = $t->load('/go/a', total => $n, concurrency => 4,
            collect => 1);
        is($res->{statuses}{302}, $n, "batch of $n: redirects");
        push @locs, @{ $res->{locations} };
        return map { Aff::click_id($_) } @{ $res->{locations} };
    };
    my $written = sub {
        my ($n) = @_;
        $t->wait_for(sub { $t->status_json->{records}{written} >= $n }, 10);
    };

    my @b1 = $batch->(1000);
    ok($written->(1000), 'batch 1 written');

    rename "$dir/aff.log", "$dir/aff.log.1" or die $!;
    my @b2 = $batch->(1000);    # still go to the renamed file
    ok($written->(2000), 'batch 2 written');
    ok(!-e "$dir/aff.log", 'no new file before reopen');

    $t->reopen(wait_file => 'aff.log');
    ok(-e "$dir/aff.log", 'reopen creates aff.log');
    my @b3 = $batch->(1000);
    ok($written->(3000), 'batch 3 written');

    my @old = $t->records('aff.log.1');
    my @new = $t->records('aff.log');
    my %in_old = map { $_->{click_id} => 1 } @old;
    my %in_new = map { $_->{click_id} => 1 } @new;
    is(scalar(@old) + scalar(@new), 3000, 'reopen: 3000 records in both');
    is(scalar(grep { !$in_old{$_} } @b1, @b2), 0,
        'batches 1 and 2 are in the old file');
    is(scalar(grep { !$in_new{$_} } @b3), 0, 'batch 3 is in the new file');
    is(scalar(grep { $in_old{$_} } keys %in_new), 0,
        'no record in both files');
    is(Aff::seq_problem(@old, @new), '', 'reopen: seq contiguous');
    my $max_old = (sort { $a <=> $b } map { $_->{seq} } @old)[-1];
    my $min_new = (sort { $a <=> $b } map { $_->{seq} } @new)[0];
    is($min_new, $max_old + 1, 'new file starts at the next seq');

    # reopen during load
    rename "$dir/aff.log", "$dir/aff.log.2" or die $!;
    my $res = $t->load('/go/a', total => 10000, concurrency => 8,
        collect => 1, during => sub {
            sleep 0.2;
            $t->reopen(wait_file => 'aff.log', settle => 0);
        });
    is($res->{statuses}{302}, 10000, 'reopen under load: redirects');
    push @locs, @{ $res->{locations} };
    ok($written->(13000), 'reopen under load: written');

    # reload under load, then another batch, then quit
    $res = $t->load('/go/a', total => 10000, concurrency => 8,
        collect => 1, during => sub { sleep 0.2; $t->reload });
    is($res->{statuses}{302}, 10000, 'reload under load: redirects');
    push @locs, @{ $res->{locations} };
    $batch->(500);
    ok($t->stop, 'quit');

    my @all = $t->records('aff.log.1', 'aff.log.2', 'aff.log');
    is(scalar @all, 23500, 'all 23500 records over three files');
    cmp_ok(scalar($t->records('aff.log')), '>', 0, 'the last file has some');
    my %ids;
    $ids{ $_->{click_id} }++ for @all;
    is(scalar keys %ids, 23500, 'no duplicate click id');
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @locs), 0,
        'every click id sent was written');
    is(Aff::seq_problem(@all), '', 'seq has no gap and no repeat over all');
    unlike($t->error_log, qr/\[(alert|crit|emerg)\]/,
        'no alerts in error.log');
}

done_testing;
