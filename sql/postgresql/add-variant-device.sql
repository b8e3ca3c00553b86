-- Upgrade: a table made by schema.sql before the records had "variant"
-- and "device" (A/B and device links) gets both columns; harmless when it
-- has them.  Old rows read them as NULL.
--   psql -d DB -f add-variant-device.sql
ALTER TABLE affiliate.records
    ADD COLUMN IF NOT EXISTS variant bigint,
    ADD COLUMN IF NOT EXISTS device text;
