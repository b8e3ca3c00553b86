#!/usr/bin/python3
"""Benchmark of tools/affiliate-report: records per second and peak memory.

    bench/report.py [--records N] [--nodes K] [--runs R] [--dir DIR]
                    [--tool PATH] [--against PATH]

Writes a multi-node data set like the module's logs (the module's key
order; clicks by people and bots, landings, conversions by postback and
pixel, duplicates, rotated and gzipped files), then runs the report on it
pinned to CPU 1 (taskset), R times, and prints the median records/s and
peak resident memory of the report process; first on a data set 4 times
smaller, to show what memory grows with; with --against, another version
of the report by turns with it (this one, the other, this one, ...), R
runs each, on the same data.  No network.  "records/s of cpu" is records divided by
the user + system time of the report (one core, whatever the machine's
load); "of wall" depends on what else runs.
"""

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TOOL = os.path.join(TOP, 'tools', 'affiliate-report')
B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

UAS = ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
       'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 '
       'Safari/604.1',
       'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 '
       '(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
       'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 '
       '(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36']
BOT_UA = 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)'

# the keys in the order the module writes them (ngx_http_affiliate_record.c)
REC = ('{"ts":"%s","type":"%s","id":"%s","node":"%s","click_id":%s,'
       '"link":%s,"creator":%s,"campaign":%s,"dest":%s,"status":%s,'
       '"ip":"%s","ua":"%s","referer":"https://l.instagram.com/",'
       '"host":"shop.example","country":"%s","region":null,"city":null,'
       '"asn":3320,"rule":null,"variant":null,"device":null,"reason":null,'
       '"bot":%s,"bot_reason":%s,"unique":%s,"cookie":%s,"source":%s,'
       '"order_id":%s,"amount":%s,"currency":%s,"attributed":%s,'
       '"duplicate":%s,"truncated":false,"seq":%d}\n')


# the module leaves absent fields out (docs/log-format.md)
NULLS = re.compile(r'"[a-z_]+":null,')


def q(s):
    return 'null' if s is None else '"%s"' % s


def ulid(rnd, ms):
    t = ''
    for _ in range(10):
        t = B32[ms % 32] + t
        ms //= 32
    return t + ''.join(rnd.choice(B32) for _ in range(16))


def ts_of(ms):
    s, m = divmod(ms, 1000)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(s)) + '.%03dZ' % m


def generate(d, total, nodes, seed=1):
    rnd = random.Random(seed)
    creators = ['c%03d' % i for i in range(200)]
    campaigns = ['spring', 'summer', 'autumn', 'winter', 'launch']
    countries = ['DE', 'FR', 'US', 'GB', 'IT', 'ES', 'NL', 'PL']
    start = 1764547200000              # 2025-12-01
    per_node = total // nodes
    step = 30 * 86400000 // per_node
    os.makedirs(d, exist_ok=True)
    files = []
    recent = []
    for n in range(nodes):
        node = 'web%d' % (n + 1)
        seq = 0
        ms = start + n * 7
        chunk = per_node // 4 + 1
        out = None
        part = 0
        written = 0
        for i in range(per_node):
            if written % chunk == 0:
                if out:
                    out.close()
                name = os.path.join(d, '%s-affiliate.log.%d'
                                    % (node, 3 - part))
                out = (gzip.open(name + '.gz', 'wt', compresslevel=1)
                       if part < 2 else open(name, 'w'))
                files.append(out.name if part >= 2 else name + '.gz')
                part += 1
            written += 1
            seq += 1
            ms += step
            ts = ts_of(ms)
            rid = ulid(rnd, ms)
            x = rnd.random()
            c = rnd.choice(creators)
            cp = rnd.choice(campaigns)
            cc = rnd.choice(countries)
            if x < 0.03:
                # conversion: attributed, or a postback with a click id
                # seen elsewhere, sometimes reported twice
                cid = rnd.choice(recent) if recent else None
                att = rnd.random() < 0.7
                amt = '%d.%02d' % (rnd.randint(5, 300), rnd.randint(0, 99))
                oid = 'o%d-%d' % (n, i)
                src = 'postback' if rnd.random() < 0.8 else 'pixel'
                line = REC % (ts, 'conversion', rid, node, q(cid), 'null',
                              q(c if att else None), q(cp if att else None),
                              'null', 200, '10.0.0.5', 'shop-backend/2.1', cc,
                              'false', 'null', 'null', 'null', q(src),
                              q(oid), q(amt), q('EUR'),
                              'true' if att else 'false', 'false', seq)
            else:
                typ = 'landing' if x < 0.08 else 'click'
                bot = rnd.random() < 0.15
                cid = rid
                if not bot and len(recent) < 5000:
                    recent.append(cid)
                elif not bot:
                    recent[rnd.randrange(5000)] = cid
                dest = ('"https://shop.example/p/item-%d?click_id=%s'
                        '&utm_source=%s&utm_medium=affiliate&utm_campaign=%s"'
                        % (i % 97, cid, c, cp))
                line = REC % (ts, typ, rid, node, q(cid), q('l%d' % (i % 300)),
                              q(c),
                              q(cp), dest, 302,
                              '203.0.%d.0' % (i % 250),
                              BOT_UA if bot else rnd.choice(UAS), cc,
                              'true' if bot else 'false',
                              q('ua') if bot else 'null',
                              'null' if bot else
                              ('true' if rnd.random() < 0.7 else 'false'),
                              'null' if bot else '"set"', 'null', 'null',
                              'null', 'null', 'null', 'null', seq)
            out.write(NULLS.sub('', line))
        out.close()
    return files


