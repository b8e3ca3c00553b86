# Reload storm: under continuous keep-alive load, 200 reloads (HUP) and 50
# reopens (USR1, most of them after renaming the log away), while the geo
# database (auto_reload) is replaced by a truncated and then a corrupt file
# several times.  Afterwards: no record lost or written twice (seq over
# all the rotated files contiguous, each file in seq order), every click
# id a client got in the log exactly once, nothing dropped; master and
# worker RSS stable and no fd leak (start/middle/end figures printed);
# nginx never crashed, the corrupt files were refused with an error and
# the loaded database kept answering; a reload while the file is corrupt
# is refused and the old workers keep serving.
#
#   AFF_STORM_RELOADS=N (default 200), AFF_STORM_REOPENS=N (default 50)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Aff;
use HostileReq;
use ProcStat;

plan skip_all => 'MaxMind::DB::Writer missing (libmaxmind-db-writer-perl)'
    unless eval { require MaxMind::DB::Writer::Tree; 1 };
require "$FindBin::Bin/lib/mkmmdb.pl";

my $RELOADS = $ENV{AFF_STORM_RELOADS} // 200;
my $REOPENS = $ENV{AFF_STORM_REOPENS} // 50;
my $WORKERS = 2;

# growth allowed, from start to end and from the middle to the end (a leak
# grows with every reload; warm-up does not), of the RSS without shared
# memory ("Private": file pages of the binary still warm up on reloads,
# 20 MB under ASan) and of the anonymous RSS (the heap)
my %RSS_TOTAL_KB = (Private => 16 * 1024, RssAnon => 8 * 1024);
my $RSS_LATE_KB  = 2 * 1024;

# under ASan, freed memory waits in a quarantine (256 MB by default) and
# the RSS grows with every reload without a leak: reuse it at once, so
# that only memory still referenced (a leak) makes the RSS grow
$ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '',
    'quarantine_size_mb=0', 'thread_local_quarantine_size_kb=0';

my ($http, $files) = HostileReq::fuzz_conf(
    size => '32m',
    geo  => "    affiliate_geoip %%DIR%%/geo.mmdb auto_reload=100ms;\n");
my $t = Aff->new(workers => $WORKERS, http => $http, files => $files,
                 main => "pcre_jit on;\nworker_shutdown_timeout 5s;");
my $dir = $t->dir;
# a reload while geo.mmdb is broken is refused (nginx -t would fail)
$t->allow_log(
    qr/\[emerg\].*affiliate_geoip: MMDB_open\(".*geo\.mmdb"\) failed/);

for my $v (qw(v1 v2)) {
    mkmmdb('const', "$dir/$v.mmdb", '--value', $v);
}
my $good = $t->read_file('v1.mmdb');
$t->write_file('geo.mmdb', $good);
$t->start;

# --- helpers ---------------------------------------------------------------

