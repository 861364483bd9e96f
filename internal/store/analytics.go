package store

// Analytics: the analytics_images table (one row per image that reached a
// terminal status, its result flattened into columns) and the queries the
// stats API and the exports run over it. The queries live here, beside the
// rest of the SQL, because they need the dialect seam and the store's
// connections; package analytics decides what goes into a row.
//
// Rows are upserted by image id: loading the same outcome twice, or a
// backfill after the loader, leaves one row, so counts (always computed by
// queries) never double. An upsert only replaces a row with one that
// finished at the same time or later, so an old outcome delivered late does
// not undo a newer one.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Fact is one row of analytics_images. Optional values are nil (or "" for
// text) when the image has none: no labels asked for, no QR code, no EXIF…
type Fact struct {
	ImageID  string     `json:"image_id"`
	Tenant   string     `json:"tenant"`
	Status   job.Status `json:"status"`
	Error    string     `json:"error,omitempty"`
	Filename string     `json:"filename,omitempty"`
	Width    *int       `json:"width,omitempty"`
	Height   *int       `json:"height,omitempty"`

	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   time.Time  `json:"finished_at"`
	ProcessingMS *int64     `json:"processing_ms,omitempty"`
	LatencyMS    *int64     `json:"latency_ms,omitempty"`

	TopLabel string   `json:"top_label,omitempty"`
	TopScore *float64 `json:"top_score,omitempty"`
	Labels   string   `json:"labels,omitempty"` // lower-cased, best first, joined by '|'
	Model    string   `json:"model,omitempty"`

	QRText  string `json:"qr_text,omitempty"`
	QRHost  string `json:"qr_host,omitempty"`
	QRPath  string `json:"qr_path,omitempty"`
	Product string `json:"product,omitempty"` // QRHost + QRPath
	QRCount *int   `json:"qr_count,omitempty"`

	TakenAt *time.Time `json:"taken_at,omitempty"`
	Lat     *float64   `json:"lat,omitempty"`
	Lon     *float64   `json:"lon,omitempty"`
	Place   string     `json:"place,omitempty"`
	Camera  string     `json:"camera,omitempty"`

	Faces         *int     `json:"faces,omitempty"`
	DominantColor string   `json:"dominant_color,omitempty"`
	Brightness    *float64 `json:"brightness,omitempty"`
	Saturation    *float64 `json:"saturation,omitempty"`
	Sharpness     *float64 `json:"sharpness,omitempty"`
	Blurry        *bool    `json:"blurry,omitempty"`
	Exposure      string   `json:"exposure,omitempty"`
	Megapixels    *float64 `json:"megapixels,omitempty"`
}

// FactColumns names the columns of a Fact in export order; FactRow gives
// the values in the same order.
var FactColumns = []string{
	"image_id", "tenant", "status", "error", "filename", "width", "height",
	"created_at", "started_at", "finished_at", "processing_ms", "latency_ms",
	"top_label", "top_score", "labels", "model",
	"qr_text", "qr_host", "qr_path", "product", "qr_count",
	"taken_at", "lat", "lon", "place", "camera",
	"faces", "dominant_color", "brightness", "saturation", "sharpness", "blurry", "exposure", "megapixels",
}

const factCols = `image_id, tenant, status, error, filename, width, height,
	created_at, started_at, finished_at, processing_ms, latency_ms,
	top_label, top_score, labels, model,
	qr_text, qr_host, qr_path, product, qr_count,
	taken_at, lat, lon, place, camera,
	faces, dominant_color, brightness, saturation, sharpness, blurry, exposure, megapixels`

// Bucket is the width of a stats time bucket.
type Bucket string

// The buckets the stats queries group by. Buckets are aligned to UTC.
const (
	Minute Bucket = "minute"
	Hour   Bucket = "hour"
	Day    Bucket = "day"
)

