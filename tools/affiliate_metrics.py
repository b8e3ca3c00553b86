"""The metric definitions of the affiliate report, in one place.

Everything the report computes from the log is defined here: which records
count as what, how orders are deduplicated and attributed, how costs are
charged, the formulas of the derived columns, and how numbers are rounded.
docs/analytics.md describes the same rules in prose; an SQL implementation
(ClickHouse, PostgreSQL) must follow them to give the same numbers.

Money is decimal.Decimal, never float.  Sums and products are exact (in
EXACT, see below); derived values are rounded once, at the end, with
ROUND_HALF_UP (as PostgreSQL's round() on numeric): money ratios (AOV, EPC,
CPA) to MONEY_PLACES fraction digits, plain ratios (conversion rate, bot
share, ROI) to RATIO_PLACES.
"""

import re
from decimal import Context, Decimal, ROUND_DOWN, ROUND_HALF_UP

MONEY_PLACES = Decimal('0.0001')
RATIO_PLACES = Decimal('0.0001')
ZERO = Decimal(0)
HUNDRED = Decimal(100)

# --- records -----------------------------------------------------------------
#
# visit:        a `click` or `landing` record with "bot": false (a person)
#               and "reason": null (a live link).
#               clicks and landings are reported in their own columns; the
#               ratios below are per visit (click or landing), because both
#               are traffic a creator sent and both can set the cookie that
#               attributes an order (the status counter unique_clicks also
#               counts both).
# bot click:    a `click` or `landing` with "bot": true (link previews,
#               crawlers, HEAD, prefetch, no User-Agent).  Never a visit.
# inactive:     a `click` by a person on a link that was not live ("reason":
#               not_yet, expired, capped): counted apart, never a visit, so
#               never charged (a capped link's extra clicks are not paid).
# unique visit: a visit with "unique": true.
# miss:         counted in the integrity section only.
# conversion:   a report of an order; orders are deduplicated (below).

# every field the report reads; a record without some of them (an older
# module, or a hand-made line) reads them as null.  affiliate-ship skips the
# records the report holds malformed by the same two lists, so that the ROI
# in SQL counts what the report counts.
RECORD_FIELDS = ('ts', 'type', 'seq', 'node', 'id', 'click_id', 'link',
                 'creator', 'campaign', 'country', 'variant', 'device', 'bot',
                 'unique', 'reason', 'source', 'order_id', 'amount',
                 'currency', 'attributed', 'duplicate')
# fields that are a string or null (an empty string reads as null)
RECORD_STRINGS = ('id', 'click_id', 'link', 'creator', 'campaign', 'country',
                  'device', 'reason')


def check_record_fields(o):
    """The types a record's node, string fields and variant must have: a
    record that breaks one is malformed (ValueError), in affiliate-report
    and, for the same records, in affiliate-ship."""
    node = o.get('node')
    if node is not None and type(node) is not str:
        raise ValueError('bad node')
    for k in RECORD_STRINGS:
        v = o.get(k)
        if v is not None and type(v) is not str:
            raise ValueError('"%s" is neither a string nor null' % k)
    v = o.get('variant')
    if v is not None and (type(v) is not int or v < 0):
        raise ValueError('"variant" is neither a number nor null')


TRAFFIC = ('click', 'landing')
TYPES = frozenset(('click', 'miss', 'landing', 'conversion'))

AMOUNT_RE = re.compile(r'\A[0-9]{1,15}(?:\.[0-9]{1,6})?\Z')
CURRENCY_RE = re.compile(r'\A[A-Z]{3}\Z')
# a cost's amount (as an order's) and a rate: at most 15 digits before the
# point and 6 (rate: 12) after it
COST_RE = AMOUNT_RE
RATE_RE = re.compile(r'\A[0-9]{1,15}(?:\.[0-9]{1,12})?\Z')

# Every number the report reads is so bounded: an amount has at most 21
# digits, a cost 21, a rate 27, a count 19.  A sum or product of them
# (revenue * revshare% * rate, summed over every order) has fewer than 120
# significant digits, so in EXACT nothing is ever rounded: the report runs
# in it (decimal.setcontext()).  A ratio is divided in DIVIDE, whose
# truncated quotient rounds, half up, to the same 4 places as the exact
# one (a quotient truncated at more digits than its integer part plus 5
# lies on the same side of every half-way point as the exact one, or on it
# only when the exact one is above).
PRECISION = 200
EXACT = Context(prec=PRECISION, rounding=ROUND_HALF_UP, Emax=999999,
                Emin=-999999)
