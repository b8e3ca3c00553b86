-- ROI views over affiliate.records with the metric definitions of
-- affiliate-report (tools/affiliate_metrics.py, docs/analytics.md):
--   psql -d DB -f roi.sql
--   SELECT * FROM affiliate.roi_by_creator;
-- Views roi_by_creator, roi_by_campaign, roi_by_creator_campaign,
-- roi_by_day: one row per group and currency, as affiliate-report --format
-- json, over all records.  The attribution window is 30 days
-- (2592000000 ms in roi_conv).  Money is numeric (exact); ratios are
-- round(x, 4), half away from zero as the report's ROUND_HALF_UP.

CREATE OR REPLACE FUNCTION affiliate.ratio(num numeric, den numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN den = 0 THEN NULL ELSE round(num / den, 4) END $$;

CREATE OR REPLACE FUNCTION affiliate.ts_ms(ts text)
RETURNS numeric LANGUAGE sql IMMUTABLE AS
$$ SELECT extract(epoch FROM (replace(replace(ts, 'T', ' '), 'Z', '')
                             ::timestamp)) * 1000 $$;

-- traffic per (creator, campaign, day): visits by people on live links,
-- unique visits, bot clicks, clicks on links that were not live
CREATE OR REPLACE VIEW affiliate.roi_traffic AS
SELECT creator, campaign, substr(ts, 1, 10) AS day,
       count(*) FILTER (WHERE type = 'click' AND NOT bot AND reason IS NULL)
           AS clicks,
       count(*) FILTER (WHERE type = 'landing' AND NOT bot
                        AND reason IS NULL) AS landings,
       count(*) FILTER (WHERE NOT bot AND reason IS NULL
                        AND "unique" IS TRUE) AS unique_visits,
       count(*) FILTER (WHERE bot) AS bot_clicks,
       count(*) FILTER (WHERE NOT bot AND reason IS NOT NULL)
           AS inactive_clicks,
       min(ts COLLATE "C") AS first_seen, max(ts COLLATE "C") AS last_seen
FROM affiliate.records
WHERE type IN ('click', 'landing')
GROUP BY 1, 2, 3;

-- each valid conversion record with its click and its attribution
CREATE OR REPLACE VIEW affiliate.roi_conv AS
SELECT c.id,
       CASE WHEN c.order_id IS NULL THEN 'r' || c.id
            ELSE 'o' || c.order_id END AS okey,
       CASE c.source WHEN 'postback' THEN 0 WHEN 'pixel' THEN 1 ELSE 2 END
           AS src_rank,
       c.ts COLLATE "C" AS ts, c.node COLLATE "C" AS node, c.seq,
       c.amount::numeric AS amount, c.currency, c.source,
       (c.attributed IS TRUE
        OR (k.bot IS FALSE
            AND affiliate.ts_ms(c.ts) - affiliate.ts_ms(k.ts)
                BETWEEN 0 AND 2592000000)) AS ok,
       CASE WHEN c.attributed IS TRUE THEN c.creator ELSE k.creator END
           AS who_creator,
       CASE WHEN c.attributed IS TRUE THEN c.campaign ELSE k.campaign END
           AS who_campaign
FROM affiliate.records c
LEFT JOIN LATERAL (
    SELECT k.ts, k.bot, k.creator, k.campaign
    FROM affiliate.records k
    WHERE k.click_id = c.click_id AND k.type IN ('click', 'landing')
    LIMIT 1) k ON true
WHERE c.type = 'conversion'
  AND c.amount ~ '^[0-9]{1,15}(\.[0-9]{1,6})?$'
  AND c.currency ~ '^[A-Z]{3}$';

-- orders: one per order_id over all nodes; the first report (postback,
-- then earliest, node, seq) gives time, amount, currency, source; the
-- first attributed report gives creator and campaign
CREATE OR REPLACE VIEW affiliate.roi_orders AS
WITH c AS MATERIALIZED (SELECT * FROM affiliate.roi_conv)
SELECT f.okey, f.ts, f.amount, f.currency, f.source,
       a.who_creator AS creator, a.who_campaign AS campaign
FROM (SELECT DISTINCT ON (okey) *
      FROM c
      ORDER BY okey, src_rank, ts, node, seq) f
LEFT JOIN (SELECT DISTINCT ON (okey) okey, who_creator, who_campaign
           FROM c WHERE ok
           ORDER BY okey, src_rank, ts, node, seq) a USING (okey);

CREATE OR REPLACE VIEW affiliate.roi_order_buckets AS
SELECT creator, campaign, substr(ts, 1, 10) AS day, currency,
       count(*) AS orders, sum(amount) AS revenue,
       count(*) FILTER (WHERE source IS DISTINCT FROM 'postback') AS pixel,
       min(ts) AS first_seen, max(ts) AS last_seen
FROM affiliate.roi_orders
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW affiliate.roi_buckets AS
SELECT creator, campaign, day,
       sum(clicks) AS clicks, sum(landings) AS landings,
       sum(unique_visits) AS unique_visits, sum(bot_clicks) AS bot_clicks,
       sum(inactive_clicks) AS inactive_clicks, sum(orders) AS orders,
       min(first_seen) AS first_seen, max(last_seen) AS last_seen
FROM (SELECT creator, campaign, day, clicks, landings, unique_visits,
             bot_clicks, inactive_clicks, 0 AS orders, first_seen, last_seen
      FROM affiliate.roi_traffic
      UNION ALL
      SELECT creator, campaign, day, 0, 0, 0, 0, 0, orders, first_seen,
             last_seen
      FROM affiliate.roi_order_buckets) x
GROUP BY 1, 2, 3;

-- the rate of a model for a bucket: the named campaign's line, else '*'
CREATE OR REPLACE FUNCTION affiliate.rate_for(cr text, cp text, m text)
RETURNS TABLE (amount numeric, currency text) LANGUAGE sql STABLE AS
$$ SELECT c.amount::numeric, c.currency FROM affiliate.costs c
   WHERE c.creator = cr AND c.model = m
     AND (c.campaign = cp OR c.campaign = '*')
   ORDER BY c.campaign = '*' LIMIT 1 $$;

-- money items in their own currency: orders and revenue, cpc, cpa,
-- revshare and flat costs (flat on a bucket without day; '*' once per
-- campaign of the creator seen, or on '*' when none)
CREATE OR REPLACE VIEW affiliate.roi_money AS
WITH b AS MATERIALIZED (SELECT * FROM affiliate.roi_buckets),
o AS MATERIALIZED (SELECT * FROM affiliate.roi_order_buckets)
SELECT creator, campaign, day, currency, orders, revenue, pixel,
       0::numeric AS cost
FROM o
UNION ALL
SELECT b.creator, b.campaign, b.day, r.currency, 0, 0, 0,
       r.amount * (b.clicks + b.landings)
FROM b, LATERAL affiliate.rate_for(b.creator, b.campaign, 'cpc') r
WHERE b.creator IS NOT NULL AND b.clicks + b.landings > 0
UNION ALL
SELECT b.creator, b.campaign, b.day, r.currency, 0, 0, 0, r.amount * b.orders
FROM b, LATERAL affiliate.rate_for(b.creator, b.campaign, 'cpa') r
WHERE b.creator IS NOT NULL AND b.orders > 0
UNION ALL
SELECT o.creator, o.campaign, o.day, o.currency, 0, 0, 0,
       o.revenue * r.amount * 0.01
FROM o, LATERAL affiliate.rate_for(o.creator, o.campaign, 'revshare') r
WHERE o.creator IS NOT NULL
UNION ALL
SELECT f.creator, s.campaign, NULL, f.currency, 0, 0, 0, f.amount::numeric
FROM affiliate.costs f
CROSS JOIN LATERAL (
    SELECT f.campaign WHERE f.campaign <> '*'
    UNION ALL
    SELECT DISTINCT b.campaign FROM b
    WHERE f.campaign = '*' AND b.creator = f.creator
    UNION ALL
    SELECT '*' WHERE f.campaign = '*' AND NOT EXISTS (
        SELECT 1 FROM b WHERE b.creator = f.creator)
) s
WHERE f.model = 'flat';

-- converted with affiliate.rates when it has rows, else per currency
CREATE OR REPLACE VIEW affiliate.roi_money_fx AS
SELECT m.creator, m.campaign, m.day,
       coalesce(r.target, m.currency) AS currency, m.orders,
       m.revenue * coalesce(r.rate::numeric, 1) AS revenue, m.pixel,
       m.cost * coalesce(r.rate::numeric, 1) AS cost
FROM affiliate.roi_money m
LEFT JOIN affiliate.rates r ON r.currency = m.currency;

-- one group per key; its currencies from the money items, or the default
CREATE OR REPLACE FUNCTION affiliate.roi(by_creator boolean,
                                         by_campaign boolean, by_day boolean)
RETURNS TABLE (creator text, campaign text, day text, currency text,
               clicks bigint, landings bigint, visits bigint,
               unique_visits bigint, bot_clicks bigint, bot_share numeric,
               inactive_clicks bigint, conversions bigint,
               pixel_conversions bigint, conversion_rate numeric,
               revenue numeric, aov numeric, epc numeric, cost numeric,
               profit numeric, roi numeric, cpa numeric,
               first_seen text, last_seen text)
LANGUAGE sql STABLE AS $$
WITH mf AS MATERIALIZED (SELECT * FROM affiliate.roi_money_fx),
bk AS MATERIALIZED (SELECT * FROM affiliate.roi_buckets),
d AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM affiliate.rates)
                  THEN (SELECT min(target) FROM affiliate.rates)
                  WHEN count(DISTINCT currency) = 1 THEN min(currency) END
                 AS currency
      FROM mf),
