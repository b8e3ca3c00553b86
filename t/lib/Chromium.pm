package Chromium;

# Headless Chromium driven over the DevTools protocol on a pipe
# (--remote-debugging-pipe: Chromium reads commands on fd 3 and writes
# answers and events on fd 4, JSON messages each ended by a NUL byte), so
# that only Perl core modules are needed: no websocket, no port, no
# chromedriver.
#
#   my $b = Chromium->new(args => [...]);     # a fresh --user-data-dir
#   my $p = $b->page;                         # a new tab (see page())
#   $p->call('Preload.enable');               # a command to the page shown
#   $p->navigate($url);                       # waits for the load event
#   $p->eval('document.title');               # the value (returnByValue)
#   $p->click('#go');                         # real mouse events, or
#   $p->press('#go'); ...; $p->release;       # a slow click
#   $p->url, $p->prerendered, $p->events($m)  # the page shown, prerendered
#                                             # pages, this tab's events
#   $b->wait_for(sub { ... }, $timeout);      # polls, keeps reading events
#   $b->close;                                # Browser.close, then KILL
#
# Chromium is started in its own session (setsid): close() and DESTROY
# end that process group only, i.e. the browser and the helpers it forked
# (zygote, renderers, network and GPU processes), nothing else.
#
# Chromium::binary() is the chromium executable or undef (CHROMIUM
# overrides the search).

use strict;
use warnings;

use Errno qw(EINTR EAGAIN);
use Fcntl qw(F_DUPFD);
use File::Temp qw(tempdir);
use IO::Handle;
use IO::Select;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

my $JSON = JSON::PP->new->utf8->canonical;

our @FLAGS = qw(
    --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-dev-shm-usage --no-default-browser-check --mute-audio
    --remote-debugging-pipe
);

sub binary {
    return -x $ENV{CHROMIUM} ? $ENV{CHROMIUM} : undef
        if defined $ENV{CHROMIUM};
    for my $b (qw(/usr/bin/chromium /usr/bin/chromium-browser)) {
        return $b if -x $b;
    }
    return undef;
}

