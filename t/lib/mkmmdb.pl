#!/usr/bin/perl
# Generates MaxMind DB files for the geo tests (and the benchmark) with
# MaxMind::DB::Writer::Tree (Debian: libmaxmind-db-writer-perl).
#
#   perl t/lib/mkmmdb.pl [--seed N] [--ipv4-only] [--value TEXT] TYPE FILE
#
# TYPE:
#   city   GeoIP2-City-like: country.iso_code, subdivisions[0].iso_code and
#          .names.en, city.names.en (non-ASCII names: München, São Paulo,
#          Zürich, ...), some records without city or region.
#   asn    GeoLite2-ASN / ip-location-db ASN schema:
#          autonomous_system_number, autonomous_system_organization.
#   flat   ip-location-db city schema: country_code, state1, state2, city,
#          latitude, longitude.
#   const  flat schema, one record for every address: country_code "ZZ",
#          state1/city TEXT (--value, default "v1") and ASN 64512.  For
#          auto_reload tests: two files differing only in TEXT.
#
# The networks are deterministic pseudo-random for a seed: about 4,000
# IPv4 networks (/12 blocks covering ~93% of the space, then more specific
# /16../28 networks with other data) and about 1,500 IPv6 networks in
# 2400::/6 (/16 blocks, then /24../64), so random addresses mostly hit
# (see random_ipv4 / random_ipv6 below; `do` this file to use them).
# The database is ip_version 6 with IPv4 aliased (::ffff:0:0/96, 2001::/32,
# 2002::/16 -> the IPv4 tree) unless --ipv4-only.

use strict;
use warnings;
use utf8;


# a small deterministic generator, independent of perl's rand()
{
    my $state = 1;

    sub prng_seed { $state = ($_[0] * 2654435761 + 12345) & 0xffffffff;
                    $state ||= 1; prng() for 1 .. 8 }

    sub prng {    # xorshift32 -> [0, 2^32)
        $state ^= ($state << 13) & 0xffffffff;
        $state ^= $state >> 17;
        $state ^= ($state << 5) & 0xffffffff;
        return $state;
    }

    sub prng_int { return prng() % $_[0] }
}

# test addresses, drawn from the same space the networks cover
sub random_ipv4 {
    return join '.', map { prng_int(256) } 1 .. 4;
}

sub random_ipv6 {
    my @w = (0x2400 + prng_int(0x400), map { prng_int(0x10000) } 1 .. 7);
    return join ':', map { sprintf '%x', $_ } @w;
}

# country, subdivision iso_code, subdivision name (en), city (en)
my @PLACES = (
    ['DE', 'BY', 'Bavaria',            'München'],
    ['DE', 'BE', 'Berlin',             'Berlin'],
    ['DE', 'HH', 'Hamburg',            'Hamburg'],
    ['DE', 'NW', 'North Rhine-Westphalia', 'Köln'],
    ['CH', 'ZH', 'Zurich',             'Zürich'],
    ['CH', 'GE', 'Geneva',             'Genève'],
    ['BR', 'SP', 'São Paulo',          'São Paulo'],
    ['BR', 'RJ', 'Rio de Janeiro',     'Rio de Janeiro'],
    ['FR', 'IDF', 'Île-de-France',     'Paris'],
    ['US', 'CA', 'California',         'San Francisco'],
    ['US', 'NY', 'New York',           'New York'],
    ['US', 'TX', 'Texas',              'Austin'],
    ['PL', '12', 'Lesser Poland',      'Kraków'],
    ['SE', 'M',  'Skåne',              'Malmö'],
    ['JP', '13', 'Tokyo',              '東京'],
    ['IT', '65', 'Abruzzo',            "L'Aquila"],
    ['IS', '1',  'Capital Region',     'Reykjavík'],
    ['GB', 'ENG', 'England',           'London'],
    ['SG', undef, undef,               undef],      # country only
    ['NL', 'NH', 'North Holland',      undef],      # no city
    ['MC', undef, undef,               'Monaco'],   # no subdivision
    ['AT', '9',  undef,                'Vienna'],   # region without "en"
);

my @ORGS = ('Deutsche Telekom AG', 'Swisscom (Schweiz) AG',
    'Telefônica Brasil S.A.', 'Orange S.A.', 'Comcast Cable', 'Example Net',
    'Télécom Zürich', 'NTT Communications', 'Open "Quote" Networks');

sub place { return $PLACES[ prng_int(scalar @PLACES) ] }

sub city_record {
    my ($c, $siso, $sname, $city) = @{ place() };
    my %r = (
        continent => { code => 'EU', names => { en => 'Europe' } },
        country   => { iso_code => $c, geoname_id => 1000 + prng_int(9000),
                       names => { en => "Country $c" } },
        location  => { latitude => 1.5, longitude => 2.25 },
    );
    if (defined $siso) {
        my %n = defined $sname ? (en => $sname) : (de => 'Wien');
        $r{subdivisions} = [ { iso_code => $siso, names => \%n },
                             { iso_code => 'X' . $siso,
                               names => { en => 'Second level' } } ];
    }
    $r{city} = { geoname_id => 1 + prng_int(100000), names => { en => $city } }
        if defined $city;
    return \%r;
}

