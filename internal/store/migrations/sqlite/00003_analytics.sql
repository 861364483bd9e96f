-- Analytics: one row per image that reached a terminal status, with its
-- result flattened into columns, kept up to date by the analytics loader
-- from the results stream (and rebuilt by `glimpse analytics backfill` from
-- the result JSON in blob storage). Rows are upserted by image id, so a
-- re-delivered outcome replaces its row and never counts twice; every count
-- is a query over the rows, never a stored counter.
--
-- Times are INTEGER unix microseconds in UTC, as in the other tables. The
-- views at the end give BI tools readable times (ISO 8601 text, UTC).

-- +goose Up
CREATE TABLE analytics_images (
    image_id       TEXT    PRIMARY KEY,
    tenant         TEXT    NOT NULL,
    status         TEXT    NOT NULL,          -- done or failed
    error          TEXT    NOT NULL DEFAULT '', -- why it failed
    filename       TEXT    NOT NULL DEFAULT '',
    width          INTEGER,
    height         INTEGER,
    created_at     INTEGER NOT NULL,          -- upload accepted
    started_at     INTEGER,                   -- the last attempt began
    finished_at    INTEGER NOT NULL,          -- the outcome
    processing_ms  INTEGER,                   -- finished_at - started_at
    latency_ms     INTEGER,                   -- finished_at - created_at
    ms_bin         INTEGER,                   -- log histogram bin of processing_ms, for percentiles
    top_label      TEXT,                      -- lower-cased
    top_score      REAL,
    labels         TEXT,                      -- lower-cased labels, best first, joined by '|'
    model          TEXT,
    qr_text        TEXT,                      -- first QR code that is a URL (else the first code)
    qr_host        TEXT,
    qr_path        TEXT,
    product        TEXT,                      -- qr_host || qr_path
    qr_count       INTEGER,
    taken_at       INTEGER,                   -- EXIF time taken, UTC
    lat            REAL,
    lon            REAL,
    place          TEXT,                      -- nearest known city, else a 1° grid cell "grid:LAT,LON"
    camera         TEXT,
    faces          INTEGER,
    dominant_color TEXT,                      -- #rrggbb
    brightness     REAL,
    saturation     REAL,
    sharpness      REAL,
    blurry         INTEGER,                   -- 0 or 1
    exposure       TEXT,
    megapixels     REAL,
    loaded_at      INTEGER NOT NULL
);
-- Stats over finish time (throughput, failures, labels/products/places) and
-- over time taken. The extra columns make the common stats index-only.
CREATE INDEX analytics_images_finished ON analytics_images (tenant, finished_at, top_label);
CREATE INDEX analytics_images_taken ON analytics_images (tenant, taken_at, top_label);
-- Day buckets as index expressions (86400000000 µs a day), so that a month
-- by day and label, product or place reads one index in group order, with
-- no sort: the common dashboard queries stay well under a second at a
-- million rows. The expressions must match store.dialect.groupExpr.
CREATE INDEX analytics_images_day_label ON analytics_images (tenant, (finished_at / 86400000000), top_label, finished_at);
CREATE INDEX analytics_images_taken_day_product ON analytics_images (tenant, (taken_at / 86400000000), product, taken_at);
CREATE INDEX analytics_images_taken_day_place ON analytics_images (tenant, (taken_at / 86400000000), place, taken_at);

-- Queue backlog samples recorded by the API processes every few seconds.
-- One row per sample instant (rounded to the sampling interval), so that
-- several API processes sampling at once keep one row.
CREATE TABLE analytics_backlog (
    t       INTEGER PRIMARY KEY,
    backlog INTEGER NOT NULL,
    workers INTEGER NOT NULL
);

-- Views for BI tools: one row per image with readable times, then daily
-- rollups. Days are UTC.
CREATE VIEW analytics_images_v AS
SELECT image_id, tenant, status, error, filename, width, height,
       strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000000.0, 'unixepoch') AS created_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1000000.0, 'unixepoch') AS started_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1000000.0, 'unixepoch') AS finished_at,
       strftime('%Y-%m-%d', finished_at / 1000000.0, 'unixepoch') AS finished_day,
       processing_ms, latency_ms, top_label, top_score, labels, model,
       qr_text, qr_host, qr_path, product, qr_count,
       strftime('%Y-%m-%dT%H:%M:%SZ', taken_at / 1000000.0, 'unixepoch') AS taken_at,
       strftime('%Y-%m-%d', taken_at / 1000000.0, 'unixepoch') AS taken_day,
       lat, lon, place, camera, faces, dominant_color, brightness, saturation,
       sharpness, blurry, exposure, megapixels
FROM analytics_images;

CREATE VIEW analytics_daily_throughput AS
SELECT tenant, finished_day AS day,
       SUM(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done,
       SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
       AVG(processing_ms) AS avg_processing_ms,
       MAX(processing_ms) AS max_processing_ms
FROM analytics_images_v GROUP BY tenant, finished_day;

CREATE VIEW analytics_daily_labels AS
SELECT tenant, finished_day AS day, top_label AS label, COUNT(*) AS images
FROM analytics_images_v WHERE top_label IS NOT NULL GROUP BY tenant, finished_day, top_label;

CREATE VIEW analytics_daily_products AS
SELECT tenant, taken_day AS day, product, COUNT(*) AS images
FROM analytics_images_v WHERE product IS NOT NULL AND taken_day IS NOT NULL GROUP BY tenant, taken_day, product;

CREATE VIEW analytics_daily_places AS
SELECT tenant, taken_day AS day, place, COUNT(*) AS images
FROM analytics_images_v WHERE place IS NOT NULL AND taken_day IS NOT NULL GROUP BY tenant, taken_day, place;

CREATE VIEW analytics_failures AS
SELECT tenant, error AS reason, COUNT(*) AS images, MAX(finished_at) AS last_at
FROM analytics_images_v WHERE status = 'failed' GROUP BY tenant, error;

-- +goose Down
DROP VIEW analytics_failures;
DROP VIEW analytics_daily_places;
DROP VIEW analytics_daily_products;
DROP VIEW analytics_daily_labels;
DROP VIEW analytics_daily_throughput;
DROP VIEW analytics_images_v;
DROP TABLE analytics_backlog;
DROP TABLE analytics_images;
