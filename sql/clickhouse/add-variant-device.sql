-- Upgrade: tables made by schema.sql before the records had "variant" and
-- "device" (A/B and device links) get both columns.  Run once on EVERY
-- server of the cluster, the local table first:
--   clickhouse-client --multiquery < add-variant-device.sql
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: on a table that has
-- them already this fails with "column ... already exists" (Code: 44) and
-- changes nothing.  Old rows read them as NULL.
ALTER TABLE affiliate.records_local
    ADD COLUMN variant Nullable(UInt32) AFTER asn,
    ADD COLUMN device Nullable(String) AFTER variant;
ALTER TABLE affiliate.records
    ADD COLUMN variant Nullable(UInt32) AFTER asn,
    ADD COLUMN device Nullable(String) AFTER variant;
