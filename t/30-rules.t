# affiliate_rule: regex rules tried (in order, first match wins) when the
# link table has no slug; named and numbered captures and nginx variables
# in destination, creator and campaign; status=; the table wins over a
# rule; the record's link (the URI) and rule (the rule's number); rules of
# the server are inherited only by locations without rules of their own;
# no matching rule is a 404 miss.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Aff;

my $UA = 'Mozilla/5.0 (X11; Linux x86_64) AffTest/1.0';

my $http = <<'EOF';
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;

        affiliate_rule "^/[a-z]+/srv-(.*)$" https://shop.example/srv/$1
                       creator=s campaign=srv;

        location /go/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/go/p/(?<prod_id>[0-9]+)$"
                           https://shop.example/product/$prod_id
                           creator=$arg_ref campaign=prod;
            affiliate_rule "^/go/c/([a-z]+)/([a-z]+)$"
                           https://shop.example/cat/$2
                           creator=$1 campaign=$2 status=301;
            affiliate_rule "^/go/c/" https://shop.example/fallback
                           creator=fb campaign=fbc;
            affiliate_rule "^/go/(?<stem>.+)-x$" https://shop.example/x/$stem
                           creator=anna campaign=$arg_c status=307;
            affiliate_rule "^/go/(plain|other)$" https://shop.example/rule-$1
                           creator=rule campaign=rule;
            affiliate_rule "^/go/q$" "https://shop.example/s?sku=$arg_sku"
                           creator=q campaign=$arg_camp;
        }

        location /s303/ {
            affiliate_redirect zone=aff status=303;
            affiliate_rule "^/s303/z/(.*)$" https://shop.example/z/$1
                           creator=c campaign=k status=308;
            affiliate_rule "^/s303/(.*)$" https://shop.example/s/$1
                           creator=c campaign=k;
        }

        location /inh/ {
            affiliate_redirect zone=aff;
        }

        location /own/ {
            affiliate_redirect zone=aff;
            affiliate_rule "^/own/mine$" https://shop.example/mine
                           creator=o campaign=own;
        }

        location = /affiliate/status { affiliate_status zone=aff; }
    }
EOF

my $t = Aff->new(
    main  => 'pcre_jit on;',
    http  => $http,
    files => { 'links.tsv' =>
        "plain\thttps://shop.example/item\tbob\twinter\n" },
);
$t->start;

my $ULID = $Aff::ULID;

sub get {
    my ($path, %o) = @_;
    return $t->get($path, [['User-Agent' => $UA]], %o);
}

