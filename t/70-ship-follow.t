# tools/affiliate-ship's following of files, against a stand-in for
# ClickHouse's HTTP interface (a forked Perl server that keeps every INSERT
# body, and answers 500 while a "fail" file exists): a log that appears
# later, an incomplete last line, malformed lines, a rotation while the
# shipper is stopped (the .1 leftover is read first), truncation, a server
# outage (retries, nothing lost or reordered), old records without id/node.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

my $SHIP = "$FindBin::Bin/../tools/affiliate-ship";
my $d = tempdir('ship-follow-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{AFF_KEEP});
my @COLS = qw(id node ts type seq click_id link rule creator campaign dest
              status ip ua referer host country region city asn bot
              bot_reason unique reason cookie source order_id amount currency
              attributed duplicate truncated);

# --- the stand-in server -------------------------------------------------------
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Listen => 16, ReuseAddr => 1) or die $!;
my $port = $srv->sockport;
my $spid = fork // die $!;
if (!$spid) {
    while (my $c = $srv->accept) {
        my $head = '';
        while (defined(my $l = <$c>)) { $head .= $l; last if $l eq "\r\n" }
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        my $body = '';
        read($c, $body, $len) if $len;
        my ($q) = $head =~ m{^POST /\?(\S*)};
        my $resp;
        if (-e "$d/fail") {
            $resp = "HTTP/1.0 500 Error\r\n\r\nCode: 210, e.displayText() = "
                  . "DB::NetException: Connection refused";
        } elsif ($q =~ /DESCRIBE/) {
            $resp = "HTTP/1.0 200 OK\r\n\r\n"
                  . join('', map { "$_\tString\n" } @COLS);
        } else {
            open my $f, '>>', "$d/inserts" or die;
            print $f $body;
            close $f;
            $resp = "HTTP/1.0 200 OK\r\n\r\n";
        }
        print $c $resp;
        close $c;
    }
    POSIX::_exit(0);
}
close $srv;

my $ship;
sub start {
    $ship = fork // die $!;
    if (!$ship) {
        open STDERR, '>>', "$d/ship.err";
        { exec $SHIP, '--clickhouse', "http://127.0.0.1:$port", '--state',
              "$d/st", '--batch', 3, '--interval', 0.1, '--grace', 0.3,
              '--max-backoff', 0.4, "$d/aff.log" };
        POSIX::_exit(127);
    }
}
sub stop {
    kill 'TERM', $ship;
    waitpid($ship, 0);
    return $? >> 8;
}
sub shipped {
    open my $f, '<', "$d/inserts" or return ();
    return map { decode_json($_) } <$f>;
}
sub seqs { join ',', map { $_->{seq} } shipped() }
sub wait_for {
    my ($cb, $t) = @_;
    my $end = time + ($t // 10);
    while (time < $end) { return 1 if $cb->(); sleep 0.05 }
    return $cb->();
}
sub rec {
    my ($seq, %o) = @_;
    my $id = sprintf('01TEST%020d', $seq);
    return encode_json({ ts => '2026-11-25T10:00:00.000Z', type => 'click',
                         id => $id, node => 'n1', click_id => $id,
                         bot => JSON::PP::false, truncated => JSON::PP::false,
                         seq => $seq, %o }) . "\n";
}
sub append {
    open my $f, '>>', "$d/aff.log" or die $!;
    print $f @_;
    close $f;
}
sub status {
    open my $f, '<', "$d/st/status.json" or return {};
    local $/;
    return decode_json(<$f>);
}

# a log that appears after the shipper started
start();
sleep 0.5;
append(map { rec($_) } 1 .. 4);
ok(wait_for(sub { seqs() eq '1,2,3,4' }), 'a log created later is shipped');

# an incomplete last line waits for its end
append(rec(5) =~ s/\n$//r);
sleep 0.6;
is(seqs(), '1,2,3,4', 'an incomplete last line is not sent');
append("\n");
ok(wait_for(sub { seqs() eq '1,2,3,4,5' }), '... and is sent once complete');

# malformed lines are skipped and counted
append("not json\n", '{"ts":"x","type":"click","seq":1}' . "\n", rec(6));
ok(wait_for(sub { seqs() eq '1,2,3,4,5,6' }), 'malformed lines skipped');
ok(wait_for(sub { (status()->{files}[0]{malformed} // 0) == 2 }),
   'malformed lines counted in status.json');

# a rotation while the shipper is stopped: the .1 leftover first
is(stop(), 0, 'SIGTERM: exit 0');
append(map { rec($_) } 7, 8);
rename "$d/aff.log", "$d/aff.log.1" or die $!;
append(map { rec($_) } 9, 10);
start();
ok(wait_for(sub { seqs() eq '1,2,3,4,5,6,7,8,9,10' }),
   'after a restart: the rotated leftover, then the new file')
    or diag seqs();

# a rotation while running
append(rec(11));
rename "$d/aff.log", "$d/aff.log.1" or die $!;
append(rec(12));
ok(wait_for(sub { seqs() eq join(',', 1 .. 12) }), 'a rotation while running')
    or diag seqs();

# truncation
truncate "$d/aff.log", 0 or die $!;
append(rec(13));
ok(wait_for(sub { seqs() eq join(',', 1 .. 13) }), 'after truncation')
    or diag seqs();

# the server fails for a while: retries, then everything, in order
open my $fl, '>', "$d/fail" or die;
close $fl;
append(map { rec($_) } 14 .. 20);
ok(wait_for(sub { (status()->{retries} // 0) >= 2 }), 'retries counted');
like(status()->{last_error} // '', qr/Connection refused/,
     'the last error is in status.json');
ok(status()->{lag_records} >= 7, 'lag in records while the server fails');
unlink "$d/fail";
ok(wait_for(sub { seqs() eq join(',', 1 .. 20) }),
   'after the outage: nothing lost or reordered') or diag seqs();
ok(wait_for(sub { status()->{lag_records} == 0 }), 'lag back to 0');

# records from before version 0.2 (no id, no node) get stable ones
append(encode_json({ ts => '2026-11-25T10:00:00.000Z', type => 'click',
                     bot => JSON::PP::false, seq => 21 }) . "\n");
ok(wait_for(sub { scalar(shipped()) == 21 }), 'an old record is shipped');
my $old = (shipped())[-1];
like($old->{id}, qr/^Z[0-9A-Z]{25}$/, 'old record: derived id');
is($old->{node}, "$d/aff.log", 'old record: node from the file name');
is(stop(), 0, 'SIGTERM: exit 0');

# errors: bad URL, unreadable checkpoint, bad table name
my $o = `$SHIP --clickhouse http://127.0.0.1:notaport --state $d/x $d/aff.log 2>&1`;
is($? >> 8, 2, 'bad port: exit 2');
like($o, qr/bad port/, 'bad port: says so');
open my $ck, '>', "$d/st/checkpoint.json" or die;
print $ck "{broken";
close $ck;
$o = `$SHIP --clickhouse http://127.0.0.1:$port --state $d/st $d/aff.log 2>&1`;
is($? >> 8, 2, 'unreadable checkpoint: exit 2');
like($o, qr/unreadable checkpoint/, 'unreadable checkpoint: says so');

kill 'KILL', $spid;
waitpid($spid, 0);
done_testing;
