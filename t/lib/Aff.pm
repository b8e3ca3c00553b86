package Aff;

# Test harness for ngx_http_affiliate_module: runs a real nginx with the
# module from <repo>/build (a copy taken by new(), so that a rebuild does
# not change a running test) in a temporary prefix directory.
#
#   my $t = Aff->new(workers => 2, main => '...', http => '...',
#                    files => { 'links.tsv' => "..." });
#       Config text and file contents may use %%PORT%%, %%PORT2%% (two free
#       ports on 127.0.0.1) and %%DIR%% (the prefix dir, no trailing slash).
#       The temp dir is removed at exit unless AFF_KEEP=1 (then its path is
#       printed).  AFF_NGINX / AFF_MODULE override the binary / module paths;
#       AFF_MODULE=static (or an AFF_NGINX built with --add-module) loads
#       nothing.  AFF_VALGRIND=1 runs every nginx under valgrind memcheck.
#       allow => [qr/.../, ...]: error.log lines that may be [alert],
#       [crit] or [emerg] (see "Log checks" below).
#   $t->allow_log(qr/.../, ...)    the same, later
#   Aff->allow_log(qr/.../, ...)   for every prefix of the test file
#   $t->log_problems -> list of problems in this prefix's logs (below)
#   $t->start / stop / kill_all / reload / reopen / signal($sig)
#   $t->master_pid, $t->worker_pids($include_shutting_down)
#   $t->conf_test($http_text_or_undef) -> ($exit_code, $output)   # nginx -t
#       undef tests the current nginx.conf; a string is used as the http {}
#       contents of a separate DIR/test.conf (same main part and workers).
#   $t->write_file($name, $content), $t->read_file($name)
#   $t->dir, $t->port, $t->port2, $t->error_log
#   $t->get($path, \%headers, %opts) -> { status, headers, raw_headers, body,
#                                         raw }
#       headers: lower-cased name => value (arrayref when repeated).
#       \%headers may also be an arrayref of [name, value] pairs (kept in
#       order).  A header whose value is undef is not sent; Host => undef
#       sends HTTP/1.0 without Host.  Without a User-Agent, $Aff::UA is
#       sent (nginx counts clicks without one as bots); 'User-Agent' =>
#       undef sends none.  opts: method, body, proto, port,
#       raw (exact bytes to send instead of building a request).
#   $t->status_json($path) -> decoded JSON body
#   $t->records(@files)  -> list of hashrefs, one per NDJSON line (dies on a
#                           line that is not a valid UTF-8 JSON object)
#   $t->raw_lines($file) -> list of raw lines (bytes, without "\n")
#   $t->wait_for(sub { ... }, $timeout) -> true when the sub returned true
#   $t->load($path_or_cb, total => N, concurrency => C, headers => {...},
#            keepalive => 1, during => sub {...}, collect => 1)
#       -> { total, errors, retries, statuses => { 302 => n, ... },
#            locations => [...] (with collect), elapsed }
#       $path_or_cb: a path, or sub($i) returning a path or [$path, \%hdrs].
#       pipeline => K: write K requests at once on a connection.
#       during: run in the parent while the clients are running.
#
# Helpers (functions, not methods):
#   Aff::std_http(%o)  the usual http {} text: zone aff (size => '16m'),
#       affiliate_log %%DIR%%/aff.log (flush => '100ms', log => 'aff.log'),
#       affiliate_links %%DIR%%/links.tsv, server on %%PORT%% with
#       location /go/ (affiliate_redirect zone=aff; plus go => '...') and
#       = /affiliate/status; extra text via http => '...', server => '...'.
#   Aff::click_id($location)   the click_id parameter of a Location
#   Aff::seq_problem(@records) '' when the seq values are distinct and
#       contiguous, else a description of the first gap or repeat
#   $Aff::ULID                 regex of a 26-char Crockford base32 ULID
#
# Log checks: every prefix made by new() is checked when the test file
# ends (done_testing, or END when it dies): one extra test fails when
# error.log has an [alert], [crit] or [emerg] line that no allow pattern
# matches ("exited on signal N" is an [alert]), a worker exited with a
# non-zero code, or a sanitizer (ASan/UBSan: DIR/san.PID) or valgrind
# (DIR/vg.PID) report exists.  Sanitizer and valgrind reports cannot be
# allowed.  new(check_logs => 0) leaves a prefix out (harness self-tests).

use strict;
use warnings;

