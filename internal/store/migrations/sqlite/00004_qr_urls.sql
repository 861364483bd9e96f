-- Every code of a result whose text is a URL, in the result's order, for the
-- qr_url filter: an image matches when any of its codes does. images.qr_url
-- keeps the first one, for lists and analytics.

-- +goose Up
CREATE TABLE image_qr_urls (
    image_id TEXT    NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    rank     INTEGER NOT NULL,
    url      TEXT    NOT NULL,
    PRIMARY KEY (image_id, rank)
);
CREATE INDEX image_qr_urls_url ON image_qr_urls (url, image_id);
-- Images analysed before: the one URL the filter knew them by.
INSERT INTO image_qr_urls (image_id, rank, url) SELECT id, 0, qr_url FROM images WHERE qr_url IS NOT NULL;

-- +goose Down
DROP TABLE image_qr_urls;
