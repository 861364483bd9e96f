// Package analytics keeps Glimpse's analytics tables up to date and gets
// data out of them: a loader that turns the outcomes on the results stream
// into one flattened row per image (restart-safe through a durable
// JetStream consumer, idempotent through upserts by image id), a backfill
// that rebuilds the rows from the result documents in blob storage, a
// sampler that records the queue's backlog, and exports for BI tools.
//
// The tables, views and queries are in package store
// (migrations/*/00003_analytics.sql and analytics.go); this package decides
// what goes into a row.
package analytics

import (
	"net/url"
	"strings"
	"time"

	"github.com/glimpse-oss/glimpse/internal/job"
	"github.com/glimpse-oss/glimpse/internal/store"
)

// maxLabels is how many labels a row keeps in store.Fact.Labels.
const maxLabels = 5

// NewFact flattens one image's outcome into its analytics row. img is the
// image's row in the store (for its tenant, name and times); status, reason
// and res are the outcome (res nil when failed); finished is the outcome's
// time, used when img has none.
func NewFact(img *job.Image, status job.Status, reason string, res *job.Result, finished time.Time) store.Fact {
	f := store.Fact{
		ImageID:    img.ID,
		Tenant:     img.Tenant,
		Status:     status,
		Error:      reason,
		Filename:   img.Filename,
		CreatedAt:  img.CreatedAt,
		StartedAt:  img.StartedAt,
		FinishedAt: finished.UTC(),
	}
	// The store's finish time is the one every loader and backfill sees
	// alike; the outcome's is a few microseconds off it.
	if img.FinishedAt != nil {
		f.FinishedAt = *img.FinishedAt
	}
	if f.StartedAt != nil {
		ms := max(f.FinishedAt.Sub(*f.StartedAt).Milliseconds(), 0)
		f.ProcessingMS = &ms
	}
	if !f.CreatedAt.IsZero() {
		ms := max(f.FinishedAt.Sub(f.CreatedAt).Milliseconds(), 0)
		f.LatencyMS = &ms
	}
	if img.Width > 0 && img.Height > 0 {
		w, h := img.Width, img.Height
		f.Width, f.Height = &w, &h
	}
	if res == nil {
		return f
	}
	if res.Width > 0 && res.Height > 0 {
		w, h := res.Width, res.Height
		f.Width, f.Height = &w, &h
	}
	flattenLabels(&f, res)
	flattenQR(&f, res.QR)
	flattenEXIF(&f, res.EXIF)
	if res.Faces != nil {
		n := len(res.Faces)
		f.Faces = &n
	}
	if c := res.Colors; c != nil {
		if len(c.Dominant) > 0 {
			f.DominantColor = strings.ToLower(c.Dominant[0].Hex)
		}
		b, s := c.Brightness, c.Saturation
		f.Brightness, f.Saturation = &b, &s
	}
	if q := res.Quality; q != nil {
		sh, bl, mp := q.Sharpness, q.Blurry, q.Megapixels
		f.Sharpness, f.Blurry, f.Megapixels = &sh, &bl, &mp
		f.Exposure = q.Exposure
	}
	return f
}

func flattenLabels(f *store.Fact, res *job.Result) {
	f.Model = res.Model
	if len(res.Labels) == 0 {
		return
	}
	top := res.Labels[0]
	f.TopLabel = normLabel(top.Label)
	score := top.Score
	f.TopScore = &score
	names := make([]string, 0, maxLabels)
	for _, l := range res.Labels[:min(len(res.Labels), maxLabels)] {
		names = append(names, strings.ReplaceAll(normLabel(l.Label), "|", "/"))
	}
	f.Labels = strings.Join(names, "|")
}

// normLabel is a label as the stats count it: trimmed and lower-cased, as
// the store's label filter has it.
func normLabel(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// flattenQR keeps the first code that is a URL (else the first code) and
// makes the product of its host and path.
func flattenQR(f *store.Fact, codes []job.Code) {
	if codes == nil {
		return
	}
	n := len(codes)
	f.QRCount = &n
	if n == 0 {
		return
	}
	pick := codes[0]
	for _, c := range codes {
		if c.URL != nil {
			pick = c
			break
		}
	}
	f.QRText = pick.Text
	host, path := "", ""
	if pick.URL != nil {
		host, path = pick.URL.Host, pick.URL.Path
	} else if u, err := url.Parse(pick.Text); err == nil && u.Host != "" {
		host, path = u.Host, u.Path
	}
	if host == "" {
		return
	}
	f.QRHost, f.QRPath = strings.ToLower(host), path
	f.Product = f.QRHost + path
}

func flattenEXIF(f *store.Fact, e *job.EXIF) {
	if e == nil {
		return
	}
	if t, ok := store.ParseTakenAt(e.TakenAt); ok {
		f.TakenAt = &t
	}
	if e.Latitude != nil && e.Longitude != nil {
		lat, lon := *e.Latitude, *e.Longitude
		f.Lat, f.Lon = &lat, &lon
		f.Place = Place(lat, lon)
	}
	f.Camera = strings.TrimSpace(strings.TrimSpace(e.Make) + " " + strings.TrimSpace(e.Model))
	if f.Camera != "" && e.Make != "" && strings.HasPrefix(strings.ToLower(e.Model), strings.ToLower(e.Make)) {
		f.Camera = strings.TrimSpace(e.Model) // "Canon Canon EOS R6" reads "Canon EOS R6"
	}
}
