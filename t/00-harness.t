# The harness's own checks can fail: records() refuses bad lines,
# seq_problem() sees gaps and repeats, click_id() and $ULID are strict,
# the end-of-file log check sees alerts, crashes and sanitizer reports.
# Needs no module; the last part starts a tiny nginx and crashes a worker.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Aff;

my $t = Aff->new;

$t->write_file('good.log', qq({"a":1,"s":"\\u00e9\\ufffd"}\n{"b":null}\n));
my @r = $t->records('good.log');
is(scalar @r, 2, 'two good lines, two records');
is($r[0]{s}, "\x{e9}\x{fffd}", 'escapes decoded');

for my $c (
    ['not json', qq({"a":1}\n{"a":\n)],
    ['raw control byte in a string', qq({"a":"x\x01y"}\n)],
    ['invalid utf-8', qq({"a":"\xff"}\n)],
    ['surrogate in utf-8', qq({"a":"\xed\xa0\x80"}\n)],
    ['two objects on a line', qq({"a":1}{"b":2}\n)],
    ['an array, not an object', qq([1,2]\n)],
    ['a blank line', qq({"a":1}\n\n{"a":2}\n)],
    )
{
    $t->write_file("$c->[0].log", $c->[1]);
    ok(!eval { $t->records("$c->[0].log"); 1 }, "records() dies: $c->[0]");
}

$t->write_file('partial.log', qq({"a":1}\n{"a":));
is(scalar($t->records('partial.log')), 1, 'a partial last line is left out');
ok(!eval { $t->raw_lines('partial.log'); 1 },
    'raw_lines() dies without a final newline');

# cache: appended lines are read, a new file (inode) is read again
$t->write_file('grow.log', qq({"n":1}\n));
is(scalar($t->records('grow.log')), 1, 'cache: 1');
open my $fh, '>>', $t->dir . '/grow.log' or die;
print $fh qq({"n":2}\n);
close $fh;
is(scalar($t->records('grow.log')), 2, 'cache: appended line read');
unlink $t->dir . '/grow.log';
$t->write_file('grow.log', qq({"n":9}\n));
is(($t->records('grow.log'))[0]{n}, 9, 'cache: a new file is read again');

my @s = map { { seq => $_ } } 1 .. 5;
is(Aff::seq_problem(@s), '', 'seq 1..5: no problem');
is(Aff::seq_problem(reverse @s), '', 'order does not matter');
like(Aff::seq_problem(@s[0, 1, 3, 4]), qr/gap/, 'a gap is seen');
like(Aff::seq_problem(@s, { seq => 3 }), qr/repeat/, 'a repeat is seen');
is(Aff::seq_problem(), 'no records', 'no records is a problem');

is(Aff::click_id('https://x/?a=1&click_id=01ABC&b=2#f'), '01ABC',
    'click_id() from a query');
is(Aff::click_id('https://x/?xclick_id=1'), undef,
    'click_id() does not match a longer name');
like('01M8A4PSJT8ZFQY8PTC2YJF21M', qr/^$Aff::ULID$/, 'ULID matches');
unlike('01M8A4PSJT8ZFQY8PTC2YJF21', qr/^$Aff::ULID$/, '25 chars: no');
unlike('01M8A4PSJT8ZFQY8PTC2YJF21I', qr/^$Aff::ULID$/, 'I is not Crockford');
unlike('81M8A4PSJT8ZFQY8PTC2YJF21M', qr/^$Aff::ULID$/, 'over 48 bits: no');

my $req = Aff::build_request('/p', [[Host => undef], ['User-Agent' => undef],
                                    ['X-A' => "a\x01b"]]);
is($req, "GET /p HTTP/1.0\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n",
    'a request without Host and User-Agent, bytes kept');
like(Aff::build_request('/p'), qr/\r\nUser-Agent: \Q$Aff::UA\E\r\n/,
    'default User-Agent');

my $resp = Aff::parse_response("HTTP/1.1 302 Found\r\nLocation: /x\r\n"
    . "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbody");
is($resp->{status}, 302, 'parse_response: status');
is($resp->{headers}{location}, '/x', 'parse_response: header');
is_deeply($resp->{headers}{'set-cookie'}, ['a=1', 'b=2'],
    'parse_response: repeated header');
is($resp->{body}, 'body', 'parse_response: body');

# the end-of-file log check (Aff::check_dir): alerts, crashes, sanitizer
# and valgrind reports are problems; allow patterns cover alert lines only
my $c = Aff->new(check_logs => 0);
$c->write_file('error.log', "2026/01/01 00:00:00 [notice] 1#1: start\n");
is_deeply([$c->log_problems], [], 'log check: a notice is fine');
$c->write_file('error.log', "2026/01/01 00:00:00 [alert] 1#1: worker "
    . "process 123 exited on signal 11 (core dumped)\n");
like(($c->log_problems)[0] // '', qr/exited on signal 11/,
    'log check: a crashed worker is a problem');
$c->allow_log(qr/exited on signal 9\b/);
is(scalar($c->log_problems), 1, 'log check: allowing signal 9 is not 11');
$c->allow_log(qr/exited on signal 11/);
is(scalar($c->log_problems), 0, 'log check: an allowed alert');
$c->write_file('error.log', "x [emerg] 1#1: bad\nx [crit] 2#2: bad\n"
    . "x [notice] 1#1: worker process 9 exited with code 1\n"
    . "x [error] 1#1: fine\n");
is(scalar($c->log_problems), 3, 'log check: emerg, crit, exit code 1');
$c->write_file('error.log', '');
$c->write_file('vg.77', '');
is(scalar($c->log_problems), 0, 'log check: an empty valgrind log is fine');
$c->write_file('san.77', "==77==ERROR: AddressSanitizer: SEGV\n");
$c->write_file('vg.78', "==78== Invalid read of size 4\n");
$c->allow_log(qr/./);
is(scalar($c->log_problems), 2,
    'log check: sanitizer and valgrind reports cannot be allowed');

# a worker that really crashes (SIGSEGV) is seen, whatever the nginx:
# "exited on signal 11" from the master, an ASan report (SEGV), valgrind's
SKIP: {
    skip "no nginx at $Aff::NGINX", 2 unless -x $Aff::NGINX;
    local $ENV{AFF_NO_MODULE} = 1;
    my $n = Aff->new(check_logs => 0, workers => 1, http =>
        "server { listen 127.0.0.1:%%PORT%%; return 204; }");
    $n->start;
    my ($w) = $n->worker_pids;
    kill 'SEGV', $w;
    ok($n->wait_for(sub { my @p = $n->worker_pids; @p && $p[0] != $w }, 60),
        'crash: the master starts a new worker');
    $n->stop(30);
    like(join("\n", $n->log_problems),
        qr/exited on signal 11|exited with code|SEGV|signal 11/,
        'crash: the log check reports it');
}

done_testing;
