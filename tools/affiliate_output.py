"""Rolls the report's buckets up into groups, applies costs and rates, and
writes the report as text, CSV, JSON or a self-contained HTML page."""

import csv
import html
import io
import json

import affiliate_metrics as M

FORMAT_VERSION = 1
# the fields of a bucket's key (see Report.buckets)
KEY_INDEX = {'creator': 0, 'campaign': 1, 'day': 2, 'link': 3, 'country': 4,
             'variant': 5, 'device': 6}


class RateError(Exception):
    pass


class Group:
    __slots__ = ('key', 'clicks', 'landings', 'unique', 'bots', 'inactive',
                 'first', 'last', 'money')

    def __init__(self, key):
        self.key = key
        self.clicks = self.landings = self.unique = self.bots = 0
        self.inactive = 0
        self.first = self.last = None
        self.money = {}        # cur -> [orders, revenue, cost, pixel]

    def seen(self, a, b):
        if a is None:
            return
        if self.first is None or a < self.first:
            self.first = a
        if self.last is None or b > self.last:
            self.last = b

    def cur(self, c):
        m = self.money.get(c)
        if m is None:
            m = self.money[c] = [0, M.ZERO, M.ZERO, 0]
        return m


def bucket_costs(rep, costs):
    """{bucket key: {currency: cost}} including the flat fees."""
    out = {}
    if not costs.rate and not costs.flat:
        return out
    campaigns = {}
    for (c, cp, *_), b in rep.buckets.items():
        if c is not None and (b[0] or b[1] or b[3] or b[6] or b[7]):
            campaigns.setdefault(c, set()).add(cp)
    for key, b in rep.buckets.items():
        c, cp = key[0], key[1]
        if c is None:
            continue
        cost = {}
        visits = b[0] + b[1]
        money = b[6] or {}
        r = costs.rate_for(c, cp, 'cpc')
        if r and visits:
            cost[r[1]] = cost.get(r[1], M.ZERO) + r[0] * visits
        r = costs.rate_for(c, cp, 'cpa')
        orders = sum(m[0] for m in money.values())
        if r and orders:
            cost[r[1]] = cost.get(r[1], M.ZERO) + r[0] * orders
        r = costs.rate_for(c, cp, 'revshare')
        if r:
            for cur, m in money.items():
                cost[cur] = cost.get(cur, M.ZERO) + m[1] * r[0] / M.HUNDRED
        if cost:
            out[key] = cost
    for c, cp, a, cur in costs.flat_fees(
            lambda c: sorted(campaigns.get(c, ()), key=lambda x: x or '')):
        key = (c, cp) + (None,) * 5
        d = out.setdefault(key, {})
        d[cur] = d.get(cur, M.ZERO) + a
    return out


def rollup(rep, bcost, by, conv):
    idx = [KEY_INDEX[f] for f in by]
    groups = {}
    keys = set(rep.buckets) | set(bcost)
    for bk in keys:
        gk = tuple(bk[i] for i in idx)
        g = groups.get(gk)
        if g is None:
            g = groups[gk] = Group(gk)
        b = rep.buckets.get(bk)
        if b is not None:
            g.clicks += b[0]
            g.landings += b[1]
            g.unique += b[2]
            g.bots += b[3]
            g.inactive += b[7]
            g.seen(b[4], b[5])
            for cur, m in (b[6] or {}).items():
                t, f = conv(cur)
                x = g.cur(t)
                x[0] += m[0]
                x[1] += m[1] * f
                x[3] += m[2]
        for cur, v in bcost.get(bk, {}).items():
            t, f = conv(cur)
            g.cur(t)[2] += v * f
    return groups