// Duration is the bucket's width, 0 for an unknown bucket.
func (b Bucket) Duration() time.Duration {
	switch b {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// TimeAxis says which time of an image places it in a bucket.
type TimeAxis string

// The time axes of the stats queries.
const (
	// ByFinished counts an image when its outcome came (every image has one).
	ByFinished TimeAxis = "finished"
	// ByTaken counts an image when its photo was taken (EXIF); images
	// without a time taken are left out.
	ByTaken TimeAxis = "taken"
)

// Dimension is what a count groups by besides time.
type Dimension string

// The dimensions of CountBy.
const (
	ByLabel   Dimension = "label"   // top label
	ByProduct Dimension = "product" // QR host and path
	ByPlace   Dimension = "place"   // nearest city or grid cell
)

// StatsQuery selects the rows of one tenant in [From, To) on an axis,
// grouped by Bucket.
type StatsQuery struct {
	Tenant string
	From   time.Time
	To     time.Time
	Bucket Bucket
	Axis   TimeAxis // ByFinished when empty
}

// ThroughputBucket is one bucket of Throughput.
type ThroughputBucket struct {
	T      time.Time
	Done   int64
	Failed int64
	// P50MS and P99MS are percentiles of processing time (first pull of
	// the last attempt to the outcome) of the images done in the bucket,
	// from a log histogram with bins 2^(1/16) wide: within ±2.2%.
	P50MS, P99MS float64
}

// Count is one (bucket, value) cell of CountBy.
type Count struct {
	T     time.Time
	Value string
	Count int64
}

// ReasonCount is one failure reason and how many images failed with it.
type ReasonCount struct {
	Reason string
	Count  int64
}

// BacklogBucket is one bucket of Backlog: the largest backlog and worker
// count sampled in it.
type BacklogBucket struct {
	T       time.Time
	Backlog int64
	Workers int64
}

// ErrBadQuery means a stats query's bucket, axis or range is invalid.
var ErrBadQuery = errors.New("store: bad stats query")

func (q *StatsQuery) check() error {
	if q.Bucket.Duration() == 0 {
		return fmt.Errorf("%w: bucket %q", ErrBadQuery, q.Bucket)
	}
	if q.Axis == "" {
		q.Axis = ByFinished
	}
	if q.Axis != ByFinished && q.Axis != ByTaken {
		return fmt.Errorf("%w: time axis %q", ErrBadQuery, q.Axis)
	}
	if !q.From.Before(q.To) {
		return fmt.Errorf("%w: empty time range", ErrBadQuery)
	}
	return nil
}

// bucketExpr is the SQL expression of col's bucket start. Both forms are
// index-friendly on the column and need no PostgreSQL-only function:
// integer arithmetic on SQLite's unix microseconds, DATE_TRUNC (which
// Redshift-style warehouses have too) in UTC on PostgreSQL.
func (d *dialect) bucketExpr(col string, b Bucket) string {
	if d.nativeTime {
		return fmt.Sprintf("DATE_TRUNC('%s', %s AT TIME ZONE 'UTC')", b, col)
	}
	us := b.Duration().Microseconds()
	return fmt.Sprintf("(%s / %d) * %d", col, us, us)
}

// groupExpr is what a query groups col's buckets by, and bucketRange the
// extra predicate that lets SQLite use the day-bucket expression indexes of
// migrations/sqlite/00003_analytics.sql (it repeats the time range, so it
// never changes the answer). PostgreSQL groups by the bucket start itself.
func (d *dialect) groupExpr(col string, b Bucket) string {
	if d.nativeTime {
		return d.bucketExpr(col, b)
	}
	return fmt.Sprintf("%s / %d", col, b.Duration().Microseconds())
}

func (d *dialect) bucketRange(col string, q StatsQuery) string {
	if d.nativeTime {
		return ""
	}
	us := q.Bucket.Duration().Microseconds()
	from, to := q.From.UTC().Truncate(time.Microsecond).UnixMicro(), q.To.UTC().Truncate(time.Microsecond).UnixMicro()-1
	return fmt.Sprintf(" AND %s BETWEEN %d AND %d", d.groupExpr(col, q.Bucket), floorDiv(from, us), floorDiv(to, us))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// msBins is the number of histogram bins per doubling of processing time.
const msBins = 16

// MSBin is the histogram bin of a processing time in milliseconds.
func MSBin(ms int64) int {
	if ms < 0 {
		ms = 0
	}
	return int(math.Floor(msBins * math.Log2(float64(ms)+1)))
}

// binMS is the geometric middle of a bin, in milliseconds.
func binMS(bin int) float64 {
	v := math.Exp2((float64(bin)+0.5)/msBins) - 1
	return math.Round(v*10) / 10
}

// UpsertFacts writes facts in one transaction, each replacing the row of its
// image unless that row finished later.
func (db *DB) UpsertFacts(ctx context.Context, facts []Fact) error {
	if len(facts) == 0 {
		return nil
	}
	now := db.d.t(db.nowUTC())
	err := db.write(ctx, func(tx *sql.Tx) error {
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(FactColumns)+2), ", ")
		var set []string
		for _, c := range append(slices.Clone(FactColumns[1:]), "ms_bin", "loaded_at") {
			set = append(set, c+" = excluded."+c)
		}
		stmt, err := tx.PrepareContext(ctx, db.d.q(`INSERT INTO analytics_images (`+factCols+`, ms_bin, loaded_at)
			VALUES (`+ph+`)
			ON CONFLICT (image_id) DO UPDATE SET `+strings.Join(set, ", ")+`
			WHERE excluded.finished_at >= analytics_images.finished_at`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range facts {
			f := &facts[i]
			if f.ImageID == "" || f.Tenant == "" || !f.Status.Terminal() {
				return fmt.Errorf("fact %q: want an image id, a tenant and a terminal status", f.ImageID)
			}
			var bin any
			if f.ProcessingMS != nil {
				bin = MSBin(*f.ProcessingMS)
			}
			args := append(db.factArgs(f), bin, now)
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("fact %s: %w", f.ImageID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: upsert facts: %w", err)
	}
	return nil
}

// factArgs are f's values in FactColumns order, as query arguments.
func (db *DB) factArgs(f *Fact) []any {
	var blurry any
	if f.Blurry != nil {
		blurry = 0
		if *f.Blurry {
			blurry = 1
		}
	}
	return []any{
		f.ImageID, f.Tenant, string(f.Status), f.Error, f.Filename, nptr(f.Width), nptr(f.Height),
		db.d.t(f.CreatedAt), db.d.nt(f.StartedAt), db.d.t(f.FinishedAt), nptr(f.ProcessingMS), nptr(f.LatencyMS),
		nstr(f.TopLabel), nptr(f.TopScore), nstr(f.Labels), nstr(f.Model),
		nstr(f.QRText), nstr(f.QRHost), nstr(f.QRPath), nstr(f.Product), nptr(f.QRCount),
		db.d.nt(f.TakenAt), nptr(f.Lat), nptr(f.Lon), nstr(f.Place), nstr(f.Camera),
		nptr(f.Faces), nstr(f.DominantColor), nptr(f.Brightness), nptr(f.Saturation), nptr(f.Sharpness), blurry, nstr(f.Exposure), nptr(f.Megapixels),
	}
}

func nstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// scanFact reads one row of factCols.
func scanFact(s rowScanner) (*Fact, error) {
	var (
		f                                                        Fact
		status                                                   string
		width, height, qrCount, faces, blurry                    sql.NullInt64
		procMS, latMS                                            sql.NullInt64
		created, finished, started, taken                        nullTime
		topLabel, labels, model, qrText, qrHost, qrPath, product sql.NullString
		place, camera, dominant, exposure                        sql.NullString
		topScore, lat, lon, bright, sat, sharp, mp               sql.NullFloat64
	)
	err := s.Scan(&f.ImageID, &f.Tenant, &status, &f.Error, &f.Filename, &width, &height,
		&created, &started, &finished, &procMS, &latMS,
		&topLabel, &topScore, &labels, &model,
		&qrText, &qrHost, &qrPath, &product, &qrCount,
		&taken, &lat, &lon, &place, &camera,
		&faces, &dominant, &bright, &sat, &sharp, &blurry, &exposure, &mp)
	if err != nil {
		return nil, err
	}
	f.Status = job.Status(status)
	f.CreatedAt, f.FinishedAt = created.Time, finished.Time
	f.StartedAt, f.TakenAt = started.ptr(), taken.ptr()
	f.Width, f.Height, f.QRCount, f.Faces = intPtr(width), intPtr(height), intPtr(qrCount), intPtr(faces)
	if procMS.Valid {
		f.ProcessingMS = &procMS.Int64
	}
	if latMS.Valid {
		f.LatencyMS = &latMS.Int64
	}
	if blurry.Valid {
		b := blurry.Int64 != 0
		f.Blurry = &b
	}
	f.TopLabel, f.Labels, f.Model = topLabel.String, labels.String, model.String
	f.QRText, f.QRHost, f.QRPath, f.Product = qrText.String, qrHost.String, qrPath.String, product.String
	f.Place, f.Camera, f.DominantColor, f.Exposure = place.String, camera.String, dominant.String, exposure.String
	f.TopScore, f.Lat, f.Lon = floatPtr(topScore), floatPtr(lat), floatPtr(lon)
	f.Brightness, f.Saturation, f.Sharpness, f.Megapixels = floatPtr(bright), floatPtr(sat), floatPtr(sharp), floatPtr(mp)
	return &f, nil
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

func floatPtr(n sql.NullFloat64) *float64 {
	if !n.Valid {
		return nil
	}
	return &n.Float64
}

// GetFact returns the analytics row of image id, or ErrNotFound.
func (db *DB) GetFact(ctx context.Context, id string) (*Fact, error) {
	f, err := scanFact(db.r.QueryRowContext(ctx, db.d.q(`SELECT `+factCols+` FROM analytics_images WHERE image_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get fact %s: %w", id, err)
	}
	return f, nil
}

// FactFilter selects rows for EachFact. Zero fields do not filter.
type FactFilter struct {
	Tenant string
	Since  time.Time // finished at or after
	Until  time.Time // finished before
}

// EachFact calls fn for every analytics row the filter selects, in order of
// finish time, streaming them from the database.
func (db *DB) EachFact(ctx context.Context, ff FactFilter, fn func(*Fact) error) error {
	where, args := []string{"1 = 1"}, []any{}
	if ff.Tenant != "" {
		where, args = append(where, "tenant = ?"), append(args, ff.Tenant)
	}
	if !ff.Since.IsZero() {
		where, args = append(where, "finished_at >= ?"), append(args, db.d.t(ff.Since))
	}
	if !ff.Until.IsZero() {
		where, args = append(where, "finished_at < ?"), append(args, db.d.t(ff.Until))
	}
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT `+factCols+` FROM analytics_images WHERE `+
		strings.Join(where, " AND ")+` ORDER BY finished_at, image_id`), args...)
	if err != nil {
		return fmt.Errorf("store: facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		f, err := scanFact(rows)
		if err != nil {
			return fmt.Errorf("store: facts: %w", err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: facts: %w", err)
	}
	return nil
}

// EachFailedImage calls fn for every failed image of every tenant, for a
// backfill: failed images have no result document in blob storage.
func (db *DB) EachFailedImage(ctx context.Context, fn func(*job.Image) error) error {
	rows, err := db.r.QueryContext(ctx, `SELECT `+imageCols+` FROM images i WHERE i.status = 'failed' ORDER BY i.id`)
	if err != nil {
		return fmt.Errorf("store: failed images: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return fmt.Errorf("store: failed images: %w", err)
		}
		if err := fn(img); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: failed images: %w", err)
	}
	return nil
}

// rangeWhere is the WHERE clause and arguments of q: the tenant and the time
// range on q's axis. It returns the axis column too.
func (db *DB) rangeWhere(q StatsQuery) (col, where string, args []any) {
	col = "finished_at"
	if q.Axis == ByTaken {
		col = "taken_at"
	}
	return col, "tenant = ? AND " + col + " >= ? AND " + col + " < ?",
		[]any{q.Tenant, db.d.t(q.From), db.d.t(q.To)}
}

// Throughput counts the images done and failed per bucket of finish time,
// with percentiles of the processing time of those done.
func (db *DB) Throughput(ctx context.Context, q StatsQuery) ([]ThroughputBucket, error) {
	q.Axis = ByFinished
	if err := q.check(); err != nil {
		return nil, err
	}
	col, where, args := db.rangeWhere(q)
	b := db.d.bucketExpr(col, q.Bucket)
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT `+b+`, status, ms_bin, COUNT(*) FROM analytics_images
		WHERE `+where+` GROUP BY 1, 2, 3 ORDER BY 1`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	defer rows.Close()
	var (
		out  []ThroughputBucket
		bins []binCount // the current bucket's done images by bin
	)
	flush := func() {
		if len(out) == 0 {
			return
		}
		last := &out[len(out)-1]
		last.P50MS, last.P99MS = binPercentile(bins, 0.50), binPercentile(bins, 0.99)
		bins = bins[:0]
	}
	for rows.Next() {
		var (
			t      nullTime
			status string
			bin    sql.NullInt64
			n      int64
		)
		if err := rows.Scan(&t, &status, &bin, &n); err != nil {
			return nil, fmt.Errorf("store: throughput: %w", err)
		}
		if len(out) == 0 || !out[len(out)-1].T.Equal(t.Time) {
			flush()
			out = append(out, ThroughputBucket{T: t.Time})
		}
		last := &out[len(out)-1]
		switch job.Status(status) {
		case job.StatusDone:
			last.Done += n
			if bin.Valid {
				bins = append(bins, binCount{int(bin.Int64), n})
			}
		case job.StatusFailed:
			last.Failed += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: throughput: %w", err)
	}
	flush()
	return out, nil
}

// binCount is one bin of a processing-time histogram and its count.
type binCount struct {
	bin int
	n   int64
}

// binPercentile is the p-th percentile of a histogram: the middle of the
// bin holding the rank. It sorts bins.
func binPercentile(bins []binCount, p float64) float64 {
	var total int64
	for _, x := range bins {
		total += x.n
	}
	if total == 0 {
		return 0
	}
	slices.SortFunc(bins, func(a, b binCount) int { return a.bin - b.bin })
	rank := max(int64(math.Ceil(p*float64(total))), 1)
	var seen int64
	for _, x := range bins {
		seen += x.n
		if seen >= rank {
			return binMS(x.bin)
		}
	}
	return binMS(bins[len(bins)-1].bin)
}

// dimensionCol is the column of a dimension.
func dimensionCol(d Dimension) (string, error) {
	switch d {
	case ByLabel:
		return "top_label", nil
	case ByProduct:
		return "product", nil
	case ByPlace:
		return "place", nil
	}
	return "", fmt.Errorf("%w: dimension %q", ErrBadQuery, d)
}

// CountBy counts images per bucket and value of dimension d, leaving out
// images without a value. With top > 0 only the top values over the whole
// range are kept (ties broken by value). Cells are ordered by time, then
// count descending, then value.
func (db *DB) CountBy(ctx context.Context, q StatsQuery, d Dimension, top int) ([]Count, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	dim, err := dimensionCol(d)
	if err != nil {
		return nil, err
	}
	col, where, args := db.rangeWhere(q)
	b := db.d.bucketExpr(col, q.Bucket)
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT `+b+`, `+dim+`, COUNT(*) FROM analytics_images
		WHERE `+where+db.d.bucketRange(col, q)+` AND `+dim+` IS NOT NULL
		GROUP BY `+db.d.groupExpr(col, q.Bucket)+`, `+dim), args...)
	if err != nil {
		return nil, fmt.Errorf("store: count by %s: %w", d, err)
	}
	defer rows.Close()
	var out []Count
	totals := map[string]int64{}
	for rows.Next() {
		var (
			t nullTime
			c Count
		)
		if err := rows.Scan(&t, &c.Value, &c.Count); err != nil {
			return nil, fmt.Errorf("store: count by %s: %w", d, err)
		}
		c.T = t.Time
		out = append(out, c)
		totals[c.Value] += c.Count
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count by %s: %w", d, err)
	}
	if top > 0 && len(totals) > top {
		values := make([]string, 0, len(totals))
		for v := range totals {
			values = append(values, v)
		}
		slices.SortFunc(values, func(a, b string) int {
			if totals[a] != totals[b] {
				if totals[a] > totals[b] {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
		keep := map[string]bool{}
		for _, v := range values[:top] {
			keep[v] = true
		}
		out = slices.DeleteFunc(out, func(c Count) bool { return !keep[c.Value] })
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := a.T.Compare(b.T); c != 0 {
			return c
		}
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out, nil
}

// FailureReasons counts the tenant's failed images in [q.From, q.To) of
// finish time by reason, most frequent first, at most limit of them.
func (db *DB) FailureReasons(ctx context.Context, q StatsQuery, limit int) ([]ReasonCount, error) {
	q.Axis = ByFinished
	if q.Bucket == "" {
		q.Bucket = Day // not used: only checked
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	if limit < 1 {
		limit = 50
	}
	_, where, args := db.rangeWhere(q)
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT error, COUNT(*) AS n FROM analytics_images
		WHERE `+where+` AND status = 'failed' GROUP BY error ORDER BY n DESC, error LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: failure reasons: %w", err)
	}
	defer rows.Close()
	out := []ReasonCount{}
	for rows.Next() {
		var r ReasonCount
		if err := rows.Scan(&r.Reason, &r.Count); err != nil {
			return nil, fmt.Errorf("store: failure reasons: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: failure reasons: %w", err)
	}
	return out, nil
}

// RecordBacklog stores a backlog sample at t, replacing one at the same
// instant (several API processes sampling at once keep one row).
func (db *DB) RecordBacklog(ctx context.Context, t time.Time, backlog int64, workers int) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.d.q(`INSERT INTO analytics_backlog (t, backlog, workers) VALUES (?, ?, ?)
			ON CONFLICT (t) DO UPDATE SET backlog = excluded.backlog,
			workers = CASE WHEN excluded.workers > analytics_backlog.workers THEN excluded.workers ELSE analytics_backlog.workers END`),
			db.d.t(t), backlog, workers)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record backlog: %w", err)
	}
	return nil
}

// PruneBacklog deletes backlog samples older than before.
func (db *DB) PruneBacklog(ctx context.Context, before time.Time) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.d.q(`DELETE FROM analytics_backlog WHERE t < ?`), db.d.t(before))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: prune backlog: %w", err)
	}
	return nil
}

// Backlog returns, per bucket of [q.From, q.To), the largest backlog and
// worker count sampled. q.Tenant and q.Axis are ignored: the queue is
// shared by every tenant.
func (db *DB) Backlog(ctx context.Context, q StatsQuery) ([]BacklogBucket, error) {
	q.Axis = ByFinished
	if err := q.check(); err != nil {
		return nil, err
	}
	b := db.d.bucketExpr("t", q.Bucket)
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT `+b+`, MAX(backlog), MAX(workers) FROM analytics_backlog
		WHERE t >= ? AND t < ? GROUP BY 1 ORDER BY 1`), db.d.t(q.From), db.d.t(q.To))
	if err != nil {
		return nil, fmt.Errorf("store: backlog: %w", err)
	}
	defer rows.Close()
	out := []BacklogBucket{}
	for rows.Next() {
		var (
			t nullTime
			x BacklogBucket
		)
		if err := rows.Scan(&t, &x.Backlog, &x.Workers); err != nil {
			return nil, fmt.Errorf("store: backlog: %w", err)
		}
		x.T = t.Time
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: backlog: %w", err)
	}
	return out, nil
}
