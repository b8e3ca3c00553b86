# affiliate-report --format html: one self-contained file (no network, no
# external asset), that headless Chromium loads without console errors and
# whose screenshot shows the ROI bars (positive and negative) and the daily
# lines.  A page with a script error must be caught by the same check.
# Skipped without Debian's chromium.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use Compress::Zlib qw(uncompress);

my $TOOL = "$FindBin::Bin/../tools/affiliate-report";
my $dir = tempdir('aff-html-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{AFF_KEEP});
my $JSON = JSON::PP->new->canonical;

# three creators over three days; carl costs more than he brings
my ($seq, $log) = (0, '');
for my $day (1 .. 3) {
    for my $c (['anna', 'summer', 6], ['bob', 'winter', 3],
               ['carl', 'launch', 2]) {
        for my $i (1 .. $c->[2] * $day) {
            $seq++;
            $log .= $JSON->encode({ts => sprintf('2026-11-%02dT10:%02d:%02d.000Z',
                $day, $seq % 60, $i % 60), type => 'click', seq => $seq,
                node => 'n1', id => "ID$seq", click_id => "C$seq",
                creator => $c->[0], campaign => $c->[1], link => 'x',
                bot => JSON::PP::false, unique => JSON::PP::true}) . "\n";
        }
        $seq++;
        $log .= $JSON->encode({ts => sprintf('2026-11-%02dT18:00:00.000Z',
            $day), type => 'conversion', seq => $seq, node => 'n1',
            id => "ID$seq", click_id => undef, creator => $c->[0],
            campaign => $c->[1], source => 'postback',
            order_id => "O$seq", amount => '30.00', currency => 'EUR',
            attributed => JSON::PP::true, bot => JSON::PP::false}) . "\n";
    }
}
sub put {
    my ($name, $text) = @_;
    open my $f, '>', "$dir/$name" or die;
    print $f $text;
    close $f;
}
put('aff.log', $log);
put('costs.tsv', "anna\t*\tflat\t20\tEUR\nbob\t*\tcpc\t0.50\tEUR\n"
                 . "carl\t*\tflat\t500\tEUR\n");
is(system($TOOL, '--costs', "$dir/costs.tsv", '--format', 'html', '-o',
          "$dir/report.html", "$dir/aff.log"), 0, 'html written');
my $html = do { local (@ARGV, $/) = "$dir/report.html"; <> };

like($html, qr/^<!DOCTYPE html>/, 'an HTML document');
unlike($html, qr/<link\b|\bsrc\s*=|url\(|\@import/i, 'no external asset');
my @urls = $html =~ m{(https?://[^"'\s<]+)}g;
is_deeply([grep { $_ ne 'http://www.w3.org/2000/svg' } @urls], [],
    'no URL but the SVG namespace');
is(scalar(() = $html =~ /<rect class="bar"/g), 3, 'three ROI bars');
is(scalar(() = $html =~ /<polyline class="series"/g), 6,
    'daily charts: three creators, visits and conversions');
like($html, qr/<td class="k" data-v="carl">carl<\/td>/, 'table row: carl');

my $chromium = (grep { -x } map { "$_/chromium" } split /:/, $ENV{PATH})[0];
if (!$chromium) {
    diag('chromium not installed (apt-get install chromium): browser part'
         . ' skipped');
    done_testing();
    exit 0;
}

# chromium: (stderr console lines, dom, png bytes)
sub browse {
    my ($file) = @_;
    my @common = ('--headless=new', '--no-sandbox', '--disable-gpu',
        '--no-first-run', "--user-data-dir=$dir/profile",
        '--enable-logging=stderr', '--v=0', '--window-size=1100,1400');
    my $dom = `timeout 120 $chromium @common --dump-dom file://$file 2>$dir/err1`;
    system("timeout 120 $chromium @common --screenshot=$dir/shot.png "
           . "file://$file >/dev/null 2>$dir/err2");
    my $err = do { local (@ARGV, $/) = ("$dir/err1", "$dir/err2"); <> } // '';
    my @console = grep { /CONSOLE/ } split /\n/, $err;
    my $png = -s "$dir/shot.png"
        ? do { local (@ARGV, $/) = "$dir/shot.png"; binmode ARGV; <> } : '';
    unlink "$dir/shot.png";
    return (\@console, $dom // '', $png);
}

# the check can fail: a page with a script error
put('broken.html', "<!DOCTYPE html><html><body><script>no_such_function();"
                   . "</script></body></html>\n");
my ($console) = browse("$dir/broken.html");
ok(scalar(@$console), 'a script error is seen in the console')
    or diag('chromium wrote no CONSOLE line for a broken page');

my ($dom, $png);
($console, $dom, $png) = browse("$dir/report.html");
is_deeply($console, [], 'the report: no console message');
like($dom, qr/<body[^>]*data-ready="1"/, 'its script ran to the end');
ok(length $png > 1000, 'a screenshot');

# decode the PNG (8-bit RGB or RGBA) and count the chart colours
sub pixels {
    my ($png) = @_;
    return {} unless substr($png, 0, 8) eq "\x89PNG\r\n\x1a\n";
    my ($pos, $idat, $w, $h, $ct) = (8, '');
    while ($pos < length $png) {
        my ($len, $type) = unpack('Na4', substr($png, $pos, 8));
        my $data = substr($png, $pos + 8, $len);
        ($w, $h, undef, $ct) = unpack('NNCC', $data) if $type eq 'IHDR';
        $idat .= $data if $type eq 'IDAT';
        $pos += 12 + $len;
    }
    my $bpp = $ct == 6 ? 4 : 3;
    my $raw = uncompress($idat) // return {};
    my $stride = $w * $bpp;
    my @prev = (0) x $stride;
    my %count;
    for my $y (0 .. $h - 1) {
        my $f = ord substr($raw, $y * ($stride + 1), 1);
        my @cur = unpack('C*', substr($raw, $y * ($stride + 1) + 1, $stride));
        for my $i (0 .. $stride - 1) {
            my $a = $i >= $bpp ? $cur[$i - $bpp] : 0;
            my $b = $prev[$i];
            my $c = $i >= $bpp ? $prev[$i - $bpp] : 0;
            my $p = $f == 1 ? $a : $f == 2 ? $b : $f == 3 ? ($a + $b) >> 1
                  : $f == 4 ? do {
                        my $pp = $a + $b - $c;
                        my ($pa, $pb, $pc) = (abs($pp - $a), abs($pp - $b),
                                              abs($pp - $c));
                        $pa <= $pb && $pa <= $pc ? $a : $pb <= $pc ? $b : $c;
                    } : 0;
            $cur[$i] = ($cur[$i] + $p) & 255;
        }
        for (my $i = 0; $i < $stride; $i += $bpp) {
            $count{sprintf('%02x%02x%02x', @cur[$i .. $i + 2])}++;
        }
        @prev = @cur;
    }
    return \%count;
}
my $px = pixels($png);
cmp_ok($px->{'2e8b57'} // 0, '>', 2000, 'green bars (positive ROI) drawn');
cmp_ok($px->{'c0392b'} // 0, '>', 500, 'a red bar (negative ROI) drawn');
cmp_ok($px->{'1f77b4'} // 0, '>', 300, 'daily lines drawn (first creator)');
cmp_ok($px->{'d62728'} // 0, '>', 300, 'daily lines drawn (second creator)');

done_testing();