def rows_of(g, default_curs):
    curs = sorted(g.money) or default_curs
    out = []
    for cur in curs:
        orders, revenue, cost, pixel = g.money.get(
            cur, [0, M.ZERO, M.ZERO, 0])
        d = M.derived(g.clicks, g.landings, g.unique, g.bots, orders,
                      revenue, cost)
        out.append({
            'currency': cur, 'clicks': g.clicks, 'landings': g.landings,
            'visits': d['visits'], 'unique_visits': g.unique,
            'bot_clicks': g.bots, 'bot_share': d['bot_share'],
            'inactive_clicks': g.inactive,
            'conversions': orders, 'pixel_conversions': pixel,
            'conversion_rate': d['conversion_rate'], 'revenue': revenue,
            'aov': d['aov'], 'epc': d['epc'], 'cost': cost,
            'profit': d['profit'], 'roi': d['roi'], 'cpa': d['cpa'],
            'first_seen': g.first, 'last_seen': g.last})
    return out


def sort_key(row):
    roi = row['roi']
    return (roi is None, -(roi or 0), -row['profit'], -row['revenue'],
            -row['visits'], tuple('' if k is None else k
                                  for k in row['key'].values()))


def build(rep, sources, costs, rates, args):
    target = args.currency if rates is not None else None

    def conv(cur):
        if rates is None:
            return cur, 1
        r = rates.get(cur)
        if r is None:
            raise RateError('%s: no rate from %s to %s'
                            % (args.rates, cur, target))
        return target, r

    bcost = bucket_costs(rep, costs)
    groups = rollup(rep, bcost, args.by, conv)
    allcur = set()
    for g in groups.values():
        allcur.update(g.money)
    default_curs = ([target] if target else
                    sorted(allcur) if len(allcur) == 1 else [None])
    rows = []
    total = Group(())
    for g in groups.values():
        total.clicks += g.clicks
        total.landings += g.landings
        total.unique += g.unique
        total.bots += g.bots
        total.inactive += g.inactive
        total.seen(g.first, g.last)
        for cur, m in g.money.items():
            x = total.cur(cur)
            for i in range(4):
                x[i] += m[i]
        for r in rows_of(g, default_curs):
            r['key'] = dict(zip(args.by, g.key))
            rows.append(r)
    rows.sort(key=sort_key)
    totals = rows_of(total, default_curs)

    # charts: ROI per creator, visits and orders per day of the top creators
    by_creator = rollup(rep, bcost, ['creator'], conv)
    roi_rows = []
    for g in by_creator.values():
        for r in rows_of(g, default_curs):
            r['key'] = {'creator': g.key[0]}
            roi_rows.append(r)
    roi_rows.sort(key=sort_key)
    daily = {}
    for (c, _, day, *_), b in rep.buckets.items():
        if day is None:
            continue
        d = daily.setdefault(c, {}).setdefault(day, [0, 0])
        d[0] += b[0] + b[1]
        d[1] += sum(m[0] for m in (b[6] or {}).values())
    ranked = sorted((c for c in daily if c is not None),
                    key=lambda c: (-sum(v[1] for v in daily[c].values()),
                                   -sum(v[0] for v in daily[c].values()), c))
    top = ranked[:max(args.top, 0)]

    return {
        'report': 'affiliate-report', 'version': FORMAT_VERSION,
        'period': {'from': args.lo or None,
                   'to': None if args.hi == '\uffff' else args.hi},
        'group_by': list(args.by), 'currency': target,
        'window': args.window,
        'groups': rows, 'total': totals,
        'attribution': rep.attr,
        'integrity': integrity(rep, sources, args),
        'chart': {'roi': roi_rows,
                  'daily': {c: daily[c] for c in top}, 'top': top},
    }


