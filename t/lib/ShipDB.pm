package ShipDB;

# Database servers for the shipping tests, each in its own temp dir on
# free ports, stopped when the test ends:
#   my $ch = ShipDB::ClickHouse->cluster(2);   # 2 shards, cluster "affiliate"
#   $ch->[0]->http_url, ->query($sql), ->stop, ->start
# As root the servers run as the "clickhouse" system user (setpriv).
# ClickHouse reads the config of the Debian package's binary
# (/usr/sbin/clickhouse-server, 18.16 on Debian 12).

use strict;
use warnings;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);

our @ALL;

sub free_port {
    for (1 .. 200) {
        my $p = 20000 + int(rand(30000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $p, Listen => 1,
                                      ReuseAddr => 1) or next;
        close $s;
        return $p;
    }
    die "no free port";
}

sub http {
    my ($port, $path, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 60) or return (0, '');
    $body //= '';
    print $s "POST $path HTTP/1.0\r\nHost: x\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    local $/;
    my $r = <$s> // '';
    my ($code) = $r =~ m{^HTTP/1\.\d (\d+)};
    $r =~ s/^.*?\r\n\r\n//s;
    return ($code // 0, $r);
}

sub uri_escape {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

package ShipDB::ClickHouse;

sub cluster {
    my ($class, $n) = @_;
    my @nodes = map {
        bless { http => ShipDB::free_port(), tcp => ShipDB::free_port(),
                inter => ShipDB::free_port() }, $class } 1 .. $n;
    my $shards = join '', map {
        "<shard><replica><host>127.0.0.1</host><port>$_->{tcp}</port>"
      . "</replica></shard>" } @nodes;
    for my $s (@nodes) {
        my $d = File::Temp::tempdir('ship-ch-XXXXXX', TMPDIR => 1,
                                    CLEANUP => !$ENV{AFF_KEEP});
        chmod 0755, $d;
        $s->{dir} = $d;
        mkdir "$d/$_" for qw(data tmp log);
        open my $f, '>', "$d/config.xml" or die $!;
        print $f <<"X";
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log>
    <errorlog>$d/log/err.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>$s->{http}</http_port>
  <tcp_port>$s->{tcp}</tcp_port>
  <interserver_http_port>$s->{inter}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/tmp/</user_files_path>
  <format_schema_path>$d/tmp/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <remote_servers><affiliate>$shards</affiliate></remote_servers>
</yandex>
X
        close $f;
        open $f, '>', "$d/users.xml" or die $!;
        print $f <<'X';
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage>
    <distributed_directory_monitor_sleep_time_ms>200</distributed_directory_monitor_sleep_time_ms>
  </default></profiles>
  <users><default><password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
X
        close $f;
        system('chown', '-R', 'clickhouse:clickhouse', $d) if $> == 0;
        push @ShipDB::ALL, $s;
    }
    $_->start for @nodes;
    return \@nodes;
}

sub http_url { 'http://127.0.0.1:' . $_[0]{http} }

sub start {
    my ($s) = @_;
    my @cmd = ('/usr/sbin/clickhouse-server',
               "--config-file=$s->{dir}/config.xml");
    unshift @cmd, 'setpriv', '--reuid=clickhouse', '--regid=clickhouse',
        '--clear-groups' if $> == 0;
    my $pid = fork // die $!;
    if (!$pid) {
        POSIX::setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$s->{dir}/log/stdout";
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    $s->{pid} = $pid;
    my $end = Time::HiRes::time() + 60;
    while (Time::HiRes::time() < $end) {
        my ($c, $b) = ShipDB::http($s->{http}, '/?query=SELECT%201');
        return $s if $c == 200;
        die "clickhouse-server exited: " . `tail -5 $s->{dir}/log/err.log`
            if waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.2);
    }
    die "clickhouse-server did not answer on $s->{http}";
}

sub stop {
    my ($s) = @_;
    return unless $s->{pid};
    kill 'TERM', $s->{pid};
    my $end = Time::HiRes::time() + 30;
    while (Time::HiRes::time() < $end) {
        last if waitpid($s->{pid}, POSIX::WNOHANG()) == $s->{pid};
        Time::HiRes::sleep(0.1);
    }
    if (kill 0, $s->{pid}) {
        kill 'KILL', $s->{pid};
        waitpid($s->{pid}, 0);
    }
    delete $s->{pid};
}

# query text (TabSeparated) or die
sub query {
    my ($s, $sql, $body) = @_;
    my ($c, $r) = ShipDB::http($s->{http},
                               '/?query=' . ShipDB::uri_escape($sql), $body);
    die "clickhouse: $sql\n$r" unless $c == 200;
    return $r;
}

sub multi {
    my ($s, $file) = @_;
    open my $f, '<', $file or die "$file: $!";
    local $/;
    my $text = <$f>;
    $text =~ s/--[^\n]*//g;
    for my $q (split /;\s*\n/, $text) {
        next unless $q =~ /\S/;
        $s->query($q);
    }
}

package ShipDB;

END {
    my $rc = $?;
    $_->stop for @ALL;
    $? = $rc;
}

1;
