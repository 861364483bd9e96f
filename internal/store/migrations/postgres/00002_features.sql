-- Columns pulled out of an image's result so that lists can filter on them.
-- They are written by SaveResult from the result JSON, which stays the record.

-- +goose Up
ALTER TABLE images ADD COLUMN qr_url   TEXT;             -- text of the first QR code that is a URL
ALTER TABLE images ADD COLUMN taken_at TIMESTAMPTZ;      -- EXIF time taken
ALTER TABLE images ADD COLUMN lat      DOUBLE PRECISION; -- EXIF GPS, signed decimal degrees
ALTER TABLE images ADD COLUMN lon      DOUBLE PRECISION;
ALTER TABLE images ADD COLUMN faces    INTEGER;          -- number of faces, when faces was asked for
ALTER TABLE images ADD COLUMN phash    TEXT;             -- 16 hex digits, when phash was asked for
CREATE INDEX images_tenant_taken ON images (tenant, taken_at);
CREATE INDEX images_tenant_phash ON images (tenant, phash) WHERE phash IS NOT NULL;

-- +goose Down
DROP INDEX images_tenant_phash;
DROP INDEX images_tenant_taken;
ALTER TABLE images DROP COLUMN phash;
ALTER TABLE images DROP COLUMN faces;
ALTER TABLE images DROP COLUMN lon;
ALTER TABLE images DROP COLUMN lat;
ALTER TABLE images DROP COLUMN taken_at;
ALTER TABLE images DROP COLUMN qr_url;
