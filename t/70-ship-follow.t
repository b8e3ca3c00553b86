# tools/affiliate-ship's following of files, against a stand-in for
# ClickHouse's HTTP interface (a forked Perl server that keeps every INSERT
# body, answers 500 while a "fail" file exists, and keeps a batch without
# answering while a "hang" file exists): a log that appears later, an
# incomplete last line, malformed lines, a rotation while the shipper is
# stopped (the .1 leftover is read first), truncation, a server outage
# (retries, nothing lost or reordered), old records without id/node (and
# --node), SIGKILL while a batch is unanswered (that batch alone comes
# again), status.json while no server answers at start-up (a backlog
# larger than one count step: lag in records exact, lag in seconds from the
# oldest unsent record), a server that is not ClickHouse (501 with an HTML
# page: exit 2, one line), a proxy answering 502 (retried), an unknown
# host name.
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
              status ip ua referer host country region city asn variant
              device bot bot_reason unique reason cookie source order_id
              amount currency attributed duplicate truncated);

# --- the stand-in servers ------------------------------------------------------
# serve(sub { my ($head, $body) = @_; ... }): a forked server on a free port,
# one connection at a time; the sub returns the whole answer, or undef to
# keep the connection open without answering
my @servers;
sub serve {
    my ($cb) = @_;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Listen => 16, ReuseAddr => 1) or die $!;
    my $p = $srv->sockport;
    my $pid = fork // die $!;
    if (!$pid) {
        my @held;
        while (my $c = $srv->accept) {
            my $head = '';
            while (defined(my $l = <$c>)) { $head .= $l; last if $l eq "\r\n" }
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            my $body = '';
            read($c, $body, $len) if $len;
            my $resp = $cb->($head, $body);
            if (!defined $resp) { push @held, $c; next }
            print $c $resp;
            close $c;
        }
        POSIX::_exit(0);
    }
    close $srv;
    push @servers, $pid;
    return $p;
}

my $CH = "X-ClickHouse-Server-Display-Name: stand-in\r\n";
my $port = serve(sub {
    my ($head, $body) = @_;
    my ($q) = $head =~ m{^POST /\?(\S*)};
    if (-e "$d/fail") {
        return "HTTP/1.0 500 Error\r\n$CH\r\nCode: 210, e.displayText() = "
             . "DB::NetException: Connection refused";
    }
    if ($q =~ /DESCRIBE/) {
        return "HTTP/1.0 200 OK\r\n$CH\r\n"
             . join('', map { "$_\tString\n" } @COLS);
    }
    open my $f, '>>', "$d/inserts" or die;
    print $f $body;
    close $f;
    if (-e "$d/hang") {
        # the batch is stored, its answer never comes
        open my $h, '>', "$d/hung" or die;
        print $h $body;
        close $h;
        return undef;
    }
    return "HTTP/1.0 200 OK\r\n$CH\r\n";
});
my $HTML = "<!DOCTYPE html>\n<html>\n<head><title>%s</title></head>\n"
         . "<body>\n<center><h1>%s</h1></center>\n<hr><center>nginx</center>"
         . "\n</body>\n</html>\n";
# a web server that is not ClickHouse, and a proxy whose ClickHouse is away
my $web = serve(sub {
    "HTTP/1.0 501 Not Implemented\r\nContent-Type: text/html\r\n\r\n"
    . sprintf($HTML, ('501 Not Implemented') x 2) });
my $proxy = serve(sub {
    "HTTP/1.0 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n"
    . sprintf($HTML, ('502 Bad Gateway') x 2) });

