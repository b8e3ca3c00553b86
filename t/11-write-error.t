# write() to the log fails: the records stay in the ring, the ring fills,
# new records are dropped and counted while every request is still
# answered; once the log is writable again (reopen onto a good file) what
# the ring held is written, and recording goes on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;
Aff->allow_log(qr/\[alert\].*affiliate zone "aff": write\(\) to /);

my $links = "a\thttps://a.example/\tanna\tsummer\n";

# the smallest zone, so that the ring is full soon
my $probe = Aff->new(http => Aff::std_http(size => '1k'),
                     files => { 'links.tsv' => $links });
my (undef, $out) = $probe->conf_test;
my ($min) = $out =~ /minimum is (\d+)k/;
ok($min, "minimum zone size: ${\ ($min // '?')}k") or diag $out;
$min //= 512;

# --- a full ring, for sure: the log cannot be written --------------------
#
# aff.log is a symlink to /dev/full, so every write() fails and the records
# stay in the ring; once it is full, new records are dropped and requests
# are still answered.  Then the symlink is replaced by a real file and
# USR1 reopens it: what the ring held is written, nothing more.
{
    my $u = Aff->new(
        workers => 2,
        http    => Aff::std_http(size => "${min}k", flush => '100ms'),
        files   => { 'links.tsv' => $links },
    );
    my $log = $u->dir . '/aff.log';
    symlink '/dev/full', $log or die "symlink: $!";
    $u->start;

    my $M = 3000;
    my $res = $u->load(sub { $_[0] % 3 ? '/go/a' : '/go/nope' },
        total => $M, concurrency => 8, collect => 1);
    is($res->{errors}, 0, 'full ring: no client errors');
    is($res->{statuses}{302}, 2000, 'full ring: every click redirected');
    is($res->{statuses}{404}, 1000, 'full ring: every miss answered');
    cmp_ok($res->{elapsed}, '<', 30, 'full ring: requests do not wait');

    my $s = $u->status_json;
    my $cap = $s->{records}{accepted};
    my $free = $s->{ring}{slots} - $s->{ring}{used_slots};
    cmp_ok($cap, '>', 0, "full ring: $cap accepted");
    cmp_ok($free, '<', 3, "full ring: $free slots free, less than a record");
    is($s->{records}{dropped}, $M - $cap, 'full ring: the rest dropped');
    is($s->{records}{written}, 0, 'full ring: nothing written');
    is($s->{ring}{used}, $cap, 'full ring: used == accepted');
    is($s->{clicks}, 2000, 'full ring: clicks counted');
    is($s->{misses}, 1000, 'full ring: misses counted');
    like($u->error_log, qr/\[alert\].*affiliate zone "aff".*write\(\)/,
        'full ring: the write failure is logged');
    like($u->error_log, qr/affiliate zone "aff" is full/,
        'full ring: the drops are logged');

    unlink $log or die "unlink: $!";
    $u->reopen(wait_file => 'aff.log');
    ok(!-l $log, 'reopen made a regular file');
    ok($u->wait_for(sub { $u->status_json->{records}{written} == $cap }, 10),
        'after reopen: the ring is written');
    sleep 0.3;
    my @recs = $u->records('aff.log');
    is(scalar @recs, $cap, 'after reopen: capacity records in the file');
    is_deeply([map { $_->{seq} } @recs],
        [$recs[0]{seq} .. $recs[0]{seq} + $cap - 1],
        'after reopen: seq contiguous, in order');
    my %sent = map { Aff::click_id($_) => 1 } @{ $res->{locations} };
    is(scalar(grep { $_->{type} eq 'click' && !$sent{ $_->{click_id} } }
        @recs), 0, 'after reopen: recorded click ids were sent');
    $s = $u->status_json;
    is($s->{records}{written} + $s->{records}{dropped}, $M,
        'written + dropped == requests');
    is($s->{ring}{used}, 0, 'after reopen: ring empty');
    is($s->{bytes_written}, -s $log, 'after reopen: bytes_written');

    # and it records again
    my $r = $u->get('/go/a');
    ok($u->wait_for(sub { scalar($u->raw_lines('aff.log')) == $cap + 1 }, 5),
        'next record written');
    @recs = $u->records('aff.log');
    is($recs[-1]{click_id}, Aff::click_id($r->{headers}{location}),
        'next record: its click id');
    is($recs[-1]{seq}, $recs[-2]{seq} + 1, 'next record: next seq');
    $u->stop;
}

done_testing;
