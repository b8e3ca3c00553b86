-- ROI views over affiliate.records: the metric definitions of
-- affiliate-report (tools/affiliate_metrics.py, docs/analytics.md), for
-- ClickHouse 18.16 and later (no window functions, one JOIN per SELECT,
-- aggregate functions skip NULL arguments: nullable keys are carried as
-- strings, '' for NULL and '=' before a value).  Apply after schema.sql on
-- every server that answers ROI queries:
--   clickhouse-client --multiquery < roi.sql
--   clickhouse-client --multiquery < refresh.sql     (before reading)
--   SELECT * FROM affiliate.roi_by_creator
-- Views: roi_by_creator, roi_by_campaign, roi_by_creator_campaign,
-- roi_by_day; one row per group and currency, as affiliate-report --format
-- json, over all records (add WHERE on the base views for a period).
-- The attribution window is 30 days (2592000000 ms in roi_conv).

-- Traffic per (creator, campaign, day): clicks and landings by people,
-- unique visits, bot clicks.  Distinct ids: right before merges.
CREATE VIEW IF NOT EXISTS affiliate.roi_traffic AS
SELECT
    if(isNull(creator), '', concat('=', assumeNotNull(creator))) AS ck,
    if(isNull(campaign), '', concat('=', assumeNotNull(campaign))) AS pk,
    substring(ts, 1, 10) AS day,
    uniqExactIf(id, type = 'click' AND bot = 0 AND isNull(reason)) AS clicks,
    uniqExactIf(id, type = 'landing' AND bot = 0 AND isNull(reason))
        AS landings,
    uniqExactIf(id, bot = 0 AND isNull(reason) AND ifNull(`unique`, 0) = 1)
        AS unique_visits,
    uniqExactIf(id, bot = 1) AS bot_clicks,
    uniqExactIf(id, bot = 0 AND isNotNull(reason)) AS inactive_clicks,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM affiliate.records
WHERE type IN ('click', 'landing')
GROUP BY ck, pk, day;

-- Each conversion record once (by id), with its click joined on the shard
-- (the sharding key puts them together) and its attribution:
-- ok = attributed by the module, or a click by a person with that click_id
-- made 0 .. 30 days before.  rk orders the reports of one order: postback
-- before pixel, then ts, node, seq.
CREATE VIEW IF NOT EXISTS affiliate.roi_conv AS
SELECT
    id,
    any(okey) AS okey, any(rk) AS rk, any(ts) AS ts, any(amount) AS amount,
    any(currency) AS currency, any(source) AS source, any(ok) AS ok,
    any(wc) AS wc, any(wp) AS wp
FROM
(
    SELECT
        id,
        if(isNull(order_id), concat('r', id),
           concat('o', assumeNotNull(order_id))) AS okey,
        concat(toString(multiIf(ifNull(source, '') = 'postback', 0,
                                ifNull(source, '') = 'pixel', 1, 2)),
               ts, node, '\0', toString(100000000000000000 + seq)) AS rk,
        ts,
        assumeNotNull(amount) AS amount,
        assumeNotNull(currency) AS currency,
        ifNull(source, '') AS source,
        ifNull(attributed, 0) = 1 AS by_module,
        by_module OR (c_found = 1 AND c_bot = 0 AND conv_ms >= c_ts_ms
                      AND conv_ms - c_ts_ms <= 2592000000) AS ok,
        toUInt64(toDateTime(concat(substring(ts, 1, 10), ' ', substring(ts, 12, 8)), 'UTC')) * 1000 + toUInt64(substring(ts, 21, 3)) AS conv_ms,
        if(by_module,
           if(isNull(creator), '', concat('=', assumeNotNull(creator))),
           c_ck) AS wc,
        if(by_module,
           if(isNull(campaign), '', concat('=', assumeNotNull(campaign))),
           c_pk) AS wp,
        ifNull(click_id, '') AS cid
    FROM affiliate.records
    ANY LEFT JOIN
    (
        SELECT
            ifNull(click_id, '') AS cid,
            toUInt8(1) AS c_found,
            (toUInt64(toDateTime(concat(substring(ts, 1, 10), ' ', substring(ts, 12, 8)), 'UTC')) * 1000 + toUInt64(substring(ts, 21, 3)))
                AS c_ts_ms,
            bot AS c_bot,
            if(isNull(creator), '', concat('=', assumeNotNull(creator)))
                AS c_ck,
            if(isNull(campaign), '', concat('=', assumeNotNull(campaign)))
                AS c_pk
        FROM affiliate.records_local
        WHERE type IN ('click', 'landing') AND isNotNull(click_id)
          AND click_id IN (SELECT click_id FROM affiliate.records_local
                           WHERE type = 'conversion')
    ) USING cid
    WHERE type = 'conversion'
      AND match(ifNull(amount, ''), '^[0-9]{1,15}([.][0-9]{1,6})?$')
      AND match(ifNull(currency, ''), '^[A-Z]{3}$')
)
GROUP BY id;

