-- ngx_http_affiliate_module records in PostgreSQL (13 and later; tested
-- on Debian 12's 15).  psql -d DB -f schema.sql
-- A table made by an earlier version lacks variant and device:
-- docs/shipping.md, "Upgrading".
-- affiliate-ship --postgresql loads each batch with \copy into a jsonb
-- staging table and INSERT ... ON CONFLICT (id) DO NOTHING: the primary
-- key drops a batch resent after a crash.

CREATE SCHEMA IF NOT EXISTS affiliate;

CREATE TABLE IF NOT EXISTS affiliate.records (
    id          text PRIMARY KEY,
    node        text NOT NULL,
    ts          text NOT NULL,          -- as written: 2026-11-25T19:58:19.750Z
    type        text NOT NULL,
    seq         bigint NOT NULL,
    click_id    text,
    link        text,
    rule        bigint,
    creator     text,
    campaign    text,
    dest        text,
    status      bigint,
    ip          text,
    ua          text,
    referer     text,
    host        text,
    country     text,
    region      text,
    city        text,
    asn         bigint,
    variant     bigint,
    device      text,
    bot         boolean NOT NULL,
    bot_reason  text,
    "unique"    boolean,
    reason      text,
    cookie      text,
    source      text,
    order_id    text,
    amount      text,                   -- exact, cast to numeric in views
    currency    text,
    attributed  boolean,
    duplicate   boolean,
    truncated   boolean NOT NULL
);

CREATE INDEX IF NOT EXISTS records_click_id ON affiliate.records (click_id)
    WHERE type IN ('click', 'landing');
CREATE INDEX IF NOT EXISTS records_conversion ON affiliate.records (order_id)
    WHERE type = 'conversion';
CREATE INDEX IF NOT EXISTS records_type_ts ON affiliate.records (type, ts);

-- costs.tsv and rates.tsv (affiliate-ship --load-costs / --load-rates)
CREATE TABLE IF NOT EXISTS affiliate.costs (
    line     integer,
    creator  text NOT NULL,
    campaign text NOT NULL,
    model    text NOT NULL,
    amount   text NOT NULL,
    currency text NOT NULL
);

CREATE TABLE IF NOT EXISTS affiliate.rates (
    currency text NOT NULL,
    target   text NOT NULL,
    rate     text NOT NULL
);
