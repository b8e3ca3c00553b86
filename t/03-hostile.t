# Hostile bytes in User-Agent, Referer and the slug: every record is still
# exactly one line of valid UTF-8 JSON; invalid UTF-8 becomes U+FFFD.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use Aff;

my $t = Aff->new(
    http  => Aff::std_http(),
    files => { 'links.tsv' => "a\thttps://a.example/\tanna\tsummer\n" },
);
$t->start;

my $FFFD = "\x{FFFD}";
my $ctl = join '', map { chr } 1 .. 8, 11, 12, 14 .. 31, 127;

# [name, bytes sent, expected decoded string or a sub checking it]
my @cases = (
    ['quotes', 'say "hi" \'there\'', 'say "hi" \'there\''],
    ['backslashes', 'a\\b\\\\c\\"d\\u0041\\n', 'a\\b\\\\c\\"d\\u0041\\n'],
    ['tab', "a\tb", "a\tb"],
    ['control bytes', "x${ctl}y", "x${ctl}y"],
    ['json breakers', '"},{"type":"click","x":"', '"},{"type":"click","x":"'],
    ['valid utf-8', "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80",
        "h\x{e9}llo \x{2603} \x{1F600}"],
    ['lone 0xff', "a\xffb", "a${FFFD}b"],
    ['0xfe 0xff', "\xfe\xff", "$FFFD$FFFD"],
    ['lone continuation', "a\x80b", "a${FFFD}b"],
    ['bad second byte', "a\xc3\x28b", "a${FFFD}(b"],
    ['high latin-1', "caf\xe9!", "caf${FFFD}!"],
    # docs/log-format.md: each byte of invalid UTF-8 becomes U+FFFD
    ['overlong slash', "a\xc0\xafb", "a${FFFD}${FFFD}b"],
    ['overlong 3-byte', "a\xe0\x80\xafb", "a" . ($FFFD x 3) . "b"],
    ['surrogate', "a\xed\xa0\x80b", "a" . ($FFFD x 3) . "b"],
    ['above U+10FFFF', "a\xf4\x90\x80\x80b", "a" . ($FFFD x 4) . "b"],
    ['truncated 3-byte at end', "ab\xe2\x82", "ab$FFFD$FFFD"],
    ['truncated 4-byte mid', "a\xf0\x9f\x98b", "a" . ($FFFD x 3) . "b"],
    ['5-byte form', "a\xf8\x88\x80\x80\x80b", "a" . ($FFFD x 5) . "b"],
    ['valid after invalid', "\xff\xe2\x98\x83", "$FFFD\x{2603}"],
    ['mixed', "\"\\\x01\xff\xc3\xa9\x7f", "\"\\\x01$FFFD\x{e9}\x7f"],
    # nginx's own decoder takes any byte >= 0x80 as a continuation and
    # leads up to 0xff (found by t/50-request-fuzz.t)
    ['lead then lead', "x\xd7\xcfy", "x$FFFD${FFFD}y"],
    ['2-byte lead, lead', "x\xc2\xd8y", "x$FFFD${FFFD}y"],
    ['0xf8 lead', "x\xf8\x90\x80\x80y", "x" . ($FFFD x 4) . "y"],
    ['3-byte with 0xff', "x\xe3\xbc\xffy", "x" . ($FFFD x 3) . "y"],
);

my @sent;
for my $c (@cases) {
    my ($name, $bytes) = @$c;
    my $r = $t->get('/go/a', [['User-Agent' => $bytes],
                              [Referer => "r:$bytes"]]);
    is($r->{status}, 302, "$name: 302");
    push @sent, $c;
}

# a User-Agent of 511 ASCII bytes and a multi-byte character across the
# 512-byte limit; one full of characters that need escaping
my @long = (
    ['utf-8 across the limit', ('a' x 511) . "\xe2\x98\x83" . 'tail'],
    ['quotes to the limit', '"' x 600],
    ['controls to the limit', "\x01" x 600],
    ['invalid to the limit', "\xff" x 600],
    ['4-byte chars', "\xf0\x9f\x98\x80" x 200],
);
for my $c (@long) {
    my $r = $t->get('/go/a', [['User-Agent' => $c->[1]]]);
    is($r->{status}, 302, "$c->[0]: 302");
}

