# tools/affiliate-report's fast paths (LINE for clicks and landings, CONV
# for conversions) against its JSON path, on damaged lines: bench/report.py's
# data set with one line in twelve mutated at random (a byte dropped, a
# quote, backslash, control byte, non-ASCII or JSON token put in, a value
# made null, "", a number or another type, a key repeated, a letter written
# as \u escape, the line cut); a variant and a device on some clicks
# before that.  The same records, each valid one written
# again with its keys sorted (so that no fast path takes it, JSON reads
# all), must give the same report to the byte, malformed lines with the
# same file, line and reason.  AFF_MUTATE_SEED picks other mutations;
# AFF_MUTATE_N the number of records.
use strict;
use warnings;
use Test::More;
use FindBin;
use JSON::PP;
use File::Temp qw(tempdir);

my $TOP = "$FindBin::Bin/..";
my $TOOL = "$TOP/tools/affiliate-report";
my $SEED = $ENV{AFF_MUTATE_SEED} // 20261126;
my $N = $ENV{AFF_MUTATE_N} // 24000;
my $dir = tempdir('aff-report-mutate-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{AFF_KEEP});
diag("AFF_MUTATE_SEED=$SEED AFF_MUTATE_N=$N" . ($ENV{AFF_KEEP} ? " in $dir"
                                                                : ''));

system('python3', '-c', <<'PY', "$TOP/bench", $dir, $SEED, $N) == 0
import gzip, json, os, random, sys
sys.path.insert(0, sys.argv[1])
import report
top, seed, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
src, fast, slow = (os.path.join(top, d) for d in ('src', 'fast', 'slow'))
report.generate(src, n, 2, seed=seed)
os.mkdir(fast)
os.mkdir(slow)
rnd = random.Random(seed)

INSERT = ['"', '\\', '\t', '\x01', '\x7f', '\u00e9', '\u2028', ' ', ',', ':',
          '{', '}', '[', '0', '-', 'n', 'null', 'true', '""', '\\u00',
          '\\ud800', '\\"', '1e3']
VALUES = ['null', '""', '0', '-1', '1.5', 'true', 'false', '"x"', '[]', '{}',
          '"\\u0000"', '"a\\"b"', '"\\/"', 'NaN', '1e400']


def mutate(line):
    kind = rnd.randrange(8)
    body = line[:-1]
    if kind == 0 and body:                       # a byte dropped
        i = rnd.randrange(len(body))
        return body[:i] + body[i + 1:] + '\n'
    if kind == 1:                                # something put in
        i = rnd.randrange(len(body) + 1)
        return body[:i] + rnd.choice(INSERT) + body[i:] + '\n'
    if kind in (2, 3):                           # a value replaced
        try:
            o = json.loads(body)
        except ValueError:
            return line
        keys = list(o)
        k = rnd.choice(keys)
        start = body.find('"%s":' % k)
        if start < 0:
            return line
        start += len(k) + 3
        end = start
        depth = 0
        instr = False
        while end < len(body):
            c = body[end]
            if instr:
                if c == '\\':
                    end += 1
                elif c == '"':
                    instr = False
            elif c == '"':
                instr = True
            elif c in '[{':
                depth += 1
            elif c in ']}':
                if depth == 0:
                    break
                depth -= 1
            elif c == ',' and depth == 0:
                break
            end += 1
        return body[:start] + rnd.choice(VALUES) + body[end:] + '\n'
    if kind == 4:                                # a key repeated
        k = rnd.choice(['creator', 'campaign', 'bot', 'unique', 'type',
                        'click_id', 'node', 'seq', 'link', 'amount'])
        v = rnd.choice(VALUES + ['"dup"'])
        i = body.find(',"seq":')
        j = rnd.choice([1, i]) if i > 0 else 1
        return body[:j] + ('"%s":%s,' % (k, v) if j == 1 else
                           ',"%s":%s' % (k, v)) + body[j:] + '\n'
    if kind == 5:                                # a letter as \u escape
        letters = [i for i, c in enumerate(body) if c.isalpha()]
        if not letters:
            return line
        i = rnd.choice(letters)
        return body[:i] + '\\u%04x' % ord(body[i]) + body[i + 1:] + '\n'
    if kind == 6:                                # the line cut
        return body[:rnd.randrange(len(body))] + '\n'
    return body + ' ' * rnd.randrange(1, 3) + '\n'  # spaces at the end


# valid JSON, but no text: unpaired surrogates (malformed, never a crash)
HOSTILE = [
    ('{"ts":"2025-12-31T23:00:00.000Z","type":"click","id":"S1","node":'
     '"web1","click_id":"S1","link":"\\ud800","creator":"c1","bot":false,'
     '"seq":1}\n'),
    ('{"ts":"2025-12-31T23:00:01.000Z","type":"click","id":"S2","node":'
     '"web1","creator":"\\udfffx","bot":false,"seq":2}\n'),
    ('{"ts":"2025-12-31T23:00:02.000Z","type":"conversion","id":"S3",'
     '"node":"web1","click_id":"S1","order_id":"order-0123456789-\\ud83d",'
     '"amount":"1.00","currency":"EUR","source":"postback","bot":false,'
     '"seq":3}\n'),
    ('{"ts":"2025-12-31T23:00:03.000Z","type":"click","id":"S4","node":'
     '"\\ud800web","bot":false,"seq":4}\n'),
]

def with_variant(line, i):
    """Every third line a variant, every fifth a device, where the module
    writes them."""
    extra = (('"variant":%d,' % (1 + i % 4) if i % 3 == 0 else '')
             + ('"device":"%s",' % ('ios', 'android', 'desktop')[i % 3]
                if i % 5 == 0 else ''))
    return line.replace('"asn":3320,', '"asn":3320,' + extra, 1)


for name in sorted(os.listdir(src)):
    opener = gzip.open if name.endswith('.gz') else open
    with opener(os.path.join(src, name), 'rt', encoding='utf-8',
                newline='') as f, \
            opener(os.path.join(fast, name), 'wb') as fo, \
            opener(os.path.join(slow, name), 'wb') as so:
        # A/B and device links: a variant and a device on some clicks
        lines = [with_variant(line, i) for i, line in enumerate(f)]
        if name.endswith('.0'):
            lines += HOSTILE
        for line in lines:
            if rnd.randrange(12) == 0:
                line = mutate(line)
            raw = line.encode('utf-8', 'surrogatepass')
            fo.write(raw)
            so.write(report.json_only(raw))
PY
    or die "python3: $?";

sub report {
    my ($sub, @args) = @_;
    my $out = `$TOOL --format json @args $dir/$sub 2>&1`;
    my $j = eval { decode_json($out) };
    ok($j, "report of $sub (@args)") or diag(substr($out, 0, 2000));
    $out =~ s{\Q$dir/$sub\E}{DIR}g;
    return ($j || {}, $out);
}

for my $args (['--by', 'creator,campaign'], ['--by', 'link,country,day'],
              ['--by', 'variant,device,creator'],
              ['--by', 'creator', '--window', '2d', '--from', '2025-12-05',
               '--to', '2025-12-20T12:00'])
{
    my ($jf, $fast) = report('fast', @$args);
    my ($js, $slow) = report('slow', @$args);
    my $bad = $jf->{integrity}{malformed_count} // 0;
    ok($bad > 100, "@$args: malformed lines among them ($bad)")
        or diag explain $jf->{integrity}{malformed};
    is($fast, $slow, "@$args: the same report from the fast paths and from "
                     . 'JSON') or do {
        my @f = split /\n/, $fast;
        my @s = split /\n/, $slow;
        for my $i (0 .. $#f) {
            next if ($s[$i] // '') eq $f[$i];
            diag("first difference, line $i:\n fast: $f[$i]\n json: "
                 . ($s[$i] // '(none)'));
            last;
        }
    };
}

done_testing();
