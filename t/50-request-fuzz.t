# Whole-request fuzz: a seeded generator of hostile raw requests (slugs,
# paths, query strings, headers, cookies, X-Forwarded-For, Sec-Purpose,
# conversion parameters and bodies, the capture and status endpoints,
# broken HTTP), sent pipelined on keep-alive connections by forked clients
# to an nginx with every feature on.  Asserts: no 5xx (but the documented
# 503 + no-store for speculative navigations, and nginx core's 501/505 for
# an unknown Transfer-Encoding or HTTP version), no Location with a control
# byte or one that leads to a host other than the configured ones, every
# log line valid JSON, one record per counted answer (click Locations and
# click ids, landings, misses, conversions), the status counters equal to
# what the records say, seq contiguous, nothing dropped or lost.
#
#   AFF_FUZZ_SEED=N   the seed (printed; random by default)
#   AFF_FUZZ_N=N      requests (default 100,000, under a sanitizer too: issue
#                     7 asks for that many; measured on 2 busy vCPUs (load
#                     6-18): 850-2,500 requests/s with ASan+UBSan, 100,000
#                     in under 3 minutes with the records checked)
#   AFF_FUZZ_ONLY=i,j,...  send only these request numbers of the seed (a
#                     replay of the requests a failure names)
#   AFF_FUZZ_CLIENTS, AFF_FUZZ_PIPELINE   client processes, batch size
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use Math::BigInt;
use Time::HiRes qw(time sleep);
use Aff;
use HostileReq;

my $sanitizer = do {
    open my $fh, '<:raw', $Aff::NGINX or die "$Aff::NGINX: $!";
    local $/;
    my $bin = <$fh>;
    $bin =~ /__asan_init|__ubsan_handle/ ? 1 : 0;
};
my $seed = $ENV{AFF_FUZZ_SEED} // (int(time * 1000) ^ $$) % 1_000_000_000;
my $N = $ENV{AFF_FUZZ_N} // 100_000;
my @only = split /,/, $ENV{AFF_FUZZ_ONLY} // '';
$N = @only if @only;
my $clients = $ENV{AFF_FUZZ_CLIENTS} // (@only ? 1 : 4);
my $pipeline = $ENV{AFF_FUZZ_PIPELINE} // (@only ? 1 : 16);
diag "AFF_FUZZ_SEED=$seed AFF_FUZZ_N=$N (clients $clients, pipeline up to "
   . "$pipeline" . ($sanitizer ? ', sanitizer build' : '') . ')';

# geo: two databases of the GeoIP2 schemas, if they can be made
my $geo = eval { require MaxMind::DB::Writer::Tree; 1 };
my $geo_conf = $geo ? "    affiliate_geoip %%DIR%%/city.mmdb;\n"
                      . "    affiliate_geoip %%DIR%%/asn.mmdb;\n" : '';

my ($http, $files) = HostileReq::fuzz_conf(size => '64m', geo => $geo_conf);
my $t = Aff->new(workers => 2, main => 'pcre_jit on;', http => $http,
                 files => $files);
if ($geo) {
    require "$FindBin::Bin/lib/mkmmdb.pl";
    mkmmdb('city', $t->dir . '/city.mmdb');
    mkmmdb('asn', $t->dir . '/asn.mmdb');
} else {
    diag 'MaxMind::DB::Writer missing: no geo databases';
}
$t->start;

my $cap = $t->status_json->{ring}{capacity};
diag "ring capacity $cap records";

my $g = HostileReq->new(seed => $seed, port => $t->port);
my $res = HostileReq::run(
    port => $t->port, total => $N, clients => $clients,
    pipeline => $pipeline, seed => $seed, dir => $t->dir,
    gen => sub {
        my ($k, $ids) = @_;
        return $g->request(@only ? $only[$k] : $k, $ids);
    },
);
my $rate = $res->{total} / ($res->{elapsed} || 1);
diag sprintf '%d requests answered in %.1fs: %.0f requests/s '
    . '(%d connections, %d sent again after a close)',
    $res->{total}, $res->{elapsed}, $rate, $res->{conns} // 0,
    $res->{retries} // 0;
diag 'statuses: ' . join ' ', map { "$_:$res->{statuses}{$_}" }
    sort keys %{ $res->{statuses} };
diag 'by location: ' . join ' ', map { "$_:$res->{by}{$_}" }
    sort keys %{ $res->{by} };
