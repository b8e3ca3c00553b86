package ProcStat;

# Figures of a process from /proc, for leak checks:
#   ProcStat::mem($pid)   -> { VmRSS => kB, RssAnon => kB, RssFile => kB,
#                              RssShmem => kB } (undef when gone)
#   ProcStat::fds($pid)   -> number of open file descriptors (undef: gone)
#   ProcStat::maps($pid, qr/.../) -> number of mappings whose line matches
#   ProcStat::kb($kb)     -> "12.3 MiB"

use strict;
use warnings;

sub mem {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    my %m;
    while (my $l = <$fh>) {
        $m{$1} = $2 if $l =~ /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/;
    }
    return \%m;
}

sub fds {
    my ($pid) = @_;
    opendir my $dh, "/proc/$pid/fd" or return undef;
    return scalar grep { /^\d+$/ } readdir $dh;
}

sub maps {
    my ($pid, $re) = @_;
    open my $fh, '<', "/proc/$pid/maps" or return undef;
    return scalar grep { $_ =~ $re } <$fh>;
}

sub kb {
    return sprintf '%.1f MiB', $_[0] / 1024;
}

1;