DIVIDE = Context(prec=PRECISION, rounding=ROUND_DOWN, Emax=999999,
                 Emin=-999999)


def amount_valid(s):
    """Whether s is a record's amount: a string of at most 15 digits and
    6 decimals (the orders make the Decimal of the one they count)."""
    return type(s) is str and AMOUNT_RE.match(s) is not None


# --- orders ------------------------------------------------------------------
#
# An order is all conversion records with the same order_id, on any node
# (each node has its own order table, so the module's "duplicate" flag is
# ignored).  Its rows are ranked by order_rank(): postback before pixel,
# then the earliest ts, then node and seq.  The first row gives the
# order's time, amount, currency and source.  The order is attributed by
# the first row, in that rank, that is attributed (see attribute()); the
# period (--from/--to) and the day of the order are those of its first row.
# A conversion without order_id is an order of its own.

SOURCE_RANK = {'postback': 0, 'pixel': 1}


def order_rank(source, ts, node, seq):
    return (SOURCE_RANK.get(source, 2), ts, node, seq)


# Attribution of one conversion row:
#   'module'     the record has "attributed": true: its creator/campaign.
#   'joined'     not attributed, but its click_id is the click_id of a
#                click or landing by a person in the logs, made at most
#                --window before the conversion (0 <= conv.ts - click.ts
#                <= window): that click's creator/campaign.
#   'suspicious' the click_id belongs to a bot click (bot, HEAD, prefetch):
#                credited to nobody, counted apart.
#   'late'       the click was found, but more than --window earlier (or
#                after the conversion): not attributed.
#   'unknown'    a click_id no click record in the input has.
#   'none'       no click_id.

ATTRIBUTED = frozenset(('module', 'joined'))


def attribute(attributed, click, conv_ms, window_ms):
    """click: None or (ts_ms, bot, creator, campaign, link, country)."""
    if attributed is True:
        return 'module'
    if click is None:
        return 'unknown'
    if click[1]:
        return 'suspicious'
    age = conv_ms - click[0]
    if age < 0 or age > window_ms:
        return 'late'
    return 'joined'


# --- costs -------------------------------------------------------------------
#
# costs.tsv: creator<TAB>campaign<TAB>model<TAB>amount<TAB>currency
#   flat      amount once per line (a fee per campaign or post), in the
#             report whatever the period; several flat lines add up.
#   cpc       amount per visit (human click or landing).
#   cpa       amount per attributed order.
#   revshare  amount percent of the attributed revenue, in the revenue's
#             currency (the currency column is ignored; write "-").
# campaign "*" applies the line to every campaign of the creator that has
# traffic or orders in the period (flat: the fee once per such campaign).
# For cpc, cpa and revshare a line for a named campaign replaces the "*"
# line of the same model; two lines with the same creator, campaign and
# model are an error, except flat.

MODELS = ('flat', 'cpc', 'cpa', 'revshare')


class CostError(Exception):
    pass


def parse_costs(path, lines):
    """[(creator, campaign, model, Decimal amount, currency, lineno)]."""
    out = []
    seen = {}
    for n, line in enumerate(lines, 1):
        line = line.rstrip('\r\n')
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        where = '%s:%d' % (path, n)
        f = line.split('\t')
        if len(f) != 5:
            raise CostError('%s: expected 5 tab-separated fields (creator, '
                            'campaign, model, amount, currency), got %d'
                            % (where, len(f)))
        creator, campaign, model, amount, cur = (x.strip() for x in f)
        if not creator:
            raise CostError('%s: empty creator' % where)
        if not campaign:
            raise CostError('%s: empty campaign (use * for every campaign)'
                            % where)
        if model not in MODELS:
            raise CostError('%s: unknown model "%s" (expected flat, cpc, '
                            'cpa or revshare)' % (where, model))
        if not COST_RE.match(amount):
            raise CostError('%s: amount "%s" is not a non-negative decimal '
                            'number of at most 15 digits before the point '
                            'and 6 after it' % (where, amount))
        a = Decimal(amount)
        if model == 'revshare':
            if a > HUNDRED:
                raise CostError('%s: revshare is a percentage, %s is more '
                                'than 100' % (where, amount))
            cur = None
        elif not CURRENCY_RE.match(cur):
            raise CostError('%s: currency "%s" is not an ISO 4217 code '
                            '(like EUR)' % (where, cur))
        key = (creator, campaign, model)
        if model != 'flat' and key in seen:
            raise CostError('%s: a %s line for %s/%s is already on line %d'
                            % (where, model, creator, campaign, seen[key]))
        seen[key] = n
        out.append((creator, campaign, model, a, cur, n))
    return out


