# A full disk, for real: the log lives on a small tmpfs filled up but for
# two pages, so the flusher's write() is cut short in the middle of a
# record, then fails with ENOSPC.  The records not written stay in the ring;
# once space is freed the rest is written, starting exactly where the short
# write stopped: no line is broken, lost or written twice.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

plan skip_all => 'needs root to mount a tmpfs' if $> != 0;

Aff->allow_log(qr/\[alert\].*affiliate zone "aff": write\(\) to .*No space/);

my $links = "a\thttps://a.example/\tanna\tsummer\n";
my $u = Aff->new(
    workers => 2,
    http    => Aff::std_http(log => 'disk/aff.log', flush => '100ms'),
    files   => { 'links.tsv' => $links },
);
my $disk = $u->dir . '/disk';
mkdir $disk or die "mkdir $disk: $!";
system('mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', $disk) == 0
    or plan skip_all => 'mount -t tmpfs failed';
my $mounted = 1;

# a failing test still unmounts (nginx first: its log keeps the disk busy)
END {
    if ($mounted) {
        eval { $u->stop };
        system('umount', $disk);
    }
}

# fill the disk, then free two pages: 8,192 bytes are left for the log
my $filler = "$disk/filler";
open my $fh, '>', $filler or die "$filler: $!";
my $page = "\0" x 4096;
my $n = 0;
$n++ while syswrite($fh, $page) && $n < 1000;
close $fh;
truncate $filler, ($n - 2) * 4096 or die "truncate: $!";
cmp_ok($n, '>', 2, "disk filled ($n pages), two pages freed");

$u->start;
my $M = 100;
my $res = $u->load(sub { '/go/a' }, total => $M, concurrency => 4,
                   collect => 1);
is($res->{statuses}{302}, $M, 'full disk: every click redirected');

my $log = "$disk/aff.log";
ok($u->wait_for(sub { $u->error_log =~ /No space left on device/ }, 10),
   'full disk: the write error is logged');
my $short = -s $log;
is($short, 8192, 'full disk: the short write filled the two free pages');
my $s = $u->status_json;
cmp_ok($s->{records}{written}, '<', $M, 'full disk: not all written');
is($s->{records}{dropped}, 0, 'full disk: nothing dropped');

{
    open my $l, '<', $log or die "$log: $!";
    local $/;
    my $bytes = <$l>;
    unlike(substr($bytes, -1), qr/\n/,
           'the short write stopped in the middle of a record');
}

# free the space: the rest follows the cut, byte for byte
unlink $filler or die "unlink: $!";
ok($u->wait_for(sub { $u->status_json->{records}{written} == $M }, 10),
   'space freed: every record written');
my @lines = $u->raw_lines('disk/aff.log');
is(scalar @lines, $M, "space freed: $M lines");
my @recs = eval { $u->records('disk/aff.log') };
is(scalar @recs, $M, 'space freed: every line is a whole JSON record')
    or diag $@;
is_deeply([map { $_->{seq} } @recs], [$recs[0]{seq} .. $recs[0]{seq} + $M - 1],
          'space freed: seq contiguous, in order, none twice');
my %sent = map { Aff::click_id($_) => 1 } @{ $res->{locations} };
is(scalar(grep { $sent{ $_->{click_id} } } @recs), $M,
   'space freed: the click ids sent');
$s = $u->status_json;
is($s->{bytes_written}, -s $log, 'bytes_written is the file size');
$u->stop;
system('umount', $disk) == 0 and $mounted = 0;

done_testing;