use Cwd qw(abs_path);
use Encode ();
use Errno qw(EINTR);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);

our $NGINX  = $ENV{AFF_NGINX} || '/usr/sbin/nginx';
our $MODULE = $ENV{AFF_MODULE}
    || abs_path(dirname(abs_path(__FILE__)) . '/../..')
       . '/build/ngx_http_affiliate_module.so';
# the module is linked into $NGINX (--add-module): no load_module line
our $STATIC = static_module();
our $VALGRIND = $ENV{AFF_VALGRIND} ? 1 : 0;
our $SUPP = abs_path(dirname(abs_path(__FILE__))) . '/valgrind.supp';

# prefixes whose logs are checked when the test file ends
my @CHECKS;

my $JSON = JSON::PP->new->utf8->canonical;

our $ULID = qr/[0-7][0-9A-HJKMNP-TV-Z]{25}/;

# sent unless a test gives its own User-Agent (undef: none)
our $UA = 'Mozilla/5.0 (X11; Linux x86_64) aff-test/1.0';

sub std_http {
    my (%o) = @_;
    my $size  = $o{size}  // '16m';
    my $flush = $o{flush} // '100ms';
    my $log   = $o{log}   // 'aff.log';
    my $go    = $o{go}    // '';
    my $http  = $o{http}  // '';
    my $srv   = $o{server} // '';
    return <<"EOF";
    affiliate_zone  aff:$size;
    affiliate_log   %%DIR%%/$log zone=aff flush=$flush;
    affiliate_links %%DIR%%/links.tsv;
$http
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /go/ { affiliate_redirect zone=aff; $go }
        location = /affiliate/status { affiliate_status zone=aff; }
$srv
    }
EOF
}

sub click_id {
    my ($loc) = @_;
    return undef unless defined $loc;
    my ($id) = $loc =~ /[?&]click_id=([^&#]*)/;
    return $id;
}

sub seq_problem {
    my (@recs) = @_;
    return 'no records' unless @recs;
    my @s = sort { $a <=> $b } map { $_->{seq} } @recs;
    for my $i (1 .. $#s) {
        return "seq $s[$i] repeated" if $s[$i] == $s[$i - 1];
        return "gap between seq $s[$i-1] and $s[$i]"
            if $s[$i] != $s[$i - 1] + 1;
    }
    return '';
}

sub static_module {
    if (defined $ENV{AFF_MODULE}) {
        return $ENV{AFF_MODULE} eq '' || $ENV{AFF_MODULE} eq 'static';
    }
    return 0 unless $ENV{AFF_NGINX};
    my $v = `'$NGINX' -V 2>&1`;
    return $v =~ /--add-module=/ ? 1 : 0;
}

sub new {
    my ($class, %o) = @_;

    my $keep = $ENV{AFF_KEEP} ? 1 : 0;
    my $dir = tempdir('aff-test-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    $dir = abs_path($dir);
    # workers run as nobody when the master is root
    chmod 0777, $dir;
    diag_note("AFF_KEEP: prefix $dir") if $keep;

    my $self = bless {
        dir     => $dir,
        workers => $o{workers} // 2,
        main    => $o{main} // '',
        http    => $o{http} // '',
        ports   => [free_ports(2)],
        owner   => $$,
        allow   => [@{ $o{allow} || [] }],
    }, $class;
    push @CHECKS, { dir => $dir, allow => $self->{allow}, pid => $$ }
        if $o{check_logs} // 1;

    for my $d (qw(tmp logs)) {
        mkdir "$dir/$d";
        chmod 0777, "$dir/$d";
    }
    # a private copy of the module: a rebuild (cp over the .so) while a
    # test runs would change the code under the running nginx
    if (!$STATIC && -f $MODULE) {
        copy($MODULE, "$dir/module.so") or die "copy $MODULE: $!";
        chmod 0755, "$dir/module.so";
    }

    for my $name (sort keys %{ $o{files} || {} }) {
        $self->write_file($name, $o{files}{$name});
    }
    $self->write_file('nginx.conf', $self->make_conf($self->{http}));
    return $self;
}

sub diag_note {
    print STDERR "# $_[0]\n";
}

sub free_ports {
    my ($n) = @_;
    my (@socks, @ports);
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => 0, Listen => 1, ReuseAddr => 1)
            or die "cannot bind: $!";
        push @socks, $s;
        push @ports, $s->sockport;
    }
    close $_ for @socks;
    return @ports;
}

sub dir   { $_[0]{dir} }
sub port  { $_[0]{ports}[0] }
sub port2 { $_[0]{ports}[1] }

sub subst {
    my ($self, $text) = @_;
    return $text unless defined $text;
    $text =~ s/%%PORT%%/$self->{ports}[0]/g;
    $text =~ s/%%PORT2%%/$self->{ports}[1]/g;
    $text =~ s/%%DIR%%/$self->{dir}/g;
    return $text;
}

sub make_conf {
    my ($self, $http) = @_;
    my $d = $self->{dir};
    my $load = $ENV{AFF_NO_MODULE} || $STATIC
        ? '' : "load_module $d/module.so;";
    my $conf = <<"EOF";
$load

worker_processes $self->{workers};
error_log $d/error.log info;
pid $d/nginx.pid;
lock_file $d/nginx.lock;

$self->{main}

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;

$http
}
EOF
    return $self->subst($conf);
}

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = "$self->{dir}/$name";
    make_path(dirname($path));
    open my $fh, '>:raw', $path or die "cannot write $path: $!";
    print $fh $self->subst($content);
    close $fh or die "cannot write $path: $!";
    # key files (affiliate_secret, affiliate_postback_key): nginx refuses
    # them when others may read them
    chmod 0600, $path if $name =~ m{(?:^|/)(?:secret|[^/]*\.key)\z};
    return $path;
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $c = <$fh>;
    return $c // '';
}