my $ship;
# start(log => FILE, state => DIR, err => FILE, url => URL, args...)
sub start {
    my (%o) = (log => "$d/aff.log", state => "$d/st", err => "$d/ship.err",
               url => "http://127.0.0.1:$port", batch => 3, @_);
    $ship = fork // die $!;
    if (!$ship) {
        open STDERR, '>>', $o{err};
        { exec $SHIP, '--clickhouse', $o{url}, '--state', $o{state},
              '--batch', $o{batch}, '--interval', 0.1, '--grace', 0.3,
              '--max-backoff', 0.4, @{ $o{args} // [] }, $o{log} };
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
# the shipper's output and exit status, with a ClickHouse URL list
sub ship_out {
    my ($urls, @args) = @_;
    my $o = `$SHIP --clickhouse $urls --state $d/x @args $d/aff.log 2>&1`;
    return ($? >> 8, $o);
}
sub slurp {
    open my $f, '<', $_[0] or return '';
    local $/;
    return <$f>;
}
sub seqs { join ',', map { $_->{seq} } shipped() }
sub wait_for {
    my ($cb, $t) = @_;
    my $end = time + ($t // 10);
    while (time < $end) { return 1 if $cb->(); sleep 0.05 }
    return $cb->();
}
# a record as the module writes it: "seq" last (a file truncated and
# rewritten with a record of the same length differs in its last bytes)
my $JSON = JSON::PP->new->canonical;
sub rec {
    my ($seq, %o) = @_;
    my $id = sprintf('01TEST%020d', $seq);
    my $j = $JSON->encode({ ts => '2026-11-25T10:00:00.000Z', type => 'click',
                            id => $id, node => 'n1', click_id => $id,
                            bot => JSON::PP::false,
                            truncated => JSON::PP::false, %o });
    return $j =~ s/\}\z/,"seq":$seq}\n/r;
}
sub append {
    open my $f, '>>', "$d/aff.log" or die $!;
    print $f @_;
    close $f;
}
sub status {
    my $text = slurp($_[0] // "$d/st/status.json");
    return $text eq '' ? {} : decode_json($text);
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
is(status()->{lag_records}, 7,
   'lag in records while the server fails: the batch and the 4 after it');
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

# SIGKILL while the server has taken a batch and not answered: after the
# restart that batch comes again, first, and nothing else twice
open $fl, '>', "$d/hang" or die;
close $fl;
append(map { rec($_) } 22 .. 28);
ok(wait_for(sub { -e "$d/hung" }), 'the stand-in holds a batch unanswered');
my @hung = map { decode_json($_)->{seq} } split /\n/, slurp("$d/hung");
is("@hung", '22 23 24', 'the held batch is the next 3 records');
kill 'KILL', $ship;
waitpid($ship, 0);
unlink "$d/hang";
my $before = scalar(shipped());
start();
ok(wait_for(sub { scalar(shipped()) >= $before + 7 }),
   'after SIGKILL and a restart: the rest is shipped') or diag seqs();
my @again = map { $_->{seq} } (shipped())[$before .. $before + 2];
is("@again", '22 23 24', 'the unanswered batch is sent again, first');
my %n;
$n{ $_->{id} }++ for shipped();
is(join(',', sort { $a <=> $b } map { /(\d+)$/ ? $1 + 0 : () }
        grep { $n{$_} > 1 } keys %n), '22,23,24',
   'the unanswered batch is the only one sent twice');
is(scalar(keys %n), 28, 'every record shipped');
is(stop(), 0, 'SIGTERM: exit 0');

# --node: the node of records that name none (their derived id with it)
open my $ol, '>', "$d/old.log" or die;
print $ol encode_json({ ts => '2026-11-25T10:00:00.000Z', type => 'click',
                        bot => JSON::PP::false, seq => 21 }) . "\n";
close $ol;
for my $run (1, 2) {
    is(system($SHIP, '--clickhouse', "http://127.0.0.1:$port", '--state',
              "$d/st-node$run", '--node', 'web9', '--once', "$d/old.log"),
       0, "--node, run $run: exit 0");
}
my @named = (shipped())[-2, -1];
is_deeply([map { $_->{node} } @named], ['web9', 'web9'],
          '--node names the node of records without one');
is($named[0]{id}, $named[1]{id}, '--node: the same derived id every time');
isnt($named[0]{id}, $old->{id},
     '--node: another node, another derived id');

# what affiliate-report holds malformed is skipped (a creator that is not
# a string, a negative variant, a lone surrogate in a field the report
# reads); "" reads as null; a lone surrogate elsewhere becomes U+FFFD
open my $odd, '>', "$d/odd.log" or die;
print $odd rec(1, creator => 5), rec(2, variant => -1),
    rec(3) =~ s/"seq":3/"ua":"a\\ud800b","seq":3/r,
    rec(4) =~ s/"seq":4/"link":"x\\udfffy","seq":4/r,
    rec(5, creator => ''), rec(6, variant => 2, device => 'ios');
close $odd;
is(system("$SHIP --clickhouse http://127.0.0.1:$port --state $d/st-odd "
          . "--once $d/odd.log 2>$d/odd.err"), 0, 'odd records: exit 0');
my @odd = (shipped())[-3 .. -1];
is(join(',', map { $_->{seq} } @odd), '3,5,6',
   'records the report holds malformed are skipped');
is(scalar(() = slurp("$d/odd.err") =~ /malformed line/g), 3,
   '... each logged');
is($odd[0]{ua}, "a\x{fffd}b", 'a lone surrogate in ua: U+FFFD');
is($odd[1]{creator}, undef, 'an empty creator: null');
is("$odd[2]{variant} $odd[2]{device}", '2 ios', 'variant and device sent');

# no server answers at start-up, with a backlog: status.json at once (lag
# in records, exactly once counted to the end; lag in seconds from the
# oldest unsent record), every attempt in retries
open $fl, '>', "$d/fail" or die;
close $fl;
my $big = 150000;
my $t0 = 1795600000;                # 2026-11-24T08:26:40Z
open my $bl, '>', "$d/big.log" or die;
for my $i (1 .. $big) {
    my @t = gmtime($t0 + int($i / 100));
    printf $bl '{"ts":"%s.%03dZ","type":"click","id":"01BIG%021d",'
        . '"node":"n1","link":"summer","creator":"anna","campaign":"s25",'
        . '"dest":"https://shop.example/summer?click_id=01BIG%021d",'
        . '"ip":"203.0.113.7","bot":false,"truncated":false,"seq":%d}' . "\n",
        POSIX::strftime('%Y-%m-%dT%H:%M:%S', @t), $i % 1000, $i, $i, $i;
}
close $bl;
my $bigsize = -s "$d/big.log";
ok($bigsize > 32 << 20, "a backlog of $bigsize bytes (two count steps)");
start(log => "$d/big.log", state => "$d/st-big", err => "$d/big.err",
      batch => 10000);
my %seen;
ok(wait_for(sub {
    my $s = status("$d/st-big/status.json");
    $seen{ $s->{lag_records_exact} ? 'exact' : 'estimate' } = $s
        if defined $s->{lag_records};
    return $seen{exact};
}, 15), 'status.json while no server answers at start-up');
my $s = $seen{exact} // {};
is($s->{lag_records}, $big, 'lag in records, counted to the end');
is($s->{lag_bytes}, $bigsize, 'lag in bytes');
my $want_lag = time - ($t0 + 0.001);
ok(abs(($s->{lag_seconds} // 0) - $want_lag) < 30,
   "lag in seconds from the oldest unsent record ($s->{lag_seconds}, "
   . "about $want_lag)");
like($s->{last_error} // '', qr/Connection refused/, 'the last error');
if (my $e = $seen{estimate}) {
    ok(abs($e->{lag_records} - $big) < $big / 10,
       "before the count reaches the end: an estimate ($e->{lag_records})");
}
sleep 0.5;
is(stop(), 0, 'stopped while no server answers: exit 0');
my $tries = () = slurp("$d/big.err") =~ /retrying in/g;
my $sb = status("$d/st-big/status.json");
ok($tries >= 2, "the start-up check was tried again ($tries times)");
is($sb->{retries}, $tries, 'retries counts every attempt no server took');
unlink "$d/fail";

# errors: a server that is not ClickHouse, a proxy that cannot reach it, an
# unknown host name, bad URL, unreadable checkpoint
my ($rc, $o) = ship_out("http://127.0.0.1:$web");
is($rc, 2, 'not ClickHouse (501 and an HTML page): exit 2');
like($o, qr/answers HTTP 501 but is not ClickHouse's HTTP interface/,
     'not ClickHouse: says so');
is(scalar(() = $o =~ /\n/g), 1, 'not ClickHouse: one line')
    or diag $o;
($rc, $o) = ship_out("http://127.0.0.1:$port,http://127.0.0.1:$web");
is($rc, 2, 'the second server of the list is not ClickHouse: exit 2');
($rc, $o) = ship_out('http://no-such-host.invalid:8123');
is($rc, 2, 'an unknown host name at start-up: exit 2');
like($o, qr/no-such-host\.invalid:8123: unknown host name/,
     'an unknown host name: says so');
start(url => "http://127.0.0.1:$proxy", state => "$d/st-proxy",
      err => "$d/proxy.err");
ok(wait_for(sub {
    (status("$d/st-proxy/status.json")->{retries} // 0) >= 2 }),
   'a proxy answering 502: retried');
is(stop(), 0, 'a proxy answering 502: SIGTERM, exit 0');
is(status("$d/st-proxy/status.json")->{last_error},
   "127.0.0.1:$proxy: HTTP 502 502 Bad Gateway 502 Bad Gateway nginx",
   'a proxy answering 502: the page as one line');
unlike(slurp("$d/proxy.err"), qr/<|\n\n/, '... in the log too');
($rc, $o) = ship_out('http://127.0.0.1:notaport');
is($rc, 2, 'bad port: exit 2');
like($o, qr/bad port/, 'bad port: says so');
open my $ck, '>', "$d/st/checkpoint.json" or die;
print $ck "{broken";
close $ck;
$o = `$SHIP --clickhouse http://127.0.0.1:$port --state $d/st $d/aff.log 2>&1`;
is($? >> 8, 2, 'unreadable checkpoint: exit 2');
like($o, qr/unreadable checkpoint/, 'unreadable checkpoint: says so');

for my $pid (@servers) {
    kill 'KILL', $pid;
    waitpid($pid, 0);
}
done_testing;