sub geo_answer {
    my $r = $t->get('/geo');
    return 'HTTP ' . ($r->{status} // 'none') unless ($r->{status} // 0) == 200;
    (my $b = $r->{body}) =~ s/\n\z//;
    return $b;
}

# error.log lines after byte $off
sub log_since {
    my ($off) = @_;
    my $l = $t->error_log;
    return length $l > $off ? substr($l, $off) : '';
}

# replaces geo.mmdb atomically with $content
sub put_geo {
    my ($content) = @_;
    $t->write_file('geo.tmp', $content);
    rename "$dir/geo.tmp", "$dir/geo.mmdb" or die "rename: $!";
}

# every current worker logged a line matching $re after $off
sub all_workers_logged {
    my ($off, $re) = @_;
    my %pids;
    for (split /\n/, log_since($off)) {
        $pids{$1} = 1 if /\d+#(\d+): .*$re/;
    }
    my @w = $t->worker_pids;
    return @w && !grep { !$pids{$_} } @w;
}

sub figures {
    my $m = $t->master_pid;
    my @w = $t->worker_pids;
    my %f = (master => ProcStat::mem($m), master_fd => ProcStat::fds($m),
             master_geo_maps => ProcStat::maps($m, qr/geo\.mmdb/));
    $f{master}{Private} = $f{master}{VmRSS} - $f{master}{RssShmem};
    # the largest worker; shared memory pages a worker touched depend on
    # its history, not on leaks: Private is VmRSS without them
    for my $w (@w) {
        my $m = ProcStat::mem($w) or next;
        $m->{Private} = $m->{VmRSS} - $m->{RssShmem};
        for my $k (keys %$m) {
            $f{worker}{$k} = $m->{$k} if $m->{$k} > ($f{worker}{$k} // -1);
        }
    }
    my @fd = grep { defined } map { ProcStat::fds($_) } @w;
    $f{worker_fd} = @fd ? (sort { $a <=> $b } @fd)[-1] : 0;
    return \%f;
}

sub show {
    my ($name, $f) = @_;
    diag sprintf '%-6s master RSS %s (anon %s, file %s), %d fds, %d geo '
        . 'mappings; worker RSS %s (without shm %s, anon %s), %d fds', $name,
        ProcStat::kb($f->{master}{VmRSS}), ProcStat::kb($f->{master}{RssAnon}),
        ProcStat::kb($f->{master}{RssFile}), $f->{master_fd},
        $f->{master_geo_maps}, ProcStat::kb($f->{worker}{VmRSS}),
        ProcStat::kb($f->{worker}{Private}),
        ProcStat::kb($f->{worker}{RssAnon}), $f->{worker_fd};
}

# old workers still shutting down
sub old_workers {
    my %cur = map { $_ => 1 } $t->worker_pids;
    return grep { !$cur{$_} } $t->worker_pids(1);
}

my %st = (ok => 0, refused => 0, timeout => 0, rotations => 0, reopens => 0,
          bad_windows => 0, max_old => 0);

# HUP; waits only until a full new generation runs (or the reload was
# refused: an [emerg] after $off).  Returns 'ok', 'refused' or 'timeout'
sub hup {
    my %old = map { $_ => 1 } $t->worker_pids(1);
    my $off = length $t->error_log;
    $t->signal('HUP');
    my $end = time + 30;
    while (time < $end) {
        my @cur = $t->worker_pids;
        my @new = grep { !$old{$_} } @cur;
        if (@new >= $WORKERS && @new == @cur) {
            my $n = grep { Aff::alive($_) } keys %old;
            $st{max_old} = $n if $n > $st{max_old};
            return 'ok';
        }
        return 'refused' if log_since($off) =~ /\[emerg\]/;
        sleep 0.005;
    }
    return 'timeout';
}

# --- warm-up and the start figures ----------------------------------------

my @PATHS = ('/go/summer', '/go/kit', '/go/w', '/go/nope', '/go/anna/sku-1',
             '/s/?ref=anna&cmp=x&size=m', '/?ref=bob', '/go/clk');
my $UA = 'Mozilla/5.0 (X11; Linux x86_64) storm/1.0';
sub storm_request {
    my ($i) = @_;
    my $p = $PATHS[$i % @PATHS];
    my $ip = join '.', 10, ($i >> 16) & 255, ($i >> 8) & 255, $i & 255;
    return { i => $i, kind => 'storm', head => 0, allow => {},
             raw => "GET $p HTTP/1.1\r\nHost: localhost\r\n"
                  . "User-Agent: $UA\r\nX-Forwarded-For: $ip\r\n\r\n" };
}

sub storm_check {
    my ($req, $resp, $acc) = @_;
    my $st = $resp->{status} // 'none';
    $acc->{statuses}{$st}++;
    my $id = HostileReq::hval($resp, 'x-aff-click');
    my $loc = HostileReq::hval($resp, 'x-loc') // '-';
    if (($st eq '302' || $st eq '200') && $id) {
        push @{ $acc->{ids} }, $id;    # a click or a landing
    } elsif ($st eq '404' && $loc eq 'go') {
        $acc->{misses}++;
    } elsif ($st ne '200') {
        push @{ $acc->{prob} }, "request $req->{i}: HTTP $st ($loc) "
            . HostileReq::escape($resp->{head_raw} // '');
    }
}

my $warm = HostileReq::run(port => $t->port, total => 2000, clients => 2,
    pipeline => 8, dir => $dir, gen => \&storm_request,
    check => \&storm_check);
is($warm->{statuses}{302} + $warm->{statuses}{404} + ($warm->{statuses}{200}
   // 0), 2000, 'warm-up: 2,000 answers');
is(geo_answer(), 'ZZ|v1|64512', 'geo: the first database');
sleep 0.5;
my $f_start = figures();
show('start', $f_start);

# --- the storm ---------------------------------------------------------------

my $stop = "$dir/storm.stop";
my %geo_ok = (kept => 0, errors => 0, refused_reload => 0, back => 0);
my @geo_fail;
my $f_mid;
my $value = 'v1';
my $storm_t0;

my $storm = sub {
    $storm_t0 = time;
    my $reopen_every = $REOPENS ? $RELOADS / $REOPENS : 0;
    my $bad_every = int($RELOADS / 5) || 1;
    my $next_reopen = $reopen_every;
    for my $k (1 .. $RELOADS) {
        # keep the shutting-down generations few (worker_shutdown_timeout
        # bounds them anyway)
        $t->wait_for(sub { old_workers() <= 4 * $WORKERS }, 10)
            if old_workers() > 4 * $WORKERS;

        my $h0 = time;
        my $r = hup();
        $st{hup_wall} += time - $h0;
        $st{$r}++;
        push @geo_fail, "reload $k: $r" if $r ne 'ok';

        while ($REOPENS && $st{reopens} < $REOPENS && $k >= $next_reopen) {
            $next_reopen += $reopen_every;
            $st{reopens}++;
            if ($st{reopens} % 5) {    # 4 in 5 rotate the log first
                $st{rotations}++;
                rename "$dir/aff.log", "$dir/aff.log.$st{rotations}"
                    or die "rename aff.log: $!";
                $t->signal('USR1');
                $t->wait_for(sub { -e "$dir/aff.log" }, 10)
                    or push @geo_fail, "reopen $st{reopens}: no new aff.log";
            } else {
                $t->signal('USR1');
            }
        }

        if ($k == int($RELOADS / 2)) {
            $f_mid = figures();
        }

        # now and then: a truncated, then a corrupt database; a reload
        # meanwhile is refused; then a good one (the other value)
        if ($k % $bad_every == 0) {
            my $b0 = time;
            $st{bad_windows}++;
            for my $bad (['truncated', substr($good, 0, length($good) / 2)],
                         ['corrupt', 'not a MaxMind DB ' x 4000])
            {
                my $off = length $t->error_log;
                put_geo($bad->[1]);
                my $re = qr/MMDB_open\(".*geo\.mmdb"\) failed: .*keeping/;
                if ($t->wait_for(sub { all_workers_logged($off, $re) }, 10))
                {
                    $geo_ok{errors}++;
                } else {
                    push @geo_fail,
                        "$bad->[0]: no error logged by every worker";
                }
                my @a = map { geo_answer() } 1 .. 10;
                if (grep { $_ ne "ZZ|$value|64512" } @a) {
                    push @geo_fail, "$bad->[0]: answers @a, not $value";
                } else {
                    $geo_ok{kept}++;
                }
            }
            my $r = hup();
            if ($r eq 'refused') {
                $geo_ok{refused_reload}++;
            } else {
                push @geo_fail, "reload with a corrupt database: $r";
            }
            push @geo_fail, 'after a refused reload: ' . geo_answer()
                if geo_answer() ne "ZZ|$value|64512";
            $value = $value eq 'v1' ? 'v2' : 'v1';
            put_geo($t->read_file("$value.mmdb"));
            if ($t->wait_for(sub {
                    !grep { geo_answer() ne "ZZ|$value|64512" } 1 .. 10 }, 10))
            {
                $geo_ok{back}++;
            } else {
                push @geo_fail, "good database $value not picked up";
            }
            $st{bad_wall} += time - $b0;
        }
    }
    $st{wall} = time - $storm_t0;
    open my $fh, '>', $stop or die "$stop: $!";
    close $fh;
};

# a paced load (about 2,000 requests/s at most): enough to keep every
# generation busy, few enough records to check them all
my $res = HostileReq::run(port => $t->port, clients => 3, pipeline => 8,
    delay => 0.006, dir => $dir, gen => \&storm_request,
    check => \&storm_check, until => sub { -e $stop }, during => $storm);

diag sprintf 'storm: %.1fs wall: %d reloads (%.0f ms each until the new '
    . 'generation ran; %d refused, %d timed out), %d reopens (%d after a '
    . 'rename), %d bad-database windows (%.1fs); at most %d old workers '
    . 'alive when a new generation ran', $st{wall} // 0, $st{ok},
    1000 * ($st{hup_wall} // 0) / ($st{ok} + $st{refused} || 1),
    $st{refused}, $st{timeout}, $st{reopens}, $st{rotations},
    $st{bad_windows}, $st{bad_wall} // 0, $st{max_old};
diag sprintf 'load meanwhile: %d answers (%.0f/s), %d sent again after an '
    . 'idle close, %d connections', $res->{total},
    $res->{total} / ($res->{elapsed} || 1), $res->{retries} // 0,
    $res->{conns} // 0;

is($st{ok}, $RELOADS, "$RELOADS reloads, each with a new generation");
is($st{timeout}, 0, 'no reload timed out');
is($st{reopens}, $REOPENS, "$REOPENS reopens");
is_deeply(\@geo_fail, [], 'geo: corrupt files refused, the loaded database '
          . 'kept, good ones picked up');
diag "geo: $st{bad_windows} bad windows: $geo_ok{errors} errors logged by "
   . "every worker, $geo_ok{kept} times kept, $geo_ok{refused_reload} "
   . "reloads refused, $geo_ok{back} good databases picked up";
cmp_ok($st{bad_windows}, '>=', 2, 'at least two windows with a bad database')
    if $RELOADS >= 10;
my @prob = @{ $res->{prob} || [] };
ok(!@prob, 'load: only 302, 404 and 200 answers, none cut')
    or diag join "\n", @prob[0 .. ($#prob < 9 ? $#prob : 9)];

# --- records ------------------------------------------------------------------

my $s = HostileReq::wait_written($t, 60);
ok($s, 'every accepted record written');
$s ||= $t->status_json;
ok($t->wait_for(sub { !old_workers() }, 30), 'old generations gone');
sleep 0.5;
$s = $t->status_json;

my @files = ((map { "aff.log.$_" } 1 .. $st{rotations}), 'aff.log');
my (@recs, @unordered);
for my $f (@files) {
    my @r = eval { $t->records($f) };
    fail("$f: $@") if $@;
    for my $i (1 .. $#r) {
        push @unordered, "$f: seq $r[$i]{seq} after $r[$i - 1]{seq}"
            if $r[$i]{seq} <= $r[$i - 1]{seq};
    }
    push @recs, @r;
}
is_deeply(\@unordered, [], 'each file is in seq order');
is(scalar @recs, $s->{records}{accepted},
   'as many records in the files as accepted');
is(Aff::seq_problem(@recs), '', 'seq over all files: no gap, no repeat');
is($s->{records}{dropped}, 0, 'nothing dropped');
is($s->{records}{lost}, 0, 'nothing lost');

my %n;
$n{ $_->{click_id} }++ for grep { $_->{type} =~ /^(click|landing)\z/ } @recs;
my @ids = (@{ $warm->{ids} || [] }, @{ $res->{ids} || [] });
my @missing = grep { !$n{$_} } @ids;
my @twice = grep { $n{$_} > 1 } keys %n;
my %sent = map { $_ => 1 } @ids;
my @extra = grep { !$sent{$_} } keys %n;
is(scalar @missing, 0, sprintf('all %d click ids sent are in the log',
                               scalar @ids))
    or diag "missing: @missing[0 .. ($#missing < 4 ? $#missing : 4)]";
is(scalar @twice, 0, 'no click id twice in the log') or diag "@twice[0..4]";
is(scalar @extra, 0, 'no click id in the log that no client got')
    or diag "@extra[0 .. ($#extra < 4 ? $#extra : 4)]";
is(scalar(grep { $_->{type} eq 'miss' } @recs),
   ($warm->{misses} // 0) + ($res->{misses} // 0), 'one miss record per 404');
my @geo_null = grep { $_->{type} eq 'click' && ($_->{country} // '') ne 'ZZ' }
               @recs;
is(scalar @geo_null, 0, 'every click has its country (the database never '
                        . 'went missing)');

# --- figures at the end ---------------------------------------------------

my $f_end = figures();
show('start', $f_start);
show('middle', $f_mid) if $f_mid;
show('end', $f_end);

is($f_end->{master_fd}, $f_start->{master_fd}, 'master: no fd leak');
is($f_end->{worker_fd}, $f_start->{worker_fd}, 'workers: no fd leak');
cmp_ok($f_end->{master_geo_maps}, '<=', $f_start->{master_geo_maps},
       'master: no geo database mapping left behind');
for my $who (qw(master worker)) {
    my $a = $who eq 'master' ? $f_start->{master} : $f_start->{worker};
    my $z = $who eq 'master' ? $f_end->{master} : $f_end->{worker};
    my $m = !$f_mid ? $a : $who eq 'master' ? $f_mid->{master}
                                            : $f_mid->{worker};
    for my $k (qw(Private RssAnon)) {
        cmp_ok($z->{$k} - $a->{$k}, '<=', $RSS_TOTAL_KB{$k},
               "$who $k: start to end within "
               . ProcStat::kb($RSS_TOTAL_KB{$k}));
        # a worker lives one generation: "middle" may be a fresh one that
        # has not filled its caches yet (the geo cache alone grows to about
        # 600 KB); the master lives through every reload, where a leak adds up
        next if $who eq 'worker';
        cmp_ok($z->{$k} - $m->{$k}, '<=', $RSS_LATE_KB,
               "$who $k: middle to end within " . ProcStat::kb($RSS_LATE_KB));
    }
}

ok($t->stop(15), 'nginx stops');
unlike($t->error_log, qr/exited on signal|\[alert\]|\[crit\]/,
       'no crash, alert or crit in error.log');
done_testing;