sub error_log { $_[0]->read_file('error.log') // '' }

# sanitizer and valgrind reports go to files in the prefix dir, one per
# process: DIR/san.PID, DIR/vg.PID (checked when the test file ends)
sub run_nginx {
    my ($self, @args) = @_;
    my $d = $self->{dir};
    my @cmd = ($NGINX, '-p', "$d/", @args);
    unshift @cmd, 'valgrind', '-q', '--tool=memcheck', '--leak-check=no',
        '--track-origins=yes', '--num-callers=30', "--log-file=$d/vg.%p",
        (-f $SUPP ? "--suppressions=$SUPP" : ()) if $VALGRIND;
    my $cmd = join ' ', map { "'$_'" } @cmd;
    # an ASan error ends the process (its report is the failure); UBSan
    # reports and goes on.  Leaks: see t/README.md.
    local $ENV{ASAN_OPTIONS} = join ':', 'detect_leaks=0',
        'print_stacktrace=1', 'handle_abort=1',
        grep({ length } $ENV{ASAN_OPTIONS} // ''), "log_path=$d/san";
    local $ENV{UBSAN_OPTIONS} = join ':', 'print_stacktrace=1',
        'halt_on_error=0', 'report_error_type=1',
        grep({ length } $ENV{UBSAN_OPTIONS} // ''), "log_path=$d/san";
    # output to a file, not a pipe: a process that outlives the command
    # (the sanitizers' llvm-symbolizer, inherited by the daemon) would
    # hold a pipe open and `` would wait for it
    my $of = "$d/nginx.out";
    system("$cmd >'$of' 2>&1");
    my $rc = $? >> 8;
    my $out = $self->read_file($of) // '';
    unlink $of;
    return ($rc, $out);
}

# $t->allow_log(...): this prefix; Aff->allow_log(...): every prefix of
# the test file
my @ALLOW;

sub allow_log {
    my ($self, @re) = @_;
    push @{ ref $self ? $self->{allow} : \@ALLOW }, @re;
    return $self;
}

sub log_problems {
    my ($self) = @_;
    return check_dir($self->{dir}, $self->{allow});
}

# problems in one prefix dir: unexpected alert/crit/emerg lines, workers
# that exited with a non-zero code, sanitizer and valgrind reports
sub check_dir {
    my ($dir, $allow) = @_;
    my @p;
    if (open my $fh, '<', "$dir/error.log") {
        while (my $l = <$fh>) {
            chomp $l;
            if ($l =~ /AddressSanitizer|LeakSanitizer|runtime error:/) {
                push @p, "error.log: $l";
                next;
            }
            my $bad = $l =~ /\[(?:alert|crit|emerg)\]/
                || $l =~ /process \d+ exited with (?:fatal )?code [1-9]/;
            next unless $bad;
            next if grep { $l =~ $_ } @$allow, @ALLOW;
            push @p, "error.log: $l";
        }
    }
    opendir my $dh, $dir or return @p;
    for my $f (sort grep { /^(?:san|vg)\.\d+$/ } readdir $dh) {
        open my $fh, '<', "$dir/$f" or next;
        local $/;
        my $c = <$fh> // '';
        # valgrind -q writes only errors (nothing for a clean process)
        next unless $c =~ /\S/;
        my @l = split /\n/, $c;
        splice @l, 150, @l - 150, '... (' . (@l - 150) . ' more lines)'
            if @l > 160;
        push @p, "$f:\n" . join "\n", @l;
    }
    return @p;
}

# one test for all prefixes of this test file, just before its plan
sub check_all {
    my @todo = grep { $_->{pid} == $$ && -d $_->{dir} } @CHECKS;
    return unless @todo;
    my @p = map { check_dir($_->{dir}, $_->{allow}) } @todo;
    my $tb = Test::More->builder;
    $tb->ok(!@p, 'logs: no sanitizer/valgrind report, crash or unexpected'
        . ' alert (' . @todo . ' nginx prefix' . (@todo > 1 ? 'es' : '')
        . ')');
    $tb->diag(join "\n", @p) if @p;
}

{
    require Test::More;
    require Test2::API;
    Test2::API::test2_add_callback_testing_done(\&check_all);
}

sub start {
    my ($self) = @_;
    die "no module at $MODULE (run make)\n"
        unless -f "$self->{dir}/module.so" || $ENV{AFF_NO_MODULE}
            || $STATIC;
    unlink "$self->{dir}/nginx.pid";
    my ($rc, $out) = $self->run_nginx('-c', "$self->{dir}/nginx.conf");
    if ($rc != 0) {
        die "nginx failed to start (exit $rc):\n$out\n--- error.log:\n"
            . $self->error_log;
    }
    $self->wait_for(sub { $self->master_pid }, 10)
        or die "no pid file\n" . $self->error_log;
    $self->wait_for(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->port, Timeout => 1);
        return $s ? 1 : 0;
    }, 10) or die "nginx does not accept on port " . $self->port . "\n"
        . $self->error_log;
    $self->wait_for(sub { $self->worker_pids == $self->{workers} }, 10);
    $self->{master} = $self->master_pid;
    return $self;
}

sub master_pid {
    my ($self) = @_;
    my $pid = $self->read_file('nginx.pid');
    return undef unless defined $pid && $pid =~ /(\d+)/;
    $pid = $1;
    return kill(0, $pid) ? $pid : undef;
}

sub alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    # a zombie counts as gone
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $st = <$fh> // '';
    return $st =~ /\)\s+Z\s/ ? 0 : 1;
}