def integrity(rep, sources, args):
    integ = rep.integrity
    problems = []
    nodes = []
    mal_by_node = {}
    for s in sources:
        if s.malformed:
            owner = (next(iter(s.nodes)) if len(s.nodes) == 1
                     else s.node_hint, s.node_hint)
            mal_by_node[owner] = mal_by_node.get(owner, 0) + s.malformed
        if s.error:
            problems.append('%s: %s' % (s.display, s.error))
    lo, hi = args.lo, args.hi
    logs = {}
    for node, log in integ.nodes:
        logs.setdefault(node, []).append(log)
    for key in sorted(integ.nodes):
        ns = integ.nodes[key]
        name = (ns.node if len(logs[ns.node]) == 1 or ns.node == ns.log
                else '%s (%s)' % (ns.node, ns.log))
        runs = integ.runs(ns)
        missing = 0
        gaps = []
        for r in runs:
            for after, n, ta, tb in r['gaps']:
                missing += n
                gaps.append({'after_seq': after, 'missing': n,
                             'between': [ta, tb]})
                if tb >= lo and ta < hi:
                    problems.append('node %s: %d record(s) missing after '
                                    'seq %d (%s .. %s)'
                                    % (name, n, after, ta, tb))
            if r['first'] > 1 and r['ts_first'] >= lo:
                problems.append('node %s: the run at %s starts at seq %d: '
                                'records 1..%d are not in the input'
                                % (name, r['where'], r['first'],
                                   r['first'] - 1))
        nodes.append({
            'node': ns.node, 'log': ns.log, 'name': name,
            'node_from_file': ns.derived,
            'records': ns.records, 'duplicates': ns.duplicates,
            'missing': missing, 'gaps': gaps,
            'restarts': sum(1 for r in runs[1:] if r['first'] == 1),
            'runs': [{'first_seq': r['first'], 'last_seq': r['last'],
                      'first_ts': r['ts_first'], 'last_ts': r['ts_last']}
                     for r in runs],
            'malformed': mal_by_node.pop(key, 0),
            'records_without_id': ns.no_id})
    for (node, log), n in mal_by_node.items():
        nodes.append({'node': node, 'log': log, 'name': node,
                      'node_from_file': True, 'records': 0,
                      'duplicates': 0, 'missing': 0, 'gaps': [],
                      'restarts': 0, 'runs': [], 'malformed': n,
                      'records_without_id': 0})
    if integ.malformed_count:
        problems.append('%d malformed line(s), first at %s:%d'
                        % (integ.malformed_count, integ.malformed[0][0],
                           integ.malformed[0][1]))
    notes = []
    no_id = sum(n['records_without_id'] for n in nodes)
    if no_id:
        notes.append('%d record(s) without "id" (older module): duplicates '
                     'found by node, seq and ts' % no_id)
    derived = [n['name'] for n in nodes if n['node_from_file']
               and n['records']]
    if derived:
        notes.append('records without "node" (older module): node named '
                     'after the file: %s' % ', '.join(derived))
    notes.append('records dropped by a full ring leave no seq gap: check '
                 'records.dropped in each node\'s status')
    read = sum(n['records'] for n in nodes)
    return {
        'complete': not problems,
        'verdict': ('INCOMPLETE: %d problem(s)' % len(problems) if problems
                    else 'complete: every record from seq 1 to the last is '
                    'present, read once' if read else
                    'complete, but no record was read'),
        'problems': problems, 'notes': notes, 'nodes': nodes,
        'files': [{'file': s.display, 'lines': s.lines,
                   'records': s.records, 'malformed': s.malformed,
                   'gzip': s.gzip, 'nodes': sorted(s.nodes),
                   'error': s.error} for s in sources],
        'malformed_count': integ.malformed_count,
        'malformed': [{'file': f, 'line': n, 'reason': r}
                      for f, n, r in integ.malformed],
        'misses': rep.misses,
    }


# --- rendering ---------------------------------------------------------------

def js(v):
    """JSON value of a report field: Decimal as an exact string."""
    if isinstance(v, M.Decimal):
        return M.money(v)
    if isinstance(v, dict):
        return {k: js(x) for k, x in v.items()}
    if isinstance(v, list):
        return [js(x) for x in v]
    return v


def ratio_str(v):
    return None if v is None else format(v, 'f')