sub asn_record {
    my $asn = prng_int(4) ? 1 + prng_int(65000) : 131072 + prng_int(1 << 30);
    return { autonomous_system_number => $asn,
             autonomous_system_organization => $ORGS[ prng_int(scalar @ORGS) ] };
}

sub flat_record {
    my ($c, $siso, $sname, $city) = @{ place() };
    my %r = (country_code => $c, latitude => 48.1, longitude => 11.5);
    $r{state1} = $sname if defined $sname;
    $r{state2} = 'Upper Bavaria' if $c eq 'DE';
    $r{city} = $city if defined $city;
    return \%r;
}

my %TYPES = (
    continent => 'map', country => 'map', location => 'map', city => 'map',
    subdivisions => ['array', 'map'], names => 'map',
    code => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    de => 'utf8_string', geoname_id => 'uint32', latitude => 'double',
    longitude => 'double',
    autonomous_system_number => 'uint32',
    autonomous_system_organization => 'utf8_string',
    country_code => 'utf8_string', state1 => 'utf8_string',
    state2 => 'utf8_string',
);

sub main {
    my ($seed, $v4only, $value) = (1, 0, 'v1');
    while (@ARGV && $ARGV[0] =~ /^--/) {
        my $o = shift @ARGV;
        if ($o eq '--seed') { $seed = shift @ARGV }
        elsif ($o eq '--ipv4-only') { $v4only = 1 }
        elsif ($o eq '--value') { $value = shift @ARGV }
        else { die "unknown option $o\n" }
    }
    my ($type, $file) = @ARGV;
    die "usage: $0 [--seed N] [--ipv4-only] [--value TEXT] "
        . "city|asn|flat|const FILE\n"
        unless $file && $type =~ /^(city|asn|flat|const)$/;

    my %gen = (city => \&city_record, asn => \&asn_record,
               flat => \&flat_record);
    my %dbtype = (city => 'GeoIP2-City', asn => 'GeoLite2-ASN',
                  flat => 'ip-location-db-city', const => 'aff-test-const');

    require MaxMind::DB::Writer::Tree;

    my $flat = $type eq 'flat' || $type eq 'const';
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $v4only ? 4 : 6,
        record_size              => 28,
        database_type            => $dbtype{$type},
        languages                => ['en'],
        description              => { en => "ngx_http_affiliate_module test "
                                            . "$type database, seed $seed" },
        alias_ipv6_to_ipv4       => $v4only ? 0 : 1,
        remove_reserved_networks => 0,
        map_key_type_callback    => sub {
            return 'utf8_string' if $flat && $_[0] eq 'city';
            return $TYPES{ $_[0] } // die "no type for key $_[0]\n";
        },
    );

    if ($type eq 'const') {
        my $rec = { country_code => 'ZZ', state1 => $value, city => $value,
                    autonomous_system_number => 64512 };
        $tree->insert_network('0.0.0.0/0', $rec);
        $tree->insert_network('2000::/3', $rec) unless $v4only;
        write_tree($tree, $file);
        return;
    }

    # the ASN database gets other networks than the location ones
    prng_seed($seed * 7 + ($type eq 'asn' ? 3 : 0));
    my $rec = $gen{$type};

    for my $b (0 .. 4095) {
        next if prng_int(100) < 7;
        $tree->insert_network(sprintf('%d.%d.0.0/12', $b >> 4, ($b & 15) << 4),
                              $rec->());
    }
    for (1 .. 2500) {
        my $len = 16 + prng_int(13);
        my $ip = prng() & ~((1 << (32 - $len)) - 1) & 0xffffffff;
        $tree->insert_network(sprintf('%d.%d.%d.%d/%d', $ip >> 24,
            ($ip >> 16) & 255, ($ip >> 8) & 255, $ip & 255, $len), $rec->());
    }

    unless ($v4only) {
        for my $b (0 .. 1023) {
            next if prng_int(100) < 7;
            $tree->insert_network(sprintf('%x::/16', 0x2400 + $b), $rec->());
        }
        for (1 .. 600) {
            my $len = 24 + prng_int(41);
            my @w = (0x2400 + prng_int(0x400), map { prng_int(0x10000) } 1..3);
            my $bits = join '', map { sprintf '%016b', $_ } @w;
            $bits = substr($bits, 0, $len) . ('0' x (64 - $len));
            @w = map { oct "0b" . substr($bits, $_ * 16, 16) } 0 .. 3;
            $tree->insert_network(
                sprintf('%x:%x:%x:%x::/%d', @w, $len), $rec->());
        }
    }

    write_tree($tree, $file);
}

sub write_tree {
    my ($tree, $file) = @_;
    my $tmp = "$file.tmp.$$";
    open my $fh, '>:raw', $tmp or die "$tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$tmp: $!\n";
    rename $tmp, $file or die "rename $tmp $file: $!\n";
}

