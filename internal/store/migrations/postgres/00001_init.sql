-- Glimpse store schema, PostgreSQL flavour: the same tables, columns and
-- indexes as migrations/sqlite, column for column.
--
-- Times are timestamptz, which keeps microseconds like SQLite's INTEGER unix
-- microseconds and sorts and compares the same way. Ids are COLLATE "C" so
-- that they sort byte-wise as in SQLite (and in Go), whatever the database's
-- default collation: list order and pagination cursors depend on it.

-- +goose Up
CREATE TABLE images (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant       TEXT        NOT NULL,
    filename     TEXT        NOT NULL DEFAULT '',
    content_type TEXT        NOT NULL DEFAULT '',
    size         BIGINT      NOT NULL DEFAULT 0,
    sha256       TEXT        NOT NULL DEFAULT '',
    width        INTEGER     NOT NULL DEFAULT 0,
    height       INTEGER     NOT NULL DEFAULT 0,
    features     TEXT        NOT NULL DEFAULT '',
    status       TEXT        NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    error        TEXT        NOT NULL DEFAULT '',
    attempts     INTEGER     NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
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
    image_id   TEXT COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label      TEXT             NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    rank       INTEGER          NOT NULL,
    tenant     TEXT             NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (image_id, rank)
);
CREATE INDEX image_labels_list ON image_labels (tenant, label, created_at DESC, image_id DESC);

-- API keys: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    tenant     TEXT        NOT NULL,
    name       TEXT        NOT NULL DEFAULT '',
    hash       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    last_used  TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE image_labels;
DROP TABLE images;