ROW_FIELDS = ('currency', 'clicks', 'landings', 'visits', 'unique_visits',
              'bot_clicks', 'bot_share', 'inactive_clicks', 'conversions',
              'pixel_conversions',
              'conversion_rate', 'revenue', 'aov', 'epc', 'cost', 'profit',
              'roi', 'cpa', 'first_seen', 'last_seen')
RATIOS = ('bot_share', 'conversion_rate', 'roi')


def json_row(r):
    out = {}
    if 'key' in r:
        # a variant is a number, as in the log
        out['key'] = {k: int(v) if k == 'variant' and v and v.isdigit()
                      else v for k, v in r['key'].items()}
    for f in ROW_FIELDS:
        v = r[f]
        out[f] = (ratio_str(v) if f in RATIOS else js(v))
    return out


def render(res, args):
    if args.format == 'json':
        doc = dict(res)
        doc.pop('chart')
        doc['groups'] = [json_row(r) for r in res['groups']]
        doc['total'] = [json_row(r) for r in res['total']]
        return json.dumps(doc, indent=1, sort_keys=True,
                          ensure_ascii=False) + '\n'
    if args.format == 'csv':
        return render_csv(res, args)
    if args.format == 'html':
        return render_html(res, args)
    return render_text(res, args)


def render_csv(res, args):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(list(args.by) + list(ROW_FIELDS))
    for r in res['groups'] + [dict(t, key={b: '(total)' if i == 0 else ''
                                           for i, b in enumerate(args.by)})
                              for t in res['total']]:
        j = json_row(r)
        w.writerow([('' if r['key'][b] is None else r['key'][b])
                    for b in args.by]
                   + ['' if j[f] is None else j[f] for f in ROW_FIELDS])
    return buf.getvalue()


def pct(v):
    if v is None:
        return 'n/a'
    p = v * 100
    q = M.Decimal('1') if abs(p) >= 1000 else M.Decimal('0.1')
    return '%s%%' % p.quantize(q, M.ROUND_HALF_UP)


def m2(v):
    return 'n/a' if v is None else format(M.round2(v), 'f')


def cell(v, width):
    s = '-' if v is None else str(v)
    if len(s) > width:
        s = s[:width - 1] + '~'
    return s


KEY_MIN = {'day': 10}


def text_table(rows, by, multi):
    """Aligned table within 100 columns: keys shrink (not below 8, or 10
    for a day), then the optional columns go, in DROP order."""
    keys = [(b, None, lambda r, b=b: r['key'].get(b), '<') for b in by]
    if multi:
        keys.append(('cur', 3, lambda r: r['currency'], '<'))
    nums = [
        ('clicks', 6, lambda r: r['clicks'], '>'),
        ('uniq', 6, lambda r: r['unique_visits'], '>'),
        ('bots', 6, lambda r: pct(r['bot_share']), '>'),
        ('lands', 5, lambda r: r['landings'], '>'),
        ('conv', 5, lambda r: r['conversions'], '>'),
        ('CR', 6, lambda r: pct(r['conversion_rate']), '>'),
        ('revenue', 10, lambda r: m2(r['revenue']), '>'),
        ('EPC', 6, lambda r: m2(r['epc']), '>'),
        ('cost', 9, lambda r: m2(r['cost']), '>'),
        ('profit', 10, lambda r: m2(r['profit']), '>'),
        ('ROI', 7, lambda r: pct(r['roi']), '>'),
    ]
    need = []
    for name, w, get, al in keys:
        if w is None:
            w = max([len(name), 5] + [len(cell(get(r), 40)) for r in rows])
        need.append(w)
    floor = [min(w, 3 if k[0] == 'cur' else KEY_MIN.get(k[0], 8))
             for w, k in zip(need, keys)]
    dropped = []
    while True:
        room = 100 - sum(c[1] + 1 for c in nums) + 1
        if sum(f + 1 for f in floor) <= room or len(dropped) == len(DROP):
            break
        name = DROP[len(dropped)]
        nums = [c for c in nums if c[0] != name]
        dropped.append(name)
    widths = list(need)
    while sum(w + 1 for w in widths) > room:
        i = max(range(len(widths)), key=lambda i: widths[i] - floor[i])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    cols = [(k[0], w, k[2], k[3]) for k, w in zip(keys, widths)] + nums

    def line(vals):
        out = []
        for (name, w, get, al), v in zip(cols, vals):
            out.append(('%-*s' if al == '<' else '%*s') % (w, cell(v, w)))
        return ' '.join(out).rstrip()

    lines = [line([c[0] for c in cols])]
    for r in rows:
        lines.append(line([c[2](r) for c in cols]))
    return lines, line, cols, dropped


