-- Glimpse store schema, SQLite flavour.
--
-- Times are INTEGER unix microseconds in UTC: they sort numerically, compare
-- exactly and map one-to-one onto PostgreSQL timestamptz (also microsecond
-- precision) in migrations/postgres.

-- +goose Up
CREATE TABLE images (
    id           TEXT    PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    filename     TEXT    NOT NULL DEFAULT '',
    content_type TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT    NOT NULL DEFAULT '',
    width        INTEGER NOT NULL DEFAULT 0,
    height       INTEGER NOT NULL DEFAULT 0,
    features     TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    error        TEXT    NOT NULL DEFAULT '',
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    result       TEXT
);

-- ListImages: newest first within a tenant, optionally by status.
CREATE INDEX images_tenant_created ON images (tenant, created_at DESC, id DESC);
CREATE INDEX images_tenant_status_created ON images (tenant, status, created_at DESC, id DESC);
-- ListStale and CountByStatus.
CREATE INDEX images_status_updated ON images (status, updated_at);

-- One row per distinct label of an image's result, for the label filter.
-- label is lower-cased; the original spelling lives in images.result. tenant
-- and created_at repeat the image's, which never change, so that a label
-- filter pages through one index in list order.
CREATE TABLE image_labels (
    image_id   TEXT    NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label      TEXT    NOT NULL,
    score      REAL    NOT NULL,
    rank       INTEGER NOT NULL,
    tenant     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (image_id, rank)
);
CREATE INDEX image_labels_list ON image_labels (tenant, label, created_at DESC, image_id DESC);

-- API keys: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    name       TEXT    NOT NULL DEFAULT '',
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE image_labels;
DROP TABLE images;