class CostTable:
    def __init__(self, lines=()):
        self.rate = {}      # (creator, campaign, model) -> (amount, cur)
        self.flat = []      # (creator, campaign, amount, cur)
        for creator, campaign, model, a, cur, _ in lines:
            if model == 'flat':
                self.flat.append((creator, campaign, a, cur))
            else:
                self.rate[(creator, campaign, model)] = (a, cur)

    def rate_for(self, creator, campaign, model):
        r = self.rate.get((creator, campaign, model))
        if r is None:
            r = self.rate.get((creator, '*', model))
        return r

    def flat_fees(self, campaigns_of):
        """[(creator, campaign, amount, cur)] for the period, where
        campaigns_of(creator) lists the creator's campaigns seen."""
        out = []
        for creator, campaign, a, cur in self.flat:
            if campaign == '*':
                seen = campaigns_of(creator) or ['*']
                for c in seen:
                    out.append((creator, c, a, cur))
            else:
                out.append((creator, campaign, a, cur))
        return out


# --- currencies --------------------------------------------------------------
#
# Without --rates every money column is kept per currency.  With
# --rates rates.tsv (FROM<TAB>TO<TAB>rate: 1 FROM = rate TO), each order's
# amount and each cost is multiplied by the rate from its currency to
# --currency before summing; the target currency has rate 1.

def parse_rates(path, lines, target):
    rates = {target: Decimal(1)}
    for n, line in enumerate(lines, 1):
        line = line.rstrip('\r\n')
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        where = '%s:%d' % (path, n)
        f = [x.strip() for x in line.split('\t')]
        if len(f) != 3:
            raise CostError('%s: expected 3 tab-separated fields (from, to, '
                            'rate), got %d' % (where, len(f)))
        src, dst, r = f
        for c in (src, dst):
            if not CURRENCY_RE.match(c):
                raise CostError('%s: "%s" is not an ISO 4217 code'
                                % (where, c))
        if not RATE_RE.match(r) or not Decimal(r):
            raise CostError('%s: rate "%s" is not a positive decimal number '
                            'of at most 15 digits before the point and 12 '
                            'after it' % (where, r))
        rate = Decimal(r)
        if dst != target:
            continue
        if src in rates and src != target:
            raise CostError('%s: a second rate for %s to %s'
                            % (where, src, dst))
        rates[src] = rate
    return rates


# --- derived columns ---------------------------------------------------------
#
# Per group and currency, with
#   visits  = clicks + landings (by people)
#   traffic = visits + bot_clicks
#   cost    = flat + cpc * visits + cpa * orders + revshare% * revenue
#
#   bot_share       = bot_clicks / traffic
#   conversion_rate = conversions / unique_visits
#   aov             = revenue / conversions          (average order value)
#   epc             = revenue / visits               (earnings per click)
#   profit          = revenue - cost
#   roi             = profit / cost
#   cpa             = cost / conversions             (cost per acquisition)
# A ratio with a zero denominator is null (n/a), never 0 or infinity.

def ratio(num, den, places=RATIO_PLACES):
    if not den:
        return None
    q = DIVIDE.divide(Decimal(num), Decimal(den))
    return q.quantize(places, ROUND_HALF_UP, EXACT)


def derived(clicks, landings, unique, bots, conversions, revenue, cost):
    visits = clicks + landings
    profit = revenue - cost
    return {
        'visits': visits,
        'bot_share': ratio(bots, visits + bots),
        'conversion_rate': ratio(conversions, unique),
        'aov': ratio(revenue, conversions, MONEY_PLACES),
        'epc': ratio(revenue, visits, MONEY_PLACES),
        'profit': profit,
        'roi': ratio(profit, cost),
        'cpa': ratio(cost, conversions, MONEY_PLACES),
    }


def money(d):
    """Exact decimal string with at least 2 fraction digits."""
    if d is None:
        return None
    if d.as_tuple().exponent > -2:
        d = d.quantize(Decimal('0.01'))
    return format(d, 'f')


def round2(d):
    return None if d is None else d.quantize(Decimal('0.01'), ROUND_HALF_UP)