DROP = ('EPC', 'bots', 'lands', 'CR', 'uniq')


def period_text(res):
    """The period as --from and --to gave it; a side not given is the
    first (or last) record counted, so named."""
    p = res['period']
    seen = [t for t in res['total'] if t['first_seen']]
    lo, hi = p['from'], p['to']
    first = min((t['first_seen'] for t in seen), default=None)
    last = max((t['last_seen'] for t in seen), default=None)
    from_data = lo is None and first is not None
    to_data = hi is None and last is not None
    note = ('; first and last record' if from_data and to_data else
            '; from the first record' if from_data else
            '; to the last record' if to_data else '')
    return '%s .. %s (UTC%s)' % (lo or first or 'start', hi or last or 'end',
                                 note)


def render_text(res, args):
    out = []
    integ = res['integrity']
    nfiles = len(integ['files'])
    out.append('affiliate-report: %s' % period_text(res))
    out.append('%d input(s), %d node(s), by %s%s'
               % (nfiles, len(set(n['node'] for n in integ['nodes']
                                  if n['records'])),
                  ','.join(args.by), ', money in %s' % res['currency']
                  if res['currency'] else ''))
    out.append('')
    curs = set(r['currency'] for r in res['groups'] + res['total'])
    multi = len(curs) > 1
    lines, line, cols, dropped = text_table(res['groups'], args.by, multi)
    out.extend(lines)
    nkey = len(args.by) + (1 if multi else 0)
    for t in res['total']:
        r = dict(t, key={b: ('total' if i == 0 else '')
                         for i, b in enumerate(args.by)})
        out.append(line([c[2](r) if i >= nkey or c[2](r) else ''
                         for i, c in enumerate(cols)]))
    out.append('')
    if dropped:
        out.append('(left out for width: %s; --format csv has every column)'
                   % ', '.join(dropped))
    out.append('clicks, lands: by people; uniq: unique visits (clicks + '
               'lands); bots: share of bot')
    out.append('clicks; CR = conv / uniq; EPC = revenue / (clicks + lands); '
               'ROI = profit / cost.')
    a = res['attribution']
    out.append('')
    out.append('Orders: %d in the period, from %d conversion record(s); %d '
               'duplicate report(s) dropped'
               % (a['orders'], a['reports'], a['duplicate_reports']))
    out.append('  (%d order(s) reported on more than one node), %d pixel-only.'
               % (a['multi_node_orders'], a['pixel_only']))
    out.append('  attributed by the module: %d; joined to a click at report '
               'time: %d' % (a['module'], a['joined']))
    out.append('  suspicious (click id of a bot, HEAD or prefetch click): %d'
               % a['suspicious'])
    out.append('  unattributed: %d without click id, %d with an unknown '
               'click id, %d outside --window %s'
               % (a['none'], a['unknown'], a['late'], args.window))
    if a['amount_conflicts']:
        out.append('  %d order(s) reported with different amounts: the first '
                   'report counts' % a['amount_conflicts'])
    out.append('')
    out.append('Integrity: %s' % integ['verdict'])
    hdr = ('node', 'records', 'dups', 'missing', 'restarts', 'malformed',
           'no id')
    w = max([4] + [len(n['name']) for n in integ['nodes']])
    w = min(w, 40)
    out.append('  %-*s %9s %6s %8s %8s %9s %8s' % ((w,) + hdr))
    for n in integ['nodes']:
        out.append('  %-*s %9d %6d %8d %8d %9d %8d'
                   % (w, cell(n['name'], w), n['records'], n['duplicates'],
                      n['missing'], n['restarts'], n['malformed'],
                      n['records_without_id']))
    for pr in integ['problems']:
        out.append('  problem: %s' % pr)
    for m in integ['malformed'][:10]:
        out.append('  malformed: %s:%d: %s' % (m['file'], m['line'],
                                               m['reason']))
    if integ['malformed_count'] > 10:
        out.append('  ... %d more malformed line(s) (--format json lists '
                   'them)' % (integ['malformed_count'] - 10))
    for nt in integ['notes']:
        out.append('  note: %s' % nt)
    return '\n'.join(out) + '\n'