-- Orders: the reports of one order_id on any node count once.  The first
-- report (rk) gives time, amount, currency and source; the first
-- attributed report gives creator and campaign.
CREATE VIEW IF NOT EXISTS affiliate.roi_orders AS
SELECT
    okey,
    argMin(ts, rk) AS ts,
    argMin(amount, rk) AS amount,
    argMin(currency, rk) AS currency,
    argMin(source, rk) AS source,
    max(ok) AS attributed,
    if(attributed = 1, argMinIf(wc, rk, ok), '') AS ck,
    if(attributed = 1, argMinIf(wp, rk, ok), '') AS pk
FROM affiliate.roi_conv
GROUP BY okey;

-- Orders per (creator, campaign, day, currency).
CREATE VIEW IF NOT EXISTS affiliate.roi_order_buckets AS
SELECT
    ck, pk, substring(ts, 1, 10) AS day, currency,
    count() AS orders,
    sum(toDecimal128(amount, 6)) AS revenue,
    countIf(source != 'postback') AS pixel,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM affiliate.roi_orders
GROUP BY ck, pk, day, currency;

-- The two small results every ROI view reads, kept in tables: ClickHouse
-- 18.16 has no materialized CTEs, and the views below refer to them many
-- times.  sql/clickhouse/refresh.sql
-- recomputes them from affiliate.records; run it before reading the ROI
-- views, on the server that answers them.
CREATE TABLE IF NOT EXISTS affiliate.roi_order_buckets_snap
(
    ck String, pk String, day String, currency String, orders UInt64,
    revenue Decimal(38, 6), pixel UInt64, first_seen String,
    last_seen String
) ENGINE = Log;

CREATE TABLE IF NOT EXISTS affiliate.roi_buckets_snap
(
    ck String, pk String, day String, clicks UInt64, landings UInt64,
    unique_visits UInt64, bot_clicks UInt64, inactive_clicks UInt64,
    orders UInt64, first_seen String, last_seen String
) ENGINE = Log;

-- Every bucket: traffic, and orders (their times count as seen).
CREATE VIEW IF NOT EXISTS affiliate.roi_buckets AS
SELECT
    ck, pk, day,
    sum(clicks) AS clicks, sum(landings) AS landings,
    sum(unique_visits) AS unique_visits, sum(bot_clicks) AS bot_clicks,
    sum(inactive_clicks) AS inactive_clicks, sum(orders) AS orders,
    min(first_seen) AS first_seen, max(last_seen) AS last_seen
FROM
(
    SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
           inactive_clicks, toUInt64(0) AS orders, first_seen, last_seen
    FROM affiliate.roi_traffic
    UNION ALL
    SELECT ck, pk, day, toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
           toUInt64(0), orders, first_seen, last_seen
    FROM affiliate.roi_order_buckets_snap
)
GROUP BY ck, pk, day;

-- cpc, cpa and revshare rates per creator and campaign ('*' included).
CREATE VIEW IF NOT EXISTS affiliate.roi_rate_lines AS
SELECT
    concat('=', creator) AS ck,
    campaign,
    countIf(model = 'cpc') AS has_cpc,
    anyIf(amount, model = 'cpc') AS cpc,
    anyIf(currency, model = 'cpc') AS cpc_cur,
    countIf(model = 'cpa') AS has_cpa,
    anyIf(amount, model = 'cpa') AS cpa,
    anyIf(currency, model = 'cpa') AS cpa_cur,
    countIf(model = 'revshare') AS has_rev,
    anyIf(amount, model = 'revshare') AS rev