def json_only(raw):
    """A line (bytes) as one that no fast path of the report takes: a
    JSON value written again with its keys sorted and spaces between them;
    anything else as it is (malformed stays malformed).  For the tests
    that compare the report's two ways of reading a line."""
    try:
        o = json.loads(raw)
    except ValueError:
        return raw
    return json.dumps(o, sort_keys=True,
                      separators=(', ', ': ')).encode() + b'\n'


def run(tool, files):
    """(wall s, cpu s, peak RSS KB) of one report, in its own child so that
    ru_maxrss is the report's own, pinned to CPU 1 (taskset)."""
    r = subprocess.run(
        [sys.executable, '-c',
         'import sys,resource,subprocess,time\n'
         't=time.perf_counter()\n'
         'subprocess.run(sys.argv[1:],check=True)\n'
         'e=time.perf_counter()-t\n'
         'u=resource.getrusage(resource.RUSAGE_CHILDREN)\n'
         'print(e, u.ru_utime+u.ru_stime, u.ru_maxrss)',
         ] + (['taskset', '-c', '1'] if shutil.which('taskset') else [])
        + [tool, '--by', 'creator,campaign', '--format', 'json',
           '-o', os.devnull] + files,
        capture_output=True, text=True, check=True)
    return tuple(float(x) for x in r.stdout.split())


def main():
    p = argparse.ArgumentParser(
        description='records/s and peak memory of affiliate-report')
    p.add_argument('--records', type=int, default=2000000)
    p.add_argument('--nodes', type=int, default=2)
    p.add_argument('--runs', type=int, default=3,
                   help='runs of each size; the median is printed')
    p.add_argument('--tool', default=TOOL,
                   help='the report to measure (another version of it)')
    p.add_argument('--against', metavar='PATH',
                   help='another version, run by turns with --tool')
    p.add_argument('--dir', help='keep the data set here; reused when '
                                 'it is there')
    a = p.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix='affiliate-report-bench-')
    try:
        t = time.perf_counter()
        sets = []
        for name, n in (('small', a.records // 4), ('big', a.records)):
            sub = os.path.join(d, '%s-%d-%d' % (name, n, a.nodes))
            if not os.path.isdir(sub):
                generate(sub + '.tmp', n, a.nodes)
                os.rename(sub + '.tmp', sub)
            sets.append((name, n, sorted(os.path.join(sub, f)
                                         for f in os.listdir(sub))))
        print('data: %d and %d records, %d nodes, in %s (%.1f s)'
              % (a.records // 4, a.records, a.nodes, d,
                 time.perf_counter() - t))
        tools = [a.tool] + ([a.against] if a.against else [])
        for name, n, files in sets:
            results = {t: [] for t in tools}
            for _ in range(a.runs):
                for t in tools:
                    results[t].append(run(t, files))
            for t in tools:
                runs = sorted(results[t], key=lambda r: r[1])
                wall, cpu, rss = runs[len(runs) // 2]
                print('%-5s %9d records  wall %6.2f s  cpu %6.2f s  '
                      '%7.0f records/s of cpu  %7.0f of wall  '
                      'peak RSS %6.1f MB  (median of %d; cpu %s)%s'
                      % (name, n, wall, cpu, n / cpu, n / wall, rss / 1024,
                         len(runs), ' '.join('%.2f' % r[1] for r in runs),
                         '  ' + t if a.against else ''))
        print('load average: %.2f %.2f %.2f (2 cores)' % os.getloadavg())
    finally:
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