sub children {
    my ($ppid) = @_;
    my @pids;
    opendir my $dh, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $st = <$fh> // next;
        next unless $st =~ /\)\s+(\S)\s+(\d+)/;
        next if $1 eq 'Z';
        push @pids, $p + 0 if $2 == $ppid;
    }
    return sort { $a <=> $b } @pids;
}

sub cmdline {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/cmdline" or return '';
    local $/;
    my $c = <$fh> // '';
    $c =~ s/\0/ /g;
    return $c;
}

# worker processes (not cache manager/loader), without the ones shutting
# down unless $all is true
sub worker_pids {
    my ($self, $all) = @_;
    my $m = $self->master_pid or return ();
    if ($VALGRIND) {
        # under valgrind the title nginx sets is not in /proc/PID/cmdline:
        # every child is a worker, shutting down once it said so
        my %down;
        %down = map { $_ => 1 }
            $self->error_log =~ /(\d+)#\d+: gracefully shutting down/g
            unless $all;
        return grep { !$down{$_} } children($m);
    }
    return grep {
        my $c = cmdline($_);
        $c =~ /worker process/ && ($all || $c !~ /shutting down/);
    } children($m);
}

sub signal {
    my ($self, $sig) = @_;
    my $m = $self->master_pid or die "nginx is not running\n";
    kill($sig, $m) or die "kill $sig $m: $!";
}

