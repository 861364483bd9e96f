-- Analytics, PostgreSQL flavour: the same tables and columns as
-- migrations/sqlite/00003_analytics.sql. See there for what each column holds.
--
-- The views are written in plain SQL that Redshift-style warehouses speaking
-- the PostgreSQL protocol also accept: no FILTER clauses, no PostgreSQL-only
-- functions, only CASE, COUNT/SUM/AVG/MAX, DATE_TRUNC and AT TIME ZONE
-- 'UTC' (so that days are UTC whatever the session's TimeZone). Copy them
-- onto a warehouse table loaded from `glimpse analytics export` as they are.

-- +goose Up
CREATE TABLE analytics_images (
    image_id       TEXT COLLATE "C" PRIMARY KEY,
    tenant         TEXT             NOT NULL,
    status         TEXT             NOT NULL,
    error          TEXT             NOT NULL DEFAULT '',
    filename       TEXT             NOT NULL DEFAULT '',
    width          INTEGER,
    height         INTEGER,
    created_at     TIMESTAMPTZ      NOT NULL,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ      NOT NULL,
    processing_ms  BIGINT,
    latency_ms     BIGINT,
    ms_bin         INTEGER,
    top_label      TEXT,
    top_score      DOUBLE PRECISION,
    labels         TEXT,
    model          TEXT,
    qr_text        TEXT,
    qr_host        TEXT,
    qr_path        TEXT,
    product        TEXT,
    qr_count       INTEGER,
    taken_at       TIMESTAMPTZ,
    lat            DOUBLE PRECISION,
    lon            DOUBLE PRECISION,
    place          TEXT,
    camera         TEXT,
    faces          INTEGER,
    dominant_color TEXT,
    brightness     DOUBLE PRECISION,
    saturation     DOUBLE PRECISION,
    sharpness      DOUBLE PRECISION,
    blurry         INTEGER,
    exposure       TEXT,
    megapixels     DOUBLE PRECISION,
    loaded_at      TIMESTAMPTZ      NOT NULL
);
CREATE INDEX analytics_images_finished ON analytics_images (tenant, finished_at, top_label);
CREATE INDEX analytics_images_taken ON analytics_images (tenant, taken_at, top_label);
-- The same day-bucket indexes as SQLite's, on the expression the stats
-- queries group by.
CREATE INDEX analytics_images_day_label ON analytics_images (tenant, (DATE_TRUNC('day', finished_at AT TIME ZONE 'UTC')), top_label, finished_at);
CREATE INDEX analytics_images_taken_day_product ON analytics_images (tenant, (DATE_TRUNC('day', taken_at AT TIME ZONE 'UTC')), product, taken_at);
CREATE INDEX analytics_images_taken_day_place ON analytics_images (tenant, (DATE_TRUNC('day', taken_at AT TIME ZONE 'UTC')), place, taken_at);

CREATE TABLE analytics_backlog (
    t       TIMESTAMPTZ PRIMARY KEY,
    backlog BIGINT  NOT NULL,
    workers INTEGER NOT NULL
);

CREATE VIEW analytics_images_v AS
SELECT image_id, tenant, status, error, filename, width, height,
       created_at, started_at, finished_at,
       DATE_TRUNC('day', finished_at AT TIME ZONE 'UTC') AS finished_day,
       processing_ms, latency_ms, top_label, top_score, labels, model,
       qr_text, qr_host, qr_path, product, qr_count,
       taken_at,
       DATE_TRUNC('day', taken_at AT TIME ZONE 'UTC') AS taken_day,
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