b AS (
    SELECT CASE WHEN by_creator THEN x.creator END AS creator,
           CASE WHEN by_campaign THEN x.campaign END AS campaign,
           CASE WHEN by_day THEN x.day END AS day,
           x.clicks, x.landings, x.unique_visits, x.bot_clicks,
           x.inactive_clicks, x.first_seen, x.last_seen
    FROM (SELECT creator, campaign, day, clicks, landings, unique_visits,
                 bot_clicks, inactive_clicks, first_seen, last_seen
          FROM bk
          UNION ALL
          SELECT creator, campaign, day, 0, 0, 0, 0, 0, NULL, NULL
          FROM mf) x),
g AS (
    SELECT creator, campaign, day, sum(clicks)::bigint AS clicks,
           sum(landings)::bigint AS landings,
           sum(unique_visits)::bigint AS unique_visits,
           sum(bot_clicks)::bigint AS bot_clicks,
           sum(inactive_clicks)::bigint AS inactive_clicks,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM b GROUP BY 1, 2, 3),
m AS (
    SELECT CASE WHEN by_creator THEN creator END AS creator,
           CASE WHEN by_campaign THEN campaign END AS campaign,
           CASE WHEN by_day THEN day END AS day,
           currency, sum(orders)::bigint AS conversions,
           sum(pixel)::bigint AS pixel, sum(revenue) AS revenue,
           sum(cost) AS cost
    FROM mf GROUP BY 1, 2, 3, 4),
