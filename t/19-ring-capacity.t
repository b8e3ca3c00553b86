# The ring's capacity (issue 11): a 16m zone holds at least 15,000 typical
# records (500 to 740 bytes each: a phone's User-Agent, a social network
# Referer, a destination with tracking parameters).  The log is symlinked
# to /dev/full, so the flusher cannot free anything: the records accepted
# before the first drop are what the ring holds.  Then the log is
# reopened onto a real file and every accepted record is written.  With
# the old 4 KiB fixed slots this was 3,173.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;
Aff->allow_log(qr/\[alert\].*affiliate zone "aff": write\(\) to /);

my $dest = 'https://shop.example/products/linen-summer-dress-blue?'
         . 'utm_source=tiktok&utm_medium=creator&utm_campaign=summer';
my $links = "a\t$dest\tanna\tsummer-2026\n";
my %headers = (
    'User-Agent' => 'Mozilla/5.0 (Linux; Android 14; SM-S918B) '
                  . 'AppleWebKit/537.36 (KHTML, like Gecko) '
                  . 'Chrome/131.0.6778.39 Mobile Safari/537.36',
    'Referer'    => 'https://www.tiktok.com/@anna.styles/video/'
                  . '7431234567890123456?is_from_webapp=1&sender_device=pc',
);

my $t = Aff->new(
    workers => 2,
    http    => Aff::std_http(size => '16m', flush => '100ms'),
    files   => { 'links.tsv' => $links },
);
my $log = $t->dir . '/aff.log';
symlink '/dev/full', $log or die "symlink: $!";
$t->start;

my $s = $t->status_json;
diag "ring: $s->{ring}{slots} slots of $s->{ring}{slot_size} bytes, "
   . "$s->{ring}{size} bytes";

my $N = 20_000;
my $res = $t->load('/go/a?utm_content=reel-42', total => $N,
                   concurrency => 8, headers => \%headers);
is($res->{errors}, 0, 'no client errors');
is($res->{statuses}{302}, $N, 'every click redirected');

$s = $t->status_json;
my $acc = $s->{records}{accepted};
diag "accepted $acc, dropped $s->{records}{dropped}, "
   . "$s->{ring}{used_slots} of $s->{ring}{slots} slots used";
cmp_ok($s->{records}{dropped}, '>', 0, 'the ring is full');
is($acc + $s->{records}{dropped}, $N, 'accepted + dropped == requests');
is($s->{records}{written}, 0, 'nothing written');
cmp_ok($acc, '>=', 15_000, "a 16m zone holds $acc records (>= 15,000)");
cmp_ok($s->{ring}{slots} - $s->{ring}{used_slots}, '<', 4,
       'full means less than a record left');

# the log becomes writable: what the ring held is written
unlink $log or die "unlink: $!";
$t->reopen(wait_file => 'aff.log');
ok($t->wait_for(sub { $t->status_json->{records}{written} == $acc }, 20),
   'after reopen: every accepted record is written');
my @lines = $t->raw_lines('aff.log');
is(scalar @lines, $acc, 'as many lines as accepted records');
my $bytes = 0;
$bytes += length($_) + 1 for @lines;
my $avg = $bytes / @lines;
diag sprintf 'records of %.0f bytes on average', $avg;
cmp_ok($avg, '>=', 500, 'typical records: at least 500 bytes');
cmp_ok($avg, '<=', 740, 'typical records: at most 740 bytes');
my @recs = $t->records('aff.log');
is(Aff::seq_problem(@recs), '', 'seq contiguous');
is(scalar(grep { $_->{type} ne 'click' || $_->{link} ne 'a' } @recs), 0,
   'no damaged record');
$s = $t->status_json;
cmp_ok($s->{ring}{capacity}, '>=', 15_000,
       "status: capacity $s->{ring}{capacity} records of this size");
$t->stop;

done_testing;