diag "503 + no-store for speculative navigations: $res->{declined}"
    if $res->{declined};
diag 'nginx core 5xx (unknown Transfer-Encoding / HTTP version): '
    . join ' ', map { "$_:$res->{core5xx}{$_}" } sort keys %{ $res->{core5xx} }
    if $res->{core5xx};
diag "Locations with non-ASCII bytes: $res->{nonascii_loc}"
    if $res->{nonascii_loc};

is($res->{total}, $N, "$N requests answered");
my @prob = @{ $res->{prob} };
ok(!@prob, 'no 5xx, no bad Location, no broken answer')
    or diag scalar(@prob) . " problems, the first ones:\n"
        . join("\n", @prob[0 .. ($#prob < 19 ? $#prob : 19)])
        . "\nreproduce: AFF_FUZZ_SEED=$seed AFF_FUZZ_N=$N prove -v $0"
        . "\n   or only: AFF_FUZZ_SEED=$seed AFF_FUZZ_ONLY="
        . join(',', map { /^request (\d+)/ ? $1 : () }
                    @prob[0 .. ($#prob < 9 ? $#prob : 9)])
        . " prove -v $0";

# --- the records ----------------------------------------------------------

my $s = HostileReq::wait_written($t, 60);
ok($s, 'every accepted record written');
$s ||= $t->status_json;
my $t0 = time;
my ($recs, $bad) = HostileReq::read_records($t->dir . '/aff.log');
my @recs = @$recs;
ok(!@$bad, 'every log line is a JSON object in valid UTF-8')
    or diag join "\n", @$bad[0 .. ($#$bad < 4 ? $#$bad : 4)];
diag sprintf '%d records decoded in %.1fs', scalar @recs, time - $t0;

is($s->{records}{dropped}, 0, 'no record dropped');
is($s->{records}{lost}, 0, 'no record lost');
is(scalar @recs, $s->{records}{accepted}, 'one line per accepted record');
is(Aff::seq_problem(@recs), '', 'seq contiguous, no repeat');

my %type;
push @{ $type{ $_->{type} // 'none' } }, $_ for @recs;
is_deeply([sort grep { !/^(click|miss|landing|conversion)\z/ } keys %type],
          [], 'no unknown record type');
my @click = @{ $type{click} || [] };
my @miss  = @{ $type{miss} || [] };
my @land  = @{ $type{landing} || [] };
my @conv  = @{ $type{conversion} || [] };
diag sprintf 'records: %d clicks, %d misses, %d landings, %d conversions',
    scalar @click, scalar @miss, scalar @land, scalar @conv;

# multiset difference; diagnostics name a few of the differences, with
# $what->(key) describing a key
sub bag_diff {
    my ($name, $got, $want, $what) = @_;
    my %n;
    $n{$_}++ for @$got;
    $n{$_}-- for @$want;
    my @d = grep { $n{$_} } sort keys %n;
    return 1 unless @d;
    diag "$name: " . scalar(@d) . ' differ (+: only in the log, -: only in'
        . " the answers), e.g.\n"
        . join("\n", map {
              '  ' . ($n{$_} > 0 ? '+' : '-') . abs($n{$_}) . ' '
              . HostileReq::escape(Encode::encode('UTF-8', $_))
              . ($what ? ' ' . $what->($_) : '')
          } @d[0 .. ($#d < 7 ? $#d : 7)]);
    return 0;
}

# a Location as the record's dest holds it (escaped, cut at 1024)
sub as_dest { return (HostileReq::json_text($_[0], 1024))[0] }

my %rec_by_id = map { (($_->{click_id} // '') => $_) } @click, @land;
my $describe = sub {
    my $r = $rec_by_id{ $_[0] } or return '';
    return sprintf '(%s link %s status %s)', $r->{type},
        HostileReq::escape(Encode::encode('UTF-8', $r->{link} // 'null')),
        $r->{status} // 'null';
};

# speculative navigations declined (docs/directives.md, affiliate_speculative)
my @declined = grep { ($_->{status} // 0) == 503 } @click, @land;
my @redirect = grep { ($_->{status} // 0) =~ /^30[12378]\z/ } @click;
is(scalar(@click), @redirect + grep({ $_->{type} eq 'click' } @declined),
   'click records: a redirect or a declined speculative navigation');
is(scalar @declined, ($res->{by}{'go 503'} // 0) + ($res->{by}{'cap 503'} // 0),
   'one record per declined speculative navigation');
# (a HEAD is a bot for that first: docs/directives.md, affiliate_bot_ua)
is(scalar(grep { !$_->{bot}
                 || ($_->{bot_reason} // '') !~ /^(prefetch|head)\z/ }
           @declined), 0, 'declined: bot, bot_reason prefetch (or head)');
is(scalar(grep { $_->{type} eq 'click' && defined $_->{click_id} }
           @declined), 0, 'declined clicks: no click id');
ok(bag_diff('click dest vs Location', [map { $_->{dest} // '' } @redirect],
            [map { as_dest($_) } @{ $res->{go_locs} || [] }]),
   'one click record per redirect, its dest the Location sent');
ok(bag_diff('click ids', [map { $_->{click_id} // '' } @redirect],
            $res->{go_ids} || [], $describe),
   'one click record per click id sent');
is(scalar @miss, ($res->{by}{'go 404'} // 0) + ($res->{errpage} // 0),
   'one miss record per 404 (or error_page redirect) of a link location');
ok(bag_diff('landing ids',
            [map { $_->{click_id} } grep { defined $_->{click_id} } @land],
            $res->{landing_ids} || [], $describe),
   'one landing record per landing answered');
ok(bag_diff('strip dest vs Location',
            [map { $_->{dest} // '' }
             grep { ($_->{status} // 0) == 302 } @land],
            [map { as_dest($_) } @{ $res->{strip_locs} || [] }]),
   'strip=on: the landing record dest is the Location');
is(scalar @conv, $res->{conv_ok} // 0,
   'one conversion record per conversion answered 200');

my %ids;
$ids{ $_->{click_id} }++ for grep { defined $_->{click_id} } @click, @land;
is(scalar(grep { $ids{$_} > 1 } keys %ids), 0,
   'click and landing ids are distinct');

# --- status counters against the records ------------------------------------

my $human = sub { grep { !$_->{bot} } @_ };
is($s->{clicks}, scalar(() = $human->(@click)), 'status clicks');
is($s->{landings}, scalar(() = $human->(@land)), 'status landings');
is($s->{bot_clicks}, scalar(grep { $_->{bot} } @click, @land),
   'status bot_clicks');
is($s->{misses}, scalar @miss, 'status misses');
is($s->{unique_clicks},
   scalar(grep { ($_->{unique} // 0) eq '1' } @click, @land),
   'status unique_clicks');
is($s->{conversions}, scalar(grep { !$_->{duplicate} } @conv),
   'status conversions');
is($s->{duplicate_orders}, scalar(grep { $_->{duplicate} } @conv),
   'status duplicate_orders');
is($s->{rejected}, $res->{by}{'go 400'} // 0,
   'status rejected: the 400s of link locations');
is($s->{unauthenticated}, $res->{conv_json_403} // 0,
   'status unauthenticated: the 403s of conversion endpoints');
is($s->{invalid_conversions}, $res->{conv_json_400} // 0,
   'status invalid_conversions: the JSON 400s of conversion endpoints');
cmp_ok($s->{invalid_cookies}, '>', 0, 'forged cookies were counted')
    unless @only;

my %rev;
for my $c (grep { !$_->{duplicate} } @conv) {
    my ($i, $f) = ($c->{amount} // '') =~ /^(\d+)(?:\.(\d+))?\z/
        or next;
    $f = substr(($f // '') . '0000', 0, 4);
    $rev{ $c->{currency} } //= Math::BigInt->new(0);
    $rev{ $c->{currency} } += Math::BigInt->new($i . $f);
}
my %want = map {
    my $v = $rev{$_}->bstr;
    $v = ('0' x (5 - length $v)) . $v if length $v < 5;
    ($_ => substr($v, 0, -4) . '.' . substr($v, -4));
} keys %rev;
is_deeply($s->{revenue}, \%want, 'status revenue: the sum of the amounts');

is(scalar(grep { !defined $_->{ts} || $_->{ts} !~
                 /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/ } @recs),
   0, 'every ts is RFC 3339 with milliseconds');
cmp_ok(scalar(grep { $_->{truncated} } @recs), '>', 0,
       'some records were truncated (the long fields were generated)')
    unless @only;

ok($t->stop, 'nginx stops');
unlike($t->error_log, qr/exited on signal|\[alert\]|\[crit\]/,
       'no crash, alert or crit in error.log');
diag sprintf 'fuzz: %d requests, %.0f requests/s, seed %d', $res->{total},
    $rate, $seed;
done_testing;
