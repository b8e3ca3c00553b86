# nginx -s reload during load: every redirect has exactly one record, no
# record is duplicated, seq continues without gap or repeat, counters are
# kept, and links changed in the table take effect.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use Aff;

my $links = "a\thttps://a.example/\tanna\tsummer\n";

my $t = Aff->new(
    workers => 2,
    http    => Aff::std_http(flush => '100ms'),
    files   => { 'links.tsv' => $links },
);
$t->start;

# a few records before
my @before_loc;
for (1 .. 5) {
    my $r = $t->get('/go/a');
    is($r->{status}, 302, "before reload $_: 302");
    push @before_loc, $r->{headers}{location};
}
$t->get('/go/missing');
ok($t->wait_for(sub { scalar($t->raw_lines('aff.log')) == 6 }, 5),
    '6 records before the reload');
my @recs = $t->records('aff.log');
my $last_seq = $recs[-1]{seq};

# a reload without load: seq and counters continue
$t->reload(wait_old => 1);
my $r = $t->get('/go/a');
is($r->{status}, 302, 'after reload: 302');
ok($t->wait_for(sub { scalar($t->raw_lines('aff.log')) == 7 }, 5),
    '7th record');
@recs = $t->records('aff.log');
is($recs[-1]{seq}, $last_seq + 1, 'seq continues across reload');
my $s = $t->status_json;
is($s->{clicks}, 6, 'clicks kept across reload');
is($s->{misses}, 1, 'misses kept across reload');
is($s->{records}{accepted}, 7, 'accepted kept across reload');

# load with three reloads while it runs
my $N = 30_000;
my $reloads = 0;
my $res = $t->load('/go/a', total => $N, concurrency => 16, collect => 1,
    during => sub {
        for (1 .. 3) {
            sleep 0.2;
            $t->reload;
            $reloads++;
        }
    });
diag sprintf '%d requests in %.2fs, %d retries, %d reloads',
    $res->{total}, $res->{elapsed}, $res->{retries}, $reloads;
is($reloads, 3, '3 reloads during the load');
is($res->{errors}, 0, 'no client errors');
is($res->{statuses}{302}, $N, "$N redirects") or diag explain $res;

ok($t->wait_for(sub {
    my $s = $t->status_json;
    $s->{records}{written} + $s->{records}{dropped} >= $N + 7;
}, 20), 'all records flushed');
$t->reload(wait_old => 1);
sleep 0.3;

@recs = $t->records('aff.log');
my $clicks = grep { $_->{type} eq 'click' } @recs;
is($clicks, $N + 6, 'one click record per redirect sent');
is(scalar @recs, $N + 7, 'total records');

my %ids;
$ids{ $_->{click_id} }++ for grep { $_->{type} eq 'click' } @recs;
is(scalar keys %ids, $N + 6, 'no duplicate click ids');
my @missing = grep { !$ids{ Aff::click_id($_) } }
    @{ $res->{locations} }, @before_loc;
is(scalar @missing, 0, 'every click id sent is in the log')
    or diag "missing: @missing[0 .. ($#missing < 4 ? $#missing : 4)]";

is(Aff::seq_problem(@recs), '', 'seq has no gap and no repeat');
is((sort { $a <=> $b } map { $_->{seq} } @recs)[-1], $last_seq + $N + 1,
    'last seq');

$s = $t->status_json;
is($s->{clicks}, $N + 6, 'status: clicks');
is($s->{records}{accepted}, $N + 7, 'status: accepted');
is($s->{records}{written}, $N + 7, 'status: written');
is($s->{records}{dropped}, 0, 'status: dropped');
is($s->{records}{lost}, 0, 'status: lost');
is($s->{bytes_written}, -s $t->dir . '/aff.log', 'status: bytes_written');

# a changed link table takes effect on reload
$t->write_file('links.tsv', $links
    . "new\thttps://new.example/?a=b\tnina\tfresh\n");
is($t->get('/go/new')->{status}, 404, 'new link unknown before reload');
$t->reload(wait_old => 1);
$r = $t->get('/go/new');
is($r->{status}, 302, 'new link after reload');
like($r->{headers}{location},
    qr{^https://new\.example/\?a=b&click_id=$Aff::ULID&utm_source=nina&utm_medium=affiliate&utm_campaign=fresh$},
    'new link Location');

# a broken table is refused by reload; the old configuration keeps working
$t->write_file('links.tsv', "broken line without tabs\n");
$t->allow_log(qr/\[emerg\].*links\.tsv:1: /);
$t->signal('HUP');
sleep 1;
is($t->get('/go/new')->{status}, 302, 'bad table: old links still served');
like($t->error_log, qr/links\.tsv:1/, 'bad table: error names the line');

ok($t->wait_for(sub {
    scalar($t->raw_lines('aff.log')) == $N + 10 }, 5), 'last records');
@recs = $t->records('aff.log');
is(Aff::seq_problem(@recs), '', 'seq contiguous at the end');

$t->stop;
unlike($t->error_log, qr/\[(alert|crit)\]/, 'no alerts in error.log');

# with flush=10s, records waiting in the ring at a reload are written by
# the exiting workers at once, not at the next tick
{
    my $u = Aff->new(
        workers => 2,
        http    => Aff::std_http(flush => '10s', size => '64m'),
        files   => { 'links.tsv' => $links },
    );
    $u->start;
    my $res = $u->load('/go/a', total => 2000, concurrency => 4,
        collect => 1);
    is($res->{statuses}{302}, 2000, 'flush=10s: 2000 redirects');
    my $s = $u->status_json;
    is($s->{records}{written}, 0, 'flush=10s: nothing written yet');
    is($s->{ring}{used}, 2000, 'flush=10s: 2000 waiting');
    $u->reload(wait_old => 1);
    ok($u->wait_for(sub { $u->status_json->{records}{written} == 2000 }, 3),
        'after the reload the waiting records are written at once');
    my @recs = $u->records('aff.log');
    is(scalar @recs, 2000, 'flush=10s reload: 2000 records');
    is(Aff::seq_problem(@recs), '', 'flush=10s reload: seq contiguous');
    my %ids = map { $_->{click_id} => 1 } @recs;
    is(scalar(grep { !$ids{ Aff::click_id($_) } } @{ $res->{locations} }),
        0, 'flush=10s reload: every click id sent is in the log');
    $u->stop;
}

done_testing;
