# A link table of 50,000 lines (with comments and blank lines between):
# every sampled slug, in any case, redirects to its own destination with
# its own creator and campaign; near-miss slugs are 404.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Aff;

my $N = 50_000;
my $tsv = '';
for my $i (1 .. $N) {
    $tsv .= "# block $i\n\n" if $i % 1000 == 0;
    $tsv .= "link-$i\thttps://shop$i.example/p/$i?ref=$i\tcreator$i\tcamp"
          . ($i % 97) . "\n";
}

my $t = Aff->new(
    http  => Aff::std_http(),
    files => { 'links.tsv' => $tsv },
);

my $t0 = time;
my ($rc, $out) = $t->conf_test;
is($rc, 0, "nginx -t with $N links") or diag $out;
cmp_ok(time - $t0, '<', 10, sprintf 'nginx -t took %.2fs', time - $t0);
$t->start;

srand 42;
my @sample = (1, 2, $N, map { 1 + int rand $N } 1 .. 300);
my $bad = 0;
for my $i (@sample) {
    my $slug = "link-$i";
    $slug = uc $slug if $i % 3 == 0;
    my $r = $t->get("/go/$slug");
    my $want = qr{^https://shop$i\.example/p/$i\?ref=$i&click_id=$Aff::ULID&utm_source=creator$i&utm_medium=affiliate&utm_campaign=camp@{[ $i % 97 ]}$};
    unless ($r->{status} == 302 && ($r->{headers}{location} // '') =~ $want) {
        $bad++;
        diag "$slug: $r->{status} " . ($r->{headers}{location} // '');
    }
}
is($bad, 0, scalar(@sample) . ' sampled slugs redirect to their own links');

for my $slug ('link-0', 'link-' . ($N + 1), 'link-1x', 'link', 'link-01') {
    is($t->get("/go/$slug")->{status}, 404, "$slug: 404");
}

# all of them, under load
my $res = $t->load(sub { '/go/link-' . (1 + $_[0] % $N) },
    total => 20_000, concurrency => 8);
is($res->{statuses}{302}, 20_000, '20,000 requests over the table: 302');

$t->stop;
done_testing;
