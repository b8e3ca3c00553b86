# tools/affiliate-report's money is exact at any size the inputs allow:
# an order of 999999999999999.999999 USD converted at a 12-digit rate has
# 34 significant digits (Python's default context rounds at 28), and an
# ROI of 10^27 (a cost of 10^-12) is rounded to 4 places without error
# (it raised decimal.InvalidOperation: a traceback, exit 1).  A cost or a
# rate with more digits than the report bounds is an error naming file
# and line.  The expected figures are worked out by hand below.
use strict;
use warnings;
use Test::More;
use FindBin;
use JSON::PP;
use File::Temp qw(tempdir);

my $TOOL = "$FindBin::Bin/../tools/affiliate-report";
my $dir = tempdir('aff-report-decimal-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub write_file {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die "$name: $!";
    print $fh $text;
    close $fh;
}

my $seq = 0;
sub rec {
    my (%f) = @_;
    $seq++;
    my $ts = sprintf('2026-11-20T10:00:%02d.000Z', $seq);
    return qq({"ts":"$ts","type":"$f{type}","id":"R$seq","node":"n1",)
        . join('', map { qq("$_":$f{$_},) } grep { $_ ne 'type' } sort keys %f)
        . qq("seq":$seq}\n);
}
sub click {
    my ($creator) = @_;
    return rec(type => 'click', click_id => qq("K$seq"), link => '"l"',
               creator => qq("$creator"), campaign => '"c"',
               bot => 'false', unique => 'true');
}
sub order {
    my ($creator, $id, $amount) = @_;
    return rec(type => 'conversion', creator => qq("$creator"),
               campaign => '"c"', bot => 'false', source => '"postback"',
               order_id => qq("$id"), amount => qq("$amount"),
               currency => '"USD"', attributed => 'true');
}
write_file('aff.log', click('big') . order('big', 'o1', '999999999999999.999999')
                      . click('rev') . order('rev', 'o2', '100000000000000.000001')
                      . click('huge') . order('huge', 'o3', '999999999999999.999999'));
write_file('costs.tsv', "big\t*\tcpc\t0.000001\tEUR\nrev\t*\trevshare\t12.5\t-\n"
                        . "huge\t*\tcpc\t0.000001\tJPY\n");
write_file('rates.tsv', "USD\tEUR\t1.123456789012\nJPY\tEUR\t0.000001\n");

sub run {
    my (@args) = @_;
    my $out = `$TOOL @args 2>&1`;
    return ($? >> 8, $out);
}

my ($code, $out) = run('--format', 'json', '--costs', "$dir/costs.tsv",
                       '--rates', "$dir/rates.tsv", "$dir/aff.log");