# --- helpers for the tests: `require "$FindBin::Bin/lib/mkmmdb.pl";` ----

# makes a database; dies on failure
sub mkmmdb {
    my ($type, $file, @opts) = @_;
    system($^X, __FILE__, @opts, $type, $file) == 0
        or die "mkmmdb.pl $type $file failed\n";
    return $file;
}

# mmdblookup's record for each address (undef: not found or error), run in
# $procs parallel processes.  Records: hashes, arrays and leaves
# bless([$type, $value], 'MMDBLeaf'), strings as raw UTF-8 bytes.
sub mmdblookup_all {
    my ($db, $ips, $procs) = @_;
    $procs ||= 2;
    my (@out, @kids);
    for my $p (0 .. $procs - 1) {
        # a shell loop: forking this perl for every address is much slower
        my $list = "$db.ips.$$.$p";
        open my $lf, '>', $list or die "$list: $!\n";
        for (my $i = $p; $i < @$ips; $i += $procs) {
            print $lf "$i $ips->[$i]\n";
        }
        close $lf;
        open my $fh, '-|', 'sh', '-c',
            'while read i ip; do echo "### $i";'
            . ' mmdblookup --file "$0" --ip "$ip" 2>/dev/null; done < "$1"',
            $db, $list
            or die "sh: $!\n";
        push @kids, [$fh, $list];
    }
    for my $k (@kids) {
        my ($fh, $list) = @$k;
        binmode $fh;
        local $/;
        my $all = <$fh>;
        close $fh;
        unlink $list;
        for my $chunk (split /^### /m, $all) {
            next unless length $chunk;
            my ($i, $text) = $chunk =~ /\A(\d+)\n(.*)\z/s
                or die "bad chunk\n";
            $out[$i] = $text =~ /\S/ ? parse_mmdblookup($text) : undef;
        }
    }
    return \@out;
}

sub parse_mmdblookup {
    my ($text) = @_;
    my @l = grep { /\S/ } split /\n/, $text;
    my $i = 0;
    my $val;
    $val = sub {
        my $line = $l[$i++] // die "mmdblookup output ends early\n";
        if ($line =~ /^\s*\{\s*$/) {
            my %h;
            while ($l[$i] !~ /^\s*\}\s*$/) {
                my ($k) = $l[$i++] =~ /^\s*"(.*)":\s*$/
                    or die "mmdblookup: no key: $l[$i - 1]\n";
                $h{$k} = $val->();
            }
            $i++;
            return \%h;
        }
        if ($line =~ /^\s*\[\s*$/) {
            my @a;
            push @a, $val->() while $l[$i] !~ /^\s*\]\s*$/;
            $i++;
            return \@a;
        }
        return bless ['utf8_string', $1], 'MMDBLeaf'
            if $line =~ /^\s*"(.*)" <utf8_string>\s*$/;
        return bless [$2, $1], 'MMDBLeaf'
            if $line =~ /^\s*(.*?) <(\w+)>\s*$/;
        die "mmdblookup: cannot parse: $line\n";
    };
    return $val->();
}

# the module's default data paths, in order, per field
our %GEO_PATHS = (
    country => [[qw(country iso_code)], ['country_code']],
    region  => [[qw(subdivisions 0 names en)], ['state1']],
    city    => [[qw(city names en)], ['city']],
    asn     => [['autonomous_system_number']],
);

sub mmdb_get {
    my ($node, $path) = @_;
    for my $k (@$path) {
        if (ref $node eq 'HASH') { $node = $node->{$k} }
        elsif (ref $node eq 'ARRAY' && $k =~ /^\d+$/) { $node = $node->[$k] }
        else { return undef }
        return undef unless defined $node;
    }
    return $node;
}

# what the module should report for one address: @recs are the records of
# the databases in affiliate_geoip order; %paths overrides %GEO_PATHS per
# field (an empty list: the field is off).  Returns "country|region|city|asn"
# as the test location prints it.
sub geo_expect {
    my ($recs, %paths) = @_;
    my %p = (%GEO_PATHS, %paths);
    my %v;
    for my $rec (@$recs) {
        next unless $rec;
        for my $f (qw(country region city asn)) {
            next if defined $v{$f};
            for my $path (@{ $p{$f} }) {
                my $n = mmdb_get($rec, $path);
                next unless ref $n eq 'MMDBLeaf';
                my ($type, $x) = @$n;
                if ($f eq 'asn') {
                    if ($type =~ /^uint(16|32|64)$|^int32$/ && $x =~ /^\d+$/
                        && $x > 0 && $x <= 0xffffffff)
                    {
                        $v{$f} = $x;
                        last;
                    }
                } elsif ($type eq 'utf8_string' && length $x) {
                    $v{$f} = $x;
                    last;
                }
            }
        }
    }
    return join('|', map { $v{$_} // '' } qw(country region city asn));
}

main() unless caller;

1;
