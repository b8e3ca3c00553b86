package AffGdb;

# gdb helpers for the tests that stop a worker at an exact point of the
# ring's code (t/10-kill.t, t/15-stall.t, t/16-lease.t, t/17-exit.t).
#
#   AffGdb::usable()        gdb is installed and may attach here
#   $AffGdb::SH             gdb expression: the shared part of the first
#                           affiliate zone of the attached worker
#   my $g = AffGdb::stop_at($t, $pid, $func, then => [...], hold => 1)
#       attaches to $pid with a breakpoint at $func; once it is hit, runs
#       the gdb commands in `then` and keeps the process stopped.  With
#       hold, AffGdb::release($g) detaches (the process runs on); without,
#       the test is expected to SIGKILL the process, then AffGdb::end($g).
#       Returns undef (with a diag) if gdb could not set the breakpoint.
#   AffGdb::hit($t, $g, $timeout)   waits until the breakpoint was hit
#   AffGdb::run($pid, @commands)    attach, run commands, detach; output

use strict;
use warnings;

use POSIX ();
use Test::More ();
use Time::HiRes qw(sleep);

our ($GDB) = grep { -x } map { "$_/gdb" } split /:/, $ENV{PATH};

our $SH = '(*(ngx_http_affiliate_zone_t **)'
    . ' ((ngx_http_affiliate_main_conf_t *)'
    . ' ((ngx_http_conf_ctx_t *) (*(ngx_cycle_t **) &ngx_cycle)'
    . '->conf_ctx[((ngx_module_t *) &ngx_http_module)->index])'
    . '->main_conf[ngx_http_affiliate_module.ctx_index])->zones.elts)->sh';

my $usable;

sub usable {
    return $usable if defined $usable;
    $usable = 0;
    return 0 unless $GDB;
    my $pid = fork // die;
    if (!$pid) { sleep 30; POSIX::_exit(0) }
    my $o = `'$GDB' -nx -batch -p $pid -ex detach 2>&1`;
    $usable = $? == 0 && $o =~ /process $pid\) detached/ ? 1 : 0;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return $usable;
}

sub stop_at {
    my ($t, $pid, $func, %o) = @_;
    my $base = $t->dir . "/gdb.$pid." . ++$AffGdb::n;
    my %g = (pid => $pid, hit => "$base.hit", go => "$base.go",
             ready => "$base.ready", out => "$base.out");
    my @then = map { ('-ex', $_) } @{ $o{then} || [] };
    my @after = $o{hold}
        ? ('-ex', "shell while [ ! -e $g{go} ]; do sleep 0.05; done",
           '-ex', 'delete', '-ex', 'detach')
        : ('-ex', 'shell sleep 60');
    my $gpid = fork // die "fork: $!";
    if (!$gpid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $g{out};
        open STDERR, '>&', \*STDOUT;
        { exec $GDB, '-nx', '-batch', '-p', $pid,
            '-ex', 'set pagination off',
            '-ex', 'set breakpoint pending off',
            '-ex', "break $func",
            '-ex', "shell touch $g{ready}",
            '-ex', 'continue',
            @then,
            '-ex', "shell touch $g{hit}",
            @after }
        POSIX::_exit(127);
    }
    $g{gpid} = $gpid;
    my $ok = $t->wait_for(sub { -e $g{ready} }, 30);
    sleep 0.3;    # gdb: continue
    if (!$ok || !kill(0, $gpid)) {
        Test::More::diag(slurp($g{out}));
        end(\%g);
        return undef;
    }
    return \%g;
}

sub hit {
    my ($t, $g, $timeout) = @_;
    my $ok = $t->wait_for(sub { -e $g->{hit} }, $timeout // 20);
    Test::More::diag(slurp($g->{out})) unless $ok;
    return $ok;
}

sub release {
    my ($g) = @_;
    if (!open my $fh, '>', $g->{go}) {
        Test::More::diag("$g->{go}: $!");
        return end($g);
    }
    for (1 .. 200) {
        last if waitpid($g->{gpid}, POSIX::WNOHANG()) == $g->{gpid};
        sleep 0.05;
    }
    end($g);
}

sub end {
    my ($g) = @_;
    return unless $g->{gpid};
    kill 'KILL', $g->{gpid};
    waitpid $g->{gpid}, 0;
    delete $g->{gpid};
}

sub run {
    my ($pid, @cmd) = @_;
    my $kid = open(my $fh, '-|') // die "fork: $!";
    if (!$kid) {
        open STDERR, '>&', \*STDOUT;
        { exec $GDB, '-nx', '-batch', '-p', $pid,
            (map { ('-ex', $_) } @cmd), '-ex', 'detach' }
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return <$fh> // '';
}

1;
