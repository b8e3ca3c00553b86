-- Recompute the ROI views' two base tables from affiliate.records (see
-- roi.sql), on the server that answers the ROI queries:
--   clickhouse-client --multiquery < refresh.sql
TRUNCATE TABLE affiliate.roi_order_buckets_snap;
INSERT INTO affiliate.roi_order_buckets_snap
SELECT ck, pk, day, currency, orders, revenue, pixel, first_seen, last_seen
FROM affiliate.roi_order_buckets;
TRUNCATE TABLE affiliate.roi_buckets_snap;
INSERT INTO affiliate.roi_buckets_snap
SELECT ck, pk, day, clicks, landings, unique_visits, bot_clicks,
       inactive_clicks, orders, first_seen, last_seen
FROM affiliate.roi_buckets;