FROM affiliate.costs
WHERE model != 'flat'
GROUP BY creator, campaign;

-- Each bucket with the rates that apply: the named campaign's line of a
-- model, else the '*' line.
CREATE VIEW IF NOT EXISTS affiliate.roi_bucket_rates AS
SELECT
    ck, pk, day, clicks + landings AS visits, orders,
    if(n_cpc = 1, n_cpc_a, s_cpc_a) AS cpc,
    if(n_cpc = 1, n_cpc_c, s_cpc_c) AS cpc_cur,
    if(n_cpc = 1, 1, s_cpc) AS has_cpc,
    if(n_cpa = 1, n_cpa_a, s_cpa_a) AS cpa,
    if(n_cpa = 1, n_cpa_c, s_cpa_c) AS cpa_cur,
    if(n_cpa = 1, 1, s_cpa) AS has_cpa,
    if(n_rev = 1, n_rev_a, s_rev_a) AS rev,
    if(n_rev = 1, 1, s_rev) AS has_rev
FROM
(
    SELECT *
    FROM
    (
        SELECT b.*, concat(ck, '\0', pk) AS jk
        FROM affiliate.roi_buckets_snap AS b
        WHERE ck != ''
    )
    ANY LEFT JOIN
    (
        SELECT concat(ck, '\0=', campaign) AS jk,
               toUInt8(has_cpc > 0) AS n_cpc, cpc AS n_cpc_a,
               cpc_cur AS n_cpc_c,
               toUInt8(has_cpa > 0) AS n_cpa, cpa AS n_cpa_a,
               cpa_cur AS n_cpa_c,
               toUInt8(has_rev > 0) AS n_rev, rev AS n_rev_a
        FROM affiliate.roi_rate_lines
        WHERE campaign != '*'
    ) USING jk
)
ANY LEFT JOIN
(
    SELECT ck,
           toUInt8(has_cpc > 0) AS s_cpc, cpc AS s_cpc_a, cpc_cur AS s_cpc_c,
           toUInt8(has_cpa > 0) AS s_cpa, cpa AS s_cpa_a, cpa_cur AS s_cpa_c,
           toUInt8(has_rev > 0) AS s_rev, rev AS s_rev_a
    FROM affiliate.roi_rate_lines
    WHERE campaign = '*'
) USING ck;

-- Money items per bucket in their own currency: orders, revenue and pixel
-- orders; cpc cost (per visit), cpa cost (per order, all currencies),
-- revshare cost (percent of the revenue, in its currency); flat fees on a
-- bucket without day, a '*' fee once per campaign of the creator that has
-- traffic or orders (or on campaign '*' when there is none).
CREATE VIEW IF NOT EXISTS affiliate.roi_money AS
SELECT ck, pk, day, currency, orders, revenue, pixel, cost
FROM
(
    SELECT ck, pk, day, currency, orders,
           toDecimal128(revenue, 18) AS revenue, pixel,
           toDecimal128(0, 18) AS cost
    FROM affiliate.roi_order_buckets_snap
    UNION ALL
    SELECT ck, pk, day, cpc_cur, toUInt64(0), toDecimal128(0, 18),
           toUInt64(0), toDecimal128(toDecimal128(cpc, 6) * visits, 18)
    FROM affiliate.roi_bucket_rates
    WHERE has_cpc = 1 AND visits > 0
    UNION ALL
    SELECT ck, pk, day, cpa_cur, toUInt64(0), toDecimal128(0, 18),
           toUInt64(0), toDecimal128(toDecimal128(cpa, 6) * orders, 18)
    FROM affiliate.roi_bucket_rates
    WHERE has_cpa = 1 AND orders > 0
    UNION ALL
    SELECT ck, pk, day, currency, toUInt64(0), toDecimal128(0, 18),
           toUInt64(0),
           toDecimal128(toDecimal128(revenue, 6) * toDecimal128(rev, 6)
                        * toDecimal128('0.01', 2), 18)
    FROM
    (
        SELECT ck, pk, day, currency, revenue, concat(ck, '\0', pk, '\0',
               day) AS jk
        FROM affiliate.roi_order_buckets_snap
        WHERE ck != ''
    )
    ALL INNER JOIN
    (
        SELECT concat(ck, '\0', pk, '\0', day) AS jk, rev
        FROM affiliate.roi_bucket_rates
        WHERE has_rev = 1
    ) USING jk
    UNION ALL
    SELECT concat('=', creator), campaign_key, '', currency, toUInt64(0),
           toDecimal128(0, 18), toUInt64(0),
           toDecimal128(toDecimal128(amount, 6), 18)
    FROM
    (
        SELECT creator, currency, amount,
               arrayJoin(if(campaign != '*', [concat('=', campaign)],
                            if(empty(seen), ['=*'], seen))) AS campaign_key
        FROM
        (
            SELECT creator, campaign, currency, amount,
                   concat('=', creator) AS ck
            FROM affiliate.costs
            WHERE model = 'flat'
        )
        ANY LEFT JOIN
        (
            SELECT ck, groupUniqArray(pk) AS seen
            FROM affiliate.roi_buckets_snap
            WHERE ck != ''
            GROUP BY ck
        ) USING ck
    )
);

