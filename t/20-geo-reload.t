# auto_reload: databases replaced by rename() under load are picked up by
# every worker with no failed request; a corrupt or missing file keeps the
# loaded database (an error logged once a worker); the timer does not hold
# up a graceful stop; nginx -s reload still works.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Aff;

require "$FindBin::Bin/lib/mkmmdb.pl";

my $SERVER = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;

        location /geo {
            return 200 "$affiliate_country|$affiliate_region|$affiliate_city|$affiliate_asn\n";
        }
    }
EOF

my $t = Aff->new(workers => 2, http => <<'EOF' . $SERVER);
    affiliate_geoip %%DIR%%/geo.mmdb auto_reload=100ms;
EOF
my $dir = $t->dir;
mkmmdb('const', "$dir/geo.mmdb", '--value', 'v1');
mkmmdb('const', "$dir/v2.mmdb", '--value', 'v2');
mkmmdb('const', "$dir/v3.mmdb", '--value', 'v3');
mkmmdb('const', "$dir/v4.mmdb", '--value', 'v4');
$t->write_file('bad.mmdb', 'not a database ' x 1000);
$t->start;

sub geo {
    my $r = $t->get('/geo');
    return 'HTTP ' . ($r->{status} // 'error') unless ($r->{status} // 0) == 200;
    (my $b = $r->{body}) =~ s/\n\z//;
    return $b;
}

# the number of workers that logged a line matching $re
sub workers_logged {
    my ($re) = @_;
    my %pids;
    for (split /\n/, $t->error_log) {
        $pids{$1} = 1 if /\d+#(\d+): .*$re/;
    }
    return scalar keys %pids;
}

# the number of lines matching $re
sub lines_logged {
    my ($re) = @_;
    return scalar grep { /$re/ } split /\n/, $t->error_log;
}

# there are $nreloads "reloaded" lines (both workers) and 20 consecutive
# answers are "ZZ|$v|$v|64512"
sub switched {
    my ($v, $nreloads) = @_;
    return $t->wait_for(sub {
        return 0 if lines_logged(qr/affiliate_geoip: reloaded "\Q$dir\E\/geo\.mmdb"/)
                    < $nreloads;
        for (1 .. 20) { return 0 if geo() ne "ZZ|$v|$v|64512" }
        return 1;
    }, 15);
}

sub replace {
    my ($from) = @_;
    rename "$dir/$from", "$dir/geo.mmdb" or die "rename $from: $!";
}

is(geo(), 'ZZ|v1|v1|64512', 'the first database');

my %ok;
my $t0 = time;
my $res = $t->load('/geo', total => 40000, concurrency => 4, during => sub {
    sleep 0.3;

    replace('v2.mmdb');
    $ok{v2} = switched('v2', 2);

    # a corrupt file: both workers keep v2 and say so once
    $t->write_file('bad.tmp', $t->read_file('bad.mmdb'));
    replace('bad.tmp');
    $ok{bad} = $t->wait_for(sub {
        workers_logged(qr/MMDB_open\(".*geo\.mmdb"\) failed: .*keeping/) >= 2
    }, 10);
    $ok{bad_kept} = !grep { geo() ne 'ZZ|v2|v2|64512' } 1 .. 50;

    # no file at all for a while
    unlink "$dir/geo.mmdb";
    $ok{gone} = $t->wait_for(sub {
        workers_logged(qr/stat\(\) ".*geo\.mmdb" failed, keeping/) >= 2
    }, 10);
    $ok{gone_kept} = !grep { geo() ne 'ZZ|v2|v2|64512' } 1 .. 50;

    replace('v3.mmdb');
    $ok{v3} = switched('v3', 4);
    $ok{during} = time - $t0;
});

ok($ok{v2}, 'v2: every worker reloaded, answers changed');
ok($ok{bad}, 'corrupt file: an error logged by each worker');
ok($ok{bad_kept}, 'corrupt file: the old database still answers');
ok($ok{gone}, 'missing file: an error logged by each worker');
ok($ok{gone_kept}, 'missing file: the old database still answers');
ok($ok{v3}, 'v3: every worker reloaded, answers changed');

is($res->{errors}, 0, 'load: no failed request');
is_deeply($res->{statuses}, { 200 => 40000 }, 'load: 40,000 times 200')
    or diag explain $res;
cmp_ok($res->{elapsed}, '>', $ok{during} // 0,
       sprintf('load lasted %.1fs, the swaps %.1fs', $res->{elapsed},
               $ok{during} // 0));

is(workers_logged(qr/MMDB_open\(".*"\) failed/), 2,
   'the corrupt file was tried once a worker');
my $n = () = $t->error_log =~ /MMDB_open\(/g;
is($n, 2, '... and only once');

# nginx -s reload opens the current file in the new workers
replace('v4.mmdb');
$t->reload;
is(geo(), 'ZZ|v4|v4|64512', 'nginx -s reload: new workers use the file');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

$t0 = time;
$t->stop;
cmp_ok(time - $t0, '<', 3, 'graceful stop is not held up by the timer');

# a long auto_reload timer must not hold up a graceful stop either
my $t2 = Aff->new(workers => 1, http => <<'EOF' . $SERVER);
    affiliate_geoip %%DIR%%/geo.mmdb auto_reload=1h;
EOF
mkmmdb('const', $t2->dir . '/geo.mmdb');
$t2->start;
$t2->get('/geo');
$t0 = time;
$t2->stop(20);
cmp_ok(time - $t0, '<', 3, 'auto_reload=1h: graceful stop is immediate');

done_testing;