# the Location with the click id replaced by CLICK, and the id
sub loc {
    my ($r) = @_;
    my $l = $r->{headers}{location} // '';
    my $id = Aff::click_id($l);
    (my $norm = $l) =~ s/([?&]click_id=)$ULID(?=[&#]|$)/${1}CLICK/;
    return ($norm, $id);
}

sub utm {
    my ($c, $k) = @_;
    return "click_id=CLICK&utm_source=$c&utm_medium=affiliate"
        . "&utm_campaign=$k";
}

# [request, status, Location (CLICK for the id), link, rule, creator,
#  campaign]
my @cases = (
    ['/go/p/42?ref=zoe', 302,
        'https://shop.example/product/42?' . utm('zoe', 'prod'),
        '/go/p/42', 1, 'zoe', 'prod'],
    # matched against the decoded URI, without the query
    ['/go/p/%34%32?ref=max&x=1', 302,
        'https://shop.example/product/42?' . utm('max', 'prod'),
        '/go/p/42', 1, 'max', 'prod'],
    ['/go/c/shoes/red', 301,
        'https://shop.example/cat/red?' . utm('shoes', 'red'),
        '/go/c/shoes/red', 2, 'shoes', 'red'],
    # rule 2 does not match (upper case): rule 3
    ['/go/c/SHOES/red', 302,
        'https://shop.example/fallback?' . utm('fb', 'fbc'),
        '/go/c/SHOES/red', 3, 'fb', 'fbc'],
    # rules 3 and 4 both match: the first wins
    ['/go/c/foo-x?c=ignored', 302,
        'https://shop.example/fallback?' . utm('fb', 'fbc'),
        '/go/c/foo-x', 3, 'fb', 'fbc'],
    ['/go/abc-x?c=spring', 307,
        'https://shop.example/x/abc?' . utm('anna', 'spring'),
        '/go/abc-x', 4, 'anna', 'spring'],
    # rules 1 does not match (not only digits), rule 4 does
    ['/go/p/12-x?c=fall', 307,
        'https://shop.example/x/p/12?' . utm('anna', 'fall'),
        '/go/p/12-x', 4, 'anna', 'fall'],
    ['/go/other', 302,
        'https://shop.example/rule-other?' . utm('rule', 'rule'),
        '/go/other', 5, 'rule', 'rule'],
    # a variable in the destination's query
    ['/go/q?sku=A17&camp=winter', 302,
        'https://shop.example/s?sku=A17&' . utm('q', 'winter'),
        '/go/q', 6, 'q', 'winter'],
    # the location's status= is the default for rules without status=
    ['/s303/z/9', 308,
        'https://shop.example/z/9?' . utm('c', 'k'), '/s303/z/9', 1, 'c', 'k'],
    ['/s303/abc', 303,
        'https://shop.example/s/abc?' . utm('c', 'k'), '/s303/abc', 2, 'c', 'k'],
    # a location without rules of its own inherits the server's
    ['/inh/srv-yes', 302,
        'https://shop.example/srv/yes?' . utm('s', 'srv'),
        '/inh/srv-yes', 1, 's', 'srv'],
    ['/own/mine', 302,
        'https://shop.example/mine?' . utm('o', 'own'), '/own/mine', 1, 'o',
        'own'],
);

my %want;    # click id -> case
for my $c (@cases) {
    my ($path, $st, $loc) = @$c;
    my $r = get($path);
    is($r->{status}, $st, "$path: status $st");
    my ($norm, $id) = loc($r);
    is($norm, $loc, "$path: Location");
    like($id // '', qr/^$ULID$/, "$path: click_id is a ULID");
    is($r->{headers}{'cache-control'}, 'private, no-store',
        "$path: Cache-Control");
    is($r->{body}, '', "$path: empty body");
    $want{$id} = [@$c, $r->{headers}{location}] if defined $id;
}

# the table wins over a rule that matches too (rule 5 matches /go/plain)
my ($table_id, $table_loc);
{
    my $r = get('/go/plain');
    is($r->{status}, 302, '/go/plain: 302');
    my ($norm, $id) = loc($r);
    is($norm, 'https://shop.example/item?' . utm('bob', 'winter'),
        '/go/plain: the table link, not rule 5');
    ($table_id, $table_loc) = ($id, $r->{headers}{location});
    # the table is also used in a location with only inherited rules
    $r = get('/inh/plain');
    ($norm) = loc($r);
    is($norm, 'https://shop.example/item?' . utm('bob', 'winter'),
        '/inh/plain: the table link');
}

# no rule matches: 404 and a miss record
my @misses = ('/go/nothing', '/go/c', '/own/srv-no', '/inh/zzz',
              '/go/p/42/x');
for my $path (@misses) {
    my $r = get($path);
    is($r->{status}, 404, "$path: 404 (no rule matches)");
    ok(!defined $r->{headers}{location}, "$path: no Location");
}

# --- records ---------------------------------------------------------------

my $expect = scalar(keys %want) + 2 + @misses;
$t->wait_for(sub { scalar($t->records('aff.log')) >= $expect }, 10);
my @recs = $t->records('aff.log');
is(scalar @recs, $expect, "$expect records") or diag explain \@recs;

my %by_id = map { defined $_->{click_id} ? ($_->{click_id} => $_) : () }
            @recs;

for my $id (sort keys %want) {
    my ($path, $st, undef, $link, $rule, $creator, $campaign, $location)
        = @{ $want{$id} };
    my $rec = $by_id{$id};
    ok($rec, "$path: record with the click id") or next;
    is($rec->{type}, 'click', "$path: type click");
    is($rec->{link}, $link, "$path: link is the URI");
    ok(!ref $rec->{rule} && defined $rec->{rule}
        && $rec->{rule} =~ /^\d+$/, "$path: rule is a number");
    is($rec->{rule}, $rule, "$path: rule $rule");
    is($rec->{creator}, $creator, "$path: creator");
    is($rec->{campaign}, $campaign, "$path: campaign");
    is($rec->{dest}, $location, "$path: dest is the Location sent");
    is($rec->{status}, $st, "$path: status");
    ok(JSON::PP::is_bool($rec->{bot}) && !$rec->{bot}, "$path: bot false");
}

{
    my $rec = $by_id{$table_id // ''};
    ok($rec, 'table click: record') and do {
        ok(!defined $rec->{rule},
            'table click: rule is null');
        is($rec->{link}, 'plain', 'table click: link is the slug');
        is($rec->{dest}, $table_loc, 'table click: dest');
    };
}

my @m = grep { ($_->{type} // '') eq 'miss' } @recs;
is(scalar @m, scalar @misses, 'one miss record per unmatched request');
for my $m (@m) {
    is($m->{status}, 404, "miss $m->{link}: status 404");
    ok(!defined $m->{rule}, "miss: rule null (absent)");
    is($m->{click_id}, undef, 'miss: click_id null');
}

# raw line: rule is written as a number
my ($line) = grep { /"rule":\d/ } $t->raw_lines('aff.log');
like($line // '', qr/"rule":[1-9]\d*[,}]/, 'rule written as a JSON number');

# --- nginx -t: bad rules ---------------------------------------------------

sub conf_with {
    my ($loc) = @_;
    return <<"EOF";
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_links %%DIR%%/links.tsv;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /go/ { affiliate_redirect zone=aff; $loc }
    }
EOF
}

{
    my ($rc, $out) = $t->conf_test(conf_with(
        'affiliate_rule "^/go/(.*)$" https://shop.example/$1 creator=a '
        . 'campaign=b status=301;'));
    is($rc, 0, 'nginx -t: a good rule passes') or diag $out;

    for my $bad (
        ['bad regex', 'affiliate_rule "^/go/(unclosed$" https://a.example/ '
            . 'creator=a campaign=b;'],
        ['status=200', 'affiliate_rule "^/go/x$" https://a.example/ '
            . 'creator=a campaign=b status=200;'],
        ['status=404', 'affiliate_rule "^/go/x$" https://a.example/ '
            . 'creator=a campaign=b status=404;'],
        ['status=abc', 'affiliate_rule "^/go/x$" https://a.example/ '
            . 'creator=a campaign=b status=abc;'],
        ['unknown parameter', 'affiliate_rule "^/go/x$" https://a.example/ '
            . 'creator=a campaign=b colour=red;'],
        ['no destination', 'affiliate_rule "^/go/x$";'],
    ) {
        my ($rc, $out) = $t->conf_test(conf_with($bad->[1]));
        isnt($rc, 0, "nginx -t refuses a rule with $bad->[0]");
        like($out, qr/\[emerg\]/, "$bad->[0]: emerg") or diag $out;
    }

    # context: server, location; not http
    ($rc, $out) = $t->conf_test(<<'EOF');
    affiliate_zone  aff:16m;
    affiliate_log   %%DIR%%/aff.log zone=aff flush=100ms;
    affiliate_rule "^/go/x$" https://a.example/ creator=a campaign=b;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /go/ { affiliate_redirect zone=aff; }
    }
EOF
    isnt($rc, 0, 'nginx -t refuses affiliate_rule at http level');
}

ok($t->stop, 'stops on QUIT');
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