-- Money converted with affiliate.rates (when it has rows), else per
-- currency.  A currency without a rate stays unconverted.
CREATE VIEW IF NOT EXISTS affiliate.roi_money_fx AS
SELECT ck, pk, day, fx_cur AS currency, orders, revenue, pixel, cost
FROM
(
    SELECT ck, pk, day,
           if(fx_target = '', currency, fx_target) AS fx_cur,
           orders,
           toDecimal128(revenue * toDecimal128(if(fx_target = '', '1',
                                                  fx_rate), 6), 18)
               AS revenue,
           pixel,
           toDecimal128(cost * toDecimal128(if(fx_target = '', '1',
                                               fx_rate), 6), 18) AS cost
    FROM
    (
        SELECT ck, pk, day, currency, orders, revenue, pixel, cost
        FROM affiliate.roi_money
    )
    ANY LEFT JOIN
    (
        SELECT currency, target AS fx_target, rate AS fx_rate
        FROM affiliate.rates
    ) USING currency
);

-- The currency of a group that has no money at all: the target currency
-- with rates, else the only currency seen, else none ('').
CREATE VIEW IF NOT EXISTS affiliate.roi_default_currency AS
SELECT if((SELECT count() FROM affiliate.rates) > 0,
          (SELECT any(target) FROM affiliate.rates),
          if(uniqExact(currency) = 1, any(currency), '')) AS currency
FROM affiliate.roi_money_fx;

