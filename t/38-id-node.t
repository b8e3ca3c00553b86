# Record identity across nodes: every record has "id" (a ULID unique per
# record; a click's or landing's id is its click_id) and "node" (the
# affiliate_node directive, by default the machine's hostname); a bad
# affiliate_node fails nginx -t.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Sys::Hostname;
use Aff;

my $KEY = 'postback-key-0123456789ABCDEF';
my $ULID = $Aff::ULID;

sub http {
    my ($node) = @_;
    my $line = defined $node ? "affiliate_node $node;" : '';
    return Aff::std_http(http => <<"EOF", server => <<'EOF');
    $line
    affiliate_postback_key %%DIR%%/postback.key;
EOF
        location = /conv { affiliate_conversion zone=aff; }
        location / { affiliate_capture zone=aff creator=ref; return 204; }
EOF
}

my %files = (
    'links.tsv'    => "a\thttps://shop.example/a\tanna\tsummer\n",
    'postback.key' => "$KEY\n",
);

# --- default node: the hostname ---------------------------------------------

my $t = Aff->new(http => http(), files => \%files);
$t->start;

my $r = $t->get('/go/a');
is($r->{status}, 302, 'click answered');
my $cid = Aff::click_id($r->{headers}{location});
is($t->get('/go/nope')->{status}, 404, 'miss answered');
is($t->get('/landing?ref=anna')->{status}, 204, 'landing answered');
is($t->get("/conv?key=$KEY&click_id=$cid&order_id=o1&amount=1.00"
           . "&currency=EUR")->{status}, 200, 'conversion answered');

$t->wait_for(sub { $t->records('aff.log') == 4 }, 10);
my @recs = $t->records('aff.log');
is(scalar @recs, 4, 'four records');
my %by = map { $_->{type} => $_ } @recs;

my $host = lc hostname();
for my $rec (@recs) {
    like($rec->{id}, qr/^$ULID$/, "$rec->{type}: id is a ULID");
    is(lc $rec->{node}, $host, "$rec->{type}: node is the hostname");
}
is($by{click}{id}, $cid, 'click: id is the click_id');
is($by{landing}{id}, $by{landing}{click_id}, 'landing: id is its click_id');
isnt($by{conversion}{id}, $cid, 'conversion: an id of its own');
my %seen;
$seen{$_->{id}}++ for @recs;
is(scalar keys %seen, 4, 'ids are distinct');
$t->stop;

# --- an explicit node --------------------------------------------------------

$t = Aff->new(http => http('edge-fra1.example'), files => \%files);
$t->start;
$t->get('/go/a') for 1 .. 3;
$t->wait_for(sub { $t->records('aff.log') == 3 }, 10);
@recs = $t->records('aff.log');
is(scalar(grep { $_->{node} eq 'edge-fra1.example' } @recs), 3,
   'affiliate_node names the node in every record');

# --- bad names fail nginx -t ----------------------------------------------

for my $bad ('"a b"', '"x\"y"', 'caf%C3', ('n' x 65), '""') {
    my ($rc, $out) = $t->conf_test(http($bad));
    isnt($rc, 0, "affiliate_node $bad refused");
    like($out, qr/affiliate_node .* in \S+test\.conf:\d+/,
         "affiliate_node $bad: message names file and line");
}
my ($rc, $out) = $t->conf_test(http('a') . "affiliate_node b;\n");
isnt($rc, 0, 'a second affiliate_node is refused');
like($out, qr/"affiliate_node" directive is duplicate/, 'duplicate named');
$t->stop;

done_testing;
