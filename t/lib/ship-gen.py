#!/usr/bin/python3
"""Synthetic affiliate logs in the module's record format, for the shipping
tests and bench/ship-*.sh: ship-gen.py DIR RECORDS [NODES] [SEED] [PREFIX]
writes DIR/<PREFIX><n>.log (PREFIX: web).  Clicks by people (unique or repeated), bot clicks,
landings, misses, pixel and postback conversions (attributed by the module
or not, with the click on another node, a bot's click id, a click older
than the window, orders reported on two nodes, no order id, bad amounts),
several currencies, days and creators."""

import json
import os
import random
import sys
import time

CROCK = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'


def ulid(rng, ms):
    t = ''.join(CROCK[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    return t + ''.join(rng.choice(CROCK) for _ in range(16))


def ts_str(ms):
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000)) + \
        '.%03dZ' % (ms % 1000)


FIELDS = ('ts', 'type', 'id', 'node', 'click_id', 'link', 'rule', 'creator',
          'campaign', 'dest', 'status', 'ip', 'ua', 'referer', 'host',
          'country', 'region', 'city', 'asn', 'variant', 'device', 'bot',
          'bot_reason', 'unique',
          'cookie', 'source', 'order_id', 'amount', 'currency', 'attributed',
          'duplicate', 'truncated', 'seq')


def main():
    out, total = sys.argv[1], int(sys.argv[2])
    nodes = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    creators = ['anna', 'bob', 'carla', 'dan', 'eve', 'fay', 'gus', 'hal']
    camps = {c: ['%s-c%d' % (c, i) for i in range(3)] for c in creators}
    start = 1795000000000          # 2026-11-18
    span = 8 * 86400000
    prefix = sys.argv[5] if len(sys.argv) > 5 else 'web'
    names = ['%s%d' % (prefix, i + 1) for i in range(nodes)]
    files = {n: open(os.path.join(out, '%s.log' % n), 'w') for n in names}
    seq = {n: 0 for n in names}
    clicks = []                    # (ms, cid, creator, campaign, bot)
    orders = 0
    now = start
    step = span / max(total, 1)

    def rec(node, **kw):
        seq[node] += 1
        o = {k: None for k in FIELDS}
        o.update(bot=False, truncated=False, node=node, seq=seq[node],
                 ip='203.0.113.%d' % rng.randrange(256), ua='Mozilla/5.0')
        o.update(kw)
        files[node].write(json.dumps(o, separators=(',', ':')) + '\n')

    for i in range(total):
        now += step * rng.random() * 2
        ms = int(now)
        node = rng.choice(names)
        r = rng.random()
        c = rng.choice(creators)
        cp = rng.choice(camps[c])
        if r < 0.60 or not clicks:
            typ = 'click' if rng.random() < 0.85 else 'landing'
            cid = ulid(rng, ms)
            bot = rng.random() < 0.12
            if typ == 'landing' and rng.random() < 0.2:
                cp = None
            rec(node, ts=ts_str(ms), type=typ, id=cid, click_id=cid,
                link='l-%s' % c, creator=c, campaign=cp,
                status=302 if typ == 'click' else None, bot=bot,
                bot_reason='ua' if bot else None,
                unique=None if bot else rng.random() < 0.7,
                country=rng.choice(['DE', 'FR', None]),
                # A/B and device links, from the position alone (the
                # random sequence stays as it was)
                variant=i % 3 + 1 if typ == 'click' and i % 5 == 0
                else None,
                device=('ios', 'android', 'desktop')[i % 3]
                if typ == 'click' and i % 7 == 0 else None)
            clicks.append((ms, cid, c, cp, bot, node))
            if len(clicks) > 5000:
                clicks.pop(rng.randrange(len(clicks)))
        elif r < 0.65:
            rec(node, ts=ts_str(ms), type='miss', id=ulid(rng, ms),
                link='nope', status=404)
        else:
            k = rng.random()
            cl = rng.choice(clicks)
            cur = rng.choice(['EUR', 'EUR', 'USD', 'GBP'])
            amt = '%d.%02d' % (rng.randrange(1, 300), rng.randrange(100))
            if rng.random() < 0.05:
                amt = rng.choice(['12.3456', '7', '0.50'])
            orders += 1
            oid = 'O%d' % orders
            src = 'postback' if rng.random() < 0.6 else 'pixel'
            cid = cl[1]
            same = cl[5] == node and not cl[4]
            att = same and rng.random() < 0.8
            if k < 0.03:
                cid = None
                att = False
            elif k < 0.05:
                cid = ulid(rng, ms)      # unknown click id
                att = False
            if k > 0.98:
                oid = None
            if k > 0.95 and k <= 0.98:
                amt = 'abc'              # refused by the report
            rec(node, ts=ts_str(ms), type='conversion', id=ulid(rng, ms),
                click_id=cid, creator=cl[2] if att else None,
                campaign=cl[3] if att else None, status=200, source=src,
                order_id=oid, amount=amt, currency=cur, attributed=att,
                duplicate=False)
            if oid and rng.random() < 0.1:
                # the same order reported again, maybe on another node,
                # by the other source
                n2 = rng.choice(names)
                ms2 = ms + rng.randrange(1, 5000)
                rec(n2, ts=ts_str(ms2), type='conversion',
                    id=ulid(rng, ms2), click_id=cid if rng.random() < 0.5
                    else None, creator=None, campaign=None, status=200,
                    source='pixel' if src == 'postback' else 'postback',
                    order_id=oid, amount=amt, currency=cur,
                    attributed=False, duplicate=n2 == node)
    for f in files.values():
        f.close()


if __name__ == '__main__':
    main()
