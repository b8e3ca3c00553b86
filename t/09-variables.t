# $affiliate_click_id, $affiliate_link, $affiliate_creator and
# $affiliate_campaign in add_header ... always and in access_log.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $links = "anna-summer\thttps://b.example/p?x=1#top\tanna\tsummer camp\n";

my $t = Aff->new(
    http => Aff::std_http(
        http => 'log_format aff "[$affiliate_click_id|$affiliate_link|'
              . '$affiliate_creator|$affiliate_campaign|$status]";',
        go => 'add_header X-Click $affiliate_click_id always; '
            . 'add_header X-Link $affiliate_link always; '
            . 'add_header X-Creator $affiliate_creator always; '
            . 'add_header X-Campaign $affiliate_campaign always; '
            . 'access_log %%DIR%%/access.log aff;',
        server => 'location /plain { return 200 "[$affiliate_click_id]"; }',
    ),
    files => { 'links.tsv' => $links },
);
$t->start;

my $r = $t->get('/go/Anna-Summer');
is($r->{status}, 302, 'click: 302');
my $id = Aff::click_id($r->{headers}{location});
like($id, qr/^$Aff::ULID$/, 'click id in Location');
is($r->{headers}{'x-click'}, $id, '$affiliate_click_id is the Location id');
is($r->{headers}{'x-link'}, 'Anna-Summer', '$affiliate_link as requested');
is($r->{headers}{'x-creator'}, 'anna', '$affiliate_creator');
is($r->{headers}{'x-campaign'}, 'summer camp', '$affiliate_campaign');

my $m = $t->get('/go/nope');
is($m->{status}, 404, 'miss: 404');
ok(!defined $m->{headers}{'x-click'}, 'miss: no click id header');
is($m->{headers}{'x-link'}, 'nope', 'miss: $affiliate_link');
ok(!defined $m->{headers}{'x-creator'}, 'miss: no creator header');
ok(!defined $m->{headers}{'x-campaign'}, 'miss: no campaign header');

my $p = $t->get('/plain');
is($p->{body}, '[]', 'outside affiliate locations: empty');

ok($t->wait_for(sub {
    my $c = $t->read_file('access.log') // '';
    ($c =~ tr/\n//) >= 2;
}, 5), 'access log written');
my @acc = split /\n/, $t->read_file('access.log');
is($acc[0], "[$id|Anna-Summer|anna|summer camp|302]", 'access_log: click');
is($acc[1], '[-|nope|-|-|404]', 'access_log: miss');

ok($t->wait_for(sub { scalar($t->raw_lines('aff.log')) == 2 }, 5),
    '2 records');
my @recs = $t->records('aff.log');
is($recs[0]{click_id}, $id, 'record has the same click id');

# each request has its own id
my %ids;
for (1 .. 50) {
    my $x = $t->get('/go/anna-summer');
    $ids{ $x->{headers}{'x-click'} // '' }++;
    is($x->{headers}{'x-click'}, Aff::click_id($x->{headers}{location}),
        "request $_: header id == Location id") if $_ <= 3;
}
is(scalar keys %ids, 50, '50 distinct click ids');

$t->stop;

# a relative affiliate_log path is taken against the prefix (nginx -p)
{
    my $u = Aff->new(
        http  => Aff::std_http() =~ s{%%DIR%%/aff\.log}{logs/rel.log}r,
        files => { 'links.tsv' => $links },
    );
    $u->start;
    $u->get('/go/anna-summer');
    ok($u->wait_for(sub { scalar($u->raw_lines('logs/rel.log')) == 1 }, 5),
        'relative log path: written under the prefix');
    $u->stop;
}

done_testing;