sub new {
    my ($class, %o) = @_;
    my $bin = $o{binary} // binary() // die "no chromium binary\n";
    my $keep = $ENV{AFF_KEEP} ? 1 : 0;
    my $dir = tempdir('aff-chromium-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    print STDERR "# AFF_KEEP: chromium profile and log in $dir\n" if $keep;

    pipe(my $cmd_r, my $cmd_w) or die "pipe: $!";
    pipe(my $ev_r, my $ev_w) or die "pipe: $!";

    my @cmd = ($bin, @FLAGS, "--user-data-dir=$dir/profile",
        @{ $o{args} || [] }, 'about:blank');

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setsid();
        # out of the way of 3 and 4 first, then onto them (dup2 clears
        # close-on-exec on the target)
        my $in  = fcntl($cmd_r, F_DUPFD, 10);
        my $out = fcntl($ev_w, F_DUPFD, 10);
        POSIX::dup2($in, 3) // POSIX::_exit(126);
        POSIX::dup2($out, 4) // POSIX::_exit(126);
        POSIX::close($in);
        POSIX::close($out);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/chromium.log";
        open STDERR, '>&', \*STDOUT;
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    close $cmd_r;
    close $ev_w;
    $cmd_w->autoflush(1);

    my $self = bless {
        pid     => $pid,
        owner   => $$,
        dir     => $dir,
        w       => $cmd_w,
        r       => $ev_r,
        sel     => IO::Select->new($ev_r),
        buf     => '',
        id      => 0,
        replies => {},
        events  => [],
        timeout => $o{timeout} // 30,
    }, $class;

    # the first answer proves the pipe works
    my $v = $self->call('Browser.getVersion');
    $self->{version} = $v->{product};
    $self->{ua} = $v->{userAgent};
    return $self;
}

sub pid     { $_[0]{pid} }
sub dir     { $_[0]{dir} }
sub version { $_[0]{version} }
sub ua      { $_[0]{ua} }

sub log_text {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/chromium.log" or return '';
    local $/;
    return <$fh> // '';
}

sub send {
    my ($self, $method, $params, $session) = @_;
    my $id = ++$self->{id};
    my $msg = { id => $id, method => $method, params => $params // {} };
    $msg->{sessionId} = $session if defined $session;
    my $data = $JSON->encode($msg) . "\0";
    local $SIG{PIPE} = 'IGNORE';
    while (length $data) {
        my $n = syswrite $self->{w}, $data;
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            die "chromium: write $method: $!\n" . $self->log_text;
        }
        substr($data, 0, $n, '');
    }
    return $id;
}

# read what is there (up to $wait seconds for the first bytes); false at
# EOF
sub pump {
    my ($self, $wait) = @_;
    return 0 if $self->{eof};
    my @ready = $self->{sel}->can_read($wait);
    return 1 unless @ready;
    my $n = sysread $self->{r}, $self->{buf}, 1 << 20, length $self->{buf};
    if (!defined $n) {
        return 1 if $! == EINTR || $! == EAGAIN;
        die "chromium: read: $!\n";
    }
    if ($n == 0) {
        $self->{eof} = 1;
        return 0;
    }
    while ((my $i = index $self->{buf}, "\0") >= 0) {
        my $m = $JSON->decode(substr $self->{buf}, 0, $i);
        substr($self->{buf}, 0, $i + 1, '');
        if (defined $m->{id}) {
            $self->{replies}{ $m->{id} } = $m;
        } else {
            push @{ $self->{events} }, $m;
        }
    }
    return 1;
}

# a command and its result; dies on a protocol error or a timeout
sub call {
    my ($self, $method, $params, $session, $timeout) = @_;
    my $id = $self->send($method, $params, $session);
    my $end = time + ($timeout // $self->{timeout});
    until ($self->{replies}{$id}) {
        die "chromium: $method: no answer within "
            . ($timeout // $self->{timeout}) . "s\n" . $self->log_text
            if time > $end;
        $self->pump(0.1)
            or die "chromium: $method: the browser went away\n"
                . $self->log_text;
    }
    my $r = delete $self->{replies}{$id};
    die "chromium: $method: $r->{error}{message}\n" if $r->{error};
    return $r->{result};
}

# polls $cb every 50 ms, reading events meanwhile; the true value or 0
sub wait_for {
    my ($self, $cb, $timeout) = @_;
    my $end = time + ($timeout // $self->{timeout});
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return 0 if time > $end;
        $self->pump(0.05) or sleep 0.05;
    }
}

# events seen so far (all sessions), optionally only those named $method
sub events {
    my ($self, $method) = @_;
    $self->pump(0);
    return grep { !defined $method || $_->{method} eq $method }
        @{ $self->{events} };
}

# a new tab, attached through its "tab" target: Chromium allows
# prerendering only to DevTools clients that attach that way (a client
# attached straight to a page target gets PrerenderingDisabledByDevTools,
# crbug.com/1440085), and a prerendered page that the person activates
# is then a new page target of the same tab (see Chromium::Page::current)
sub page {
    my ($self, $url) = @_;
    my $T = JSON::PP::true;
    my $F = JSON::PP::false;
    unless ($self->{tab_attach}++) {
        $self->call('Target.setAutoAttach', { autoAttach => $T,
            waitForDebuggerOnStart => $F, flatten => $T,
            filter => [{ type => 'tab' }] });
    }
    my $t = $self->call('Target.createTarget', { url => 'about:blank' });
    my $page;
    $self->wait_for(sub {
        for my $e ($self->events('Target.attachedToTarget')) {
            my $s = $e->{params}{sessionId};
            next if defined $e->{sessionId}
                || $e->{params}{targetInfo}{type} ne 'tab'
                || $self->{tabs}{$s}++;
            $self->call('Target.setAutoAttach', { autoAttach => $T,
                waitForDebuggerOnStart => $F, flatten => $T }, $s);
        }
        ($page) = grep {
            $_->{params}{targetInfo}{targetId} eq $t->{targetId}
        } $self->events('Target.attachedToTarget');
        return $page;
    }, 10) or die "chromium: the new tab's page did not attach\n";
    my $p = bless { b => $self, tab => $page->{sessionId},
        session => $page->{params}{sessionId},
        target => $t->{targetId} }, 'Chromium::Page';
    $p->navigate($url) if defined $url;
    return $p;
}

sub close {
    my ($self, $timeout) = @_;
    my $pid = $self->{pid} or return;
    eval { $self->send('Browser.close'); 1 };
    my $end = time + ($timeout // 10);
    while (time < $end) {
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    # the session leader is gone or hangs: end what is left of its group
    kill 'KILL', -$pid;
    waitpid($pid, 0);
    delete $self->{pid};
    close $self->{w};
    close $self->{r};
    return 1;
}

sub DESTROY {
    my ($self) = @_;
    return unless $self->{owner} == $$ && $self->{pid};
    local ($?, $@);
    kill 'KILL', -$self->{pid};
    waitpid($self->{pid}, 0);
}

package Chromium::Page;

use strict;
use warnings;

# the tab's page that is shown: the one attached first, or after it went
# away (the person activated a prerendered page) the page that replaced it
sub current {
    my ($self) = @_;
    my %page;
    for my $e ($self->{b}->events) {
        next unless ($e->{sessionId} // '') eq $self->{tab};
        my $m = $e->{method};
        if ($m eq 'Target.attachedToTarget') {
            my $i = $e->{params}{targetInfo};
            $page{ $i->{targetId} } = { session => $e->{params}{sessionId},
                subtype => $i->{subtype} // '', url => $i->{url},
                target => $i->{targetId} };
        } elsif ($m eq 'Target.detachedFromTarget') {
            delete $page{ $e->{params}{targetId} };
        } elsif ($m eq 'Target.targetInfoChanged') {
            my $i = $e->{params}{targetInfo};
            next unless $page{ $i->{targetId} };
            $page{ $i->{targetId} }{subtype} = $i->{subtype} // '';
            $page{ $i->{targetId} }{url} = $i->{url};
        }
    }
    my $first = $page{ $self->{target} };
    return $first if $first;
    my @shown = grep { $_->{subtype} ne 'prerender' } values %page;
    return @shown == 1 ? $shown[0] : undef;
}

sub session {
    my ($self) = @_;
    my $c = $self->current;
    return $c ? $c->{session} : $self->{session};
}

# the URL of the page shown (undef while none is)
sub url {
    my ($self) = @_;
    my $c = $self->current or return undef;
    my $r = eval {
        $self->{b}->call('Target.getTargetInfo',
            { targetId => $c->{target} })
    } or return undef;
    return $r->{targetInfo}{url};
}

# prerendered pages waiting in this tab
sub prerendered {
    my ($self) = @_;
    my %page;
    for my $e ($self->{b}->events) {
        next unless ($e->{sessionId} // '') eq $self->{tab};
        my $i = $e->{params}{targetInfo};
        if ($e->{method} eq 'Target.attachedToTarget') {
            $page{ $i->{targetId} } = $i->{subtype} // '';
        } elsif ($e->{method} eq 'Target.detachedFromTarget') {
            delete $page{ $e->{params}{targetId} };
        } elsif ($e->{method} eq 'Target.targetInfoChanged') {
            $page{ $i->{targetId} } = $i->{subtype} // ''
                if exists $page{ $i->{targetId} };
        }
    }
    return grep { $page{$_} eq 'prerender' } sort keys %page;
}

sub call {
    my ($self, $method, $params, $timeout) = @_;
    return $self->{b}->call($method, $params, $self->session, $timeout);
}

# sessions of this tab's pages (the shown one, prerendered ones, and
# those gone)
sub sessions {
    my ($self) = @_;
    my %s = ($self->{session} => 1);
    for my $e ($self->{b}->events('Target.attachedToTarget')) {
        $s{ $e->{params}{sessionId} } = 1
            if ($e->{sessionId} // '') eq $self->{tab};
    }
    return \%s;
}

# events of this tab's pages; with $session, of that page only
sub events {
    my ($self, $method, $session) = @_;
    my $s = defined $session ? { $session => 1 } : $self->sessions;
    return grep { $s->{ $_->{sessionId} // '' } }
        $self->{b}->events($method);
}

# navigates the page shown and waits for the load event that follows
sub navigate {
    my ($self, $url, $timeout) = @_;
    my $s = $self->session;
    $self->call('Page.enable') unless $self->{page_enabled}{$s}++;
    my $seen = () = $self->events('Page.loadEventFired', $s);
    my $r = $self->call('Page.navigate', { url => $url });
    die "navigate $url: $r->{errorText}\n" if $r->{errorText};
    $self->{b}->wait_for(sub {
        my $n = () = $self->events('Page.loadEventFired', $s);
        $n > $seen;
    }, $timeout // 30) or die "navigate $url: no load event\n";
    return $r;
}

# the value of a JavaScript expression in the page shown (undef when
# it fails, e.g. while the page is being replaced)
sub eval {
    my ($self, $js) = @_;
    my $r = eval {
        $self->call('Runtime.evaluate', { expression => $js,
            returnByValue => JSON::PP::true, awaitPromise => JSON::PP::true })
    } or return undef;
    return undef if $r->{exceptionDetails};
    return $r->{result}{value};
}

# a left click in the middle of the element (mouse moved, pressed,
# released): the browser sees a user gesture, as from a person.
# press() and release() make the two halves, for a slow click.
sub click {
    my ($self, $selector) = @_;
    $self->press($selector);
    return $self->release;
}

sub press {
    my ($self, $selector) = @_;
    my $q = JSON::PP->new->allow_nonref->encode($selector);
    my $rect = $self->eval("(() => { const e = document.querySelector($q);"
        . " if (!e) return null; e.scrollIntoView();"
        . " const r = e.getBoundingClientRect();"
        . " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()")
        or die "click: no element $selector\n";
    my %at = (x => $rect->{x}, y => $rect->{y});
    $self->{at} = \%at;
    $self->call('Input.dispatchMouseEvent', { type => 'mouseMoved', %at });
    $self->call('Input.dispatchMouseEvent', { type => 'mousePressed', %at,
        button => 'left', buttons => 1, clickCount => 1 });
    return 1;
}

sub release {
    my ($self) = @_;
    my $at = delete $self->{at} or die "release: not pressed\n";
    $self->call('Input.dispatchMouseEvent', { type => 'mouseReleased', %$at,
        button => 'left', buttons => 0, clickCount => 1 });
    return 1;
}

1;