is($code, 0, 'exit 0') or diag($out);
my $j = eval { decode_json($out) } || {};
my %g = map { ($_->{key}{creator} // '') => $_ } @{ $j->{groups} || [] };

# an exact value may carry zeros after its last digit (the exponent of a
# product is the sum of its factors'): compared without them
sub norm {
    my ($v) = @_;
    return $v unless defined $v && $v =~ /\./;
    $v =~ s/0+\z//;
    $v =~ s/\.\z/.00/;
    $v =~ s/\.(\d)\z/.${1}0/;
    return $v;
}

# big: 999999999999999.999999 USD * 1.123456789012
#    = (10^15 - 10^-6) * 1.123456789012
#    = 1123456789012000 - 0.000001123456789012
is($g{big}{revenue}, '1123456789011999.999998876543210988',
   'big: revenue converted exactly (34 digits)');
is($g{big}{cost}, '0.000001', 'big: one visit at 0.000001');
is($g{big}{profit}, '1123456789011999.999997876543210988', 'big: profit');
# profit / 0.000001 = 1123456789011999999997.876543210988, to 4 places
is($g{big}{roi}, '1123456789011999999997.8765', 'big: ROI of 10^21, rounded');
is($g{big}{epc}, '1123456789012000.0000',
   'big: EPC rounded to 4 places (carried into the integer part)');

# rev: 100000000000000.000001 * 1.123456789012
#    = 112345678901200 + 0.000001123456789012; 12.5 % of it is
#    14043209862650 + 0.0000001404320986265
is($g{rev}{revenue}, '112345678901200.000001123456789012', 'rev: revenue');
is(norm($g{rev}{cost}), '14043209862650.0000001404320986265',
   'rev: revshare exact (the eighth of a 33-digit revenue)');
is(norm($g{rev}{profit}), '98302469038550.0000009830246903855', 'rev: profit');
is($g{rev}{roi}, '7.0000', 'rev: ROI 0.875 / 0.125 = 7, exactly');

# huge: the same revenue, a cost of 0.000001 JPY = 10^-12 EUR; its ROI,
# 1123456789011999999998876542.210988, has 28 digits before the point
is($g{huge}{cost}, '0.000000000001', 'huge: a cost of 10^-12');
is($g{huge}{profit}, '1123456789011999.999998876542210988', 'huge: profit');
is($g{huge}{roi}, '1123456789011999999998876542.2110',
   'huge: ROI of 10^27, rounded to 4 places');

my ($t) = @{ $j->{total} || [] };
is(norm($t->{revenue}), '2359259256925199.999998876543210988',
   'total revenue');
is(norm($t->{cost}), '14043209862650.0000011404330986265', 'total cost');
is(norm($t->{profit}), '2345216047062549.9999977361101123615', 'total profit');
# 2345216047062549.9999977361101123615 / 14043209862650.0000011404330986265
# = 166.99999999999999998627..., half up to 4 places
is($t->{roi}, '167.0000', 'total ROI');

for my $f ('text', 'csv', 'html') {
    ($code, $out) = run('--format', $f, '--costs', "$dir/costs.tsv",
                        '--rates', "$dir/rates.tsv", "$dir/aff.log");
    is($code, 0, "$f: exit 0 with an ROI of 10^27");
    unlike($out, qr/Traceback|InvalidOperation/, "$f: no traceback");
}
($code, $out) = run('--format', 'csv', '--costs', "$dir/costs.tsv",
                    '--rates', "$dir/rates.tsv", "$dir/aff.log");
like($out, qr/^big,EUR,.*,1123456789011999999997\.8765,0\.0000,/m,
     'csv: the ROI, and the CPA of 0.000001 rounded to 0.0000');

# bounds: a cost or a rate with more digits is an error, file and line
for my $c (["# x\nbig\t*\tcpc\t0.0000001\tEUR\n",
            qr/costs\.tsv:2: amount "0\.0000001" is not a non-negative decimal number of at most 15 digits before the point and 6 after it/],
           ["big\t*\tflat\t1234567890123456\tEUR\n",
            qr/costs\.tsv:1: amount "1234567890123456"/],
           ["big\t*\tflat\t1e3\tEUR\n", qr/costs\.tsv:1: amount "1e3"/]) {
    write_file('costs.tsv', $c->[0]);
    ($code, $out) = run('--costs', "$dir/costs.tsv", "$dir/aff.log");
    is($code, 2, "cost $c->[0]: exit 2");
    like($out, $c->[1], 'cost: the error names file and line');
}
for my $r (["USD\tEUR\t1.1234567890123\n",
            qr/rates\.tsv:1: rate "1\.1234567890123" is not a positive decimal number of at most 15 digits before the point and 12 after it/],
           ["# x\nUSD\tEUR\t1E+3\n", qr/rates\.tsv:2: rate "1E\+3"/],
           ["USD\tEUR\t0.000\n", qr/rates\.tsv:1: rate "0\.000"/]) {
    write_file('rates.tsv', $r->[0]);
    ($code, $out) = run('--rates', "$dir/rates.tsv", "$dir/aff.log");
    is($code, 2, "rate $r->[0]: exit 2");
    like($out, $r->[1], 'rate: the error names file and line');
}

done_testing();
