-- ngx_http_affiliate_module records in a ClickHouse cluster.
-- Apply on EVERY server of the cluster (no ON CLUSTER: that needs
-- ZooKeeper), e.g.  clickhouse-client --multiquery < schema.sql
-- The cluster is named "affiliate" in remote_servers (docs/shipping.md).
-- Tested on ClickHouse 18.16 (Debian 12) only; uses no function or type
-- that later releases removed (docs/shipping.md).  Tables made by an
-- earlier version lack variant and device: docs/shipping.md, "Upgrading".

CREATE DATABASE IF NOT EXISTS affiliate;

-- One row per record on the shard that owns it.  Duplicates (a batch
-- resent after a crash) have the same id, so the same sharding key and the
-- same sorting key: ReplacingMergeTree folds them at merge time, and the
-- ROI queries count by distinct id, so they are right before merges too.
CREATE TABLE IF NOT EXISTS affiliate.records_local
(
    id          String,
    node        String,
    ts          String,
    type        String,
    seq         UInt64,
    click_id    Nullable(String),
    link        Nullable(String),
    rule        Nullable(UInt32),
    creator     Nullable(String),
    campaign    Nullable(String),
    dest        Nullable(String),
    status      Nullable(UInt32),
    ip          Nullable(String),
    ua          Nullable(String),
    referer     Nullable(String),
    host        Nullable(String),
    country     Nullable(String),
    region      Nullable(String),
    city        Nullable(String),
    asn         Nullable(UInt32),
    variant     Nullable(UInt32),
    device      Nullable(String),
    bot         UInt8,
    bot_reason  Nullable(String),
    `unique`    Nullable(UInt8),
    reason      Nullable(String),
    cookie      Nullable(String),
    source      Nullable(String),
    order_id    Nullable(String),
    amount      Nullable(String),
    currency    Nullable(String),
    attributed  Nullable(UInt8),
    duplicate   Nullable(UInt8),
    truncated   UInt8
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(toDate(substring(ts, 1, 10)))
ORDER BY (type, id);

-- The table the shippers insert into and the queries read.  Sharding by
-- the click id (the record's own id when it has none) puts a click and
-- the conversions that carry its click_id on the same shard, so the
-- attribution join runs locally on each shard.
CREATE TABLE IF NOT EXISTS affiliate.records AS affiliate.records_local
ENGINE = Distributed(affiliate, affiliate, records_local,
                     cityHash64(ifNull(click_id, id)));

-- costs.tsv and rates.tsv, loaded by affiliate-ship --load-costs /
-- --load-rates.  Small tables: each server keeps its own full copy
-- (the loader writes to the server it is given; load them on every server
-- that runs ROI queries).
CREATE TABLE IF NOT EXISTS affiliate.costs
(
    line     UInt32,
    creator  String,
    campaign String,
    model    String,
    amount   String,
    currency String
) ENGINE = TinyLog;

-- Without rows here every money column is per currency; with the rates to
-- one target currency (and target -> target = 1), converted into it.
CREATE TABLE IF NOT EXISTS affiliate.rates
(
    currency String,
    target   String,
    rate     String
) ENGINE = TinyLog;