# --- HTML --------------------------------------------------------------------

COLORS = ('#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b',
          '#e377c2', '#17becf')
POS = '#2e8b57'
NEG = '#c0392b'


def esc(s):
    return html.escape('-' if s is None else str(s), quote=True)


def roi_chart(rows):
    rows = [r for r in rows if r['roi'] is not None]
    if not rows:
        return '<p class="none">No creator has a cost: no ROI to chart ' \
               '(give --costs).</p>'
    bar_h, gap, left, width = 22, 6, 170, 560
    vals = [float(r['roi']) for r in rows]
    lo, hi = min(0.0, min(vals)), max(0.0, max(vals))
    span = (hi - lo) or 1.0
    zero = left + (0 - lo) / span * width
    h = len(rows) * (bar_h + gap) + 30
    out = ['<svg id="roi-chart" xmlns="http://www.w3.org/2000/svg" '
           'width="%d" height="%d" role="img" aria-label="ROI per creator">'
           % (left + width + 90, h)]
    multi = len(set(r['currency'] for r in rows)) > 1
    for i, (r, v) in enumerate(zip(rows, vals)):
        y = 10 + i * (bar_h + gap)
        x0 = zero if v >= 0 else zero + v / span * width
        wbar = abs(v) / span * width
        name = r['key']['creator']
        label = ('%s (%s)' % (name or '-', r['currency']) if multi
                 else (name or '-'))
        out.append('<text x="%d" y="%d" text-anchor="end" class="lbl">%s'
                   '</text>' % (left - 8, y + 15, esc(label)))
        out.append('<rect class="bar" x="%.1f" y="%d" width="%.1f" '
                   'height="%d" fill="%s"><title>%s: ROI %s</title></rect>'
                   % (x0, y, max(wbar, 1), bar_h, POS if v >= 0 else NEG,
                      esc(label), pct(r['roi'])))
        out.append('<text x="%.1f" y="%d" class="val">%s</text>'
                   % (max(x0 + wbar, zero) + 6, y + 15, esc(pct(r['roi']))))
    out.append('<line x1="%.1f" x2="%.1f" y1="4" y2="%d" stroke="#333"/>'
               % (zero, zero, h - 20))
    out.append('</svg>')
    return '\n'.join(out)