# hostile bytes in the slug (a miss); %-encoded and raw
my @slugs = (
    ['%22%5C%01%FF', "\"\\\x01$FFFD"],
    ["q\"b\\c\xff\xc3\xa9", "q\"b\\c$FFFD\x{e9}"],
    ['%0A%0D%00x', "\n\r\x{0}x"],
);
for my $s (@slugs) {
    my $r = $t->get("/go/$s->[0]");
    ok($r->{status} == 404 || $r->{status} == 400,
        "slug $s->[0]: 404 or 400 ($r->{status})");
}

my $want = @cases + @long;
$t->wait_for(sub { scalar($t->raw_lines('aff.log')) >= $want + 2 }, 10);
sleep 0.3;

# every line: valid UTF-8, valid JSON, no raw control bytes
my @lines = $t->raw_lines('aff.log');
for my $i (0 .. $#lines) {
    my $l = $lines[$i];
    my $copy = $l;
    ok(eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK()); 1 },
        "line $i is valid UTF-8");
    unlike($l, qr/[\x00-\x1f]/, "line $i has no raw control bytes");
}
# the documented escapes, in the raw bytes of the line
my ($tabline) = grep { /"ua":"a\\tb"/ } @lines;
ok($tabline, 'tab written as \\t');
my ($ctlline) = grep { /"ua":"x\\u0001/ } @lines;
ok($ctlline, 'control bytes written as \\u00XX');
like($ctlline // '', qr/\\u001f\\u007fy"/i, 'DEL written as \\u007f');
my ($ffline) = grep { /"ua":"a\\ufffdb"/ } @lines;
ok($ffline, 'invalid byte written as \\ufffd');

my @recs = $t->records('aff.log');    # dies on invalid JSON
my @clicks = grep { $_->{type} eq 'click' } @recs;
is(scalar @clicks, $want, "$want click records");

for my $i (0 .. $#cases) {
    my ($name, $bytes, $exp) = @{ $cases[$i] };
    my $rec = $clicks[$i] or last;
    if (ref $exp eq 'Regexp') {
        like($rec->{ua}, $exp, "$name: ua");
        like($rec->{referer}, qr/^r:/, "$name: referer prefix");
        my $rexp = qr/^r:$exp/;
        (my $rs = $rec->{referer}) =~ s/^r://;
        like($rs, $exp, "$name: referer");
    } else {
        is($rec->{ua}, $exp, "$name: ua");
        is($rec->{referer}, "r:$exp", "$name: referer");
    }
    ok(!$rec->{truncated}, "$name: not truncated");
}

for my $i (0 .. $#long) {
    my ($name, $bytes) = @{ $long[$i] };
    my $rec = $clicks[@cases + $i] or last;
    my $ua = $rec->{ua};
    ok($rec->{truncated}, "$name: truncated");
    # 512 bytes of escaped output, cut at a character or escape boundary
    if ($name eq 'utf-8 across the limit') {
        is($ua, 'a' x 511, "$name: cut before the character");
    } elsif ($name eq 'quotes to the limit') {
        is($ua, '"' x 256, "$name: 256 quotes (\\\" is 2 bytes)");
    } elsif ($name eq 'controls to the limit') {
        is($ua, "\x01" x 85, "$name: 85 controls (\\u0001 is 6 bytes)");
    } elsif ($name eq 'invalid to the limit') {
        is($ua, $FFFD x 85, "$name: 85 U+FFFD (\\ufffd is 6 bytes)");
    } else {
        is($ua, "\x{1F600}" x 128, "$name: 128 whole characters");
    }
}

my @misses = grep { $_->{type} eq 'miss' } @recs;
my %links = map { $_->{link} => 1 } @misses;
for my $s (@slugs) {
    # nginx may refuse some of these with 400 before the module
    next unless grep { $_->{link} eq $s->[1] } @misses;
    ok($links{ $s->[1] }, "slug $s->[0] recorded as " . explain($s->[1]));
}
ok(exists $links{ $slugs[0][1] }, 'percent-encoded hostile slug recorded')
    or diag explain [map { $_->{link} } @misses];

is(Aff::seq_problem(@recs), '', 'seq contiguous');
is(scalar(@recs), scalar(@lines), 'one record per line');

$t->stop;
unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts in error.log');

done_testing;
