-- Synonym rows (see SaveResult) for the images analysed before SaveResult
-- wrote them: each comma-separated name of a label that lists several
-- ("tabby" and "tabby cat" of "tabby, tabby cat"), once per image, unless
-- the image has a row of that name already, ranked after all its rows
-- (10000 and up).

-- +goose Up
WITH RECURSIVE split (image_id, tenant, created_at, score, ord, name, rest) AS (
    SELECT image_id, tenant, created_at, score, rank, '', label || ','
    FROM image_labels WHERE strpos(label, ',') > 0
    UNION ALL
    SELECT image_id, tenant, created_at, score, ord,
           trim(substr(rest, 1, strpos(rest, ',') - 1)), substr(rest, strpos(rest, ',') + 1)
    FROM split WHERE rest <> ''
), names AS (
    SELECT image_id, tenant, created_at, max(score) AS score, min(ord) AS ord, name
    FROM split s
    WHERE name <> '' AND NOT EXISTS (SELECT 1 FROM image_labels l WHERE l.image_id = s.image_id AND l.label = s.name)
    GROUP BY image_id, tenant, created_at, name
)
INSERT INTO image_labels (image_id, label, score, rank, tenant, created_at)
SELECT image_id, name, score, 10000 + ROW_NUMBER() OVER (PARTITION BY image_id ORDER BY ord, name), tenant, created_at
FROM names;

-- +goose Down
DELETE FROM image_labels WHERE rank >= 10000;