def line_chart(cid, title, daily, top, idx):
    days = sorted(set(d for c in top for d in daily[c]))
    if not days:
        return '<p class="none">No daily data.</p>'
    W, H, L, B = 720, 220, 50, 40
    pw, ph = W - L - 20, H - B - 20
    vmax = max([1] + [daily[c].get(d, [0, 0])[idx] for c in top
                      for d in days])
    n = len(days)

    def x(i):
        return L + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v):
        return 10 + ph - ph * v / vmax

    out = ['<svg id="%s" xmlns="http://www.w3.org/2000/svg" width="%d" '
           'height="%d" role="img" aria-label="%s">' % (cid, W, H + 20,
                                                       esc(title))]
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>'
               % (L, 10 + ph, L + pw, 10 + ph))
    out.append('<line x1="%d" y1="10" x2="%d" y2="%d" stroke="#333"/>'
               % (L, L, 10 + ph))
    out.append('<text x="%d" y="%d" text-anchor="end" class="val">%d</text>'
               % (L - 6, 16, vmax))
    out.append('<text x="%d" y="%d" text-anchor="end" class="val">0</text>'
               % (L - 6, 10 + ph))
    for i in sorted(set([0, n - 1, n // 2])):
        anchor = ('middle' if n == 1 or 0 < i < n - 1 else
                  'start' if i == 0 else 'end')
        out.append('<text x="%.1f" y="%d" text-anchor="%s" class="val">'
                   '%s</text>' % (x(i), 30 + ph, anchor, days[i]))
    for k, c in enumerate(top):
        col = COLORS[k % len(COLORS)]
        pts = ' '.join('%.1f,%.1f' % (x(i), y(daily[c].get(d, [0, 0])[idx]))
                       for i, d in enumerate(days))
        out.append('<polyline class="series" fill="none" stroke="%s" '
                   'stroke-width="2.5" points="%s"/>' % (col, pts))
        for i, d in enumerate(days):
            v = daily[c].get(d, [0, 0])[idx]
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s">'
                       '<title>%s %s: %d</title></circle>'
                       % (x(i), y(v), col, esc(c), d, v))
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   '<text x="%d" y="%d" class="lbl">%s</text>'
                   % (L + 10 + k * 130, H + 2, col, L + 26 + k * 130, H + 12,
                      esc(c)))
    out.append('</svg>')
    return '\n'.join(out)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;
max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;
white-space:nowrap}
th{background:#f3f3f3;cursor:pointer}td.k,th.k{text-align:left}
tr.total td{font-weight:bold;border-top:2px solid #333}
.lbl{font-size:12px;fill:#222}.val{font-size:11px;fill:#555}
.ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}
.none{color:#777}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, i) {
  th.addEventListener('click', function () {
    var tb = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(tb.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1;
    th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      if (!isNaN(nx) && !isNaN(ny)) return (nx - ny) * dir;
      return String(x).localeCompare(String(y)) * dir;
    });
    rows.forEach(function (r) { tb.appendChild(r); });
  });
});
document.body.dataset.ready = '1';
"""


# label, field, kind: '' count, '%' ratio, '$' money, 'k' time
HTML_COLUMNS = (
    ('clicks', 'clicks', ''), ('unique', 'unique_visits', ''),
    ('bot share', 'bot_share', '%'), ('not live', 'inactive_clicks', ''),
    ('landings', 'landings', ''),
    ('conversions', 'conversions', ''),
    ('conv. rate', 'conversion_rate', '%'), ('revenue', 'revenue', '$'),
    ('AOV', 'aov', '$'), ('EPC', 'epc', '$'), ('cost', 'cost', '$'),
    ('profit', 'profit', '$'), ('ROI', 'roi', '%'), ('CPA', 'cpa', '$'),
    ('first seen', 'first_seen', 'k'), ('last seen', 'last_seen', 'k'))


def short_ts(ts):
    return None if ts is None else ts[:10] + ' ' + ts[11:16]


def render_html(res, args):
    by = args.by
    curs = set(r['currency'] for r in res['groups'] + res['total'])
    multi = len(curs) > 1
    cols = [(b, lambda r, b=b: r['key'].get(b), 'k') for b in by]
    if multi:
        cols.append(('currency', lambda r: r['currency'], 'k'))
    cols += [(label, (lambda r, f=f: short_ts(r[f])) if kind == 'k'
              else (lambda r, f=f: r[f]), kind)
             for label, f, kind in HTML_COLUMNS]

    def td(v, kind):
        if kind == '%':
            shown = pct(v)
        elif kind == '$':
            shown = m2(v)
        else:
            shown = '-' if v is None else v
        raw = '' if v is None else (format(v, 'f')
                                    if isinstance(v, M.Decimal) else v)
        return '<td%s data-v="%s">%s</td>' % (' class="k"' if kind == 'k'
                                              else '', esc(raw), esc(shown))

    integ = res['integrity']
    a = res['attribution']
    o = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width">',
         '<title>Affiliate report</title>', '<style>%s</style>' % CSS,
         '</head><body>',
         '<h1>Affiliate report: %s</h1>' % esc(period_text(res)),
         '<p>Grouped by %s. %s</p>' % (esc(', '.join(by)),
                                       'Money in %s.' % esc(', '.join(
                                           sorted(c for c in curs if c)))
                                       if not multi else
                                       'Money per currency (no --rates).'),
         '<p>Data: <span class="%s" id="verdict">%s</span></p>'
         % ('ok' if integ['complete'] else 'bad', esc(integ['verdict'])),
         '<h2>ROI per creator</h2>', roi_chart(res['chart']['roi']),
         '<h2>Daily visits (clicks + landings), top creators</h2>',
         line_chart('daily-visits', 'daily visits', res['chart']['daily'],
                    res['chart']['top'], 0),
         '<h2>Daily conversions, top creators</h2>',
         line_chart('daily-conversions', 'daily conversions',
                    res['chart']['daily'], res['chart']['top'], 1),
         '<h2>Report</h2>',
         '<table class="sortable" id="report"><thead><tr>']
    for name, _, kind in cols:
        o.append('<th%s>%s</th>' % (' class="k"' if kind == 'k' else '',
                                     esc(name)))
    o.append('</tr></thead><tbody>')
    for r in res['groups']:
        o.append('<tr>' + ''.join(td(get(r), kind) for _, get, kind in cols)
                 + '</tr>')
    o.append('</tbody><tfoot>')
    for t in res['total']:
        r = dict(t, key={b: 'total' if i == 0 else None
                         for i, b in enumerate(by)})
        o.append('<tr class="total">' + ''.join(td(get(r), kind)
                                               for _, get, kind in cols)
                 + '</tr>')
    o.append('</tfoot></table>')
    o.append('<h2>Orders</h2><ul>')
    for label, k in (('orders in the period', 'orders'),
                     ('duplicate reports dropped', 'duplicate_reports'),
                     ('orders seen by more than one node',
                      'multi_node_orders'),
                     ('attributed by the module', 'module'),
                     ('joined to a click at report time', 'joined'),
                     ('suspicious (bot, HEAD or prefetch click)',
                      'suspicious'),
                     ('without click id', 'none'),
                     ('unknown click id', 'unknown'),
                     ('outside the window', 'late'),
                     ('pixel only', 'pixel_only')):
        o.append('<li>%s: %d</li>' % (esc(label), a[k]))
    o.append('</ul><h2>Integrity</h2><table id="integrity"><thead><tr>')
    for h in ('node', 'records', 'duplicates', 'missing', 'restarts',
              'malformed', 'without id'):
        o.append('<th%s>%s</th>' % (' class="k"' if h == 'node' else '', h))
    o.append('</tr></thead><tbody>')
    for n in integ['nodes']:
        o.append('<tr><td class="k">%s</td>%s</tr>' % (
            esc(n['name']), ''.join('<td>%d</td>' % n[k] for k in (
                'records', 'duplicates', 'missing', 'restarts', 'malformed',
                'records_without_id'))))
    o.append('</tbody></table><ul>')
    for pr in integ['problems']:
        o.append('<li class="bad">%s</li>' % esc(pr))
    for m in integ['malformed'][:50]:
        o.append('<li>malformed: %s:%d: %s</li>'
                 % (esc(m['file']), m['line'], esc(m['reason'])))
    for nt in integ['notes']:
        o.append('<li>%s</li>' % esc(nt))
    o.append('</ul>')
    o.append('<script>%s</script>' % SORT_JS)
    o.append('</body></html>')
    return '\n'.join(o) + '\n'