sub stop {
    my ($self, $timeout) = @_;
    my $m = $self->master_pid || $self->{master};
    return unless $m && alive($m);
    kill 'QUIT', $m;
    unless ($self->wait_for(sub { !alive($m) }, $timeout // 10)) {
        $self->kill_all;
        die "nginx did not stop on QUIT within " . ($timeout // 10) . "s\n";
    }
    delete $self->{master};
    return 1;
}

sub kill_all {
    my ($self) = @_;
    my $m = $self->master_pid || $self->{master};
    return unless $m;
    my @w = children($m);
    kill 'KILL', $m, @w;
    $self->wait_for(sub { !grep { alive($_) } $m, @w }, 5);
    delete $self->{master};
}

# HUP; returns once a full set of new workers runs and no old worker is
# still accepting (old ones may still be shutting down).  With
# wait_old => 1, waits until the old workers are gone.
sub reload {
    my ($self, %o) = @_;
    my %old = map { $_ => 1 } $self->worker_pids(1);
    $self->signal('HUP');
    my $ok = $self->wait_for(sub {
        my @cur = $self->worker_pids;
        my @new = grep { !$old{$_} } @cur;
        return @new >= $self->{workers} && @new == @cur;
    }, $o{timeout} // 10);
    die "reload: no new workers\n" . $self->error_log unless $ok;
    if ($o{wait_old}) {
        $self->wait_for(sub { !grep { alive($_) } keys %old },
            $o{timeout} // 10)
            or die "reload: old workers still running\n";
    }
    return 1;
}

# USR1; with wait_file => NAME waits until the master re-created it
sub reopen {
    my ($self, %o) = @_;
    $self->signal('USR1');
    if ($o{wait_file}) {
        my $f = "$self->{dir}/$o{wait_file}";
        $self->wait_for(sub { -e $f }, 5) or die "reopen: no $f\n";
    }
    sleep($o{settle} // 0.3);    # workers reopen after the master
    return 1;
}

sub conf_test {
    my ($self, $http) = @_;
    my $file = "$self->{dir}/nginx.conf";
    if (defined $http) {
        $file = $self->write_file('test.conf', $self->make_conf($http));
    }
    return $self->run_nginx('-t', '-c', $file);
}

sub wait_for {
    my ($self, $cb, $timeout) = @_;
    my $end = time + ($timeout // 10);
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return 0 if time > $end;
        sleep 0.05;
    }
}

sub header_lines {
    my ($headers) = @_;
    my @pairs;
    if (ref $headers eq 'ARRAY') {
        @pairs = map { [@$_] } @$headers;
    } elsif (ref $headers eq 'HASH') {
        for my $k (sort keys %$headers) {
            my $v = $headers->{$k};
            push @pairs, ref $v eq 'ARRAY' ? map { [$k, $_] } @$v : [$k, $v];
        }
    }
    return @pairs;
}

sub build_request {
    my ($path, $headers, %o) = @_;
    my @pairs = header_lines($headers);
    my %have = map { lc $_->[0] => 1 } @pairs;
    my $proto = $o{proto};
    unshift @pairs, ['Host', 'localhost'] unless $have{host};
    # a browser-like User-Agent: a click without one counts as a bot
    push @pairs, ['User-Agent', $UA] unless $have{'user-agent'};
    my $no_host = grep { lc $_->[0] eq 'host' && !defined $_->[1] } @pairs;
    $proto //= $no_host ? 'HTTP/1.0' : 'HTTP/1.1';
    push @pairs, ['Connection', $o{keepalive} ? 'keep-alive' : 'close']
        unless $have{connection};
    my $body = $o{body};
    push @pairs, ['Content-Length', length $body]
        if defined $body && !$have{'content-length'};
    my $req = ($o{method} // 'GET') . " $path $proto\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for grep { defined $_->[1] } @pairs;
    $req .= "\r\n";
    $req .= $body if defined $body;
    return $req;
}

sub parse_response {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my @lines = split /\r\n/, $head // '';
    my $sl = shift @lines // '';
    my ($status) = $sl =~ m{^HTTP/\d\.\d\s+(\d{3})};
    my %h;
    for (@lines) {
        my ($n, $v) = /^([^:]+):\s*(.*)$/ or next;
        $n = lc $n;
        if (exists $h{$n}) {
            $h{$n} = [ref $h{$n} ? @{ $h{$n} } : $h{$n}, $v];
        } else {
            $h{$n} = $v;
        }
    }
    return { status => $status, headers => \%h, raw_headers => $head,
             body => $body // '', raw => $raw };
}

sub get {
    my ($self, $path, $headers, %o) = @_;
    my $req = defined $o{raw} ? $o{raw} : build_request($path, $headers, %o);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $o{port} // $self->port, Timeout => 5)
        or die "connect: $!";
    binmode $s;
    print $s $req;
    my $raw = '';
    my $sel = IO::Select->new($s);
    my $end = time + ($o{timeout} // 10);
    while (time < $end) {
        next unless $sel->can_read(0.5);
        my $n = sysread $s, my $buf, 65536;
        last unless $n;
        $raw .= $buf;
    }
    close $s;
    return parse_response($raw);
}

sub status_json {
    my ($self, $path) = @_;
    my $r = $self->get($path // '/affiliate/status');
    die "status $path: HTTP " . ($r->{status} // 'none') . "\n$r->{raw}\n"
        unless ($r->{status} // 0) == 200;
    return $JSON->decode($r->{body});
}

sub raw_lines {
    my ($self, $file) = @_;
    my $c = $self->read_file($file);
    my @none;
    return @none unless defined $c && length $c;
    die "$file does not end with a newline\n" unless $c =~ /\n\z/;
    my @lines = split /\n/, $c;
    return @lines;
}

# decoded records of a file, cached by inode: only lines appended since
# the last call are decoded again (JSON::PP is slow)
my $UTF8 = qr/\A(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]
    |\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}
    |\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}
    |[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*\z/x;

sub records {
    my ($self, @files) = @_;
    my @r;
    for my $file (@files) {
        my $path = "$self->{dir}/$file";
        my @st = stat $path or next;
        my $c = $self->{rcache}{$path};
        $c = undef if $c && ($c->{ino} != $st[1] || $c->{off} > $st[7]);
        $c //= { ino => $st[1], off => 0, n => 0, recs => [] };
        if ($st[7] > $c->{off}) {
            open my $fh, '<:raw', $path or die "$path: $!";
            seek $fh, $c->{off}, 0;
            local $/ = "\n";
            while (my $line = <$fh>) {
                last unless $line =~ s/\n\z//;    # a line being written
                $c->{off} += length($line) + 1;
                my $n = ++$c->{n};
                # RFC 3629 (Perl's strict UTF-8 refuses noncharacters
                # such as U+FDEA, which are valid UTF-8 and JSON)
                die "$file:$n: not valid UTF-8: $line\n"
                    unless $line =~ $UTF8;
                my $rec = eval { $JSON->decode($line) };
                die "$file:$n: not JSON ($@): $line\n"
                    unless ref $rec eq 'HASH';
                push @{ $c->{recs} }, $rec;
            }
        }
        $self->{rcache}{$path} = $c;
        push @r, @{ $c->{recs} };
    }
    return @r;
}

# --- load generator: forked clients, HTTP/1.1 keep-alive ---------------

sub load {
    my ($self, $what, %o) = @_;
    my $total = $o{total} // 1000;
    my $conc = $o{concurrency} // 8;
    my %c = (what => $what, conc => $conc, total => $total,
             port => $o{port} // $self->port, ka => $o{keepalive} // 1,
             headers => $o{headers}, collect => $o{collect},
             pipeline => $o{pipeline} // 1);
    $c{ka} = 1 if $c{pipeline} > 1;
    my $t0 = time;

    my @kids;
    for my $i (0 .. $conc - 1) {
        my $out = "$self->{dir}/load.$$.$i";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $rc = eval { load_client(\%c, $i, $out); 1 };
            print STDERR "load client: $@" unless $rc;
            POSIX::_exit($rc ? 0 : 1);
        }
        push @kids, [$pid, $out];
    }

    $o{during}->() if $o{during};

    my %res = (total => 0, errors => 0, retries => 0, statuses => {},
               locations => []);
    for my $k (@kids) {
        waitpid $k->[0], 0;
        $res{errors}++ if $?;
        open my $fh, '<', $k->[1] or do { $res{errors}++; next };
        while (<$fh>) {
            chomp;
            my ($tag, $a, $b) = split /\t/, $_, 3;
            if ($tag eq 'S') { $res{statuses}{$a} += $b; $res{total} += $b }
            elsif ($tag eq 'E') { $res{errors} += $a }
            elsif ($tag eq 'R') { $res{retries} += $a }
            elsif ($tag eq 'L') { push @{ $res{locations} }, $a }
        }
        close $fh;
        unlink $k->[1];
    }
    $res{elapsed} = time - $t0;
    return \%res;
}

# one client: requests $i, $i + conc, ... in batches of `pipeline`
# requests written at once on a keep-alive connection.  Requests left
# without any byte of response when nginx closes the connection were not
# processed (idle keep-alive close, keepalive_requests): they are resent.
sub load_client {
    my ($c, $i, $out) = @_;
    my (%st, @loc);
    my ($errors, $retries) = (0, 0);
    my ($sock, $dead);
    my $buf = '';

    my $connect = sub {
        return undef if $dead;    # nginx refused: it is gone, give up
        for (1 .. 5) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $c->{port}, Timeout => 5);
            if ($s) {
                $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
                binmode $s;
                return $s;
            }
            sleep 0.02;
        }
        $dead = 1;
        return undef;
    };

    my @todo;
    for (my $k = $i; $k < $c->{total}; $k += $c->{conc}) {
        my ($path, $h) = ($c->{what}, $c->{headers});
        if (ref $c->{what} eq 'CODE') {
            my $r = $c->{what}->($k);
            ($path, $h) = ref $r eq 'ARRAY' ? @$r : ($r, $c->{headers});
        }
        push @todo, build_request($path, $h, keepalive => $c->{ka});
    }

    my $attempts = 0;
    while (@todo) {
        my @batch = splice @todo, 0, $c->{pipeline};
        unless ($sock) {
            $sock = $connect->();
            $buf = '';
            if (!$sock) { $errors += @batch; next }
        }
        my $ok = syswrite_all($sock, join '', @batch);
        my $done = 0;
        my $close;
        while ($ok && $done < @batch) {
            my ($resp, $partial);
            ($resp, $close, $partial) = read_response($sock, \$buf);
            if (!$resp) {
                if ($partial) { $errors++; $done++ }    # cut response
                last;
            }
            $done++;
            $st{ $resp->{status} }++;
            push @loc, $resp->{location}
                if $c->{collect} && defined $resp->{location};
            last if $close;
        }
        if ($done < @batch || $close || !$c->{ka}) {
            close $sock;
            undef $sock;
        }
        if ($done < @batch) {
            my @left = @batch[$done .. $#batch];
            if (++$attempts > 20) { $errors += @left; $attempts = 0; next }
            $retries += @left;
            unshift @todo, @left;
        } else {
            $attempts = 0;
        }
    }
    close $sock if $sock;

    open my $fh, '>', $out or die "$out: $!";
    print $fh "S\t$_\t$st{$_}\n" for keys %st;
    print $fh "E\t$errors\n";
    print $fh "R\t$retries\n";
    print $fh "L\t$_\n" for @loc;
    close $fh;
}

sub syswrite_all {
    my ($s, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    while (length $data) {
        my $n = syswrite $s, $data;
        if (!defined $n) { next if $! == EINTR; return 0 }
        substr($data, 0, $n, '');
    }
    return 1;
}

# -> ({status, location}, $server_closes) or (undef, undef, $partial)
sub read_response {
    my ($s, $bufref) = @_;
    my $sel = IO::Select->new($s);
    my $end = time + 30;
    my ($hlen, $status, $clen, $loc, $close);
    while (1) {
        if (!defined $hlen) {
            my $p = index $$bufref, "\r\n\r\n";
            if ($p >= 0) {
                $hlen = $p + 4;
                my $head = substr $$bufref, 0, $p;
                ($status) = $head =~ m{^HTTP/\d\.\d (\d{3})};
                ($clen) = $head =~ /\r\ncontent-length:\s*(\d+)/i;
                ($loc) = $head =~ /\r\nlocation:\s*([^\r]*)/i;
                $close = $head =~ /\r\nconnection:\s*close/i ? 1 : 0;
                $close = 1 unless defined $clen;
            }
        }
        if (defined $hlen && defined $clen
            && length $$bufref >= $hlen + $clen)
        {
            substr($$bufref, 0, $hlen + $clen, '');
            return ({ status => $status, location => $loc }, $close);
        }
        return (undef, undef, length $$bufref) if time > $end;
        next unless $sel->can_read(1);
        my $n = sysread $s, $$bufref, 65536, length $$bufref;
        next if !defined $n && $! == EINTR;
        if (!$n) {
            # EOF: complete only for a response without Content-Length
            if (defined $hlen && !defined $clen) {
                $$bufref = '';
                return ({ status => $status, location => $loc }, 1);
            }
            return (undef, undef, length $$bufref);
        }
    }
}

sub DESTROY {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    local ($?, $@);
    eval { $self->kill_all } if $self->{master} || $self->master_pid;
}

1;