j AS (
    SELECT g.*, coalesce(m.currency, d.currency) AS cur,
           coalesce(m.conversions, 0) AS conversions,
           coalesce(m.pixel, 0) AS pixel,
           coalesce(m.revenue, 0) AS revenue, coalesce(m.cost, 0) AS cost
    FROM g
    LEFT JOIN m ON g.creator IS NOT DISTINCT FROM m.creator
               AND g.campaign IS NOT DISTINCT FROM m.campaign
               AND g.day IS NOT DISTINCT FROM m.day
    CROSS JOIN d)
SELECT creator, campaign, day, cur, clicks, landings, clicks + landings,
       unique_visits, bot_clicks,
       affiliate.ratio(bot_clicks, clicks + landings + bot_clicks),
       inactive_clicks, conversions, pixel,
       affiliate.ratio(conversions, unique_visits),
       revenue, affiliate.ratio(revenue, conversions),
       affiliate.ratio(revenue, clicks + landings), cost, revenue - cost,
       affiliate.ratio(revenue - cost, cost),
       affiliate.ratio(cost, conversions), first_seen, last_seen
FROM j
$$;

CREATE OR REPLACE VIEW affiliate.roi_by_creator AS
SELECT creator, currency, clicks, landings, visits, unique_visits,
       bot_clicks, bot_share, inactive_clicks, conversions,
       pixel_conversions, conversion_rate, revenue, aov, epc, cost, profit,
       roi, cpa, first_seen, last_seen
FROM affiliate.roi(true, false, false);

CREATE OR REPLACE VIEW affiliate.roi_by_campaign AS
SELECT campaign, currency, clicks, landings, visits, unique_visits,
       bot_clicks, bot_share, inactive_clicks, conversions,
       pixel_conversions, conversion_rate, revenue, aov, epc, cost, profit,
       roi, cpa, first_seen, last_seen
FROM affiliate.roi(false, true, false);

CREATE OR REPLACE VIEW affiliate.roi_by_creator_campaign AS
SELECT creator, campaign, currency, clicks, landings, visits, unique_visits,
       bot_clicks, bot_share, inactive_clicks, conversions,
       pixel_conversions, conversion_rate, revenue, aov, epc, cost, profit,
       roi, cpa, first_seen, last_seen
FROM affiliate.roi(true, true, false);

CREATE OR REPLACE VIEW affiliate.roi_by_day AS
SELECT day, currency, clicks, landings, visits, unique_visits,
       bot_clicks, bot_share, inactive_clicks, conversions,
       pixel_conversions, conversion_rate, revenue, aov, epc, cost, profit,
       roi, cpa, first_seen, last_seen
FROM affiliate.roi(false, false, true);
