# tools/affiliate-report reads a line of the module in one of two ways: the
# fast path (one regular expression for a click or landing written in the
# module's key order) or JSON.  The same records written in another key
# order go through JSON only: both reports must be equal to the byte.  The
# data set is bench/report.py's (two nodes, rotated and gzipped files), with
# lines that the fast path must not take: a control byte inside a string,
# a record cut and followed by the next one, an escaped quote, a number
# where a string is expected; and a conversion whose click was read long
# before it (the click is found by the second pass, in its block).
use strict;
use warnings;
use Test::More;
use FindBin;
use JSON::PP;
use File::Temp qw(tempdir);

my $TOP = "$FindBin::Bin/..";
my $TOOL = "$TOP/tools/affiliate-report";
my $dir = tempdir('aff-report-paths-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{AFF_KEEP});
diag("files in $dir") if $ENV{AFF_KEEP};

sub python {
    my ($code, @args) = @_;
    system('python3', '-c', $code, @args) == 0 or die "python3: $?";
}

# the data set, in the module's key order
python(<<'PY', "$TOP/bench", "$dir/fast");
import sys
sys.path.insert(0, sys.argv[1])
import report
report.generate(sys.argv[2], 30000, 2, seed=7)
PY

# A/B and device links: a variant on every third click or landing, a
# device on every fifth, where the module writes them
python(<<'PY', "$dir/fast");
import gzip, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    opener = gzip.open if name.endswith('.gz') else open
    with opener(os.path.join(d, name), 'rt', encoding='utf-8') as f:
        lines = list(f)
    with opener(os.path.join(d, name), 'wt', encoding='utf-8') as out:
        for i, line in enumerate(lines):
            extra = (('"variant":%d,' % (1 + i % 4) if i % 3 == 0 else '')
                     + ('"device":"%s",' % ('ios', 'android')[i % 2]
                        if i % 5 == 0 else ''))
            out.write(line.replace('"asn":3320,', '"asn":3320,' + extra, 1))
PY

# a third node: one click, 20,000 long clicks (45 MB, more than the recent
# clicks kept) later an unattributed conversion that names it, then lines
# the fast path must leave to JSON (the malformed ones are counted), and
# conversions in the module's key order (read by CONV, not JSON)
python(<<'PY', "$dir/fast/web9-affiliate.log");
import json, sys
ts = lambda i: '2025-12-%02dT%02d:%02d:%02d.000Z' % (
    2 + i // 86400, i // 3600 % 24, i // 60 % 60, i % 60)
def rec(i, **f):
    r = {'ts': ts(i), 'type': 'click', 'id': 'C%025d' % i, 'node': 'web9',
         'click_id': 'C%025d' % i, 'link': 'far', 'creator': 'far%d' % (i % 7),
         'campaign': 'x', 'ip': '203.0.113.0', 'ua': f.pop('ua', None),
         'bot': False, 'unique': True, 'truncated': False}
    r.update(f)
    r['seq'] = i + 1
    return json.dumps(r, separators=(',', ':')) + '\n'
with open(sys.argv[1], 'w') as out:
    out.write(rec(0, creator='farcreator', campaign='far'))
    for i in range(1, 20001):
        out.write(rec(i, ua='Mozilla/5.0 ' * 180))
    out.write(rec(20001, type='conversion', link=None, creator=None,
                  campaign=None, click_id='C%025d' % 0, unique=None,
                  source='postback', order_id='far-1', amount='99.00',
                  currency='EUR', attributed=False, duplicate=False))
    good = rec(20002)
    out.write(good[:60] + '\t' + good[61:])             # a raw tab: malformed
    out.write(good[:200] + rec(20003))                   # cut, then the next
    out.write(rec(20004, ua='say \"hi\"'))               # an escaped quote
    out.write(rec(20005, creator=5))                     # a number: malformed
    out.write(rec(20006).replace('"bot":false,', '') [:-2]
              + ',"bot":false}\n')                       # another key order
    out.write(rec(20007, ua='tab\there'))                 # \t escaped: valid
    conv = ('{"ts":"%s","type":"conversion","id":"V%%d","node":"web9",'
            '"click_id":"C%025d","status":200,"ip":"10.0.0.5",'
            '"ua":"shop\\/2","bot":false,"source":"postback",'
            '"order_id":"far-%%d","amount":"%%s","currency":"EUR",'
            '"attributed":false,"duplicate":false,"truncated":false,'
            '"seq":%%d}\n' % (ts(20010), 20000))
    out.write(conv % (2, 2, '12,50', 20009))          # bad amount: malformed
    out.write((conv % (3, 3, '12.50', 20010)).replace('shop', 'sh\top'))
    out.write(conv % (4, 4, '7.25', 20011))           # joined to C..20000
PY

# the same records, keys sorted: none of them on the fast path
python(<<'PY', "$TOP/bench", "$dir/fast", "$dir/slow");
import gzip, os, sys
sys.path.insert(0, sys.argv[1])
import report
src, dst = sys.argv[2], sys.argv[3]
os.mkdir(dst)
for name in sorted(os.listdir(src)):
    gz = name.endswith('.gz')
    opener = gzip.open if gz else open
    with opener(os.path.join(src, name), 'rb') as f, \
            opener(os.path.join(dst, name), 'wb') as out:
        for line in f:
            out.write(report.json_only(line))
PY

sub report {
    my ($sub, @args) = @_;
    my $out = `$TOOL --format json @args $dir/$sub 2>&1`;
    my $j = eval { decode_json($out) };
    ok($j, "report of $sub (@args)") or diag($out);
    $out =~ s{\Q$dir/$sub\E}{DIR}g;
    return ($j || {}, $out);
}

for my $by ('creator,campaign', 'link,country,day', 'variant,device',
            'creator,link,variant', 'creator') {
    my ($jf, $fast) = report('fast', '--by', $by);
    my ($js, $slow) = report('slow', '--by', $by);
    ok(length($fast) > 1000, "--by $by: a report");
    is($fast, $slow, "--by $by: the same report from the fast path and "
                     . 'from JSON');
    next unless $by eq 'creator';

    my ($far) = grep { ($_->{key}{creator} // '') eq 'farcreator' }
        @{ $jf->{groups} };
    is($far && $far->{conversions}, 1,
       'the conversion is joined to its click read 20,000 lines '
       . '(45 MB) before');
    ok($jf->{attribution}{joined} >= 1, 'joined at report time');
    my @bad = grep { $_->{file} =~ /web9/ } @{ $jf->{integrity}{malformed} };
    is_deeply([map { $_->{line} } @bad], [20003, 20004, 20006, 20009, 20010],
              'the malformed lines, by line number');
    like($bad[2]{reason} // '', qr/creator/, 'a number as creator');
    like($bad[3]{reason} // '', qr/invalid amount "12,50"/,
         'a conversion in the module\'s order with a bad amount');
    like($bad[4]{reason} // '', qr/control character/,
         'a conversion in the module\'s order with a raw tab');
    my ($near) = grep { ($_->{key}{creator} // '') eq 'far1' }
        @{ $jf->{groups} };
    is($near && $near->{revenue}, '7.25',
       'the conversion in the module\'s order joined to its click');
}

done_testing();