CREATE VIEW IF NOT EXISTS affiliate.roi_by_creator AS
SELECT
    if(ck = '', NULL, substring(ck, 2)) AS creator,
    if(currency = '', NULL, currency) AS currency,
    clicks, landings, visits, unique_visits, bot_clicks, inactive_clicks,
    if(((visits + bot_clicks)) = 0, NULL, toDecimal128(if(bot_clicks < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 - 1) * ((visits + bot_clicks)) > (toDecimal128(bot_clicks, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 + 1) * ((visits + bot_clicks)) <= (toDecimal128(bot_clicks, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS bot_share,
    conversions, pixel_conversions,
    if((unique_visits) = 0, NULL, toDecimal128(if(conversions < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 - 1) * (unique_visits) > (toDecimal128(conversions, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 + 1) * (unique_visits) <= (toDecimal128(conversions, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS conversion_rate,
    revenue,
    if((conversions) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS aov,
    if((visits) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 - 1) * (visits) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 + 1) * (visits) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS epc,
    cost, profit,
    if((cost) = 0, NULL, toDecimal128(if(profit < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 - 1) * (cost) > (if(profit < 0, -(profit), profit)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 + 1) * (cost) <= (if(profit < 0, -(profit), profit)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS roi,
    if((conversions) = 0, NULL, toDecimal128(if(cost < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(cost < 0, -(cost), cost)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(cost < 0, -(cost), cost)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS cpa,
    first_seen, last_seen
FROM
(
    SELECT
        ck,
        if(m_found = 1, m_cur, (SELECT any(currency)
                                FROM affiliate.roi_default_currency))
            AS currency,
        clicks, landings, clicks + landings AS visits, unique_visits,
        bot_clicks, inactive_clicks, conversions, pixel_conversions,
        revenue, cost, revenue - cost AS profit, first_seen, last_seen
    FROM
    (
        SELECT ck, concat(ck, '') AS jk,
               sum(clicks) AS clicks, sum(landings) AS landings,
               sum(unique_visits) AS unique_visits,
               sum(bot_clicks) AS bot_clicks,
               sum(inactive_clicks) AS inactive_clicks,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM
        (
            SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
                   inactive_clicks, CAST(first_seen AS Nullable(String)) AS first_seen,
                   CAST(last_seen AS Nullable(String)) AS last_seen
            FROM affiliate.roi_buckets_snap
            UNION ALL
            SELECT ck, pk, day, toUInt64(0), toUInt64(0), toUInt64(0),
                   toUInt64(0), toUInt64(0), CAST(NULL AS Nullable(String)),
                   CAST(NULL AS Nullable(String))
            FROM affiliate.roi_money
        )
        GROUP BY ck
    )
    ALL LEFT JOIN
    (
        SELECT concat(ck, '') AS jk, currency AS m_cur,
               toUInt8(1) AS m_found,
               sum(orders) AS conversions, sum(pixel) AS pixel_conversions,
               sum(revenue) AS revenue, sum(cost) AS cost
        FROM affiliate.roi_money_fx
        GROUP BY ck, currency
    ) USING jk
);

CREATE VIEW IF NOT EXISTS affiliate.roi_by_campaign AS
SELECT
    if(pk = '', NULL, substring(pk, 2)) AS campaign,
    if(currency = '', NULL, currency) AS currency,
    clicks, landings, visits, unique_visits, bot_clicks, inactive_clicks,
    if(((visits + bot_clicks)) = 0, NULL, toDecimal128(if(bot_clicks < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 - 1) * ((visits + bot_clicks)) > (toDecimal128(bot_clicks, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 + 1) * ((visits + bot_clicks)) <= (toDecimal128(bot_clicks, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS bot_share,
    conversions, pixel_conversions,
    if((unique_visits) = 0, NULL, toDecimal128(if(conversions < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 - 1) * (unique_visits) > (toDecimal128(conversions, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 + 1) * (unique_visits) <= (toDecimal128(conversions, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS conversion_rate,
    revenue,
    if((conversions) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS aov,
    if((visits) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 - 1) * (visits) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 + 1) * (visits) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS epc,
    cost, profit,
    if((cost) = 0, NULL, toDecimal128(if(profit < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 - 1) * (cost) > (if(profit < 0, -(profit), profit)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 + 1) * (cost) <= (if(profit < 0, -(profit), profit)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS roi,
    if((conversions) = 0, NULL, toDecimal128(if(cost < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(cost < 0, -(cost), cost)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(cost < 0, -(cost), cost)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS cpa,
    first_seen, last_seen
FROM
(
    SELECT
        pk,
        if(m_found = 1, m_cur, (SELECT any(currency)
                                FROM affiliate.roi_default_currency))
            AS currency,
        clicks, landings, clicks + landings AS visits, unique_visits,
        bot_clicks, inactive_clicks, conversions, pixel_conversions,
        revenue, cost, revenue - cost AS profit, first_seen, last_seen
    FROM
    (
        SELECT pk, concat(pk, '') AS jk,
               sum(clicks) AS clicks, sum(landings) AS landings,
               sum(unique_visits) AS unique_visits,
               sum(bot_clicks) AS bot_clicks,
               sum(inactive_clicks) AS inactive_clicks,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM
        (
            SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
                   inactive_clicks, CAST(first_seen AS Nullable(String)) AS first_seen,
                   CAST(last_seen AS Nullable(String)) AS last_seen
            FROM affiliate.roi_buckets_snap
            UNION ALL
            SELECT ck, pk, day, toUInt64(0), toUInt64(0), toUInt64(0),
                   toUInt64(0), toUInt64(0), CAST(NULL AS Nullable(String)),
                   CAST(NULL AS Nullable(String))
            FROM affiliate.roi_money
        )
        GROUP BY pk
    )
    ALL LEFT JOIN
    (
        SELECT concat(pk, '') AS jk, currency AS m_cur,
               toUInt8(1) AS m_found,
               sum(orders) AS conversions, sum(pixel) AS pixel_conversions,
               sum(revenue) AS revenue, sum(cost) AS cost
        FROM affiliate.roi_money_fx
        GROUP BY pk, currency
    ) USING jk
);

CREATE VIEW IF NOT EXISTS affiliate.roi_by_creator_campaign AS
SELECT
    if(ck = '', NULL, substring(ck, 2)) AS creator, if(pk = '', NULL, substring(pk, 2)) AS campaign,
    if(currency = '', NULL, currency) AS currency,
    clicks, landings, visits, unique_visits, bot_clicks, inactive_clicks,
    if(((visits + bot_clicks)) = 0, NULL, toDecimal128(if(bot_clicks < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 - 1) * ((visits + bot_clicks)) > (toDecimal128(bot_clicks, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 + 1) * ((visits + bot_clicks)) <= (toDecimal128(bot_clicks, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS bot_share,
    conversions, pixel_conversions,
    if((unique_visits) = 0, NULL, toDecimal128(if(conversions < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 - 1) * (unique_visits) > (toDecimal128(conversions, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 + 1) * (unique_visits) <= (toDecimal128(conversions, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS conversion_rate,
    revenue,
    if((conversions) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS aov,
    if((visits) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 - 1) * (visits) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 + 1) * (visits) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS epc,
    cost, profit,
    if((cost) = 0, NULL, toDecimal128(if(profit < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 - 1) * (cost) > (if(profit < 0, -(profit), profit)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 + 1) * (cost) <= (if(profit < 0, -(profit), profit)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS roi,
    if((conversions) = 0, NULL, toDecimal128(if(cost < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(cost < 0, -(cost), cost)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(cost < 0, -(cost), cost)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS cpa,
    first_seen, last_seen
FROM
(
    SELECT
        ck, pk,
        if(m_found = 1, m_cur, (SELECT any(currency)
                                FROM affiliate.roi_default_currency))
            AS currency,
        clicks, landings, clicks + landings AS visits, unique_visits,
        bot_clicks, inactive_clicks, conversions, pixel_conversions,
        revenue, cost, revenue - cost AS profit, first_seen, last_seen
    FROM
    (
        SELECT ck, pk, concat(ck, '\0', pk) AS jk,
               sum(clicks) AS clicks, sum(landings) AS landings,
               sum(unique_visits) AS unique_visits,
               sum(bot_clicks) AS bot_clicks,
               sum(inactive_clicks) AS inactive_clicks,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM
        (
            SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
                   inactive_clicks, CAST(first_seen AS Nullable(String)) AS first_seen,
                   CAST(last_seen AS Nullable(String)) AS last_seen
            FROM affiliate.roi_buckets_snap
            UNION ALL
            SELECT ck, pk, day, toUInt64(0), toUInt64(0), toUInt64(0),
                   toUInt64(0), toUInt64(0), CAST(NULL AS Nullable(String)),
                   CAST(NULL AS Nullable(String))
            FROM affiliate.roi_money
        )
        GROUP BY ck, pk
    )
    ALL LEFT JOIN
    (
        SELECT concat(ck, '\0', pk) AS jk, currency AS m_cur,
               toUInt8(1) AS m_found,
               sum(orders) AS conversions, sum(pixel) AS pixel_conversions,
               sum(revenue) AS revenue, sum(cost) AS cost
        FROM affiliate.roi_money_fx
        GROUP BY ck, pk, currency
    ) USING jk
);

CREATE VIEW IF NOT EXISTS affiliate.roi_by_day AS
SELECT
    if(day = '', NULL, day) AS day,
    if(currency = '', NULL, currency) AS currency,
    clicks, landings, visits, unique_visits, bot_clicks, inactive_clicks,
    if(((visits + bot_clicks)) = 0, NULL, toDecimal128(if(bot_clicks < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 - 1) * ((visits + bot_clicks)) > (toDecimal128(bot_clicks, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(bot_clicks, 0)) / toFloat64((visits + bot_clicks)) * 10000 + 0.5)), 0)) * 2 + 1) * ((visits + bot_clicks)) <= (toDecimal128(bot_clicks, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS bot_share,
    conversions, pixel_conversions,
    if((unique_visits) = 0, NULL, toDecimal128(if(conversions < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 - 1) * (unique_visits) > (toDecimal128(conversions, 0)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(toDecimal128(conversions, 0)) / toFloat64(unique_visits) * 10000 + 0.5)), 0)) * 2 + 1) * (unique_visits) <= (toDecimal128(conversions, 0)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS conversion_rate,
    revenue,
    if((conversions) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS aov,
    if((visits) = 0, NULL, toDecimal128(if(revenue < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 - 1) * (visits) > (if(revenue < 0, -(revenue), revenue)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(revenue < 0, -(revenue), revenue)) / toFloat64(visits) * 10000 + 0.5)), 0)) * 2 + 1) * (visits) <= (if(revenue < 0, -(revenue), revenue)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS epc,
    cost, profit,
    if((cost) = 0, NULL, toDecimal128(if(profit < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 - 1) * (cost) > (if(profit < 0, -(profit), profit)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(profit < 0, -(profit), profit)) / toFloat64(cost) * 10000 + 0.5)), 0)) * 2 + 1) * (cost) <= (if(profit < 0, -(profit), profit)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS roi,
    if((conversions) = 0, NULL, toDecimal128(if(cost < 0, -1, 1), 0) * (toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0) - toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 - 1) * (conversions) > (if(cost < 0, -(cost), cost)) * 20000, 0) + toDecimal128(((toDecimal128(toInt64(floor(toFloat64(if(cost < 0, -(cost), cost)) / toFloat64(conversions) * 10000 + 0.5)), 0)) * 2 + 1) * (conversions) <= (if(cost < 0, -(cost), cost)) * 20000, 0)) * toDecimal128('0.0001', 4)) AS cpa,
    first_seen, last_seen
FROM
(
    SELECT
        day,
        if(m_found = 1, m_cur, (SELECT any(currency)
                                FROM affiliate.roi_default_currency))
            AS currency,
        clicks, landings, clicks + landings AS visits, unique_visits,
        bot_clicks, inactive_clicks, conversions, pixel_conversions,
        revenue, cost, revenue - cost AS profit, first_seen, last_seen
    FROM
    (
        SELECT day, concat(day, '') AS jk,
               sum(clicks) AS clicks, sum(landings) AS landings,
               sum(unique_visits) AS unique_visits,
               sum(bot_clicks) AS bot_clicks,
               sum(inactive_clicks) AS inactive_clicks,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM
        (
            SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
                   inactive_clicks, CAST(first_seen AS Nullable(String)) AS first_seen,
                   CAST(last_seen AS Nullable(String)) AS last_seen
            FROM affiliate.roi_buckets_snap
            UNION ALL
            SELECT ck, pk, day, toUInt64(0), toUInt64(0), toUInt64(0),
                   toUInt64(0), toUInt64(0), CAST(NULL AS Nullable(String)),
                   CAST(NULL AS Nullable(String))
            FROM affiliate.roi_money
        )
        GROUP BY day
    )
    ALL LEFT JOIN
    (
        SELECT concat(day, '') AS jk, currency AS m_cur,
               toUInt8(1) AS m_found,
               sum(orders) AS conversions, sum(pixel) AS pixel_conversions,
               sum(revenue) AS revenue, sum(cost) AS cost
        FROM affiliate.roi_money_fx
        GROUP BY day, currency
    ) USING jk
);
