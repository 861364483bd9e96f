package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glimpse-oss/glimpse/internal/job"
)

// Near filters images to those taken within Km of a point.
type Near struct {
	Lat, Lon, Km float64
}

// Similar is one near-duplicate and its Hamming distance from the query.
type Similar struct {
	Image    *job.Image
	Distance int
}

// featureCols are the filterable values SaveResult pulls out of a result.
type featureCols struct {
	qrURL    sql.NullString // the first of qrURLs
	qrURLs   []string       // the text of every code that is a URL
	takenAt  *time.Time     // passed through dialect.nt, like every time
	lat, lon sql.NullFloat64
	faces    sql.NullInt64
	phash    sql.NullString
}

func extractFeatures(res *job.Result) featureCols {
	var c featureCols
	for _, code := range res.QR {
		if code.URL != nil {
			c.qrURLs = append(c.qrURLs, foldURLHost(code.Text))
		}
	}
	if len(c.qrURLs) > 0 {
		c.qrURL = sql.NullString{String: c.qrURLs[0], Valid: true}
	}
	if e := res.EXIF; e != nil {
		if t, ok := ParseTakenAt(e.TakenAt); ok {
			c.takenAt = &t
		}
		if e.Latitude != nil && e.Longitude != nil {
			c.lat = sql.NullFloat64{Float64: *e.Latitude, Valid: true}
			c.lon = sql.NullFloat64{Float64: *e.Longitude, Valid: true}
		}
	}
	if res.Faces != nil {
		c.faces = sql.NullInt64{Int64: int64(len(res.Faces)), Valid: true}
	}
	if _, err := parsePHash(res.PHash); err == nil {
		c.phash = sql.NullString{String: res.PHash, Valid: true}
	}
	return c
}

// ceilMicro rounds t up to a whole microsecond.
func ceilMicro(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// foldURLHost lower-cases a URL's scheme and host, which are
// case-insensitive, and leaves the rest as it is: the qr_url filter then
// finds HTTPS://Shop.Example/p/1 by https://shop.example/p/ and the other
// way round, while paths keep their case. Text that is not scheme://host…
// is returned unchanged.
func foldURLHost(s string) string {
	i := strings.Index(s, "://")
	if i <= 0 {
		return s
	}
	end := len(s)
	if j := strings.IndexAny(s[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	return strings.ToLower(s[:end]) + s[end:]
}

// ParseTakenAt reads an EXIF time as the exif analyzer writes it: RFC 3339
// with an offset, or a local time without one (taken as UTC for filtering).
func ParseTakenAt(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func parsePHash(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("store: phash %q: want 16 hex digits", s)
	}
	return strconv.ParseUint(s, 16, 64)
}

// earthKm is the Earth's mean radius (IUGG), for near=.
const earthKm = 6371.0088

// degree is one degree in radians.
const degree = math.Pi / 180

// featureFilters adds ListOptions' feature filters to a query's WHERE.
func (db *DB) featureFilters(opt ListOptions, where []string, args []any) ([]string, []any) {
	if opt.QRURL != "" {
		// A prefix match that needs no LIKE escaping and means the same on
		// every engine; substr counts characters, not bytes, in both.
		// Any of the image's codes may match.
		where = append(where, "EXISTS (SELECT 1 FROM image_qr_urls u WHERE u.image_id = i.id AND substr(u.url, 1, ?) = ?)")
		prefix := foldURLHost(opt.QRURL)
		args = append(args, utf8.RuneCountInString(prefix), prefix)
	}
	// Times are stored to the microsecond: a bound between two is rounded
	// up, which keeps >= and < exact.
	if !opt.TakenAfter.IsZero() {
		where = append(where, "i.taken_at >= ?")
		args = append(args, db.d.t(ceilMicro(opt.TakenAfter)))
	}
	if !opt.TakenBefore.IsZero() {
		where = append(where, "i.taken_at < ?")
		args = append(args, db.d.t(ceilMicro(opt.TakenBefore)))
	}
	if n := opt.Near; n != nil {
		// The great-circle distance, as the haversine inequality
		// sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) <= sin²(d/2) for an angular
		// radius d: exact on a sphere, with no inverse function to go out
		// of its domain, and plain sin and cos on both engines. (Δλ needs
		// no wrapping at ±180°: sin² repeats every 2π of Δλ.) A bounding box
		// in degrees comes first, so an engine can skip most rows.
		d := n.Km / earthKm
		phi, lam := n.Lat*degree, n.Lon*degree
		dlat := d / degree
		where = append(where, "i.lat BETWEEN ? AND ?")
		args = append(args, n.Lat-dlat, n.Lat+dlat)
		// The circle's longitudes: all of them when it reaches a pole,
		// else asin(sin d / cos φ) either side, in two ranges when they
		// cross the antimeridian.
		if math.Sin(d) < math.Cos(phi) {
			dlon := math.Asin(math.Sin(d)/math.Cos(phi)) / degree
			lo, hi := n.Lon-dlon, n.Lon+dlon
			switch {
			case lo < -180:
				where = append(where, "(i.lon >= ? OR i.lon <= ?)")
				args = append(args, lo+360, hi)
			case hi > 180:
				where = append(where, "(i.lon >= ? OR i.lon <= ?)")
				args = append(args, lo, hi-360)
			default:
				where = append(where, "i.lon BETWEEN ? AND ?")
				args = append(args, lo, hi)
			}
		}
		if d < math.Pi {
			const hav = "sin((i.lat * ? - ?) / 2) * sin((i.lat * ? - ?) / 2) + " +
				"cos(i.lat * ?) * ? * sin((i.lon * ? - ?) / 2) * sin((i.lon * ? - ?) / 2) <= ?"
			where = append(where, hav)
			h := math.Sin(d / 2)
			args = append(args, degree, phi, degree, phi, degree, math.Cos(phi), degree, lam, degree, lam, h*h)
		}
	}
	if opt.HasFaces != nil {
		if *opt.HasFaces {
			where = append(where, "i.faces > 0")
		} else {
			where = append(where, "i.faces = 0")
		}
	}
	return where, args
}

// SimilarImages lists the tenant's images whose perceptual hash is within
// maxDistance bits of image id's, nearest first, at most limit of them.
// It returns ErrNotFound when the image is absent, and an empty list when
// it has no hash (phash was not asked for).
func (db *DB) SimilarImages(ctx context.Context, tenant, id string, maxDistance, limit int) ([]Similar, error) {
	img, err := db.GetImage(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if img.Result == nil || img.Result.PHash == "" {
		return []Similar{}, nil
	}
	want, err := parsePHash(img.Result.PHash)
	if err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, db.d.q(`SELECT id, phash FROM images WHERE tenant = ? AND phash IS NOT NULL AND id <> ?`), tenant, id)
	if err != nil {
		return nil, fmt.Errorf("store: similar images: %w", err)
	}
	type hit struct {
		id   string
		dist int
	}
	var hits []hit
	for rows.Next() {
		var other, hash string
		if err := rows.Scan(&other, &hash); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: similar images: %w", err)
		}
		h, err := parsePHash(hash)
		if err != nil {
			continue
		}
		if d := bits.OnesCount64(h ^ want); d <= maxDistance {
			hits = append(hits, hit{other, d})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: similar images: %w", err)
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.id, b.id)
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	out := make([]Similar, 0, len(hits))
	for _, h := range hits {
		other, err := db.GetImage(ctx, tenant, h.id)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, Similar{Image: other, Distance: h.dist})
	}
	return out, nil
}
